// End-to-end test of MSE over WebSocket with the official Flashphoner Web SDK in headless Chromium: its MSE player
// (`preferredMediaProviders: ['MSE']`: playStream with a placeholder offer, a second WebSocket with
// connectMediaTransport, binary FLV-style frames into Media Source Extensions) plays
//   1. a stream the same SDK publishes over WebRTC (VP8 or H.264 and Opus, through the shared H.264 and AAC bridges),
//   2. a stream ffmpeg publishes over RTMP (H.264 with B-frames, re-encoded once in order, and AAC),
// each with moving pictures of the right size and audible sound (an AnalyserNode on the element's captured audio).
//
// Run with `node --test mse.test.mjs` (or `sh run.sh`). Environment: STREAMGATE_BIN (the binary to start, default
// <repo>/target/debug/streamgate), FFMPEG_BIN (default ffmpeg), CHROMIUM_BIN.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  Tail, consoleReport, launchBrowser, openPage, pageSet, serverReport, startPageServer, startServer, waitUntil,
} from './lib.mjs';

const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);
const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';
const TEST_TIMEOUT_MS = 90_000;
const PLAY_MS = 30_000;

/** The page: the official SDK, either publishing over WebRTC or playing over MSE, with a probe of what plays. */
function harness() {
  const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
  const role = new URLSearchParams(location.search).get('role');
  Flashphoner.init(role === 'player' ? { preferredMediaProviders: ['MSE'] } : {});
  const h = { events: [], provider: Flashphoner.getMediaProviders()[0] };
  window.harness = h;
  h.connect = (urlServer) => new Promise((resolve, reject) => {
    h.session = Flashphoner.createSession({ urlServer })
      .on(SESSION_STATUS.ESTABLISHED, () => resolve())
      .on(SESSION_STATUS.FAILED, () => reject(new Error('session FAILED')));
  });
  const watch = (stream, want) => new Promise((resolve, reject) => {
    for (const s of [STREAM_STATUS.PUBLISHING, STREAM_STATUS.PLAYING, STREAM_STATUS.FAILED, STREAM_STATUS.STOPPED]) {
      stream.on(s, (st) => {
        h.events.push(`${s}${st.getInfo() ? `(${st.getInfo()})` : ''}`);
        if (s === want) resolve();
        else if (s === STREAM_STATUS.FAILED) reject(new Error(`FAILED: ${st.getInfo()}`));
      });
    }
  });
  h.publish = (name) => {
    const stream = h.session.createStream({ name, display: document.getElementById('display'), constraints: { audio: true, video: { width: 320, height: 240 } } });
    const p = watch(stream, STREAM_STATUS.PUBLISHING);
    stream.publish();
    return p;
  };
  h.play = (name) => {
    const stream = h.session.createStream({ name, display: document.getElementById('display') });
    const p = watch(stream, STREAM_STATUS.PLAYING);
    stream.play();
    return p;
  };
  // What the MSE <video> shows and sounds like: frames, size, and the loudest RMS of its captured audio.
  h.probe = async () => {
    const v = document.querySelector('#display video');
    if (!v) return { video: false };
    if (!h.analyser && v.captureStream && v.captureStream().getAudioTracks().length) {
      const ctx = new AudioContext();
      await ctx.resume().catch(() => {});
      const src = ctx.createMediaStreamSource(new MediaStream(v.captureStream().getAudioTracks()));
      h.analyser = ctx.createAnalyser();
      src.connect(h.analyser);
      h.maxRms = 0;
      const buf = new Float32Array(h.analyser.fftSize);
      setInterval(() => {
        h.analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const x of buf) sum += x * x;
        h.maxRms = Math.max(h.maxRms, Math.sqrt(sum / buf.length));
      }, 50);
    }
    return {
      video: true,
      frames: v.getVideoPlaybackQuality().totalVideoFrames,
      width: v.videoWidth,
      height: v.videoHeight,
      audioBytes: v.webkitAudioDecodedByteCount,
      maxRms: h.maxRms || 0,
      time: v.currentTime,
      src: v.src.slice(0, 5),
    };
  };
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>MSE e2e</title></head>
<body><div id="display" style="width:320px;height:240px"></div>
<script src="/flashphoner.js"></script>
<script>(${harness.toString()})();</script>
</body></html>`;

function startFfmpeg(args) {
  const log = new Tail(60);
  const child = spawn(FFMPEG, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (d) => log.write(d));
  const reap = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', reap);
  return { log, stop: () => { reap(); process.removeListener('exit', reap); } };
}

/** Plays `name` in a fresh MSE page until it shows moving 320x240 pictures with sound. */
async function playsWithSound(env, t, name, extra = []) {
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openPage(env.browser, `${env.pageServer.url}?role=${role}`, role, signal));
  try {
    const player = await open('player');
    assert.equal(await player.step('the provider', () => window.harness.provider), 'MSE');
    await player.step('connect', (a) => window.harness.connect(a), env.server.ws);
    await player.step('play over MSE', (n) => window.harness.play(n), name);
    const first = await waitUntil('the MSE video decodes', async () => {
      const p = await player.step('probe', () => window.harness.probe());
      return { ok: p.frames > 30 && p.width === 320 && p.height === 240, seen: p };
    }, PLAY_MS, 250);
    const heard = await waitUntil('the MSE audio is heard and the picture moves on', async () => {
      const p = await player.step('probe', () => window.harness.probe());
      return { ok: p.audioBytes > 0 && p.maxRms > 0.01 && p.frames > first.seen.frames + 30, seen: p };
    }, PLAY_MS, 250);
    assert.equal(heard.seen.src, 'blob:', 'played from a MediaSource');
  } catch (e) {
    e.message += `\n${[...pages.map(consoleReport), ...extra.map((x) => x()), serverReport(env.server)].join('\n')}`;
    throw e;
  } finally {
    await closeAll();
  }
}

describe('MSE over WebSocket (official Web SDK)', () => {
  const env = { server: null, pageServer: null, browser: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch(() => {});
    await env.server?.stop();
    await env.pageServer?.close();
  });

  test('plays a WebRTC-published stream with sound', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { open, closeAll, pages } = pageSet(t, (role, signal) => openPage(env.browser, `${env.pageServer.url}?role=${role}`, role, signal));
    try {
      const publisher = await open('publisher');
      await publisher.step('connect', (a) => window.harness.connect(a), env.server.ws);
      await publisher.step('publish', () => window.harness.publish('mse-webrtc'));
      await playsWithSound(env, t, 'mse-webrtc', [() => consoleReport(publisher)]);
    } catch (e) {
      if (!/MSE/.test(e.message)) e.message += `\n${pages.map(consoleReport).join('\n')}\n${serverReport(env.server)}`;
      throw e;
    } finally {
      await closeAll();
    }
  });

  test('plays an RTMP-published stream (with B-frames) with sound', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!env.server.rtmp) return t.skip('the server under test has no RTMP address (STREAMGATE_RTMP)');
    const ff = startFfmpeg([
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '120', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-bf', '2', '-c:a', 'aac',
      '-f', 'flv', `${env.server.rtmp}/live/mse-rtmp`,
    ]);
    try {
      await playsWithSound(env, t, 'mse-rtmp', [() => `----- ffmpeg -----\n${ff.log.lines.join('\n')}`]);
    } finally {
      ff.stop();
    }
  });
});
