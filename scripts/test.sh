#!/usr/bin/env bash
# Runs the whole test suite against real Postgres and NATS (brought up when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh
# sqlx::test creates one database per test next to this URL's database.
export DATABASE_URL
exec cargo test --workspace "$@"
