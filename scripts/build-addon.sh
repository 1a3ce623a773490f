#!/usr/bin/env bash
# Builds the proxies' addon (src/proxy/native: SO_ORIGINAL_DST, and IP_TRANSPARENT upstream sockets)
# with node-gyp against the installed Node headers, offline (--nodedir, never a download). Without
# it the proxies refuse redirected connections (fail closed); nothing else needs it. Needs gcc, make, python3 and Node's headers
# (Debian: nodejs ships /usr/include/node; otherwise set NODE_DIR to a Node source/headers tree).
# --if-possible (npm's pretest): a machine without the toolchain or headers warns and goes on.
set -euo pipefail
cd "$(dirname "$0")/../src/proxy/native"
optional=0
[ "${1:-}" = --if-possible ] && optional=1
give_up() {
  echo "build-addon.sh: $1 (redirected connections will be refused)" >&2
  if [ "$optional" = 1 ]; then exit 0; fi
  exit 1
}
if [ "$(uname -s)" != Linux ]; then
  echo "build-addon.sh: SO_ORIGINAL_DST is Linux only; skipping (redirected connections will be refused)" >&2
  exit 0
fi
nodedir="${NODE_DIR:-}"
if [ -z "$nodedir" ]; then
  for d in /usr /usr/local "$(dirname "$(dirname "$(command -v node)")")"; do
    if [ -f "$d/include/node/node_api.h" ]; then nodedir="$d"; break; fi
  done
fi
[ -n "$nodedir" ] || give_up "Node headers not found (node_api.h); set NODE_DIR"
command -v make >/dev/null && command -v cc >/dev/null || give_up "no C toolchain (make, cc)"
gyp=""
for g in "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js" \
  /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js \
  /usr/share/nodejs/node-gyp/bin/node-gyp.js; do
  if [ -f "$g" ]; then gyp="$g"; break; fi
done
if [ -n "$gyp" ]; then
  node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn || give_up "node-gyp failed"
else
  npm exec --yes -- node-gyp rebuild --nodedir="$nodedir" --loglevel=warn || give_up "node-gyp failed"
fi
test -f build/Release/seawall_origdst.node || give_up "node-gyp built nothing"
echo "build-addon.sh: built src/proxy/native/build/Release/seawall_origdst.node"
