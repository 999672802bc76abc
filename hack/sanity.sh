#!/usr/bin/env bash
# ansible-test sanity, run from a staging copy: ansible-test resolves symlinks and insists that the
# collection's real files sit at <dir>/ansible_collections/k8s_ai/conformance, with kubernetes.core
# beside it. The copy holds exactly the tracked and not-ignored files (so .venv/ is never included).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The stage must lie outside this git work tree: inside it (e.g. in the ignored .work/), ansible-test
# lists files through git, finds them all ignored and silently skips every test.
if [ -n "${SANITY_STAGE:-}" ]; then
  STAGE="$SANITY_STAGE"
  rm -rf "$STAGE"
else
  STAGE="$(mktemp -d "${TMPDIR:-/tmp}/k8s-ai-conformance-sanity.XXXXXX")"
  trap 'rm -rf "$STAGE"' EXIT
fi
case "$STAGE/" in
  "$ROOT"/*) echo "sanity: SANITY_STAGE must be outside $ROOT (ansible-test would skip every file)" >&2; exit 2 ;;
esac
mkdir -p "$STAGE/ansible_collections/k8s_ai/conformance" "$STAGE/ansible_collections/kubernetes"
git ls-files -co --exclude-standard -z \
  | tar --null --ignore-failed-read -T - -cf - \
  | tar -xf - -C "$STAGE/ansible_collections/k8s_ai/conformance"
cp -a "$ROOT/.tools/collections/ansible_collections/kubernetes/core" "$STAGE/ansible_collections/kubernetes/core"
cd "$STAGE/ansible_collections/k8s_ai/conformance"
# The stage has no .git, so ansible-test lists the staged files itself: all of them are sources.
export PATH="$ROOT/.venv/bin:$PATH"
ansible-test sanity --python 3.11 --local --color no "$@"
