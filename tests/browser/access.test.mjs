// End-to-end test of access control and the call history in headless Chromium:
//   1. a real back end (an HTTP server of the test) answers streamgate's REST hooks: it refuses the official Flashphoner
//      Web SDK's connect with `{status: 403, reason: "Wrong credentials"}` and the SDK shows that reason (its WARN
//      event, then DISCONNECTED); it refuses a publish with its own reason and the SDK's stream is FAILED with it;
//      it allows another connection and publish, and hears their StreamStatusEvent;
//   2. with a token secret and an API key (a second server), the interview page opened with an interviewer's token
//      (minted over REST) joins, its invite link carries a candidate's token for the same room, and a second browser
//      joins through that link and sees the interviewer's picture; a link with a token for another room is refused;
//   3. the history page (/history.html) lists that call with both participants once they have left.
//
// Run with `node --test access.test.mjs` (or `sh run.sh`). It starts its own servers (the hook and token settings are
// part of what it tests): STREAMGATE_BIN names the binary (default <repo>/target/debug/streamgate).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  REPO_ROOT, consoleReport, launchBrowser, openPage, pageSet, rest, serverReport, startPageServer, startServer, waitUntil,
} from './lib.mjs';

const WEB_DIR = process.env.STREAMGATE_WEB_DIR ? path.resolve(process.env.STREAMGATE_WEB_DIR) : path.join(REPO_ROOT, 'web');
const SDK_BUNDLE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@flashphoner/websdk/package.json')),
  'flashphoner.js',
);
const TEST_TIMEOUT_MS = 90_000;
const STEP_MS = 20_000;
const API_KEY = 'history-key';

/** The back end: records every hook call and answers by the test's rules (the first that returns an answer wins). */
async function startBackend(rules) {
  const calls = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (d) => (raw += d)).on('end', () => {
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch {
        // recorded as null
      }
      const method = req.url.split('/').pop();
      calls.push({ method, body });
      const answer = rules.map((r) => r(method, body)).find(Boolean) || { status: 200, body };
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/app`, calls, close: () => new Promise((r) => server.close(r)) };
}

/** The official SDK's page: sessions and streams with every status, warning and info recorded. */
function officialHarness() {
  const { SESSION_STATUS, STREAM_STATUS } = Flashphoner.constants;
  const h = { events: [] };
  window.harness = h;
  Flashphoner.init({});
  h.connect = (urlServer, login) => new Promise((resolve) => {
    const session = Flashphoner.createSession({ urlServer, custom: { login } });
    for (const s of [SESSION_STATUS.ESTABLISHED, SESSION_STATUS.FAILED, SESSION_STATUS.DISCONNECTED, SESSION_STATUS.WARN]) {
      session.on(s, (e) => {
        h.events.push({ kind: 'session', login, value: s, info: e?.info || null });
        if (s !== SESSION_STATUS.WARN) resolve(s);
      });
    }
    h[login] = session;
  });
  h.publish = (login, name) => new Promise((resolve) => {
    const stream = h[login].createStream({ name, display: document.getElementById('display'), constraints: { audio: true, video: { width: 320, height: 240 } } });
    for (const s of [STREAM_STATUS.PUBLISHING, STREAM_STATUS.FAILED, STREAM_STATUS.UNPUBLISHED]) {
      stream.on(s, (st) => {
        h.events.push({ kind: 'stream', name, value: s, info: st.getInfo() || null });
        resolve({ status: s, info: st.getInfo() || null });
      });
    }
    stream.publish();
  });
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>hooks e2e</title></head>
<body><div id="display" style="width:320px;height:240px"></div>
<script src="/flashphoner.js"></script>
<script>(${officialHarness.toString()})();</script>
</body></html>`;

function report(pages, servers) {
  return [...pages.map(consoleReport), ...servers.map((s) => serverReport(s))].join('\n');
}

describe('access control and history', () => {
  const env = { browser: null, servers: [], backend: null, pageServer: null };

  before(async () => {
    env.backend = await startBackend([
      (m, b) => m === 'connect' && b?.custom?.login === 'mallory' && { status: 403, body: { status: 403, reason: 'Wrong credentials' } },
      (m, b) => m === 'publishStream' && b?.name === 'not-yours' && { status: 403, body: { status: 403, reason: 'Publishing is closed' } },
    ]);
    env.pageServer = await startPageServer({
      '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
      '/flashphoner.js': { type: 'text/javascript; charset=utf-8', file: SDK_BUNDLE },
    });
    env.browser = await launchBrowser();
  }, { timeout: 60_000 });

  after(async () => {
    await env.browser?.close().catch((e) => console.error(`closing the browser: ${e.message}`));
    for (const s of env.servers) await s.stop();
    await env.backend?.close();
    await env.pageServer?.close();
  });

  test('the official SDK shows the back end\'s reasons', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer({ external: false, extraArgs: ['--set', `hooks.apps.defaultApp="${env.backend.url}"`] });
    env.servers.push(server);
    const { pages, open, closeAll } = pageSet(t, (role, signal) => openPage(env.browser, env.pageServer.url, role, signal));
    try {
      const p = await open('sdk');
      const refused = await p.step('mallory connects', (a) => window.harness.connect(a.ws, 'mallory'), { ws: server.ws });
      assert.equal(refused, 'DISCONNECTED');
      const warn = await p.step('the warning', () => window.harness.events.find((e) => e.login === 'mallory' && e.value === 'WARN'));
      assert.equal(warn?.info, 'Wrong credentials', 'the SDK shows the back end\'s reason');

      assert.equal(await p.step('alice connects', (a) => window.harness.connect(a.ws, 'alice'), { ws: server.ws }), 'ESTABLISHED');
      const denied = await p.step('a refused publish', () => window.harness.publish('alice', 'not-yours'));
      assert.deepEqual(denied, { status: 'FAILED', info: 'Publishing is closed' });
      const ok = await p.step('an allowed publish', () => window.harness.publish('alice', 'alice-cam'));
      assert.equal(ok.status, 'PUBLISHING');
      await waitUntil('the back end hears PUBLISHING', async () => {
        const seen = env.backend.calls.filter((c) => c.method === 'StreamStatusEvent' && c.body?.name === 'alice-cam').map((c) => c.body.status);
        return { ok: seen.includes('PUBLISHING'), seen };
      }, STEP_MS);
      const connects = env.backend.calls.filter((c) => c.method === 'connect').map((c) => c.body?.custom?.login);
      assert.deepEqual(connects, ['mallory', 'alice']);
    } catch (e) {
      e.message += `\n${report(pages, [server])}`;
      throw e;
    } finally {
      await closeAll();
    }
  });

  test('token invite links admit to one room, and the history page shows the call', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer({
      external: false,
      extraArgs: ['--web-dir', WEB_DIR, '--set', 'auth.secret="interview-secret"', '--set', `rest.api_keys=["${API_KEY}"]`],
    });
    env.servers.push(server);
    const mint = async (body) => {
      const res = await fetch(`${server.http}/rest-api/token/mint`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }, body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
      return (await res.json()).token;
    };
    assert.equal((await rest(server.http, '/rest-api/token/mint', { role: 'interviewer' })).status, 401, 'minting needs the API key');
    const room = 'iv-token';
    const host = await mint({ role: 'interviewer', room, login: 'emma' });
    const joined = () => window.interview?.local?.status === 'PUBLISHING';
    const refused = () => /Restricted access/.test(document.querySelector('[data-testid="join-error"]')?.textContent || '');
    const { pages, open, closeAll } = pageSet(t, (role, signal) => {
      if (role === 'emma') return openPage(env.browser, `${server.http}/?room=${room}&name=emma&token=${host}`, role, signal, { ready: joined });
      return null;
    });
    try {
      const emma = await open('emma');
      const invite = await waitUntil('the invite link carries a token', async () => {
        const link = await emma.page.inputValue('[data-testid="invite-link"]');
        return { ok: /token=/.test(link), seen: link, link };
      }, STEP_MS);
      const link = new URL(invite.link);
      assert.equal(link.searchParams.get('room'), room);
      link.searchParams.set('name', 'carl');
      const carl = await openPage(env.browser, link.href, 'carl', t.signal, { ready: joined });
      pages.push(carl);
      await waitUntil('carl sees emma\'s picture', async () => {
        const frames = await carl.page.evaluate(() => {
          const v = document.querySelector('[data-testid="tile"][data-login="emma"] video');
          return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
        });
        return { ok: frames > 10, seen: frames };
      }, STEP_MS);

      // The candidate's token is for this room only.
      const other = new URL(invite.link);
      other.searchParams.set('room', 'somewhere-else');
      other.searchParams.set('name', 'carl2');
      pages.push(await openPage(env.browser, other.href, 'elsewhere', t.signal, { ready: refused }));

      await carl.close();
      await emma.close();
      const history = await openPage(env.browser, `${server.http}/history.html?room=${room}`, 'history', t.signal, { ready: () => true });
      pages.push(history);
      await history.page.fill('#apiKey', API_KEY);
      await waitUntil('the history page lists the call, ended', async () => {
        await history.page.click('button[type="submit"]');
        await history.page.waitForTimeout(300);
        const rows = await history.page.$$eval('[data-testid="call"]', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
        const ok = rows.length === 1 && rows[0][0] === room && /carl/.test(rows[0][3]) && /emma/.test(rows[0][3]) && rows[0][2] !== 'in progress';
        return { ok, seen: rows };
      }, STEP_MS, 500);
      await history.page.click('[data-testid="call"]');
      const people = await waitUntil('the call opens to its participants', async () => {
        const items = await history.page.$$eval('[data-testid="participants"] li', (li) => li.map((l) => l.textContent));
        return { ok: items.length === 2, seen: items };
      }, STEP_MS);
      assert.ok(people.seen.some((s) => s.startsWith('emma')) && people.seen.some((s) => s.startsWith('carl')));
    } catch (e) {
      e.message += `\n${report(pages, [server])}`;
      throw e;
    } finally {
      await closeAll();
    }
  });
});
