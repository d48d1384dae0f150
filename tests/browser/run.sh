#!/bin/sh
# Runs the WebSDK browser test (websdk.test.mjs); arguments go to `node --test` (e.g. --test-name-pattern=VP8).
#
# When the test starts its own server (STREAMGATE_WS unset), everything runs in a fresh network namespace whose only
# interface is loopback: Chromium gathers ICE candidates on every interface it sees, so this is what guarantees that
# no packet goes to any address but 127.0.0.1. A server named by STREAMGATE_WS lives outside such a namespace, so then
# the test runs as is.
set -eu
cd "$(dirname "$0")"

if [ ! -d node_modules/@flashphoner/websdk ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

if [ -z "${STREAMGATE_WS:-}" ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  # -n needs root; -rn does it in a user namespace where unprivileged ones are allowed.
  for flags in -n -rn; do
    if unshare $flags true 2>/dev/null; then
      exec unshare $flags -- sh -c 'ip link set lo up && exec node --test "$@" websdk.test.mjs' sh "$@"
    fi
  done
fi
echo "run.sh: running without a private network namespace" >&2
exec node --test "$@" websdk.test.mjs
