//! Per-track fan-out. A [`Producer`] takes the encoded buffers of one track (from the ingest pipeline's
//! appsink) and hands the same buffers, not copies, to every consumer's `appsrc`. It keeps the track
//! since its last keyframe so a new viewer starts at once, and gives each consumer a bounded queue: a
//! consumer whose queue is full is cut back to the next keyframe, so one slow viewer never stalls the
//! publisher or anybody else.

use super::media::Codec;
use gst::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Limits a producer works within (from the engine configuration).
#[derive(Debug, Clone, Copy)]
pub struct ProducerLimits {
    /// Largest keyframe cache in bytes.
    pub gop_cache_bytes: usize,
    /// Bytes queued in one consumer before it is cut back to the next keyframe.
    pub consumer_queue_bytes: u64,
    /// Least time between two keyframe requests sent upstream.
    pub keyframe_request_interval: Duration,
}

/// The stream since its last keyframe.
#[derive(Default)]
pub(crate) struct GopCache {
    buffers: VecDeque<gst::Buffer>,
    bytes: usize,
    /// Set when the cache grew past its limit: nothing is kept until the next keyframe.
    overflowed: bool,
}

impl GopCache {
    /// Adds a buffer; a keyframe starts the cache afresh.
    pub(crate) fn push(&mut self, buffer: &gst::Buffer, keyframe: bool, limit: usize) {
        if keyframe {
            self.buffers.clear();
            self.bytes = 0;
            self.overflowed = false;
        } else if self.buffers.is_empty() || self.overflowed {
            // Deltas without their keyframe are useless to a new viewer.
            return;
        }
        self.bytes += buffer.size();
        self.buffers.push_back(buffer.clone());
        if self.bytes > limit {
            self.buffers.clear();
            self.bytes = 0;
            self.overflowed = true;
        }
    }

    /// The cached buffers, keyframe first.
    pub(crate) fn buffers(&self) -> impl Iterator<Item = &gst::Buffer> {
        self.buffers.iter()
    }

    /// Whether the cache starts with a keyframe a viewer can decode from.
    pub(crate) fn is_ready(&self) -> bool {
        !self.buffers.is_empty()
    }
}

/// What to do with one buffer for one consumer.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Admit {
    Push,
    Drop,
}

/// The per-consumer queue policy. `waiting` is the consumer's "cut back, wait for a keyframe" state.
/// Tracks without keyframes (audio) just drop while the queue is full.
pub(crate) fn admit(
    waiting: &mut bool,
    has_keyframes: bool,
    keyframe: bool,
    queued: u64,
    limit: u64,
) -> Admit {
    if !has_keyframes {
        return if queued > limit {
            Admit::Drop
        } else {
            Admit::Push
        };
    }
    if *waiting {
        // Resume only on a keyframe, and only once the backlog has drained well below the limit,
        // so a consumer that is barely keeping up does not flap.
        if keyframe && queued <= limit / 2 {
            *waiting = false;
            Admit::Push
        } else {
            Admit::Drop
        }
    } else if queued > limit {
        *waiting = true;
        Admit::Drop
    } else {
        Admit::Push
    }
}

/// A function consumer: called on the producer's thread with the track's caps and each buffer.
/// It must be quick and must not block (it queues or drops on its own).
pub type BufferFn = Arc<dyn Fn(Option<&gst::Caps>, &gst::Buffer) + Send + Sync>;

/// Where a consumer's buffers go.
enum Sink {
    /// A consumer pipeline's appsrc (its queue is the consumer's bounded queue).
    AppSrc(gst_app::AppSrc),
    /// A function that muxes or forwards without a pipeline (RTMP output).
    Func(BufferFn),
}

impl Sink {
    fn queued(&self) -> u64 {
        match self {
            Sink::AppSrc(a) => a.current_level_bytes(),
            Sink::Func(_) => 0,
        }
    }

    fn set_caps(&self, caps: &gst::Caps) {
        if let Sink::AppSrc(a) = self {
            a.set_caps(Some(caps));
        }
    }

    fn push(&self, caps: Option<&gst::Caps>, buffer: &gst::Buffer) {
        match self {
            // A full appsrc refuses with an error flow; the policy keeps us below that.
            Sink::AppSrc(a) => {
                let _ = a.push_buffer(buffer.clone());
            }
            Sink::Func(f) => f(caps, buffer),
        }
    }
}

struct Slot {
    id: u64,
    sink: Sink,
    waiting_keyframe: bool,
    dropped: u64,
}

#[derive(Default)]
struct Inner {
    caps: Option<gst::Caps>,
    cache: GopCache,
    consumers: Vec<Slot>,
    next_id: u64,
}

type KeyframeRequester = Box<dyn Fn() + Send + Sync>;

/// One track's fan-out point.
pub struct Producer {
    codec: Codec,
    limits: ProducerLimits,
    inner: Mutex<Inner>,
    requester: Mutex<Option<KeyframeRequester>>,
    last_request: Mutex<Option<Instant>>,
    /// A request came within the interval of the last one: it is sent when the interval has
    /// passed, unless a keyframe came first. Dropping it would leave its consumer waiting a
    /// whole GOP (seconds) for a keyframe asked for just after another one.
    request_pending: std::sync::atomic::AtomicBool,
    /// Where the latest buffer's time ends (see [`Producer::fill_in_time`]).
    last_time: Mutex<Option<gst::ClockTime>>,
    buffers_in: AtomicU64,
    bytes_in: AtomicU64,
    /// Seen a buffer whose presentation time differs from its decode time: the track has B-frames.
    reordered: std::sync::atomic::AtomicBool,
}

impl Producer {
    /// A producer for a track of `codec`.
    pub fn new(codec: Codec, limits: ProducerLimits) -> Arc<Self> {
        Arc::new(Self {
            codec,
            limits,
            inner: Mutex::new(Inner::default()),
            requester: Mutex::new(None),
            last_request: Mutex::new(None),
            request_pending: std::sync::atomic::AtomicBool::new(false),
            last_time: Mutex::new(None),
            buffers_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            reordered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The track's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The latest caps seen on the track.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.inner.lock().ok().and_then(|i| i.caps.clone())
    }

    /// The track since its last keyframe, as new consumers get it: the caps and the buffers,
    /// keyframe first (references to the same buffers, not copies). `None` before the first
    /// keyframe, without caps, for tracks without keyframes, or while the cache is over its limit.
    pub fn cached_gop(&self) -> Option<(gst::Caps, Vec<gst::Buffer>)> {
        let inner = self.inner.lock().ok()?;
        if !inner.cache.is_ready() {
            return None;
        }
        Some((
            inner.caps.clone()?,
            inner.cache.buffers().cloned().collect(),
        ))
    }

    /// Buffers and bytes received so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.buffers_in.load(Ordering::Relaxed),
            self.bytes_in.load(Ordering::Relaxed),
        )
    }

    /// Whether frames arrive out of presentation order (B-frames), which browsers' WebRTC
    /// decoders do not handle.
    pub fn has_reordering(&self) -> bool {
        self.reordered.load(Ordering::Relaxed)
    }

    /// Number of consumers attached.
    pub fn consumer_count(&self) -> usize {
        self.inner.lock().map(|i| i.consumers.len()).unwrap_or(0)
    }

    /// Installs how to ask the source for a keyframe.
    pub fn set_keyframe_requester(&self, f: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut r) = self.requester.lock() {
            *r = Some(Box::new(f));
        }
    }

    /// Asks the source for a keyframe, at most once per configured interval; a request within
    /// the interval is sent when it ends (if no keyframe came meanwhile).
    pub fn request_keyframe(&self) {
        if !self.codec.is_video() {
            return;
        }
        {
            let Ok(mut last) = self.last_request.lock() else {
                return;
            };
            let now = Instant::now();
            if let Some(t) = *last {
                if now.duration_since(t) < self.limits.keyframe_request_interval {
                    if !self.request_pending.swap(true, Ordering::Relaxed) {
                        tracing::trace!(codec = ?self.codec, "keyframe request deferred");
                    }
                    return;
                }
            }
            *last = Some(now);
            self.request_pending.store(false, Ordering::Relaxed);
        }
        tracing::trace!(codec = ?self.codec, "keyframe requested");
        if let Ok(r) = self.requester.lock() {
            if let Some(f) = r.as_ref() {
                f();
            }
        }
    }

    /// Feeds one buffer, timestamps already in running time. Called on the source's streaming thread.
    pub fn push(&self, caps: Option<&gst::CapsRef>, mut buffer: gst::Buffer) {
        self.fill_in_time(&mut buffer);
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        if let (Some(p), Some(d)) = (buffer.pts(), buffer.dts()) {
            if p != d && self.codec.is_video() && !self.reordered.swap(true, Ordering::Relaxed) {
                tracing::info!(codec = ?self.codec, "track has B-frames (reordered frames)");
            }
        }
        if self.buffers_in.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::debug!(codec = ?self.codec, "first buffer on track");
        }
        if self.request_pending.load(Ordering::Relaxed) {
            if keyframe {
                self.request_pending.store(false, Ordering::Relaxed);
            } else {
                // Sent now if the interval has passed; otherwise it stays pending.
                self.request_keyframe();
            }
        }
        self.bytes_in
            .fetch_add(buffer.size() as u64, Ordering::Relaxed);
        let has_keyframes = self.codec.is_video();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some(caps) = caps {
            if inner.caps.as_ref().map(|c| c.as_ref()) != Some(caps) {
                let caps = caps.to_owned();
                for c in &inner.consumers {
                    c.sink.set_caps(&caps);
                }
                inner.caps = Some(caps);
            }
        }
        if has_keyframes {
            inner
                .cache
                .push(&buffer, keyframe, self.limits.gop_cache_bytes);
        }
        let limit = self.limits.consumer_queue_bytes;
        let caps_now = inner.caps.clone();
        let mut need_keyframe = false;
        for c in inner.consumers.iter_mut() {
            let queued = c.sink.queued();
            let was_waiting = c.waiting_keyframe;
            match admit(
                &mut c.waiting_keyframe,
                has_keyframes,
                keyframe,
                queued,
                limit,
            ) {
                Admit::Push => c.sink.push(caps_now.as_ref(), &buffer),
                Admit::Drop => {
                    c.dropped += 1;
                    if !was_waiting && c.waiting_keyframe {
                        tracing::debug!(
                            consumer = c.id,
                            queued,
                            "consumer fell behind; waiting for the next keyframe"
                        );
                    }
                }
            }
            need_keyframe |= c.waiting_keyframe && queued <= limit / 2;
        }
        drop(inner);
        if need_keyframe {
            self.request_keyframe();
        }
    }

    /// A buffer without any time (h264parse gives a keyframe forced by a request none, at times)
    /// takes the time just after the track's previous buffer: consumers place every buffer by its
    /// time, and a recorder waiting for a keyframe would skip this one and wait a whole GOP.
    fn fill_in_time(&self, buffer: &mut gst::Buffer) {
        let Ok(mut last) = self.last_time.lock() else {
            return;
        };
        match buffer.dts().or(buffer.pts()) {
            Some(t) => *last = Some(t + buffer.duration().unwrap_or_default()),
            None => {
                let Some(t) = *last else { return };
                // Just after the previous one: a time that keeps the track in order.
                let t = t + gst::ClockTime::from_mseconds(1);
                let b = buffer.make_mut();
                b.set_pts(t);
                b.set_dts(t);
                *last = Some(t);
                tracing::debug!(codec = ?self.codec, "a buffer without time took the previous one's");
            }
        }
    }

    /// Attaches a consumer's appsrc. It first gets the cached keyframe and what followed, so it can
    /// start decoding at once; with no cache it waits for the next keyframe, which is requested.
    pub fn add_consumer(self: &Arc<Self>, appsrc: &gst_app::AppSrc) -> ConsumerLink {
        self.attach(Sink::AppSrc(appsrc.clone()), true)
    }

    /// Attaches a function consumer (see [`BufferFn`]); it gets the cache first like any other.
    pub fn add_consumer_fn(self: &Arc<Self>, f: BufferFn) -> ConsumerLink {
        self.attach(Sink::Func(f), true)
    }

    fn attach(self: &Arc<Self>, sink: Sink, from_cache: bool) -> ConsumerLink {
        let has_keyframes = self.codec.is_video();
        let mut ask = false;
        let id = {
            let mut inner = match self.inner.lock() {
                Ok(i) => i,
                Err(p) => p.into_inner(),
            };
            let caps = inner.caps.clone();
            if let Some(c) = &caps {
                sink.set_caps(c);
            }
            let mut waiting = false;
            if has_keyframes {
                if from_cache && inner.cache.is_ready() {
                    for b in inner.cache.buffers() {
                        sink.push(caps.as_ref(), b);
                    }
                } else {
                    waiting = true;
                    ask = true;
                }
            }
            inner.next_id += 1;
            let id = inner.next_id;
            inner.consumers.push(Slot {
                id,
                sink,
                waiting_keyframe: waiting,
                dropped: 0,
            });
            id
        };
        if ask {
            self.request_keyframe();
        }
        ConsumerLink {
            producer: Arc::downgrade(self),
            id,
        }
    }

    fn remove_consumer(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(pos) = inner.consumers.iter().position(|c| c.id == id) {
                let slot = inner.consumers.swap_remove(pos);
                if slot.dropped > 0 {
                    tracing::debug!(consumer = id, dropped = slot.dropped, "consumer detached");
                }
            }
        }
    }
}

/// A consumer's attachment to a producer; dropping it detaches the consumer.
pub struct ConsumerLink {
    producer: Weak<Producer>,
    id: u64,
}

impl Drop for ConsumerLink {
    fn drop(&mut self) {
        if let Some(p) = self.producer.upgrade() {
            p.remove_consumer(self.id);
        }
    }
}

/// Builds the appsrc a consumer pipeline reads a producer's track from.
pub fn consumer_appsrc(name: &str, limits: &ProducerLimits) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(false)
        // Our own policy drops before this; appsrc's hard limit is only a backstop at twice that.
        .max_bytes(limits.consumer_queue_bytes.saturating_mul(2))
        .block(false)
        .build()
}

/// Forwards keyframe requests that reach a consumer's appsrc from downstream (a decoder after a
/// loss, a viewer's PLI/FIR as an upstream force-key-unit event) to `source`; without this they
/// die at the appsrc.
pub fn forward_keyframe_requests(appsrc: &gst_app::AppSrc, source: &Arc<Producer>) {
    let weak = Arc::downgrade(source);
    if let Some(pad) = appsrc.static_pad("src") {
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                if gst_video::UpstreamForceKeyUnitEvent::parse(ev).is_ok() {
                    if let Some(p) = weak.upgrade() {
                        p.request_keyframe();
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// Maps one ingest's running times into the server's: sources that stamp from zero (RTMP, files)
/// are shifted so their first buffer lands at the moment it arrived. Shared by all tracks of one
/// ingest so they stay in sync with each other.
#[derive(Default)]
pub struct IngestClock {
    offset: Mutex<Option<i128>>,
}

impl IngestClock {
    /// A new mapping, fixed by the first buffer seen.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn map(&self, t: Option<gst::ClockTime>) -> Option<gst::ClockTime> {
        let t = t?;
        let Ok(mut off) = self.offset.lock() else {
            return Some(t);
        };
        let offset = *off.get_or_insert_with(|| {
            let shared = super::pipeline::shared_clock();
            let now = shared.now_running().nseconds() as i128;
            now - t.nseconds() as i128
        });
        let v = (t.nseconds() as i128 + offset).max(0);
        Some(gst::ClockTime::from_nseconds(v as u64))
    }
}

/// How an appsink's buffers are stamped before they reach the producer.
#[derive(Clone, Default)]
pub struct Stamping {
    /// Moves a source's own time base onto the server's (None when it is already there).
    pub clock: Option<Arc<IngestClock>>,
    /// The source never reorders frames (WebRTC, our own encoders): decode time is presentation
    /// time. Parsers interpolate decode times for such streams from their own zero, which would
    /// otherwise look like reordering.
    pub dts_is_pts: bool,
}

/// An appsink that hands its buffers to `producer` (see [`feed_from_appsink`]); `max_buffers` 0
/// means unbounded.
pub fn track_sink(
    name: &str,
    producer: &Arc<Producer>,
    stamping: Stamping,
    max_buffers: u32,
) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .max_buffers(max_buffers)
        .build();
    feed_from_appsink(&sink, producer, stamping);
    sink
}

/// Connects an ingest pipeline's appsink to a producer: buffers are re-stamped with their running
/// time (so they mean the same in every pipeline on the shared clock) and handed over.
pub fn feed_from_appsink(appsink: &gst_app::AppSink, producer: &Arc<Producer>, stamping: Stamping) {
    let weak = Arc::downgrade(producer);
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(producer) = weak.upgrade() else {
                    return Err(gst::FlowError::Eos);
                };
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let buffer = restamp(&sample, buffer, &stamping);
                producer.push(sample.caps(), buffer);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    // Ask the source for a keyframe by sending the request upstream from the appsink, where the
    // depayloader and webrtcbin turn it into a PLI/FIR to the sender. Not for all headers: the
    // parsers already put SPS/PPS before every IDR (config-interval=-1), and h264parse asked
    // for them pushes them as an access unit of their own, which decoders take for a corrupt
    // frame.
    let sink_weak = appsink.downgrade();
    producer.set_keyframe_requester(move || {
        if let Some(sink) = sink_weak.upgrade() {
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(false)
                .build();
            sink.send_event(ev);
        }
    });
}

fn restamp(sample: &gst::Sample, mut buffer: gst::Buffer, stamping: &Stamping) -> gst::Buffer {
    let clock = stamping.clock.as_deref();
    let Some(segment) = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())
    else {
        return buffer;
    };
    let mut pts = buffer.pts().and_then(|t| segment.to_running_time(t));
    let mut dts = if stamping.dts_is_pts {
        pts
    } else {
        buffer.dts().and_then(|t| segment.to_running_time(t))
    };
    if let Some(c) = clock {
        // Decode time anchors the mapping: it never goes backwards, presentation time may.
        if dts.is_some() {
            dts = c.map(dts);
            let d = buffer
                .pts()
                .zip(buffer.dts())
                .map(|(p, d)| p.nseconds() as i128 - d.nseconds() as i128);
            pts = match (dts, d) {
                (Some(dt), Some(delta)) => Some(gst::ClockTime::from_nseconds(
                    (dt.nseconds() as i128 + delta).max(0) as u64,
                )),
                _ => c.map(pts),
            };
        } else {
            pts = c.map(pts);
        }
    }
    if pts != buffer.pts() || dts != buffer.dts() {
        let b = buffer.make_mut();
        b.set_pts(pts);
        b.set_dts(dts);
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_cuts_back_to_the_next_keyframe() {
        let mut waiting = false;
        assert_eq!(admit(&mut waiting, true, false, 10, 100), Admit::Push);
        // Over the limit: drop, and keep dropping deltas even after the queue drains.
        assert_eq!(admit(&mut waiting, true, false, 101, 100), Admit::Drop);
        assert!(waiting);
        assert_eq!(admit(&mut waiting, true, false, 0, 100), Admit::Drop);
        // A keyframe while still backed up is dropped too.
        assert_eq!(admit(&mut waiting, true, true, 80, 100), Admit::Drop);
        // A keyframe once drained resumes.
        assert_eq!(admit(&mut waiting, true, true, 40, 100), Admit::Push);
        assert!(!waiting);
    }

    #[test]
    fn policy_for_audio_only_drops_while_full() {
        let mut waiting = false;
        assert_eq!(admit(&mut waiting, false, true, 101, 100), Admit::Drop);
        assert_eq!(admit(&mut waiting, false, true, 99, 100), Admit::Push);
        assert!(!waiting);
    }

    fn buf(size: usize) -> gst::Buffer {
        gst::Buffer::with_size(size).unwrap()
    }

    #[test]
    fn cache_starts_at_keyframe_and_respects_limit() {
        gst::init().unwrap();
        let mut c = GopCache::default();
        c.push(&buf(10), false, 100);
        assert!(!c.is_ready(), "deltas before any keyframe are not kept");
        c.push(&buf(10), true, 100);
        c.push(&buf(10), false, 100);
        assert_eq!(c.buffers().count(), 2);
        c.push(&buf(10), true, 100);
        assert_eq!(c.buffers().count(), 1, "a new keyframe restarts the cache");
        c.push(&buf(95), false, 100);
        assert!(!c.is_ready(), "past the limit the cache is dropped");
        c.push(&buf(10), false, 100);
        assert!(!c.is_ready(), "and stays empty until the next keyframe");
        c.push(&buf(10), true, 100);
        assert!(c.is_ready());
    }

    #[test]
    fn fan_out_shares_buffers_and_new_consumer_gets_cache() {
        gst::init().unwrap();
        let limits = ProducerLimits {
            gop_cache_bytes: 1 << 20,
            consumer_queue_bytes: 1 << 20,
            keyframe_request_interval: Duration::from_millis(0),
        };
        let p = Producer::new(Codec::H264, limits);
        let asked = Arc::new(AtomicU64::new(0));
        let a2 = asked.clone();
        p.set_keyframe_requester(move || {
            a2.fetch_add(1, Ordering::SeqCst);
        });
        let early = consumer_appsrc("early", &limits);
        let _l1 = p.add_consumer(&early);
        assert_eq!(
            asked.load(Ordering::SeqCst),
            1,
            "no cache: a keyframe is requested"
        );
        let key = buf(100);
        p.push(None, key.clone());
        let mut delta = buf(50);
        delta
            .get_mut()
            .unwrap()
            .set_flags(gst::BufferFlags::DELTA_UNIT);
        p.push(None, delta);
        assert_eq!(early.current_level_bytes(), 150);
        let late = consumer_appsrc("late", &limits);
        let l2 = p.add_consumer(&late);
        assert_eq!(
            late.current_level_bytes(),
            150,
            "the late consumer got the cached GOP"
        );
        assert_eq!(p.consumer_count(), 2);
        drop(l2);
        assert_eq!(p.consumer_count(), 1);
    }

    #[test]
    fn a_request_within_the_interval_is_sent_when_it_ends_unless_a_keyframe_came() {
        gst::init().unwrap();
        let limits = ProducerLimits {
            gop_cache_bytes: 1 << 20,
            consumer_queue_bytes: 1 << 20,
            keyframe_request_interval: Duration::from_millis(40),
        };
        let p = Producer::new(Codec::H264, limits);
        let asked = Arc::new(AtomicU64::new(0));
        let a2 = asked.clone();
        p.set_keyframe_requester(move || {
            a2.fetch_add(1, Ordering::SeqCst);
        });
        let delta = || {
            let mut d = buf(10);
            d.get_mut().unwrap().set_flags(gst::BufferFlags::DELTA_UNIT);
            d
        };
        p.request_keyframe();
        p.request_keyframe();
        assert_eq!(asked.load(Ordering::SeqCst), 1, "the second waits");
        p.push(None, delta());
        assert_eq!(asked.load(Ordering::SeqCst), 1, "still within the interval");
        std::thread::sleep(Duration::from_millis(60));
        p.push(None, delta());
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "sent once the interval passed"
        );
        p.push(None, delta());
        assert_eq!(asked.load(Ordering::SeqCst), 2, "and only once");
        // A keyframe answers a pending request: nothing more is sent.
        p.request_keyframe();
        p.push(None, buf(10));
        std::thread::sleep(Duration::from_millis(60));
        p.push(None, delta());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_stuck_consumer_is_cut_back_and_others_get_everything() {
        gst::init().unwrap();
        let limits = ProducerLimits {
            gop_cache_bytes: 1 << 20,
            consumer_queue_bytes: 1000,
            keyframe_request_interval: Duration::from_millis(0),
        };
        let p = Producer::new(Codec::Vp8, limits);
        // "healthy" takes every buffer at once (a function consumer never queues); "stuck" is an
        // appsrc whose pipeline never runs, so its queue only fills.
        let got = Arc::new(AtomicU64::new(0));
        let g2 = got.clone();
        let _a = p.add_consumer_fn(Arc::new(move |_, _| {
            g2.fetch_add(1, Ordering::SeqCst);
        }));
        let stuck = consumer_appsrc("stuck", &limits);
        p.push(None, buf(100)); // a keyframe, delivered to "healthy" live
        let _b = p.add_consumer(&stuck); // "stuck" starts from the cached keyframe
        for _ in 0..50 {
            let mut d = buf(100);
            d.get_mut().unwrap().set_flags(gst::BufferFlags::DELTA_UNIT);
            p.push(None, d);
        }
        assert_eq!(
            got.load(Ordering::SeqCst),
            51,
            "the healthy consumer got every buffer"
        );
        let level = stuck.current_level_bytes();
        assert!(
            level <= 1100,
            "the stuck consumer's queue stays bounded ({level} bytes)"
        );
        assert!(
            level >= 1000,
            "the stuck consumer did get buffers until its limit ({level} bytes)"
        );
    }
}
