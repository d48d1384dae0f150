// End-to-end test of streamgate's own Web SDK (web/sdk/streamgate.js) in headless Chromium: publish from the camera
// and from a canvas, play in another browser context, mute events, stats, data, reconnection after the server closes a
// session (REST connection/terminate), and errors. Also checks that streamgate.d.ts declares exactly what the module
// exports, and that the server serves the pages and the SDK.
//
// The pages run on the server's own origin, as a real application would: the test starts streamgate with
// `--web-dir <repo>/web`, so the files on disk are what is tested (no rebuild needed).
//
// Run with `node --test sdk.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running server (both or neither; loopback only; it serves its own
//                                   copy of web/, from --web-dir or built in)
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   STREAMGATE_WEB_DIR              the web/ folder to serve and test (default: <repo>/web)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPO_ROOT, consoleReport, launchBrowser, openPage, pageSet, rest, serverReport, startServer,
} from './lib.mjs';

// The pages and the SDK under test (served with --web-dir); STREAMGATE_WEB_DIR tests another copy.
const WEB_DIR = process.env.STREAMGATE_WEB_DIR ? path.resolve(process.env.STREAMGATE_WEB_DIR) : path.join(REPO_ROOT, 'web');
const SCENARIO_TIMEOUT_MS = 60_000;
const STEP_MS = 15_000; // budget of one wait inside a scenario
const MIN_FRAMES = 30;

// ---------------------------------------------------------------------------------------------------------------
// Code that runs inside the test page (serialized into it). It imports the SDK from the server, like an application.
// Everything the test does goes through `window.harness`, which records every session and stream event.
// ---------------------------------------------------------------------------------------------------------------
function sdkHarness() {
  const h = {
    sdk: null,
    sessions: {},
    streams: {},
    videos: {},
    canvases: {},
    frames: {},
    rec: [], // {src, kind, value, info, at}
    errors: [],
  };
  window.harness = h;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const note = (src, kind, value, info) => h.rec.push({ src, kind, value, info: info ?? null, at: Math.round(performance.now()) });
  const summary = (from = 0) => h.rec.slice(from).map((r) => `${r.src}.${r.kind}:${r.value}${r.info ? `(${r.info})` : ''}`).join(', ') || 'none';
  h.mark = () => h.rec.length;

  h.load = async () => {
    h.sdk = await import('/sdk/streamgate.js');
    return Object.keys(h.sdk).sort();
  };

  h.connect = async (key, options = {}) => {
    const s = await h.sdk.connect(options);
    h.sessions[key] = s;
    s.on('status', (e) => note(key, 'session', e.status, e.info));
    s.on('reconnecting', (e) => note(key, 'reconnecting', e.attempt, e.reason));
    s.on('reconnected', (e) => note(key, 'reconnected', e.sessionId));
    s.on('disconnected', (e) => note(key, 'disconnected', e.deliberate, e.reason));
    s.on('warning', (e) => note(key, 'warning', e.apiMethod, e.info));
    s.on('data', (payload) => note(key, 'data', JSON.stringify(payload)));
    return { id: s.id, status: s.status, login: s.login };
  };

  const watch = (key, stream) => {
    h.streams[key] = stream;
    stream.on('status', (e) => note(key, 'status', e.status, e.info));
    stream.on('event', (e) => note(key, 'event', e.type, e.payload === undefined ? null : JSON.stringify(e.payload)));
    stream.on('track', (e) => note(key, 'track', e.kind, e.source));
  };

  const video = (key) => {
    const v = document.createElement('video');
    v.muted = true; // no autoplay-with-sound question in the test
    v.width = 320;
    document.body.append(v);
    h.videos[key] = v;
    const f = (h.frames[key] = { count: 0, width: 0, height: 0 });
    const onFrame = (_now, meta) => {
      if (meta.width > 0) {
        f.count += 1;
        f.width = meta.width;
        f.height = meta.height;
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
    return v;
  };

  // A canvas animated at 30 fps (a timer, not requestAnimationFrame: it must run in a background page too).
  h.canvas = (key, width, height) => {
    const c = document.createElement('canvas');
    c.width = width;
    c.height = height;
    document.body.append(c);
    const g = c.getContext('2d');
    let n = 0;
    setInterval(() => {
      n += 1;
      g.fillStyle = `hsl(${(n * 7) % 360} 70% 45%)`;
      g.fillRect(0, 0, width, height);
      g.fillStyle = '#fff';
      g.font = '32px sans-serif';
      g.fillText(String(n), 20, height / 2);
    }, 33);
    h.canvases[key] = c;
    return c;
  };

  const describeStream = (s) => ({ id: s.id, name: s.name, status: s.status, info: s.info, type: s.type, source: s.source, audioMuted: s.audioMuted, videoMuted: s.videoMuted });

  h.publish = async (sessionKey, key, options) => {
    const opts = { ...options };
    if (opts.source === 'canvas') opts.source = h.canvases[key] || h.canvas(key, opts.width || 320, opts.height || 240);
    delete opts.width;
    delete opts.height;
    const s = await h.sessions[sessionKey].publish(opts);
    watch(key, s);
    return describeStream(s);
  };

  h.play = async (sessionKey, key, options) => {
    const s = await h.sessions[sessionKey].play({ ...options, element: video(key) });
    watch(key, s);
    return describeStream(s);
  };

  // Resolves with the error a call rejects with (as plain data), or throws if it resolves.
  h.expectReject = async (sessionKey, method, options) => {
    try {
      const s = await h.sessions[sessionKey][method](options);
      throw new Error(`${method} resolved (${s.status}) instead of rejecting`);
    } catch (e) {
      if (e.message.includes('instead of rejecting')) throw e;
      return { name: e.name, message: e.message, info: e.info ?? null, status: e.status ?? null, isSdkError: e instanceof h.sdk.StreamgateError };
    }
  };

  h.stream = (key) => describeStream(h.streams[key]);
  h.session = (key) => ({ id: h.sessions[key].id, status: h.sessions[key].status });

  // Waits for a recorded entry (src, kind, value in values; any value without values) at index >= from; fails early
  // on `failOn` entries ([kind, value] pairs).
  h.waitRec = async ({ src, kind, values, from = 0, timeoutMs, failOn = [] }) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const recs = h.rec.slice(from);
      const hit = recs.find((r) => r.src === src && r.kind === kind && (!values || values.includes(r.value)));
      if (hit) return hit;
      const bad = recs.find((r) => r.src === src && failOn.some(([k, v]) => r.kind === k && r.value === v));
      if (bad) throw new Error(`${src}: got ${bad.kind} ${bad.value}${bad.info ? ` (${bad.info})` : ''} while waiting for ${kind} ${values ? values.join('/') : ''}; events: ${summary(from)}`);
      if (performance.now() > deadline) throw new Error(`${src}: no ${kind} ${values ? values.join('/') : ''} within ${timeoutMs} ms; events: ${summary(from)}`);
      await sleep(50);
    }
  };

  h.recSince = (from) => h.rec.slice(from);

  h.frameState = (key) => {
    const v = h.videos[key];
    return { ...h.frames[key], videoWidth: v.videoWidth, videoHeight: v.videoHeight, hasSrcObject: Boolean(v.srcObject), readyState: v.readyState };
  };

  h.waitFrames = async (key, more, timeoutMs) => {
    const start = h.frames[key].count;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const st = h.frameState(key);
      if (st.count - start >= more && st.videoWidth > 0) return { ...st, gained: st.count - start };
      if (performance.now() > deadline) throw new Error(`${key}: only ${st.count - start} new frames (of ${more}) within ${timeoutMs} ms: ${JSON.stringify(st)}; events: ${summary()}`);
      await sleep(50);
    }
  };

  h.trackEnabled = (key) => Object.fromEntries(h.streams[key].mediaStream.getTracks().map((t) => [t.kind, t.enabled]));
  h.stats = (key) => h.streams[key].getStats();
  h.call = async (key, method, ...args) => {
    const target = h.streams[key] || h.sessions[key];
    const r = await target[method](...args);
    return r === undefined ? null : r;
  };
  h.sendData = (sessionKey, payload) => h.sessions[sessionKey].sendData(payload).then(() => 'ACCEPTED', (e) => `FAILED: ${e.message}`);
  h.disconnectAll = () => Object.values(h.sessions).forEach((s) => s.disconnect());
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>streamgate SDK e2e</title></head>
<body><script type="module">(${sdkHarness.toString()})(); window.harness.load().then(() => { window.harnessReady = true; });</script></body></html>
`;

// ---------------------------------------------------------------------------------------------------------------
// Node side
// ---------------------------------------------------------------------------------------------------------------

/** One browser context with the harness loaded on the server's origin; records every signaling frame. */
async function openSdkPage(env, role, signal) {
  // Any page of the server's origin will do as the base; the harness then replaces its content (same URL, so same
  // origin: the SDK derives the WebSocket URL from it and getUserMedia has a secure context on 127.0.0.1).
  const p = await openPage(env.browser, `${env.server.http}/health`, role, signal, { ready: () => true });
  const frames = [];
  p.page.on('websocket', (ws) => {
    const record = (dir) => ({ payload }) => frames.push({ dir, at: Date.now(), payload: String(payload) });
    ws.on('framesent', record('>>'));
    ws.on('framereceived', record('<<'));
  });
  await p.page.setContent(PAGE_HTML);
  await p.page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10_000 });
  return {
    ...p,
    frames,
    messages(dir, name) {
      return frames.filter((f) => f.dir === dir).map((f) => {
        try {
          return JSON.parse(f.payload);
        } catch {
          return null;
        }
      }).filter((m) => m && m.message === name);
    },
  };
}

function formatFrames(frames) {
  return frames.map((f) => {
    const text = f.payload.length > 1500 ? `${f.payload.slice(0, 1500)}… (${f.payload.length} bytes)` : f.payload;
    return `  ${new Date(f.at).toISOString().slice(11, 23)} ${f.dir} ${text}`;
  }).join('\n');
}

async function report(pages, server) {
  const parts = [];
  for (const p of pages) {
    const rec = await p.page.evaluate(() => window.harness.rec.map((r) => `${r.at} ${r.src}.${r.kind}:${r.value}${r.info ? ` (${r.info})` : ''}`).join('\n'))
      .catch((e) => `unavailable (${String(e.message).split('\n')[0]})`);
    parts.push(`----- ${p.role}: SDK events -----\n${rec || '  (none)'}`);
    parts.push(`----- ${p.role}: signaling frames -----\n${formatFrames(p.frames.slice(-80)) || '  (none)'}`);
    parts.push(consoleReport(p));
  }
  parts.push(serverReport(server));
  return parts.join('\n');
}

/** Runs `body(open)` with pages opened through `open(role)`, printing a report if it fails. */
async function scenario(t, env, label, body) {
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env, role, signal));
  try {
    await body(open, pages);
    for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness.disconnectAll()).catch(() => {})));
  } catch (e) {
    console.error(`\n===== ${label} failed: ${e.message}\n${await report(pages, env.server)}\n===== end of ${label} report\n`);
    throw e;
  } finally {
    await closeAll();
  }
}

const uniqueName = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

function assertStats(who, st, { codec }) {
  for (const k of ['bitrate', 'videoBitrate', 'fps', 'packetsLost', 'frames']) {
    assert.equal(typeof st[k], 'number', `${who}: stats.${k} is not a number: ${JSON.stringify(st)}`);
    assert.ok(Number.isFinite(st[k]) && st[k] >= 0, `${who}: stats.${k} = ${st[k]}: ${JSON.stringify(st)}`);
  }
  assert.ok(st.bitrate > 0, `${who}: no bitrate: ${JSON.stringify(st)}`);
  assert.ok(st.fps > 0, `${who}: no frame rate: ${JSON.stringify(st)}`);
  assert.ok(st.resolution.width > 0 && st.resolution.height > 0, `${who}: no resolution: ${JSON.stringify(st)}`);
  if (codec) assert.equal(String(st.codec).toUpperCase(), codec, `${who}: codec ${st.codec}, expected ${codec}: ${JSON.stringify(st)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------------------------

describe('streamgate Web SDK', () => {
  const env = { server: null, browser: null };

  before(async () => {
    env.server = await startServer({ extraArgs: ['--web-dir', WEB_DIR] });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.server?.stop();
  });

  test('streamgate.d.ts declares exactly what streamgate.js exports', async () => {
    const mod = await import(pathToFileURL(path.join(WEB_DIR, 'sdk/streamgate.js')).href);
    const dts = fs.readFileSync(path.join(WEB_DIR, 'sdk/streamgate.d.ts'), 'utf8');
    const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(Object.keys(mod).sort(), declared, 'runtime exports vs. values declared in streamgate.d.ts');
    for (const [, name, body] of dts.matchAll(/^export declare class (\w+)[^{]*\{\n([\s\S]*?)^\}/gm)) {
      const members = new Set([...body.matchAll(/^ {2}(?:readonly )?(\w+)[(<:?]/gm)].map((m) => m[1]));
      members.delete('constructor');
      const cls = mod[name];
      const runtime = new Set(Object.getOwnPropertyNames(cls.prototype).filter((k) => k !== 'constructor'));
      if (name === 'StreamgateError') ['name', 'info', 'status'].forEach((k) => runtime.add(k)); // instance fields
      assert.deepEqual([...runtime].sort(), [...members].sort(), `class ${name}: runtime members vs. streamgate.d.ts`);
    }
    assert.deepEqual(Object.keys(mod.StreamStatus).sort(), [...dts.match(/StreamStatus: Readonly<\{([\s\S]*?)\}>/)[1].matchAll(/^\s+(\w+):/gm)].map((m) => m[1]).sort());
    assert.deepEqual(Object.keys(mod.SessionStatus).sort(), [...dts.match(/SessionStatus: Readonly<\{([\s\S]*?)\}>/)[1].matchAll(/^\s+(\w+):/gm)].map((m) => m[1]).sort());
  });

  test('the server serves the pages and the SDK', async (t) => {
    const files = { '/': 'index.html', '/publish.html': 'publish.html', '/play.html': 'play.html', '/sdk/streamgate.js': 'sdk/streamgate.js', '/sdk/streamgate.d.ts': 'sdk/streamgate.d.ts', '/sdk/fallback.js': 'sdk/fallback.js' };
    for (const [route, file] of Object.entries(files)) {
      const res = await fetch(`${env.server.http}${route}`, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      assert.equal(res.status, 200, `GET ${route}: ${res.status}`);
      if (file.endsWith('.js')) assert.match(res.headers.get('content-type') || '', /javascript/, `GET ${route}: content-type`);
      if (file.endsWith('.html')) assert.match(res.headers.get('content-type') || '', /text\/html/, `GET ${route}: content-type`);
      if (!env.server.external) assert.equal(body, fs.readFileSync(path.join(WEB_DIR, file), 'utf8'), `GET ${route} is not web/${file}`);
    }
    if (env.server.external) t.diagnostic('external server: page contents not compared with web/');
  });

  test('publish the camera (H.264), play it, mute events, stats, data', { timeout: SCENARIO_TIMEOUT_MS }, (t) => scenario(t, env, 'camera', async (open) => {
    const name = uniqueName('sdk-cam');
    const pub = await open('publisher');
    const sub = await open('player');
    const timing = {};
    await pub.step('connect', () => window.harness.connect('s', { login: 'publisher' }));
    let t0 = Date.now();
    const published = await pub.step('publish camera', ([n]) => window.harness.publish('s', 'cam', { name: n, source: 'camera', codec: 'H264', video: { width: 640, height: 480 } }), [name]);
    timing.publish = Date.now() - t0;
    assert.equal(published.status, 'PUBLISHING');
    assert.equal(published.source, 'camera');
    const [publishMsg] = pub.messages('>>', 'publishStream');
    assert.ok(publishMsg, 'no publishStream was sent');
    assert.equal(publishMsg.data[0].name, name);
    assert.equal(publishMsg.data[0].mediaProvider, 'WebRTC');

    await sub.step('connect', () => window.harness.connect('s', { login: 'viewer' }));
    t0 = Date.now();
    const played = await sub.step('play', ([n]) => window.harness.play('s', 'view', { name: n }), [name]);
    timing.play = Date.now() - t0;
    assert.equal(played.status, 'PLAYING');
    const frames = await sub.step(`wait for ${MIN_FRAMES} frames`, ([n, ms]) => window.harness.waitFrames('view', n, ms), [MIN_FRAMES, STEP_MS]);
    timing.frames = Date.now() - t0;
    assert.ok(frames.videoWidth > 0, `no picture size: ${JSON.stringify(frames)}`);

    // Mute and unmute reach the viewer as stream events, and the publisher's tracks are really disabled.
    for (const [method, type, kind, enabled] of [
      ['muteAudio', 'audioMuted', 'audio', false], ['unmuteAudio', 'audioUnmuted', 'audio', true],
      ['muteVideo', 'videoMuted', 'video', false], ['unmuteVideo', 'videoUnmuted', 'video', true],
    ]) {
      const from = await sub.step('mark', () => window.harness.mark());
      await pub.step(method, ([m]) => window.harness.call('cam', m), [method]);
      assert.equal((await pub.step('track state', () => window.harness.trackEnabled('cam')))[kind], enabled, `${method}: publisher's ${kind} track`);
      await sub.step(`wait for event ${type}`, ([ty, f, ms]) => window.harness.waitRec({ src: 'view', kind: 'event', values: [ty], from: f, timeoutMs: ms }), [type, from, 5000]);
      const state = await sub.step('stream state', () => window.harness.stream('view'));
      assert.equal(kind === 'audio' ? state.audioMuted : state.videoMuted, !enabled, `viewer's ${kind}Muted after ${type}`);
    }

    // Custom data: a stream event to the viewers, and sendData to the server (ACCEPTED).
    const from = await sub.step('mark', () => window.harness.mark());
    await pub.step('stream.sendData', () => window.harness.call('cam', 'sendData', { hello: 'viewers' }));
    const dataEvent = await sub.step('wait for data event', ([f]) => window.harness.waitRec({ src: 'view', kind: 'event', values: ['data'], from: f, timeoutMs: 5000 }), [from]);
    assert.deepEqual(JSON.parse(dataEvent.info), { hello: 'viewers' });
    assert.equal(await pub.step('session.sendData', () => window.harness.sendData('s', { hello: 'server' })), 'ACCEPTED');

    // Stats with numbers on both sides.
    await sub.step('frames keep coming', ([ms]) => window.harness.waitFrames('view', 10, ms), [STEP_MS]);
    const outStats = await pub.step('publisher getStats', () => window.harness.stats('cam'));
    const inStats = await sub.step('player getStats', () => window.harness.stats('view'));
    assertStats('publisher', outStats, { codec: 'H264' });
    assertStats('player', inStats, { codec: 'H264' });

    // The session answers the server's pings (every 5 s): wait for one if none came yet.
    const deadline = Date.now() + 7000;
    while (sub.messages('<<', 'ping').length === 0 && Date.now() < deadline) await sleep(200);
    assert.ok(sub.messages('<<', 'ping').length > 0, 'the server sent no ping within 7 s');
    await sleep(300);
    const pongs = sub.messages('>>', 'pong');
    assert.ok(pongs.length > 0, 'the SDK did not answer ping with pong');
    assert.deepEqual(pongs[0], { message: 'pong', data: [null] });

    // Stopping: UNPUBLISHED for the publisher; the viewer (no waitForRepublish) ends STOPPED.
    const subFrom = await sub.step('mark', () => window.harness.mark());
    await pub.step('stop', () => window.harness.call('cam', 'stop'));
    assert.equal((await pub.step('publisher state', () => window.harness.stream('cam'))).status, 'UNPUBLISHED');
    const ended = await sub.step('viewer ends', ([f]) => window.harness.waitRec({ src: 'view', kind: 'status', values: ['STOPPED'], from: f, timeoutMs: 5000 }), [subFrom]);
    assert.equal(ended.info, 'Stopped by publisher stop');

    t.diagnostic(`camera: publish()→PUBLISHING ${timing.publish} ms, play()→PLAYING ${timing.play} ms, play()→${MIN_FRAMES} frames ${timing.frames} ms; ` +
      `publisher ${outStats.codec} ${outStats.resolution.width}x${outStats.resolution.height} ${outStats.fps} fps ${Math.round(outStats.bitrate / 1000)} kbit/s; ` +
      `player ${inStats.codec} ${inStats.fps} fps ${Math.round(inStats.bitrate / 1000)} kbit/s lost ${inStats.packetsLost}`);
  }));

  test('publish a canvas (VP8) and the screen, play them', { timeout: SCENARIO_TIMEOUT_MS }, (t) => scenario(t, env, 'canvas', async (open) => {
    const name = uniqueName('sdk-canvas');
    const pub = await open('publisher');
    const sub = await open('player');
    await pub.step('connect', () => window.harness.connect('s'));
    const published = await pub.step('publish canvas', ([n]) => window.harness.publish('s', 'canvas', { name: n, source: 'canvas', width: 320, height: 240, codec: 'VP8' }), [name]);
    assert.equal(published.source, 'canvas');
    const [publishMsg] = pub.messages('>>', 'publishStream');
    assert.equal(publishMsg.data[0].hasAudio, false, 'a canvas publishes no audio unless asked');
    await sub.step('connect', () => window.harness.connect('s'));
    await sub.step('play', ([n]) => window.harness.play('s', 'view', { name: n, codec: 'VP8' }), [name]);
    const frames = await sub.step(`wait for ${MIN_FRAMES} frames`, ([n, ms]) => window.harness.waitFrames('view', n, ms), [MIN_FRAMES, STEP_MS]);
    assert.equal(frames.videoWidth, 320, `canvas size not kept: ${JSON.stringify(frames)}`);
    assert.equal(frames.videoHeight, 240, `canvas size not kept: ${JSON.stringify(frames)}`);
    const st = await sub.step('player getStats', () => window.harness.stats('view'));
    assertStats('player', st, { codec: 'VP8' });

    // source: 'screen' (getDisplayMedia; headless Chromium's fake screen is 1280x720), without the microphone.
    const screenName = uniqueName('sdk-screen');
    const screen = await pub.step('publish screen', ([n]) => window.harness.publish('s', 'screen', { name: n, source: 'screen', audio: false }), [screenName]);
    assert.equal(screen.source, 'screen');
    await sub.step('play screen', ([n]) => window.harness.play('s', 'screenView', { name: n }), [screenName]);
    const screenFrames = await sub.step('screen frames', ([n, ms]) => window.harness.waitFrames('screenView', n, ms), [MIN_FRAMES, STEP_MS]);
    assert.ok(screenFrames.videoWidth > 320, `the screen is not what plays: ${JSON.stringify(screenFrames)}`);
    t.diagnostic(`canvas: ${frames.count} frames at ${frames.videoWidth}x${frames.videoHeight}, ${st.codec} ${st.fps} fps; ` +
      `screen: ${screenFrames.count} frames at ${screenFrames.videoWidth}x${screenFrames.videoHeight}`);
  }));

  test('reconnect: the server closes the publisher\'s session, then the player\'s', { timeout: 90_000 }, (t) => scenario(t, env, 'reconnect', async (open) => {
    const name = uniqueName('sdk-reconnect');
    const pub = await open('publisher');
    const sub = await open('player');
    const fast = { initialDelayMs: 300, maxDelayMs: 2000 };
    const pubSession = await pub.step('connect', ([r]) => window.harness.connect('s', { login: 'publisher', reconnect: r }), [fast]);
    await pub.step('publish camera', ([n]) => window.harness.publish('s', 'cam', { name: n, source: 'camera', video: { width: 320, height: 240 } }), [name]);
    const subSession = await sub.step('connect', ([r]) => window.harness.connect('s', { login: 'viewer', reconnect: r }), [fast]);
    // Two players on one session: one waits for the publisher to come back, one keeps the default (ends).
    await sub.step('play (waitForRepublish)', ([n]) => window.harness.play('s', 'follow', { name: n, waitForRepublish: 20_000 }), [name]);
    await sub.step('play (default)', ([n]) => window.harness.play('s', 'plain', { name: n }), [name]);
    await sub.step('frames before', ([ms]) => window.harness.waitFrames('follow', 10, ms), [STEP_MS]);

    // 1. The server closes the publisher's connection.
    const pubFrom = await pub.step('mark', () => window.harness.mark());
    const subFrom = await sub.step('mark', () => window.harness.mark());
    const t0 = Date.now();
    const term = await rest(env.server.http, '/rest-api/connection/terminate', { sessionId: pubSession.id });
    assert.equal(term.status, 200, `connection/terminate: ${term.status} ${term.text}`);
    await pub.step('reconnecting', ([f]) => window.harness.waitRec({ src: 's', kind: 'reconnecting', values: [1], from: f, timeoutMs: 5000 }), [pubFrom]);
    const rec = await pub.step('reconnected', ([f, ms]) => window.harness.waitRec({ src: 's', kind: 'reconnected', from: f, timeoutMs: ms }), [pubFrom, STEP_MS]);
    assert.notEqual(rec.value, pubSession.id, 'the reconnected session has the old id');
    const statuses = await pub.step('republished', ([f, ms]) => window.harness.waitRec({ src: 'cam', kind: 'status', values: ['PUBLISHING'], from: f, timeoutMs: ms, failOn: [['status', 'UNPUBLISHED'], ['status', 'FAILED']] })
      .then(() => window.harness.recSince(f).filter((r) => r.src === 'cam' && r.kind === 'status').map((r) => r.value)), [pubFrom, STEP_MS]);
    const republishMs = Date.now() - t0;
    assert.deepEqual(statuses, ['RECONNECTING', 'PUBLISHING'], 'publisher stream statuses across the reconnect');
    const pubStream = await pub.step('publisher state', () => window.harness.stream('cam'));
    assert.equal(pubStream.name, name, 'republished under another name');
    const found = await rest(env.server.http, '/rest-api/stream/find', { name });
    assert.equal(found.status, 200, `stream/find after republish: ${found.status} ${found.text}`);
    const newPubSession = await pub.step('session', () => window.harness.session('s'));
    assert.ok(found.json.some((s) => s.published && s.sessionId === newPubSession.id), `not published by the new session: ${found.text}`);

    // The waiting player gets the stream back; the plain one ended for good.
    const waited = await sub.step('follow: WAITING', ([f]) => window.harness.waitRec({ src: 'follow', kind: 'status', values: ['WAITING'], from: f, timeoutMs: 5000 }), [subFrom]);
    assert.equal(waited.info, 'Stopped by publisher stop');
    await sub.step('follow: PLAYING again', ([f, ms]) => window.harness.waitRec({ src: 'follow', kind: 'status', values: ['PLAYING'], from: f, timeoutMs: ms, failOn: [['status', 'STOPPED'], ['status', 'FAILED']] }), [subFrom, STEP_MS]);
    const backMs = Date.now() - t0;
    const after1 = await sub.step('follow: frames after', ([ms]) => window.harness.waitFrames('follow', 30, ms), [STEP_MS]);
    const plain = await sub.step('plain state', () => window.harness.stream('plain'));
    assert.equal(plain.status, 'STOPPED', `the default player should have ended: ${JSON.stringify(plain)}`);
    assert.equal(plain.info, 'Stopped by publisher stop');

    // 2. The server closes the player's connection: its stream is played again, in the same element.
    const subFrom2 = await sub.step('mark', () => window.harness.mark());
    const t1 = Date.now();
    const term2 = await rest(env.server.http, '/rest-api/connection/terminate', { sessionId: subSession.id });
    assert.equal(term2.status, 200, `connection/terminate (player): ${term2.status} ${term2.text}`);
    const followStatuses = await sub.step('follow: replayed', ([f, ms]) => window.harness.waitRec({ src: 'follow', kind: 'status', values: ['PLAYING'], from: f, timeoutMs: ms, failOn: [['status', 'STOPPED'], ['status', 'FAILED']] })
      .then(() => window.harness.recSince(f).filter((r) => r.src === 'follow' && r.kind === 'status').map((r) => r.value)), [subFrom2, STEP_MS]);
    assert.deepEqual(followStatuses, ['RECONNECTING', 'PLAYING'], 'player stream statuses across its own reconnect');
    const replayMs = Date.now() - t1;
    const after2 = await sub.step('follow: frames after replay', ([ms]) => window.harness.waitFrames('follow', 30, ms), [STEP_MS]);
    const kinds = (await sub.step('session events', ([f]) => window.harness.recSince(f), [subFrom2])).filter((r) => r.src === 's').map((r) => r.kind);
    assert.ok(kinds.includes('reconnecting') && kinds.includes('reconnected'), `player session events: ${kinds.join(', ')}`);

    // 3. A deliberate disconnect does not reconnect. A player that waits only 1.5 s for a publisher ends STOPPED.
    await sub.step('play (waitForRepublish 1.5 s)', ([n]) => window.harness.play('s', 'short', { name: n, waitForRepublish: 1500 }), [name]);
    const subFrom3 = await sub.step('mark', () => window.harness.mark());
    const pubFrom3 = await pub.step('mark', () => window.harness.mark());
    await pub.step('disconnect', () => window.harness.call('s', 'disconnect'));
    await sleep(1500);
    const afterDisconnect = await pub.step('events after disconnect', ([f]) => window.harness.recSince(f), [pubFrom3]);
    assert.ok(afterDisconnect.some((r) => r.kind === 'disconnected' && r.value === true), `no deliberate 'disconnected': ${JSON.stringify(afterDisconnect)}`);
    assert.ok(!afterDisconnect.some((r) => r.kind === 'reconnecting'), `reconnecting after a deliberate disconnect: ${JSON.stringify(afterDisconnect)}`);
    assert.equal((await pub.step('publisher state', () => window.harness.stream('cam'))).status, 'UNPUBLISHED');
    const shortEnd = await sub.step('short: gives up', ([f]) => window.harness.waitRec({ src: 'short', kind: 'status', values: ['STOPPED', 'FAILED'], from: f, timeoutMs: 8000 })
      .then((hit) => ({ hit, statuses: window.harness.recSince(f).filter((r) => r.src === 'short' && r.kind === 'status').map((r) => r.value) })), [subFrom3]);
    assert.deepEqual(shortEnd.statuses, ['WAITING', 'STOPPED'], 'a player whose publisher does not come back in time');
    assert.equal(shortEnd.hit.info, 'Stopped by publisher stop');

    t.diagnostic(`reconnect: terminate→republished ${republishMs} ms, terminate→waiting player PLAYING ${backMs} ms ` +
      `(then ${after1.gained} frames), player's own terminate→PLAYING ${replayMs} ms (then ${after2.gained} frames)`);
  }));

  test('errors, and data both ways', { timeout: SCENARIO_TIMEOUT_MS }, (t) => scenario(t, env, 'errors', async (open) => {
    const p = await open('client');
    const session = await p.step('connect', () => window.harness.connect('s'));
    const notFound = await p.step('play unknown', ([n]) => window.harness.expectReject('s', 'play', { name: n }), [uniqueName('sdk-nothing')]);
    assert.equal(notFound.message, 'Stream not found', JSON.stringify(notFound));
    assert.equal(notFound.info, 'Stream not found');
    assert.ok(notFound.isSdkError && notFound.name === 'StreamgateError', JSON.stringify(notFound));
    const name = uniqueName('sdk-twice');
    await p.step('publish', ([n]) => window.harness.publish('s', 'first', { name: n, source: 'canvas' }), [name]);
    const inUse = await p.step('publish the same name', ([n]) => window.harness.expectReject('s', 'publish', { name: n, source: 'camera', audio: false }), [name]);
    assert.equal(inUse.message, 'Stream name is already in use', JSON.stringify(inUse));
    const dup = await p.step('joinRoom without login', () => window.harness.sessions.s.joinRoom('x').then(() => 'joined', (e) => e.message));
    assert.match(dup, /login/);
    // sendData: FAILED rejects with the server's info (a room command the room application refuses).
    const failed = await p.step('sendData refused', () => window.harness.sendData('s', { command: 'join', options: { name: '' } }));
    assert.match(failed, /^FAILED: /, failed);
    // The server's OnDataEvent (here from REST data/send) arrives as the session's 'data' event, with its payload.
    const from = await p.step('mark', () => window.harness.mark());
    const sent = await rest(env.server.http, '/rest-api/data/send', { sessionId: session.id, payload: { note: 'from REST' } });
    assert.equal(sent.status, 200, `data/send: ${sent.status} ${sent.text}`);
    const data = await p.step('data event', ([f]) => window.harness.waitRec({ src: 's', kind: 'data', from: f, timeoutMs: 5000 }), [from]);
    assert.deepEqual(JSON.parse(data.value), { note: 'from REST' });
    t.diagnostic(`errors: ${notFound.message}; ${inUse.message}; ${dup}; sendData ${failed}`);
  }));
});

