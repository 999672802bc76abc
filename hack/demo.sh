#!/usr/bin/env bash
# `make demo`: start a simulated GPU cluster with nothing of the AI stack installed (a provider's
# cluster-autoscaler aside), install the reference stack with the collection's roles and verify every
# requirement (playbooks/conform.yml with conform_install=true), validate the submission and show the
# verdicts. Usage: hack/demo.sh [OUTPUT_DIR] (default: output/). The simulator is stopped on exit, whatever
# happens. The roles install the real upstream charts from K8S_AI_CHARTS_DIR, else ../shared/fixtures/upstream/charts.
# SCENARIO=conformant INSTALL=false runs the checks alone on a cluster that comes with the GPU stack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUTPUT="${1:-$ROOT/output}"
SCENARIO="${SCENARIO:-stackless-autoscaled}"
INSTALL="${INSTALL:-true}"
START=$SECONDS
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

install_args=()
if [ "$INSTALL" = "true" ]; then
  CHARTS="${K8S_AI_CHARTS_DIR:-$ROOT/../shared/fixtures/upstream/charts}"
  if [ ! -d "$CHARTS" ]; then
    echo "demo: the roles install the upstream charts from $CHARTS, which does not exist: set K8S_AI_CHARTS_DIR to" \
         "a directory of the charts (see docs/airgapped.md), or run SCENARIO=conformant INSTALL=false make demo" >&2
    exit 1
  fi
  export K8S_AI_CHARTS_DIR="$CHARTS"
  # the stack from the local charts, then the autoscaler's scale test (cheap here, opt-in on a cloud)
  install_args=(-e @tests/integration/roles/local-charts.yml -e conform_install=true -e conform_scale_test=true
                -e conform_scale_up_timeout=120 -e conform_scale_down_timeout=180)
fi
ansible-playbook playbooks/conform.yml -e @hack/demo-vars.yml "${install_args[@]}" \
  -e conform_kubeconfig="$KUBECONFIG_PATH" -e conform_output_dir="$OUTPUT" | tee "$WORK/conform.log"

# the conform role names the summary it wrote (or left unchanged) as: "Summary: <path>"
summary=$(sed -n 's/^ *"Summary: \(.*\)",\{0,1\}$/\1/p' "$WORK/conform.log" | head -n1)
if [ ! -f "$summary" ]; then
  echo "demo: the conformance run did not report a summary; see $WORK/conform.log" >&2
  exit 1
fi
product="$(dirname "$summary")/PRODUCT.yaml"
printf '\n----- CNCF validation of %s -----\n' "$product"
if ansible localhost -m k8s_ai.conformance.product_validate -a "path=$product" > "$WORK/validate.log" 2>&1; then
  grep -E '"(valid|warnings)"' "$WORK/validate.log" || true
else
  cat "$WORK/validate.log"
fi
printf '\n----- %s -----\n' "$summary"
cat "$summary"
printf '\nThe submission is in %s (PRODUCT.yaml, evidence/, junit.xml).\n' "$(dirname "$summary")"
printf 'make demo took %ss.\n' "$((SECONDS - START))"
