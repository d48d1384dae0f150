//! A stream's media: its source tracks (one producer each) and what is derived from them on
//! demand and shared by every consumer that needs it: codec bridges and shared outputs (the FLV
//! feed behind RTMP viewers, later HLS/MSE packagers). A source may announce its tracks after it
//! starts (a demuxer learns codecs late); viewers wait for [`StreamMedia::tracks_complete`].

use super::bridge::Bridge;
use super::media::Codec;
use super::pipeline;
use super::producer::{Producer, ProducerLimits};
use super::seam::SharedOutput;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// A shared output, kept weakly twice: typed (to hand it out again) and as a [`SharedOutput`]
/// (for metrics).
struct SharedSlot {
    typed: Weak<dyn Any + Send + Sync>,
    output: Weak<dyn SharedOutput>,
}

/// The encoded tracks of a stream and what is derived from them.
pub struct StreamMedia {
    pub(super) name: String,
    video: RwLock<Option<Arc<Producer>>>,
    audio: RwLock<Option<Arc<Producer>>>,
    /// Flips to true once the source has announced every track it will have.
    complete: tokio::sync::watch::Sender<bool>,
    /// Shared transcodes by target codec; `true` marks an H.264 re-encode without B-frames.
    bridges: Mutex<HashMap<(Codec, bool), Weak<Bridge>>>,
    /// Shared outputs by kind.
    shared: Mutex<HashMap<&'static str, SharedSlot>>,
    /// The source may send B-frames (RTMP encoders do; browsers never do).
    may_reorder: bool,
    limits: ProducerLimits,
    pipelines: pipeline::PipelineCounter,
    /// Counts publishers that took the stream over (a resume after a drop): outputs that must mark
    /// such a change (HLS discontinuities) compare it.
    generation: std::sync::atomic::AtomicU64,
}

impl StreamMedia {
    /// A stream with these source tracks, in `codec`s, nothing derived yet. `may_reorder`: the
    /// source may send B-frames (checked before WebRTC viewers are given its video).
    pub(super) fn new(
        name: &str,
        video: Option<Codec>,
        audio: Option<Codec>,
        may_reorder: bool,
        limits: ProducerLimits,
        pipelines: pipeline::PipelineCounter,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            video: RwLock::new(video.map(|c| Producer::new(c, limits))),
            audio: RwLock::new(audio.map(|c| Producer::new(c, limits))),
            complete: tokio::sync::watch::Sender::new(false),
            bridges: Mutex::default(),
            shared: Mutex::default(),
            may_reorder,
            limits,
            pipelines,
            generation: Default::default(),
        })
    }

    /// How many times a publisher came back and took the stream over (see [`Self::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The source started afresh (a publisher took the stream over, a camera was dialled again):
    /// what follows does not continue what came before, and outputs that care (HLS marks a
    /// discontinuity) start anew.
    pub fn next_generation(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fan-out limits of the stream's producers.
    pub fn limits(&self) -> ProducerLimits {
        self.limits
    }

    /// The pipeline counter of the engine the stream belongs to.
    pub fn pipelines(&self) -> &pipeline::PipelineCounter {
        &self.pipelines
    }

    fn slot(&self, video: bool) -> &RwLock<Option<Arc<Producer>>> {
        if video {
            &self.video
        } else {
            &self.audio
        }
    }

    /// The source track of a kind.
    pub fn track(&self, video: bool) -> Option<Arc<Producer>> {
        match self.slot(video).read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The video track.
    pub fn video(&self) -> Option<Arc<Producer>> {
        self.track(true)
    }

    /// The audio track.
    pub fn audio(&self) -> Option<Arc<Producer>> {
        self.track(false)
    }

    /// Announces a track the source found after it started; returns its producer (the existing
    /// one when a track of that kind is there already, e.g. after a resume).
    pub fn add_track(&self, codec: Codec) -> Arc<Producer> {
        let mut slot = match self.slot(codec.is_video()).write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        slot.get_or_insert_with(|| Producer::new(codec, self.limits))
            .clone()
    }

    /// The source has announced every track it will have: viewers waiting for tracks go on.
    pub fn tracks_complete(&self) {
        self.complete.send_replace(true);
    }

    /// Waits (up to `timeout`) until the source has announced its tracks.
    pub async fn wait_tracks(&self, timeout: Duration) {
        let mut rx = self.complete.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await;
    }

    /// The track in `codec`: the source itself, or a shared bridge made on first demand.
    /// `in_order` asks for video without B-frames (what browsers' WebRTC decoders need): an H.264
    /// source with reordered frames is then re-encoded once for every such consumer.
    pub fn track_in(
        &self,
        codec: Codec,
        in_order: bool,
    ) -> anyhow::Result<(Arc<Producer>, Option<Arc<Bridge>>)> {
        let source = self
            .track(codec.is_video())
            .ok_or_else(|| anyhow::anyhow!("stream has no such track"))?;
        let reencode = in_order && codec == Codec::H264 && source.has_reordering();
        if source.codec() == codec && !reencode {
            return Ok((source, None));
        }
        let key = (codec, reencode);
        let mut bridges = self
            .bridges
            .lock()
            .map_err(|_| anyhow::anyhow!("bridge table poisoned"))?;
        if let Some(b) = bridges.get(&key).and_then(Weak::upgrade) {
            return Ok((b.producer.clone(), Some(b)));
        }
        let b = Bridge::start(&self.name, &source, codec, self.limits, &self.pipelines)?;
        bridges.insert(key, Arc::downgrade(&b));
        Ok((b.producer.clone(), Some(b)))
    }

    /// The stream's shared output of `kind`, made by `make` on first demand and shared until its
    /// last user drops it.
    pub fn shared_output<T: SharedOutput>(
        &self,
        kind: &'static str,
        make: impl FnOnce(&Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<Arc<T>> {
        let mut shared = self
            .shared
            .lock()
            .map_err(|_| anyhow::anyhow!("shared output table poisoned"))?;
        if let Some(any) = shared.get(kind).and_then(|s| s.typed.upgrade()) {
            if let Ok(t) = any.downcast::<T>() {
                return Ok(t);
            }
        }
        let made = Arc::new(make(self)?);
        let typed: Arc<dyn Any + Send + Sync> = made.clone();
        let output: Arc<dyn SharedOutput> = made.clone();
        shared.insert(
            kind,
            SharedSlot {
                typed: Arc::downgrade(&typed),
                output: Arc::downgrade(&output),
            },
        );
        Ok(made)
    }

    /// The shared outputs running now.
    pub(super) fn live_shared_outputs(&self) -> Vec<Arc<dyn SharedOutput>> {
        self.shared
            .lock()
            .map(|s| s.values().filter_map(|o| o.output.upgrade()).collect())
            .unwrap_or_default()
    }

    /// For a source that may send B-frames, waits (up to a second) until enough of its video has
    /// been seen to tell, so a WebRTC viewer is not given a stream its browser cannot decode.
    pub async fn probe_reordering(&self) {
        const FRAMES_TO_TELL: u64 = 12;
        let Some(v) = self
            .video()
            .filter(|v| self.may_reorder && v.codec() == Codec::H264)
        else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while !v.has_reordering()
            && v.counters().0 < FRAMES_TO_TELL
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) fn live_bridges(&self) -> usize {
        self.bridges
            .lock()
            .map(|b| b.values().filter(|w| w.strong_count() > 0).count())
            .unwrap_or(0)
    }
}
