// streamgate Web SDK: publish and play WebRTC streams and run rooms over streamgate's WCS-compatible WebSocket
// signaling. An ES module with no dependencies and no build step; the TypeScript declarations are streamgate.d.ts.
//
//   import { connect } from '/sdk/streamgate.js';
//   const session = await connect({ login: 'alice' });
//   const stream = await session.publish({ name: 'demo', source: 'camera' });
//
// Everything is scoped to the objects connect() returns: there is no global state, and several sessions may coexist.

import { playHls, playLadder, playMse } from './fallback.js';

export { Playback } from './fallback.js';

/** Version of this SDK, sent to the server as `clientVersion` is the WCS protocol version instead ("2.0"). */
export const VERSION = '1.0.0';

/**
 * Session states.
 * @readonly
 * @enum {string}
 */
export const SessionStatus = Object.freeze({
  /** Opening the WebSocket and waiting for the server's `getUserData`. */
  CONNECTING: 'CONNECTING',
  /** Connected; streams can be published and played. */
  ESTABLISHED: 'ESTABLISHED',
  /** The connection dropped; the SDK is reconnecting and will restore rooms and streams. */
  RECONNECTING: 'RECONNECTING',
  /** Closed for good: by {@link Session#disconnect}, or because reconnecting gave up. */
  DISCONNECTED: 'DISCONNECTED',
});

/**
 * Stream states. The server's are PENDING, PUBLISHING, PLAYING, UNPUBLISHED, STOPPED and FAILED; RECONNECTING and
 * WAITING are the SDK's own.
 * @readonly
 * @enum {string}
 */
export const StreamStatus = Object.freeze({
  /** Negotiating with the server. */
  PENDING: 'PENDING',
  /** A published stream's media flows to the server. */
  PUBLISHING: 'PUBLISHING',
  /** A played stream's media flows from the server. */
  PLAYING: 'PLAYING',
  /** The session's connection dropped; the stream is restored (republished or played again) when it is back. */
  RECONNECTING: 'RECONNECTING',
  /** A played stream whose publisher went away; the SDK tries to play it again (see `waitForRepublish`). */
  WAITING: 'WAITING',
  /** A published stream ended (final). */
  UNPUBLISHED: 'UNPUBLISHED',
  /** A played stream ended (final). */
  STOPPED: 'STOPPED',
  /** The stream could not start or broke (final); `info` says why. */
  FAILED: 'FAILED',
});

/**
 * Options of {@link connect}.
 * @typedef {object} ConnectOptions
 * @property {string} [url] The server's WebSocket URL. Default: the page's own origin, `ws(s)://host/`.
 * @property {string} [token] Sent as the `authToken` of the `connection` message.
 * @property {string} [login] Sent as `custom.login`; rooms need one.
 * @property {Record<string, any>} [custom] More `custom` fields of the `connection` message.
 * @property {string} [appKey] The application key. Default "defaultApp". (A WCS server runs rooms under "roomApp";
 *   streamgate runs them under any key.)
 * @property {false | ReconnectOptions} [reconnect] How to reconnect after the connection drops; `false` never does.
 *   Default: enabled with the defaults of {@link ReconnectOptions}.
 * @property {number} [timeoutMs] How long connecting, each reconnect attempt and each sendData may take. Default 10000.
 * @property {number} [keepAliveTimeoutMs] Treat the connection as dropped when nothing was heard from the server
 *   for this long (it pings every 5 s); 0 disables the check. Default 30000.
 * @property {RTCConfiguration} [rtcConfiguration] More RTCPeerConnection configuration, for example `iceServers`.
 */

/**
 * Reconnection with exponential backoff: attempt n waits min(maxDelayMs, initialDelayMs * factor^(n-1)), shortened at
 * random by up to `jitter` of it.
 * @typedef {object} ReconnectOptions
 * @property {number} [initialDelayMs] Delay before the first attempt. Default 500.
 * @property {number} [maxDelayMs] Longest delay. Default 8000.
 * @property {number} [factor] Growth per attempt. Default 2.
 * @property {number} [jitter] Fraction (0 to 1) of a delay that may be taken off at random. Default 0.3.
 * @property {number} [maxAttempts] Give up (status DISCONNECTED) after this many failed attempts. Default Infinity.
 */

/**
 * Options of {@link Session#publish}.
 * @typedef {object} PublishOptions
 * @property {string} name The stream name.
 * @property {'camera' | 'screen' | HTMLCanvasElement | MediaStream} [source] What to send. Default 'camera'. A
 *   MediaStream is sent as it is and never stopped by the SDK; what the SDK acquires is stopped when the stream ends.
 * @property {boolean | MediaTrackConstraints} [video] Camera or screen video constraints; `false` sends no video.
 * @property {boolean | MediaTrackConstraints} [audio] Microphone constraints; `false` sends no audio. Default: true for
 *   'camera' and 'screen' (the microphone goes with the screen), false for a canvas.
 * @property {boolean} [record] Ask the server to record the stream: recording starts once it is PUBLISHING, and the
 *   stream's `recording` event tells when it runs and which file it writes.
 * @property {'H264' | 'VP8'} [codec] Video codec to send. Default: the browser's choice.
 * @property {HTMLVideoElement} [element] Shows the local media (muted) in this element.
 * @property {number} [frameRate] Capture rate of a canvas source. Default 30.
 * @property {Record<string, any>} [custom] The `custom` object of the publishStream message.
 * @property {number} [timeoutMs] How long to wait for PUBLISHING. Default 20000.
 */

/**
 * Options of {@link Session#play}.
 * @typedef {object} PlayOptions
 * @property {string} name The stream name.
 * @property {HTMLVideoElement} [element] Plays the media in this element (muted if the browser refuses autoplay
 *   with sound).
 * @property {'H264' | 'VP8'} [codec] Video codec to ask for. Default: the browser's choice.
 * @property {boolean | number} [waitForRepublish] When the publisher goes away (the server stops the stream with
 *   "Stopped by publisher stop"), keep trying to play the same name instead of ending: the stream is WAITING, then
 *   PLAYING again in the same element once a publisher is back. `true` waits up to 30 s, a number that many
 *   milliseconds; then the stream ends STOPPED. Default false: the stream ends at once.
 * @property {Record<string, any>} [custom] The `custom` object of the playStream message.
 * @property {number} [timeoutMs] How long to wait for PLAYING. Default 20000.
 * @property {'webrtc' | 'mse' | 'hls' | 'auto'} [via] How to play: WebRTC (the default; resolves with a
 *   {@link Stream}), MSE (fMP4 over a WebSocket), LL-HLS (hls.js when the page loaded it, else the browser's own
 *   HLS), or `auto`: the fallback ladder (WebRTC over UDP, WebRTC through TURN when `rtcConfiguration` names one, MSE,
 *   LL-HLS), which resolves with the first that shows a picture. The three others resolve with a `Playback`
 *   (`via`, `element`, `status`, `stop()`, and `stream` when a WebRTC rung won).
 * @property {string[]} [ladder] The rungs `auto` tries, in order. Default ['webrtc', 'turn', 'mse', 'hls'].
 * @property {number} [rungTimeoutMs] How long `auto` gives a rung to show a picture. Default 8000.
 * @property {(rung: {via: string, status: 'trying'|'playing'|'failed', info: string}) => void} [onRung] Told of
 *   every step of the ladder.
 * @property {string} [token] A signed token for MSE and HLS (default: the session's `custom.token`).
 * @property {RTCConfiguration} [rtcConfiguration] Overrides the session's for this stream.
 */

/**
 * What {@link Stream#getStats} returns. Bitrates are in bits per second.
 * @typedef {object} StreamStats
 * @property {number} timestamp When the summary was made (ms since the epoch).
 * @property {number} bitrate Video plus audio.
 * @property {number} videoBitrate
 * @property {number} audioBitrate
 * @property {number} fps Video frames per second.
 * @property {{width: number, height: number}} resolution Video frame size.
 * @property {number} packetsLost Packets lost so far (received: as counted here; sent: as the server reported).
 * @property {string|null} codec Video codec, e.g. "VP8" or "H264".
 * @property {string|null} audioCodec Audio codec, e.g. "opus".
 * @property {number} frames Video frames encoded (publisher) or decoded (player) so far.
 * @property {number|null} rtt Round-trip time to the server in ms, when known.
 */

/**
 * Another participant of a room.
 * @typedef {object} Participant
 * @property {string} login
 * @property {string[]} streams Names of the streams it publishes in the room.
 */

/**
 * Whether the server records a stream ({@link Stream#recording}, and the data of a stream's `recording` event).
 * @typedef {object} RecordingState
 * @property {boolean} active The server is writing the stream to a file now.
 * @property {string|null} recordName The file being written, or the last one written; null before any recording.
 */

/**
 * A stream of a room that the server is recording ({@link Room#recordings}).
 * @typedef {object} RoomRecording
 * @property {string} login Who publishes the stream (this participant's own login for its own streams).
 * @property {string} name The stream name.
 * @property {string|null} recordName The file being written.
 */

const FINAL = new Set(['UNPUBLISHED', 'STOPPED', 'FAILED']);
const ACTIVE = new Set(['PUBLISHING', 'PLAYING']);
// Infos with which the server ends every stream of a connection it is about to close (REST connection/terminate, its
// own shutdown). When the socket then closes, the stream was interrupted, not ended: it is restored on reconnect.
const SESSION_END_INFOS = new Set([
  'Stopped by rest /terminate',
  'Requested stream shutdown',
  'Stopped by session disconnect',
]);
const PUBLISHER_GONE_INFO = 'Stopped by publisher stop';
const NOT_FOUND_INFO = 'Stream not found';
const NAME_IN_USE = /already in use/i;

const DEFAULTS = {
  timeoutMs: 10_000,
  keepAliveTimeoutMs: 30_000,
  reconnect: { initialDelayMs: 500, maxDelayMs: 8_000, factor: 2, jitter: 0.3, maxAttempts: Infinity },
  streamTimeoutMs: 20_000,
  iceGatheringMs: 1_000,
  limboMs: 2_000,
  stopTimeoutMs: 3_000,
  waitForRepublishMs: 30_000,
  retryIntervalMs: 1_000,
  republishInUseMs: 40_000,
  statsWindowMs: 500,
  snapshotTimeoutMs: 15_000, // longer than the server takes to give up on one (10 s), so its reason is what arrives
  recordingsSettleMs: 1_000,
};

// Only connect() and the objects it makes may construct sessions, streams and rooms.
const INTERNAL = Symbol('streamgate.internal');

/**
 * An error from the server or the SDK. `message` is the server's `info` text when there is one (for example
 * "Stream not found" or "Stream name is already in use").
 */
export class StreamgateError extends Error {
  /**
   * @param {string} message What went wrong.
   * @param {{info?: string, status?: string, cause?: unknown}} [details] The server's info text, the status that
   *   carried it, and an underlying error.
   */
  constructor(message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    /** @type {string} */
    this.name = 'StreamgateError';
    /** The server's `info` text, or the message. @type {string} */
    this.info = details.info ?? message;
    /** The status that reported the error (for example "FAILED"), or null. @type {string|null} */
    this.status = details.status ?? null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------------------

const listenersOf = new WeakMap();
const ORIGINAL = Symbol('listener');

/** Calls every listener of `event` on `target` with `data`; a throwing listener does not stop the others. */
function emit(target, event, data) {
  const set = listenersOf.get(target)?.get(event);
  if (!set) return;
  for (const fn of [...set]) {
    try {
      fn(data);
    } catch (e) {
      if (typeof globalThis.reportError === 'function') globalThis.reportError(e);
      else console.error(e);
    }
  }
}

/** Base class of {@link Session}, {@link Stream} and {@link Room}: `on`, `once` and `off` for their events. */
export class Emitter {
  /**
   * Adds a listener.
   * @param {string} event The event name.
   * @param {(data: any) => void} listener Called with the event's data.
   * @returns {this}
   */
  on(event, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let map = listenersOf.get(this);
    if (!map) listenersOf.set(this, (map = new Map()));
    if (!map.has(event)) map.set(event, new Set());
    map.get(event).add(listener);
    return this;
  }

  /**
   * Adds a listener that is removed after its first call.
   * @param {string} event The event name.
   * @param {(data: any) => void} listener Called with the event's data.
   * @returns {this}
   */
  once(event, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const wrapper = (data) => {
      this.off(event, wrapper);
      listener(data);
    };
    wrapper[ORIGINAL] = listener;
    return this.on(event, wrapper);
  }

  /**
   * Removes a listener added with `on` (or every listener of the event when `listener` is omitted).
   * @param {string} event The event name.
   * @param {(data: any) => void} [listener] The listener to remove.
   * @returns {this}
   */
  off(event, listener) {
    const map = listenersOf.get(this);
    if (!map) return this;
    const set = map.get(event);
    if (!set) return this;
    if (listener === undefined) {
      map.delete(event);
      return this;
    }
    for (const fn of set) if (fn === listener || fn[ORIGINAL] === listener) set.delete(fn);
    return this;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

function uuid() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function randomChars(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const b = globalThis.crypto.getRandomValues(new Uint8Array(n));
  return [...b].map((x) => alphabet[x % alphabet.length]).join('');
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc || !/^https?:$/.test(loc.protocol)) {
    throw new StreamgateError('connect() needs a url when the page is not served over http(s)');
  }
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

/** Resolves once ICE gathering is complete, or after `ms`: the server takes no trickled candidates. */
function iceGathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => pc.iceGatheringState === 'complete' && done();
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Puts `codec` first in a video transceiver's preferences, so that the server picks it. */
function preferCodec(transceiver, codec, sending) {
  if (!codec || typeof transceiver.setCodecPreferences !== 'function') return;
  const want = `video/${codec}`.toLowerCase();
  const sources = sending ? [globalThis.RTCRtpSender, globalThis.RTCRtpReceiver] : [globalThis.RTCRtpReceiver];
  let lastError = null;
  for (const source of sources) {
    const all = source?.getCapabilities?.('video')?.codecs || [];
    const first = all.filter((c) => c.mimeType.toLowerCase() === want);
    if (first.length === 0) {
      lastError = new StreamgateError(`This browser cannot ${sending ? 'send' : 'receive'} ${codec}`);
      continue;
    }
    try {
      transceiver.setCodecPreferences([...first, ...all.filter((c) => !first.includes(c))]);
      return;
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError instanceof StreamgateError ? lastError : new StreamgateError(`Cannot prefer ${codec}: ${lastError}`, { cause: lastError });
}

function codecName(mimeType) {
  return mimeType ? mimeType.split('/')[1] || mimeType : null;
}

function mediaDevices() {
  const md = globalThis.navigator?.mediaDevices;
  if (!md) throw new StreamgateError('Media devices are not available (the page must be a secure context)');
  return md;
}

function videoConstraints(video) {
  return video === undefined || video === true ? true : video;
}

// ---------------------------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------------------------

/**
 * Connects to a streamgate server and resolves once the session is ESTABLISHED (the server answered
 * `getUserData`). The first connection is not retried: it rejects if it fails. Once established, a dropped
 * connection is reconnected with exponential backoff (unless `reconnect: false`).
 *
 * @param {ConnectOptions} [options]
 * @returns {Promise<Session>}
 */
export async function connect(options = {}) {
  const session = new Session(INTERNAL, options);
  await session[INTERNAL].start();
  return session;
}

/**
 * A connection to the server. Made by {@link connect}. Events: `status` ({status, info}), `reconnecting`
 * ({attempt, delayMs, reason}), `reconnected` ({attempts, sessionId}), `disconnected` ({reason, deliberate}),
 * `data` (the payload of a server `OnDataEvent` that is not a room event), `warning` ({info, apiMethod}: a `fail`
 * message from the server).
 */
export class Session extends Emitter {
  #options;
  #url;
  #login;
  #reconnect;
  #ws = null;
  #status = 'CONNECTING';
  #userData = null;
  #deliberate = false;
  #attempt = 0;
  #reconnectTimer = null;
  #watchdog = null;
  #lastHeard = 0;
  #streams = new Set(); // stream controllers
  #byMsid = new Map(); // mediaSessionId -> stream controller
  #rooms = new Map(); // room name -> room controller
  #pendingData = new Map(); // operationId -> {resolve, reject, timer}
  #link;

  /** @hideconstructor */
  constructor(key, options) {
    if (key !== INTERNAL) throw new TypeError('Use connect() to create a Session');
    super();
    this.#options = { ...options };
    this.#url = options.url || defaultUrl();
    this.#login = options.login ?? options.custom?.login ?? null;
    this.#reconnect = options.reconnect === false ? null : { ...DEFAULTS.reconnect, ...(options.reconnect || {}) };
    const session = this;
    this.#link = {
      session,
      get login() {
        return session.#login;
      },
      get up() {
        return session.#status === 'ESTABLISHED' && session.#ws !== null;
      },
      get reconnects() {
        return session.#reconnect !== null;
      },
      rtcConfiguration: () => ({ bundlePolicy: 'max-bundle', ...(session.#options.rtcConfiguration || {}) }),
      send: (message, data) => session.#send(message, data),
      sendData: (payload) => session.sendData(payload),
      add: (ctl) => session.#streams.add(ctl),
      remove: (ctl) => session.#streams.delete(ctl),
      bind: (msid, ctl) => session.#byMsid.set(msid, ctl),
      unbind: (msid, ctl) => {
        if (session.#byMsid.get(msid) === ctl) session.#byMsid.delete(msid);
      },
      dropRoom: (name, ctl) => {
        if (session.#rooms.get(name) === ctl) session.#rooms.delete(name);
      },
      publish: (opts, extra) => session.#publish(opts, extra),
      play: (opts, extra) => session.#play(opts, extra),
    };
    // Reachable only with the module's private symbol: connect() starts the first connection through it.
    Object.defineProperty(this, INTERNAL, { value: { start: () => this.#start() } });
  }

  /** The server's session id (changes on every reconnect). @type {string|null} */
  get id() {
    return this.#userData?.sessionId ?? null;
  }

  /** The current state, one of {@link SessionStatus}. @type {string} */
  get status() {
    return this.#status;
  }

  /** The WebSocket URL. @type {string} */
  get url() {
    return this.#url;
  }

  /** The login sent as `custom.login` (needed for rooms), or null. @type {string|null} */
  get login() {
    return this.#login;
  }

  /** The server's `authToken` from `getUserData`. @type {string|null} */
  get authToken() {
    return this.#userData?.authToken ?? null;
  }

  /** The server's `getUserData` object for the current connection. @type {Record<string, any>|null} */
  get userData() {
    return this.#userData ? { ...this.#userData } : null;
  }

  /** Streams of this session that have not ended. @type {Stream[]} */
  get streams() {
    return [...this.#streams].map((c) => c.stream);
  }

  /** Rooms this session is in. @type {Room[]} */
  get rooms() {
    return [...this.#rooms.values()].map((c) => c.room);
  }

  /**
   * Publishes a stream; resolves once it is PUBLISHING. Rejects with a {@link StreamgateError} carrying the server's
   * info when the server refuses it (for example "Stream name is already in use").
   * @param {PublishOptions} options
   * @returns {Promise<Stream>}
   */
  publish(options) {
    return this.#publish(options, {});
  }

  /**
   * Plays a stream; resolves once it is PLAYING, with the media attached to `element` when given. Rejects with
   * "Stream not found" when nothing is published under that name.
   * @param {PlayOptions} options
   * @returns {Promise<Stream>}
   */
  play(options, more) {
    if (typeof options === 'string') options = { ...(more || {}), name: options };
    const via = options?.via || 'webrtc';
    if (via === 'webrtc') return this.#play(options, {});
    if (!options.name) return Promise.reject(new TypeError('play needs a name'));
    const opts = { ...options, token: options.token ?? this.#options.custom?.token };
    if (via === 'mse') return playMse(this.#url, opts.name, opts);
    if (via === 'hls') return playHls(this.#url, opts.name, opts);
    if (via === 'auto') {
      const webrtc = (extra) => this.#play({ ...options, ...extra, via: 'webrtc' }, {});
      return playLadder(this.#url, opts, webrtc, this.#link.rtcConfiguration());
    }
    return Promise.reject(new TypeError(`unknown via ${via}`));
  }

  /**
   * Joins a room (WCS room application) with this session's login; resolves once the server sent the room's state.
   * @param {string} name The room name.
   * @param {{record?: boolean}} [options]
   * @returns {Promise<Room>}
   */
  async joinRoom(name, options = {}) {
    if (!name || typeof name !== 'string') throw new TypeError('joinRoom needs a room name');
    if (!this.#login) throw new StreamgateError('joinRoom needs a login: connect({ login })');
    this.#requireUp('joinRoom');
    const existing = this.#rooms.get(name);
    if (existing) return existing.joined;
    const room = new Room(INTERNAL, this.#link, name, { record: Boolean(options.record) });
    const ctl = room[INTERNAL];
    this.#rooms.set(name, ctl);
    ctl.joined = ctl.join().then(() => room, (e) => {
      this.#rooms.delete(name);
      throw e;
    });
    return ctl.joined;
  }

  /**
   * Sends data to the server's application (`sendData`); resolves when it is ACCEPTED, rejects with its info when
   * it FAILED.
   * @param {any} payload
   * @returns {Promise<void>}
   */
  sendData(payload) {
    return new Promise((resolve, reject) => {
      if (!this.#ws || this.#status !== 'ESTABLISHED') {
        reject(new StreamgateError(`sendData: the session is ${this.#status}`));
        return;
      }
      const operationId = uuid();
      const timer = setTimeout(() => {
        this.#pendingData.delete(operationId);
        reject(new StreamgateError(`sendData: no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pendingData.set(operationId, { resolve, reject, timer });
      this.#send('sendData', { operationId, payload });
    });
  }

  /**
   * Closes the session on purpose: every stream ends, rooms are left (the server tells the others), and no
   * reconnection is attempted.
   */
  disconnect() {
    if (this.#status === 'DISCONNECTED') return;
    this.#deliberate = true;
    this.#shutdown('Disconnected by the client', true);
  }

  // --- internals ------------------------------------------------------------------------------------------------

  get #timeoutMs() {
    return this.#options.timeoutMs ?? DEFAULTS.timeoutMs;
  }

  #requireUp(what) {
    if (this.#status !== 'ESTABLISHED') throw new StreamgateError(`${what}: the session is ${this.#status}`);
  }

  async #start() {
    try {
      await this.#handshake();
    } catch (e) {
      this.#setStatus('DISCONNECTED', e.message);
      throw e;
    }
    this.#setStatus('ESTABLISHED');
  }

  #setStatus(status, info = '') {
    if (this.#status === status) return;
    this.#status = status;
    emit(this, 'status', { status, info });
  }

  #connectionObject() {
    const custom = { ...(this.#options.custom || {}) };
    if (this.#login) custom.login = this.#login;
    const nav = globalThis.navigator;
    const obj = {
      appKey: this.#options.appKey || 'defaultApp',
      mediaProviders: ['WebRTC'],
      clientVersion: '2.0',
      clientOSVersion: nav?.appVersion,
      clientBrowserVersion: nav?.userAgent,
      custom,
    };
    if (this.#options.token) obj.authToken = this.#options.token;
    return obj;
  }

  /** Opens a socket and runs `connection`; resolves with `getUserData`. */
  #handshake() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.#url);
      } catch (e) {
        reject(new StreamgateError(`Cannot open ${this.#url}: ${e.message}`, { cause: e }));
        return;
      }
      this.#ws = ws;
      let settled = false;
      const fail = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try {
          ws.close();
        } catch {
          // already closed
        }
        if (this.#ws === ws) this.#ws = null;
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new StreamgateError(`No session from ${this.#url} within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      ws.onopen = () => ws.send(JSON.stringify({ message: 'connection', data: [this.#connectionObject()] }));
      ws.onerror = () => {}; // a close event follows
      ws.onclose = (e) => fail(new StreamgateError(`Connection to ${this.#url} closed before the session was established${e.code ? ` (code ${e.code})` : ''}`));
      ws.onmessage = (e) => {
        const msg = parseFrame(e.data);
        if (!msg) return;
        const obj = msg.data[0];
        if (msg.message === 'ping') {
          ws.send(JSON.stringify({ message: 'pong', data: [null] }));
        } else if (msg.message === 'fail') {
          fail(new StreamgateError(obj?.info || 'Connection refused', { info: obj?.info, status: 'FAILED' }));
        } else if (msg.message === 'getUserData') {
          settled = true;
          clearTimeout(timer);
          this.#userData = obj || {};
          this.#lastHeard = Date.now();
          ws.onmessage = (ev) => this.#onFrame(ws, ev);
          ws.onclose = (ev) => this.#onClose(ws, ev.code ? `closed with code ${ev.code}${ev.reason ? ` (${ev.reason})` : ''}` : 'closed');
          this.#startWatchdog(ws);
          resolve(this.#userData);
        }
      };
    });
  }

  #startWatchdog(ws) {
    clearInterval(this.#watchdog);
    const limit = this.#options.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs;
    if (!limit) return;
    this.#watchdog = setInterval(() => {
      if (this.#ws !== ws) return;
      if (Date.now() - this.#lastHeard > limit) {
        ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close(4000, 'keep-alive timeout');
        } catch {
          // ignore
        }
        this.#onClose(ws, `nothing heard from the server for ${limit} ms`);
      }
    }, Math.min(5_000, limit));
  }

  #send(message, data) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify({ message, data: [data] }));
    return true;
  }

  #onFrame(ws, event) {
    if (this.#ws !== ws) return;
    this.#lastHeard = Date.now();
    const msg = parseFrame(event.data);
    if (!msg) return;
    const obj = msg.data[0];
    switch (msg.message) {
      case 'ping':
        this.#send('pong', null);
        break;
      case 'setRemoteSDP':
        this.#byMsid.get(msg.data[0])?.onAnswer(msg.data[1]);
        break;
      case 'notifyStreamStatusEvent':
        if (obj) this.#byMsid.get(obj.mediaSessionId)?.onStatus(obj);
        break;
      case 'notifyStreamEvent':
        if (obj) this.#byMsid.get(obj.mediaSessionId)?.onEvent(obj);
        break;
      case 'DataStatusEvent': {
        const pending = obj && this.#pendingData.get(obj.operationId);
        if (!pending) break;
        this.#pendingData.delete(obj.operationId);
        clearTimeout(pending.timer);
        if (obj.status === 'FAILED') pending.reject(new StreamgateError(obj.info || 'sendData failed', { info: obj.info, status: 'FAILED' }));
        else pending.resolve();
        break;
      }
      case 'OnDataEvent': {
        const payload = obj?.payload;
        const room = payload && typeof payload === 'object' && payload.roomName !== undefined ? this.#rooms.get(payload.roomName) : null;
        if (room) room.onEvent(payload);
        else emit(this, 'data', payload);
        break;
      }
      case 'fail':
        emit(this, 'warning', { info: obj?.info ?? '', apiMethod: obj?.apiMethod ?? null });
        break;
      default:
        break;
    }
  }

  #rejectPendingData(reason) {
    for (const [id, p] of this.#pendingData) {
      clearTimeout(p.timer);
      p.reject(new StreamgateError(reason));
      this.#pendingData.delete(id);
    }
  }

  #onClose(ws, reason) {
    if (this.#ws !== ws) return;
    this.#ws = null;
    clearInterval(this.#watchdog);
    this.#rejectPendingData(`Connection lost (${reason})`);
    if (this.#deliberate || this.#status === 'DISCONNECTED') return;
    if (!this.#reconnect) {
      this.#shutdown(`Connection lost (${reason})`, false);
      return;
    }
    this.#setStatus('RECONNECTING', reason);
    for (const ctl of [...this.#streams]) ctl.interrupt(`Connection lost (${reason})`);
    for (const ctl of this.#rooms.values()) ctl.interrupt();
    this.#attempt = 0;
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason) {
    const r = this.#reconnect;
    this.#attempt += 1;
    if (this.#attempt > r.maxAttempts) {
      this.#shutdown(`Could not reconnect after ${r.maxAttempts} attempts (${reason})`, false);
      return;
    }
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** (this.#attempt - 1));
    const delayMs = Math.round(base * (1 - r.jitter * Math.random()));
    emit(this, 'reconnecting', { attempt: this.#attempt, delayMs, reason });
    this.#reconnectTimer = setTimeout(() => this.#tryReconnect(), delayMs);
  }

  async #tryReconnect() {
    this.#reconnectTimer = null;
    if (this.#deliberate || this.#status !== 'RECONNECTING') return;
    try {
      await this.#handshake();
    } catch (e) {
      if (this.#deliberate || this.#status !== 'RECONNECTING') return;
      this.#scheduleReconnect(e.message);
      return;
    }
    if (this.#deliberate) return;
    const attempts = this.#attempt;
    this.#attempt = 0;
    this.#setStatus('ESTABLISHED');
    emit(this, 'reconnected', { attempts, sessionId: this.id });
    // Rooms first, so that republished room streams are announced in them; then every stream.
    await Promise.all([...this.#rooms.values()].map((ctl) => ctl.rejoin()));
    if (/** @type {string} */ (this.#status) !== 'ESTABLISHED') return; // dropped again meanwhile
    for (const ctl of [...this.#streams]) ctl.restore();
  }

  #shutdown(reason, deliberate) {
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#watchdog);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // ignore
      }
    }
    this.#rejectPendingData(reason);
    for (const ctl of [...this.#streams]) ctl.end(reason);
    for (const ctl of [...this.#rooms.values()]) ctl.end();
    this.#rooms.clear();
    this.#setStatus('DISCONNECTED', reason);
    emit(this, 'disconnected', { reason, deliberate });
  }

  #publish(options, extra) {
    if (!options || !options.name) return Promise.reject(new TypeError('publish needs a name'));
    try {
      this.#requireUp('publish');
    } catch (e) {
      return Promise.reject(e);
    }
    const stream = new Stream(INTERNAL, this.#link, 'publish', options, extra);
    return stream[INTERNAL].start();
  }

  #play(options, extra) {
    if (!options || !options.name) return Promise.reject(new TypeError('play needs a name'));
    try {
      this.#requireUp('play');
    } catch (e) {
      return Promise.reject(e);
    }
    const stream = new Stream(INTERNAL, this.#link, 'play', options, extra);
    return stream[INTERNAL].start();
  }
}

function parseFrame(text) {
  if (typeof text !== 'string') return null;
  try {
    const msg = JSON.parse(text);
    if (!msg || typeof msg.message !== 'string') return null;
    if (!Array.isArray(msg.data)) msg.data = [msg.data];
    return msg;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------------------------------------------

/**
 * A published or played stream. Made by {@link Session#publish}, {@link Session#play}, {@link Room#publish} and
 * {@link Room#play}. Events: `status` ({status, info}), `event` ({type, payload}: a publisher's stream event, on the
 * player side: audioMuted, audioUnmuted, videoMuted, videoUnmuted, data, recordingStarted, recordingStopped),
 * `track` ({track, kind, source}: a track of `mediaStream` was added or replaced), `recording` ({active,
 * recordName}: the server started or stopped recording the stream; see {@link Stream#recording}).
 */
export class Stream extends Emitter {
  #link;
  #type;
  #opts;
  #name;
  #room;
  #msid = null;
  #status = 'PENDING';
  #info = '';
  #pc = null;
  #videoSender = null;
  #mediaStream = null;
  #element = null;
  #source = null;
  #owned = new Set(); // tracks this SDK acquired and must stop
  #audioMuted = false;
  #videoMuted = false;
  #starter = null; // {resolve, reject, timer} while the first start is pending
  #stopping = null; // {resolve, timer} while stop() waits for the server
  #limbo = null; // {status, info, timer} after a session-level end, until the socket closes or the timer fires
  #retryTimer = null;
  #waitUntil = null; // player: keep retrying until then
  #inUseUntil = null; // publisher: keep republishing while the old name is still held
  #statsPrev = null;
  #live = false; // the server holds a media session for #msid
  #confirmed = null; // the media session id the server last confirmed PUBLISHING or PLAYING for
  #recording = { active: false, recordName: null };
  #snapshots = []; // {resolve, reject, timer} per snapshot() awaiting the server's answer, oldest first
  #ctl;

  /** @hideconstructor */
  constructor(key, link, type, options, extra) {
    if (key !== INTERNAL) throw new TypeError('Use Session#publish or Session#play');
    super();
    this.#link = link;
    this.#type = type;
    this.#opts = { ...options };
    this.#name = String(options.name);
    this.#room = extra.room ?? null;
    this.#element = options.element ?? null;
    const self = this;
    this.#ctl = {
      stream: self,
      start: () => self.#start(),
      onAnswer: (sdp) => self.#onAnswer(sdp),
      onStatus: (obj) => self.#onStatus(obj),
      onEvent: (obj) => self.#onEvent(obj),
      interrupt: (reason) => self.#interrupt(reason),
      restore: () => self.#restore(),
      end: (reason) => self.#finalize(self.#type === 'publish' ? 'UNPUBLISHED' : 'STOPPED', reason),
    };
    Object.defineProperty(this, INTERNAL, { value: this.#ctl });
  }

  /** The current media session id (a new one after each republish or replay). @type {string|null} */
  get id() {
    return this.#msid;
  }

  /** The stream name. @type {string} */
  get name() {
    return this.#name;
  }

  /** 'publish' or 'play'. @type {'publish'|'play'} */
  get type() {
    return this.#type;
  }

  /** The current state, one of {@link StreamStatus}. @type {string} */
  get status() {
    return this.#status;
  }

  /** The info of the last status (for example "Stream not found"), or ''. @type {string} */
  get info() {
    return this.#info;
  }

  /** The room the stream belongs to, or null. @type {string|null} */
  get room() {
    return this.#room;
  }

  /**
   * The media: for a publisher, the local stream being sent; for a player, the received stream (the same object
   * across replays; its tracks are replaced). @type {MediaStream|null}
   */
  get mediaStream() {
    return this.#mediaStream;
  }

  /** The video element the media is attached to, or null. @type {HTMLVideoElement|null} */
  get element() {
    return this.#element;
  }

  /** A publisher's current video source: 'camera', 'screen', 'canvas' or 'custom'; null for a player. @type {string|null} */
  get source() {
    return this.#source;
  }

  /** Publisher: its audio is muted. Player: the publisher said its audio is muted. @type {boolean} */
  get audioMuted() {
    return this.#audioMuted;
  }

  /** Publisher: its video is muted. Player: the publisher said its video is muted. @type {boolean} */
  get videoMuted() {
    return this.#videoMuted;
  }

  /**
   * Whether the server is recording the stream, and into which file. A publisher learns it from the server's status
   * events (so from the start of a recording, however it was started: `record: true`, a room or REST); a player from
   * the stream events sent while it plays (a recording that was already running when it started playing is not
   * reported here: a room tells its members with {@link Room#recordings}). It goes back to inactive when the stream
   * ends or is interrupted, since the server's recording of it ends then too. A copy: read it again after a
   * `recording` event.
   * @type {RecordingState}
   */
  get recording() {
    return { ...this.#recording };
  }

  /**
   * Ends the stream (unpublishes or stops playing); resolves once the server confirmed, or after a few seconds.
   * Tracks the SDK acquired (camera, screen, canvas capture) are stopped; a MediaStream you passed is left running.
   * @returns {Promise<void>}
   */
  async stop() {
    if (FINAL.has(this.#status)) return;
    if (this.#stopping) return this.#stopping.promise;
    const final = this.#type === 'publish' ? 'UNPUBLISHED' : 'STOPPED';
    if (!this.#live || !this.#link.up || this.#starter || !ACTIVE.has(this.#status)) {
      // Nothing established on the server to wait for (finalize still tells it about a pending negotiation).
      this.#finalize(final, 'Stopped by the client');
      return;
    }
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    const timer = setTimeout(() => this.#finalize(final, 'Stopped by the client'), DEFAULTS.stopTimeoutMs);
    this.#stopping = { promise, resolve, timer };
    this.#tellServerStop();
    return promise;
  }

  /** Publisher: stops sending audio (the track is disabled) and tells the viewers. Player: silences playback. */
  muteAudio() {
    this.#setMuted('audio', true);
  }

  /** Undoes {@link Stream#muteAudio}. */
  unmuteAudio() {
    this.#setMuted('audio', false);
  }

  /** Publisher: sends black video (the track is disabled) and tells the viewers. Player: hides the video locally. */
  muteVideo() {
    this.#setMuted('video', true);
  }

  /** Undoes {@link Stream#muteVideo}. */
  unmuteVideo() {
    this.#setMuted('video', false);
  }

  /**
   * Publisher: sends a `data` stream event to every viewer (they get it as an `event` with type "data").
   * @param {any} payload
   */
  sendData(payload) {
    this.#requirePublisher('sendData');
    if (!this.#link.send('sendStreamEvent', { mediaSessionId: this.#msid, type: 'data', payload })) {
      throw new StreamgateError('sendData: the session is not connected');
    }
  }

  /**
   * Publisher: switches to another camera without renegotiating (RTCRtpSender.replaceTrack). Without `deviceId`,
   * the next camera in the list is taken.
   * @param {string} [deviceId]
   * @returns {Promise<void>}
   */
  async switchCamera(deviceId) {
    this.#requirePublisher('switchCamera');
    let id = deviceId;
    if (!id) {
      const cams = (await mediaDevices().enumerateDevices()).filter((d) => d.kind === 'videoinput');
      const current = this.#videoTrack()?.getSettings?.().deviceId;
      const i = cams.findIndex((d) => d.deviceId === current);
      const next = cams[(i + 1) % cams.length];
      if (!next) throw new StreamgateError('No camera found');
      id = next.deviceId;
    }
    await this.#useCamera(id);
  }

  /**
   * Publisher: sends the screen instead of the current video (getDisplayMedia, then replaceTrack; no
   * renegotiation). When the user stops sharing, the stream goes back to the camera by itself.
   * @returns {Promise<void>}
   */
  async switchToScreen() {
    this.#requirePublisher('switchToScreen');
    const display = await mediaDevices().getDisplayMedia({ video: true, audio: false });
    const track = display.getVideoTracks()[0];
    if (!track) throw new StreamgateError('getDisplayMedia gave no video');
    try {
      track.contentHint = 'detail';
    } catch {
      // not supported
    }
    await this.#replaceVideoTrack(track, 'screen', true);
    track.addEventListener('ended', () => {
      if (this.#videoTrack() === track && !FINAL.has(this.#status)) this.switchToCamera().catch(() => {});
    });
  }

  /**
   * Publisher: sends the camera again (after {@link Stream#switchToScreen} or {@link Stream#replaceVideo}).
   * @returns {Promise<void>}
   */
  async switchToCamera() {
    this.#requirePublisher('switchToCamera');
    await this.#useCamera(this.#opts.cameraDeviceId);
  }

  /**
   * Publisher: sends another video source without renegotiating: a track, the first video track of a MediaStream,
   * or a canvas (captured at 30 fps). A track or MediaStream you pass is not stopped by the SDK.
   * @param {MediaStreamTrack|MediaStream|HTMLCanvasElement} source
   * @returns {Promise<void>}
   */
  async replaceVideo(source) {
    this.#requirePublisher('replaceVideo');
    if (isCanvas(source)) {
      await this.#replaceVideoTrack(source.captureStream(30).getVideoTracks()[0], 'canvas', true);
    } else if (source instanceof MediaStream) {
      const track = source.getVideoTracks()[0];
      if (!track) throw new StreamgateError('replaceVideo: the MediaStream has no video track');
      await this.#replaceVideoTrack(track, 'custom', false);
    } else if (source instanceof MediaStreamTrack && source.kind === 'video') {
      await this.#replaceVideoTrack(source, 'custom', false);
    } else {
      throw new TypeError('replaceVideo takes a video MediaStreamTrack, a MediaStream or a canvas');
    }
  }

  /**
   * The current picture of the stream as the server decodes it, as a base64 PNG (no `data:` prefix): for a publisher
   * what reaches the server, for a player what the server sends. Rejects with the server's info when it cannot take
   * one (for example a stream without video), and when the stream is not PUBLISHING or PLAYING.
   * @returns {Promise<string>}
   */
  snapshot() {
    if (!ACTIVE.has(this.#status) || !this.#live) {
      return Promise.reject(new StreamgateError(`snapshot: the stream is ${this.#status}`));
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        this.#snapshots = this.#snapshots.filter((e) => e !== entry);
        reject(new StreamgateError(`snapshot: no answer within ${DEFAULTS.snapshotTimeoutMs} ms`));
      }, DEFAULTS.snapshotTimeoutMs);
      this.#snapshots.push(entry);
      if (!this.#link.send('snapshot', { name: this.#name, mediaSessionId: this.#msid })) {
        clearTimeout(entry.timer);
        this.#snapshots = this.#snapshots.filter((e) => e !== entry);
        reject(new StreamgateError('snapshot: the session is not connected'));
      }
    });
  }

  /**
   * A summary of the media statistics. Bitrates are measured over the time since the previous call (or over half a
   * second on the first call).
   * @returns {Promise<StreamStats>}
   */
  async getStats() {
    const pc = this.#pc;
    if (!pc) return emptyStats();
    let now = await sampleStats(pc, this.#type === 'publish');
    let prev = this.#statsPrev;
    if (!prev || prev.pc !== pc || now.timestamp - prev.timestamp > 10_000 || now.timestamp <= prev.timestamp) {
      prev = now;
      await new Promise((r) => setTimeout(r, DEFAULTS.statsWindowMs));
      if (this.#pc !== pc) return emptyStats();
      now = await sampleStats(pc, this.#type === 'publish');
    }
    this.#statsPrev = now;
    return summarizeStats(prev, now);
  }

  // --- internals ------------------------------------------------------------------------------------------------

  #requirePublisher(what) {
    if (this.#type !== 'publish') throw new StreamgateError(`${what} is for published streams`);
    if (FINAL.has(this.#status)) throw new StreamgateError(`${what}: the stream has ended`);
  }

  #videoTrack() {
    return this.#mediaStream?.getVideoTracks()[0] || null;
  }

  #setStatus(status, info = '') {
    if (this.#status === status && this.#info === info) return;
    this.#status = status;
    this.#info = info;
    emit(this, 'status', { status, info });
  }

  async #start() {
    this.#link.add(this.#ctl);
    const timeoutMs = this.#opts.timeoutMs ?? DEFAULTS.streamTimeoutMs;
    const started = new Promise((resolve, reject) => {
      this.#starter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const what = this.#type === 'publish' ? 'PUBLISHING' : 'PLAYING';
          this.#fail(new StreamgateError(`No ${what} within ${timeoutMs} ms`, { status: 'FAILED' }));
        }, timeoutMs),
      };
    });
    try {
      if (this.#type === 'publish') await this.#acquire();
      else this.#mediaStream = new MediaStream();
      if (this.#element) this.#attachElement(true);
      await this.#negotiate();
    } catch (e) {
      // Errors of the browser's media APIs (NotAllowedError, NotFoundError...) are passed on as they are.
      this.#fail(e instanceof Error ? e : new StreamgateError(String(e)));
    }
    await started;
    return this;
  }

  // Rejects the pending start (if any) and ends the stream as FAILED.
  #fail(error) {
    this.#finalize('FAILED', error.info || error.message, error);
  }

  // Ends the server's media session for #msid, if it holds one.
  #tellServerStop() {
    if (!this.#live) return;
    this.#live = false;
    if (this.#link.up) this.#link.send(this.#type === 'publish' ? 'unPublishStream' : 'stopStream', { mediaSessionId: this.#msid, name: this.#name });
  }

  async #acquire() {
    const o = this.#opts;
    const source = o.source ?? 'camera';
    const md = () => mediaDevices();
    let tracks = [];
    if (source === 'camera') {
      const video = o.video === false ? false : videoConstraints(o.video);
      const audio = o.audio === false ? false : (o.audio ?? true);
      if (!video && !audio) throw new StreamgateError('publish: nothing to send (video and audio are false)');
      const ms = await md().getUserMedia({ video, audio });
      tracks = ms.getTracks();
      tracks.forEach((t) => this.#owned.add(t));
      this.#source = video ? 'camera' : null;
    } else if (source === 'screen') {
      const display = await md().getDisplayMedia({ video: o.video === undefined || o.video === false ? true : o.video, audio: false });
      tracks = display.getVideoTracks();
      tracks.forEach((t) => this.#owned.add(t));
      if (o.audio !== false) {
        const mic = await md().getUserMedia({ audio: o.audio ?? true, video: false });
        mic.getAudioTracks().forEach((t) => {
          tracks.push(t);
          this.#owned.add(t);
        });
      }
      this.#source = 'screen';
    } else if (isCanvas(source)) {
      const fps = typeof o.frameRate === 'number' ? o.frameRate : 30;
      tracks = source.captureStream(fps).getVideoTracks();
      tracks.forEach((t) => this.#owned.add(t));
      if (o.audio) {
        const mic = await md().getUserMedia({ audio: o.audio, video: false });
        mic.getAudioTracks().forEach((t) => {
          tracks.push(t);
          this.#owned.add(t);
        });
      }
      this.#source = 'canvas';
    } else if (source instanceof MediaStream) {
      tracks = source.getTracks().filter((t) => (t.kind === 'video' ? o.video !== false : o.audio !== false));
      this.#source = tracks.some((t) => t.kind === 'video') ? 'custom' : null;
    } else {
      throw new TypeError("publish: source must be 'camera', 'screen', a canvas or a MediaStream");
    }
    if (tracks.length === 0) throw new StreamgateError('publish: the source has no tracks');
    // Audio first, as the official SDK orders its m-lines.
    tracks.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'audio' ? -1 : 1));
    this.#mediaStream = new MediaStream(tracks);
    if (source === 'screen') {
      const track = this.#videoTrack();
      track?.addEventListener('ended', () => {
        if (this.#videoTrack() === track && !FINAL.has(this.#status)) this.stop();
      });
    }
  }

  #attachElement(first) {
    const el = this.#element;
    if (!el || !this.#mediaStream) return;
    el.autoplay = true;
    el.playsInline = true;
    if (this.#type === 'publish') el.muted = true;
    // Re-assigning reloads the element, which then picks up replaced tracks.
    if (!first || el.srcObject !== this.#mediaStream) {
      el.srcObject = null;
      el.srcObject = this.#mediaStream;
    }
    const p = el.play?.();
    if (p && typeof p.catch === 'function') {
      p.catch((e) => {
        // Autoplay with sound refused: play muted rather than not at all (check element.muted to offer unmuting).
        if (e && e.name === 'NotAllowedError' && !el.muted) {
          el.muted = true;
          el.play().catch(() => {});
        }
      });
    }
  }

  async #negotiate() {
    const link = this.#link;
    const pc = new RTCPeerConnection({ ...link.rtcConfiguration(), ...(this.#opts.rtcConfiguration || {}) });
    const msid = uuid();
    this.#closePc();
    this.#pc = pc;
    this.#msid = msid;
    this.#statsPrev = null;
    link.bind(msid, this.#ctl);
    const publish = this.#type === 'publish';
    let hasAudio = false;
    let hasVideo = false;
    if (publish) {
      this.#videoSender = null;
      for (const track of this.#mediaStream.getTracks()) {
        const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.#mediaStream] });
        if (track.kind === 'video') {
          hasVideo = true;
          this.#videoSender = t.sender;
          preferCodec(t, this.#opts.codec, true);
        } else {
          hasAudio = true;
        }
      }
    } else {
      hasAudio = true;
      hasVideo = true;
      pc.addTransceiver('audio', { direction: 'recvonly' });
      preferCodec(pc.addTransceiver('video', { direction: 'recvonly' }), this.#opts.codec, false);
      pc.ontrack = (e) => this.#onTrack(pc, e);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, DEFAULTS.iceGatheringMs);
    if (this.#pc !== pc) return; // stopped or interrupted meanwhile
    const sent = link.send(publish ? 'publishStream' : 'playStream', {
      mediaSessionId: msid,
      name: this.#name,
      published: publish,
      hasVideo,
      hasAudio,
      status: 'PENDING',
      record: publish ? Boolean(this.#opts.record) : false,
      mediaProvider: 'WebRTC',
      sdp: pc.localDescription.sdp,
      custom: { ...(this.#opts.custom || {}) },
    });
    if (sent) this.#live = true;
    else if (this.#starter) throw new StreamgateError('The session is not connected');
  }

  #closePc() {
    this.#tellServerStop();
    // The server's media session for #msid is gone: so is its recording, and no snapshot answer will come for it.
    this.#setRecording(false, null);
    for (const { reject, timer } of this.#snapshots.splice(0)) {
      clearTimeout(timer);
      reject(new StreamgateError('snapshot: the stream ended or was interrupted'));
    }
    this.#confirmed = null;
    const pc = this.#pc;
    if (this.#msid) this.#link.unbind(this.#msid, this.#ctl);
    this.#pc = null;
    this.#videoSender = null;
    if (pc) {
      pc.ontrack = null;
      try {
        pc.close();
      } catch {
        // ignore
      }
    }
  }

  async #onAnswer(sdp) {
    const pc = this.#pc;
    if (!pc) return;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (e) {
      if (this.#pc === pc) this.#fail(new StreamgateError(`The server's answer was refused: ${e.message}`, { cause: e }));
      return;
    }
    if (this.#type === 'play' && this.#pc === pc && this.#element) this.#attachElement(false);
  }

  #onTrack(pc, e) {
    if (this.#pc !== pc) return;
    const ms = this.#mediaStream;
    for (const old of ms.getTracks().filter((t) => t.kind === e.track.kind)) ms.removeTrack(old);
    const muted = e.track.kind === 'audio' ? this.#localAudioOff : this.#localVideoOff;
    if (muted) e.track.enabled = false;
    ms.addTrack(e.track);
    emit(this, 'track', { track: e.track, kind: e.track.kind, source: null });
  }

  // A player's own mute of its playback (muteAudio/muteVideo on a played stream).
  #localAudioOff = false;
  #localVideoOff = false;

  #onStatus(obj) {
    if (obj.mediaSessionId !== this.#msid || FINAL.has(this.#status)) return;
    const status = obj.status;
    const info = typeof obj.info === 'string' ? obj.info : '';
    const publish = this.#type === 'publish';
    if (FINAL.has(status)) this.#live = false; // the server has ended its side
    // The server tells a publisher of each start and stop of its recording with a status event carrying `record`
    // and `recordName` (WCS's way: the official SDK's getRecordInfo() reads it there); the final status still
    // names the last file.
    if (publish && typeof obj.recordName === 'string' && obj.recordName) {
      this.#setRecording(Boolean(obj.record) && !FINAL.has(status), obj.recordName);
    }
    // Such a notice repeats PUBLISHING: nothing else about the stream changed.
    if (publish && status === 'PUBLISHING' && this.#status === 'PUBLISHING' && this.#confirmed === this.#msid) return;
    if (status === 'PUBLISHING' || status === 'PLAYING') {
      this.#confirmed = this.#msid;
      this.#waitUntil = null;
      this.#inUseUntil = null;
      if (!publish) {
        if (obj.audioState) this.#audioMuted = Boolean(obj.audioState.muted);
        if (obj.videoState) this.#videoMuted = Boolean(obj.videoState.muted);
      }
      this.#setStatus(status, info);
      if (publish) {
        // A (re)published stream is new to the server: tell it, and so its viewers, what is muted.
        if (this.#audioMuted) this.#sendMuteEvent('audio', true);
        if (this.#videoMuted) this.#sendMuteEvent('video', true);
      }
      if (this.#starter) {
        const { resolve, timer } = this.#starter;
        clearTimeout(timer);
        this.#starter = null;
        resolve(this);
      }
      return;
    }
    if (status === 'FAILED') {
      if (this.#stopping) return this.#finalize(publish ? 'UNPUBLISHED' : 'STOPPED', info);
      if (!this.#starter) {
        if (publish && NAME_IN_USE.test(info) && this.#inUseUntil && Date.now() < this.#inUseUntil) {
          this.#scheduleRetry('RECONNECTING', info);
          return;
        }
        if (!publish && info === NOT_FOUND_INFO && this.#waitUntil) {
          if (Date.now() < this.#waitUntil) {
            this.#scheduleRetry('WAITING', this.#status === 'WAITING' ? this.#info : info);
          } else if (this.#status === 'WAITING') {
            this.#finalize('STOPPED', this.#info); // the publisher did not come back in time
          } else {
            this.#finalize('FAILED', info, new StreamgateError(info, { info, status }));
          }
          return;
        }
      }
      this.#finalize('FAILED', info, new StreamgateError(info || 'Stream failed', { info, status }));
      return;
    }
    if (status === 'UNPUBLISHED' || status === 'STOPPED') {
      if (this.#stopping || this.#starter) {
        this.#finalize(status, info, this.#starter ? new StreamgateError(info || `Stream ${status}`, { info, status }) : undefined);
        return;
      }
      if (SESSION_END_INFOS.has(info) && this.#link.reconnects) {
        // The server ends the session's streams before it closes the socket: wait for the close to tell.
        this.#closePc();
        clearTimeout(this.#limbo?.timer);
        this.#limbo = { status, info, timer: setTimeout(() => this.#finalize(status, info), DEFAULTS.limboMs) };
        return;
      }
      if (!publish && info === PUBLISHER_GONE_INFO && this.#opts.waitForRepublish) {
        const ms = this.#opts.waitForRepublish === true ? DEFAULTS.waitForRepublishMs : Number(this.#opts.waitForRepublish);
        this.#waitUntil = Date.now() + ms;
        this.#scheduleRetry('WAITING', info);
        return;
      }
      this.#finalize(status, info);
      return;
    }
    // PENDING and anything else: informational.
    if (status && status !== 'PENDING') this.#setStatus(status, info);
  }

  #scheduleRetry(status, info) {
    this.#closePc();
    this.#setStatus(status, info);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (FINAL.has(this.#status) || !this.#link.up) return; // a reconnect restores it
      this.#renegotiate();
    }, DEFAULTS.retryIntervalMs);
  }

  #renegotiate() {
    this.#negotiate().catch((e) => this.#finalize('FAILED', e.message, e));
  }

  #onEvent(obj) {
    const type = obj.type;
    const payload = obj.payload;
    if (type === 'snapshotCompleted' || type === 'snapshotFailed') {
      // The answer to snapshot(), not news from the publisher. Answers carry no request id: the server answers
      // one connection's requests in turn, so each settles the oldest one waiting.
      const entry = this.#snapshots.shift();
      if (!entry) return;
      clearTimeout(entry.timer);
      if (type === 'snapshotCompleted' && typeof payload?.snapshot === 'string' && payload.snapshot) entry.resolve(payload.snapshot);
      else {
        const info = typeof payload?.info === 'string' && payload.info ? payload.info : 'Snapshot failed';
        entry.reject(new StreamgateError(info, { info, status: 'FAILED' }));
      }
      return;
    }
    if (type === 'audioMuted') this.#audioMuted = true;
    else if (type === 'audioUnmuted') this.#audioMuted = false;
    else if (type === 'videoMuted') this.#videoMuted = true;
    else if (type === 'videoUnmuted') this.#videoMuted = false;
    else if (type === 'recordingStarted' || type === 'recordingStopped') {
      this.#setRecording(type === 'recordingStarted', typeof payload?.recordName === 'string' ? payload.recordName : null);
    }
    emit(this, 'event', { type, payload });
  }

  // Records a recording start or stop (`recordName` null: the file is unchanged) and emits `recording` when the
  // state changed.
  #setRecording(active, recordName) {
    const was = this.#recording;
    const file = recordName ?? was.recordName;
    if (was.active === active && was.recordName === file) return;
    this.#recording = { active, recordName: file };
    emit(this, 'recording', { active, recordName: file });
  }

  #sendMuteEvent(kind, muted) {
    if (!this.#msid || !ACTIVE.has(this.#status)) return;
    this.#link.send('sendStreamEvent', { mediaSessionId: this.#msid, type: `${kind}${muted ? 'Muted' : 'Unmuted'}`, payload: {} });
  }

  #setMuted(kind, muted) {
    if (FINAL.has(this.#status)) throw new StreamgateError('The stream has ended');
    const tracks = this.#mediaStream ? this.#mediaStream.getTracks().filter((t) => t.kind === kind) : [];
    tracks.forEach((t) => (t.enabled = !muted));
    if (this.#type === 'play') {
      if (kind === 'audio') this.#localAudioOff = muted;
      else this.#localVideoOff = muted;
      return;
    }
    if (kind === 'audio') this.#audioMuted = muted;
    else this.#videoMuted = muted;
    this.#sendMuteEvent(kind, muted); // when not PUBLISHING, sent once it is
  }

  async #useCamera(deviceId) {
    const base = this.#opts.video && typeof this.#opts.video === 'object' ? { ...this.#opts.video } : {};
    if (deviceId) base.deviceId = { exact: deviceId };
    const ms = await mediaDevices().getUserMedia({ video: Object.keys(base).length ? base : true, audio: false });
    const track = ms.getVideoTracks()[0];
    await this.#replaceVideoTrack(track, 'camera', true);
    this.#opts.cameraDeviceId = track.getSettings?.().deviceId || deviceId;
  }

  async #replaceVideoTrack(track, source, owned) {
    if (FINAL.has(this.#status)) {
      if (owned) track.stop();
      throw new StreamgateError('The stream has ended');
    }
    const old = this.#videoTrack();
    if (!old) {
      if (owned) track.stop();
      throw new StreamgateError('This stream has no video to replace (publish with video to switch sources)');
    }
    track.enabled = !this.#videoMuted;
    if (this.#videoSender) {
      try {
        await this.#videoSender.replaceTrack(track);
      } catch (e) {
        if (owned) track.stop();
        throw new StreamgateError(`replaceTrack failed: ${e.message}`, { cause: e });
      }
    }
    this.#mediaStream.removeTrack(old);
    this.#mediaStream.addTrack(track);
    if (this.#owned.has(old)) {
      old.stop();
      this.#owned.delete(old);
    }
    if (owned) this.#owned.add(track);
    this.#source = source;
    if (this.#element) this.#attachElement(false); // the preview picks up the new track
    emit(this, 'track', { track, kind: 'video', source });
  }

  #interrupt(reason) {
    if (FINAL.has(this.#status)) return;
    this.#live = false; // the server ended everything of the closed connection
    clearTimeout(this.#limbo?.timer);
    this.#limbo = null;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#starter || this.#stopping) {
      // Never established, or being stopped: there is nothing to restore.
      this.#finalize(this.#stopping ? (this.#type === 'publish' ? 'UNPUBLISHED' : 'STOPPED') : 'FAILED', reason, new StreamgateError(reason));
      return;
    }
    this.#closePc();
    this.#setStatus('RECONNECTING', reason);
  }

  #restore() {
    if (FINAL.has(this.#status)) return;
    if (this.#type === 'publish') this.#inUseUntil = Date.now() + DEFAULTS.republishInUseMs;
    else if (this.#opts.waitForRepublish && !this.#waitUntil) {
      const ms = this.#opts.waitForRepublish === true ? DEFAULTS.waitForRepublishMs : Number(this.#opts.waitForRepublish);
      this.#waitUntil = Date.now() + ms;
    }
    this.#renegotiate();
  }

  #finalize(status, info, error) {
    if (FINAL.has(this.#status)) return;
    clearTimeout(this.#limbo?.timer);
    this.#limbo = null;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#closePc();
    this.#link.remove(this.#ctl);
    for (const t of this.#owned) t.stop();
    this.#owned.clear();
    if (this.#type === 'play' && this.#element && this.#element.srcObject === this.#mediaStream) this.#element.srcObject = null;
    this.#setStatus(status, info || '');
    if (this.#starter) {
      const { reject, timer } = this.#starter;
      clearTimeout(timer);
      this.#starter = null;
      reject(error || new StreamgateError(info || `Stream ${status}`, { info, status }));
    }
    if (this.#stopping) {
      clearTimeout(this.#stopping.timer);
      this.#stopping.resolve();
      this.#stopping = null;
    }
  }
}

/**
 * @param {unknown} x
 * @returns {x is HTMLCanvasElement}
 */
function isCanvas(x) {
  return typeof HTMLCanvasElement !== 'undefined' && x instanceof HTMLCanvasElement;
}

async function sampleStats(pc, outbound) {
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((r) => byId.set(r.id, r));
  const rtpType = outbound ? 'outbound-rtp' : 'inbound-rtp';
  const s = { pc, timestamp: performance.now(), video: null, audio: null, lost: 0, rtt: null };
  for (const r of byId.values()) {
    if (r.type === rtpType && (r.kind === 'video' || r.kind === 'audio')) {
      const prev = s[r.kind];
      // Simulcast or several SSRCs: keep the one carrying the most.
      if (!prev || (r.bytesSent ?? r.bytesReceived ?? 0) > (prev.bytes ?? 0)) {
        s[r.kind] = {
          bytes: (outbound ? r.bytesSent : r.bytesReceived) ?? 0,
          frames: (outbound ? r.framesEncoded : r.framesDecoded) ?? 0,
          fps: r.framesPerSecond ?? null,
          width: r.frameWidth ?? 0,
          height: r.frameHeight ?? 0,
          codec: codecName(byId.get(r.codecId)?.mimeType),
          lost: outbound ? 0 : (r.packetsLost ?? 0),
        };
      }
    }
    if (outbound && r.type === 'remote-inbound-rtp') s.lost += Math.max(0, r.packetsLost ?? 0);
    if (!outbound && r.type === 'inbound-rtp') s.lost += Math.max(0, r.packetsLost ?? 0);
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && typeof r.currentRoundTripTime === 'number') {
      s.rtt = Math.round(r.currentRoundTripTime * 1000);
    }
  }
  return s;
}

function summarizeStats(a, b) {
  const dt = (b.timestamp - a.timestamp) / 1000;
  const rate = (x, y) => (dt > 0 && x && y ? Math.max(0, Math.round(((y.bytes - x.bytes) * 8) / dt)) : 0);
  const videoBitrate = rate(a.video, b.video);
  const audioBitrate = rate(a.audio, b.audio);
  let fps = b.video?.fps ?? null;
  if (fps === null) fps = dt > 0 && a.video && b.video ? Math.round((b.video.frames - a.video.frames) / dt) : 0;
  return {
    timestamp: Date.now(),
    bitrate: videoBitrate + audioBitrate,
    videoBitrate,
    audioBitrate,
    fps,
    resolution: { width: b.video?.width ?? 0, height: b.video?.height ?? 0 },
    packetsLost: b.lost,
    codec: b.video?.codec ?? null,
    audioCodec: b.audio?.codec ?? null,
    frames: b.video?.frames ?? 0,
    rtt: b.rtt,
  };
}

function emptyStats() {
  return {
    timestamp: Date.now(),
    bitrate: 0,
    videoBitrate: 0,
    audioBitrate: 0,
    fps: 0,
    resolution: { width: 0, height: 0 },
    packetsLost: 0,
    codec: null,
    audioCodec: null,
    frames: 0,
    rtt: null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Room
// ---------------------------------------------------------------------------------------------------------------

/**
 * A room joined with {@link Session#joinRoom}. `participants` lists the others already there when the join
 * resolves; events report changes from then on: `joined` ({login}), `left` ({login}), `published` ({login, name}),
 * `unpublished` ({login, name, reason: 'UNPUBLISHED' | 'FAILED' | 'LEFT'}), `message` ({from, text}), `state`
 * ({participants}: after the server's state was applied, on join and on every re-join after a reconnect; the
 * differences a re-join finds are reported as the events above first), `recording` ({login, name, active,
 * recordName}: the server started or stopped recording a stream of the room, this participant's own included; see
 * {@link Room#recordings}).
 */
export class Room extends Emitter {
  #link;
  #name;
  #record;
  #participants = new Map(); // login -> {login, streams: Set<string>}
  #joined = false;
  #everJoined = false;
  #waiter = null; // {resolve, reject, timer} while a join waits for STATE
  #streams = new Set(); // Stream objects started through this room
  #recordings = new Map(); // stream name -> {login, name, recordName, told}: streams the server records now
  #unconfirmed = null; // after a re-join: names of recordings the server has not reported again yet
  #settleTimer = null;
  #ctl;

  /** @hideconstructor */
  constructor(key, link, name, { record }) {
    if (key !== INTERNAL) throw new TypeError('Use Session#joinRoom');
    super();
    this.#link = link;
    this.#name = name;
    this.#record = record;
    const self = this;
    this.#ctl = {
      room: self,
      joined: null,
      join: () => self.#join(),
      rejoin: () => self.#join().catch(() => {}),
      onEvent: (payload) => self.#onEvent(payload),
      interrupt: () => {
        self.#joined = false;
      },
      end: () => {
        self.#joined = false;
        self.#streams.clear();
        self.#forgetRecordings();
      },
    };
    Object.defineProperty(this, INTERNAL, { value: this.#ctl });
  }

  /** The room name. @type {string} */
  get name() {
    return this.#name;
  }

  /** This participant's login. @type {string} */
  get login() {
    return this.#link.login;
  }

  /** Whether the session is in the room now (false while reconnecting and after leave()). @type {boolean} */
  get joined() {
    return this.#joined;
  }

  /**
   * The other participants, by login, each with the names of the streams it publishes in the room. A snapshot:
   * read it again after an event.
   * @type {Map<string, Participant>}
   */
  get participants() {
    return new Map([...this.#participants].map(([login, p]) => [login, { login, streams: [...p.streams] }]));
  }

  /** Streams this session publishes or plays through the room and that have not ended. @type {Stream[]} */
  get streams() {
    return [...this.#streams].filter((s) => !FINAL.has(s.status));
  }

  /**
   * The streams of the room the server is recording now, this participant's own included. A participant that joins
   * while a recording runs finds it here (and gets a `recording` event) right after joining. A snapshot: read it
   * again after a `recording` event.
   * @type {RoomRecording[]}
   */
  get recordings() {
    return [...this.#recordings.values()].filter((r) => r.told).map(({ login, name, recordName }) => ({ login, name, recordName }));
  }

  /**
   * Publishes in the room: the stream is named `<room>-<login>-<4 random chars>` (with `-<name>` appended when
   * `name` is given) and tagged with the room, so the others are told PUBLISHED.
   * @param {Omit<PublishOptions, 'name'> & {name?: string}} [options]
   * @returns {Promise<Stream>}
   */
  async publish(options = {}) {
    this.#requireJoined('publish');
    const name = `${this.#name}-${this.#link.login}-${randomChars(4)}${options.name ? `-${options.name}` : ''}`;
    return this.#track(this.#link.publish({ ...options, name, custom: { ...(options.custom || {}), name: this.#name } }, { room: this.#name }));
  }

  /**
   * Plays a stream of the room (a name from `participants` or a `published` event).
   * @param {string} streamName
   * @param {Omit<PlayOptions, 'name'>} [options]
   * @returns {Promise<Stream>}
   */
  async play(streamName, options = {}) {
    this.#requireJoined('play');
    return this.#track(this.#link.play({ ...options, name: streamName, custom: { ...(options.custom || {}), name: this.#name } }, { room: this.#name }));
  }

  /**
   * Sends a text message to one participant.
   * @param {string} to The participant's login.
   * @param {string} text
   * @returns {Promise<void>}
   */
  sendMessage(to, text) {
    this.#requireJoined('sendMessage');
    return this.#link.sendData({ command: 'sendMessage', options: { roomConfig: { name: this.#name }, to, text } });
  }

  /**
   * Sends a text message to every other participant; resolves with the logins it reached.
   * @param {string} text
   * @returns {Promise<string[]>}
   */
  async broadcast(text) {
    this.#requireJoined('broadcast');
    const logins = [...this.#participants.keys()];
    const results = await Promise.allSettled(logins.map((to) => this.sendMessage(to, text)));
    return logins.filter((_, i) => results[i].status === 'fulfilled');
  }

  /**
   * Starts (`true`, the default) or stops (`false`) recording every stream published in the room, for everyone in
   * it: resolves once the server accepted the command; each start and stop then arrives as a `recording` event, in
   * every participant's page. Streams published later are not recorded unless the room was joined with
   * `record: true`.
   * @param {boolean} [active]
   * @returns {Promise<void>}
   */
  record(active = true) {
    this.#requireJoined('record');
    return this.#link.sendData({ command: 'record', options: { name: this.#name, active: Boolean(active) } });
  }

  /**
   * Leaves the room: ends the streams published and played through it, then tells the server.
   * @returns {Promise<void>}
   */
  async leave() {
    const streams = [...this.#streams];
    this.#streams.clear();
    await Promise.allSettled(streams.map((s) => s.stop()));
    if (this.#joined && this.#link.up) {
      await this.#link.sendData({ command: 'leave', options: { name: this.#name } }).catch(() => {});
    }
    this.#joined = false;
    this.#participants.clear();
    this.#forgetRecordings();
    this.#link.dropRoom(this.#name, this.#ctl);
  }

  // --- internals ------------------------------------------------------------------------------------------------

  #requireJoined(what) {
    if (!this.#joined) throw new StreamgateError(`${what}: not in room ${this.#name}`);
  }

  async #track(promise) {
    const stream = await promise;
    if (!FINAL.has(stream.status)) {
      this.#streams.add(stream);
      const onStatus = ({ status }) => {
        if (FINAL.has(status)) {
          this.#streams.delete(stream);
          stream.off('status', onStatus);
        }
      };
      stream.on('status', onStatus);
    }
    return stream;
  }

  #join() {
    return new Promise((resolve, reject) => {
      if (this.#waiter) clearTimeout(this.#waiter.timer);
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new StreamgateError(`No state for room ${this.#name} within ${DEFAULTS.timeoutMs} ms`));
      }, DEFAULTS.timeoutMs);
      this.#waiter = { resolve, reject, timer };
      this.#link.sendData({ command: 'join', options: { name: this.#name, record: this.#record } }).catch((e) => {
        if (this.#waiter?.timer === timer) {
          clearTimeout(timer);
          this.#waiter = null;
          reject(e);
        }
      });
    });
  }

  #participant(login) {
    let p = this.#participants.get(login);
    if (!p) {
      p = { login, streams: new Set() };
      this.#participants.set(login, p);
    }
    return p;
  }

  #onEvent(payload) {
    const info = payload.info;
    switch (payload.name) {
      case 'STATE':
        this.#applyState(Array.isArray(info) ? info : []);
        break;
      case 'JOINED':
        if (typeof info === 'string' && info !== this.login && !this.#participants.has(info)) {
          this.#participant(info);
          emit(this, 'joined', { login: info });
        }
        break;
      case 'LEFT': {
        const p = typeof info === 'string' ? this.#participants.get(info) : null;
        if (!p) break;
        this.#participants.delete(info);
        for (const name of p.streams) {
          this.#dropRecording(name);
          emit(this, 'unpublished', { login: info, name, reason: 'LEFT' });
        }
        emit(this, 'left', { login: info });
        break;
      }
      case 'PUBLISHED':
        if (info && info.login && info.name && info.login !== this.login) {
          const known = this.#participants.has(info.login);
          const p = this.#participant(info.login);
          if (!known) emit(this, 'joined', { login: info.login });
          if (!p.streams.has(info.name)) {
            p.streams.add(info.name);
            emit(this, 'published', { login: info.login, name: info.name });
            this.#tellRecording(info.name, info.login);
          }
        }
        break;
      case 'UNPUBLISHED':
      case 'FAILED': {
        const p = info && this.#participants.get(info.login);
        if (p && p.streams.delete(info.name)) {
          this.#dropRecording(info.name);
          emit(this, 'unpublished', { login: info.login, name: info.name, reason: payload.name });
        }
        break;
      }
      case 'MESSAGE':
        if (info) emit(this, 'message', { from: info.from, text: info.text });
        break;
      case 'RECORDING':
        if (info && typeof info.name === 'string' && info.name) this.#onRecording(info);
        break;
      default:
        break;
    }
  }

  // A stream is the room's when a participant publishes it in the room, or when it is this participant's own (its
  // RECORDING notice may come before the publish call has returned). A notice about another stream (one that ended
  // meanwhile, for example) is kept until the stream is announced, and not reported before.
  #knows(login, name) {
    return (login && login === this.login) || Boolean(this.#participants.get(login)?.streams.has(name));
  }

  #onRecording(info) {
    const name = info.name;
    const login = typeof info.login === 'string' ? info.login : '';
    const recordName = typeof info.recordName === 'string' ? info.recordName : null;
    if (!info.active) {
      this.#dropRecording(name, recordName);
      return;
    }
    this.#unconfirmed?.delete(name);
    const was = this.#recordings.get(name);
    if (was && was.told && was.recordName === recordName) return;
    this.#recordings.set(name, { login: login || was?.login || '', name, recordName, told: false });
    this.#tellRecording(name, login);
  }

  // Reports a recording of `name` once the room knows the stream.
  #tellRecording(name, login) {
    const r = this.#recordings.get(name);
    if (!r || r.told) return;
    if (login) r.login = login;
    if (!this.#knows(r.login, name)) return;
    r.told = true;
    emit(this, 'recording', { login: r.login, name, active: true, recordName: r.recordName });
  }

  #dropRecording(name, recordName = null) {
    const r = this.#recordings.get(name);
    if (!r) return;
    this.#recordings.delete(name);
    this.#unconfirmed?.delete(name);
    if (r.told) emit(this, 'recording', { login: r.login, name, active: false, recordName: recordName ?? r.recordName });
  }

  #forgetRecordings() {
    clearTimeout(this.#settleTimer);
    this.#settleTimer = null;
    this.#unconfirmed = null;
    this.#recordings.clear();
  }

  #applyState(list) {
    const next = new Map();
    for (const item of list) {
      const login = typeof item === 'string' ? item : item?.login;
      if (!login || login === this.login) continue;
      if (!next.has(login)) next.set(login, new Set());
      if (typeof item === 'object' && item.name) next.get(login).add(item.name);
    }
    const first = !this.#everJoined;
    this.#everJoined = true;
    if (first) {
      this.#participants = new Map([...next].map(([login, streams]) => [login, { login, streams }]));
    } else {
      // A re-join after a reconnect: report what changed while the session was away.
      for (const [login, p] of [...this.#participants]) {
        const now = next.get(login);
        for (const name of [...p.streams]) {
          if (!now || !now.has(name)) {
            p.streams.delete(name);
            this.#dropRecording(name);
            emit(this, 'unpublished', { login, name, reason: now ? 'UNPUBLISHED' : 'LEFT' });
          }
        }
        if (!now) {
          this.#participants.delete(login);
          emit(this, 'left', { login });
        }
      }
      for (const [login, streams] of next) {
        const known = this.#participants.has(login);
        const p = this.#participant(login);
        if (!known) emit(this, 'joined', { login });
        for (const name of streams) {
          if (!p.streams.has(name)) {
            p.streams.add(name);
            emit(this, 'published', { login, name });
            this.#tellRecording(name, login);
          }
        }
      }
      // The server reports the recordings that run right after STATE: one it does not report again within a moment
      // stopped while this session was away.
      this.#unconfirmed = new Set(this.#recordings.keys());
      clearTimeout(this.#settleTimer);
      this.#settleTimer = setTimeout(() => {
        const stale = this.#unconfirmed || new Set();
        this.#unconfirmed = null;
        for (const name of stale) this.#dropRecording(name);
      }, DEFAULTS.recordingsSettleMs);
    }
    this.#joined = true;
    if (this.#waiter) {
      const { resolve, timer } = this.#waiter;
      clearTimeout(timer);
      this.#waiter = null;
      resolve();
    }
    emit(this, 'state', { participants: this.participants });
  }
}
