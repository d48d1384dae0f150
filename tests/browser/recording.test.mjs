// End-to-end test of recording and snapshots in headless Chromium:
//   1. the official Flashphoner Web SDK publishes with `createStream({record: true})`: `getRecordInfo()` names the file
//      once recording runs, REST `recorder/find_all` lists it, a second official-SDK page playing the stream gets the
//      STREAM_EVENTs `recordingStopped`/`recordingStarted` when REST restarts the recording, and at UNPUBLISHED
//      `getRecordInfo()` names a file that `GET /records/` lists (what WCS's recording example downloads);
//   2. the interview page (web/index.html) with two participants: "Start recording" shows "● Recording" on both pages
//      and reaches both through the room event, a third person joining meanwhile sees it at once, "Stop recording"
//      clears it everywhere, and each recorded participant's file is listed by `GET /records/` and plays, with
//      seeking, in a Chromium <video> from `/records/FILE` (range requests);
//   3. streamgate's own SDK: the publisher's and the player's `recording` events, and `stream.snapshot()` as a PNG
//      that decodes to the stream's size; a stream without video gets the server's refusal.
//
// A few seconds of media per recording keep it short. The interview page and the first-party SDK run on the server's
// own origin (`--web-dir <repo>/web`, so the files on disk are what is tested); the official SDK from a page server of
// the test.
//
// Run with `node --test recording.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running server (both or neither; loopback only)
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   STREAMGATE_WEB_DIR              the web/ folder to serve and test (default: <repo>/web)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPO_ROOT, consoleReport, httpGet, launchBrowser, openPage, pageSet, rest, serverReport, startPageServer,
  startServer, waitUntil,
} from './lib.mjs';

const WEB_DIR = process.env.STREAMGATE_WEB_DIR ? path.resolve(process.env.STREAMGATE_WEB_DIR) : path.join(REPO_ROOT, 'web');
const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);
const TEST_TIMEOUT_MS = 90_000;
const STEP_MS = 15_000;
const RECORD_MS = 3_000; // media written per recording: enough for a duration over 1 s and a seek to the middle

// ---------------------------------------------------------------------------------------------------------------
// In-page code
// ---------------------------------------------------------------------------------------------------------------

/** The official Web SDK's page: one session, one stream, every status and stream event recorded. */
function officialHarness() {
  const { SESSION_STATUS, STREAM_STATUS, STREAM_EVENT } = Flashphoner.constants;
  const h = { events: [], session: null, stream: null };
  window.harness = h;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const summary = (from) => h.events.slice(from).map((e) => `${e.kind}:${e.value}${e.info ? `(${e.info})` : ''}`).join(', ') || 'none';
  Flashphoner.init({});
  h.connect = (urlServer) => new Promise((resolve, reject) => {
    h.session = Flashphoner.createSession({ urlServer })
      .on(SESSION_STATUS.ESTABLISHED, () => resolve())
      .on(SESSION_STATUS.FAILED, () => reject(new Error('session FAILED')))
      .on(SESSION_STATUS.DISCONNECTED, () => reject(new Error('session DISCONNECTED')));
  });
  const watch = (stream) => {
    for (const s of [STREAM_STATUS.PUBLISHING, STREAM_STATUS.PLAYING, STREAM_STATUS.UNPUBLISHED, STREAM_STATUS.STOPPED, STREAM_STATUS.FAILED]) {
      stream.on(s, (st) => h.events.push({ kind: 'status', value: s, info: st.getInfo() || null, record: st.getRecordInfo() || null }));
    }
    // notifyStreamEvent reaches the application as STREAM_EVENT, with {type, payload}.
    stream.on(STREAM_EVENT, (e) => h.events.push({ kind: 'event', value: e.type, payload: e.payload }));
    h.stream = stream;
  };
  h.publish = (name) => {
    const display = document.getElementById('display');
    const stream = h.session.createStream({ name, display, record: true, constraints: { audio: true, video: { width: 320, height: 240 } } });
    watch(stream);
    stream.publish();
  };
  h.play = (name) => {
    const stream = h.session.createStream({ name, display: document.getElementById('display') });
    watch(stream);
    stream.play();
  };
  h.mark = () => h.events.length;
  h.waitFor = async (kind, value, from, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = h.events.slice(from).find((e) => e.kind === kind && e.value === value);
      if (hit) return hit;
      const bad = h.events.slice(from).find((e) => e.kind === 'status' && ['FAILED', 'STOPPED', 'UNPUBLISHED'].includes(e.value) && e.value !== value);
      if (bad) throw new Error(`got ${bad.value}${bad.info ? ` (${bad.info})` : ''} while waiting for ${kind} ${value}; events: ${summary(from)}`);
      if (performance.now() > deadline) throw new Error(`no ${kind} ${value} within ${timeoutMs} ms; events: ${summary(from)}`);
      await sleep(50);
    }
  };
  // getRecordInfo() is read from the status events: it has a value once the server said recording runs.
  h.waitForRecordInfo = async (notValue, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const file = h.stream.getRecordInfo();
      if (file && file !== notValue) return file;
      if (performance.now() > deadline) throw new Error(`getRecordInfo() gave ${JSON.stringify(file)} for ${timeoutMs} ms; events: ${summary(0)}`);
      await sleep(50);
    }
  };
}

const OFFICIAL_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>recording e2e (official SDK)</title></head>
<body><div id="display" style="width:320px;height:240px"></div>
<script src="/flashphoner.js"></script>
<script>(${officialHarness.toString()})();</script>
</body></html>
`;

/** streamgate's SDK, loaded from the server like an application would: sessions, streams and their events. */
function firstPartyHarness() {
  const h = { sdk: null, sessions: {}, streams: {}, rec: [] };
  window.harness = h;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  h.load = async () => {
    h.sdk = await import('/sdk/streamgate.js');
  };
  h.connect = async (key) => {
    h.sessions[key] = await h.sdk.connect({});
  };
  const watch = (key, s) => {
    h.streams[key] = s;
    s.on('recording', (e) => h.rec.push({ src: key, kind: 'recording', value: e.active, recordName: e.recordName }));
    s.on('event', (e) => h.rec.push({ src: key, kind: 'event', value: e.type, payload: e.payload }));
    s.on('status', (e) => h.rec.push({ src: key, kind: 'status', value: e.status, info: e.info }));
  };
  // A 320x240 canvas drawn by a timer (it runs in a background page too).
  h.canvas = () => {
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 240;
    document.body.append(c);
    const g = c.getContext('2d');
    let n = 0;
    setInterval(() => {
      n += 1;
      g.fillStyle = `hsl(${(n * 7) % 360} 70% 45%)`;
      g.fillRect(0, 0, 320, 240);
      g.fillStyle = '#fff';
      g.font = '40px sans-serif';
      g.fillText(String(n), 20, 130);
    }, 33);
    return c;
  };
  h.publish = async (sessionKey, key, options) => {
    const opts = { ...options };
    if (opts.source === 'canvas') opts.source = h.canvas();
    const s = await h.sessions[sessionKey].publish(opts);
    watch(key, s);
    return { id: s.id, name: s.name, recording: s.recording };
  };
  h.play = async (sessionKey, key, options) => {
    const v = document.createElement('video');
    v.muted = true;
    document.body.append(v);
    const s = await h.sessions[sessionKey].play({ ...options, element: v });
    watch(key, s);
    return { id: s.id, name: s.name };
  };
  h.mark = () => h.rec.length;
  h.waitRec = async ({ src, kind, value, from, timeoutMs }) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = h.rec.slice(from).find((r) => r.src === src && r.kind === kind && r.value === value);
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`${src}: no ${kind} ${value} within ${timeoutMs} ms; got: ${JSON.stringify(h.rec.slice(from))}`);
      await sleep(50);
    }
  };
  // snapshot() as the application gets it, then decoded by the browser as a PNG.
  h.snapshot = async (key) => {
    const started = performance.now();
    const b64 = await h.streams[key].snapshot();
    const ms = Math.round(performance.now() - started);
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const head = atob(b64.slice(0, 12));
    return { ms, bytes: Math.floor((b64.length * 3) / 4), width: img.naturalWidth, height: img.naturalHeight, pngSignature: head.slice(1, 4) === 'PNG' };
  };
  h.snapshotError = (key) => h.streams[key].snapshot().then(
    () => { throw new Error('snapshot() resolved instead of rejecting'); },
    (e) => ({ name: e.name, message: e.message, info: e.info ?? null }),
  );
  h.disconnectAll = () => Object.values(h.sessions).forEach((s) => s.disconnect());
}

const FIRST_PARTY_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>recording e2e (streamgate SDK)</title></head>
<body><script type="module">(${firstPartyHarness.toString()})(); window.harness.load().then(() => { window.harnessReady = true; });</script></body></html>
`;

/**
 * Plays a record file from the server in a <video> element of the page: waits for data at the start, reads the size
 * and duration, then seeks to the middle, which needs the server's range requests (a WebM or MP4 file is only
 * seekable when the browser can fetch the part it needs).
 */
async function playRecord(src) {
  const v = document.createElement('video');
  v.muted = true;
  v.preload = 'auto';
  document.body.append(v);
  const once = (ev, ms) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ev} within ${ms} ms (readyState ${v.readyState}, error ${v.error?.message ?? v.error?.code ?? 'none'})`)), ms);
    v.addEventListener(ev, () => { clearTimeout(timer); resolve(); }, { once: true });
    v.addEventListener('error', () => { clearTimeout(timer); reject(new Error(`media error ${v.error?.code}: ${v.error?.message}`)); }, { once: true });
  });
  const loaded = once('loadeddata', 10_000);
  v.src = src;
  await loaded;
  const start = { readyState: v.readyState, width: v.videoWidth, height: v.videoHeight, duration: v.duration };
  const mid = Number.isFinite(v.duration) ? v.duration / 2 : 0;
  const seeked = once('seeked', 10_000);
  v.currentTime = mid;
  await seeked;
  // After a seek the element may need a moment to have the frame at the new position.
  const deadline = performance.now() + 5000;
  while (v.readyState < 2 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const seekable = v.seekable.length ? { start: v.seekable.start(0), end: v.seekable.end(v.seekable.length - 1) } : null;
  const out = { start, mid, afterSeek: { currentTime: v.currentTime, readyState: v.readyState }, seekable };
  v.remove();
  return out;
}

// In-page state of the interview page.
const interviewState = () => {
  const ind = document.querySelector('[data-testid="recording-indicator"]');
  const btn = document.querySelector('[data-testid="record"]');
  return {
    indicator: { visible: Boolean(ind && ind.offsetParent !== null && ind.getClientRects().length), text: ind?.textContent ?? null, role: ind?.getAttribute('role'), logins: ind?.dataset.logins ?? '' },
    button: { text: btn?.textContent, pressed: btn?.getAttribute('aria-pressed'), disabled: btn?.disabled },
    tiles: [...document.querySelectorAll('[data-testid="tile"]')].map((t) => ({ login: t.dataset.login, recording: t.dataset.recording, frames: t.querySelector('video').getVideoPlaybackQuality().totalVideoFrames, width: t.querySelector('video').videoWidth })),
    localRecording: document.querySelector('[data-testid="local-tile"]').dataset.recording,
    local: window.interview.local?.name ?? null,
    recordings: window.interview.room?.recordings ?? [],
    events: window.recordingEvents || [],
    chat: [...document.querySelectorAll('[data-testid="chat-system"]')].map((m) => m.textContent),
  };
};

// ---------------------------------------------------------------------------------------------------------------
// Node side
// ---------------------------------------------------------------------------------------------------------------

/** Adds signaling-frame capture to a page opened with openPage (for the failure report). */
function captureFrames(p) {
  const frames = [];
  p.page.on('websocket', (ws) => {
    const record = (dir) => ({ payload }) => frames.push({ dir, at: Date.now(), payload: String(payload) });
    ws.on('framesent', record('>>'));
    ws.on('framereceived', record('<<'));
  });
  return Object.assign(p, {
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
  });
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
    const state = await p.page.evaluate(() => JSON.stringify(window.harness ? (window.harness.events || window.harness.rec) : window.interview ? { recordings: window.interview.room?.recordings, events: window.recordingEvents } : null))
      .catch((e) => `unavailable (${String(e.message).split('\n')[0]})`);
    parts.push(`----- ${p.role}: page state: ${state}`);
    parts.push(`----- ${p.role}: signaling frames -----\n${formatFrames((p.frames || []).slice(-60)) || '  (none)'}`);
    parts.push(consoleReport(p));
  }
  parts.push(serverReport(server));
  return parts.join('\n');
}

/** Runs `body(open)` with pages opened through `openRole`, printing a report if it fails. */
async function scenario(t, env, label, openRole, body) {
  const { pages, open, closeAll } = pageSet(t, openRole);
  try {
    await body(open);
    for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
  } catch (e) {
    console.error(`\n===== ${label} failed: ${e.message}\n${await report(pages, env.server)}\n===== end of ${label} report\n`);
    throw e;
  } finally {
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness?.disconnectAll?.() ?? window.harness?.session?.disconnect()).catch(() => {})));
    await closeAll();
  }
}

/**
 * `GET /records/` until it lists a finished file of `stream` (named `name`, when given). A recording is finalized
 * just after it stops, and with the default name template (`{streamName}-{startTime}-{endTime}`) it is renamed then:
 * the name announced at the start (`…-recording.webm`) is not the final one, which the stop announces.
 */
async function finishedRecord(env, stream, name = null, { except = null } = {}) {
  const what = `GET /records/: a finished file of ${stream}${name ? ` named ${name}` : ''}${except ? ` other than ${except}` : ''}`;
  const { file } = await waitUntil(what, async () => {
    const r = await httpGet(env.server.http, '/records/');
    assert.equal(r.status, 200, `GET /records/: ${r.status} ${r.text.slice(0, 500)}`);
    assert.ok(Array.isArray(r.json), `GET /records/ is not a JSON array: ${r.text.slice(0, 500)}`);
    const f = r.json.find((x) => x.stream === stream && x.complete && (!name || x.name === name) && x.name !== except);
    return { ok: Boolean(f), file: f, seen: r.json };
  }, 10_000, 200);
  return file;
}

/** The server serves `/records/FILE` with ranges: a partial request answers 206 with exactly those bytes. */
async function assertRanges(env, file) {
  const url = `/records/${encodeURIComponent(file.name)}`;
  const whole = await fetch(`${env.server.http}${url}`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
  assert.equal(whole.status, 200, `HEAD ${url}: ${whole.status}`);
  assert.equal(whole.headers.get('accept-ranges'), 'bytes', `HEAD ${url}: no Accept-Ranges: bytes`);
  const part = await fetch(`${env.server.http}${url}`, { headers: { range: 'bytes=100-199' }, signal: AbortSignal.timeout(5000) });
  const body = Buffer.from(await part.arrayBuffer());
  assert.equal(part.status, 206, `GET ${url} with Range: ${part.status}`);
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${file.size}`, `GET ${url}: Content-Range`);
  assert.equal(body.length, 100, `GET ${url} with Range: ${body.length} bytes`);
}

function assertPlayed(what, played) {
  assert.ok(played.start.readyState >= 2, `${what}: readyState ${played.start.readyState}: ${JSON.stringify(played)}`);
  assert.ok(played.start.width > 0, `${what}: no video size: ${JSON.stringify(played)}`);
  assert.ok(Number.isFinite(played.start.duration) && played.start.duration > 1, `${what}: duration ${played.start.duration}: ${JSON.stringify(played)}`);
  assert.ok(Math.abs(played.afterSeek.currentTime - played.mid) < 0.5, `${what}: the seek to ${played.mid} s landed at ${played.afterSeek.currentTime}: ${JSON.stringify(played)}`);
  assert.ok(played.afterSeek.readyState >= 2, `${what}: no data after seeking: ${JSON.stringify(played)}`);
}

const uniqueName = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

describe('recording and snapshots', () => {
  const env = { server: null, browser: null, pageServer: null };

  before(async () => {
    // The room's composite at 640x360, 15 fps: three browsers and the mixer share two cores.
    env.server = await startServer({ extraArgs: ['--web-dir', WEB_DIR, '--set', 'mixer.width=640', '--set', 'mixer.height=360', '--set', 'mixer.fps=15'] });
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: OFFICIAL_PAGE },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.pageServer?.close();
    await env.server?.stop();
  });

  test('official Web SDK: createStream({record: true}), getRecordInfo(), recordingStarted at a player', { timeout: TEST_TIMEOUT_MS }, (t) => scenario(t, env, 'official SDK recording',
    async (role, signal) => captureFrames(await openPage(env.browser, env.pageServer.url, role, signal)),
    async (open) => {
      const name = uniqueName('rec-websdk');
      const pub = await open('publisher');
      await pub.step('connect', ([ws]) => window.harness.connect(ws), [env.server.ws]);
      await pub.step('publish with record: true', ([n]) => window.harness.publish(n), [name]);
      await pub.step('PUBLISHING', ([ms]) => window.harness.waitFor('status', 'PUBLISHING', 0, ms), [STEP_MS]);
      assert.equal(pub.messages('>>', 'publishStream')[0]?.data[0].record, true, 'the SDK did not send record: true');
      const first = await pub.step('getRecordInfo()', ([ms]) => window.harness.waitForRecordInfo(null, ms), [STEP_MS]);
      const status = pub.messages('<<', 'notifyStreamStatusEvent').find((m) => m.data[0].recordName === first);
      assert.equal(status?.data[0].record, true, `the status event naming ${first} does not say record: true: ${JSON.stringify(status)}`);
      const publisherId = status.data[0].mediaSessionId;

      const all = await rest(env.server.http, '/rest-api/recorder/find_all', {});
      assert.equal(all.status, 200, `recorder/find_all: ${all.status} ${all.text}`);
      assert.ok(all.json.some((r) => r.fileName === first && r.mediaSessionId === publisherId && r.streamName === name), `recorder/find_all does not list ${first}: ${all.text}`);

      const sub = await open('player');
      await sub.step('connect', ([ws]) => window.harness.connect(ws), [env.server.ws]);
      await sub.step('play', ([n]) => window.harness.play(n), [name]);
      await sub.step('PLAYING', ([ms]) => window.harness.waitFor('status', 'PLAYING', 0, ms), [STEP_MS]);

      // Recording stops and starts again (REST) while the player plays: it hears both as STREAM_EVENTs.
      let from = await sub.step('mark', () => window.harness.mark());
      const stopped = await rest(env.server.http, '/rest-api/stream/stopRecording', { mediaSessionId: publisherId });
      assert.equal(stopped.status, 200, `stopRecording: ${stopped.status} ${stopped.text}`);
      const stopEvent = await sub.step('recordingStopped', ([f, ms]) => window.harness.waitFor('event', 'recordingStopped', f, ms), [from, 5000]);
      assert.equal(stopEvent.payload?.streamName, name, `recordingStopped payload: ${JSON.stringify(stopEvent.payload)}`);
      const firstFinal = stopEvent.payload.recordName;
      assert.ok(typeof firstFinal === 'string' && firstFinal.startsWith(name), `recordingStopped payload: ${JSON.stringify(stopEvent.payload)}`);
      from = await sub.step('mark', () => window.harness.mark());
      const started = await rest(env.server.http, '/rest-api/stream/startRecording', { mediaSessionId: publisherId });
      assert.equal(started.status, 200, `startRecording: ${started.status} ${started.text}`);
      const second = started.json?.fileName;
      assert.ok(second && second !== first, `startRecording named ${JSON.stringify(second)} (the first file was ${first})`);
      const startEvent = await sub.step('recordingStarted', ([f, ms]) => window.harness.waitFor('event', 'recordingStarted', f, ms), [from, 5000]);
      assert.deepEqual(startEvent.payload, { recordName: second, streamName: name }, 'recordingStarted payload');
      assert.equal(await pub.step('getRecordInfo() after the restart', ([f, ms]) => window.harness.waitForRecordInfo(f, ms), [first, 5000]), second);
      await sleep(1000);
      const firstFile = await finishedRecord(env, name, firstFinal);
      const pubFrom = await pub.step('mark', () => window.harness.mark());
      await pub.step('stop', () => window.harness.stream.stop());
      const unpublished = await pub.step('UNPUBLISHED', ([f, ms]) => window.harness.waitFor('status', 'UNPUBLISHED', f, ms), [pubFrom, 5000]);
      // What WCS's recording example does: at UNPUBLISHED, getRecordInfo() names the file to fetch from the records.
      assert.ok(unpublished.record, `getRecordInfo() is empty at UNPUBLISHED: ${JSON.stringify(unpublished)}`);
      const secondFile = await finishedRecord(env, name, unpublished.record, { except: firstFile.name });
      t.diagnostic(`official SDK: getRecordInfo() ${first}, after a REST restart ${second}, at UNPUBLISHED ${unpublished.record}; ` +
        `/records/ lists ${JSON.stringify(firstFile)} and ${JSON.stringify(secondFile)}`);
    }));

  test('interview page: "Start recording" shows "● Recording" to all, the files play with seeking', { timeout: TEST_TIMEOUT_MS }, (t) => {
    const room = uniqueName('rec-interview');
    const urlFor = (login) => `${env.server.http}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(login)}`;
    return scenario(t, env, 'interview recording',
      async (role, signal) => captureFrames(await openPage(env.browser, urlFor(role), role, signal, { ready: () => window.interview?.local?.status === 'PUBLISHING' })),
      async (open) => {
        const people = { employer: await open('employer'), candidate: await open('candidate') };
        const state = (p) => p.page.evaluate(interviewState);
        for (const [login, p] of Object.entries(people)) {
          const other = login === 'employer' ? 'candidate' : 'employer';
          await waitUntil(`${login}: ${other}'s tile decoding`, async () => {
            const s = await state(p);
            return { ok: s.tiles.length === 1 && s.tiles[0].login === other && s.tiles[0].frames >= 10 && s.tiles[0].width > 0, seen: s.tiles };
          }, STEP_MS);
          // What the page's room tells it, beside what the page shows.
          await p.page.evaluate(() => {
            window.recordingEvents = [];
            window.interview.room.on('recording', (e) => window.recordingEvents.push(e));
          });
          const s = await state(p);
          assert.equal(s.indicator.visible, false, `${login}: recording shown before anyone asked: ${JSON.stringify(s.indicator)}`);
          assert.equal(s.button.text, 'Start recording', `${login}: ${JSON.stringify(s.button)}`);
        }
        const streams = {};
        for (const [login, p] of Object.entries(people)) streams[login] = (await state(p)).local;

        const t0 = Date.now();
        await people.employer.page.click('[data-testid="record"]');
        const shown = {};
        for (const [login, p] of Object.entries(people)) {
          const s = (await waitUntil(`${login}: "● Recording" for both participants`, async () => {
            const now = await state(p);
            const ok = now.indicator.visible && /● Recording/.test(now.indicator.text) &&
              now.indicator.logins.split(',').sort().join() === 'candidate,employer' &&
              now.tiles.every((x) => x.recording === 'true') && now.localRecording === 'true' &&
              now.button.text === 'Stop recording';
            return { ok, seen: now, now };
          }, 10_000)).now;
          shown[login] = Date.now() - t0;
          assert.equal(s.indicator.role, 'status', 'the indicator is announced (role=status)');
          assert.match(s.indicator.text, login === 'employer' ? /you, candidate/ : /you, employer/, `${login}: whom the indicator names`);
          const active = s.events.filter((e) => e.active).map((e) => `${e.login}:${e.name}`).sort();
          assert.deepEqual(active, [`candidate:${streams.candidate}`, `employer:${streams.employer}`], `${login}: room recording events`);
          assert.ok(s.events.every((e) => e.recordName), `${login}: a recording event without a file: ${JSON.stringify(s.events)}`);
          assert.ok(s.chat.some((m) => /being recorded/.test(m)), `${login}: no chat note: ${JSON.stringify(s.chat)}`);
        }

        // Someone who joins while the recording runs is told at once whose streams are recorded, and its own stream
        // joins the recording (the interview is recorded whole, latecomers included).
        people.hr = await open('hr');
        const late = (await waitUntil('hr: "● Recording" for employer and candidate', async () => {
          const now = await state(people.hr);
          const logins = now.indicator.logins.split(',');
          const ok = now.indicator.visible && ['candidate', 'employer'].every((l) => logins.includes(l)) &&
            now.tiles.length === 2 && now.tiles.every((x) => x.recording === 'true');
          return { ok, seen: now, now };
        }, 10_000)).now;
        assert.match(late.indicator.text, /● Recording · .*candidate, employer/, 'hr: whom the indicator names');
        assert.ok([streams.candidate, streams.employer].every((n) => late.recordings.some((r) => r.name === n)), `hr: room.recordings ${JSON.stringify(late.recordings)}`);
        streams.hr = late.local;
        for (const [login, p] of Object.entries(people)) {
          await waitUntil(`${login}: hr's stream recorded too`, async () => {
            const now = await state(p);
            const ok = now.indicator.logins.split(',').sort().join() === 'candidate,employer,hr' &&
              now.tiles.every((x) => x.recording === 'true') && now.localRecording === 'true';
            return { ok, seen: now };
          }, 10_000);
        }

        await sleep(RECORD_MS);
        await people.candidate.page.click('[data-testid="record"]');
        for (const [login, p] of Object.entries(people)) {
          const s = (await waitUntil(`${login}: recording cleared`, async () => {
            const now = await state(p);
            const ok = !now.indicator.visible && now.tiles.every((x) => x.recording === 'false') && now.localRecording === 'false' && now.button.text === 'Start recording';
            return { ok, seen: now, now };
          }, 10_000)).now;
          if (login !== 'hr') assert.deepEqual(s.events.filter((e) => !e.active).map((e) => e.name).sort(), [streams.candidate, streams.employer, streams.hr].sort(), `${login}: recording stopped events`);
        }

        // Each recorded participant's stream has its file; the browser plays it, at the start and after a seek.
        const results = [];
        for (const login of ['employer', 'candidate']) {
          const file = await finishedRecord(env, streams[login]);
          await assertRanges(env, file);
          const played = await people.employer.step(`play /records/${file.name}`, playRecord, `/records/${encodeURIComponent(file.name)}`);
          assertPlayed(`${login}'s recording ${file.name}`, played);
          results.push(`${file.name}: ${file.size} bytes, ${played.start.width}x${played.start.height}, ${played.start.duration.toFixed(2)} s, seek to ${played.mid.toFixed(2)} s → ${played.afterSeek.currentTime.toFixed(2)} s`);
        }
        // The whole interview is one file too: the composite plays, and the room's sidecar names everyone.
        const composite = await finishedRecord(env, `${room}-interview`);
        const mixed = await people.employer.step(`play /records/${composite.name}`, playRecord, `/records/${encodeURIComponent(composite.name)}`);
        assertPlayed(`the composite ${composite.name}`, mixed);
        assert.equal(mixed.start.width, 640, `the composite's picture: ${JSON.stringify(mixed.start)}`);
        const sidecars = await rest(env.server.http, '/rest-api/room/recordings', { name: room });
        assert.equal(sidecars.status, 200, `room/recordings: ${sidecars.status} ${sidecars.text}`);
        const sidecar = sidecars.json[0];
        assert.deepEqual(sidecar?.participants.map((p) => p.login).sort(), ['candidate', 'employer', 'hr'], `the sidecar: ${sidecars.text}`);
        assert.equal(sidecar.composite.file, composite.name, `the sidecar's composite: ${sidecars.text}`);
        results.push(`composite ${composite.name}: ${composite.size} bytes, ${mixed.start.width}x${mixed.start.height}, ${mixed.start.duration.toFixed(2)} s`);
        t.diagnostic(`interview: "● Recording" shown to employer ${shown.employer} ms, candidate ${shown.candidate} ms after the click, and to hr on joining; ${results.join('; ')}`);
      });
  });

  test('streamgate SDK: recording events, snapshot() as a PNG of the stream\'s size', { timeout: TEST_TIMEOUT_MS }, (t) => scenario(t, env, 'first-party SDK',
    async (role, signal) => {
      const p = captureFrames(await openPage(env.browser, `${env.server.http}/health`, role, signal, { ready: () => true }));
      await p.page.setContent(FIRST_PARTY_PAGE);
      await p.page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10_000 });
      return p;
    },
    async (open) => {
      const name = uniqueName('rec-sdk');
      const pub = await open('publisher');
      const sub = await open('player');
      await pub.step('connect', () => window.harness.connect('s'));
      await sub.step('connect', () => window.harness.connect('s'));
      const published = await pub.step('publish a canvas with record: true', ([n]) => window.harness.publish('s', 'cam', { name: n, source: 'canvas', codec: 'H264', record: true }), [name]);
      const started = await pub.step('publisher: recording event', ([ms]) => window.harness.waitRec({ src: 'cam', kind: 'recording', value: true, from: 0, timeoutMs: ms }), [STEP_MS]);
      assert.ok(started.recordName, `no file name: ${JSON.stringify(started)}`);
      assert.equal((await pub.step('stream.recording', () => window.harness.streams.cam.recording)).recordName, started.recordName);
      await sub.step('play', ([n]) => window.harness.play('s', 'view', { name: n }), [name]);

      // The recording stops (REST): the player and the publisher are both told.
      await sleep(RECORD_MS);
      const pubFrom = await pub.step('mark', () => window.harness.mark());
      const subFrom = await sub.step('mark', () => window.harness.mark());
      const stopped = await rest(env.server.http, '/rest-api/stream/stopRecording', { mediaSessionId: published.id });
      assert.equal(stopped.status, 200, `stopRecording: ${stopped.status} ${stopped.text}`);
      const pubStop = await pub.step('publisher: recording stopped', ([f]) => window.harness.waitRec({ src: 'cam', kind: 'recording', value: false, from: f, timeoutMs: 5000 }), [pubFrom]);
      const subStop = await sub.step('player: recording stopped', ([f]) => window.harness.waitRec({ src: 'view', kind: 'recording', value: false, from: f, timeoutMs: 5000 }), [subFrom]);
      assert.ok(pubStop.recordName, `publisher: the stop names no file: ${JSON.stringify(pubStop)}`);
      assert.equal(subStop.recordName, pubStop.recordName, 'the player and the publisher name different files');

      // The H.264 recording is an MP4 that plays and seeks.
      const file = await finishedRecord(env, name, pubStop.recordName);
      assert.match(file.name, /\.mp4$/, 'an H.264 recording is an MP4');
      await assertRanges(env, file);
      const played = await sub.step(`play /records/${file.name}`, playRecord, `/records/${encodeURIComponent(file.name)}`);
      assertPlayed(`recording ${file.name}`, played);
      assert.equal(played.start.width, 320, `recording width: ${JSON.stringify(played)}`);

      // A stream without video: the server refuses, and snapshot() rejects with its info.
      await pub.step('publish audio only', ([n]) => window.harness.publish('s', 'mic', { name: n, source: 'camera', video: false }), [`${name}-audio`]);
      const refused = await pub.step('snapshot() of audio only', () => window.harness.snapshotError('mic'));
      assert.equal(refused.name, 'StreamgateError', JSON.stringify(refused));
      assert.ok(refused.info && refused.info === refused.message, `no info from the server: ${JSON.stringify(refused)}`);
      // Snapshots of both sides: PNGs the browser decodes, at the canvas's size.
      const snaps = {};
      for (const [who, p, key] of [['publisher', pub, 'cam'], ['player', sub, 'view']]) {
        snaps[who] = await p.step(`${who}: snapshot()`, ([k]) => window.harness.snapshot(k), [key]);
        assert.ok(snaps[who].pngSignature, `${who}: not a PNG: ${JSON.stringify(snaps[who])}`);
        assert.equal(snaps[who].width, 320, `${who}: snapshot width: ${JSON.stringify(snaps[who])}`);
        assert.equal(snaps[who].height, 240, `${who}: snapshot height: ${JSON.stringify(snaps[who])}`);
      }
      const request = pub.messages('>>', 'snapshot').find((m) => m.data?.[0]?.name === name);
      assert.deepEqual(request?.data[0], { name, mediaSessionId: published.id }, 'the snapshot request');

      t.diagnostic(`streamgate SDK: snapshot publisher ${snaps.publisher.ms} ms (${snaps.publisher.bytes} bytes), player ${snaps.player.ms} ms; ` +
        `recording ${file.name} ${played.start.width}x${played.start.height} ${played.start.duration.toFixed(2)} s; audio-only snapshot: ${refused.info}`);
    }));
});
