// End-to-end test of the first-party SDK's players that are not WebRTC, and of its fallback ladder, in headless
// Chromium:
//   1. `play({ via: 'mse' })` plays an RTMP-published stream (fMP4 parts over a WebSocket) with moving pictures of the
//      right size and audible sound;
//   2. `play({ via: 'auto' })` plays over WebRTC where UDP gets through; in a network namespace that drops all UDP
//      (nft, inside run.sh's private namespace) the same call falls down to MSE, and with `ladder: ['webrtc', 'hls']`
//      to LL-HLS (hls.js), telling the page each rung and why the ones above failed.
//
// Run with `sh run.sh` (the UDP-dropping part needs its private network namespace). Environment: STREAMGATE_BIN,
// FFMPEG_BIN, CHROMIUM_BIN.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  Tail, consoleReport, launchBrowser, openPage, pageSet, serverReport, startPageServer, startServer, waitUntil,
} from './lib.mjs';

const require = createRequire(import.meta.url);
const HLS_JS = path.join(path.dirname(require.resolve('hls.js/package.json')), 'dist', 'hls.min.js');
const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';
const TEST_TIMEOUT_MS = 150_000;
const PLAY_MS = 30_000;

/** The page's harness: the first-party SDK from the server, playing one stream, with a probe of what plays. */
function harness() {
  const h = { rungs: [] };
  window.harness = h;
  h.load = async () => {
    h.sdk = await import('/sdk/streamgate.js');
  };
  h.play = async (options) => {
    if (h.playback) await h.playback.stop();
    if (!h.session) h.session = await h.sdk.connect({ url: `ws://${location.host}/` });
    document.getElementById('display').replaceChildren();
    const v = document.createElement('video');
    v.autoplay = true;
    document.getElementById('display').appendChild(v);
    h.analyser = null;
    h.rungs = [];
    const p = await h.session.play({ ...options, element: v, onRung: (r) => h.rungs.push(`${r.via}:${r.status}${r.info ? `(${r.info})` : ''}`) });
    h.playback = p;
    return { via: p.via, tried: p.tried || [], status: p.status, rungs: h.rungs };
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
      clearInterval(h.meter);
      h.meter = setInterval(() => {
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
      maxRms: h.maxRms || 0,
      status: h.playback?.status,
      rungs: h.rungs,
    };
  };
}

function pageHtml(hlsUrl) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>ladder e2e</title></head>
<body><div id="display"></div><script src="${hlsUrl}"></script>
<script type="module">(${harness.toString()})(); window.harness.load().then(() => { window.harnessReady = true; });</script>
</body></html>`;
}

function startFfmpeg(url) {
  const log = new Tail(60);
  const child = spawn(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '300', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-c:a', 'aac', '-f', 'flv', url,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (d) => log.write(d));
  const reap = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', reap);
  return { log, stop: () => { reap(); process.removeListener('exit', reap); } };
}

/**
 * Drops UDP in this network namespace until the returned function is called: every packet, or with `newOnly` every
 * packet from and to a UDP port not bound yet, so media already flowing between sockets open now goes on and any
 * newcomer gets no UDP at all.
 */
function dropUdp({ newOnly = false } = {}) {
  const nft = (...args) => execFileSync('nft', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  nft('add', 'table', 'inet', 'sgtest');
  nft('add', 'chain', 'inet', 'sgtest', 'out', '{ type filter hook output priority 0 ; }');
  if (newOnly) {
    const ports = [...new Set(execFileSync('ss', ['-uanH'], { encoding: 'utf8' }).split('\n')
      .map((l) => l.trim().split(/\s+/)[3]).filter(Boolean).map((a) => a.slice(a.lastIndexOf(':') + 1)).filter((p) => /^\d+$/.test(p)))];
    assert.ok(ports.length > 0, 'UDP sockets are open');
    const set = `{ ${ports.join(', ')} }`;
    nft('add', 'rule', 'inet', 'sgtest', 'out', 'meta', 'l4proto', 'udp', 'udp', 'sport', '!=', set, 'udp', 'dport', '!=', set, 'drop');
  } else {
    nft('add', 'rule', 'inet', 'sgtest', 'out', 'meta', 'l4proto', 'udp', 'drop');
  }
  return () => nft('delete', 'table', 'inet', 'sgtest');
}

async function openSdkPage(env, role, signal) {
  const p = await openPage(env.browser, `${env.server.http}/health`, role, signal, { ready: () => true });
  await p.page.setContent(pageHtml(`${env.pageServer.url}hls.js`));
  await p.page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10_000 });
  return p;
}

/** Waits until the page shows moving 320x240 pictures (and, with `sound`, an audible tone). */
async function shows(player, sound) {
  const first = await waitUntil('pictures', async () => {
    const p = await player.step('probe', () => window.harness.probe());
    return { ok: p.frames > 20 && p.width === 320 && p.height === 240, seen: p };
  }, PLAY_MS, 250);
  await waitUntil(sound ? 'sound, and the picture moves on' : 'the picture moves on', async () => {
    const p = await player.step('probe', () => window.harness.probe());
    return { ok: (!sound || p.maxRms > 0.01) && p.frames > first.seen.frames + 20, seen: p };
  }, PLAY_MS, 250);
}

describe('first-party SDK: MSE player and the fallback ladder', () => {
  const env = { server: null, pageServer: null, browser: null, ff: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({ '/hls.js': { type: 'text/javascript; charset=utf-8', file: HLS_JS } });
    env.browser = await launchBrowser();
    if (env.server.rtmp) env.ff = startFfmpeg(`${env.server.rtmp}/live/ladder`);
  }, { timeout: 60_000 });

  after(async () => {
    env.ff?.stop();
    await env.browser?.close().catch(() => {});
    await env.server?.stop();
    await env.pageServer?.close();
  });

  const report = (pages) => [...pages.map(consoleReport), `----- ffmpeg -----\n${env.ff?.log.lines.join('\n')}`, serverReport(env.server)].join('\n');

  test("play({ via: 'mse' }) shows the stream with sound", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!env.ff) return t.skip('the server under test has no RTMP address (STREAMGATE_RTMP)');
    const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env, role, signal));
    try {
      const player = await open('mse player');
      const r = await player.step('play over MSE', () => window.harness.play({ name: 'ladder', via: 'mse' }));
      assert.equal(r.via, 'mse');
      await shows(player, true);
    } catch (e) {
      e.message += `\n${report(pages)}`;
      throw e;
    } finally {
      await closeAll();
    }
  });

  test('the ladder plays over WebRTC, and falls to MSE and LL-HLS when UDP is dropped', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!env.ff) return t.skip('the server under test has no RTMP address (STREAMGATE_RTMP)');
    if (!process.env.STREAMGATE_PRIVATE_NET) return t.skip('needs the private network namespace of run.sh (it drops UDP there)');
    const { pages, open, closeAll } = pageSet(t, (role, signal) => openSdkPage(env, role, signal));
    let restore = null;
    try {
      const player = await open('ladder player');
      // UDP gets through: the top rung.
      let r = await player.step('play, UDP open', () => window.harness.play({ name: 'ladder', via: 'auto' }));
      assert.equal(r.via, 'webrtc', JSON.stringify(r));
      await shows(player, true);
      await player.step('stop', () => window.harness.playback.stop());

      restore = dropUdp();
      r = await player.step('play, UDP dropped', () => window.harness.play({ name: 'ladder', via: 'auto', rungTimeoutMs: 6000 }));
      assert.equal(r.via, 'mse', JSON.stringify(r));
      assert.match(r.tried[0] || '', /^webrtc: /, `the WebRTC rung failed first: ${JSON.stringify(r)}`);
      assert.deepEqual(r.rungs.slice(0, 1), ['webrtc:trying']);
      await shows(player, true);

      r = await player.step('play, UDP dropped, no MSE', () => window.harness.play({ name: 'ladder', via: 'auto', ladder: ['webrtc', 'hls'], rungTimeoutMs: 6000 }));
      assert.equal(r.via, 'hls', JSON.stringify(r));
      await shows(player, true);
      await player.step('stop', () => window.harness.playback.stop());
    } catch (e) {
      e.message += `\n${report(pages)}`;
      throw e;
    } finally {
      if (restore) restore();
      await closeAll();
    }
  });

  test('the interview page shows the others to a participant whose UDP is dropped', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!process.env.STREAMGATE_PRIVATE_NET) return t.skip('needs the private network namespace of run.sh (it drops UDP there)');
    const room = `ladder-${Math.random().toString(36).slice(2, 8)}`;
    const urlFor = (name) => `${env.server.http}/?room=${room}&name=${name}`;
    const tiles = () => Object.fromEntries([...document.querySelectorAll('[data-testid="tile"]')].map((x) => {
      const v = x.querySelector('video');
      return [x.dataset.login, { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, via: x.dataset.via }];
    }));
    const { pages, open, closeAll } = pageSet(t, (role, signal) => openPage(env.browser, urlFor(role), role, signal, {
      ready: role === 'hr' ? () => !!window.interview?.room : () => window.interview?.local?.status === 'PUBLISHING',
    }));
    let restore = null;
    try {
      const employer = await open('employer');
      await open('candidate');
      await waitUntil('the employer sees the candidate', async () => {
        const s = await employer.page.evaluate(tiles);
        return { ok: s.candidate?.frames > 20, seen: s };
      }, PLAY_MS, 250);
      // From now on no new UDP socket gets through: the two in the call keep their media; whoever joins has no UDP.
      restore = dropUdp({ newOnly: true });
      const hr = await open('hr');
      const seen = await waitUntil('hr watches both others, over MSE', async () => {
        const s = await hr.page.evaluate(tiles);
        const ok = ['employer', 'candidate'].every((l) => s[l]?.frames > 20 && s[l].width > 0 && s[l].via === 'mse');
        return { ok, seen: s };
      }, 60_000, 500);
      assert.ok(seen.ok);
    } catch (e) {
      e.message += `\n${report(pages)}`;
      throw e;
    } finally {
      if (restore) restore();
      await closeAll();
    }
  });
});
