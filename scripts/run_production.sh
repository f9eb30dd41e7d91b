#!/usr/bin/env bash
# The production profile: Rasa on PostgreSQL (masking tracker store) and Redis
# (atomic lock store), the case store on PostgreSQL, logs masked.
#
#   scripts/run_production.sh            action server + RASA_INSTANCES Rasa servers, Ctrl-C stops all
#   scripts/run_production.sh rasa       one Rasa server in the foreground (containers, tests)
#   scripts/run_production.sh actions    the action server in the foreground
#   scripts/run_production.sh check      print the settings (secrets hidden) and stop
#   scripts/run_production.sh privacy purge --older-than 30d    python -m bot.privacy with these settings
#
# Settings come from the environment, optionally from an env file
# (PRODUCTION_ENV_FILE, default ./production.env when it exists; see
# deploy/production.env.example). Defaults below are for this machine's local
# PostgreSQL and Redis; every variable is documented in docs/deployment.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
COMMAND=${1:-all}

ENV_FILE=${PRODUCTION_ENV_FILE:-production.env}
if [ -f "$ENV_FILE" ]; then
  set -a; . "$ENV_FILE"; set +a
fi

export PYTHONPATH=${PYTHONPATH:-$ROOT}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export LOG_LEVEL=${LOG_LEVEL:-INFO}
export LOG_LEVEL_LIBRARIES=${LOG_LEVEL_LIBRARIES:-ERROR}

# Where the processes listen. The action server has no authentication: keep it
# on 127.0.0.1 (same host or pod) or on an internal network only.
RASA_HOST=${RASA_HOST:-127.0.0.1}
RASA_PORT=${RASA_PORT:-5005}
RASA_INSTANCES=${RASA_INSTANCES:-1}
ACTION_HOST=${ACTION_HOST:-127.0.0.1}
ACTION_PORT=${ACTION_PORT:-5055}
export ACTION_ENDPOINT_URL=${ACTION_ENDPOINT_URL:-http://127.0.0.1:$ACTION_PORT/webhook}
RASA_CREDENTIALS=${RASA_CREDENTIALS:-credentials.yml}
export RASA_ENDPOINTS=${RASA_ENDPOINTS:-endpoints.production.yml}

# Stores (endpoints.production.yml reads these).
export TRACKER_DB_HOST=${TRACKER_DB_HOST:-127.0.0.1}
export TRACKER_DB_PORT=${TRACKER_DB_PORT:-5432}
export TRACKER_DB_NAME=${TRACKER_DB_NAME:-test}
export TRACKER_DB_USER=${TRACKER_DB_USER:-postgres}
export TRACKER_DB_PASSWORD=${TRACKER_DB_PASSWORD:-}
export REDIS_HOST=${REDIS_HOST:-127.0.0.1}
export REDIS_PORT=${REDIS_PORT:-6379}
export REDIS_LOCK_DB=${REDIS_LOCK_DB:-1}
export REDIS_PASSWORD=${REDIS_PASSWORD:-}
export REDIS_USE_SSL=${REDIS_USE_SSL:-false}
export REDIS_KEY_PREFIX=${REDIS_KEY_PREFIX:-assistent}
export CASES_DB_URL=${CASES_DB_URL:-postgresql+psycopg2://$TRACKER_DB_USER@$TRACKER_DB_HOST:$TRACKER_DB_PORT/$TRACKER_DB_NAME}
# KCC live takeover across instances: Redis pub/sub (bot/kcc/hub.py), channel
# prefix <REDIS_KEY_PREFIX>:kcc: unless HANDOFF_HUB_PREFIX is set.
export HANDOFF_HUB=${HANDOFF_HUB:-redis}
# The demo page is for trying the widget, not for production.
export WEBCHAT_DEMO_PAGE=${WEBCHAT_DEMO_PAGE:-false}
# Rasa's Sanic refuses bigger request bodies with 413 (default 100 MB). A chat
# message is at most a few KB; long runs of punctuation are slow in the NLU
# pipeline. Not for the action server: Rasa sends it the whole tracker.
RASA_REQUEST_MAX_SIZE=${RASA_REQUEST_MAX_SIZE:-32768}
unset SANIC_REQUEST_MAX_SIZE

fail() { echo "run_production: $*" >&2; exit 2; }

if [ -z "${TRACKER_ENCRYPTION_KEYS:-}" ]; then
  if [ "${PRODUCTION_LOCAL_KEY:-1}" = "1" ] && [ "$COMMAND" != "check" ] && [ "$COMMAND" != "privacy" ]; then
    # Local convenience only: a key under var/ (mode 0600). In production the
    # key comes from the secret store, never from the disk next to the data.
    mkdir -p var
    [ -s var/tracker_key ] || (umask 077; $PY -m bot.privacy genkey > var/tracker_key)
    TRACKER_ENCRYPTION_KEYS=$(cat var/tracker_key)
    echo "run_production: TRACKER_ENCRYPTION_KEYS not set; using the local key in var/tracker_key" >&2
  elif [ "$COMMAND" != "check" ] && [ "$COMMAND" != "privacy" ]; then
    fail "TRACKER_ENCRYPTION_KEYS is not set (create one: .venv/bin/python -m bot.privacy genkey)"
  fi
fi
export TRACKER_ENCRYPTION_KEYS=${TRACKER_ENCRYPTION_KEYS:-}

if [ "$LOG_LEVEL" = "DEBUG" ] && [ "${PRIVACY_ALLOW_DEBUG_LOGS:-0}" != "1" ]; then
  fail "LOG_LEVEL=DEBUG logs whole messages (names cannot be masked). Set PRIVACY_ALLOW_DEBUG_LOGS=1 to allow it anyway."
fi

rasa_args() {
  local port=$1
  RASA_ARGS=(-m rasa run --model "$MODEL" -i "$RASA_HOST" -p "$port"
             --endpoints "$RASA_ENDPOINTS" --credentials "$RASA_CREDENTIALS"
             --logging-config-file deploy/logging.yml)
  if [ -n "${RASA_CORS_ORIGINS:-}" ]; then
    # Space or comma separated origins (scheme://host[:port]), never "*".
    local origins
    read -r -a origins <<< "${RASA_CORS_ORIGINS//,/ }"
    for origin in "${origins[@]}"; do [ "$origin" != "*" ] || fail "RASA_CORS_ORIGINS must not be *"; done
    RASA_ARGS+=(--cors "${origins[@]}")
  fi
  if [ "${RASA_ENABLE_API:-false}" = "true" ]; then
    if [ -n "${RASA_JWT_SECRET:-}" ]; then
      RASA_ARGS+=(--enable-api --jwt-secret "$RASA_JWT_SECRET" --jwt-method "${RASA_JWT_METHOD:-HS256}")
    elif [ -n "${RASA_AUTH_TOKEN:-}" ]; then
      [ ${#RASA_AUTH_TOKEN} -ge 32 ] || fail "RASA_AUTH_TOKEN must be at least 32 characters"
      RASA_ARGS+=(--enable-api --auth-token "$RASA_AUTH_TOKEN")
    else
      fail "RASA_ENABLE_API=true needs RASA_AUTH_TOKEN or RASA_JWT_SECRET"
    fi
  fi
}

run_actions() {
  # rasa-sdk 3.6 spells the option --logging-config_file.
  exec env SANIC_HOST="$ACTION_HOST" "$PY" -m rasa_sdk --actions bot.actions -p "$ACTION_PORT" \
    --logging-config_file deploy/logging.yml
}

model() {
  MODEL=${RASA_MODEL:-$($PY scripts/model.py)}
}

case "$COMMAND" in
  check)
    echo "Rasa ${RASA_HOST}:${RASA_PORT} x${RASA_INSTANCES}, actions ${ACTION_HOST}:${ACTION_PORT}"
    echo "Tracker store postgresql://${TRACKER_DB_USER}@${TRACKER_DB_HOST}:${TRACKER_DB_PORT}/${TRACKER_DB_NAME} schema=${POSTGRESQL_SCHEMA:-public}"
    echo "Lock store redis://${REDIS_HOST}:${REDIS_PORT}/${REDIS_LOCK_DB} prefix=${REDIS_KEY_PREFIX}; handoff hub ${HANDOFF_HUB}"
    if [[ $CASES_DB_URL == *@* ]]; then
      echo "Case store ${CASES_DB_URL%%://*}://***@${CASES_DB_URL#*@}"   # no user or password
    else
      echo "Case store $CASES_DB_URL"
    fi
    echo "Encryption key: $([ -n "$TRACKER_ENCRYPTION_KEYS" ] && echo set || echo MISSING)"
    echo "HTTP API: ${RASA_ENABLE_API:-false}; CORS: ${RASA_CORS_ORIGINS:-none}; log level ${LOG_LEVEL}"
    exit 0 ;;
  actions)
    run_actions ;;
  privacy)
    shift
    exec "$PY" -m bot.privacy --endpoints "$RASA_ENDPOINTS" "$@" ;;
  rasa)
    model; rasa_args "$RASA_PORT"
    exec env SANIC_REQUEST_MAX_SIZE="$RASA_REQUEST_MAX_SIZE" "$PY" "${RASA_ARGS[@]}" ;;
  all) ;;
  *) fail "unknown command $COMMAND (all, rasa, actions, check, privacy)" ;;
esac

# all: the action server and RASA_INSTANCES Rasa servers on consecutive ports.
mkdir -p var/log
model
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping ..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped."
}
trap stop INT TERM EXIT

(run_actions) >var/log/actions.log 2>&1 &
pids+=($!)
urls=()
for i in $(seq 0 $((RASA_INSTANCES - 1))); do
  port=$((RASA_PORT + i))
  rasa_args "$port"
  SANIC_REQUEST_MAX_SIZE="$RASA_REQUEST_MAX_SIZE" "$PY" "${RASA_ARGS[@]}" >"var/log/rasa-$port.log" 2>&1 &
  pids+=($!)
  urls+=("http://$RASA_HOST:$port")
done

echo "Starting the production profile (model $MODEL) ..."
for _ in $(seq 1 180); do
  up=1
  curl -fs "http://$ACTION_HOST:$ACTION_PORT/health" >/dev/null || up=0
  for url in "${urls[@]}"; do curl -fs "$url/" >/dev/null || up=0; done
  [ $up = 1 ] && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "A process stopped; see var/log/"; tail -20 var/log/*.log; exit 1; }
  done
  sleep 1
done
[ $up = 1 ] || { echo "Not up after 180 s; see var/log/"; exit 1; }
cat <<MSG

The assistant runs in the production profile (logs in var/log/, masked):
  Rasa servers     ${urls[*]}
  Action server    http://$ACTION_HOST:$ACTION_PORT/health (localhost only)
  Tracker store    PostgreSQL $TRACKER_DB_HOST:$TRACKER_DB_PORT/$TRACKER_DB_NAME (masked, answers encrypted)
  Lock store       Redis $REDIS_HOST:$REDIS_PORT db $REDIS_LOCK_DB
Put a load balancer in front of the Rasa servers; see docs/deployment.md.
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "A process stopped unexpectedly; see var/log/."
