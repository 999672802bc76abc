#!/usr/bin/env bash
# `make changelog`: check the changelog fragments and write CHANGELOG.rst from them with antsibull-changelog.
#
#   hack/changelog.sh [OUTPUT]   (default OUTPUT: CHANGELOG.rst at the root)
#
# CHANGELOG.rst holds the released versions (changelogs/changelog.yaml) and, while the version in galaxy.yml is
# not released yet, that version's notes made from changelogs/fragments/: `antsibull-changelog release` runs on
# a temporary copy of the project, so changelog.yaml and the fragments stay as they are. Cutting the release
# itself is `antsibull-changelog release` at the root (it folds the fragments into changelogs/changelog.yaml and
# removes them), then this script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
# kubernetes.core (its doc fragments document our modules) as hack/setup.sh installed it
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.tools/collections"
unset ANSIBLE_CONFIG
OUTPUT="$(realpath -m "${1:-$ROOT/CHANGELOG.rst}")"

antsibull-changelog lint

version="$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"
released="$(python -c 'import sys, yaml; d = yaml.safe_load(open("changelogs/changelog.yaml")) or {}; print("yes" if sys.argv[1] in (d.get("releases") or {}) else "no")' "$version")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# antsibull-changelog finds the collection's plugins through ansible-doc, so the copy sits where Ansible looks.
copy="$tmp/ansible_collections/k8s_ai/conformance"
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion 2>/dev/null | tar -xf - -C "$copy"
(
  cd "$copy"
  if [ "$released" = yes ]; then
    antsibull-changelog generate
  else
    antsibull-changelog release --version "$version"
  fi
)
cp "$copy/CHANGELOG.rst" "$OUTPUT"
if [ "$released" = yes ]; then
  echo "changelog: wrote $OUTPUT (the released versions)"
else
  echo "changelog: wrote $OUTPUT (the released versions and the unreleased $version from changelogs/fragments)"
fi
