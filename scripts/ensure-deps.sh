#!/usr/bin/env bash
# Installs what the tests need when it is missing: redis-server and redis-cli from Debian's
# packages and the Node packages of the interop (and browser) tests and of the Forge Custom
# UI (esbuild and @forge/bridge, which its build and browser test need). Safe to run again;
# does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# redis-cli builds the local Cluster of `make chaos` and restarts its servers.
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ "${SB_WITH_BROWSER:-1}" = 1 ] && [ -d e2e ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]} from Debian packages"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

for dir in interop e2e forge/static/site-admin forge/static/report-widget; do
  [ -f "$dir/package.json" ] || continue
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "ensure-deps: installing Node packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
