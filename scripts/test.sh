#!/usr/bin/env bash
# The whole test suite: lint and types, unit and CLI tests, integration tests on SQLite, PostgreSQL and
# MariaDB against the real RabbitMQ, side by side with 3.2.1 (tests/compat), then the fault-injection suite,
# then the tests that need a three-node RabbitMQ cluster (tests marked `cluster`, in a stage of their own).
# Starts (or installs) what it needs.
#
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh -k relay        extra arguments go to every pytest run
#   OUTBOX_DBS="sqlite postgres" bash scripts/test.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/_env.sh
. "$HERE/_env.sh"
cd "$ROOT" || exit 1

ensure_venv "dev" || exit 1
bash "$HERE/services.sh" up || exit 1
load_services_env
export PYTHONDONTWRITEBYTECODE=1

mkdir -p var/junit
rm -f var/junit/*.xml
failed=0
stage() { # name, then the command
  local name=$1; shift
  printf '\n=== %s ===\n' "$name"
  "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "($name: no tests collected)"; rc=0; fi
  [ $rc -eq 0 ] || { echo "!!! $name failed (exit $rc)"; failed=1; }
}

stage "ruff" ruff check src tests bench
stage "ruff format" ruff format --check --quiet src tests bench
stage "mypy" mypy

pytest_run() { # db, junit name, paths...
  local db=$1 name=$2; shift 2
  OUTBOX_TEST_DB=$db OUTBOX_TEST_DB_NAME="outbox_ci" python -m pytest -q -p no:randomly \
    --junitxml="var/junit/$name.xml" "$@" ${PYTEST_ARGS:-}
}

existing() { for p in "$@"; do [ -e "$p" ] && echo "$p"; done; }
# shellcheck disable=SC2046
stage "unit + cli (sqlite)" pytest_run sqlite unit $(existing tests/unit tests/cli) "$@"
for db in ${OUTBOX_DBS:-sqlite postgres mysql}; do
  stage "integration ($db)" pytest_run "$db" "integration-$db" tests/integration "$@"
done
# Existing users' lock files pin stomp.py 8.x (3.2.1 required <9): the broker integration tests run once more
# with it (only stomp.py differs; the databases are covered above).
stomp8_stage() {
  [ -x .venv-stomp8/bin/python ] || python -m venv .venv-stomp8 || return 1
  .venv-stomp8/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 'stomp-py==8.2.*' >/dev/null || return 1
  echo "stomp.py $(.venv-stomp8/bin/python -c 'import stomp; print(stomp.__version__)')"
  OUTBOX_TEST_DB=postgres OUTBOX_TEST_DB_NAME="outbox_stomp8" .venv-stomp8/bin/python -m pytest -q -p no:randomly \
    --junitxml="var/junit/integration-stomp8-postgres.xml" -m broker tests/integration "$@" ${PYTEST_ARGS:-}
}
stage "integration with stomp.py 8.2 (postgres)" stomp8_stage "$@"
# The newest Django needs the newest Python: where a Python >= 3.12 is at hand (OUTBOX_NEWEST_PYTHON, or the
# newest pyenv version), the unit and SQLite integration tests run once more in .venv-newest with it.
newest_python() {
  if [ -n "${OUTBOX_NEWEST_PYTHON:-}" ]; then echo "$OUTBOX_NEWEST_PYTHON"; return; fi
  command -v pyenv >/dev/null || return 0
  local v
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])\.[0-9]+$' | sort -V | tail -n 1)
  [ -n "$v" ] && echo "$(pyenv root)/versions/$v/bin/python3"
  return 0
}
NEWEST=$(newest_python)
if [ -n "$NEWEST" ] && [ "${OUTBOX_SKIP_NEWEST:-}" != 1 ] && "$NEWEST" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
  newest_stage() {
    [ -x .venv-newest/bin/python ] || "$NEWEST" -m venv .venv-newest || return 1
    .venv-newest/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" >/dev/null || return 1
    echo "Python $(.venv-newest/bin/python -c 'import sys; print(sys.version.split()[0])'), Django $(.venv-newest/bin/python -m django --version)"
    OUTBOX_TEST_DB=sqlite OUTBOX_TEST_DB_NAME="outbox_newest" .venv-newest/bin/python -m pytest -q \
      --junitxml="var/junit/newest-django-sqlite.xml" tests/unit tests/integration "$@" ${PYTEST_ARGS:-}
  }
  stage "newest Python and Django (sqlite)" newest_stage "$@"
else
  echo "(no Python >= 3.12 here: the newest-Django stage is skipped; this run tests $(python -m django --version))"
fi
# django-outbox-pattern 3.2.1 side by side with this project (tests/compat): 3.2.1 runs in its own venv
# (.venv-321, made once from the package index) against the same PostgreSQL and RabbitMQ. Without the
# index the stage is skipped locally and fails under CI.
compat_stage() {
  if ! .venv-321/bin/python -c 'import django_outbox_pattern, psycopg' 2>/dev/null; then
    echo "[setup] creating .venv-321 with django-outbox-pattern==3.2.1" >&2
    rm -rf .venv-321
    if ! { "${PYTHON:-python3}" -m venv .venv-321 && .venv-321/bin/python -m pip install -q \
      --disable-pip-version-check "django-outbox-pattern==3.2.1" "psycopg[binary]>=3.1"; }; then
      rm -rf .venv-321
      if [ -n "${CI:-}" ]; then echo "could not create .venv-321 (django-outbox-pattern 3.2.1)" >&2; return 1; fi
      echo "(could not create .venv-321 with django-outbox-pattern 3.2.1: the compat stage is skipped)"
      return 0
    fi
  fi
  OUTBOX_COMPAT_PYTHON="$ROOT/.venv-321/bin/python" pytest_run postgres compat-postgres tests/compat "$@"
}
stage "compat with 3.2.1 (postgres)" compat_stage "$@"
if [ -d tests/faults ]; then
  stage "faults (postgres)" pytest_run postgres faults -m "not cluster" tests/faults "$@"
  # Three private RabbitMQ nodes started by the tests' own fixture (~20 s), then nodes frozen and killed.
  stage "cluster (postgres)" pytest_run postgres cluster -m cluster tests/faults "$@"
fi

if [ $failed -ne 0 ]; then echo "SOME STAGES FAILED (see !!! lines above)"; else echo "ALL STAGES PASSED"; fi
python - <<'EOF'
import glob, xml.etree.ElementTree as ET
total = {"passed": 0, "failed": 0, "skipped": 0}
print("\n=== summary ===")
for path in sorted(glob.glob("var/junit/*.xml")):
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests, fail, err, skip = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    passed = tests - fail - err - skip
    total["passed"] += passed; total["failed"] += fail + err; total["skipped"] += skip
    print(f"{path.split('/')[-1][:-4]:>22}: {passed} passed, {fail + err} failed, {skip} skipped")
print(f"\ntotal: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
EOF
exit $failed
