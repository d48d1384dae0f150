//! RTMP playback made once per stream: the stream's H.264 and AAC buffers are turned into FLV tags
//! as they arrive (no pipeline, no muxer waiting for one track to catch up with the other), and
//! each tag is cut into RTMP chunks once. Every RTMP viewer then costs a socket and a bounded queue
//! of those shared buffers. The stream since its last keyframe is kept, so a new viewer starts at
//! once.

use super::flv::{self, Tag};
use crate::engine::producer::{admit, Admit, BufferFn, ConsumerLink, Producer, ProducerLimits};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Chunk size every RTMP session announces at its start; shared chunks are cut to it.
pub const CHUNK_SIZE: usize = 4096;

/// A media message for one viewer: the tag, and its chunks for message stream 1 (what nearly every
/// client uses). A viewer on another stream id re-chunks the tag itself.
#[derive(Clone)]
pub struct Media {
    /// The tag.
    pub tag: Tag,
    /// The tag chunked for message stream id 1.
    pub chunks: Bytes,
}

/// A viewer's end of the fan-out.
pub struct ViewerFeed {
    /// Media to send, in order.
    pub rx: mpsc::Receiver<Media>,
    /// Bytes queued for this viewer and not yet written; the viewer subtracts what it writes.
    pub queued: Arc<AtomicU64>,
    _guard: ViewerGuard,
}

struct ViewerGuard {
    id: u64,
    shared: std::sync::Weak<Shared>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            if let Ok(mut st) = s.state.lock() {
                st.viewers.retain(|v| v.id != self.id);
            }
        }
    }
}

struct Viewer {
    id: u64,
    tx: mpsc::Sender<Media>,
    queued: Arc<AtomicU64>,
    waiting_keyframe: bool,
    /// No video has reached this viewer yet: its sound is not held back for the picture (players
    /// line the two up by their timestamps, and a bridged picture arrives later than its sound)...
    fresh: bool,
    /// ...except at a stream's very start, when the viewer came before any picture (a file
    /// played from its start): its first sound waits up to [`FIRST_PICTURE_WAIT_MS`] for the
    /// picture's header, or a player that reads the first tags to learn the tracks (ffmpeg) never
    /// sees the video. The timestamp of the first sound held.
    held_since: Option<u32>,
}

/// How long (in stream time) a viewer's first sound waits for the first picture.
const FIRST_PICTURE_WAIT_MS: u32 = 2000;

#[derive(Default)]
struct State {
    script: Option<Media>,
    video_header: Option<Media>,
    audio_header: Option<Media>,
    gop: Vec<Media>,
    gop_bytes: usize,
    viewers: Vec<Viewer>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    /// The stream has a video track.
    has_video: bool,
    limits: ProducerLimits,
    /// Messages not sent to a viewer because it had fallen behind.
    dropped: AtomicU64,
}

/// Whether a fresh viewer's sound at `ts` still waits for the first picture (see
/// [`Viewer::held_since`]).
fn no_picture_yet(held_since: &mut Option<u32>, ts: u32) -> bool {
    let since = *held_since.get_or_insert(ts);
    ts.wrapping_sub(since) < FIRST_PICTURE_WAIT_MS
}

/// Capacity of a viewer's queue in messages; the byte limit (from the engine's per-consumer queue
/// size) is what normally cuts a slow viewer back, this only bounds the channel itself.
const VIEWER_QUEUE_MESSAGES: usize = 4096;

impl Shared {
    fn on_tag(&self, tag: Tag) {
        tracing::trace!(
            kind = tag.kind,
            ts = tag.ts,
            key = tag.is_keyframe(),
            header = tag.is_sequence_header(),
            len = tag.body.len(),
            "flv tag"
        );
        let csid = match tag.kind {
            flv::TAG_VIDEO => flv::CSID_VIDEO,
            flv::TAG_AUDIO => flv::CSID_AUDIO,
            _ => flv::CSID_SCRIPT,
        };
        let chunks = flv::chunk(csid, tag.kind, tag.ts, 1, &tag.body, CHUNK_SIZE);
        let media = Media { tag, chunks };
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let keyframe = media.tag.is_keyframe();
        if media.tag.kind == flv::TAG_SCRIPT {
            st.script = Some(media.clone());
        } else if media.tag.is_sequence_header() {
            if media.tag.kind == flv::TAG_VIDEO {
                st.video_header = Some(media.clone());
            } else {
                st.audio_header = Some(media.clone());
            }
        } else if keyframe {
            st.gop.clear();
            st.gop_bytes = 0;
            st.gop.push(media.clone());
            st.gop_bytes = media.chunks.len();
        } else if !st.gop.is_empty() {
            st.gop_bytes += media.chunks.len();
            st.gop.push(media.clone());
            if st.gop_bytes > self.limits.gop_cache_bytes {
                st.gop.clear();
                st.gop_bytes = 0;
            }
        }
        let limit = self.limits.consumer_queue_bytes;
        let is_header = media.tag.kind == flv::TAG_SCRIPT || media.tag.is_sequence_header();
        for v in st.viewers.iter_mut() {
            let queued = v.queued.load(Ordering::Relaxed);
            // Headers always go through: without them nothing after can be decoded.
            let decision = if is_header {
                Admit::Push
            } else {
                let video = media.tag.kind == flv::TAG_VIDEO;
                let mut waiting = v.waiting_keyframe;
                let d = if video {
                    admit(&mut waiting, true, keyframe, queued, limit)
                } else if (waiting && !v.fresh)
                    || (v.fresh
                        && self.has_video
                        && no_picture_yet(&mut v.held_since, media.tag.ts))
                {
                    // No audio while the video is being cut back, nor before a fresh viewer's
                    // first picture (for a while).
                    Admit::Drop
                } else {
                    admit(&mut waiting, false, true, queued, limit)
                };
                v.waiting_keyframe = waiting;
                d
            };
            if decision == Admit::Push {
                if media.tag.kind == flv::TAG_VIDEO {
                    v.fresh = false;
                }
                let n = media.chunks.len() as u64;
                if v.tx.try_send(media.clone()).is_ok() {
                    v.queued.fetch_add(n, Ordering::Relaxed);
                } else {
                    v.waiting_keyframe = true;
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Turns producer buffers into FLV tags.
#[derive(Default)]
struct Muxer {
    sps: Vec<u8>,
    pps: Vec<u8>,
    asc: Vec<u8>,
}

fn ms(t: Option<gst::ClockTime>) -> Option<u32> {
    // Milliseconds of the server's running time: the same for every viewer. Wraps after 49 days,
    // as RTMP timestamps do.
    t.map(|t| (t.mseconds() & 0xFFFF_FFFF) as u32)
}

impl Muxer {
    fn video(&mut self, buffer: &gst::Buffer) -> Vec<Tag> {
        let Ok(map) = buffer.map_readable() else {
            return Vec::new();
        };
        let Some(dts) = ms(buffer.dts().or(buffer.pts())) else {
            return Vec::new();
        };
        let pts = ms(buffer.pts()).unwrap_or(dts);
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut out = Vec::new();
        let mut frame: Vec<&[u8]> = Vec::new();
        let (mut sps, mut pps) = (None, None);
        for n in flv::nal_units(&map) {
            match n.first().map(|b| b & 0x1F) {
                Some(7) => sps = Some(n),
                Some(8) => pps = Some(n),
                Some(9) | None => {} // access unit delimiters are not carried in FLV
                Some(_) => frame.push(n),
            }
        }
        if let (Some(s), Some(p)) = (sps, pps) {
            if s != self.sps.as_slice() || p != self.pps.as_slice() {
                self.sps = s.to_vec();
                self.pps = p.to_vec();
                if let Some(body) = flv::avc_sequence_header(s, p) {
                    out.push(Tag {
                        kind: flv::TAG_VIDEO,
                        ts: dts,
                        body: body.into(),
                    });
                }
            }
        }
        if self.sps.is_empty() || frame.is_empty() {
            return out; // nothing decodable before the first parameter sets
        }
        let cts = pts.wrapping_sub(dts) as i32;
        out.push(Tag {
            kind: flv::TAG_VIDEO,
            ts: dts,
            body: flv::avc_frame(&frame, keyframe, cts).into(),
        });
        out
    }

    fn audio(&mut self, caps: Option<&gst::Caps>, buffer: &gst::Buffer) -> Vec<Tag> {
        let Some(ts) = ms(buffer.pts()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(asc) = caps
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        {
            if let Ok(m) = asc.map_readable() {
                if m.as_slice() != self.asc.as_slice() {
                    self.asc = m.to_vec();
                    out.push(Tag {
                        kind: flv::TAG_AUDIO,
                        ts,
                        body: flv::aac_body(&self.asc, true).into(),
                    });
                }
            }
        }
        if self.asc.is_empty() {
            return out;
        }
        if let Ok(m) = buffer.map_readable() {
            out.push(Tag {
                kind: flv::TAG_AUDIO,
                ts,
                body: flv::aac_body(&m, false).into(),
            });
        }
        out
    }
}

/// The per-stream RTMP output.
pub struct FlvOutput {
    shared: Arc<Shared>,
    _links: Vec<ConsumerLink>,
    video: Option<std::sync::Weak<Producer>>,
}

impl FlvOutput {
    /// Starts muxing `video` (H.264) and/or `audio` (AAC) for RTMP viewers. No pipeline: tags are
    /// made on the producers' threads as buffers arrive.
    pub fn start(
        stream: &str,
        video: Option<&Arc<Producer>>,
        audio: Option<&Arc<Producer>>,
        limits: ProducerLimits,
    ) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            video.is_some() || audio.is_some(),
            "the stream has no track RTMP can carry"
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            has_video: video.is_some(),
            limits,
            dropped: AtomicU64::new(0),
        });
        let muxer = Arc::new(Mutex::new(Muxer::default()));
        let mut links = Vec::new();
        if let Some(v) = video {
            let (weak, muxer) = (Arc::downgrade(&shared), muxer.clone());
            let f: BufferFn = Arc::new(move |_caps, buf| {
                let tags = match muxer.lock() {
                    Ok(mut m) => m.video(buf),
                    Err(_) => return,
                };
                if let Some(s) = weak.upgrade() {
                    for t in tags {
                        s.on_tag(t);
                    }
                }
            });
            links.push(v.add_consumer_fn(f));
        }
        if let Some(a) = audio {
            let (weak, muxer) = (Arc::downgrade(&shared), muxer.clone());
            let f: BufferFn = Arc::new(move |caps, buf| {
                let tags = match muxer.lock() {
                    Ok(mut m) => m.audio(caps, buf),
                    Err(_) => return,
                };
                if let Some(s) = weak.upgrade() {
                    for t in tags {
                        s.on_tag(t);
                    }
                }
            });
            links.push(a.add_consumer_fn(f));
        }
        tracing::info!(stream, "RTMP output started");
        Ok(Arc::new(Self {
            shared,
            _links: links,
            video: video.map(Arc::downgrade),
        }))
    }

    /// Asks the video's source (or bridge) for a keyframe, for a viewer that needs one to start.
    pub fn request_keyframe(&self) {
        if let Some(v) = self.video.as_ref().and_then(std::sync::Weak::upgrade) {
            v.request_keyframe();
        }
    }

    /// Bytes queued for all viewers and not yet written, and messages dropped for slow viewers.
    pub fn backlog(&self) -> (u64, u64) {
        let queued = self
            .shared
            .state
            .lock()
            .map(|st| {
                st.viewers
                    .iter()
                    .map(|v| v.queued.load(Ordering::Relaxed))
                    .sum()
            })
            .unwrap_or(0);
        (queued, self.shared.dropped.load(Ordering::Relaxed))
    }

    /// Adds a viewer: it gets the headers and the stream since the last keyframe at once.
    pub fn subscribe(self: &Arc<Self>) -> ViewerFeed {
        let (tx, rx) = mpsc::channel(VIEWER_QUEUE_MESSAGES);
        let queued = Arc::new(AtomicU64::new(0));
        let mut st = match self.shared.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let start: Vec<Media> = [&st.script, &st.video_header, &st.audio_header]
            .into_iter()
            .flatten()
            .cloned()
            .chain(st.gop.iter().cloned())
            .collect();
        let waiting = st.gop.is_empty();
        for m in start {
            let n = m.chunks.len() as u64;
            if tx.try_send(m).is_ok() {
                queued.fetch_add(n, Ordering::Relaxed);
            }
        }
        st.next_id += 1;
        let id = st.next_id;
        st.viewers.push(Viewer {
            id,
            tx,
            queued: queued.clone(),
            waiting_keyframe: waiting,
            fresh: waiting,
            held_since: None,
        });
        drop(st);
        ViewerFeed {
            rx,
            queued,
            _guard: ViewerGuard {
                id,
                shared: Arc::downgrade(&self.shared),
            },
        }
    }
}
