// Glass-to-glass latency of every way to watch a stream, measured the same way: `streamgate publish --pattern clock`
// burns the wall-clock time (ms, 24 bits) into each frame before encoding, and a headless Chromium reads it back from
// every frame it shows (requestVideoFrameCallback, drawn into a canvas) and subtracts it from its own clock. Publisher
// and player are on this machine, so the clocks agree.
//
//   STREAMGATE_BIN=target/debug/streamgate node tests/browser/bench-latency.mjs
//
// Environment: MODES (default "webrtc mse ll-hls hls"), SECONDS per mode (default 20), SIZE (default 640x360),
// CODEC (h264 or vp8). Prints one line per mode (samples, median, p10, p90, max) and a Markdown table.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { STREAMGATE_BIN, Tail, launchBrowser, openPage, startPageServer, startServer } from './lib.mjs';

const require = createRequire(import.meta.url);
const HLS_JS = path.join(path.dirname(require.resolve('hls.js/package.json')), 'dist', 'hls.min.js');
const MODES = (process.env.MODES || 'webrtc mse ll-hls hls').split(/\s+/).filter(Boolean);
const SECONDS = Number(process.env.SECONDS || 20);
const [W, H] = (process.env.SIZE || '640x360').split('x').map(Number);
const CODEC = process.env.CODEC || 'h264';

function harness() {
  const h = { samples: [], errors: [] };
  window.harness = h;
  h.load = async () => {
    h.sdk = await import('/sdk/streamgate.js');
  };
  // Every frame the player hands to its <video>, as a VideoFrame (MediaStreamTrackProcessor on the element's
  // stream): the code is read from its luma plane, the moment it is read is "glass" at the player.
  const lumaAt = (frame, data, layout, x, y) => {
    const f = frame.format || '';
    if (f.startsWith('I420') || f.startsWith('NV12')) return data[layout[0].offset + y * layout[0].stride + x];
    const o = layout[0].offset + y * layout[0].stride + x * 4;
    return (data[o] + data[o + 1] + data[o + 2]) / 3;
  };
  h.watch = async (v) => {
    let track = null;
    while (!track) {
      const s = v.srcObject instanceof MediaStream ? v.srcObject : (v.captureStream ? v.captureStream() : null);
      track = s && s.getVideoTracks()[0];
      if (!track) await new Promise((r) => setTimeout(r, 100));
    }
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    h.reader = reader;
    let last = -1;
    for (;;) {
      const { value: frame, done } = await reader.read();
      if (done) return;
      const now = Date.now() % (1 << 24);
      try {
        const w = frame.codedWidth;
        const hh = frame.codedHeight;
        const data = new Uint8Array(frame.allocationSize());
        const layout = await frame.copyTo(data);
        const row = Math.floor(Math.floor(frame.displayHeight / 8) / 2);
        const block = Math.floor(frame.displayWidth / 24);
        let code = 0;
        for (let i = 0; i < 24; i++) code = code * 2 + (lumaAt(frame, data, layout, i * block + Math.floor(block / 2), row) >= 128 ? 1 : 0);
        if (w && hh && code !== last) {
          last = code;
          const ms = (now - code + (1 << 24)) % (1 << 24);
          if (ms < 60_000) h.samples.push(ms);
          else (h.bad = h.bad || []).push(ms);
        }
      } finally {
        frame.close();
      }
    }
  };
  h.play = async (mode, name) => {
    const v = document.createElement('video');
    v.autoplay = true;
    v.style.cssText = 'position:fixed;left:0;top:0;width:640px;height:360px';
    document.body.appendChild(v);
    h.samples = [];
    if (mode === 'webrtc' || mode === 'mse') {
      h.session = h.session || await h.sdk.connect({ url: `ws://${location.host}/` });
      h.player = await h.session.play({ name, element: v, via: mode });
    } else {
      const hls = new Hls({ lowLatencyMode: mode === 'll-hls' });
      hls.on(Hls.Events.ERROR, (_, d) => h.errors.push(`${d.details}${d.fatal ? ' (fatal)' : ''}`));
      hls.loadSource(`${location.origin}/hls/${name}/index.m3u8`);
      hls.attachMedia(v);
      h.player = { stop: async () => hls.destroy() };
    }
    v.play().catch(() => {});
    h.watch(v);
    h.video = v;
  };
  h.stop = async () => {
    h.reader?.cancel().catch(() => {});
    await h.player?.stop();
    h.video?.remove();
  };
}

const PAGE = (hlsUrl) => `<!doctype html><html><head><meta charset="utf-8"></head><body>
<script src="${hlsUrl}"></script>
<script type="module">(${harness.toString()})(); window.harness.load().then(() => { window.harnessReady = true; });</script>
</body></html>`;

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))];

async function main() {
  const server = await startServer();
  const pages = await startPageServer({ '/hls.js': { type: 'text/javascript; charset=utf-8', file: HLS_JS } });
  const log = new Tail(40);
  const pub = spawn(STREAMGATE_BIN, ['publish', '--url', server.ws, '--name', 'latency', '--pattern', 'clock',
    '--width', String(W), '--height', String(H), '--codec', CODEC], { stdio: ['ignore', 'pipe', 'pipe'] });
  pub.stdout.setEncoding('utf8').on('data', (d) => log.write(d));
  pub.stderr.setEncoding('utf8').on('data', (d) => log.write(d));
  const browser = await launchBrowser();
  const results = [];
  try {
    await sleep(3000);
    for (const mode of MODES) {
      const ac = new AbortController();
      const p = await openPage(browser, `${server.http}/health`, mode, ac.signal, { ready: () => true });
      await p.page.setContent(PAGE(`${pages.url}hls.js`));
      await p.page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10_000 });
      await p.step('play', ([m, n]) => window.harness.play(m, n), [mode, 'latency']);
      // Let the player settle at its live edge before measuring.
      await sleep(5000);
      await p.page.evaluate(() => { window.harness.samples = []; });
      await sleep(SECONDS * 1000);
      const { samples, errors, bad } = await p.page.evaluate(() => ({ samples: window.harness.samples, errors: window.harness.errors, bad: window.harness.bad }));
      if ((bad || []).length) console.log(`${mode}: ${bad.length} frames whose code did not read back`);
      await p.step('stop', () => window.harness.stop());
      await p.close();
      const s = [...samples].sort((a, b) => a - b);
      const r = { mode, n: s.length, median: pct(s, 0.5), p10: pct(s, 0.1), p90: pct(s, 0.9), max: s[s.length - 1], errors: errors.length };
      results.push(r);
      console.log(JSON.stringify(r));
    }
  } finally {
    pub.kill('SIGINT');
    await browser.close().catch(() => {});
    await server.stop();
    await pages.close();
  }
  console.log(`\n| way to watch | frames read | median | p10 | p90 | max |\n|---|---|---|---|---|---|`);
  for (const r of results) console.log(`| ${r.mode} | ${r.n} | ${r.median} ms | ${r.p10} ms | ${r.p90} ms | ${r.max} ms |`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
