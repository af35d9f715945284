#!/usr/bin/env bash
# Checks GET /docs in a real headless browser (Debian's chromium): the page renders Swagger UI
# from the binary's own assets, with every host but the server unreachable, and lists every
# operation of /openapi.json. Installs chromium with apt-get when root and missing.
#   scripts/docs-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh

log() { printf '[docs-check] %s\n' "$*" >&2; }

if ! command -v chromium >/dev/null; then
  [[ "$(id -u)" == "0" ]] || { log "chromium is missing: apt-get install chromium"; exit 1; }
  log "installing chromium with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo build -q --bin fleetstream
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/fleetstream"
db="fleetstream_docs_check"
admin_url="${DATABASE_URL%/*}/postgres"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
out="$ROOT/.dev/docs-check"
mkdir -p "$out"
DATABASE_URL="${DATABASE_URL%/*}/$db" FLEET_HTTP_ADDR="127.0.0.1:$port" RUST_LOG=warn \
  "$BIN" serve >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { log "server exited; see $out/server.log"; exit 1; }
  sleep 0.2
done

expected="$(curl -fsS "$base/openapi.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
print(sum(1 for item in doc["paths"].values() for m in item if m in methods))')"

# Every name resolves to nothing but the server's address: a CDN fetch would fail the page.
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --virtual-time-budget=15000 --window-size=1280,4000 \
  --dump-dom "$base/docs" >"$out/docs.html" 2>"$out/chromium.log"
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --virtual-time-budget=15000 --window-size=1280,4000 \
  --screenshot="$out/docs.png" "$base/docs" >/dev/null 2>&1 || true

rendered="$(grep -o 'class="opblock opblock-[a-z]*' "$out/docs.html" | wc -l || true)"
title="$(grep -o 'class="title">[^<]*' "$out/docs.html" | head -1 | sed 's/.*>//' || true)"
log "page title: ${title:-<none>}; operations listed: $rendered of $expected"
[[ "$title" == fleetstream* ]] || { log "Swagger UI did not render the document; see $out/docs.html"; exit 1; }
[[ "$rendered" -eq "$expected" ]] || { log "not every operation is listed; see $out/docs.html"; exit 1; }
echo "docs-check: /docs rendered offline in chromium with $rendered/$expected operations listed"
