// End-to-end test of streamgate's RTMP bridge with real clients on both sides: ffmpeg publishes and plays RTMP, the
// official Flashphoner Web SDK publishes and plays WebRTC in headless Chromium.
//
//   1. RTMP -> browser: ffmpeg publishes H.264 with B-frames and AAC; the browser must decode the video in order
//      (the server re-encodes B-frames) and hear the audio (AAC -> Opus).
//   2. browser -> RTMP: the browser publishes H.264, then VP8; ffmpeg must read H.264 and AAC (Opus -> AAC, and
//      VP8 -> H.264) from rtmp://.../live/NAME and decode frames of both.
//   3. RTMP errors: playing an unknown name fails at once; a second publisher of a name in use is refused while the
//      first keeps playing in the browser.
//
// Run with `node --test rtmp.test.mjs` (or `sh run.sh`, see README.md). Environment: as websdk.test.mjs, plus
//   STREAMGATE_RTMP   host:port of the running server's RTMP listener (with STREAMGATE_WS/STREAMGATE_HTTP; without
//                     it this file starts its own server)
//   FFMPEG_BIN        ffmpeg (default: ffmpeg on the PATH)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Tail, consoleReport, isLoopbackHost, launchBrowser, openPage, pageSet, rest, sdpCodecs, serverReport,
  startPageServer, startServer,
} from './lib.mjs';

const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);
const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';

const CONNECT_TIMEOUT_MS = 5_000;
const PUBLISH_TIMEOUT_MS = 12_000;
const PLAY_TIMEOUT_MS = 15_000;
const FRAMES_TIMEOUT_MS = 20_000;
const RTMP_LISTED_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const MIN_FRAMES = 45;
// How long ffmpeg reads the browser's stream, and what it must decode in that time (the fake camera runs at 30 fps,
// AAC has 48000 / 1024 = 47 frames a second; the floors leave room for a loaded machine).
const READ_SECONDS = 3;
const MIN_READ_VIDEO_FRAMES = 30;
const MIN_READ_AUDIO_FRAMES = 60;

// The RTMP source of the brief: a live test pattern with B-frames (-bf 2) and a loud 440 Hz sine in AAC.
const publishArgs = (url) => [
  '-hide_banner', '-nostats', '-loglevel', 'info', '-re',
  '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30',
  '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '60', '-pix_fmt', 'yuv420p',
  '-c:a', 'aac', '-b:a', '96k',
  '-f', 'flv', url,
];

// ---------------------------------------------------------------------------------------------------------------
// Code that runs inside the test page (serialized into it): the Web SDK plus what the test measures.
// ---------------------------------------------------------------------------------------------------------------
function pageHarness() {
  const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
  const display = document.getElementById('display');
  const TERMINAL = [STREAM_STATUS.FAILED, STREAM_STATUS.STOPPED, STREAM_STATUS.UNPUBLISHED];
  const h = {
    events: [],
    session: null,
    stream: null,
    video: null,
    startedAt: null,
    // Every frame requestVideoFrameCallback reports: its count and size, and any mediaTime that did not go up
    // (a frame shown out of order, as undecoded B-frames would be).
    frames: { count: 0, firstAt: null, width: 0, height: 0, sizes: {}, last: null, first: [], outOfOrder: { count: 0, samples: [] }, repeats: { count: 0, samples: [] }, mediaJitter: { count: 0, samples: [] } },
    audio: null,
  };
  window.harness = h;
  // Every peer connection the SDK makes, so that the received audio can be reached even when the SDK's <video> did
  // not get it (the SDK shows event.streams[0] of the last track event).
  h.pcs = [];
  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = function RTCPeerConnection(...args) {
    const pc = new NativePC(...args);
    h.pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = NativePC.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, NativePC);
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

  const trackFrames = () => {
    const attach = (video) => {
      h.video = video;
      const f = h.frames;
      const onFrame = (_now, meta) => {
        if (meta.width > 0 && meta.height > 0) {
          if (f.count === 0) f.firstAt = performance.now();
          f.count += 1;
          f.width = meta.width;
          f.height = meta.height;
          const size = `${meta.width}x${meta.height}`;
          f.sizes[size] = (f.sizes[size] || 0) + 1;
          // Order: the RTP timestamp of each frame shown (WebRTC frames carry it) must go up; mediaTime, which
          // Chromium derives from its estimated render time, must not step back by half a frame or more. A frame
          // reported twice (same RTP timestamp and mediaTime) is a repeat, not disorder; mediaTime standing still or
          // stepping back by less while the RTP timestamp goes up is render-time jitter. Both are counted.
          const cur = { frame: f.count, mediaTime: meta.mediaTime, rtp: meta.rtpTimestamp ?? null, presentedFrames: meta.presentedFrames };
          if (f.first.length < 12) f.first.push(cur);
          const p = f.last;
          if (p) {
            const mediaStep = cur.mediaTime - p.mediaTime;
            const rtpStep = cur.rtp !== null && p.rtp !== null ? (cur.rtp - p.rtp) >>> 0 : null;
            let kind = null;
            if (rtpStep === null) kind = mediaStep > 0 ? null : 'out of order';
            else if (rtpStep >= 2 ** 31 || mediaStep < -0.016) kind = 'out of order';
            else if (rtpStep === 0) kind = mediaStep === 0 ? 'repeat' : 'out of order';
            else if (mediaStep <= 0) kind = 'mediaTime jitter';
            if (kind) {
              const list = kind === 'out of order' ? f.outOfOrder : kind === 'repeat' ? f.repeats : f.mediaJitter;
              list.count += 1;
              if (list.samples.length < 10) list.samples.push({ previous: p, frame: cur });
            }
          }
          f.last = cur;
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
    const f = h.frames;
    return {
      videoElement: Boolean(v),
      count: f.count,
      firstFrameMs: f.firstAt === null ? null : Math.round(f.firstAt - h.startedAt),
      frameWidth: f.width,
      frameHeight: f.height,
      sizes: f.sizes,
      outOfOrder: f.outOfOrder,
      repeats: f.repeats,
      mediaJitter: f.mediaJitter,
      first: f.first,
      videoWidth: v ? v.videoWidth : 0,
      videoHeight: v ? v.videoHeight : 0,
      readyState: v ? v.readyState : null,
      paused: v ? v.paused : null,
      muted: v ? v.muted : null,
      audioTracks: v && v.srcObject ? v.srcObject.getAudioTracks().length : 0,
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

  // Native RTP stats of the stream's peer connection, by kind: codec, counters, and the audio level fields.
  h.rtpStats = async (type) => {
    const raw = await Promise.race([
      new Promise((resolve) => h.stream.getStats(resolve, true)),
      sleep(5000).then(() => {
        throw new Error('getStats gave no answer within 5 s');
      }),
    ]);
    const byId = new Map(Object.values(raw).flat().map((r) => [r.id, r]));
    const pick = (obj, keys) => Object.fromEntries(keys.filter((k) => obj && obj[k] !== undefined).map((k) => [k, obj[k]]));
    const transport = (raw.transport || [])[0];
    const pair = transport && byId.get(transport.selectedCandidatePairId);
    const out = {
      remoteAddress: pair ? (byId.get(pair.remoteCandidateId) || {}).address || null : null,
    };
    for (const kind of ['video', 'audio']) {
      const rtp = (raw[type] || []).find((r) => r.kind === kind);
      const codec = rtp ? byId.get(rtp.codecId) : null;
      out[kind] = {
        mimeType: codec ? codec.mimeType : null,
        sdpFmtpLine: codec ? codec.sdpFmtpLine || '' : null,
        ...pick(rtp, [
          'packetsReceived', 'packetsSent', 'bytesReceived', 'bytesSent', 'packetsLost', 'framesDecoded',
          'framesEncoded', 'keyFramesDecoded', 'frameWidth', 'frameHeight', 'framesPerSecond', 'framesDropped',
          'decoderImplementation', 'encoderImplementation', 'pliCount', 'nackCount',
          'audioLevel', 'totalAudioEnergy', 'totalSamplesDuration', 'totalSamplesReceived', 'concealedSamples',
          'silentConcealedSamples', 'concealmentEvents', 'jitterBufferDelay', 'jitterBufferEmittedCount', 'jitter',
          'insertedSamplesForDeceleration', 'removedSamplesForAcceleration',
        ]),
      };
    }
    return out;
  };

  // Where the received audio track is: on the SDK's <video> (what the user hears), and on the peer connection.
  h.audioTracks = () => {
    const v = h.video;
    const pcs = h.pcs.map((pc) => pc.getReceivers().filter((r) => r.track && r.track.kind === 'audio').length);
    return {
      onVideo: Boolean(v && v.srcObject && v.srcObject.getAudioTracks().length > 0),
      videoTracks: v && v.srcObject ? v.srcObject.getTracks().map((t) => t.kind) : [],
      receivers: pcs.reduce((a, b) => a + b, 0),
    };
  };

  // Listens to the received audio through Web Audio: an AnalyserNode sampled every 50 ms, keeping the loudest RMS
  // seen and how many samples were above silence. The track is the one on the SDK's <video>, or else the peer
  // connection's receiver (so that the bridge's audio is still measured when the SDK did not attach it).
  h.startAudioProbe = async () => {
    const v = h.video;
    let track = v && v.srcObject && v.srcObject.getAudioTracks()[0];
    let source = 'video';
    if (!track) {
      const receiver = h.pcs.flatMap((pc) => pc.getReceivers()).find((r) => r.track && r.track.kind === 'audio');
      track = receiver && receiver.track;
      source = 'receiver';
      if (track) {
        // Chromium feeds a remote track to Web Audio only while a media element plays it.
        // (Unmuted: a muted element's audio counts as silence in the inbound-rtp audioLevel and totalAudioEnergy.)
        const el = document.createElement('audio');
        el.srcObject = new MediaStream([track]);
        document.body.append(el);
        await el.play().catch(() => {});
      }
    }
    if (!track) throw new Error('no received audio track, neither on the <video> nor on a peer connection');
    const ctx = new AudioContext();
    if (ctx.state !== 'running') await ctx.resume().catch(() => {});
    const node = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    node.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const probe = { source, contextState: ctx.state, trackState: track.readyState, trackMuted: track.muted, samples: 0, loud: 0, maxRms: 0, maxPeak: 0 };
    h.audio = probe;
    probe.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      let peak = 0;
      for (const x of buf) {
        sum += x * x;
        peak = Math.max(peak, Math.abs(x));
      }
      const rms = Math.sqrt(sum / buf.length);
      probe.samples += 1;
      if (rms > 0.01) probe.loud += 1;
      probe.maxRms = Math.max(probe.maxRms, rms);
      probe.maxPeak = Math.max(probe.maxPeak, peak);
      probe.contextState = ctx.state;
      probe.trackMuted = track.muted;
    }, 50);
    return { source, contextState: ctx.state, sampleRate: ctx.sampleRate };
  };

  h.audioProbe = () => {
    const { timer, ...rest } = h.audio || {};
    return h.audio ? rest : null;
  };
}

const PAGE_HTML = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>streamgate RTMP e2e</title>
</head>
<body>
<div id="display" style="width:640px;height:480px"></div>
<script src="/flashphoner.js"></script>
<script>(${pageHarness.toString()})();</script>
</body>
</html>
`;

// ---------------------------------------------------------------------------------------------------------------
// Node-side helpers.
// ---------------------------------------------------------------------------------------------------------------

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

/** A long-running ffmpeg (the RTMP publishers). `stop()` ends it with SIGINT, as a user's Ctrl-C would. */
function startFfmpeg(label, args) {
  const log = new Tail(60);
  const child = spawn(FFMPEG, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (d) => log.write(d));
  let exit = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve((exit = { code, signal, at: Date.now() })));
    child.once('error', (error) => resolve((exit = { error: error.message, at: Date.now() })));
  });
  const reap = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', reap);
  return {
    label,
    log,
    exited,
    get exit() {
      return exit;
    },
    async stop() {
      if (!exit) {
        child.kill('SIGINT');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      }
      process.removeListener('exit', reap);
      return exit;
    },
  };
}

/** Runs ffmpeg to its end (killed after `timeoutMs`); resolves with its exit, stdout, stderr and wall time. */
function runFfmpeg(args, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(FFMPEG, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const done = (code, signal, error) => {
      clearTimeout(timer);
      resolve({ code, signal, error, timedOut, stdout, stderr, ms: Date.now() - started });
    };
    child.once('exit', (code, signal) => done(code, signal, null));
    child.once('error', (e) => done(null, null, e.message));
  });
}

const tailOf = (text, n = 25) => text.split('\n').filter(Boolean).slice(-n).map((l) => `  ${l}`).join('\n');

/** The lines of ffmpeg's stderr that describe its input (codecs, sizes). */
function inputLines(stderr) {
  const lines = stderr.split('\n');
  const start = lines.findIndex((l) => /^Input #0/.test(l));
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && /^(Stream mapping:|Output #)/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).filter((l) => /^\s*(Input #|Stream #)/.test(l)).join('\n');
}

/** Polls `stream/find {name}` until it lists the stream (and `accept` holds for it); returns the entry. */
async function waitListed(http, name, timeoutMs, accept = () => true) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    last = await rest(http, '/rest-api/stream/find', { name }).catch((e) => ({ status: 0, text: String(e) }));
    const entry = last.status === 200 && Array.isArray(last.json) ? last.json.find((s) => s && s.name === name && accept(s)) : null;
    if (entry) return { entry, all: last.json };
    if (Date.now() > deadline) assert.fail(`stream/find {name: "${name}"} did not list it within ${timeoutMs} ms; last answer ${last.status}: ${String(last.text).slice(0, 800)}`);
    await sleep(200);
  }
}

/** Polls `stream/find {name}` until the stream is gone; returns how long that took. */
async function waitGone(http, name, timeoutMs) {
  const started = Date.now();
  for (;;) {
    const r = await rest(http, '/rest-api/stream/find', { name });
    const listed = r.status === 200 && Array.isArray(r.json) && r.json.some((s) => s && s.name === name);
    if (r.status === 404 || (r.status === 200 && !listed)) return Date.now() - started;
    assert.ok(Date.now() - started < timeoutMs, `stream/find {name: "${name}"} still answers ${r.status} ${r.text.slice(0, 400)} ${timeoutMs} ms later`);
    await sleep(200);
  }
}

function formatFrames(frames) {
  return frames.map((f) => {
    const text = f.payload.length > 3000 ? `${f.payload.slice(0, 3000)}… (${f.payload.length} bytes)` : f.payload;
    return `  ${new Date(f.at).toISOString().slice(11, 23)} ${f.dir} ${text}`;
  }).join('\n');
}

async function report(pages, ffmpegs, server, extra = []) {
  const parts = [...extra];
  for (const p of pages) {
    const type = p.role.startsWith('publisher') ? 'outbound-rtp' : 'inbound-rtp';
    const stats = await p.page
      .evaluate((ty) => (window.harness.stream ? window.harness.rtpStats(ty) : 'no stream'), type)
      .then((st) => JSON.stringify(st), (e) => `unavailable (${String(e.message).split('\n')[0]})`);
    parts.push(`----- ${p.role}: ${type} stats: ${stats}`);
    const state = await p.page
      .evaluate(() => ({ frames: window.harness.frameState(), audio: window.harness.audioProbe() }))
      .then((st) => JSON.stringify(st), (e) => `unavailable (${String(e.message).split('\n')[0]})`);
    parts.push(`----- ${p.role}: frames and audio probe: ${state}`);
    parts.push(`----- ${p.role}: signaling frames -----\n${formatFrames(p.frames) || '  (none)'}`);
    parts.push(consoleReport(p));
  }
  for (const f of ffmpegs) {
    parts.push(`----- ${f.label} (exit ${JSON.stringify(f.exit)}), last lines -----\n${tailOf(f.log.text(), 30) || '  (none)'}`);
  }
  parts.push(serverReport(server));
  return parts.join('\n');
}

/** Counts framemd5 lines per output stream, and distinct hashes (a frozen or silent stream repeats one). */
function framemd5Counts(stdout) {
  const per = { 0: { frames: 0, hashes: new Set() }, 1: { frames: 0, hashes: new Set() } };
  for (const line of stdout.split('\n')) {
    const m = /^(\d+),\s*-?\d+,\s*-?\d+,\s*\d+,\s*\d+,\s*([0-9a-f]{32})/.exec(line);
    if (m && per[m[1]]) {
      per[m[1]].frames += 1;
      per[m[1]].hashes.add(m[2]);
    }
  }
  return {
    video: { frames: per[0].frames, distinct: per[0].hashes.size },
    audio: { frames: per[1].frames, distinct: per[1].hashes.size },
  };
}

/** Starts the RTMP source of the brief and waits until the REST API lists it as an RTMP stream. */
async function publishRtmp(env, name, label = 'ffmpeg publisher') {
  const pub = startFfmpeg(label, publishArgs(`${env.server.rtmp}/live/${name}`));
  const started = Date.now();
  const listed = await Promise.race([
    waitListed(env.server.http, name, RTMP_LISTED_TIMEOUT_MS, (s) => s.mediaProvider === 'RTMP' && s.mediaType === 'publish'),
    pub.exited.then((e) => assert.fail(`${label} exited (${JSON.stringify(e)}) before the stream was listed:\n${tailOf(pub.log.text())}`)),
  ]);
  return { pub, listed, listedMs: Date.now() - started };
}

async function playInBrowser(open, env, name, timing) {
  const sub = await open('player');
  await sub.step('connect', ([ws, ms]) => window.harness.connect(ws, ms), [env.server.ws, CONNECT_TIMEOUT_MS]);
  await sub.step('play', ([n]) => window.harness.play(n), [name]);
  const playing = await sub.step('wait for PLAYING', ([ms]) => window.harness.waitForStatus(['PLAYING'], ms), [PLAY_TIMEOUT_MS]);
  timing.playToPlayingMs = playing.afterStartMs;
  return sub;
}

// ---------------------------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------------------------

async function rtmpToBrowser(t, env) {
  const name = `rtmp-in-${randomUUID().slice(0, 8)}`;
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env.browser, env.pageUrl, role, signal));
  const ffmpegs = [];
  const timing = {};
  try {
    const { pub, listed, listedMs } = await publishRtmp(env, name);
    ffmpegs.push(pub);
    timing.publishToListedMs = listedMs;
    assert.equal(listed.entry.published, true, `stream/find lists "${name}" as not published: ${JSON.stringify(listed.entry)}`);
    assert.equal(listed.entry.videoCodec, 'H264', `stream/find: videoCodec of the RTMP stream: ${JSON.stringify(listed.entry)}`);

    // The source really has B-frames (or the in-order check below proves nothing): read them back over RTMP.
    const probe = await runFfmpeg([
      '-hide_banner', '-nostats', '-rw_timeout', '10000000', '-i', `${env.server.rtmp}/live/${name}`,
      '-map', '0:v:0', '-frames:v', '45', '-vf', 'showinfo', '-f', 'null', '-',
    ], 20_000);
    const pictTypes = [...probe.stderr.matchAll(/\btype:([IPB])\b/g)].map((m) => m[1]).join('');
    assert.ok(probe.code === 0 && pictTypes.includes('B'), `the RTMP stream read back has no B-frames (exit ${probe.code}, types "${pictTypes}"):\n${tailOf(probe.stderr)}`);

    const sub = await playInBrowser(open, env, name, timing);
    const frames = await sub.step(`wait for ${MIN_FRAMES} decoded frames`, ([n, ms]) => window.harness.waitForFrames(n, ms), [MIN_FRAMES, FRAMES_TIMEOUT_MS]);
    timing.playToFirstFrameMs = frames.firstFrameMs;
    assert.equal(frames.outOfOrder.count, 0, `player: frames shown out of order (RTP timestamp or mediaTime went back): ${JSON.stringify(frames)}`);
    assert.equal(`${frames.videoWidth}x${frames.videoHeight}`, '640x360', `player: <video> size: ${JSON.stringify(frames)}`);
    assert.deepEqual(Object.keys(frames.sizes), ['640x360'], `player: frame sizes: ${JSON.stringify(frames.sizes)}`);

    // Audio. In headless Chromium nothing plays the <video>'s audio out (there is no sound card): the inbound-rtp
    // audio counters (totalSamplesDuration, totalAudioEnergy, audioLevel) stand still until something pulls the
    // track, which the Web Audio probe does. So the probe starts first; then both measures must hear the sine.
    const tracks = await sub.step('find the received audio track', () => window.harness.audioTracks());
    const probeStart = await sub.step('start the Web Audio probe', () => window.harness.startAudioProbe());
    await sleep(500); // the playout settles
    const first = await sub.step('read inbound stats', () => window.harness.rtpStats('inbound-rtp'));
    await sleep(2_000);
    const second = await sub.step('read inbound stats again', () => window.harness.rtpStats('inbound-rtp'));
    const audioProbe = await sub.step('read the Web Audio probe', () => window.harness.audioProbe());
    const later = await sub.step('frames after 2 s', () => window.harness.frameState());

    assert.equal(String(second.video.mimeType).toLowerCase(), 'video/h264', `player: receives ${second.video.mimeType}: ${JSON.stringify(second.video)}`);
    assert.ok(second.video.framesDecoded > first.video.framesDecoded, `player: framesDecoded did not grow in 2 s: ${first.video.framesDecoded} -> ${second.video.framesDecoded}`);
    assert.equal(second.video.frameWidth, 640, `player: decoded width: ${JSON.stringify(second.video)}`);
    assert.equal(second.video.frameHeight, 360, `player: decoded height: ${JSON.stringify(second.video)}`);
    assert.ok(later.count >= frames.count + 20, `player: only ${later.count - frames.count} more frames shown in 2 s`);
    assert.equal(later.outOfOrder.count, 0, `player: frames shown out of order (RTP timestamp or mediaTime went back): ${JSON.stringify(later)}`);

    const a1 = first.audio;
    const a2 = second.audio;
    const audioFacts = JSON.stringify({ tracks, probe: audioProbe, stats: [a1, a2] });
    assert.equal(String(a2.mimeType).toLowerCase(), 'audio/opus', `player: receives audio ${a2.mimeType}: ${audioFacts}`);
    assert.ok(a2.packetsReceived > a1.packetsReceived + 50, `player: ${a2.packetsReceived - a1.packetsReceived} audio packets in 2 s: ${audioFacts}`);
    // What a user hears is the SDK's <video>: the audio track must be on it (the SDK shows event.streams[0] of the
    // last track event, so the answer must put both tracks in one stream).
    if (!tracks.onVideo) {
      const answer = sub.frames.find((f) => f.dir === '<<' && f.message && f.message.message === 'setRemoteSDP');
      const sdp = answer ? String(answer.message.data[1] || '') : '';
      const lines = sdp.split(/\r?\n/).filter((l) => /^(m=|a=msid|a=ssrc:\d+ msid)/.test(l)).join(' | ');
      assert.fail(`player: the SDK's <video> has no audio track (its stream holds ${tracks.videoTracks.join('+') || 'nothing'}; the audio ` +
        `track is on the peer connection, in another MediaStream): the playStream answer's stream ids: ${lines || '(no answer seen)'}; ` +
        `audio measured on the receiver: ${audioFacts}`);
    }
    const energy = a2.totalAudioEnergy - a1.totalAudioEnergy;
    const duration = a2.totalSamplesDuration - a1.totalSamplesDuration;
    // totalAudioEnergy adds up level² × seconds, so energy / seconds is the mean square level: ffmpeg's sine source has
    // amplitude 1/8, i.e. audioLevel 0.125 and a mean square level of about 0.0156; silence gives 0.
    const meanSquare = duration > 0 ? energy / duration : 0;
    assert.ok(duration > 1, `player: only ${duration} s of audio played out in 2 s: ${audioFacts}`);
    assert.ok(meanSquare > 0.004 && a2.audioLevel > 0.05, `player: the audio is silent by the stats (mean square level ${meanSquare}, audioLevel ${a2.audioLevel}): ${audioFacts}`);
    // The analyser sees the waveform: a sine of amplitude 0.125 has an RMS of 0.088.
    assert.ok(audioProbe.maxRms > 0.04 && audioProbe.loud >= audioProbe.samples / 2, `player: Web Audio hears silence: ${JSON.stringify({ probeStart, audioProbe })}`);
    // Reported, not asserted: the share of the audio that NetEq concealed. It stays high in headless Chromium on a
    // busy machine even for browser-to-browser Opus (the Web Audio pull is irregular), so it does not judge the server.
    const concealed = (a2.concealedSamples - a1.concealedSamples) / Math.max(1, a2.totalSamplesReceived - a1.totalSamplesReceived);

    for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
    if (second.remoteAddress) assert.ok(isLoopbackHost(second.remoteAddress), `player: media from ${second.remoteAddress}`);

    // The RTMP publisher stops (SIGINT: ffmpeg unpublishes and closes): the player ends and the name is free.
    const from = await sub.step('count events', () => window.harness.events.length);
    const stopAt = Date.now();
    const exit = await pub.stop();
    const ended = await sub.step('wait for STOPPED/UNPUBLISHED after ffmpeg stopped', ([ms, f]) => window.harness.waitForStatus(['STOPPED', 'UNPUBLISHED'], ms, f), [STOP_TIMEOUT_MS, from]);
    timing.stopToPlayerEndedMs = Date.now() - stopAt;
    await waitGone(env.server.http, name, STOP_TIMEOUT_MS);
    timing.stopToGoneMs = Date.now() - stopAt;

    t.diagnostic(
      `ffmpeg start→listed ${timing.publishToListedMs} ms, play()→PLAYING ${timing.playToPlayingMs} ms, ` +
      `play()→first frame ${timing.playToFirstFrameMs} ms, ffmpeg SIGINT→player ${ended.status} ${timing.stopToPlayerEndedMs} ms, ` +
      `→find empty ${timing.stopToGoneMs} ms (ffmpeg exit ${JSON.stringify({ code: exit.code, signal: exit.signal })})`,
    );
    t.diagnostic(
      `source picture types (first 45 read back over RTMP): ${pictTypes}; player: ${later.count} frames in order at ` +
      `640x360 (${second.video.decoderImplementation ?? '?'}, framesDecoded ${second.video.framesDecoded}, lost ${second.video.packetsLost}); ` +
      `${later.repeats.count} reported twice, ${later.mediaJitter.count} with mediaTime not rising while the RTP timestamp did ` +
      `${JSON.stringify(later.mediaJitter.samples.map((x) => [x.frame.frame, +(x.frame.mediaTime - x.previous.mediaTime).toFixed(3)]))}`,
    );
    t.diagnostic(
      `audio ${a2.mimeType}: audioLevel ${a2.audioLevel.toFixed(3)}, mean square level ${meanSquare.toFixed(4)} over ` +
      `${duration.toFixed(2)} s played out, ${a2.packetsReceived - a1.packetsReceived} packets, concealed ${(concealed * 100).toFixed(1)}%, ` +
      `jitter ${a2.jitter} s; Web Audio (${probeStart.source} track) max RMS ${audioProbe.maxRms.toFixed(3)}, ` +
      `${audioProbe.loud}/${audioProbe.samples} probes loud (context ${probeStart.contextState})`,
    );
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness.session.disconnect()).catch(() => {})));
  } catch (e) {
    console.error(`\n===== RTMP -> browser failed: ${e.message}\n${await report(pages, ffmpegs, env.server)}\n===== end of report\n`);
    throw e;
  } finally {
    await Promise.all(ffmpegs.map((f) => f.stop()));
    await closeAll();
  }
}

async function browserToRtmp(t, env, { codec, strip }) {
  const name = `rtmp-out-${codec.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env.browser, env.pageUrl, role, signal));
  const extra = [];
  const timing = {};
  try {
    const pub = await open('publisher');
    await pub.step('connect', ([ws, ms]) => window.harness.connect(ws, ms), [env.server.ws, CONNECT_TIMEOUT_MS]);
    await pub.step('publish', ([n, s]) => window.harness.publish(n, s), [name, strip]);
    const publishing = await pub.step('wait for PUBLISHING', ([ms]) => window.harness.waitForStatus(['PUBLISHING'], ms), [PUBLISH_TIMEOUT_MS]);
    timing.publishToPublishingMs = publishing.afterStartMs;
    const [publishMsg] = pub.sent('publishStream');
    assert.ok(publishMsg, 'publisher: no publishStream message was sent');
    const offered = sdpCodecs(publishMsg.message.data[0].sdp);
    assert.ok(offered.includes(codec) && strip.split(',').every((c) => !offered.includes(c)), `publisher: offer codecs after stripCodecs "${strip}": ${offered.join(' ')}`);
    await waitListed(env.server.http, name, RTMP_LISTED_TIMEOUT_MS, (s) => s.mediaType === 'publish');

    // ffmpeg reads the stream over RTMP for READ_SECONDS and hashes every decoded frame.
    const url = `${env.server.rtmp}/live/${name}`;
    const read = await runFfmpeg([
      '-hide_banner', '-nostats', '-rw_timeout', '10000000', '-i', url,
      '-map', '0:v:0', '-map', '0:a:0', '-t', String(READ_SECONDS), '-f', 'framemd5', '-',
    ], 30_000);
    extra.push(`----- ffmpeg reading ${url}: exit ${read.code} ${read.signal ?? ''}${read.timedOut ? ' (killed: too slow)' : ''} after ${read.ms} ms -----\n${tailOf(read.stderr, 40)}`);
    timing.readMs = read.ms;
    const counts = framemd5Counts(read.stdout);
    const input = inputLines(read.stderr);
    assert.ok(read.code === 0, `ffmpeg reading ${url} exited ${read.code} ${read.signal ?? ''}${read.timedOut ? ' (killed after 30 s)' : ''}`);
    assert.match(input, /Video: h264/, `ffmpeg: no H.264 video in ${url}:\n${input}`);
    assert.match(input, /Audio: aac/, `ffmpeg: no AAC audio in ${url}:\n${input}`);
    assert.ok(counts.video.frames >= MIN_READ_VIDEO_FRAMES, `ffmpeg decoded ${counts.video.frames} video frames in ${READ_SECONDS} s (want ${MIN_READ_VIDEO_FRAMES})`);
    assert.ok(counts.audio.frames >= MIN_READ_AUDIO_FRAMES, `ffmpeg decoded ${counts.audio.frames} audio frames in ${READ_SECONDS} s (want ${MIN_READ_AUDIO_FRAMES})`);
    assert.ok(counts.video.distinct > 1, `ffmpeg: all ${counts.video.frames} video frames are the same picture`);

    const outbound = await pub.step('read outbound stats', () => window.harness.rtpStats('outbound-rtp'));
    assert.equal(String(outbound.video.mimeType).toLowerCase(), `video/${codec}`.toLowerCase(), `publisher: sends ${outbound.video.mimeType}`);
    assert.equal(String(outbound.audio.mimeType).toLowerCase(), 'audio/opus', `publisher: sends audio ${outbound.audio.mimeType}`);
    for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);

    const from = await pub.step('stop', () => window.harness.stop());
    await pub.step('wait for UNPUBLISHED after stop()', ([ms, f]) => window.harness.waitForStatus(['UNPUBLISHED'], ms, f), [STOP_TIMEOUT_MS, from]);
    await waitGone(env.server.http, name, STOP_TIMEOUT_MS);

    t.diagnostic(
      `${codec}: publish()→PUBLISHING ${timing.publishToPublishingMs} ms; ffmpeg read ${READ_SECONDS} s of media in ` +
      `${timing.readMs} ms: ${counts.video.frames} video frames (${counts.video.distinct} distinct), ${counts.audio.frames} ` +
      `audio frames (${counts.audio.distinct} distinct); publisher sent ${outbound.video.mimeType} + ${outbound.audio.mimeType}`,
    );
    t.diagnostic(`${codec}: ffmpeg saw ${input.replace(/\s+/g, ' ').trim()}`);
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness.session.disconnect()).catch(() => {})));
  } catch (e) {
    console.error(`\n===== browser (${codec}) -> RTMP failed: ${e.message}\n${await report(pages, [], env.server, extra)}\n===== end of report\n`);
    throw e;
  } finally {
    await closeAll();
  }
}

async function rtmpErrors(t, env) {
  const name = `rtmp-dup-${randomUUID().slice(0, 8)}`;
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env.browser, env.pageUrl, role, signal));
  const ffmpegs = [];
  const extra = [];
  const timing = {};
  try {
    // Playing a name nobody publishes: ffmpeg must fail at once, with the server's reason, and read nothing.
    const unknownUrl = `${env.server.rtmp}/live/nobody-${randomUUID().slice(0, 8)}`;
    const unknown = await runFfmpeg(['-hide_banner', '-nostats', '-rw_timeout', '5000000', '-i', unknownUrl, '-t', '1', '-f', 'framemd5', '-'], 15_000);
    extra.push(`----- ffmpeg playing ${unknownUrl}: exit ${unknown.code} after ${unknown.ms} ms -----\n${tailOf(unknown.stderr)}`);
    timing.unknownMs = unknown.ms;
    assert.ok(!unknown.timedOut, `ffmpeg playing an unknown name was still running after 15 s:\n${tailOf(unknown.stderr)}`);
    assert.notEqual(unknown.code, 0, `ffmpeg playing an unknown name exited 0:\n${tailOf(unknown.stderr)}`);
    assert.ok(unknown.ms < 5_000, `ffmpeg playing an unknown name took ${unknown.ms} ms to fail`);
    assert.match(unknown.stderr, /Stream not found/i, 'ffmpeg does not show the server\'s reason for refusing an unknown name');
    assert.equal(unknown.stdout.split('\n').filter((l) => /^\d+,/.test(l)).length, 0, 'ffmpeg decoded frames of an unknown name');

    // A first publisher, played in the browser.
    const { pub, listed } = await publishRtmp(env, name, 'ffmpeg publisher 1');
    ffmpegs.push(pub);
    const sub = await playInBrowser(open, env, name, timing);
    const before = await sub.step(`wait for ${MIN_FRAMES} decoded frames`, ([n, ms]) => window.harness.waitForFrames(n, ms), [MIN_FRAMES, FRAMES_TIMEOUT_MS]);

    // A second publisher of the same name must be refused...
    const second = await runFfmpeg(publishArgs(`${env.server.rtmp}/live/${name}`).map((a) => (a === 'info' ? 'warning' : a)), 15_000);
    extra.push(`----- ffmpeg publisher 2: exit ${second.code} after ${second.ms} ms -----\n${tailOf(second.stderr)}`);
    timing.refusedMs = second.ms;
    assert.ok(!second.timedOut, `the second publisher of "${name}" was still running after 15 s: not refused`);
    assert.notEqual(second.code, 0, 'the second publisher exited 0');
    assert.match(second.stderr, /already in use/i, 'ffmpeg does not show the server\'s reason for refusing the second publisher');

    // ...while the first goes on: still listed once, same session, still playing in the browser, in order.
    // (find lists the browser's play too, as WCS does: mediaType "play".)
    const after = await waitListed(env.server.http, name, 2_000, (s) => s.mediaType === 'publish');
    const publishers = after.all.filter((s) => s.name === name && s.mediaType === 'publish');
    assert.equal(publishers.length, 1, `stream/find lists "${name}" as published ${publishers.length} times: ${JSON.stringify(after.all)}`);
    assert.equal(after.entry.sessionId, listed.entry.sessionId, 'the stream now belongs to another session');
    assert.equal(pub.exit, null, `the first publisher exited: ${JSON.stringify(pub.exit)}`);
    const more = before.count + 45;
    const later = await sub.step('wait for 45 more frames', ([n, ms]) => window.harness.waitForFrames(n, ms), [more, FRAMES_TIMEOUT_MS]);
    assert.equal(later.outOfOrder.count, 0, `player: frames shown out of order: ${JSON.stringify(later)}`);
    const events = await sub.step('events', () => window.harness.events.map((e) => e.status));
    assert.deepEqual(events.filter((s) => s !== 'PLAYING' && s !== 'ESTABLISHED'), [], `player: unexpected stream/session events: ${events.join(', ')}`);
    for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);

    t.diagnostic(
      `unknown name: ffmpeg failed in ${timing.unknownMs} ms (${(/Server error: [^\n]*/.exec(unknown.stderr) || ['?'])[0]}); ` +
      `second publisher refused in ${timing.refusedMs} ms (${(/Server error: [^\n]*/.exec(second.stderr) || ['?'])[0]}); ` +
      `the player went on from ${before.count} to ${later.count} frames`,
    );
    await Promise.all(pages.map((p) => p.page.evaluate(() => window.harness.session.disconnect()).catch(() => {})));
  } catch (e) {
    console.error(`\n===== RTMP errors failed: ${e.message}\n${await report(pages, ffmpegs, env.server, extra)}\n===== end of report\n`);
    throw e;
  } finally {
    await Promise.all(ffmpegs.map((f) => f.stop()));
    await closeAll();
  }
}

const HAVE_FFMPEG = spawnSync(FFMPEG, ['-hide_banner', '-version'], { stdio: 'ignore' }).status === 0;

describe('RTMP bridge: ffmpeg and the Flashphoner WebSDK against streamgate', { skip: HAVE_FFMPEG ? false : `no ${FFMPEG}` }, () => {
  const env = { server: null, pageServer: null, browser: null, pageUrl: null };

  before(async () => {
    env.server = await startServer();
    if (!env.server.rtmp) {
      // A running server was named without its RTMP address (STREAMGATE_RTMP): test one of our own instead.
      env.server = await startServer({ external: false });
    }
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.pageUrl = env.pageServer.url;
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.pageServer?.close();
    await env.server?.stop();
  });

  test('RTMP publish (H.264 with B-frames, AAC) plays in the browser in order with audible Opus audio', { timeout: 90_000 }, (t) => rtmpToBrowser(t, env));
  test('browser publishes H264 with the WebSDK; ffmpeg reads H.264 + AAC over RTMP', { timeout: 60_000 }, (t) => browserToRtmp(t, env, { codec: 'H264', strip: 'VP8,VP9,AV1,H265' }));
  test('browser publishes VP8 with the WebSDK; ffmpeg reads H.264 + AAC over RTMP', { timeout: 60_000 }, (t) => browserToRtmp(t, env, { codec: 'VP8', strip: 'H264,H265,VP9,AV1' }));
  test('RTMP errors: unknown name fails cleanly; a second publisher of a name in use is refused while the first plays on', { timeout: 90_000 }, (t) => rtmpErrors(t, env));
});
