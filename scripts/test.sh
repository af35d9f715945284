#!/usr/bin/env bash
# Runs the whole test suite against real Postgres and NATS (brought up when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh
# The MQTT ingest test publishes as a device would, with Debian's MQTT client.
command -v mosquitto_pub >/dev/null || apt_install mosquitto-clients
# sqlx::test creates one database per test next to this URL's database.
export DATABASE_URL
exec cargo test --workspace "$@"
