#!/usr/bin/env bash
# The benchmark suite (issue 6): starts the services it needs, runs every scenario, prints a table and
# writes bench/results/latest.json. Arguments go to `python -m bench` (see docs/bench.md):
#
#   bash scripts/bench.sh                 full run (under 15 minutes on 2 cores)
#   bash scripts/bench.sh --quick         reduced counts (under 2 minutes)
#   bash scripts/bench.sh --only relay --db postgres --json /tmp/relay.json
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/_env.sh
. "$HERE/_env.sh"
cd "$ROOT"

ensure_venv "dev"
bash "$HERE/services.sh" up
load_services_env
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec python -m bench "$@"
