// End-to-end test of HLS and LL-HLS with hls.js (npm) in headless Chromium. hls.js plays, from
// /hls/NAME/index.m3u8,
//   1. a stream the official Web SDK publishes over WebRTC (VP8 or H.264 and Opus, packaged through the shared H.264
//      and AAC bridges),
//   2. a stream ffmpeg publishes over RTMP (H.264 with B-frames, and AAC),
// in low-latency mode (parts, blocking reloads) and in classic mode, each with moving pictures of the right size and
// audible sound (an AnalyserNode on the element's captured audio).
//
// Run with `node --test hls.test.mjs` (or `sh run.sh`). Environment: STREAMGATE_BIN, FFMPEG_BIN, CHROMIUM_BIN.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  Tail, consoleReport, launchBrowser, openPage, pageSet, serverReport, startPageServer, startServer, waitUntil,
} from './lib.mjs';

const require = createRequire(import.meta.url);
const SDK_BUNDLE = path.join(path.dirname(require.resolve('@flashphoner/websdk/package.json')), 'flashphoner.js');
const HLS_JS = path.join(path.dirname(require.resolve('hls.js/package.json')), 'dist', 'hls.min.js');
const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';
const TEST_TIMEOUT_MS = 120_000;
const PLAY_MS = 30_000;

/** The page: the official SDK publishing over WebRTC, or hls.js playing, with a probe of what plays. */
function harness() {
  const h = { events: [], errors: [] };
  window.harness = h;
  h.publish = (urlServer, name) => new Promise((resolve, reject) => {
    Flashphoner.init({});
    const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
    Flashphoner.createSession({ urlServer })
      .on(SESSION_STATUS.FAILED, () => reject(new Error('session FAILED')))
      .on(SESSION_STATUS.ESTABLISHED, (session) => {
        const stream = session.createStream({ name, display: document.getElementById('display'), constraints: { audio: true, video: { width: 320, height: 240 } } });
        stream.on(STREAM_STATUS.PUBLISHING, () => resolve())
          .on(STREAM_STATUS.FAILED, (s) => reject(new Error(`FAILED: ${s.getInfo()}`)));
        stream.publish();
      });
  });
  h.play = (url, lowLatencyMode) => {
    const v = document.createElement('video');
    v.autoplay = true;
    v.playsInline = true;
    document.getElementById('display').appendChild(v);
    if (!Hls.isSupported()) throw new Error('hls.js is not supported here');
    const hls = new Hls({ lowLatencyMode, liveDurationInfinity: true });
    h.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => h.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''}`));
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { h.partTarget = d.details.partTarget; h.canBlock = d.details.canBlockReload; });
    hls.loadSource(url);
    hls.attachMedia(v);
    v.play().catch((e) => h.errors.push(`play: ${e.message}`));
  };
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
      frames: v.getVideoPlaybackQuality().totalVideoFrames,
      width: v.videoWidth,
      height: v.videoHeight,
      audioBytes: v.webkitAudioDecodedByteCount,
      maxRms: h.maxRms || 0,
      time: v.currentTime,
      partTarget: h.partTarget,
      canBlock: h.canBlock,
      latency: h.hls ? h.hls.latency : null,
      errors: h.errors.slice(-5),
    };
  };
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>HLS e2e</title></head>
<body><div id="display" style="width:320px;height:240px"></div>
<script src="/flashphoner.js"></script>
<script src="/hls.js"></script>
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

/** Plays `name` with hls.js until it shows moving 320x240 pictures with sound. */
async function playsWithSound(env, t, name, lowLatency, extra = []) {
  const { pages, open, closeAll } = pageSet(t, (role, signal) => openPage(env.browser, `${env.pageServer.url}?role=${role}`, role, signal));
  try {
    const player = await open(lowLatency ? 'll-hls player' : 'hls player');
    await player.step('play', ([u, ll]) => window.harness.play(u, ll), [`${env.server.http}/hls/${name}/index.m3u8`, lowLatency]);
    const first = await waitUntil('hls.js decodes the video', async () => {
      const p = await player.step('probe', () => window.harness.probe());
      return { ok: p.frames > 30 && p.width === 320 && p.height === 240, seen: p };
    }, PLAY_MS, 250);
    const heard = await waitUntil('the audio is heard and the picture moves on', async () => {
      const p = await player.step('probe', () => window.harness.probe());
      return { ok: p.audioBytes > 0 && p.maxRms > 0.01 && p.frames > first.seen.frames + 30, seen: p };
    }, PLAY_MS, 250);
    if (lowLatency) {
      assert.ok(heard.seen.partTarget > 0 && heard.seen.canBlock, `LL-HLS was used: ${JSON.stringify(heard.seen)}`);
    }
    assert.ok(!heard.seen.errors.some((e) => e.includes('fatal')), `no fatal errors: ${heard.seen.errors}`);
  } catch (e) {
    e.message += `\n${[...pages.map(consoleReport), ...extra.map((x) => x()), serverReport(env.server)].join('\n')}`;
    throw e;
  } finally {
    await closeAll();
  }
}

describe('HLS and LL-HLS (hls.js)', () => {
  const env = { server: null, pageServer: null, browser: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
      '/hls.js': { type: 'text/javascript; charset=utf-8', file: HLS_JS },
    });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch(() => {});
    await env.server?.stop();
    await env.pageServer?.close();
  });

  test('plays a WebRTC-published stream over LL-HLS and HLS with sound', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { open, closeAll, pages } = pageSet(t, (role, signal) => openPage(env.browser, `${env.pageServer.url}?role=${role}`, role, signal));
    try {
      const publisher = await open('publisher');
      await publisher.step('publish', ([u, n]) => window.harness.publish(u, n), [env.server.ws, 'hls-webrtc']);
      await playsWithSound(env, t, 'hls-webrtc', true, [() => consoleReport(publisher)]);
      await playsWithSound(env, t, 'hls-webrtc', false, [() => consoleReport(publisher)]);
    } catch (e) {
      if (!/browser console/.test(e.message)) e.message += `\n${pages.map(consoleReport).join('\n')}\n${serverReport(env.server)}`;
      throw e;
    } finally {
      await closeAll();
    }
  });

  test('plays an RTMP-published stream (with B-frames) over LL-HLS and HLS with sound', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!env.server.rtmp) return t.skip('the server under test has no RTMP address (STREAMGATE_RTMP)');
    const ff = startFfmpeg([
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '120', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-bf', '2', '-c:a', 'aac',
      '-f', 'flv', `${env.server.rtmp}/live/hls-rtmp`,
    ]);
    try {
      const extra = [() => `----- ffmpeg -----\n${ff.log.lines.join('\n')}`];
      await playsWithSound(env, t, 'hls-rtmp', true, extra);
      await playsWithSound(env, t, 'hls-rtmp', false, extra);
    } finally {
      ff.stop();
    }
  });
});
