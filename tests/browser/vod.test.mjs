// Files as streams in the browser: the official Flashphoner Web SDK in headless Chromium plays a file of the media
// folder as `vod://FILE` (from its start, for that viewer alone) and a shared, looping `vod-live://` stream started
// over REST, over WebRTC. The file has B-frames (ffmpeg's libx264 defaults), which the server puts in order for the
// browser.
//
// Run with `node --test vod.test.mjs` (or `sh run.sh`). It starts its own server, with a media folder it fills.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  consoleReport, launchBrowser, openPage, pageSet, rest, serverReport, startPageServer, startServer, waitUntil,
} from './lib.mjs';

const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);
const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';
const HAVE_FFMPEG = spawnSync(FFMPEG, ['-version']).status === 0;
const MIN_FRAMES = 45;

// Runs inside the page: a session, one played stream, and the frames its <video> shows.
function pageHarness() {
  const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
  const display = document.getElementById('display');
  const h = { statuses: [], info: null, frames: { count: 0, width: 0, height: 0 } };
  window.harness = h;
  h.init = () => Flashphoner.init({});
  h.connect = (urlServer) => new Promise((resolve, reject) => {
    const session = Flashphoner.createSession({ urlServer });
    h.session = session;
    session.on(SESSION_STATUS.ESTABLISHED, () => resolve());
    session.on(SESSION_STATUS.FAILED, () => reject(new Error('session FAILED')));
  });
  h.play = (name) => {
    const stream = h.session.createStream({ name, display });
    for (const s of [STREAM_STATUS.PLAYING, STREAM_STATUS.STOPPED, STREAM_STATUS.FAILED]) {
      stream.on(s, (st) => {
        h.statuses.push(s);
        h.info = st.getInfo();
      });
    }
    stream.play();
    const attach = (video) => {
      const onFrame = (_now, meta) => {
        if (meta.width > 0) {
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
    new MutationObserver((_r, observer) => {
      const video = display.querySelector('video');
      if (video) {
        observer.disconnect();
        attach(video);
      }
    }).observe(display, { childList: true, subtree: true });
  };
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>streamgate VOD e2e</title></head>
<body><div id="display" style="width:640px;height:480px"></div>
<script src="/flashphoner.js"></script>
<script>(${pageHarness.toString()})();</script>
</body></html>
`;

async function openPlayer(env, t, role) {
  const p = await openPage(env.browser, env.pageUrl, role, t.signal, { ready: () => window.harness && window.Flashphoner });
  await p.step('init', () => window.harness.init());
  await p.step('connect', (url) => window.harness.connect(url), env.server.ws);
  return p;
}

async function playsFrames(p, name) {
  await p.step(`play ${name}`, (n) => window.harness.play(n), name);
  try {
    await waitUntil(`${p.role} shows ${MIN_FRAMES} frames of ${name}`, async () => {
      const f = await p.page.evaluate(() => window.harness.frames);
      return { ok: f.count >= MIN_FRAMES, seen: f };
    }, 30_000);
  } catch (e) {
    const h = await p.page.evaluate(() => ({ statuses: window.harness.statuses, info: window.harness.info, frames: window.harness.frames }));
    throw new assert.AssertionError({ message: `${e.message}: ${JSON.stringify(h)}\n${consoleReport(p)}` });
  }
  return p.page.evaluate(() => window.harness);
}

describe('VOD in the browser over WebRTC', { skip: HAVE_FFMPEG ? false : `no ${FFMPEG}` }, () => {
  const env = { server: null, pageServer: null, browser: null, pageUrl: null, media: null };

  before(async () => {
    env.media = fs.mkdtempSync(path.join(os.tmpdir(), 'streamgate-media-'));
    const made = spawnSync(FFMPEG, [
      '-y', '-hide_banner', '-loglevel', 'error',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '8', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac',
      path.join(env.media, 'lesson.mp4'),
    ]);
    assert.equal(made.status, 0, String(made.stderr));
    env.server = await startServer({ external: false, extraArgs: ['--media-dir', env.media] });
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.pageUrl = env.pageServer.url;
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch(() => {});
    await env.pageServer?.close();
    await env.server?.stop();
    fs.rmSync(env.media, { recursive: true, force: true });
  });

  test('vod://FILE plays in Chromium, and a missing file says "File not found"', { timeout: 90_000 }, async (t) => {
    const { open, closeAll } = pageSet(t, (role) => openPlayer(env, t, role));
    try {
      const p = await open('viewer');
      const h = await playsFrames(p, 'vod://lesson.mp4');
      assert.deepEqual([h.frames.width, h.frames.height], [320, 240]);
      assert.ok(h.statuses.includes('PLAYING'), JSON.stringify(h.statuses));
      const q = await open('unlucky');
      await q.step('play a missing file', () => window.harness.play('vod://missing.mp4'));
      await waitUntil('the missing file fails', async () => ({
        ok: await q.page.evaluate(() => window.harness.statuses.includes('FAILED')),
      }), 15_000);
      assert.equal(await q.page.evaluate(() => window.harness.info), 'File not found');
    } catch (e) {
      e.message += `\n${serverReport(env.server)}`;
      throw e;
    } finally {
      await closeAll();
    }
  });

  test('vod-live:// started over REST plays in two browsers at once, looping', { timeout: 90_000 }, async (t) => {
    const { open, closeAll } = pageSet(t, (role) => openPlayer(env, t, role));
    try {
      const r = await rest(env.server.http, '/rest-api/vod/startup', { uri: 'vod-live://lesson.mp4', localStreamName: 'channel', loop: true });
      assert.equal(r.status, 200, r.text);
      const [a, b] = [await open('viewer-a'), await open('viewer-b')];
      const [ha, hb] = await Promise.all([playsFrames(a, 'channel'), playsFrames(b, 'channel')]);
      for (const h of [ha, hb]) assert.deepEqual([h.frames.width, h.frames.height], [320, 240]);
      const found = await rest(env.server.http, '/rest-api/vod/find', { localStreamName: 'channel' });
      assert.equal(found.status, 200);
      assert.equal(found.json[0].loop, true);
    } catch (e) {
      e.message += `\n${serverReport(env.server)}`;
      throw e;
    } finally {
      await closeAll();
    }
  });
});
