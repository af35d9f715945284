# Sourced by scripts/serve.sh and scripts/test.sh. Brings up what is missing and exports
# DATABASE_URL, NATS_URL and FLEET_JWT_SECRET:
#   1. a URL that is set and answers is used as it is;
#   2. otherwise the default (127.0.0.1:5432 / 127.0.0.1:4222) is used when it answers;
#   3. otherwise, for a local address, a private instance is started on that port with its data
#      under .dev/ (installing postgresql / nats-server with apt-get first when root and missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.dev"
mkdir -p "$DEV"

log() { printf '[dev-env] %s\n' "$*" >&2; }

# host and port of a URL like scheme://user@host:port/db
url_host() { local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; echo "${rest%%:*}"; }
url_port() { local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; [[ "$rest" == *:* ]] && echo "${rest##*:}" || echo "$2"; }

answers() { timeout 2 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }

is_local() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]; }

apt_install() {
  if [[ "$(id -u)" != "0" ]]; then
    log "need $* but not root: install it (sudo apt-get install $*) and run again"; return 1
  fi
  log "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
    apt_install postgresql
    dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  echo "$dir"
}

as_postgres() {
  if [[ "$(id -u)" == "0" ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_private_postgres() {
  local port="$1" bin data="$DEV/pg"
  bin="$(pg_bin)"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "initialising a private Postgres in $data"
    mkdir -p "$data"
    [[ "$(id -u)" == "0" ]] && chown postgres:postgres "$data" && chmod 700 "$data"
    as_postgres "$bin/initdb" -D "$data" --auth=trust --username=postgres -E UTF8 >/dev/null
  fi
  log "starting a private Postgres on 127.0.0.1:$port"
  as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
}

start_private_nats() {
  local port="$1" conf="$DEV/nats.conf" mqtt_port="${FLEET_MQTT_PORT:-1883}"
  command -v nats-server >/dev/null || [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
  local bin; bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  mkdir -p "$DEV/nats"
  sed -e "s|listen: 127.0.0.1:4222|listen: 127.0.0.1:$port|" \
      -e "s|store_dir: \".dev/nats\"|store_dir: \"$DEV/nats\"|" \
      -e "s|listen: 127.0.0.1:1883|listen: 127.0.0.1:$mqtt_port|" "$ROOT/nats.conf" > "$conf"
  if answers 127.0.0.1 "$mqtt_port"; then
    # Another broker owns the MQTT port; run JetStream without the MQTT listener.
    log "MQTT port $mqtt_port is taken; starting NATS without MQTT (set FLEET_MQTT_PORT to choose another)"
    sed -i '/^mqtt {/,/^}/d' "$conf"
  fi
  log "starting a private nats-server on 127.0.0.1:$port"
  nohup "$bin" -c "$conf" -l "$DEV/nats-server.log" >/dev/null 2>&1 &
  echo $! > "$DEV/nats-server.pid"
  for _ in $(seq 1 50); do answers 127.0.0.1 "$port" && return 0; sleep 0.1; done
  log "nats-server did not come up; see $DEV/nats-server.log"; return 1
}

# --- Postgres -------------------------------------------------------------------------------
pg_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/fleetstream}"
pg_host="$(url_host "$pg_url")"; pg_port="$(url_port "$pg_url" 5432)"
if ! answers "$pg_host" "$pg_port"; then
  is_local "$pg_host" || { log "DATABASE_URL: $pg_host:$pg_port does not answer"; return 1; }
  start_private_postgres "$pg_port"
fi
export DATABASE_URL="$pg_url"
# Create the database when it is missing (the server's own; tests create their own per test).
db_name="${pg_url##*/}"; db_name="${db_name%%\?*}"
admin_url="${pg_url%/*}/postgres"
if command -v psql >/dev/null; then
  if ! psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" 2>/dev/null | grep -q 1; then
    psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null 2>&1 || true
  fi
fi

# --- NATS ----------------------------------------------------------------------------------
nats_url="${NATS_URL:-nats://127.0.0.1:4222}"
nats_host="$(url_host "$nats_url")"; nats_port="$(url_port "$nats_url" 4222)"
if ! answers "$nats_host" "$nats_port"; then
  is_local "$nats_host" || { log "NATS_URL: $nats_host:$nats_port does not answer"; return 1; }
  start_private_nats "$nats_port"
fi
export NATS_URL="$nats_url"

# --- secrets -------------------------------------------------------------------------------
if [[ -z "${FLEET_JWT_SECRET:-}" ]]; then
  [[ -s "$DEV/jwt_secret" ]] || head -c 48 /dev/urandom | base64 | tr -d '\n' > "$DEV/jwt_secret"
  FLEET_JWT_SECRET="$(cat "$DEV/jwt_secret")"
  export FLEET_JWT_SECRET
fi
if [[ -z "${FLEET_MASTER_KEY:-}" ]]; then
  [[ -s "$DEV/master_key" ]] || head -c 48 /dev/urandom | base64 | tr -d '\n' > "$DEV/master_key"
  FLEET_MASTER_KEY="$(cat "$DEV/master_key")"
  export FLEET_MASTER_KEY
fi

# --- Rust toolchain --------------------------------------------------------------------------
command -v cargo >/dev/null || { [[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"; }
command -v cargo >/dev/null || { log "cargo is missing: install Rust (rustup) first"; return 1; }
# The whole URL, the password (if any) masked.
log "DATABASE_URL=$(printf '%s' "$DATABASE_URL" | sed -E 's#^([a-z]+://[^:@/]+):[^@]*@#\1:***@#') NATS_URL=$NATS_URL"
