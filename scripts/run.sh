#!/usr/bin/env bash
# Start every process of the assistant on localhost and print the URLs.
# Ctrl-C stops all of them. Called by `make run` after install and training.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${PROFILE:-embedded}" = "production" ]; then exec bash scripts/run_production.sh "$@"; fi
PY=.venv/bin/python
RASA_PORT=${RASA_PORT:-5005}
ACTION_PORT=${ACTION_PORT:-5055}
mkdir -p var/log
MODEL=$($PY scripts/model.py)

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping ..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped."
}
trap stop INT TERM EXIT

SANIC_HOST=127.0.0.1 $PY -m rasa_sdk --actions bot.actions -p "$ACTION_PORT" \
  --cors "http://127.0.0.1:$RASA_PORT" >var/log/actions.log 2>&1 &
pids+=($!)
$PY -m rasa run --model "$MODEL" -i 127.0.0.1 -p "$RASA_PORT" \
  --endpoints endpoints.yml --credentials credentials.yml \
  --cors "http://localhost:$RASA_PORT" "http://127.0.0.1:$RASA_PORT" >var/log/rasa.log 2>&1 &
pids+=($!)
# Delivers cases to remote case systems (ZGW, Signalen) from the outbox.
$PY -m bot.outbox >var/log/outbox.log 2>&1 &
pids+=($!)

echo "Starting (model $MODEL) ..."
for _ in $(seq 1 120); do
  if curl -fs "http://127.0.0.1:$RASA_PORT/" >/dev/null && curl -fs "http://127.0.0.1:$ACTION_PORT/health" >/dev/null; then
    break
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "A process stopped; see var/log/"; tail -20 var/log/*.log; exit 1; }
  done
  sleep 1
done
cat <<MSG

The assistant is running (logs in var/log/):
  Rasa server      http://127.0.0.1:$RASA_PORT/
  REST channel     http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook
  Website chat     http://127.0.0.1:$RASA_PORT/demo   (demo page with the chat widget)
  Hulpplein        http://127.0.0.1:$RASA_PORT/hulpplein
  KCC console      http://127.0.0.1:$RASA_PORT/kcc   (accounts: python -m bot.kcc add-user NAAM --role kcc)
  Insights         http://127.0.0.1:$RASA_PORT/inzichten   (role redactie or manager)
  Action server    http://127.0.0.1:$ACTION_PORT/health
  Delivery worker  python -m bot.outbox (log var/log/outbox.log)

Try:  curl -s -XPOST http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{"sender":"demo","message":"wat kost een paspoort"}'
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "A process stopped unexpectedly; see var/log/."
