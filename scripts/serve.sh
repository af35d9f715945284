#!/usr/bin/env bash
# Runs the server: brings up Postgres and NATS when missing, migrates, serves on FLEET_HTTP_ADDR.
# For this local dev run, a superadmin is made on first start unless FLEET_ADMIN_EMAIL is set:
# its password is generated once and kept in .dev/admin_password.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh

say() { printf '[serve] %s\n' "$*" >&2; }

if [[ -z "${FLEET_ADMIN_EMAIL:-}" ]]; then
  [[ -s .dev/admin_password ]] || { head -c 18 /dev/urandom | base64 | tr -d '\n/+=' > .dev/admin_password; chmod 600 .dev/admin_password; }
  export FLEET_ADMIN_EMAIL="admin@fleetstream.local"
  FLEET_ADMIN_PASSWORD="$(cat .dev/admin_password)"
  export FLEET_ADMIN_PASSWORD
  say "dev superadmin: $FLEET_ADMIN_EMAIL, password in $(pwd)/.dev/admin_password (created at first start)"
fi

binary="${CARGO_TARGET_DIR:-target}/release/fleetstream"
if [[ ! -x "$binary" ]]; then
  say "first run: building the release binary; this takes about 5 minutes (later runs start in seconds)"
else
  say "building the release binary (only what changed)"
fi
cargo build --release --bin fleetstream
exec "$binary" serve "$@"
