#!/usr/bin/env bash
# Blue/green switch for the compose stack: checks the target colour is healthy and serves the expected
# model, points the proxy at it and reloads nginx. Usage: docker/switch-color.sh green
set -euo pipefail
color=${1:?usage: docker/switch-color.sh blue|green}
case "$color" in blue|green) ;; *) echo "colour must be blue or green, got '$color'" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
compose=(docker compose -p "${COMPOSE_PROJECT_NAME:-driftwood}")
# The target must be ready (a model loaded) before it takes traffic.
"${compose[@]}" exec -T "api-$color" node -e \
  "fetch('http://127.0.0.1:8080/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" \
  || { echo "api-$color is not ready: not switching" >&2; exit 1; }
printf '# The live colour (blue or green). docker/switch-color.sh rewrites this file.\nupstream driftwood_api {\n  server api-%s:8080;\n}\n' "$color" > docker/proxy/upstream.conf
"${compose[@]}" exec -T api-proxy nginx -s reload
echo "api-proxy now sends traffic to api-$color"
