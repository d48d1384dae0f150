// streamgate Web SDK: the players that are not WebRTC, and the ladder that picks one.
//
//   - MSE: fMP4 fragments over a WebSocket (`/mse/NAME`), the stream's LL-HLS parts as the server muxed them once,
//     appended to a Media Source; kept near the live edge.
//   - HLS: LL-HLS (`/hls/NAME/index.m3u8`) through hls.js when the page has loaded it (`window.Hls`, or `options.Hls`),
//     else the browser's own HLS (Safari).
//   - The ladder (`via: 'auto'`): WebRTC over UDP, WebRTC through TURN (when `rtcConfiguration` names a TURN server),
//     MSE, LL-HLS, each given a few seconds to show a picture; `onRung` and the the Playback's `via` and `tried` tell the page where it is.
//
// Imported by streamgate.js; pages use Session#play({ name, via }).

const RUNG_TIMEOUT_MS = 8_000;

// Lets this module change a Playback's state without a public setter.
const SET = Symbol('streamgate.playback.set');

/** What plays a stream without WebRTC, or the rung of the ladder that won. Events: `status` ({status, info}). */
export class Playback extends EventTarget {
  #via;
  #element;
  #stream = null;
  #status = 'PENDING';
  #info = '';
  #tried = [];
  #stop;

  constructor(via, element, stop, stream = null, tried = []) {
    super();
    this.#via = via;
    this.#element = element;
    this.#stop = stop;
    this.#stream = stream;
    this.#tried = tried;
    Object.defineProperty(this, SET, { value: (status, info = '') => this.#set(status, info) });
  }

  /** 'mse', 'hls', or the WebRTC rung that won ('webrtc', 'turn'). @type {string} */
  get via() {
    return this.#via;
  }

  /** The element showing the stream. @type {HTMLVideoElement} */
  get element() {
    return this.#element;
  }

  /** The WebRTC stream, when a WebRTC rung won; else null. */
  get stream() {
    return this.#stream;
  }

  /** 'PENDING', 'PLAYING', 'STOPPED' or 'FAILED'. @type {string} */
  get status() {
    return this.#status;
  }

  /** Why it stopped or failed, or ''. @type {string} */
  get info() {
    return this.#info;
  }

  /** The ladder's rungs that failed before this one, with their reasons. @type {string[]} */
  get tried() {
    return [...this.#tried];
  }

  /** Stops playing and releases the socket, player or stream. */
  async stop() {
    if (this.#status === 'STOPPED' || this.#status === 'FAILED') return;
    this.#set('STOPPED', 'Stopped by the client');
    await this.#stop();
  }

  /** Calls `fn` with each `event` ('status'); as the SDK's other objects do. */
  on(event, fn) {
    this.addEventListener(event, (e) => fn(e));
    return this;
  }

  #set(status, info) {
    if (this.#status === status) return;
    this.#status = status;
    this.#info = info;
    this.dispatchEvent(Object.assign(new Event('status'), { status, info }));
  }
}

function videoElement(options) {
  if (options.element) return options.element;
  const v = document.createElement('video');
  v.autoplay = true;
  v.playsInline = true;
  return v;
}

/** Resolves once `v` has shown `frames` frames; rejects after `ms` or when `failed()` says why. */
function firstFrames(v, frames, ms, failed) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = setInterval(() => {
      const why = failed();
      const shown = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : (v.currentTime > 0 ? frames : 0);
      if (why) {
        clearInterval(tick);
        reject(new Error(why));
      } else if (shown >= frames) {
        clearInterval(tick);
        resolve();
      } else if (Date.now() - t0 > ms) {
        clearInterval(tick);
        reject(new Error('no picture in time'));
      }
    }, 100);
  });
}

function query(token) {
  return token ? `?token=${encodeURIComponent(token)}` : '';
}

/** The server's HTTP base from its signaling URL (`ws://host:port/` → `http://host:port`). */
export function httpBase(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return `${u.protocol}//${u.host}`;
}

/**
 * Plays `name` over MSE (fMP4 over a WebSocket). Resolves once pictures show.
 * @returns {Promise<Playback>}
 */
export async function playMse(wsUrl, name, options = {}) {
  if (!window.MediaSource) throw new Error('MSE is not supported in this browser');
  const v = videoElement(options);
  const u = new URL(wsUrl);
  const url = `${u.protocol}//${u.host}/mse/${encodeURIComponent(name)}${query(options.token)}`;
  const ms = new MediaSource();
  v.src = URL.createObjectURL(ms);
  await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  let sb = null;
  let codecs = null;
  const queue = [];
  let failure = null;
  let keeper = null;
  const playback = new Playback('mse', v, async () => {
    clearInterval(keeper);
    ws.close();
    try {
      if (ms.readyState === 'open') ms.endOfStream();
    } catch {
      /* already ended */
    }
  }, null, options.tried);
  const pump = () => {
    if (!sb || sb.updating || !queue.length) return;
    try {
      sb.appendBuffer(queue.shift());
    } catch (e) {
      // QuotaExceeded: drop what was played long ago and try again later.
      if (v.currentTime > 5 && sb.buffered.length) sb.remove(sb.buffered.start(0), v.currentTime - 2);
    }
  };
  ws.onmessage = (m) => {
    if (typeof m.data === 'string') {
      const msg = JSON.parse(m.data);
      if (msg.type === 'init') {
        if (!sb || msg.codecs !== codecs) {
          codecs = msg.codecs;
          const type = `video/mp4; codecs="${codecs}"`;
          if (!MediaSource.isTypeSupported(type)) {
            failure = `unsupported media: ${type}`;
            return;
          }
          if (sb && sb.changeType) sb.changeType(type);
          else if (!sb) {
            sb = ms.addSourceBuffer(type);
            sb.mode = 'segments';
            sb.addEventListener('updateend', pump);
          }
        }
      } else if (msg.type === 'error') {
        failure = msg.info;
        playback[SET]('FAILED', msg.info);
      } else if (msg.type === 'stopped') {
        playback[SET]('STOPPED', 'Stream stopped');
      }
      return;
    }
    queue.push(m.data);
    pump();
  };
  ws.onclose = () => {
    if (!failure && playback.status === 'PENDING') failure = 'the MSE socket closed';
    if (playback.status === 'PLAYING') playback[SET]('STOPPED', 'Connection closed');
  };
  // Stay near the live edge (a tab in the background falls behind), and keep the buffer short.
  keeper = setInterval(() => {
    if (!sb || !sb.buffered.length) return;
    const end = sb.buffered.end(sb.buffered.length - 1);
    if (end - v.currentTime > 1.5) v.currentTime = Math.max(end - 0.3, sb.buffered.start(sb.buffered.length - 1));
    if (!sb.updating && v.currentTime - sb.buffered.start(0) > 30) sb.remove(sb.buffered.start(0), v.currentTime - 10);
    if (v.paused) v.play().catch(() => {});
  }, 500);
  v.play().catch(() => {});
  try {
    await firstFrames(v, 2, options.timeoutMs ?? RUNG_TIMEOUT_MS, () => failure);
  } catch (e) {
    await playback.stop();
    throw e;
  }
  playback[SET]('PLAYING');
  return playback;
}

/**
 * Plays `name` over LL-HLS. Resolves once pictures show.
 * @returns {Promise<Playback>}
 */
export async function playHls(wsUrl, name, options = {}) {
  const v = videoElement(options);
  const url = `${httpBase(wsUrl)}/hls/${encodeURIComponent(name)}/index.m3u8${query(options.token)}`;
  const Hls = options.Hls || window.Hls;
  let failure = null;
  let hls = null;
  if (Hls && Hls.isSupported()) {
    hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.fatal) failure = `HLS: ${d.details}`;
    });
    hls.loadSource(url);
    hls.attachMedia(v);
  } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
    v.src = url;
  } else {
    throw new Error('HLS is not supported here (load hls.js, or use a browser that plays HLS)');
  }
  const playback = new Playback('hls', v, async () => {
    if (hls) hls.destroy();
    else v.removeAttribute('src');
  }, null, options.tried);
  v.play().catch(() => {});
  try {
    await firstFrames(v, 2, options.timeoutMs ?? RUNG_TIMEOUT_MS * 2, () => failure);
  } catch (e) {
    await playback.stop();
    throw e;
  }
  playback[SET]('PLAYING');
  return playback;
}

function hasTurn(rtc) {
  return (rtc?.iceServers || []).some((s) => [].concat(s.urls || s.url || []).some((u) => /^turns?:/.test(u)));
}

/**
 * The ladder. `playWebrtc(extra)` plays over WebRTC (extra: `{ rtcConfiguration }` for the TURN rung) and resolves
 * with the stream once PLAYING. Resolves with the first rung that shows a picture; rejects with every rung's reason.
 * @returns {Promise<Playback>}
 */
export async function playLadder(wsUrl, options, playWebrtc, rtcConfiguration) {
  const rungs = options.ladder || ['webrtc', 'turn', 'mse', 'hls'];
  const element = videoElement(options);
  const tried = [];
  const tell = (via, status, info = '') => {
    if (options.onRung) options.onRung({ via, status, info });
  };
  for (const via of rungs) {
    if (via === 'turn' && !hasTurn(rtcConfiguration)) continue;
    tell(via, 'trying');
    let stream = null;
    let abandoned = false;
    try {
      let playback;
      const timeoutMs = options.rungTimeoutMs ?? RUNG_TIMEOUT_MS;
      if (via === 'webrtc' || via === 'turn') {
        const extra = via === 'turn' ? { rtcConfiguration: { ...rtcConfiguration, iceTransportPolicy: 'relay' } } : {};
        const started = playWebrtc({ element, ...extra });
        started.then((s) => {
          stream = s;
          if (abandoned) s.stop().catch(() => {});
        }, () => {});
        stream = await Promise.race([
          started,
          new Promise((_, reject) => setTimeout(() => reject(new Error('not connected in time')), timeoutMs)),
        ]);
        await firstFrames(element, 2, timeoutMs, () => (['FAILED', 'STOPPED'].includes(stream.status) ? stream.info || stream.status : null));
        playback = new Playback(via, element, () => stream.stop(), stream, tried);
        stream.on('status', ({ status, info }) => {
          if (status === 'FAILED' || status === 'STOPPED') playback[SET](status, info);
        });
        playback[SET]('PLAYING');
      } else if (via === 'mse') {
        playback = await playMse(wsUrl, options.name, { ...options, element, timeoutMs, tried });
      } else if (via === 'hls') {
        playback = await playHls(wsUrl, options.name, { ...options, element, tried });
      } else {
        throw new Error(`unknown rung ${via}`);
      }
      tell(via, 'playing');
      return playback;
    } catch (e) {
      // A WebRTC attempt that connects late must not keep playing under the next rung.
      abandoned = true;
      if (stream) stream.stop().catch(() => {});
      tried.push(`${via}: ${e.message}`);
      tell(via, 'failed', e.message);
    }
  }
  throw new Error(`no way to play ${options.name}: ${tried.join('; ')}`);
}
