#!/usr/bin/env bash
# Refreshes the Swagger UI files served by /docs from the npm package swagger-ui-dist.
# Only the files the page needs (and the licences) are kept; they are compiled into the
# binary (src/docs.rs), so the page works offline and the build downloads nothing.
#   scripts/vendor-swagger-ui.sh [version]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-5.35.0}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
dest=assets/swagger-ui
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  cp "$tmp/package/$f" "$dest/$f"
done
echo "swagger-ui-dist $version (npm), taken with scripts/vendor-swagger-ui.sh" > "$dest/VERSION"
echo "vendored swagger-ui-dist $version into $dest"
