//! A GStreamer client that speaks WCS's signaling: it publishes a test pattern (or any H.264/VP8 +
//! Opus source) and plays streams with real decoding, reporting frames, picture size and the time to
//! the first frame. The integration tests and the benchmark drive the server with it, and it is the
//! building block for pulling a stream from another server.

pub mod http;
mod ws;

pub use ws::WcsConnection;

/// How a test client sends its offer and gets its answer.
pub enum Via<'a> {
    /// WCS signaling (`publishStream`/`playStream`).
    Wcs(&'a mut WcsConnection),
    /// WHIP (publish) or WHEP (play) on the server's HTTP address.
    Whip(std::net::SocketAddr),
}

impl Via<'_> {
    /// Sends the offer; returns the answer and, over WHIP/WHEP, the resource to DELETE when done.
    async fn negotiate(
        &mut self,
        publish: bool,
        frame: serde_json::Value,
        name: &str,
        offer: &str,
    ) -> anyhow::Result<(String, Option<String>)> {
        match self {
            Via::Wcs(conn) => {
                let msid = frame["mediaSessionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let message = if publish {
                    "publishStream"
                } else {
                    "playStream"
                };
                conn.send(message, frame).await?;
                Ok((
                    conn.wait_answer(&msid, Duration::from_secs(10)).await?,
                    None,
                ))
            }
            Via::Whip(addr) => {
                let kind = if publish { "whip" } else { "whep" };
                let path = format!("/{kind}/{}", urlencode(name));
                let a = http::request(*addr, "POST", &path, Some("application/sdp"), offer).await?;
                if a.status != 201 {
                    bail!("{kind} answered {}: {}", a.status, a.body);
                }
                Ok((a.body.clone(), a.header("location").map(str::to_owned)))
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

use crate::config::IceConfig;
use crate::engine::media::Codec;
use anyhow::{bail, Context};
use gst::prelude::*;
use serde_json::json;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client_ice(addresses: &[IpAddr]) -> IceConfig {
    IceConfig {
        addresses: addresses.to_vec(),
        ..IceConfig::default()
    }
}

/// Makes an offer on `webrtcbin` and returns it with candidates inlined (WCS does not trickle).
async fn make_offer(webrtcbin: &gst::Element) -> anyhow::Result<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let promise = gst::Promise::with_change_func(move |r| {
        let _ = tx.send(r.ok().flatten().map(|s| s.to_owned()));
    });
    webrtcbin.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    let reply = rx.await?.context("no offer")?;
    let offer = reply
        .get::<gst_webrtc::WebRTCSessionDescription>("offer")
        .context("offer missing from reply")?;
    let candidates: Arc<Mutex<Vec<String>>> = Arc::default();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let done = Arc::new(Mutex::new(Some(done_tx)));
    let c2 = candidates.clone();
    let h1 = webrtcbin.connect("on-ice-candidate", false, move |args| {
        if let Some(c) = args.get(2).and_then(|v| v.get::<String>().ok()) {
            if let Ok(mut l) = c2.lock() {
                l.push(c);
            }
        }
        None
    });
    let d2 = done.clone();
    let h2 = webrtcbin.connect_notify(Some("ice-gathering-state"), move |bin, _| {
        if bin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            == gst_webrtc::WebRTCICEGatheringState::Complete
        {
            if let Some(tx) = d2.lock().ok().and_then(|mut d| d.take()) {
                let _ = tx.send(());
            }
        }
    });
    webrtcbin.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
    let _ = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
    webrtcbin.disconnect(h1);
    webrtcbin.disconnect(h2);
    let text = offer.sdp().as_text()?;
    let list = candidates.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(crate::webrtc::inline_candidates(&text, &list))
}

fn set_answer(webrtcbin: &gst::Element, sdp: &str) -> anyhow::Result<()> {
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).context("answer is not SDP")?;
    let answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, msg);
    webrtcbin.emit_by_name::<()>("set-remote-description", &[&answer, &None::<gst::Promise>]);
    Ok(())
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video bitrate in kbit/s.
    pub kbps: u32,
    /// Frames between keyframes (0: two seconds' worth).
    pub gop: u32,
    /// Video codec (H.264 or VP8).
    pub codec: Codec,
    /// Also send Opus audio.
    pub audio: bool,
    /// Local addresses ICE may use.
    pub ice_addresses: Vec<IpAddr>,
    /// Ask the server to record the stream (`record: true`).
    pub record: bool,
    /// Send this media file (an MP4 with H.264 video and AAC audio, decoded and played in real
    /// time) instead of the test pattern and tone.
    pub media_file: Option<std::path::PathBuf>,
    /// The test picture: `ball` (moving), or a solid colour as `0xAARRGGBB`.
    pub pattern: String,
    /// The test tone's frequency.
    pub tone_hz: u32,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            fps: 30,
            kbps: 1000,
            gop: 0,
            codec: Codec::H264,
            audio: true,
            ice_addresses: vec![IpAddr::from([127, 0, 0, 1])],
            record: false,
            media_file: None,
            pattern: "ball".into(),
            tone_hz: 440,
        }
    }
}

/// `videotestsrc` properties for a pattern name or a `0xAARRGGBB` colour; anything else is the ball
/// (`clock` is the ball with the time burned in, see [`clock`]).
fn test_pattern(p: &str) -> String {
    match p.strip_prefix("0x").map(|h| u32::from_str_radix(h, 16)) {
        Some(Ok(c)) => format!("pattern=solid-color foreground-color={c}"),
        _ => "pattern=ball".into(),
    }
}

pub mod clock;

/// A publishing pipeline; dropping it stops it.
pub struct TestPublisher {
    pipeline: gst::Pipeline,
    /// The media session id used.
    pub media_session_id: String,
    /// The WHIP resource (to DELETE), when published over WHIP.
    pub resource: Option<String>,
    keyframes: Arc<AtomicU64>,
}

impl TestPublisher {
    /// Keyframes the encoder has produced so far (the first one plus every one forced by a request).
    pub fn keyframes(&self) -> u64 {
        self.keyframes.load(Ordering::SeqCst)
    }
}

impl Drop for TestPublisher {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Publishes a live test pattern (and a tone) as `name` over `conn`; returns once the answer is
/// applied. Wait for PUBLISHING with [`WcsConnection::wait_status`].
pub async fn publish(
    conn: &mut WcsConnection,
    name: &str,
    o: &PublishOptions,
) -> anyhow::Result<TestPublisher> {
    publish_with_custom(conn, name, o, serde_json::Value::Null).await
}

/// Like [`publish`], with a `custom` object in the request (the room API puts the room there).
pub async fn publish_with_custom(
    conn: &mut WcsConnection,
    name: &str,
    o: &PublishOptions,
    custom: serde_json::Value,
) -> anyhow::Result<TestPublisher> {
    publish_via(Via::Wcs(conn), name, o, custom).await
}

/// Publishes a live test pattern as `name` over WCS signaling or WHIP.
pub async fn publish_via(
    mut via: Via<'_>,
    name: &str,
    o: &PublishOptions,
    custom: serde_json::Value,
) -> anyhow::Result<TestPublisher> {
    let gop = if o.gop == 0 { o.fps * 2 } else { o.gop };
    // The clock pattern is read back from every frame: one slice per frame (x264's sliced threads
    // gave pictures between keyframes that did not read back, see BENCHMARKS.md).
    let threads = if o.pattern == "clock" {
        " threads=1"
    } else {
        ""
    };
    let video = match o.codec {
        Codec::H264 => format!(
            "x264enc name=enc tune=zerolatency speed-preset=ultrafast{threads} key-int-max={gop} bitrate={kbps} \
             ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 pt=102 aggregate-mode=zero-latency \
             ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1",
            gop = gop,
            kbps = o.kbps
        ),
        Codec::Vp8 => format!(
            "vp8enc name=enc deadline=1 cpu-used=8 keyframe-max-dist={gop} target-bitrate={bps} \
             ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
            gop = gop,
            bps = o.kbps * 1000
        ),
        other => bail!("cannot publish {other:?} video"),
    };
    let opus = "opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc.";
    let desc = match &o.media_file {
        // The file's pictures and sound, paced by the clock as a camera and microphone would be.
        // Its location is set on the element afterwards, never pasted into the description.
        Some(_) => {
            let mut d = format!(
                "webrtcbin name=webrtc bundle-policy=max-bundle \
                 filesrc name=file ! qtdemux name=dm \
                 dm.video_0 ! queue ! decodebin ! videoconvert ! videoscale ! video/x-raw,width={w},height={h} ! clocksync ! {video} ! webrtc.",
                w = o.width,
                h = o.height,
            );
            if o.audio {
                d.push_str(&format!(
                    " dm.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! clocksync ! {opus}"
                ));
            }
            d
        }
        None => {
            let mut d = format!(
                "webrtcbin name=webrtc bundle-policy=max-bundle \
                 {source} ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! videoconvert ! {video} ! webrtc.",
                w = o.width,
                h = o.height,
                fps = o.fps,
                // The clock is drawn by us into fresh frames (see `clock`); the rest by videotestsrc.
                source = if o.pattern == "clock" {
                    "appsrc name=clock is-live=true format=time do-timestamp=true".to_string()
                } else {
                    format!("videotestsrc is-live=true {}", test_pattern(&o.pattern))
                },
            );
            if o.audio {
                d.push_str(&format!(
                    " audiotestsrc is-live=true wave=sine freq={tone} ! audioconvert ! audioresample ! {opus}",
                    tone = o.tone_hz.clamp(20, 20_000)
                ));
            }
            d
        }
    };
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let webrtcbin = pipeline.by_name("webrtc").context("no webrtcbin")?;
    if let (Some(path), Some(file)) = (&o.media_file, pipeline.by_name("file")) {
        file.set_property("location", path.to_string_lossy().as_ref());
    }
    if let Some(src) = pipeline.by_name("clock").and_downcast::<gst_app::AppSrc>() {
        clock::feed(src, o.width as usize, o.height as usize, o.fps.max(1));
    }
    crate::webrtc::ice::configure(&webrtcbin, &client_ice(&o.ice_addresses));
    let keyframes = Arc::new(AtomicU64::new(0));
    if let Some(pad) = pipeline.by_name("enc").and_then(|e| e.static_pad("src")) {
        let k = keyframes.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    k.fetch_add(1, Ordering::SeqCst);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing)?;
    for i in 0i32.. {
        let Some(t) = webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&i])
        else {
            break;
        };
        t.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
    }
    let mut publisher = TestPublisher {
        pipeline,
        media_session_id: uuid::Uuid::new_v4().to_string(),
        resource: None,
        keyframes,
    };
    let offer = make_offer(&webrtcbin).await?;
    let msid = publisher.media_session_id.clone();
    let frame = json!({"mediaSessionId": msid, "name": name, "published": true, "hasVideo": true,
               "hasAudio": o.audio, "status": "PENDING", "record": o.record, "mediaProvider": "WebRTC", "sdp": offer,
               "custom": custom});
    let (answer, resource) = via.negotiate(true, frame, name, &offer).await?;
    set_answer(&webrtcbin, &answer)?;
    publisher.resource = resource;
    Ok(publisher)
}

/// What a player has seen so far.
#[derive(Debug, Clone, Default)]
pub struct PlayStats {
    /// Decoded video frames.
    pub frames: u64,
    /// Decoded audio buffers.
    pub audio_buffers: u64,
    /// Last decoded picture size.
    pub size: Option<(i32, i32)>,
    /// Time from the play request to the first decoded frame.
    pub first_frame: Option<Duration>,
    /// Longest gap between two frames since the last [`TestPlayer::reset_gap`].
    pub max_gap: Duration,
}

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Video codecs offered, in order of preference.
    pub codecs: Vec<Codec>,
    /// Decode video and audio (true), or only depayload and count frames (cheap, for load tests).
    pub decode: bool,
    /// Local addresses ICE may use.
    pub ice_addresses: Vec<IpAddr>,
}

#[derive(Default)]
struct Timing {
    sent: Option<Instant>,
    first: Option<Instant>,
    last: Option<Instant>,
    max_gap: Duration,
    /// Latest decoded video and audio: when it arrived and its running time in this pipeline.
    last_video: Option<(Instant, gst::ClockTime)>,
    last_audio: Option<(Instant, gst::ClockTime)>,
}

/// Running time of a sample's buffer, in its own segment.
fn sample_running_time(sample: &gst::Sample) -> Option<gst::ClockTime> {
    let pts = sample.buffer()?.pts()?;
    sample
        .segment()?
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)
}

/// A playing pipeline that decodes what it receives; dropping it stops it.
pub struct TestPlayer {
    pipeline: gst::Pipeline,
    /// The media session id used.
    pub media_session_id: String,
    /// The WHEP resource (to DELETE), when played over WHEP.
    pub resource: Option<String>,
    frames: Arc<AtomicU64>,
    audio: Arc<AtomicU64>,
    size: Arc<Mutex<Option<(i32, i32)>>>,
    timing: Arc<Mutex<Timing>>,
}

impl TestPlayer {
    /// A snapshot of what was decoded.
    pub fn stats(&self) -> PlayStats {
        let (first_frame, max_gap) = self
            .timing
            .lock()
            .map(|t| {
                let first = match (t.sent, t.first) {
                    (Some(s), Some(f)) => Some(f.saturating_duration_since(s)),
                    _ => None,
                };
                (first, t.max_gap)
            })
            .unwrap_or_default();
        PlayStats {
            frames: self.frames.load(Ordering::SeqCst),
            audio_buffers: self.audio.load(Ordering::SeqCst),
            size: self.size.lock().ok().and_then(|s| *s),
            first_frame,
            max_gap,
        }
    }

    /// How far video leads audio, in milliseconds: the difference of the latest decoded video and
    /// audio timestamps, less the difference of their arrival times. Constant while the two stay in
    /// sync; a drift between them shows as a change over time. None until both have arrived.
    pub fn av_offset_ms(&self) -> Option<f64> {
        let t = self.timing.lock().ok()?;
        let ((va, vt), (aa, at)) = (t.last_video?, t.last_audio?);
        let ts = vt.nseconds() as f64 - at.nseconds() as f64;
        let arrival = if va >= aa {
            va.duration_since(aa).as_nanos() as f64
        } else {
            -(aa.duration_since(va).as_nanos() as f64)
        };
        Some((ts - arrival) / 1e6)
    }

    /// Starts a new window for [`PlayStats::max_gap`].
    pub fn reset_gap(&self) {
        if let Ok(mut t) = self.timing.lock() {
            t.max_gap = Duration::ZERO;
            t.last = None;
        }
    }

    /// Waits until at least `n` frames are decoded.
    pub async fn wait_frames(&self, n: u64, timeout: Duration) -> anyhow::Result<PlayStats> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if s.frames >= n {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} frames decoded in {timeout:?} (wanted {n})",
                    s.frames
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestPlayer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Plays `name` with decoding, offering the given video codecs (in order of preference) and Opus.
pub async fn play(
    conn: &mut WcsConnection,
    name: &str,
    codecs: &[Codec],
    ice_addresses: &[IpAddr],
) -> anyhow::Result<TestPlayer> {
    let opts = PlayOptions {
        codecs: codecs.to_vec(),
        decode: true,
        ice_addresses: ice_addresses.to_vec(),
    };
    play_with(conn, name, &opts).await
}

fn on_frame(timing: &Mutex<Timing>, frames: &AtomicU64) {
    let now = Instant::now();
    frames.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut t) = timing.lock() {
        if t.first.is_none() {
            t.first = Some(now);
        }
        if let Some(last) = t.last {
            t.max_gap = t.max_gap.max(now.duration_since(last));
        }
        t.last = Some(now);
    }
}

/// Plays `name` as `opts` says.
pub async fn play_with(
    conn: &mut WcsConnection,
    name: &str,
    opts: &PlayOptions,
) -> anyhow::Result<TestPlayer> {
    play_via(Via::Wcs(conn), name, opts).await
}

/// Plays `name` over WCS signaling or WHEP.
pub async fn play_via(
    mut via: Via<'_>,
    name: &str,
    opts: &PlayOptions,
) -> anyhow::Result<TestPlayer> {
    let pipeline = gst::Pipeline::builder()
        .name(format!("client-play-{name}"))
        .build();
    let webrtcbin = gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        .property("latency", 0u32)
        .build()?;
    crate::webrtc::ice::configure(&webrtcbin, &client_ice(&opts.ice_addresses));
    pipeline.add(&webrtcbin)?;
    let video_caps: Vec<String> = opts
        .codecs
        .iter()
        .map(|c| match c {
            Codec::H264 => "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42e01f".to_string(),
            Codec::Vp8 => "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000".to_string(),
            _ => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    let recvonly = gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly;
    let vcaps = gst::Caps::from_str(&video_caps.join(";"))?;
    webrtcbin
        .emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>("add-transceiver", &[&recvonly, &vcaps]);
    let acaps = gst::Caps::from_str("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2")?;
    webrtcbin
        .emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>("add-transceiver", &[&recvonly, &acaps]);

    let frames = Arc::new(AtomicU64::new(0));
    let audio = Arc::new(AtomicU64::new(0));
    let size: Arc<Mutex<Option<(i32, i32)>>> = Arc::default();
    let timing: Arc<Mutex<Timing>> = Arc::default();
    if !opts.decode {
        let pipe = pipeline.downgrade();
        let (frames, audio, timing) = (frames.clone(), audio.clone(), timing.clone());
        webrtcbin.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipe.upgrade() else {
                return;
            };
            let enc = pad
                .current_caps()
                .and_then(|c| {
                    c.structure(0)
                        .and_then(|s| s.get::<String>("encoding-name").ok())
                })
                .unwrap_or_default();
            let video = enc != "OPUS";
            // Load-test viewers do not depayload: frames are counted from the RTP marker bit
            // (set on the last packet of each video frame), so a viewer costs its client little
            // more than receiving, and more of the machine is left to the server being measured.
            let Ok(sink) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .property("enable-last-sample", false)
                .build()
            else {
                return;
            };
            let _ = pipeline.add(&sink);
            let _ = sink.sync_state_with_parent();
            if let Some(sp) = sink.static_pad("sink") {
                let _ = pad.link(&sp);
            }
            let (frames, audio, timing) = (frames.clone(), audio.clone(), timing.clone());
            let count = move |b: &gst::BufferRef| {
                if !video {
                    audio.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut marker = [0u8; 2];
                if b.copy_to_slice(0, &mut marker).is_ok() && marker[1] & 0x80 != 0 {
                    on_frame(&timing, &frames);
                }
            };
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(b)) => count(b),
                        Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(&count),
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        });
    } else {
        let pipe = pipeline.downgrade();
        let (frames, audio, size, timing) =
            (frames.clone(), audio.clone(), size.clone(), timing.clone());
        webrtcbin.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipe.upgrade() else {
                return;
            };
            let Ok(decodebin) = gst::ElementFactory::make("decodebin").build() else {
                return;
            };
            let pipe2 = pipeline.downgrade();
            let (frames, audio, size, timing) =
                (frames.clone(), audio.clone(), size.clone(), timing.clone());
            decodebin.connect_pad_added(move |_, dpad| {
                let Some(pipeline) = pipe2.upgrade() else {
                    return;
                };
                let is_video = dpad
                    .current_caps()
                    .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                    .unwrap_or(false);
                let sink = gst_app::AppSink::builder().sync(false).build();
                let conv = if is_video {
                    "videoconvert"
                } else {
                    "audioconvert"
                };
                let Ok(conv) = gst::ElementFactory::make(conv).build() else {
                    return;
                };
                let _ = pipeline.add_many([&conv, sink.upcast_ref()]);
                let _ = conv.link(&sink);
                let _ = conv.sync_state_with_parent();
                let _ = sink.sync_state_with_parent();
                if let Some(sp) = conv.static_pad("sink") {
                    let _ = dpad.link(&sp);
                }
                let (frames, audio, size, timing) =
                    (frames.clone(), audio.clone(), size.clone(), timing.clone());
                sink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |s| {
                            let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            if let (Some(rt), Ok(mut t)) =
                                (sample_running_time(&sample), timing.lock())
                            {
                                let now = Instant::now();
                                if is_video {
                                    t.last_video = Some((now, rt));
                                } else {
                                    t.last_audio = Some((now, rt));
                                }
                            }
                            if is_video {
                                on_frame(&timing, &frames);
                                if let Some(st) = sample.caps().and_then(|c| c.structure(0)) {
                                    if let (Ok(w), Ok(h)) =
                                        (st.get::<i32>("width"), st.get::<i32>("height"))
                                    {
                                        if let Ok(mut sz) = size.lock() {
                                            *sz = Some((w, h));
                                        }
                                    }
                                }
                            } else {
                                audio.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            });
            let _ = pipeline.add(&decodebin);
            let _ = decodebin.sync_state_with_parent();
            if let Some(sp) = decodebin.static_pad("sink") {
                let _ = pad.link(&sp);
            }
        });
    }
    pipeline.set_state(gst::State::Playing)?;
    let mut player = TestPlayer {
        pipeline,
        media_session_id: uuid::Uuid::new_v4().to_string(),
        resource: None,
        frames,
        audio,
        size,
        timing,
    };
    let offer = make_offer(&webrtcbin).await?;
    let msid = player.media_session_id.clone();
    if let Ok(mut t) = player.timing.lock() {
        t.sent = Some(Instant::now());
    }
    let frame = json!({"mediaSessionId": msid, "name": name, "published": false, "hasVideo": true,
               "hasAudio": true, "status": "PENDING", "record": false, "mediaProvider": "WebRTC", "sdp": offer});
    let (answer, resource) = via.negotiate(false, frame, name, &offer).await?;
    set_answer(&webrtcbin, &answer)?;
    player.resource = resource;
    Ok(player)
}
