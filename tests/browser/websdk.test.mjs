// End-to-end test: the official Flashphoner Web SDK, running in headless Chromium, publishes a camera stream to
// streamgate over its WCS-compatible WebSocket signaling and plays it back in a second browser context.
//
// Run with `node --test websdk.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running server (both or neither; loopback addresses only)
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  consoleReport, isLoopbackHost, launchBrowser, openPage, pageSet, rest, sdpCodecs, serverReport, startPageServer,
  startServer,
} from './lib.mjs';

// The UMD bundle (defines window.Flashphoner); resolved through Node so a hoisted node_modules works too.
const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);

// Per-scenario budget, and the budgets of its steps: each is well below the scenario's, so a stuck step fails with its
// own message (what it waited for, what it saw) rather than with node:test's bare timeout.
const SCENARIO_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 5_000;
const PUBLISH_TIMEOUT_MS = 12_000;
const PLAY_TIMEOUT_MS = 10_000;
const FRAMES_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const MIN_FRAMES = 30;

// stripCodecs is applied by the SDK to the offer it sends (util.stripCodecs): each comma-separated name is a
// case-insensitive regular expression tested against `a=rtpmap` lines, and every matching payload type is dropped
// together with its fmtp/rtcp-fb lines. So the plain encoding names are what is needed; H265 is listed so that a
// Chromium build that offers HEVC cannot sneak it in.
const SCENARIOS = [
  { codec: 'H264', strip: 'VP8,VP9,AV1,H265' },
  { codec: 'VP8', strip: 'H264,H265,VP9,AV1' },
];

// ---------------------------------------------------------------------------------------------------------------
// Code that runs inside the test page. It is a real function (serialized into the page) so that `node --check`
// and editors see it; it may only use browser APIs and the SDK's global.
// ---------------------------------------------------------------------------------------------------------------
function pageHarness() {
  const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
  const display = document.getElementById('display');
  // Statuses after which the SDK has released the stream: nothing else will follow them.
  const TERMINAL = [STREAM_STATUS.FAILED, STREAM_STATUS.STOPPED, STREAM_STATUS.UNPUBLISHED];
  const h = {
    events: [],
    session: null,
    stream: null,
    video: null,
    startedAt: null,
    frames: { rvfc: false, count: 0, firstAt: null, width: 0, height: 0 },
  };
  window.harness = h;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const note = (kind, status, info) =>
    h.events.push({ kind, status, info: info === undefined ? null : info, at: performance.now() });
  const summarize = (events) => events.map((e) => (e.info ? `${e.kind}:${e.status}(${e.info})` : `${e.kind}:${e.status}`)).join(', ') || 'none';

  h.init = () => Flashphoner.init({});

  h.connect = (urlServer, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`session not ESTABLISHED within ${timeoutMs} ms`)), timeoutMs);
      const session = Flashphoner.createSession({ urlServer });
      h.session = session;
      session.on(SESSION_STATUS.ESTABLISHED, () => {
        note('session', SESSION_STATUS.ESTABLISHED);
        clearTimeout(timer);
        resolve();
      });
      for (const status of [SESSION_STATUS.FAILED, SESSION_STATUS.DISCONNECTED]) {
        session.on(status, () => {
          note('session', status);
          clearTimeout(timer);
          reject(new Error(`session ${status} before it was ESTABLISHED`));
        });
      }
      // The server's `fail` messages surface only here; keep them for the diagnostics.
      session.on(SESSION_STATUS.WARN, (obj) => note('session', SESSION_STATUS.WARN, JSON.stringify(obj)));
    });

  const watch = (stream) => {
    const statuses = [
      STREAM_STATUS.PUBLISHING, STREAM_STATUS.PLAYING, STREAM_STATUS.PAUSED, STREAM_STATUS.UNPUBLISHED,
      STREAM_STATUS.STOPPED, STREAM_STATUS.FAILED, STREAM_STATUS.PLAYBACK_PROBLEM,
    ];
    for (const status of statuses) stream.on(status, (s) => note('stream', status, s.getInfo()));
    h.stream = stream;
  };

  // Counts frames that reach the screen with a real size, from the moment the SDK creates its <video>.
  const trackFrames = () => {
    const attach = (video) => {
      h.video = video;
      if (typeof video.requestVideoFrameCallback !== 'function') return; // frameState() falls back to counters
      h.frames.rvfc = true;
      const onFrame = (_now, meta) => {
        if (meta.width > 0 && meta.height > 0) {
          if (h.frames.count === 0) h.frames.firstAt = performance.now();
          h.frames.count += 1;
          h.frames.width = meta.width;
          h.frames.height = meta.height;
        }
        if (video.isConnected) video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    };
    const existing = display.querySelector('video');
    if (existing) {
      attach(existing);
      return;
    }
    new MutationObserver((_records, observer) => {
      const video = display.querySelector('video');
      if (video) {
        observer.disconnect();
        attach(video);
      }
    }).observe(display, { childList: true, subtree: true });
  };

  h.publish = (name, stripCodecs) => {
    const stream = h.session.createStream({
      name,
      display,
      constraints: { audio: true, video: { width: 640, height: 480 } },
      stripCodecs,
    });
    watch(stream);
    h.startedAt = performance.now();
    stream.publish();
  };

  h.play = (name) => {
    const stream = h.session.createStream({ name, display });
    watch(stream);
    h.startedAt = performance.now();
    stream.play();
    trackFrames();
  };

  // Returns the index from which later waits look, so that events seen before stop() cannot satisfy them.
  h.stop = () => {
    const from = h.events.length;
    h.stream.stop();
    return from;
  };

  h.waitForStatus = async (wanted, timeoutMs, from = 0) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const events = h.events.slice(from);
      const hit = events.find((e) => e.kind === 'stream' && wanted.includes(e.status));
      if (hit) return { status: hit.status, info: hit.info, afterStartMs: Math.round(hit.at - h.startedAt) };
      const bad = events.find(
        (e) => (e.kind === 'stream' && TERMINAL.includes(e.status)) ||
          (e.kind === 'session' && (e.status === SESSION_STATUS.FAILED || e.status === SESSION_STATUS.DISCONNECTED)),
      );
      if (bad) throw new Error(`got ${bad.kind} ${bad.status}${bad.info ? ` (info: ${bad.info})` : ''} while waiting for ${wanted.join('/')}; events: ${summarize(events)}`);
      if (performance.now() > deadline) throw new Error(`no ${wanted.join('/')} within ${timeoutMs} ms; events: ${summarize(events)}`);
      await sleep(50);
    }
  };

  h.frameState = () => {
    const v = h.video;
    const quality = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    const total = quality ? quality.totalVideoFrames : 0;
    if (!h.frames.rvfc && h.frames.firstAt === null && total > 0) h.frames.firstAt = performance.now();
    return {
      videoElement: Boolean(v),
      counter: h.frames.rvfc ? 'requestVideoFrameCallback' : 'getVideoPlaybackQuality',
      count: h.frames.rvfc ? h.frames.count : total,
      firstFrameMs: h.frames.firstAt === null ? null : Math.round(h.frames.firstAt - h.startedAt),
      frameWidth: h.frames.width,
      frameHeight: h.frames.height,
      videoWidth: v ? v.videoWidth : 0,
      videoHeight: v ? v.videoHeight : 0,
      readyState: v ? v.readyState : null,
      paused: v ? v.paused : null,
      hasSrcObject: Boolean(v && v.srcObject),
      totalVideoFrames: total,
      droppedVideoFrames: quality ? quality.droppedVideoFrames : 0,
    };
  };

  h.waitForFrames = async (minFrames, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const state = h.frameState();
      if (state.count >= minFrames && state.videoWidth > 0) return state;
      const bad = h.events.find((e) => e.kind === 'stream' && TERMINAL.includes(e.status));
      if (bad) throw new Error(`stream went ${bad.status}${bad.info ? ` (info: ${bad.info})` : ''} after ${state.count} frames`);
      if (performance.now() > deadline) throw new Error(`only ${state.count} frames with a size within ${timeoutMs} ms: ${JSON.stringify(state)}`);
      await sleep(50);
    }
  };

  // The video RTP stream of this page's peer connection, as the browser reports it. `type` is 'inbound-rtp' or
  // 'outbound-rtp'. getStats(cb, true) hands back the native reports grouped by type.
  h.videoRtpStats = async (type) => {
    const raw = await Promise.race([
      new Promise((resolve) => h.stream.getStats(resolve, true)),
      sleep(5000).then(() => {
        throw new Error('getStats gave no answer within 5 s');
      }),
    ]);
    const byId = new Map(Object.values(raw).flat().map((r) => [r.id, r]));
    const rtp = (raw[type] || []).find((r) => r.kind === 'video');
    const transport = (raw.transport || [])[0];
    const pair = transport && byId.get(transport.selectedCandidatePairId);
    const codec = rtp ? byId.get(rtp.codecId) : null;
    const pick = (obj, keys) => Object.fromEntries(keys.filter((k) => obj && obj[k] !== undefined).map((k) => [k, obj[k]]));
    return {
      mimeType: codec ? codec.mimeType : null,
      sdpFmtpLine: codec ? codec.sdpFmtpLine || '' : null,
      rtp: pick(rtp, [
        'packetsReceived', 'packetsSent', 'bytesReceived', 'bytesSent', 'packetsLost', 'framesDecoded',
        'framesEncoded', 'keyFramesDecoded', 'keyFramesEncoded', 'frameWidth', 'frameHeight', 'framesPerSecond',
        'decoderImplementation', 'encoderImplementation', 'nackCount', 'pliCount', 'firCount',
      ]),
      iceState: transport ? transport.iceState : null,
      dtlsState: transport ? transport.dtlsState : null,
      localAddress: pair ? (byId.get(pair.localCandidateId) || {}).address || null : null,
      remoteAddress: pair ? (byId.get(pair.remoteCandidateId) || {}).address || null : null,
    };
  };
}

const PAGE_HTML = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>streamgate WebSDK e2e</title>
</head>
<body>
<div id="display" style="width:640px;height:480px"></div>
<!-- After the display div: the harness looks it up when it starts. -->
<script src="/flashphoner.js"></script>
<script>(${pageHarness.toString()})();</script>
</body>
</html>
`;

// ---------------------------------------------------------------------------------------------------------------
// Node-side helpers.
// ---------------------------------------------------------------------------------------------------------------

/**
 * One browser context with the test page loaded and the SDK initialized: a separate "user" per role. On top of what
 * lib.mjs's openPage records, keeps every signaling frame for the failure report.
 */
async function openSdkPage(browser, pageUrl, role, signal) {
  const p = await openPage(browser, pageUrl, role, signal, { ready: () => window.harness && window.Flashphoner });
  const frames = [];
  p.page.on('websocket', (ws) => {
    const record = (dir) => ({ payload }) => {
      let message = null;
      try {
        message = JSON.parse(payload);
      } catch {
        // binary or malformed: kept raw
      }
      frames.push({ dir, at: Date.now(), payload: String(payload), message });
    };
    ws.on('framesent', record('>>'));
    ws.on('framereceived', record('<<'));
  });
  await p.page.evaluate(() => window.harness.init());
  return {
    ...p,
    frames,
    sent(name) {
      return frames.filter((f) => f.dir === '>>' && f.message && f.message.message === name);
    },
  };
}

function formatFrames(frames) {
  return frames.map((f) => {
    const text = f.payload.length > 4000 ? `${f.payload.slice(0, 4000)}… (${f.payload.length} bytes)` : f.payload;
    return `  ${new Date(f.at).toISOString().slice(11, 23)} ${f.dir} ${text}`;
  }).join('\n');
}

async function report(pages, server) {
  const parts = [];
  for (const p of pages) {
    // Where the media got to, if the page still answers: tells "no packets" from "packets but nothing decoded".
    const type = p.role === 'publisher' ? 'outbound-rtp' : 'inbound-rtp';
    const stats = await p.page
      .evaluate((ty) => (window.harness.stream ? window.harness.videoRtpStats(ty) : 'no stream'), type)
      .then((st) => JSON.stringify(st), (e) => `unavailable (${String(e.message).split('\n')[0]})`);
    parts.push(`----- ${p.role}: ${type} video stats: ${stats}`);
    parts.push(`----- ${p.role}: signaling frames -----\n${formatFrames(p.frames) || '  (none)'}`);
    parts.push(consoleReport(p));
  }
  parts.push(serverReport(server));
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// The scenario.
// ---------------------------------------------------------------------------------------------------------------

async function runScenario(t, env, { codec, strip }) {
  const name = `e2e-${codec.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const expectedMime = `video/${codec}`.toLowerCase();
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env.browser, env.pageUrl, role, signal));
  const timing = {};
  try {
    // Publisher.
    const pub = await open('publisher');
    await pub.step('connect', ([ws, ms]) => window.harness.connect(ws, ms), [env.server.ws, CONNECT_TIMEOUT_MS]);
    await pub.step('publish', ([n, s]) => window.harness.publish(n, s), [name, strip]);
    const publishing = await pub.step('wait for PUBLISHING', ([ms]) => window.harness.waitForStatus(['PUBLISHING'], ms), [PUBLISH_TIMEOUT_MS]);
    timing.publishToPublishingMs = publishing.afterStartMs;

    // The offer the SDK actually sent must offer the forced codec only; otherwise the test itself is wrong.
    const [publishMsg] = pub.sent('publishStream');
    assert.ok(publishMsg, 'publisher: no publishStream message was sent');
    const offered = sdpCodecs(publishMsg.message.data[0].sdp);
    assert.ok(offered.includes(codec), `publisher: offer lacks ${codec} after stripCodecs "${strip}": ${offered.join(' ')}`);
    for (const stripped of strip.split(',')) {
      assert.ok(!offered.includes(stripped), `publisher: offer still has ${stripped} after stripCodecs "${strip}"`);
    }

    // Player.
    const sub = await open('player');
    await sub.step('connect', ([ws, ms]) => window.harness.connect(ws, ms), [env.server.ws, CONNECT_TIMEOUT_MS]);
    await sub.step('play', ([n]) => window.harness.play(n), [name]);
    const playing = await sub.step('wait for PLAYING', ([ms]) => window.harness.waitForStatus(['PLAYING'], ms), [PLAY_TIMEOUT_MS]);
    timing.playToPlayingMs = playing.afterStartMs;
    const frames = await sub.step(`wait for ${MIN_FRAMES} decoded frames`, ([n, ms]) => window.harness.waitForFrames(n, ms), [MIN_FRAMES, FRAMES_TIMEOUT_MS]);
    assert.ok(frames.videoWidth > 0 && frames.videoHeight > 0, `player: video has no size: ${JSON.stringify(frames)}`);
    timing.playToFirstFrameMs = frames.firstFrameMs;

    // The codec really used on the wire, on both legs.
    const inbound = await sub.step('read inbound stats', () => window.harness.videoRtpStats('inbound-rtp'));
    const outbound = await pub.step('read outbound stats', () => window.harness.videoRtpStats('outbound-rtp'));
    assert.equal(String(outbound.mimeType).toLowerCase(), expectedMime, `publisher: sends ${outbound.mimeType}, expected ${expectedMime}: ${JSON.stringify(outbound)}`);
    assert.equal(String(inbound.mimeType).toLowerCase(), expectedMime, `player: receives ${inbound.mimeType}, expected ${expectedMime}: ${JSON.stringify(inbound)}`);
    assert.ok((inbound.rtp.framesDecoded || 0) > 0, `player: browser stats show no decoded frames: ${JSON.stringify(inbound)}`);
    for (const [who, s] of [['publisher', outbound], ['player', inbound]]) {
      if (s.remoteAddress) assert.ok(isLoopbackHost(s.remoteAddress), `${who}: media flows to ${s.remoteAddress}, not loopback`);
    }

    // The REST API sees the stream.
    const all = await rest(env.server.http, '/rest-api/stream/find_all', {});
    assert.equal(all.status, 200, `find_all answered ${all.status}: ${all.text.slice(0, 500)}`);
    assert.ok(Array.isArray(all.json), `find_all did not answer a JSON array: ${all.text.slice(0, 500)}`);
    const listed = all.json.filter((s) => s && s.name === name);
    assert.ok(listed.length > 0, `find_all does not list stream "${name}": ${all.text.slice(0, 1000)}`);
    if (listed.some((s) => 'published' in s)) {
      assert.ok(listed.some((s) => s.published === true), `find_all lists "${name}" but none as published: ${JSON.stringify(listed)}`);
    }
    const found = await rest(env.server.http, '/rest-api/stream/find', { name });
    assert.equal(found.status, 200, `find {name: "${name}"} answered ${found.status}: ${found.text.slice(0, 500)}`);
    assert.ok(Array.isArray(found.json) && found.json.some((s) => s && s.name === name), `find {name: "${name}"} does not return it: ${found.text.slice(0, 1000)}`);
    assert.ok(found.json.every((s) => s && s.name === name), `find {name: "${name}"} returns other streams too: ${found.text.slice(0, 1000)}`);

    // Stopping the publisher ends the stream for both sides.
    const playerFrom = await sub.step('count events', () => window.harness.events.length);
    const publisherFrom = await pub.step('stop', () => window.harness.stop());
    const stopStart = Date.now();
    // Both sides are awaited to the end so that a failure report covers each of them.
    const ended = await Promise.allSettled([
      pub.step('wait for UNPUBLISHED after stop()', ([ms, from]) => window.harness.waitForStatus(['UNPUBLISHED'], ms, from), [STOP_TIMEOUT_MS, publisherFrom]),
      sub.step('wait for STOPPED/UNPUBLISHED after the publisher stopped', ([ms, from]) => window.harness.waitForStatus(['STOPPED', 'UNPUBLISHED'], ms, from), [STOP_TIMEOUT_MS, playerFrom]),
    ]);
    const notEnded = ended.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    assert.ok(notEnded.length === 0, notEnded.join('; '));
    timing.stopToEndedMs = Date.now() - stopStart;

    // And the REST API forgets it (allowing the server a moment to clean up).
    const forgetBy = Date.now() + STOP_TIMEOUT_MS;
    for (;;) {
      const r = await rest(env.server.http, '/rest-api/stream/find', { name });
      const listedNow = r.status === 200 && Array.isArray(r.json) && r.json.some((s) => s && s.name === name);
      if (r.status === 404 || (r.status === 200 && !listedNow)) break;
      assert.ok(Date.now() < forgetBy, `find {name: "${name}"} still answers ${r.status} ${r.text.slice(0, 500)} ${STOP_TIMEOUT_MS} ms after the stream was unpublished`);
      await sleep(200);
    }

    for (const p of pages) {
      assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
    }

    t.diagnostic(
      `${codec}: publish()→PUBLISHING ${timing.publishToPublishingMs} ms, play()→PLAYING ${timing.playToPlayingMs} ms, ` +
      `play()→first decoded frame ${timing.playToFirstFrameMs} ms, stop()→both ended ${timing.stopToEndedMs} ms`,
    );
    t.diagnostic(
      `${codec}: ${frames.count} frames counted by ${frames.counter} at ${frames.videoWidth}x${frames.videoHeight}; ` +
      `sent ${outbound.mimeType}${outbound.sdpFmtpLine ? ` (${outbound.sdpFmtpLine})` : ''} by ` +
      `${outbound.rtp.encoderImplementation ?? 'an unreported encoder'}, player decoded ${inbound.rtp.framesDecoded} ` +
      `frames, lost ${inbound.rtp.packetsLost ?? 0} packets`,
    );
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness.session.disconnect()).catch(() => {})));
  } catch (e) {
    console.error(`\n===== ${codec} scenario failed: ${e.message}\n${await report(pages, env.server)}\n===== end of ${codec} report\n`);
    throw e;
  } finally {
    await closeAll();
  }
}

describe('Flashphoner WebSDK against streamgate', () => {
  const env = { server: null, pageServer: null, browser: null, pageUrl: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.pageUrl = env.pageServer.url;
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    // Each step on its own, so one failure does not leave the others running.
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.pageServer?.close();
    await env.server?.stop();
  });

  for (const scenario of SCENARIOS) {
    test(`publish ${scenario.codec} with the WebSDK and play it back`, { timeout: SCENARIO_TIMEOUT_MS }, (t) => runScenario(t, env, scenario));
  }
});
