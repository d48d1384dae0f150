// Helpers shared by the browser end-to-end tests (websdk.test.mjs, whip.test.mjs): starting and stopping streamgate,
// serving a test page from 127.0.0.1, launching headless Chromium, opening one browser context per role, the REST API,
// and the pieces of the failure reports.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../..');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const STREAMGATE_BIN = process.env.STREAMGATE_BIN
  ? path.resolve(process.env.STREAMGATE_BIN)
  : path.join(REPO_ROOT, 'target/debug/streamgate');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  // Chromium leaves loopback out of ICE gathering by default: in a loopback-only network namespace it would then have
  // no candidate at all, and elsewhere it would reach the server only from the machine's other addresses.
  '--allow-loopback-in-peer-connection',
];

export const isLoopbackHost = (host) =>
  host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Keeps the last `max` lines written to it. */
export class Tail {
  constructor(max) {
    this.max = max;
    this.lines = [];
    this.partial = '';
  }
  write(chunk) {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop();
    this.push(...parts);
  }
  push(...lines) {
    this.lines.push(...lines);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  text() {
    return [...this.lines, this.partial].filter(Boolean).join('\n');
  }
}

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The server under test: either one named by the environment (STREAMGATE_WS and STREAMGATE_HTTP, loopback only), or
 * one started here from STREAMGATE_BIN and stopped by `stop()`. `extraArgs` go to `serve`; a server that needs them
 * (`external: false`) is always started here, whatever the environment says.
 */
export async function startServer({ extraArgs = [], external = true } = {}) {
  const ws = process.env.STREAMGATE_WS;
  // streamgate itself reads STREAMGATE_HTTP as its listen address (host:port), so accept that form too.
  let httpBase = process.env.STREAMGATE_HTTP;
  if (httpBase && !/^https?:\/\//.test(httpBase)) httpBase = `http://${httpBase}`;
  if (external && (ws || httpBase)) {
    assert.ok(ws && httpBase, 'set both STREAMGATE_WS and STREAMGATE_HTTP, or neither (then the test starts the server)');
    for (const url of [ws, httpBase]) {
      // The test must not send traffic anywhere but this machine's loopback.
      assert.ok(isLoopbackHost(new URL(url).hostname), `${url}: only loopback servers may be tested`);
    }
    // RTMP (rtmp.test.mjs) only when STREAMGATE_RTMP names its host:port (the server reads that variable too).
    const rtmpAddr = process.env.STREAMGATE_RTMP;
    if (rtmpAddr) assert.ok(isLoopbackHost(new URL(`rtmp://${rtmpAddr}`).hostname), `${rtmpAddr}: only loopback servers may be tested`);
    const rtmp = rtmpAddr ? `rtmp://${rtmpAddr}` : null;
    return { ws, http: httpBase.replace(/\/+$/, ''), rtmp, log: null, external: true, stop: async () => {} };
  }

  const bin = STREAMGATE_BIN;
  assert.ok(fs.existsSync(bin), `streamgate binary not found at ${bin}: build it (cargo build), set STREAMGATE_BIN, or set STREAMGATE_WS/STREAMGATE_HTTP to a running server`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamgate-e2e-'));
  const [httpPort, rtmpPort, rtspPort, hlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const args = [
    'serve',
    '--http', `127.0.0.1:${httpPort}`,
    '--rtmp', `127.0.0.1:${rtmpPort}`,
    '--rtsp', `127.0.0.1:${rtspPort}`,
    '--hls', `127.0.0.1:${hlsPort}`,
    '--ice-address', '127.0.0.1',
    '--data-dir', dataDir,
    ...extraArgs,
  ];
  const log = new Tail(400);
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  child.stdout.setEncoding('utf8').on('data', (d) => log.write(d));
  child.stderr.setEncoding('utf8').on('data', (d) => log.write(d));
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ error: error.message })); // e.g. not executable
  });
  let exit = null;
  exited.then((e) => { exit = e; });
  // Last resort if this process dies without running the after() hook: never leave a server behind.
  const reap = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  process.once('exit', reap);

  const stop = async () => {
    if (!exit) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => {
        console.error('streamgate did not exit within 10 s of SIGTERM; killing it');
        child.kill('SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(killer);
    }
    process.removeListener('exit', reap);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };

  const base = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exit) {
      await stop();
      assert.fail(`streamgate exited (${JSON.stringify(exit)}) before /health answered; its output:\n${log.text()}`);
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      assert.fail(`streamgate did not answer GET /health with 200 within 30 s; its output:\n${log.text()}`);
    }
    await sleep(200);
  }
  return { ws: `ws://127.0.0.1:${httpPort}/`, http: base, rtmp: `rtmp://127.0.0.1:${rtmpPort}`, log, external: false, stop };
}

/**
 * Serves test pages from 127.0.0.1, a secure-context origin (getUserMedia needs one). `routes` maps a path to
 * `{ type, body }` or `{ type, file }`.
 */
export async function startPageServer(routes) {
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    const route = Object.hasOwn(routes, pathname) ? routes[pathname] : null;
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' });
    if (route.file) fs.createReadStream(route.file).pipe(res);
    else res.end(route.body);
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Launches headless Chromium, after saying whether ICE could see interfaces other than loopback. */
export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_BIN`);
  const others = Object.entries(os.networkInterfaces()).filter(([, addrs]) => addrs.some((a) => !a.internal));
  if (others.length > 0) {
    console.error(`note: this network namespace has non-loopback interfaces (${others.map(([n]) => n).join(', ')}); ` +
      'Chromium gathers ICE candidates on them too. run.sh runs the test in a loopback-only namespace.');
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** POSTs JSON to the WCS-style REST API; returns the status and the parsed body (or the raw text). */
export async function rest(base, route, body) {
  const res = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** Encoding names (upper case) listed by `a=rtpmap` in the first m=`kind` section of an SDP. */
export function sdpCodecs(sdp, kind = 'video') {
  const section = sdp.split(/\r?\n(?=m=)/).find((s) => s.startsWith(`m=${kind}`)) || '';
  return [...section.matchAll(/^a=rtpmap:\d+ ([^/\s]+)\//gm)].map((m) => m[1].toUpperCase());
}

/**
 * One browser context with a test page loaded: a separate "user" per role. Records the console for the failure
 * report, and keeps a list of requests that would leave loopback.
 *
 * With `blockOffLoopback` (the default) such requests are also aborted through request interception. Interception
 * has a side effect: Playwright then answers every CORS preflight itself, with permissive headers, instead of letting
 * it reach the server. A test whose point includes the server's CORS answers passes `blockOffLoopback: false`; the
 * requests are then only recorded (run.sh's loopback-only network namespace is what keeps them on this machine).
 *
 * `ready` is a function evaluated in the page that must become truthy once the page has set itself up.
 */
export async function openPage(browser, pageUrl, role, signal, { blockOffLoopback = true, ready = () => window.harness } = {}) {
  const context = await browser.newContext();
  // Chromium enumerates local interfaces for ICE only for pages that hold camera/microphone permission; a player
  // never asks for media, and without it would have no loopback candidate.
  await context.grantPermissions(['camera', 'microphone'], { origin: new URL(pageUrl).origin });
  const console_ = new Tail(300);
  const offLoopback = [];
  if (blockOffLoopback) {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isLoopbackHost(new URL(url).hostname)) return route.continue();
      offLoopback.push(url);
      return route.abort('blockedbyclient');
    });
  } else {
    context.on('request', (req) => {
      const url = new URL(req.url());
      if (/^(https?|wss?):$/.test(url.protocol) && !isLoopbackHost(url.hostname)) offLoopback.push(req.url());
    });
  }
  const page = await context.newPage();
  page.on('console', (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`));
  page.on('websocket', (ws) => {
    if (!isLoopbackHost(new URL(ws.url()).hostname)) offLoopback.push(ws.url());
  });
  await page.goto(pageUrl);
  await page.waitForFunction(ready);
  return {
    role,
    page,
    context,
    console: console_,
    offLoopback,
    close: () => context.close().catch(() => {}),
    // Runs fn in the page; a rejection becomes an assertion naming the role and the step.
    async step(what, fn, arg) {
      // A scenario that node:test has given up on must not go on driving the browser alongside the next one.
      if (signal.aborted) throw new Error(`${role}: ${what}: scenario aborted (${signal.reason})`);
      try {
        return await page.evaluate(fn, arg);
      } catch (e) {
        const msg = String(e.message || e).replace(/^page\.evaluate: (Error: )?/, '').split('\n    at ')[0];
        throw new assert.AssertionError({ message: `${role}: ${what}: ${msg}` });
      }
    },
  };
}

/**
 * The pages of one scenario (`openRole(role, signal)` opens one, e.g. through openPage). If node:test gives up on the
 * scenario, closing their contexts makes every pending page call reject at once; `closeAll()` closes them at the end.
 */
export function pageSet(t, openRole) {
  const pages = [];
  t.signal.addEventListener('abort', () => pages.forEach((p) => p.close()), { once: true });
  return {
    pages,
    async open(role) {
      const p = await openRole(role, t.signal);
      pages.push(p);
      if (t.signal.aborted) p.close(); // opened after the abort listener ran
      return p;
    },
    closeAll: () => Promise.all(pages.map((p) => p.close())),
  };
}

/** The console part of a page's failure report. */
export function consoleReport(p) {
  return `----- ${p.role}: browser console (last lines) -----\n${p.console.lines.slice(-80).join('\n') || '  (none)'}`;
}

/** The server part of a failure report (nothing for a server this test did not start). */
export function serverReport(server, label = 'streamgate') {
  return server && server.log ? `----- ${label} output (last lines) -----\n${server.log.lines.slice(-120).join('\n')}` : '';
}

/** GETs `route`; returns the status, the headers, and the parsed body (or the raw text). */
export async function httpGet(base, route, headers = {}) {
  const res = await fetch(`${base}${route}`, { headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Calls `fn` every `interval` ms until it returns `{ok: true, ...}`; fails after `timeoutMs` with `what` and the last
 * `seen` value (or the whole last answer).
 */
export async function waitUntil(what, fn, timeoutMs, interval = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (last.ok) return last;
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `${what}: not within ${timeoutMs} ms; last seen: ${JSON.stringify(last.seen ?? last)}` });
    await sleep(interval);
  }
}
