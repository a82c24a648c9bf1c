#!/usr/bin/env bash
# Make the services the project needs available on loopback, or stop the ones this script started.
#
#   bash scripts/services.sh up [rabbitmq] [postgres] [mariadb]   (default: all three)
#   bash scripts/services.sh down                                  (stops only what `up` started)
#   bash scripts/services.sh status
#   bash scripts/services.sh cluster up|down                      (three private RabbitMQ nodes, one cluster)
#
# `up` reuses a service that already runs (enabling RabbitMQ's STOMP and management plugins on a running
# node; the management HTTP API on 15672 lets the relay check that destinations route), and on a
# fresh Debian machine installs it with apt-get and starts it. Every wait is bounded. It writes the
# connection settings that worked to var/services.env, which scripts/test.sh and scripts/demo.sh read.
# `cluster up` starts three private RabbitMQ nodes on loopback (their own names, ports and data; the machine's
# own RabbitMQ on 5672/61613 is not touched), each with STOMP on its own port, joined as one cluster, and
# writes OUTBOX_CLUSTER_STOMP and OUTBOX_CLUSTER_NODES; `cluster down` stops exactly those nodes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$ROOT/var"
mkdir -p "$STATE"
ENV_FILE="$STATE/services.env"
STARTED="$STATE/started"
touch "$STARTED"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds
  local end=$((SECONDS + $2))
  until port_open "$1"; do [ $SECONDS -lt $end ] || return 1; sleep 0.5; done
}
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { log "apt-get update"; as_root apt-get update -qq; apt_updated=1; }
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
mark_started() { grep -qx "$1" "$STARTED" || echo "$1" >>"$STARTED"; }
unset_env() { # KEY
  [ -f "$ENV_FILE" ] || return 0
  grep -v "^export $1=" "$ENV_FILE" >"$ENV_FILE.tmp" || true
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}
set_env() { # KEY VALUE
  touch "$ENV_FILE"
  grep -v "^export $1=" "$ENV_FILE" >"$ENV_FILE.tmp" || true
  echo "export $1='$2'" >>"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

RABBITMQCTL=/usr/sbin/rabbitmqctl
RABBIT_PID=/var/lib/rabbitmq/outbox-services.pid  # written by the rabbitmq user
# The node is named after the host; where that name does not resolve (containers, chroots) the CLI tools
# cannot reach the node, so use rabbit@localhost unless the machine chose a node name itself.
if [ -z "${RABBITMQ_NODENAME:-}" ] && ! getent hosts "$(hostname)" >/dev/null 2>&1 \
   && ! grep -qs '^NODENAME' /etc/rabbitmq/rabbitmq-env.conf; then
  export RABBITMQ_NODENAME=rabbit@localhost
fi

rabbit_running() { [ -x "$RABBITMQCTL" ] && port_open 5672 && timeout 30 "$RABBITMQCTL" -q status >/dev/null 2>&1; }

rabbitmq_up() {
  [ -x "$RABBITMQCTL" ] || apt_install rabbitmq-server
  if rabbit_running; then
    log "RabbitMQ already runs; enabling the STOMP and management plugins"
    timeout 60 /usr/sbin/rabbitmq-plugins -q enable rabbitmq_stomp rabbitmq_management >/dev/null
  else
    log "starting RabbitMQ"
    timeout 60 /usr/sbin/rabbitmq-plugins -q --offline enable rabbitmq_stomp rabbitmq_management >/dev/null 2>&1 \
      || echo '[rabbitmq_management,rabbitmq_stomp].' | as_root tee /etc/rabbitmq/enabled_plugins >/dev/null
    as_root env RABBITMQ_PID_FILE="$RABBIT_PID" /usr/sbin/rabbitmq-server -detached
    mark_started rabbitmq
    timeout 100 "$RABBITMQCTL" wait --timeout 90 "$RABBIT_PID" >/dev/null || die "RabbitMQ did not start (see /var/log/rabbitmq)"
  fi
  wait_port 61613 60 || die "RabbitMQ runs but nothing listens on 61613: is rabbitmq_stomp enabled?"
  # A real STOMP CONNECT, not just an open port.
  local end=$((SECONDS + 30))
  until printf 'CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0' \
      | timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/61613; cat >&3; head -c 9 <&3' 2>/dev/null | grep -q CONNECTED; do
    [ $SECONDS -lt $end ] || die "RabbitMQ STOMP on 61613 does not answer CONNECT"
    sleep 0.5
  done
  set_env OUTBOX_STOMP_PORT 61613
  log "RabbitMQ STOMP ready on 127.0.0.1:61613"
  # The management API (routing checks): optional, so a slow start only warns.
  if wait_port 15672 30; then
    set_env OUTBOX_RABBITMQ_MANAGEMENT_URL http://127.0.0.1:15672
    log "RabbitMQ management API ready on 127.0.0.1:15672"
  else
    log "warning: the RabbitMQ management API does not listen on 15672 (routing-check tests will skip)"
  fi
}

pg_try() { # password
  PGPASSWORD="$1" PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

postgres_up() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local port=5432 version
  if ! port_open 5432; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster (pg_createcluster)"
    # The cluster's own port (5432 unless that was taken when it was created).
    port=$(pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1==v && $2=="main" {print $3; exit}')
    port=${port:-5432}
    if ! port_open "$port"; then
      log "starting PostgreSQL $version on port $port"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
      mark_started "postgres:$version"
      wait_port "$port" 60 || die "PostgreSQL did not start (see /var/log/postgresql)"
    fi
  fi
  local end=$((SECONDS + 30))
  until pg_isready -q -h 127.0.0.1 -p "$port"; do [ $SECONDS -lt $end ] || die "PostgreSQL not ready"; sleep 0.5; done
  export PGPORT=$port
  if ! pg_try "${OUTBOX_PG_PASSWORD:-postgres}"; then
    log "giving the postgres role a password for TCP logins"
    as_root runuser -u postgres -- psql -p "$port" -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
    pg_try postgres || die "cannot log in to PostgreSQL as postgres over TCP"
  fi
  set_env OUTBOX_PG_PASSWORD "${OUTBOX_PG_PASSWORD:-postgres}"
  set_env OUTBOX_PG_PORT "$port"
  log "PostgreSQL ready on 127.0.0.1:$port"
}

my_try() { # user password
  MYSQL_PWD="$2" timeout 10 mariadb -h 127.0.0.1 -P 3306 -u "$1" -e 'select 1' >/dev/null 2>&1
}

mariadb_up() {
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
  if ! port_open 3306; then
    log "starting MariaDB"
    as_root install -d -o mysql -g mysql /run/mysqld
    as_root start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$STATE/mariadb.pid" \
      --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
    mark_started mariadb
    wait_port 3306 60 || die "MariaDB did not start (see /var/log/mysql)"
  fi
  if my_try root ""; then
    set_env OUTBOX_MYSQL_USER root; set_env OUTBOX_MYSQL_PASSWORD ""
  else
    my_try outbox outbox || {
      log "creating MariaDB user outbox for TCP logins"
      as_root mariadb -uroot -e "CREATE USER IF NOT EXISTS 'outbox'@'127.0.0.1' IDENTIFIED BY 'outbox';
        CREATE USER IF NOT EXISTS 'outbox'@'localhost' IDENTIFIED BY 'outbox';
        GRANT ALL PRIVILEGES ON *.* TO 'outbox'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'outbox'@'localhost';"
    }
    my_try outbox outbox || die "cannot log in to MariaDB over TCP"
    set_env OUTBOX_MYSQL_USER outbox; set_env OUTBOX_MYSQL_PASSWORD outbox
  fi
  log "MariaDB ready on 127.0.0.1:3306"
}

CLUSTER_STATE="$STATE/cluster.json"
cluster_ctl() { # up|down|env: tests/support/rabbit_cluster.py (standard library only) as root
  (cd "$ROOT" && as_root env PYTHONDONTWRITEBYTECODE=1 python3 -m tests.support.rabbit_cluster "$1" --state "$CLUSTER_STATE")
}

cluster_up() {
  [ -x "$RABBITMQCTL" ] || apt_install rabbitmq-server
  command -v python3 >/dev/null || apt_install python3
  local out key value
  out=$(cluster_ctl up) || die "the RabbitMQ cluster did not start (logs in /var/lib/rabbitmq/outbox-test-outboxcluster-*/log)"
  while IFS='=' read -r key value; do
    [ -n "$key" ] && set_env "$key" "$value"
  done <<<"$out"
  log "RabbitMQ cluster ready: $(grep -o 'OUTBOX_CLUSTER_STOMP=.*' <<<"$out")"
}

cluster_down() {
  cluster_ctl down
  unset_env OUTBOX_CLUSTER_STOMP
  unset_env OUTBOX_CLUSTER_NODES
}

down() {
  while read -r what; do
    case "$what" in
      rabbitmq) log "stopping RabbitMQ"; timeout 60 "$RABBITMQCTL" -q stop "$RABBIT_PID" </dev/null >/dev/null 2>&1 || true ;;
      postgres:*) log "stopping PostgreSQL"; as_root pg_ctlcluster --skip-systemctl-redirect "${what#postgres:}" main stop </dev/null || true ;;
      mariadb) log "stopping MariaDB"; as_root start-stop-daemon --stop --oknodo --retry 30 --pidfile "$STATE/mariadb.pid" </dev/null || true ;;
    esac
  done <"$STARTED"
  : >"$STARTED"
}

status() {
  # shellcheck disable=SC1090
  [ -f "$ENV_FILE" ] && . "$ENV_FILE"
  for p in 5672:RabbitMQ 61613:STOMP "${OUTBOX_PG_PORT:-5432}:PostgreSQL" 3306:MariaDB; do
    if port_open "${p%%:*}"; then echo "${p#*:}: up"; else echo "${p#*:}: down"; fi
  done
  echo "started by this script: $(tr '\n' ' ' <"$STARTED")"
  if [ -f "$CLUSTER_STATE" ]; then echo "cluster: ${OUTBOX_CLUSTER_NODES:-?} (STOMP ${OUTBOX_CLUSTER_STOMP:-?})"; fi
}

cmd=${1:-up}
shift || true
case "$cmd" in
  up)
    [ $# -gt 0 ] || set -- rabbitmq postgres mariadb
    for s in "$@"; do
      case "$s" in
        rabbitmq) rabbitmq_up ;; postgres) postgres_up ;; mariadb|mysql) mariadb_up ;;
        *) die "unknown service $s (rabbitmq, postgres, mariadb)" ;;
      esac
    done ;;
  down) down ;;
  status) status ;;
  cluster)
    case "${1:-up}" in
      up) cluster_up ;; down) cluster_down ;;
      *) die "usage: $0 cluster up|down" ;;
    esac ;;
  *) die "usage: $0 up [rabbitmq] [postgres] [mariadb] | down | status | cluster up|down" ;;
esac
