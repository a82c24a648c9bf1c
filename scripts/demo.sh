#!/usr/bin/env bash
# The main job, end to end: decorated models -> SQLite outbox -> relay -> RabbitMQ -> consumer -> inbox.
# Installs what is missing (Python venv, RabbitMQ with STOMP) and stops only what it started itself.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/_env.sh
. "$HERE/_env.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

ensure_venv "dev"
bash "$HERE/services.sh" up rabbitmq
load_services_env

cd "$ROOT/demo"
mkdir -p var
rm -f var/demo.sqlite3 var/consumer.log
export DJANGO_SETTINGS_MODULE=demo_project.settings
export PYTHONPATH="$ROOT/demo${PYTHONPATH:+:$PYTHONPATH}"
QUEUE="demo_orders_$$"

say "1. migrate a fresh SQLite database"
python manage.py migrate -v0
echo "ok"

say "2. start the consumer (callback shop.callbacks.ship, queue $QUEUE)"
outboxctl -v subscribe shop.callbacks.ship /topic/orders.created "$QUEUE" >var/consumer.log 2>&1 &
CONSUMER=$!
cleanup() { kill -TERM "$CONSUMER" 2>/dev/null || true; wait "$CONSUMER" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do  # the queue must be bound before publishing to a /topic
  grep -q "from queue" var/consumer.log 2>/dev/null && break
  kill -0 "$CONSUMER" 2>/dev/null || { cat var/consumer.log; exit 1; }
  sleep 0.1
done
grep -q "from queue" var/consumer.log || { echo "consumer did not subscribe:"; cat var/consumer.log; exit 1; }
echo "consumer running (pid $CONSUMER)"

say "3. save 5 orders: each save writes its outbox row in the same transaction"
python manage.py place_orders 5
outboxctl inspect

say "4. relay the outbox to RabbitMQ (each row marked published only after the broker's receipt)"
outboxctl publish --until-empty

say "5. wait for the consumer to process them into the inbox"
for _ in $(seq 1 100); do
  n=$(python -c "import django; django.setup(); from shop.models import Shipment; print(Shipment.objects.count())")
  [ "$n" -ge 5 ] && break
  sleep 0.1
done
echo "shipments recorded: $n"

say "6. what arrived"
outboxctl inspect --inbox
python -c "
import django; django.setup()
from shop.models import Shipment
for s in Shipment.objects.order_by('order_number'): print(f'  shipped {s.order_number} to {s.customer}')
"

say "7. stop the consumer gracefully (SIGTERM)"
kill -TERM "$CONSUMER"
wait "$CONSUMER" && echo "consumer exited 0"
trap - EXIT
/usr/sbin/rabbitmqctl -q delete_queue "$QUEUE" >/dev/null 2>&1 || true
/usr/sbin/rabbitmqctl -q delete_queue "DLQ.$QUEUE" >/dev/null 2>&1 || true
say "8. the operator's tools on the demo data (dry runs change nothing)"
outboxctl check
outboxctl replay --all --dry-run
outboxctl purge --older-than 0s --dry-run

[ "$n" -ge 5 ] && say "demo finished: 5 orders saved, relayed, consumed exactly once"
