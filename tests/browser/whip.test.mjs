// End-to-end test: WHIP ingest and WHEP playback (RFC 9725 and its playback counterpart) against streamgate, with a
// client that owes nothing to streamgate's code: a page of this test, served from its own origin, drives the
// browser's RTCPeerConnection and talks to the server with plain cross-origin fetch calls.
//
// Run with `node --test whip.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running, otherwise idle server (both or neither; loopback only);
//                                   the bearer-token test still starts its own server from STREAMGATE_BIN
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  STREAMGATE_BIN, consoleReport, isLoopbackHost, launchBrowser, openPage, pageSet, rest, sdpCodecs, serverReport,
  startPageServer, startServer,
} from './lib.mjs';

// Per-scenario budget, and the budgets of its steps: each is well below the scenario's, so a stuck step fails with its
// own message (what it waited for, what it saw) rather than with node:test's bare timeout.
const SCENARIO_TIMEOUT_MS = 60_000;
const STEP_LIMITS = { gatherMs: 5_000, httpMs: 10_000 };
const CONNECT_TIMEOUT_MS = 10_000;
const FRAMES_TIMEOUT_MS = 15_000;
const AUDIO_TIMEOUT_MS = 5_000;
const TEARDOWN_TIMEOUT_MS = 5_000;
const MIN_FRAMES = 30;
const CODECS = ['H264', 'VP8'];
const TOKEN = 's3cret';

// ---------------------------------------------------------------------------------------------------------------
// The WHIP/WHEP client: runs inside the test page. It is a real function (serialized into the page) so that
// `node --check` and editors see it; it may only use browser APIs.
// ---------------------------------------------------------------------------------------------------------------
function whipClient() {
  const h = {
    events: [], // peer connection events, for the failure report
    http: [], // every HTTP exchange, for the failure report
    pc: null,
    media: null,
    video: null,
    offer: null,
    answer: null,
    location: null,
    startedAt: null,
    connectedAt: null,
    frames: { rvfc: false, count: 0, firstAt: null, width: 0, height: 0 },
  };
  window.harness = h;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const since = (t) => Math.round(t - h.startedAt);
  const note = (what) => h.events.push({ at: performance.now(), what });
  const clip = (s, n = 4000) => (typeof s === 'string' && s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
  const summary = () => h.events.map((e) => `${since(e.at)}ms ${e.what}`).join('; ') || 'none';

  // fetch, recording the whole exchange. Cross-origin, the response headers readable here are the CORS-safelisted ones
  // and those the server exposes (Access-Control-Expose-Headers).
  h.request = async (method, url, { headers = {}, body, timeoutMs = 10_000 } = {}) => {
    const entry = { method, url, requestHeaders: headers, requestBody: clip(body ?? null), status: null, responseHeaders: null, responseBody: null, error: null, ms: null };
    h.http.push(entry);
    const t0 = performance.now();
    try {
      const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      entry.ms = Math.round(performance.now() - t0);
      entry.status = res.status;
      entry.responseHeaders = Object.fromEntries(res.headers);
      entry.responseBody = clip(text);
      return { status: res.status, headers: entry.responseHeaders, body: text, ms: entry.ms };
    } catch (e) {
      entry.error = String(e);
      throw new Error(`${method} ${url}: ${e.message}`);
    }
  };

  const watch = (pc) => {
    const states = {
      connectionstatechange: 'connectionState',
      iceconnectionstatechange: 'iceConnectionState',
      icegatheringstatechange: 'iceGatheringState',
      signalingstatechange: 'signalingState',
    };
    for (const [event, prop] of Object.entries(states)) {
      pc.addEventListener(event, () => {
        note(`${prop}=${pc[prop]}`);
        if (prop === 'connectionState' && pc.connectionState === 'connected' && h.connectedAt === null) h.connectedAt = performance.now();
      });
    }
    pc.addEventListener('icecandidate', (e) => note(e.candidate ? `local candidate ${e.candidate.candidate}` : 'end of local candidates'));
    pc.addEventListener('track', (e) => note(`track ${e.track.kind} (streams: ${e.streams.map((s) => s.id).join(',') || 'none'})`));
  };

  // The server takes no trickled candidates, so the offer goes out only once gathering is complete.
  const gathered = (pc, timeoutMs) =>
    new Promise((resolve, reject) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(() => reject(new Error(`ICE gathering not complete within ${timeoutMs} ms (${pc.iceGatheringState})`)), timeoutMs);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });

  const candidates = (sdp) => (sdp.match(/^a=candidate:/gm) || []).length;

  // Offer with every candidate, POST, answer. Returns what the test checks of the exchange.
  const negotiate = async (pc, url, limits) => {
    const t0 = performance.now();
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, limits.gatherMs);
    const gatherMs = Math.round(performance.now() - t0);
    h.offer = pc.localDescription.sdp;
    const res = await h.request('POST', url, { headers: { 'Content-Type': 'application/sdp' }, body: h.offer, timeoutMs: limits.httpMs });
    const created = {
      status: res.status,
      contentType: res.headers['content-type'] ?? null,
      location: res.headers.location ?? null,
      etag: res.headers.etag ?? null,
      body: res.body.slice(0, 500),
      gatherMs,
      postMs: res.ms,
      offerCandidates: candidates(h.offer),
      answerCandidates: candidates(res.body),
    };
    if (res.status !== 201) return created; // the test reports it
    h.answer = res.body;
    if (created.location) h.location = new URL(created.location, url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: res.body });
    return created;
  };

  // The fake camera and microphone on a sendonly peer connection; with `codec`, the only video codec offered (with
  // its retransmission format), through setCodecPreferences.
  const sender = async (codec) => {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video' && codec) {
        const all = RTCRtpSender.getCapabilities('video').codecs;
        const forced = all.filter((c) => c.mimeType.toLowerCase() === `video/${codec}`.toLowerCase());
        if (forced.length === 0) throw new Error(`this browser cannot send ${codec}: ${all.map((c) => c.mimeType).join(' ')}`);
        transceiver.setCodecPreferences([...forced, ...all.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')]);
      }
    }
    return { media, pc };
  };

  h.publish = async (url, codec, limits) => {
    h.startedAt = performance.now();
    const { media, pc } = await sender(codec);
    h.media = media;
    h.pc = pc;
    watch(pc);
    return negotiate(pc, url, limits);
  };

  // A complete offer from a peer connection that is closed right away: for requests that must not reach a live one.
  h.offerOnly = async (limits) => {
    const { media, pc } = await sender(null);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, limits.gatherMs);
      return pc.localDescription.sdp;
    } finally {
      pc.close();
      media.getTracks().forEach((t) => t.stop());
    }
  };

  h.play = async (url, limits) => {
    h.startedAt = performance.now();
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    h.pc = pc;
    watch(pc);
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    // The receivers' tracks exist from the start. Showing them directly does not depend on the answer's msid lines.
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    h.video = video;
    video.srcObject = new MediaStream(pc.getReceivers().map((r) => r.track));
    trackFrames(video);
    video.play().catch((e) => note(`video.play() failed: ${e.message}`));
    return negotiate(pc, url, limits);
  };

  h.waitConnected = async (timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const state = h.pc.connectionState;
      if (state === 'connected') return { afterStartMs: since(h.connectedAt ?? performance.now()) };
      if (state === 'failed' || state === 'closed') throw new Error(`connection ${state}; events: ${summary()}`);
      if (performance.now() > deadline) throw new Error(`not connected within ${timeoutMs} ms (${state}); events: ${summary()}`);
      await sleep(20);
    }
  };

  h.connectionState = () => (h.pc ? h.pc.connectionState : null);

  // Counts frames that reach the screen with a real size.
  const trackFrames = (video) => {
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

  h.frameState = () => {
    const v = h.video;
    const quality = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    const total = quality ? quality.totalVideoFrames : 0;
    if (!h.frames.rvfc && h.frames.firstAt === null && total > 0) h.frames.firstAt = performance.now();
    return {
      counter: h.frames.rvfc ? 'requestVideoFrameCallback' : 'getVideoPlaybackQuality',
      count: h.frames.rvfc ? h.frames.count : total,
      firstFrameMs: h.frames.firstAt === null ? null : since(h.frames.firstAt),
      frameWidth: h.frames.width,
      frameHeight: h.frames.height,
      videoWidth: v ? v.videoWidth : 0,
      videoHeight: v ? v.videoHeight : 0,
      readyState: v ? v.readyState : null,
      paused: v ? v.paused : null,
      totalVideoFrames: total,
      droppedVideoFrames: quality ? quality.droppedVideoFrames : 0,
      connectionState: h.connectionState(),
    };
  };

  h.waitForFrames = async (minFrames, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const state = h.frameState();
      if (state.count >= minFrames && state.videoWidth > 0) return state;
      if (state.connectionState === 'failed' || state.connectionState === 'closed') {
        throw new Error(`connection ${state.connectionState} after ${state.count} frames; events: ${summary()}`);
      }
      if (performance.now() > deadline) throw new Error(`only ${state.count} frames with a size within ${timeoutMs} ms: ${JSON.stringify(state)}`);
      await sleep(50);
    }
  };

  // The RTP streams of this page's peer connection, as the browser reports them. `type` is 'inbound-rtp' or
  // 'outbound-rtp'.
  h.rtpStats = async (type) => {
    const reports = [...(await h.pc.getStats()).values()];
    const byId = new Map(reports.map((r) => [r.id, r]));
    const pick = (obj, keys) => Object.fromEntries(keys.filter((k) => obj && obj[k] !== undefined).map((k) => [k, obj[k]]));
    const rtp = (kind) => {
      const r = reports.find((x) => x.type === type && x.kind === kind);
      const codec = r ? byId.get(r.codecId) : null;
      return {
        mimeType: codec ? codec.mimeType : null,
        sdpFmtpLine: codec ? codec.sdpFmtpLine || '' : null,
        ...pick(r, [
          'packetsReceived', 'packetsSent', 'bytesReceived', 'bytesSent', 'packetsLost', 'framesDecoded',
          'framesEncoded', 'keyFramesDecoded', 'keyFramesEncoded', 'frameWidth', 'frameHeight', 'framesPerSecond',
          'decoderImplementation', 'encoderImplementation', 'nackCount', 'pliCount', 'firCount', 'totalSamplesReceived',
          'concealedSamples', 'qualityLimitationReason',
        ]),
      };
    };
    const transport = reports.find((r) => r.type === 'transport');
    const pair = transport && byId.get(transport.selectedCandidatePairId);
    const local = pair ? byId.get(pair.localCandidateId) || {} : {};
    const remote = pair ? byId.get(pair.remoteCandidateId) || {} : {};
    return {
      video: rtp('video'),
      audio: rtp('audio'),
      iceState: transport ? transport.iceState : null,
      dtlsState: transport ? transport.dtlsState : null,
      local: pair ? `${local.candidateType} ${local.address}:${local.port}` : null,
      remote: pair ? `${remote.candidateType} ${remote.address}:${remote.port}` : null,
      remoteAddress: remote.address ?? null,
    };
  };

  h.waitForAudio = async (timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const stats = await h.rtpStats('inbound-rtp');
      if ((stats.audio.packetsReceived || 0) > 0) return stats;
      if (performance.now() > deadline) throw new Error(`no audio packet within ${timeoutMs} ms: ${JSON.stringify(stats)}`);
      await sleep(100);
    }
  };

  // Ends the session as a WHIP/WHEP client does: DELETE on the resource's Location. The peer connection stays open,
  // so what ends the server's side is the DELETE alone.
  h.remove = async (timeoutMs) => {
    const res = await h.request('DELETE', h.location, { timeoutMs });
    return { status: res.status, body: res.body.slice(0, 500), ms: res.ms };
  };

  h.close = () => {
    if (h.pc) h.pc.close();
    if (h.media) h.media.getTracks().forEach((t) => t.stop());
    note('closed');
  };

  h.report = () => ({
    connectionState: h.connectionState(),
    location: h.location,
    events: summary(),
    http: h.http,
    offer: clip(h.offer),
    answer: clip(h.answer),
  });
}

const PAGE_HTML = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>streamgate WHIP/WHEP e2e</title>
</head>
<body>
<script>(${whipClient.toString()})();</script>
</body>
</html>
`;

// ---------------------------------------------------------------------------------------------------------------
// Node-side helpers.
// ---------------------------------------------------------------------------------------------------------------

/** A plain HTTP request from Node; returns the status, the headers and the body text. */
async function call(method, url, { headers = {}, body } = {}) {
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const describeCall = (method, url, r) => `${method} ${url} answered ${r.status} ${r.text.slice(0, 300)}`;

/** The streamgate_* gauges of GET /metrics. */
async function metrics(base) {
  const r = await call('GET', `${base}/metrics`);
  assert.equal(r.status, 200, describeCall('GET', `${base}/metrics`, r));
  const values = {};
  for (const m of r.text.matchAll(/^(streamgate_\w+)(?:\{[^}]*\})? (\S+)$/gm)) values[m[1]] = (values[m[1]] ?? 0) + Number(m[2]);
  for (const gauge of ['streamgate_pipelines', 'streamgate_streams', 'streamgate_media_sessions']) {
    assert.ok(gauge in values, `GET /metrics has no ${gauge}: ${r.text.slice(0, 1000)}`);
  }
  return values;
}

/** Waits until the server holds no pipeline, stream or media session; returns how long that took. */
async function waitForIdle(base, timeoutMs, what) {
  const start = Date.now();
  for (;;) {
    const m = await metrics(base);
    if (m.streamgate_pipelines === 0 && m.streamgate_streams === 0 && m.streamgate_media_sessions === 0) return Date.now() - start;
    if (Date.now() - start > timeoutMs) {
      const gauges = Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
      assert.fail(`${what}: the server is not idle ${timeoutMs} ms later: ${gauges}`);
    }
    await sleep(100);
  }
}

/** The streams find_all lists under `name`. */
async function listed(base, name) {
  const all = await rest(base, '/rest-api/stream/find_all', {});
  assert.equal(all.status, 200, `find_all answered ${all.status}: ${all.text.slice(0, 500)}`);
  assert.ok(Array.isArray(all.json), `find_all did not answer a JSON array: ${all.text.slice(0, 500)}`);
  return all.json.filter((s) => s && s.name === name);
}

/** The checks every successful WHIP/WHEP POST must pass. */
function assertCreated(who, kind, name, created) {
  const tag = `${who}: POST /${kind}/${name}`;
  assert.equal(created.status, 201, `${tag} answered ${created.status}: ${created.body}`);
  assert.match(String(created.contentType), /^application\/sdp\b/i, `${tag}: Content-Type ${created.contentType}`);
  assert.ok(created.location, `${tag}: no Location header readable by the page (is it exposed to CORS?)`);
  assert.ok(new URL(created.location, 'http://127.0.0.1').pathname.startsWith(`/${kind}/${encodeURIComponent(name)}/`),
    `${tag}: Location ${created.location} is not a resource under /${kind}/${name}/`);
  assert.ok(created.etag, `${tag}: no ETag header readable by the page`);
  assert.ok(created.offerCandidates > 0, `${tag}: the browser's offer carried no candidate (the test needs complete gathering)`);
  // The server takes no trickle and sends none: its answer must carry its candidates.
  assert.ok(created.answerCandidates > 0, `${tag}: the answer carries no a=candidate line`);
}

function formatHttp(exchanges) {
  return exchanges.map((x) => [
    `  ${x.method} ${x.url} ${JSON.stringify(x.requestHeaders)} -> ${x.error ? `error ${x.error}` : `${x.status} in ${x.ms} ms ${JSON.stringify(x.responseHeaders)}`}`,
    x.requestBody ? `    request body: ${JSON.stringify(x.requestBody)}` : null,
    x.responseBody ? `    response body: ${JSON.stringify(x.responseBody)}` : null,
  ].filter(Boolean).join('\n')).join('\n');
}

async function report(pages, servers) {
  const parts = [];
  for (const p of pages) {
    const type = p.role === 'publisher' ? 'outbound-rtp' : 'inbound-rtp';
    // Where the media got to, if the page still answers: tells "no packets" from "packets but nothing decoded".
    const stats = await p.page
      .evaluate((ty) => (window.harness.pc ? window.harness.rtpStats(ty) : 'no peer connection'), type)
      .then((st) => JSON.stringify(st), (e) => `unavailable (${String(e.message).split('\n')[0]})`);
    const state = await p.page.evaluate(() => window.harness.report()).catch((e) => ({ error: e.message }));
    parts.push(`----- ${p.role}: ${type} stats: ${stats}`);
    parts.push(`----- ${p.role}: connection ${state.connectionState}, resource ${state.location}`);
    parts.push(`----- ${p.role}: peer connection events: ${state.events ?? state.error}`);
    parts.push(`----- ${p.role}: HTTP exchanges -----\n${formatHttp(state.http || []) || '  (none)'}`);
    if (state.offer) parts.push(`----- ${p.role}: offer -----\n${state.offer}`);
    if (state.answer) parts.push(`----- ${p.role}: answer -----\n${state.answer}`);
    parts.push(consoleReport(p));
  }
  for (const [label, server] of servers) parts.push(serverReport(server, label));
  return parts.filter(Boolean).join('\n');
}

/** Runs `body` with failure reporting and page cleanup. */
async function withPages(t, env, label, body, servers = [['streamgate', env.server]]) {
  const set = pageSet(t, (role, signal) => openPage(env.browser, env.pageUrl, role, signal, { blockOffLoopback: false }));
  try {
    await body(set.open);
    for (const p of set.pages) {
      assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
    }
  } catch (e) {
    console.error(`\n===== ${label} failed: ${e.message}\n${await report(set.pages, servers)}\n===== end of ${label} report\n`);
    throw e;
  } finally {
    await Promise.all(set.pages.map((p) => p.page.evaluate(() => window.harness.close()).catch(() => {})));
    await set.closeAll();
  }
}

const streamName = (what) => `whip-${what}-${randomUUID().slice(0, 8)}`;

// ---------------------------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------------------------

/** Publish with WHIP, play with WHEP, check what the browsers see, DELETE both, and the server must be idle. */
async function publishAndPlay(t, env, codec) {
  const name = streamName(codec.toLowerCase());
  const base = env.server.http;
  const expectedMime = `video/${codec}`.toLowerCase();
  const timing = {};
  await withPages(t, env, `${codec} scenario`, async (open) => {
    // Publisher.
    const pub = await open('publisher');
    const published = await pub.step('publish via WHIP', ([url, c, limits]) => window.harness.publish(url, c, limits),
      [`${base}/whip/${encodeURIComponent(name)}`, codec, STEP_LIMITS]);
    assertCreated('publisher', 'whip', name, published);
    timing.whipPostMs = published.postMs;
    timing.publishGatherMs = published.gatherMs;
    // The offer really offers the forced codec only; otherwise the test itself is wrong.
    const offer = await pub.step('read the offer', () => window.harness.offer);
    const offered = sdpCodecs(offer, 'video');
    assert.ok(offered.includes(codec), `publisher: offer lacks ${codec}: ${offered.join(' ')}`);
    assert.deepEqual(offered.filter((c) => c !== codec && c !== 'RTX'), [], `publisher: setCodecPreferences left other codecs in the offer: ${offered.join(' ')}`);
    timing.publishConnectedMs = (await pub.step('wait for connected', ([ms]) => window.harness.waitConnected(ms), [CONNECT_TIMEOUT_MS])).afterStartMs;

    // Player.
    const sub = await open('player');
    const played = await sub.step('play via WHEP', ([url, limits]) => window.harness.play(url, limits),
      [`${base}/whep/${encodeURIComponent(name)}`, STEP_LIMITS]);
    assertCreated('player', 'whep', name, played);
    timing.whepPostMs = played.postMs;
    timing.playConnectedMs = (await sub.step('wait for connected', ([ms]) => window.harness.waitConnected(ms), [CONNECT_TIMEOUT_MS])).afterStartMs;
    const frames = await sub.step(`wait for ${MIN_FRAMES} decoded frames`, ([n, ms]) => window.harness.waitForFrames(n, ms), [MIN_FRAMES, FRAMES_TIMEOUT_MS]);
    assert.ok(frames.videoWidth > 0 && frames.videoHeight > 0, `player: video has no size: ${JSON.stringify(frames)}`);
    timing.playFirstFrameMs = frames.firstFrameMs;

    // What the browsers report: the forced codec on both legs, and audio arriving.
    const inbound = await sub.step('wait for audio packets', ([ms]) => window.harness.waitForAudio(ms), [AUDIO_TIMEOUT_MS]);
    const outbound = await pub.step('read outbound stats', () => window.harness.rtpStats('outbound-rtp'));
    assert.equal(String(outbound.video.mimeType).toLowerCase(), expectedMime, `publisher: sends ${outbound.video.mimeType}, expected ${expectedMime}: ${JSON.stringify(outbound)}`);
    assert.equal(String(inbound.video.mimeType).toLowerCase(), expectedMime, `player: receives ${inbound.video.mimeType}, expected ${expectedMime}: ${JSON.stringify(inbound)}`);
    assert.ok((inbound.video.framesDecoded || 0) > 0, `player: browser stats show no decoded frames: ${JSON.stringify(inbound)}`);
    assert.ok((inbound.audio.packetsReceived || 0) > 0, `player: no audio packets: ${JSON.stringify(inbound)}`);
    for (const [who, s] of [['publisher', outbound], ['player', inbound]]) {
      if (s.remoteAddress) assert.ok(isLoopbackHost(s.remoteAddress), `${who}: media flows to ${s.remoteAddress}, not loopback`);
    }

    // The REST API lists the stream as a published one with the forced codec.
    const streams = await listed(base, name);
    assert.ok(streams.length > 0, `find_all does not list stream "${name}"`);
    const publisherEntry = streams.find((s) => s.published === true);
    assert.ok(publisherEntry, `find_all lists "${name}" but none as published: ${JSON.stringify(streams)}`);
    if ('videoCodec' in publisherEntry) {
      assert.equal(String(publisherEntry.videoCodec).toUpperCase(), codec, `find_all: videoCodec of "${name}": ${JSON.stringify(publisherEntry)}`);
    }
    const busy = await metrics(base);
    assert.ok(busy.streamgate_streams >= 1 && busy.streamgate_pipelines >= 1, `/metrics while playing: ${JSON.stringify(busy)}`);

    // DELETE the player's resource, then the publisher's; both peer connections stay open meanwhile.
    const stopStart = Date.now();
    const whepDeleted = await sub.step('DELETE the WHEP resource', ([ms]) => window.harness.remove(ms), [STEP_LIMITS.httpMs]);
    assert.equal(whepDeleted.status, 200, `player: DELETE of the WHEP resource answered ${whepDeleted.status}: ${whepDeleted.body}`);
    const whipDeleted = await pub.step('DELETE the WHIP resource', ([ms]) => window.harness.remove(ms), [STEP_LIMITS.httpMs]);
    assert.equal(whipDeleted.status, 200, `publisher: DELETE of the WHIP resource answered ${whipDeleted.status}: ${whipDeleted.body}`);
    await waitForIdle(base, TEARDOWN_TIMEOUT_MS, 'after DELETE of both resources');
    timing.deleteToIdleMs = Date.now() - stopStart;

    // Gone for good: a second DELETE finds nothing, and find_all no longer lists the stream.
    const whipLocation = await pub.step('read the WHIP Location', () => window.harness.location);
    const again = await call('DELETE', whipLocation);
    assert.equal(again.status, 404, `second ${describeCall('DELETE', whipLocation, again)} (expected 404)`);
    assert.deepEqual(await listed(base, name), [], `find_all still lists "${name}" after DELETE`);

    t.diagnostic(
      `${codec}: WHIP gather ${timing.publishGatherMs} ms, POST→201 ${timing.whipPostMs} ms, publish→connected ` +
      `${timing.publishConnectedMs} ms; WHEP POST→201 ${timing.whepPostMs} ms, play→connected ${timing.playConnectedMs} ms, ` +
      `play→first frame ${timing.playFirstFrameMs} ms; DELETEs→server idle ${timing.deleteToIdleMs} ms`,
    );
    t.diagnostic(
      `${codec}: ${frames.count} frames counted by ${frames.counter} at ${frames.videoWidth}x${frames.videoHeight}; sent ` +
      `${outbound.video.mimeType}${outbound.video.sdpFmtpLine ? ` (${outbound.video.sdpFmtpLine})` : ''} by ` +
      `${outbound.video.encoderImplementation ?? 'an unreported encoder'}; player decoded ${inbound.video.framesDecoded} frames, ` +
      `received ${inbound.audio.packetsReceived} ${inbound.audio.mimeType} packets; find_all: ` +
      `${publisherEntry.videoCodec ?? '?'} ${publisherEntry.width ?? '?'}x${publisherEntry.height ?? '?'} ${publisherEntry.status ?? ''}`,
    );
  });
}

/** The error answers, from plain Node fetch calls; a browser publisher holds the name that is in use. */
async function errorAnswers(t, env) {
  const name = streamName('errors');
  const base = env.server.http;
  const whipUrl = `${base}/whip/${encodeURIComponent(name)}`;
  const sdpHeaders = { 'Content-Type': 'application/sdp' };
  await withPages(t, env, 'error scenario', async (open) => {
    const pub = await open('publisher');
    const published = await pub.step('publish via WHIP', ([url, limits]) => window.harness.publish(url, null, limits), [whipUrl, STEP_LIMITS]);
    assertCreated('publisher', 'whip', name, published);
    await pub.step('wait for connected', ([ms]) => window.harness.waitConnected(ms), [CONNECT_TIMEOUT_MS]);
    // A valid offer for the requests below (the server parses the offer before it looks at the name).
    const offer = await pub.step('read the offer', () => window.harness.offer);
    const location = await pub.step('read the WHIP Location', () => window.harness.location);

    const expect = async (method, url, options, status, why) => {
      const r = await call(method, url, options);
      assert.equal(r.status, status, `${why}: ${describeCall(method, url, r)} (expected ${status})`);
      return r;
    };
    const unknown = streamName('nobody');
    await expect('POST', `${base}/whep/${unknown}`, { headers: sdpHeaders, body: offer }, 404, 'WHEP of a stream nobody publishes');
    await expect('POST', whipUrl, { headers: sdpHeaders, body: offer }, 409, 'second WHIP publish of a name in use');
    await expect('POST', `${base}/whip/${streamName('bad')}`, { headers: sdpHeaders, body: 'hello' }, 400, 'WHIP offer "hello"');
    await expect('POST', `${base}/whep/${encodeURIComponent(name)}`, { headers: sdpHeaders, body: 'hello' }, 400, 'WHEP offer "hello"');
    await expect('POST', `${base}/whip/${streamName('type')}`, { headers: { 'Content-Type': 'text/plain' }, body: offer }, 415, 'WHIP offer as text/plain');
    await expect('POST', `${base}/whep/${encodeURIComponent(name)}`, { headers: { 'Content-Type': 'application/json' }, body: offer }, 415, 'WHEP offer as application/json');
    await expect('DELETE', `${base}/whip/${encodeURIComponent(name)}/${randomUUID()}`, {}, 404, 'DELETE of an unknown WHIP resource');
    await expect('DELETE', `${base}/whep/${encodeURIComponent(name)}/${randomUUID()}`, {}, 404, 'DELETE of an unknown WHEP resource');
    await expect('PATCH', location, { headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: 'a=end-of-candidates\r\n' }, 405, 'PATCH (trickle) of the live WHIP resource');

    // None of that disturbed the publisher or left anything behind.
    const state = await pub.step('read the connection state', () => window.harness.connectionState());
    assert.equal(state, 'connected', 'publisher: not connected any more after the refused requests');
    const streams = await listed(base, name);
    assert.equal(streams.length, 1, `find_all lists "${name}" ${streams.length} times: ${JSON.stringify(streams)}`);
    const m = await metrics(base);
    assert.equal(m.streamgate_streams, 1, `/metrics after the refused requests, with one publisher: ${JSON.stringify(m)}`);

    await expect('DELETE', location, {}, 200, 'DELETE of the WHIP resource');
    await waitForIdle(base, TEARDOWN_TIMEOUT_MS, 'after DELETE of the WHIP resource');
  });
}

/** A second server with --whip-token: every WHIP/WHEP request needs `Authorization: Bearer <token>`. */
async function bearerToken(t, env) {
  if (!fs.existsSync(STREAMGATE_BIN)) {
    t.skip(`needs ${STREAMGATE_BIN} to start a server with --whip-token`);
    return;
  }
  const server = await startServer({ extraArgs: ['--whip-token', TOKEN], external: false });
  try {
    await withPages(t, env, 'bearer token scenario', async (open) => {
      const page = await open('offerer');
      const offer = await page.step('make an offer', ([limits]) => window.harness.offerOnly(limits), [STEP_LIMITS]);
      const name = encodeURIComponent(streamName('token'));
      const whipUrl = `${server.http}/whip/${name}`;
      const sdp = { 'Content-Type': 'application/sdp' };
      const bearer = (token) => ({ Authorization: `Bearer ${token}` });

      const unauthorized = async (method, url, headers, why) => {
        const r = await call(method, url, { headers, body: method === 'POST' ? offer : undefined });
        assert.equal(r.status, 401, `${why}: ${describeCall(method, url, r)} (expected 401)`);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/i, `${why}: WWW-Authenticate is ${r.headers.get('www-authenticate')}`);
      };
      await unauthorized('POST', whipUrl, sdp, 'WHIP POST without a token');
      await unauthorized('POST', whipUrl, { ...sdp, ...bearer('wrong') }, 'WHIP POST with a wrong token');
      await unauthorized('POST', `${server.http}/whep/${name}`, sdp, 'WHEP POST without a token');

      // A browser client sends the token cross-origin: the CORS preflight must let Authorization through, and the
      // page must be able to read the 401's WWW-Authenticate.
      const fromPage = ([url, headers]) => window.harness.request('POST', url, { headers, body: 'hello' })
        .then((r) => ({ status: r.status, wwwAuthenticate: r.headers['www-authenticate'] ?? null, body: r.body.slice(0, 300) }));
      const pageNoToken = await page.step('POST without a token from the page', fromPage, [whipUrl, sdp]);
      assert.equal(pageNoToken.status, 401, `page: WHIP POST without a token: ${JSON.stringify(pageNoToken)}`);
      assert.match(pageNoToken.wwwAuthenticate ?? '', /^Bearer\b/i, `page: WHIP POST without a token: WWW-Authenticate not readable: ${JSON.stringify(pageNoToken)}`);
      const pageToken = await page.step('POST "hello" with the token from the page', fromPage, [whipUrl, { ...sdp, ...bearer(TOKEN) }]);
      assert.equal(pageToken.status, 400, `page: WHIP POST of "hello" with the token (past the token check, refused as a bad offer): ${JSON.stringify(pageToken)}`);

      const created = await call('POST', whipUrl, { headers: { ...sdp, ...bearer(TOKEN) }, body: offer });
      assert.notEqual(created.status, 401, `WHIP POST with the token: ${describeCall('POST', whipUrl, created)}`);
      assert.equal(created.status, 201, `WHIP POST with the token: ${describeCall('POST', whipUrl, created)}`);
      const location = new URL(created.headers.get('location'), whipUrl).href;
      await unauthorized('DELETE', location, {}, 'DELETE without a token');
      const deleted = await call('DELETE', location, { headers: bearer(TOKEN) });
      assert.equal(deleted.status, 200, `DELETE with the token: ${describeCall('DELETE', location, deleted)}`);
      await waitForIdle(server.http, TEARDOWN_TIMEOUT_MS, 'token server, after DELETE');
    }, [['streamgate --whip-token', server]]);
  } finally {
    await server.stop();
  }
}

describe('WHIP and WHEP against streamgate', () => {
  const env = { server: null, pageServer: null, browser: null, pageUrl: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({ '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML } });
    env.pageUrl = env.pageServer.url;
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    // Each step on its own, so one failure does not leave the others running.
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.pageServer?.close();
    await env.server?.stop();
  });

  for (const codec of CODECS) {
    test(`publish ${codec} with WHIP, play it with WHEP, DELETE both`, { timeout: SCENARIO_TIMEOUT_MS }, (t) => publishAndPlay(t, env, codec));
  }
  test('WHIP/WHEP error answers', { timeout: SCENARIO_TIMEOUT_MS }, (t) => errorAnswers(t, env));
  test('WHIP/WHEP with --whip-token', { timeout: SCENARIO_TIMEOUT_MS }, (t) => bearerToken(t, env));
});
