#!/usr/bin/env bash
# Runs the server: brings up Postgres and NATS when missing, migrates, serves on FLEET_HTTP_ADDR.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh
exec cargo run --release --bin fleetstream -- serve "$@"
