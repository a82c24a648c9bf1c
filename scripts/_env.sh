# Sourced by the scripts: a virtualenv in .venv with the project installed (editable) and its extras.
# PYTHON picks the interpreter (default: python3, which must be 3.10 or newer).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root for: $*" >&2; return 1; fi; }

ensure_venv() { # extras, e.g. "dev,postgres,mysql"
  local py=${PYTHON:-python3} extras=$1 stamp
  if ! command -v "$py" >/dev/null || ! "$py" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 10)' 2>/dev/null; then
    echo "[setup] installing python3 and venv with apt-get" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip >/dev/null
    py=python3
  fi
  stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)-$extras"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV" >&2
    "$py" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ]; then
    echo "[setup] installing the project with [$extras] (a minute on a new machine)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$extras]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

load_services_env() {
  # shellcheck disable=SC1091
  [ -f "$ROOT/var/services.env" ] && . "$ROOT/var/services.env"
  return 0
}
