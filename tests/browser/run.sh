#!/bin/sh
# Runs the browser tests (websdk.test.mjs, whip.test.mjs, sdk.test.mjs, interview.test.mjs, roomapi.test.mjs, access.test.mjs, mse.test.mjs, hls.test.mjs, ladder.test.mjs, vod.test.mjs,
# rtmp.test.mjs, recording.test.mjs) one file after the other; arguments go to `node --test` (e.g. --test-name-pattern=VP8).
#
# When the tests start their own server (STREAMGATE_WS and STREAMGATE_HTTP unset), everything runs in a fresh network
# namespace whose only interface is loopback: Chromium gathers ICE candidates on every interface it sees, so this is
# what guarantees that no packet goes to any address but 127.0.0.1. A server named by STREAMGATE_WS/STREAMGATE_HTTP
# lives outside such a namespace, so then the tests run as is.
set -eu
cd "$(dirname "$0")"

if [ ! -d node_modules/@flashphoner/websdk ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

# One file at a time: each drives a browser and a server, and media timing suffers on a small machine otherwise.
set -- --test-concurrency=1 "$@" websdk.test.mjs whip.test.mjs sdk.test.mjs interview.test.mjs roomapi.test.mjs rtmp.test.mjs recording.test.mjs access.test.mjs mse.test.mjs hls.test.mjs ladder.test.mjs vod.test.mjs

if [ -z "${STREAMGATE_WS:-}" ] && [ -z "${STREAMGATE_HTTP:-}" ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  # -n needs root; -rn does it in a user namespace where unprivileged ones are allowed.
  for flags in -n -rn; do
    if unshare $flags true 2>/dev/null; then
      exec unshare $flags -- sh -c 'ip link set lo up && STREAMGATE_PRIVATE_NET=1 exec node --test "$@"' sh "$@"
    fi
  done
fi
echo "run.sh: running without a private network namespace" >&2
exec node --test "$@"
