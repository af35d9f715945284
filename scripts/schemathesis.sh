#!/usr/bin/env bash
# Fuzzes the running server against its own /openapi.json with schemathesis, once as a
# superadmin and once as a plain user, with every check. Exits non-zero on any failure.
#
#   scripts/schemathesis.sh            # bounded run (SCHEMATHESIS_MAX_EXAMPLES, default 25)
#
# It brings up Postgres/NATS (scripts/dev-env.sh), serves a fresh database on a free port,
# and installs schemathesis into a venv under .dev/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
SEED="${SCHEMATHESIS_SEED:-1}"
VENV="$ROOT/.dev/schemathesis-venv"
REPORTS="$ROOT/.dev/schemathesis"

log() { printf '[schemathesis] %s\n' "$*" >&2; }

# --- schemathesis in its own venv ------------------------------------------------------------
if [[ ! -x "$VENV/bin/schemathesis" ]] ||
   [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != *"$SCHEMATHESIS_VERSION"* ]]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- a fresh database and a server on a free port --------------------------------------------
cargo build -q --bin fleetstream
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/fleetstream"
db="fleetstream_schemathesis"
admin_url="${DATABASE_URL%/*}/postgres"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
mkdir -p "$REPORTS"
admin_email="superadmin@schemathesis.test"
admin_password="superadmin-password"
DATABASE_URL="${DATABASE_URL%/*}/$db" FLEET_HTTP_ADDR="127.0.0.1:$port" FLEET_ACCESS_TTL_SECS=3600 \
  FLEET_ADMIN_EMAIL="$admin_email" FLEET_ADMIN_PASSWORD="$admin_password" \
  RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve >"$REPORTS/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { log "server exited; see $REPORTS/server.log"; exit 1; }
  sleep 0.2
done

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
post() { curl -fsS -H 'content-type: application/json' "${@:3}" -d "$2" "$base$1"; }
login() { post /api/v1/auth/login "{\"email\": \"$1\", \"password\": \"$2\"}" | json_field "${3:-access_token}"; }
# The identities the runs act as get ids far from the small ones schemathesis tries, so
# `DELETE /api/v1/users/{id}` and friends exercise other accounts rather than the caller.
psql "${DATABASE_URL%/*}/$db" -qtAc "SELECT setval('account_id_seq', 900000000)" >/dev/null
boot_token="$(login "$admin_email" "$admin_password")"
post /api/v1/users '{"email": "root@schemathesis.test", "password": "root-password", "role": "superadmin"}' \
  -H "authorization: Bearer $boot_token" -o /dev/null
post /api/v1/auth/register '{"email": "user@schemathesis.test", "password": "user-password"}' -o /dev/null
psql "${DATABASE_URL%/*}/$db" -qtAc "SELECT setval('account_id_seq', 1000)" >/dev/null

# Something for the operations to find: a device (with an owner) and a paired real user.
admin_token="$(login root@schemathesis.test root-password)"
user_token="$(login user@schemathesis.test user-password)"
post /api/v1/devices '{"device_uid": "st-device-1", "name": "Sensor 1", "serial_code": "ST000001",
  "mac_id": "AA:BB:CC:DD:41:AD"}' -H "authorization: Bearer $admin_token" -o /dev/null
post /api/v1/lux/user/create-real-user '{"first_name": "Kid", "last_name": "Kim",
  "birthdate": "20200101", "gender": "F", "serial_code": "ST000001", "mac_id": "41AD"}' \
  -H "authorization: Bearer $user_token" -o /dev/null

# A phone-validation token for the nueyne sign-up (the SMS code is read from the outbox).
phone="+821055500001"
post /api/v1/lux/auth/send-sms-auth "{\"phone\": \"$phone\"}" >/dev/null
code="$(psql "${DATABASE_URL%/*}/$db" -tAc \
  "SELECT code FROM outbound_messages WHERE recipient = '$phone' ORDER BY id DESC LIMIT 1")"
export FLEET_ST_PHONE
FLEET_ST_PHONE="$(post /api/v1/lux/auth/phone-number-validation \
  "{\"phone\": \"$phone\", \"validnum\": \"$code\"}" | json_field valid_token)"

# Withdrawing the caller's own account ends what its token can do, so that one operation runs
# after all the others. The stateful phase follows links from `users/me` to `users/{id}` and
# may delete or deactivate the caller, so it runs after the per-operation phases.
LAST_OP="delete_api_v1_app_user_root_user"

# Tokens are taken up front: the runs change their own accounts' emails and passwords.
declare -A access refresh
for who in superadmin user; do
  [[ $who == superadmin ]] && creds=(root@schemathesis.test root-password) ||
    creds=(user@schemathesis.test user-password)
  access[$who]="$(login "${creds[@]}")"
  refresh[$who]="$(login "${creds[@]}" refresh_token)"
done

run() {
  local who="$1" part="$2"
  export FLEET_ST_ACCESS="${access[$who]}" FLEET_ST_REFRESH="${refresh[$who]}"
  local select
  case "$part" in
    main) select=(--exclude-operation-id "$LAST_OP" --phases examples,coverage,fuzzing) ;;
    stateful) select=(--exclude-operation-id "$LAST_OP" --phases stateful) ;;
    last) select=(--include-operation-id "$LAST_OP") ;;
  esac
  log "run as $who, $part ($MAX_EXAMPLES examples per operation)"
  # The summary line ("N passed, M failed in Xs") is schemathesis' last line.
  "$VENV/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml \
    run "$base/openapi.json" "${select[@]}" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --report junit --report-junit-path "$REPORTS/$who-$part.junit.xml" \
    ${SCHEMATHESIS_ARGS:-} 2>&1 | tee "$REPORTS/$who-$part.log" | tail -n 1
  return "${PIPESTATUS[0]}"
}

status=0
# The plain user goes first: the superadmin's runs may delete or change any other account.
for who in user superadmin; do
  for part in main stateful last; do
    run "$who" "$part" || status=1
  done
done
if [[ $status -ne 0 ]]; then
  log "failures: see $REPORTS/*.log"
fi
exit $status
