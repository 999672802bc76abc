#!/usr/bin/env bash
# ansible-test sanity, run from a staging copy: ansible-test resolves symlinks and insists that the
# collection's real files sit at <dir>/ansible_collections/k8s_ai/conformance, with kubernetes.core
# beside it. The copy holds exactly the tracked and not-ignored files (so .venv/ is never included).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAGE="${SANITY_STAGE:-$ROOT/.work/sanity}"
rm -rf "$STAGE"
mkdir -p "$STAGE/ansible_collections/k8s_ai/conformance" "$STAGE/ansible_collections/kubernetes"
git ls-files -co --exclude-standard -z \
  | tar --null --ignore-failed-read -T - -cf - \
  | tar -xf - -C "$STAGE/ansible_collections/k8s_ai/conformance"
cp -a "$ROOT/.tools/collections/ansible_collections/kubernetes/core" "$STAGE/ansible_collections/kubernetes/core"
cd "$STAGE/ansible_collections/k8s_ai/conformance"
# ansible-test needs a git-free tree to list files itself; tell it the staged files are the sources.
export PATH="$ROOT/.venv/bin:$PATH"
exec ansible-test sanity --python 3.11 --local --color no "$@"
