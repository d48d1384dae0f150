// TypeScript declarations of the streamgate Web SDK (streamgate.js beside this file).
//
//   import { connect } from '/sdk/streamgate.js';
//   const session = await connect({ login: 'alice' });
//   const stream = await session.publish({ name: 'demo', source: 'camera' });

/** Version of this SDK. */
export declare const VERSION: string;

/** Session states. */
export declare const SessionStatus: Readonly<{
  /** Opening the WebSocket and waiting for the server's `getUserData`. */
  CONNECTING: 'CONNECTING';
  /** Connected; streams can be published and played. */
  ESTABLISHED: 'ESTABLISHED';
  /** The connection dropped; the SDK is reconnecting and will restore rooms and streams. */
  RECONNECTING: 'RECONNECTING';
  /** Closed for good: by `disconnect()`, or because reconnecting gave up. */
  DISCONNECTED: 'DISCONNECTED';
}>;
export type SessionStatusValue = (typeof SessionStatus)[keyof typeof SessionStatus];

/**
 * Stream states. The server's are PENDING, PUBLISHING, PLAYING, UNPUBLISHED, STOPPED and FAILED; RECONNECTING and
 * WAITING are the SDK's own. UNPUBLISHED, STOPPED and FAILED are final.
 */
export declare const StreamStatus: Readonly<{
  /** Negotiating with the server. */
  PENDING: 'PENDING';
  /** A published stream's media flows to the server. */
  PUBLISHING: 'PUBLISHING';
  /** A played stream's media flows from the server. */
  PLAYING: 'PLAYING';
  /** The session's connection dropped; the stream is restored (republished or played again) when it is back. */
  RECONNECTING: 'RECONNECTING';
  /** A played stream whose publisher went away; the SDK tries to play it again (see `waitForRepublish`). */
  WAITING: 'WAITING';
  /** A published stream ended (final). */
  UNPUBLISHED: 'UNPUBLISHED';
  /** A played stream ended (final). */
  STOPPED: 'STOPPED';
  /** The stream could not start or broke (final); `info` says why. */
  FAILED: 'FAILED';
}>;
export type StreamStatusValue = (typeof StreamStatus)[keyof typeof StreamStatus];

/** Video codecs streamgate takes over WebRTC. */
export type VideoCodec = 'H264' | 'VP8';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** The server's WebSocket URL. Default: the page's own origin, `ws(s)://host/`. */
  url?: string;
  /** Sent as the `authToken` of the `connection` message. */
  token?: string;
  /** Sent as `custom.login`; rooms need one. */
  login?: string;
  /** More `custom` fields of the `connection` message. */
  custom?: Record<string, any>;
  /** The application key. Default "defaultApp". (A WCS server runs rooms under "roomApp"; streamgate under any key.) */
  appKey?: string;
  /** How to reconnect after the connection drops; `false` never does. Default: enabled with the defaults. */
  reconnect?: false | ReconnectOptions;
  /** How long connecting, each reconnect attempt and each sendData may take. Default 10000. */
  timeoutMs?: number;
  /**
   * Treat the connection as dropped when nothing was heard from the server for this long (it pings every 5 s);
   * 0 disables the check. Default 30000.
   */
  keepAliveTimeoutMs?: number;
  /** More RTCPeerConnection configuration, for example `iceServers`. */
  rtcConfiguration?: RTCConfiguration;
}

/**
 * Reconnection with exponential backoff: attempt n waits min(maxDelayMs, initialDelayMs * factor^(n-1)), shortened at
 * random by up to `jitter` of it.
 */
export interface ReconnectOptions {
  /** Delay before the first attempt. Default 500. */
  initialDelayMs?: number;
  /** Longest delay. Default 8000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction (0 to 1) of a delay that may be taken off at random. Default 0.3. */
  jitter?: number;
  /** Give up (status DISCONNECTED) after this many failed attempts. Default Infinity. */
  maxAttempts?: number;
}

/** Options of {@link Session.publish}. */
export interface PublishOptions {
  /** The stream name. */
  name: string;
  /**
   * What to send. Default 'camera'. A MediaStream is sent as it is and never stopped by the SDK; what the SDK
   * acquires is stopped when the stream ends.
   */
  source?: 'camera' | 'screen' | HTMLCanvasElement | MediaStream;
  /** Camera or screen video constraints; `false` sends no video. */
  video?: boolean | MediaTrackConstraints;
  /**
   * Microphone constraints; `false` sends no audio. Default: true for 'camera' and 'screen' (the microphone goes
   * with the screen), false for a canvas.
   */
  audio?: boolean | MediaTrackConstraints;
  /**
   * Ask the server to record the stream: recording starts once it is PUBLISHING, and the stream's `recording` event
   * tells when it runs and which file it writes.
   */
  record?: boolean;
  /** Video codec to send. Default: the browser's choice. */
  codec?: VideoCodec;
  /** Shows the local media (muted) in this element. */
  element?: HTMLVideoElement;
  /** Capture rate of a canvas source. Default 30. */
  frameRate?: number;
  /** The `custom` object of the publishStream message. */
  custom?: Record<string, any>;
  /** How long to wait for PUBLISHING. Default 20000. */
  timeoutMs?: number;
}

/** Options of {@link Session.play}. */
export interface PlayOptions {
  /** The stream name. */
  name: string;
  /** Plays the media in this element (muted if the browser refuses autoplay with sound). */
  element?: HTMLVideoElement;
  /** Video codec to ask for. Default: the browser's choice. */
  codec?: VideoCodec;
  /**
   * When the publisher goes away (the server stops the stream with "Stopped by publisher stop"), keep trying to play
   * the same name instead of ending: the stream is WAITING, then PLAYING again in the same element once a publisher
   * is back. `true` waits up to 30 s, a number that many milliseconds; then the stream ends STOPPED. Default false:
   * the stream ends at once.
   */
  waitForRepublish?: boolean | number;
  /** The `custom` object of the playStream message. */
  custom?: Record<string, any>;
  /** How long to wait for PLAYING. Default 20000. */
  timeoutMs?: number;
  /**
   * How to play: WebRTC (the default; resolves with a {@link Stream}), MSE (fMP4 over a WebSocket), LL-HLS (hls.js
   * when the page loaded it, else the browser's own HLS), or `auto`: the fallback ladder (WebRTC over UDP, WebRTC
   * through TURN when `rtcConfiguration` names one, MSE, LL-HLS), resolving with the first rung that shows a picture.
   * All but `webrtc` resolve with a {@link Playback}.
   */
  via?: 'webrtc' | 'mse' | 'hls' | 'auto';
  /** The rungs `auto` tries, in order. Default ['webrtc', 'turn', 'mse', 'hls']. */
  ladder?: Array<'webrtc' | 'turn' | 'mse' | 'hls'>;
  /** How long `auto` gives a rung to show a picture, in ms. Default 8000. */
  rungTimeoutMs?: number;
  /** Told of every step of the ladder. */
  onRung?: (rung: { via: string; status: 'trying' | 'playing' | 'failed'; info: string }) => void;
  /** A signed token for MSE and HLS. Default: the session's `custom.token`. */
  token?: string;
  /** Overrides the session's RTCConfiguration for this stream. */
  rtcConfiguration?: RTCConfiguration;
  /** hls.js, when it is not `window.Hls`. */
  Hls?: any;
}

/** What plays a stream over MSE or HLS, or the rung of the ladder that won (`via: 'auto'`). */
export declare class Playback extends EventTarget {
  /** 'mse', 'hls', or the WebRTC rung that won ('webrtc', 'turn'). */
  readonly via: string;
  /** The element showing the stream. */
  readonly element: HTMLVideoElement;
  /** The WebRTC stream, when a WebRTC rung won; else null. */
  readonly stream: Stream | null;
  /** 'PENDING', 'PLAYING', 'STOPPED' or 'FAILED'. */
  readonly status: string;
  /** Why it stopped or failed, or ''. */
  readonly info: string;
  /** The ladder's rungs that failed before this one, with their reasons. */
  readonly tried: string[];
  /** Stops playing and releases the socket, player or stream. */
  stop(): Promise<void>;
  /** Calls `fn` with each `status` event ({status, info}). */
  on(event: 'status', fn: (e: Event & { status: string; info: string }) => void): this;
}

/** Options of {@link Room.publish}: those of a session's publish, with the name made by the room. */
export type RoomPublishOptions = Omit<PublishOptions, 'name'> & {
  /** Appended to the room's stream name: `<room>-<login>-<4 random chars>-<name>`. */
  name?: string;
};

/** Options of {@link Room.play}. */
export type RoomPlayOptions = Omit<PlayOptions, 'name'>;

/** What {@link Stream.getStats} returns. Bitrates are in bits per second. */
export interface StreamStats {
  /** When the summary was made (ms since the epoch). */
  timestamp: number;
  /** Video plus audio. */
  bitrate: number;
  videoBitrate: number;
  audioBitrate: number;
  /** Video frames per second. */
  fps: number;
  /** Video frame size. */
  resolution: { width: number; height: number };
  /** Packets lost so far (received: as counted here; sent: as the server reported). */
  packetsLost: number;
  /** Video codec, e.g. "VP8" or "H264". */
  codec: string | null;
  /** Audio codec, e.g. "opus". */
  audioCodec: string | null;
  /** Video frames encoded (publisher) or decoded (player) so far. */
  frames: number;
  /** Round-trip time to the server in ms, when known. */
  rtt: number | null;
}

/** Another participant of a room. */
export interface Participant {
  login: string;
  /** Names of the streams it publishes in the room. */
  streams: string[];
}

/** Whether the server records a stream ({@link Stream.recording}, and the data of a stream's `recording` event). */
export interface RecordingState {
  /** The server is writing the stream to a file now. */
  active: boolean;
  /** The file being written, or the last one written; null before any recording. */
  recordName: string | null;
}

/** A stream of a room that the server is recording ({@link Room.recordings}). */
export interface RoomRecording {
  /** Who publishes the stream (this participant's own login for its own streams). */
  login: string;
  /** The stream name. */
  name: string;
  /** The file being written. */
  recordName: string | null;
}

/** Events of a {@link Session} and their data. */
export interface SessionEvents {
  status: { status: SessionStatusValue; info: string };
  reconnecting: { attempt: number; delayMs: number; reason: string };
  reconnected: { attempts: number; sessionId: string | null };
  disconnected: { reason: string; deliberate: boolean };
  /** The payload of a server `OnDataEvent` that is not a room event. */
  data: any;
  /** A `fail` message from the server. */
  warning: { info: string; apiMethod: string | null };
}

/** Events of a {@link Stream} and their data. */
export interface StreamEvents {
  status: { status: StreamStatusValue; info: string };
  /** A publisher's stream event, on the player side. */
  event: {
    type: 'audioMuted' | 'audioUnmuted' | 'videoMuted' | 'videoUnmuted' | 'data' | 'recordingStarted' | 'recordingStopped' | string;
    payload: any;
  };
  /** A track of `mediaStream` was added or replaced. */
  track: { track: MediaStreamTrack; kind: 'audio' | 'video' | string; source: StreamSource | null };
  /** The server started or stopped recording the stream (see {@link Stream.recording}). */
  recording: RecordingState;
}

/** Events of a {@link Room} and their data. */
export interface RoomEvents {
  joined: { login: string };
  left: { login: string };
  published: { login: string; name: string };
  unpublished: { login: string; name: string; reason: 'UNPUBLISHED' | 'FAILED' | 'LEFT' };
  message: { from: string; text: any };
  /** After the server's state was applied: on join and on every re-join after a reconnect. */
  state: { participants: Map<string, Participant> };
  /** The server started or stopped recording a stream of the room, this participant's own included. */
  recording: { login: string; name: string; active: boolean; recordName: string | null };
}

/** A publisher's video source. */
export type StreamSource = 'camera' | 'screen' | 'canvas' | 'custom';

/** An error from the server or the SDK; `message` is the server's info text when there is one. */
export declare class StreamgateError extends Error {
  constructor(message: string, details?: { info?: string; status?: string; cause?: unknown });
  name: 'StreamgateError';
  /** The server's `info` text, or the message. */
  info: string;
  /** The status that reported the error (for example "FAILED"), or null. */
  status: string | null;
}

/** Base class of Session, Stream and Room: `on`, `once` and `off` for their events. */
export declare class Emitter<Events = Record<string, any>> {
  /** Adds a listener. */
  on<K extends keyof Events>(event: K, listener: (data: Events[K]) => void): this;
  /** Adds a listener that is removed after its first call. */
  once<K extends keyof Events>(event: K, listener: (data: Events[K]) => void): this;
  /** Removes a listener (or every listener of the event when `listener` is omitted). */
  off<K extends keyof Events>(event: K, listener?: (data: Events[K]) => void): this;
}

/**
 * Connects to a streamgate server and resolves once the session is ESTABLISHED. The first connection is not
 * retried; once established, a dropped connection is reconnected with exponential backoff (unless
 * `reconnect: false`), rooms are re-joined, published streams republished under the same names from the same media,
 * and played streams played again in the same elements.
 */
export declare function connect(options?: ConnectOptions): Promise<Session>;

/** A connection to the server. Made by {@link connect}. */
export declare class Session extends Emitter<SessionEvents> {
  private constructor();
  /** The server's session id (changes on every reconnect). */
  readonly id: string | null;
  /** The current state. */
  readonly status: SessionStatusValue;
  /** The WebSocket URL. */
  readonly url: string;
  /** The login sent as `custom.login`, or null. */
  readonly login: string | null;
  /** The server's `authToken` from `getUserData`. */
  readonly authToken: string | null;
  /** The server's `getUserData` object for the current connection. */
  readonly userData: Record<string, any> | null;
  /** Streams of this session that have not ended. */
  readonly streams: Stream[];
  /** Rooms this session is in. */
  readonly rooms: Room[];
  /**
   * Publishes a stream; resolves once it is PUBLISHING. Rejects with a StreamgateError carrying the server's info
   * when the server refuses it (for example "Stream name is already in use").
   */
  publish(options: PublishOptions): Promise<Stream>;
  /**
   * Plays a stream; resolves once it is PLAYING, with the media attached to `element` when given. Rejects with
   * "Stream not found" when nothing is published under that name.
   */
  play(options: PlayOptions & { via?: 'webrtc' }): Promise<Stream>;
  play(options: PlayOptions & { via: 'mse' | 'hls' | 'auto' }): Promise<Playback>;
  play(name: string, options?: Omit<PlayOptions, 'name'>): Promise<Stream | Playback>;
  /** Joins a room with this session's login; resolves once the server sent the room's state. */
  joinRoom(name: string, options?: { record?: boolean }): Promise<Room>;
  /** Sends data to the server's application; resolves when ACCEPTED, rejects with its info when FAILED. */
  sendData(payload: any): Promise<void>;
  /** Closes the session on purpose: every stream ends, rooms are left, no reconnection is attempted. */
  disconnect(): void;
}

/** A published or played stream. */
export declare class Stream extends Emitter<StreamEvents> {
  private constructor();
  /** The current media session id (a new one after each republish or replay). */
  readonly id: string | null;
  /** The stream name. */
  readonly name: string;
  /** Published or played. */
  readonly type: 'publish' | 'play';
  /** The current state. */
  readonly status: StreamStatusValue;
  /** The info of the last status (for example "Stream not found"), or ''. */
  readonly info: string;
  /** The room the stream belongs to, or null. */
  readonly room: string | null;
  /**
   * Publisher: the local media being sent. Player: the received media (the same object across replays; its tracks
   * are replaced).
   */
  readonly mediaStream: MediaStream | null;
  /** The video element the media is attached to, or null. */
  readonly element: HTMLVideoElement | null;
  /** A publisher's current video source; null for a player. */
  readonly source: StreamSource | null;
  /** Publisher: its audio is muted. Player: the publisher said its audio is muted. */
  readonly audioMuted: boolean;
  /** Publisher: its video is muted. Player: the publisher said its video is muted. */
  readonly videoMuted: boolean;
  /**
   * Whether the server records the stream, and into which file. A publisher learns it from the server's status
   * events, however the recording was started; a player from the stream events sent while it plays (a recording
   * already running when it started playing is not reported: rooms tell it with `Room.recordings`). Inactive again
   * once the stream ends or is interrupted. A copy.
   */
  readonly recording: RecordingState;
  /**
   * Ends the stream; resolves once the server confirmed, or after a few seconds. Tracks the SDK acquired are
   * stopped; a MediaStream you passed is left running.
   */
  stop(): Promise<void>;
  /** Publisher: stops sending audio (the track is disabled) and tells the viewers. Player: silences playback. */
  muteAudio(): void;
  unmuteAudio(): void;
  /** Publisher: sends black video (the track is disabled) and tells the viewers. Player: hides the video locally. */
  muteVideo(): void;
  unmuteVideo(): void;
  /** Publisher: sends a `data` stream event to every viewer. */
  sendData(payload: any): void;
  /** Publisher: switches to another camera (the next one when `deviceId` is omitted) without renegotiating. */
  switchCamera(deviceId?: string): Promise<void>;
  /** Publisher: sends the screen instead (back to the camera by itself when the user stops sharing). */
  switchToScreen(): Promise<void>;
  /** Publisher: sends the camera again. */
  switchToCamera(): Promise<void>;
  /**
   * Publisher: sends another video source without renegotiating: a track, the first video track of a MediaStream,
   * or a canvas (captured at 30 fps). A track or MediaStream you pass is not stopped by the SDK.
   */
  replaceVideo(source: MediaStreamTrack | MediaStream | HTMLCanvasElement): Promise<void>;
  /**
   * The stream's current picture as the server decodes it, as a base64 PNG (no `data:` prefix). Rejects with the
   * server's info when it cannot take one (for example a stream without video), and when the stream is not
   * PUBLISHING or PLAYING.
   */
  snapshot(): Promise<string>;
  /** A summary of the media statistics. */
  getStats(): Promise<StreamStats>;
}

/** A room joined with {@link Session.joinRoom}. */
export declare class Room extends Emitter<RoomEvents> {
  private constructor();
  /** The room name. */
  readonly name: string;
  /** This participant's login. */
  readonly login: string;
  /** Whether the session is in the room now (false while reconnecting and after leave()). */
  readonly joined: boolean;
  /** The other participants by login (a snapshot: read it again after an event). */
  readonly participants: Map<string, Participant>;
  /** Streams this session publishes or plays through the room and that have not ended. */
  readonly streams: Stream[];
  /**
   * The streams of the room the server is recording now, this participant's own included (also right after joining
   * a room whose streams are being recorded). A snapshot: read it again after a `recording` event.
   */
  readonly recordings: RoomRecording[];
  /** Publishes in the room under the name `<room>-<login>-<4 random chars>`, tagged with the room. */
  publish(options?: RoomPublishOptions): Promise<Stream>;
  /** Plays a stream of the room. */
  play(streamName: string, options?: RoomPlayOptions): Promise<Stream>;
  /** Sends a text message to one participant. */
  sendMessage(to: string, text: string): Promise<void>;
  /** Sends a text message to every other participant; resolves with the logins it reached. */
  broadcast(text: string): Promise<string[]>;
  /**
   * Starts (`true`, the default) or stops (`false`) recording every stream published in the room, for everyone;
   * resolves once the server accepted. Each start and stop then arrives as a `recording` event in every page.
   */
  record(active?: boolean): Promise<void>;
  /** Leaves the room: ends the streams published and played through it, then tells the server. */
  leave(): Promise<void>;
}
