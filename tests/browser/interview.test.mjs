// End-to-end test of the interview page (web/index.html, served by streamgate at `/`) in headless Chromium: three
// people open `/?room=R&name=...`, which joins at once and publishes camera and microphone; each must see the two
// others' videos decode, chat, see a mute, keep watching while one shares the screen, refuse a fifth person, and drop
// the tile of whoever leaves within 2 s.
//
// The page is driven only through what a user does (clicks, typing) and checked through its DOM (`data-testid`
// attributes); frames are counted with getVideoPlaybackQuality on the tiles' <video> elements.
//
// Run with `node --test interview.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running server (both or neither; loopback only; it serves its own
//                                   copy of web/)
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   STREAMGATE_WEB_DIR              the web/ folder to serve and test (default: <repo>/web)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPO_ROOT, consoleReport, launchBrowser, openPage, pageSet, rest, serverReport, startServer,
} from './lib.mjs';

// The pages and the SDK under test (served with --web-dir); STREAMGATE_WEB_DIR tests another copy.
const WEB_DIR = process.env.STREAMGATE_WEB_DIR ? path.resolve(process.env.STREAMGATE_WEB_DIR) : path.join(REPO_ROOT, 'web');
const TEST_TIMEOUT_MS = 150_000;
const JOIN_TIMEOUT_MS = 30_000; // page load to "camera published"
const TILES_TIMEOUT_MS = 30_000; // all remote tiles decoding
const MIN_FRAMES = 20;
const LEAVE_LIMIT_MS = 2_000;
const PEOPLE = ['employer', 'candidate', 'hr'];

// getDisplayMedia works in headless Chromium with lib.mjs's flags alone: --use-fake-ui-for-media-stream accepts the
// picker and, with --use-fake-device-for-media-stream, the "screen" is a fake 1280x720 capture ("screen:-3:0").

// In-page helpers, evaluated with page.evaluate.
const tilesState = () => Object.fromEntries([...document.querySelectorAll('[data-testid="tile"]')].map((t) => {
  const v = t.querySelector('video');
  const q = v.getVideoPlaybackQuality();
  return [t.dataset.login, {
    frames: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight, state: t.dataset.state,
    audioMuted: t.dataset.audioMuted, videoMuted: t.dataset.videoMuted, stream: t.dataset.stream, marked: t.dataset.marked === '1',
  }];
}));

const chatState = () => [...document.querySelectorAll('[data-testid="chat-log"] > *')].map((m) => ({
  kind: m.dataset.testid, from: m.dataset.from || null, text: m.textContent,
}));

async function waitUntil(what, fn, timeoutMs, interval = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok) return last;
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `${what}: not within ${timeoutMs} ms; last seen: ${JSON.stringify(last.seen ?? last)}` });
    await sleep(interval);
  }
}

/** Waits until `p` shows exactly the tiles of `logins`, each with at least `minFrames` more frames than in `base`. */
function waitForTiles(p, logins, minFrames, timeoutMs, base = {}) {
  return waitUntil(`${p.role}: tiles of ${logins.join(', ') || 'nobody'} decoding ${minFrames} frames`, async () => {
    const tiles = await p.page.evaluate(tilesState);
    const names = Object.keys(tiles).sort();
    const ok = names.join() === [...logins].sort().join() &&
      logins.every((l) => tiles[l].frames - (base[l]?.frames || 0) >= minFrames && tiles[l].width > 0);
    return { ok, seen: tiles, tiles };
  }, timeoutMs);
}

async function report(pages, server) {
  const parts = [];
  for (const p of pages) {
    const state = await p.page.evaluate(() => ({
      status: document.querySelector('[data-testid="status"]')?.textContent,
      error: document.querySelector('[data-testid="join-error"]')?.textContent,
      local: window.interview?.local ? { status: window.interview.local.status, info: window.interview.local.info, source: window.interview.local.source } : null,
      room: window.interview?.room ? [...window.interview.room.participants.values()] : null,
    })).catch((e) => `unavailable (${String(e.message).split('\n')[0]})`);
    const tiles = await p.page.evaluate(tilesState).catch(() => 'unavailable');
    const chat = await p.page.evaluate(chatState).catch(() => 'unavailable');
    parts.push(`----- ${p.role}: page state: ${JSON.stringify(state)}\n  tiles: ${JSON.stringify(tiles)}\n  chat: ${JSON.stringify(chat)}`);
    parts.push(consoleReport(p));
  }
  parts.push(serverReport(server));
  return parts.join('\n');
}

describe('interview page', () => {
  const env = { server: null, browser: null };

  before(async () => {
    env.server = await startServer({ extraArgs: ['--web-dir', WEB_DIR] });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.server?.stop();
  });

  test('three people: tiles, chat, mute, screen share, a full room, leaving', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const room = `interview-${randomUUID().slice(0, 8)}`;
    const urlFor = (name) => `${env.server.http}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`;
    const joined = () => window.interview?.local?.status === 'PUBLISHING';
    const { pages, open, closeAll } = pageSet(t, (role, signal) => {
      if (role === 'observer') return openPage(env.browser, `${env.server.http}/play.html`, role, signal, { ready: () => true });
      if (role === 'late') return openPage(env.browser, urlFor(role), role, signal, { ready: () => /full/.test(document.querySelector('[data-testid="join-error"]').textContent) });
      return openPage(env.browser, urlFor(role), role, signal, { ready: joined });
    });
    const timing = {};
    try {
      // Everyone joins through the link; each page publishes its camera.
      const byRole = {};
      let t0 = Date.now();
      for (const role of PEOPLE) {
        byRole[role] = await open(role);
      }
      timing.join = Date.now() - t0;
      t0 = Date.now();
      const first = {};
      for (const role of PEOPLE) {
        const others = PEOPLE.filter((r) => r !== role);
        first[role] = (await waitForTiles(byRole[role], others, MIN_FRAMES, TILES_TIMEOUT_MS)).tiles;
      }
      timing.tiles = Date.now() - t0;
      for (const role of PEOPLE) {
        const stream = await byRole[role].page.evaluate(() => window.interview.local.name);
        assert.match(stream, new RegExp(`^${room}-${role}-[a-z0-9]{4}$`), `${role}: room stream name`);
      }
      const rooms = await rest(env.server.http, '/rest-api/room/find', { name: room });
      assert.equal(rooms.status, 200, `room/find: ${rooms.text}`);
      assert.deepEqual(rooms.json[0].participants.map((p) => p.login).sort(), [...PEOPLE].sort(), `room/find: ${rooms.text}`);

      // Chat: the employer writes to everyone.
      const text = `Welcome, thanks for coming (${randomUUID().slice(0, 4)})`;
      await byRole.employer.page.fill('[data-testid="chat-input"]', text);
      await byRole.employer.page.click('[data-testid="chat-send"]');
      for (const role of ['candidate', 'hr']) {
        await waitUntil(`${role}: chat message from employer`, async () => {
          const chat = await byRole[role].page.evaluate(chatState);
          return { ok: chat.some((m) => m.kind === 'chat-message' && m.from === 'employer' && m.text.includes(text)), seen: chat };
        }, 5_000);
      }
      const own = await byRole.employer.page.evaluate(chatState);
      assert.ok(own.some((m) => m.kind === 'chat-message' && m.text.includes(text)), `employer does not see its own message: ${JSON.stringify(own)}`);

      // Mute: the candidate mutes the microphone; the others see it on the tile. Then unmutes.
      await byRole.candidate.page.click('[data-testid="mute-mic"]');
      assert.equal(await byRole.candidate.page.getAttribute('[data-testid="mute-mic"]', 'aria-pressed'), 'true');
      for (const role of ['employer', 'hr']) {
        await waitUntil(`${role}: candidate shown muted`, async () => {
          const tiles = await byRole[role].page.evaluate(tilesState);
          return { ok: tiles.candidate?.audioMuted === 'true', seen: tiles.candidate };
        }, 5_000);
      }
      await byRole.candidate.page.click('[data-testid="mute-mic"]');
      await waitUntil('employer: candidate shown unmuted', async () => {
        const tiles = await byRole.employer.page.evaluate(tilesState);
        return { ok: tiles.candidate?.audioMuted === 'false', seen: tiles.candidate };
      }, 5_000);

      // Screen share: the candidate switches to the screen (replaceTrack, no renegotiation); the others' playback of
      // the candidate keeps running. Then back to the camera.
      const before = {};
      for (const role of ['employer', 'hr']) before[role] = await byRole[role].page.evaluate(tilesState);
      await byRole.candidate.page.click('[data-testid="share-screen"]');
      const shared = await waitUntil('candidate: sharing the screen', async () => {
        const s = await byRole.candidate.page.evaluate(() => ({
          source: window.interview.local?.source,
          pressed: document.querySelector('[data-testid="share-screen"]').getAttribute('aria-pressed'),
          chat: [...document.querySelectorAll('[data-testid="chat-system"]')].map((m) => m.textContent),
          settings: window.interview.local?.mediaStream?.getVideoTracks()[0]?.getSettings(),
        }));
        if (s.chat.some((m) => /Screen sharing failed/.test(m))) throw new assert.AssertionError({ message: `candidate: ${s.chat.join('; ')}` });
        return { ok: s.source === 'screen' && s.pressed === 'true', seen: s };
      }, 10_000);
      const sharedMid = [];
      for (const role of ['employer', 'hr']) {
        const tiles = (await waitUntil(`${role}: candidate's tile keeps decoding during the screen share`, async () => {
          const now = await byRole[role].page.evaluate(tilesState);
          return { ok: now.candidate && now.candidate.frames - before[role].candidate.frames >= MIN_FRAMES, seen: now.candidate, now };
        }, 15_000)).now;
        sharedMid.push(`${role} sees ${tiles.candidate.width}x${tiles.candidate.height}`);
        assert.equal(tiles.candidate.stream, before[role].candidate.stream, `${role}: the candidate's stream changed (renegotiated?)`);
      }
      await byRole.candidate.page.click('[data-testid="share-screen"]');
      await waitUntil('candidate: back to the camera', async () => {
        const source = await byRole.candidate.page.evaluate(() => window.interview.local?.source);
        return { ok: source === 'camera', seen: source };
      }, 10_000);
      const backBase = await byRole.employer.page.evaluate(tilesState);
      await waitForTiles(byRole.employer, ['candidate', 'hr'], 10, 10_000, backBase);

      // Reconnect: the server closes the candidate's connection (REST connection/terminate). The candidate's SDK
      // reconnects, re-joins the room and republishes under the same name; the others drop the candidate's tile and
      // show it again from the new PUBLISHED; the candidate's own tiles come back in place (played again).
      const candidateStream = await byRole.candidate.page.evaluate(() => window.interview.local.name);
      const candidateSession = await byRole.candidate.page.evaluate(() => window.interview.session.id);
      const candBase = await byRole.candidate.page.evaluate(tilesState);
      // Mark the others' current candidate tiles: the ones shown after the reconnect must be new.
      for (const role of ['employer', 'hr']) {
        await byRole[role].page.evaluate(() => document.querySelectorAll('[data-testid="tile"][data-login="candidate"]').forEach((t) => (t.dataset.marked = '1')));
      }
      const reconnectAt = Date.now();
      const term = await rest(env.server.http, '/rest-api/connection/terminate', { sessionId: candidateSession });
      assert.equal(term.status, 200, `connection/terminate: ${term.text}`);
      await waitUntil('candidate: reconnected and republished', async () => {
        const s = await byRole.candidate.page.evaluate(() => ({
          session: window.interview.session.id,
          status: window.interview.session.status,
          local: window.interview.local?.status,
          name: window.interview.local?.name,
          banner: document.querySelector('[data-testid="reconnecting"]').classList.contains('show'),
        }));
        return { ok: s.session !== null && s.session !== candidateSession && s.status === 'ESTABLISHED' && s.local === 'PUBLISHING' && !s.banner, seen: s };
      }, 15_000);
      assert.equal(await byRole.candidate.page.evaluate(() => window.interview.local.name), candidateStream, 'republished under another name');
      for (const role of ['employer', 'hr']) {
        await waitUntil(`${role}: a new candidate tile`, async () => {
          const tiles = await byRole[role].page.evaluate(tilesState);
          return { ok: tiles.candidate && !tiles.candidate.marked, seen: tiles };
        }, 15_000);
        await waitForTiles(byRole[role], PEOPLE.filter((r) => r !== role), MIN_FRAMES, 15_000, { candidate: { frames: 0 } });
      }
      await waitForTiles(byRole.candidate, ['employer', 'hr'], MIN_FRAMES, 15_000, candBase);
      timing.reconnect = Date.now() - reconnectAt;

      // A full room: with an extra participant (SDK only, no media) there are four; a fifth is turned away.
      const observer = await open('observer');
      await observer.step('observer joins', async ([r]) => {
        const { connect } = await import('/sdk/streamgate.js');
        window.observerSession = await connect({ login: 'observer', appKey: 'roomApp' });
        await window.observerSession.joinRoom(r);
      }, [room]);
      const late = await open('late');
      const lateState = await late.page.evaluate(() => ({
        error: document.querySelector('[data-testid="join-error"]').textContent,
        published: Boolean(window.interview.local),
      }));
      assert.match(lateState.error, /full/, 'fifth participant');
      assert.equal(lateState.published, false, 'the fifth participant published anyway');
      await late.close();
      await observer.step('observer leaves', () => window.observerSession.disconnect());

      // Leaving: hr clicks leave; the others' hr tiles go within 2 s.
      const leaveAt = Date.now();
      await byRole.hr.page.click('[data-testid="leave"]');
      const gone = {};
      await Promise.all(['employer', 'candidate'].map(async (role) => {
        await waitUntil(`${role}: hr's tile removed`, async () => {
          const tiles = await byRole[role].page.evaluate(tilesState);
          return { ok: !('hr' in tiles), seen: Object.keys(tiles) };
        }, LEAVE_LIMIT_MS, 50);
        gone[role] = Date.now() - leaveAt;
      }));
      await waitUntil('hr: back at the join form, no tiles, disconnected', async () => {
        const hrView = await byRole.hr.page.evaluate(() => ({
          lobby: getComputedStyle(document.getElementById('lobby')).display !== 'none',
          tiles: document.querySelectorAll('[data-testid="tile"]').length,
          status: document.querySelector('[data-testid="status"]').textContent,
        }));
        return { ok: hrView.lobby && hrView.tiles === 0 && hrView.status === 'You left the room', seen: hrView };
      }, 5_000);
      // The two left keep watching each other.
      const base2 = await byRole.employer.page.evaluate(tilesState);
      await waitForTiles(byRole.employer, ['candidate'], 10, 10_000, base2);

      for (const p of pages) assert.deepEqual(p.offLoopback, [], `${p.role}: the page tried to reach addresses other than loopback`);
      t.diagnostic(`interview: 3 pages joined and published in ${timing.join} ms, then all 6 remote tiles decoded ${MIN_FRAMES}+ frames in ${timing.tiles} ms; ` +
        `screen share: ${shared.seen.settings ? `${shared.seen.settings.width}x${shared.seen.settings.height}` : '?'} (${sharedMid.join(', ')}); ` +
        `candidate's connection closed by the server → everyone decoding again ${timing.reconnect} ms; ` +
        `leave → tile gone: employer ${gone.employer} ms, candidate ${gone.candidate} ms`);
    } catch (e) {
      console.error(`\n===== interview test failed: ${e.message}\n${await report(pages, env.server)}\n===== end of interview report\n`);
      throw e;
    } finally {
      await closeAll();
    }
  });
});
