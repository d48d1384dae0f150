//! A stream's media: its source tracks (one producer each) and what is derived from them on
//! demand and shared by every consumer that needs it: codec bridges and the RTMP output.

use super::bridge::Bridge;
use super::media::Codec;
use super::pipeline;
use super::producer::{Producer, ProducerLimits};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The encoded tracks of a stream and the bridges derived from them.
pub struct StreamMedia {
    pub(super) name: String,
    pub(super) video: Option<Arc<Producer>>,
    pub(super) audio: Option<Arc<Producer>>,
    /// Shared transcodes by target codec; `true` marks an H.264 re-encode without B-frames.
    pub(super) bridges: Mutex<HashMap<(Codec, bool), Weak<Bridge>>>,
    pub(super) rtmp_out: Mutex<Weak<RtmpOut>>,
    /// The source may send B-frames (RTMP encoders do; browsers never do).
    pub(super) may_reorder: bool,
    pub(super) limits: ProducerLimits,
    pub(super) pipelines: pipeline::PipelineCounter,
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
            video: video.map(|c| Producer::new(c, limits)),
            audio: audio.map(|c| Producer::new(c, limits)),
            bridges: Mutex::default(),
            rtmp_out: Mutex::default(),
            may_reorder,
            limits,
            pipelines,
        })
    }

    /// The source track of a kind.
    pub fn track(&self, video: bool) -> Option<&Arc<Producer>> {
        if video {
            self.video.as_ref()
        } else {
            self.audio.as_ref()
        }
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
            return Ok((source.clone(), None));
        }
        let key = (codec, reencode);
        let mut bridges = self
            .bridges
            .lock()
            .map_err(|_| anyhow::anyhow!("bridge table poisoned"))?;
        if let Some(b) = bridges.get(&key).and_then(Weak::upgrade) {
            return Ok((b.producer.clone(), Some(b)));
        }
        let b = Bridge::start(&self.name, source, codec, self.limits, &self.pipelines)?;
        bridges.insert(key, Arc::downgrade(&b));
        Ok((b.producer.clone(), Some(b)))
    }

    /// The stream's shared RTMP output (H.264 + AAC, bridged when the stream carries VP8 or Opus),
    /// made on first demand and dropped with its last viewer.
    pub fn rtmp_output(&self) -> anyhow::Result<Arc<RtmpOut>> {
        let mut slot = self
            .rtmp_out
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(o) = slot.upgrade() {
            return Ok(o);
        }
        let mut bridges = Vec::new();
        let video = match self.video {
            Some(_) => {
                let (p, b) = self.track_in(Codec::H264, false)?;
                bridges.extend(b);
                Some(p)
            }
            None => None,
        };
        let audio = match self.audio {
            Some(_) => {
                let (p, b) = self.track_in(Codec::Aac, false)?;
                bridges.extend(b);
                Some(p)
            }
            None => None,
        };
        let out = crate::rtmp::output::FlvOutput::start(
            &self.name,
            video.as_ref(),
            audio.as_ref(),
            self.limits,
        )?;
        let o = Arc::new(RtmpOut {
            out,
            _bridges: bridges,
        });
        *slot = Arc::downgrade(&o);
        Ok(o)
    }

    /// For a source that may send B-frames, waits (up to a second) until enough of its video has
    /// been seen to tell, so a WebRTC viewer is not given a stream its browser cannot decode.
    pub(super) async fn probe_reordering(&self) {
        const FRAMES_TO_TELL: u64 = 12;
        let Some(v) = self
            .video
            .as_ref()
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

    /// The RTMP output's backlog (queued bytes, dropped messages), when it runs.
    pub(super) fn rtmp_backlog(&self) -> (u64, u64) {
        self.rtmp_out
            .lock()
            .ok()
            .and_then(|w| w.upgrade())
            .map(|o| o.out.backlog())
            .unwrap_or((0, 0))
    }

    /// Whether the stream's shared RTMP output is running.
    pub(super) fn has_rtmp_output(&self) -> bool {
        self.rtmp_out
            .lock()
            .map(|w| w.strong_count() > 0)
            .unwrap_or(false)
    }

    pub(super) fn live_bridges(&self) -> usize {
        self.bridges
            .lock()
            .map(|b| b.values().filter(|w| w.strong_count() > 0).count())
            .unwrap_or(0)
    }
}

/// A stream's RTMP output with the bridges it needs.
pub struct RtmpOut {
    /// The shared FLV output.
    pub out: Arc<crate::rtmp::output::FlvOutput>,
    _bridges: Vec<Arc<Bridge>>,
}
