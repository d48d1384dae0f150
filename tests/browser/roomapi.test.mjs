// End-to-end test: the official Flashphoner Room API (`flashphoner-room-api.js` from @flashphoner/websdk, global
// `RoomApi`) against streamgate's room application, in headless Chromium. Three participants connect
// (`RoomApi.connect({urlServer, username})`), join the same room and publish; each sees the two others
// (`room.getParticipants()`), plays their streams and decodes frames; a message sent with `participant.sendMessage`
// arrives; one leaves and the others get LEFT.
//
// Run with `node --test roomapi.test.mjs` (or `sh run.sh`, see README.md). Environment:
//   STREAMGATE_WS, STREAMGATE_HTTP  use an already running server (both or neither; loopback addresses only)
//   STREAMGATE_BIN                  binary to start otherwise (default: <repo>/target/debug/streamgate)
//   CHROMIUM_BIN                    browser (default: /usr/bin/chromium, Debian's package)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { consoleReport, launchBrowser, openPage, pageSet, rest, serverReport, startPageServer, startServer } from './lib.mjs';

// The UMD bundle of the room API (defines window.RoomApi = {connect, events, sdk: Flashphoner}).
const ROOM_API_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner-room-api.js',
);

const TEST_TIMEOUT_MS = 120_000;
const STEP_MS = 20_000;
const MIN_FRAMES = 20;
const PEOPLE = ['alice', 'bob', 'carol'];

// ---------------------------------------------------------------------------------------------------------------
// Code that runs inside the test page (serialized into it); only browser APIs and the RoomApi global.
// ---------------------------------------------------------------------------------------------------------------
function roomHarness() {
  const { SESSION_STATUS, STREAM_STATUS } = RoomApi.sdk.constants;
  const h = { log: [], session: null, room: null, published: null, players: {}, messages: [], left: [], joined: [] };
  window.harness = h;
  const note = (what) => h.log.push(`${Math.round(performance.now())} ${what}`);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  RoomApi.sdk.init({});

  h.connect = (urlServer, username, timeoutMs) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ESTABLISHED within ${timeoutMs} ms; log: ${h.log.join('; ')}`)), timeoutMs);
    const session = RoomApi.connect({ urlServer, username });
    h.session = session;
    session.on(SESSION_STATUS.ESTABLISHED, () => {
      note('session ESTABLISHED');
      clearTimeout(timer);
      resolve(session.id());
    });
    for (const s of [SESSION_STATUS.FAILED, SESSION_STATUS.DISCONNECTED]) {
      session.on(s, () => {
        note(`session ${s}`);
        clearTimeout(timer);
        reject(new Error(`session ${s}`));
      });
    }
  });

  // Plays every stream of a participant that is not played yet, each in its own display div.
  const playStreamsOf = (participant) => {
    for (const stream of participant.getStreams()) {
      const name = stream.streamName();
      if (h.players[name]) continue;
      const display = document.createElement('div');
      display.style.cssText = 'width:320px;height:240px';
      display.dataset.login = participant.name();
      document.body.append(display);
      const played = stream.play(display);
      h.players[name] = { login: participant.name(), display, stream: played, statuses: [] };
      for (const st of [STREAM_STATUS.PLAYING, STREAM_STATUS.STOPPED, STREAM_STATUS.FAILED]) {
        played.on(st, (s) => {
          h.players[name].statuses.push(st);
          note(`play ${name} ${st} ${s.getInfo() || ''}`);
        });
      }
    }
  };

  h.join = (name, timeoutMs) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no STATE within ${timeoutMs} ms; log: ${h.log.join('; ')}`)), timeoutMs);
    const room = h.session.join({ name, record: false });
    h.room = room;
    room.on(RoomApi.events.STATE, (r) => {
      const names = r.getParticipants().map((p) => p.name());
      note(`STATE ${names.join(',')}`);
      clearTimeout(timer);
      resolve(names);
    });
    room.on(RoomApi.events.JOINED, (p) => {
      note(`JOINED ${p.name()}`);
      h.joined.push(p.name());
    });
    room.on(RoomApi.events.LEFT, (p) => {
      const login = p ? p.name() : null;
      note(`LEFT ${login}`);
      h.left.push(login);
    });
    room.on(RoomApi.events.PUBLISHED, (p) => {
      note(`PUBLISHED ${p.name()}`);
      playStreamsOf(p);
    });
    room.on(RoomApi.events.MESSAGE, (m) => {
      note(`MESSAGE from ${m.from ? m.from.name() : '?'}`);
      h.messages.push({ from: m.from ? m.from.name() : null, text: m.text });
    });
    room.on(RoomApi.events.FAILED, (_r, info) => {
      note(`room FAILED ${info}`);
      clearTimeout(timer);
      reject(new Error(`join failed: ${info}`));
    });
  });

  h.publish = (timeoutMs) => new Promise((resolve, reject) => {
    const display = document.createElement('div');
    display.style.cssText = 'width:320px;height:240px';
    document.body.append(display);
    const timer = setTimeout(() => reject(new Error(`no PUBLISHING within ${timeoutMs} ms; log: ${h.log.join('; ')}`)), timeoutMs);
    const stream = h.room.publish({ display, constraints: { audio: true, video: { width: 320, height: 240 } } });
    h.published = stream;
    stream.on(STREAM_STATUS.PUBLISHING, () => {
      note(`PUBLISHING ${stream.name()}`);
      clearTimeout(timer);
      resolve(stream.name());
    });
    stream.on(STREAM_STATUS.FAILED, (s) => {
      note(`publish FAILED ${s.getInfo()}`);
      clearTimeout(timer);
      reject(new Error(`publish FAILED: ${s.getInfo()}`));
    });
  });

  h.participants = () => h.room.getParticipants().map((p) => ({ name: p.name(), streams: p.getStreams().map((s) => s.streamName()) }));

  // PUBLISHED reaches the others at about the time PUBLISHING reaches the publisher: wait for it.
  h.waitParticipants = async (names, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const list = h.participants();
      const ok = list.length === names.length && names.every((n) => list.some((p) => p.name === n && p.streams.length > 0));
      if (ok) return list;
      if (performance.now() > deadline) throw new Error(`participants not ${names.join(', ')} each with a stream within ${timeoutMs} ms: ${JSON.stringify(list)}; log: ${h.log.join('; ')}`);
      await sleep(50);
    }
  };
  h.playAll = () => h.room.getParticipants().forEach(playStreamsOf);

  h.frames = () => Object.fromEntries(Object.entries(h.players).map(([name, p]) => {
    const v = p.display.querySelector('video');
    const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return [p.login, { name, frames: q ? q.totalVideoFrames : 0, width: v ? v.videoWidth : 0, statuses: p.statuses }];
  }));

  h.waitFrames = async (logins, min, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const f = h.frames();
      if (logins.every((l) => f[l] && f[l].frames >= min && f[l].width > 0)) return f;
      if (performance.now() > deadline) throw new Error(`frames of ${logins.join(', ')} below ${min} within ${timeoutMs} ms: ${JSON.stringify(f)}; log: ${h.log.join('; ')}`);
      await sleep(100);
    }
  };

  h.sendMessage = (to, text) => {
    const p = h.room.getParticipants().find((x) => x.name() === to);
    if (!p) throw new Error(`no participant ${to}`);
    p.sendMessage(text, () => note(`sendMessage to ${to} failed`));
  };

  h.waitFor = async (what, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (what.kind === 'message' && h.messages.some((m) => m.from === what.from && m.text === what.text)) return h.messages;
      if (what.kind === 'left' && h.left.includes(what.login)) return h.left;
      if (performance.now() > deadline) throw new Error(`no ${what.kind} ${JSON.stringify(what)} within ${timeoutMs} ms; log: ${h.log.join('; ')}`);
      await sleep(50);
    }
  };

  h.leave = () => h.room.leave().then(() => 'left');
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>streamgate Room API e2e</title></head>
<body>
<script src="/flashphoner-room-api.js"></script>
<script>(${roomHarness.toString()})();</script>
</body></html>
`;

describe('Flashphoner Room API against streamgate', () => {
  const env = { server: null, pageServer: null, browser: null };

  before(async () => {
    env.server = await startServer();
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner-room-api.js': { type: 'text/javascript; charset=utf-8', file: ROOM_API_BUNDLE },
    });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    await env.pageServer?.close();
    await env.server?.stop();
  });

  test('three participants join, publish, play each other, message, leave', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const roomName = `roomapi-${randomUUID().slice(0, 8)}`;
    const { pages, open, closeAll } = pageSet(t, (role, signal) => openPage(env.browser, env.pageServer.url, role, signal, { ready: () => window.harness && window.RoomApi }));
    const timing = {};
    try {
      const p = {};
      const t0 = Date.now();
      for (const who of PEOPLE) {
        p[who] = await open(who);
        await p[who].step('connect', ([url, name, ms]) => window.harness.connect(url, name, ms), [env.server.ws, who, 10_000]);
        const state = await p[who].step('join', ([r, ms]) => window.harness.join(r, ms), [roomName, 10_000]);
        // STATE lists those who joined before.
        assert.deepEqual([...state].sort(), PEOPLE.slice(0, PEOPLE.indexOf(who)).sort(), `${who}: STATE participants`);
        const stream = await p[who].step('publish', ([ms]) => window.harness.publish(ms), [STEP_MS]);
        assert.match(stream, new RegExp(`^${roomName}-${who}-`), `${who}: room stream name`);
      }
      timing.joinPublish = Date.now() - t0;

      // Each sees the two others with their streams, plays them (those published later arrive as PUBLISHED and are
      // played then) and decodes frames.
      const t1 = Date.now();
      for (const who of PEOPLE) {
        const others = PEOPLE.filter((x) => x !== who);
        const participants = await p[who].step('participants', ([o]) => window.harness.waitParticipants(o, 5000), [others]);
        assert.deepEqual(participants.map((x) => x.name).sort(), others, `${who}: getParticipants()`);
        for (const x of participants) assert.equal(x.streams.length, 1, `${who}: ${x.name} should have one stream: ${JSON.stringify(participants)}`);
        await p[who].step('play all', () => window.harness.playAll());
      }
      for (const who of PEOPLE) {
        const others = PEOPLE.filter((x) => x !== who);
        await p[who].step(`frames of ${others.join(', ')}`, ([o, n, ms]) => window.harness.waitFrames(o, n, ms), [others, MIN_FRAMES, STEP_MS]);
      }
      timing.frames = Date.now() - t1;
      const rooms = await rest(env.server.http, '/rest-api/room/find', { name: roomName });
      assert.equal(rooms.status, 200, `room/find: ${rooms.text}`);
      const listed = rooms.json[0].participants;
      assert.deepEqual(listed.map((x) => x.login).sort(), PEOPLE, `room/find participants: ${rooms.text}`);
      assert.ok(listed.every((x) => x.streams.length === 1), `room/find streams: ${rooms.text}`);

      // A message from alice to bob.
      const text = `hello bob ${randomUUID().slice(0, 4)}`;
      await p.alice.step('sendMessage', ([to, m]) => window.harness.sendMessage(to, m), ['bob', text]);
      await p.bob.step('message arrives', ([m]) => window.harness.waitFor({ kind: 'message', from: 'alice', text: m }, 5000), [text]);

      // carol leaves; alice and bob get LEFT.
      const t2 = Date.now();
      assert.equal(await p.carol.step('leave', () => window.harness.leave()), 'left');
      for (const who of ['alice', 'bob']) {
        await p[who].step('LEFT carol', () => window.harness.waitFor({ kind: 'left', login: 'carol' }, 5000));
        const participants = await p[who].step('participants after', () => window.harness.participants());
        assert.ok(!participants.some((x) => x.name === 'carol'), `${who}: carol still listed: ${JSON.stringify(participants)}`);
      }
      timing.left = Date.now() - t2;

      for (const x of pages) assert.deepEqual(x.offLoopback, [], `${x.role}: the page tried to reach addresses other than loopback`);
      t.diagnostic(`room API: 3 × (connect, join, publish) ${timing.joinPublish} ms; all 6 plays ${MIN_FRAMES}+ frames ${timing.frames} ms; leave→LEFT at both ${timing.left} ms`);
      await Promise.all(pages.map((x) => x.page.evaluate(() => window.harness.session.disconnect()).catch(() => {})));
    } catch (e) {
      const parts = [];
      for (const x of pages) {
        const log = await x.page.evaluate(() => window.harness.log.join('\n')).catch(() => 'unavailable');
        const frames = await x.page.evaluate(() => JSON.stringify(window.harness.frames())).catch(() => 'unavailable');
        parts.push(`----- ${x.role}: room API log -----\n${log}\n  frames: ${frames}`, consoleReport(x));
      }
      parts.push(serverReport(env.server));
      console.error(`\n===== room API test failed: ${e.message}\n${parts.join('\n')}\n===== end of room API report\n`);
      throw e;
    } finally {
      await closeAll();
    }
  });
});
