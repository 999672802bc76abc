#!/usr/bin/env bash
# `make demo`: start the simulated GPU cluster, run playbooks/conform.yml against it, show the summary.
# Usage: hack/demo.sh [OUTPUT_DIR] (default: output/). The simulator is stopped on exit, whatever happens.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUTPUT="${1:-$ROOT/output}"
SCENARIO="${SCENARIO:-conformant}"
WORK="$ROOT/.work/demo"
mkdir -p "$WORK"
export PATH="$ROOT/.venv/bin:$ROOT/.tools/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"

KUBECONFIG_PATH="$WORK/kubeconfig"
rm -f "$KUBECONFIG_PATH"
PYTHONPATH="$ROOT/tests" python -m simcluster --scenario "$SCENARIO" --kubeconfig "$KUBECONFIG_PATH" \
  > "$WORK/simcluster.log" 2>&1 &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
  grep -q "simcluster ready" "$WORK/simcluster.log" && break
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "demo: the simulated cluster did not start:" >&2
    cat "$WORK/simcluster.log" >&2
    exit 1
  fi
  sleep 0.5
done
grep "simcluster ready" "$WORK/simcluster.log" || { echo "demo: simulated cluster not ready after 60 s" >&2; exit 1; }

ansible-playbook playbooks/conform.yml -e @hack/demo-vars.yml \
  -e conform_kubeconfig="$KUBECONFIG_PATH" -e conform_output_dir="$OUTPUT" | tee "$WORK/conform.log"

# the conform role names the summary it wrote (or left unchanged) as: "Summary: <path>"
summary=$(sed -n 's/^ *"Summary: \(.*\)",\{0,1\}$/\1/p' "$WORK/conform.log" | head -n1)
if [ ! -f "$summary" ]; then
  echo "demo: the conformance run did not report a summary; see $WORK/conform.log" >&2
  exit 1
fi
printf '\n----- %s -----\n' "$summary"
cat "$summary"
printf '\nThe submission is in %s (PRODUCT.yaml, evidence/, junit.xml).\n' "$(dirname "$summary")"
printf 'Validate it with: .venv/bin/ansible localhost -m k8s_ai.conformance.product_validate -a path=%s\n' \
  "$(dirname "$summary")/PRODUCT.yaml"
