//! WebRTC viewers: one pipeline per viewer, `appsrc → payloader → webrtcbin` per track. The viewer is
//! attached to the stream's producers only once its connection is up, so the cached keyframe (and
//! what followed it) reaches the browser instead of being dropped before DTLS is ready. A viewer's
//! keyframe request (PLI/FIR) surfaces as an upstream event on its appsrc and is forwarded to the
//! producer, which asks the publisher (rate-limited).

use crate::config::IceConfig;
use crate::engine::media::Codec;
use crate::engine::pipeline::PipelineGuard;
use crate::engine::producer::{consumer_appsrc, ConsumerLink, Producer, ProducerLimits};
use gst::prelude::*;
use std::sync::{Arc, Mutex};

/// One track to send: where it comes from and the payload type the viewer expects.
pub struct ViewerTrack {
    /// The producer of the (possibly bridged) track.
    pub producer: Arc<Producer>,
    /// Payload type from the viewer's offer.
    pub pt: u8,
}

/// Tracks waiting for the connection to come up before they are attached.
type Pending = Vec<(Arc<Producer>, gst_app::AppSrc)>;

/// A running viewer pipeline.
pub struct Viewer {
    /// Keeps the pipeline alive; dropping the viewer stops it.
    pub guard: PipelineGuard,
    /// The webrtcbin, for negotiation and state.
    pub webrtcbin: gst::Element,
    links: Arc<Mutex<Vec<ConsumerLink>>>,
    pending: Arc<Mutex<Pending>>,
}

impl Viewer {
    /// Connects the viewer to its producers (once; later calls do nothing).
    pub fn attach(&self) {
        attach(&self.pending, &self.links);
    }
}

fn attach(pending: &Mutex<Pending>, links: &Mutex<Vec<ConsumerLink>>) {
    let todo: Vec<_> = match pending.lock() {
        Ok(mut p) => p.drain(..).collect(),
        Err(_) => return,
    };
    let new_links: Vec<ConsumerLink> = todo.iter().map(|(p, src)| p.add_consumer(src)).collect();
    if let Ok(mut l) = links.lock() {
        l.extend(new_links);
    }
}

fn payloader(codec: Codec, pt: u8) -> anyhow::Result<gst::Element> {
    let pt = u32::from(pt);
    let e = match codec {
        Codec::H264 => gst::ElementFactory::make("rtph264pay")
            .property("config-interval", -1i32)
            .property_from_str("aggregate-mode", "zero-latency")
            .property("pt", pt)
            .property("mtu", 1200u32)
            .build()?,
        Codec::Vp8 => gst::ElementFactory::make("rtpvp8pay")
            .property_from_str("picture-id-mode", "15-bit")
            .property("pt", pt)
            .property("mtu", 1200u32)
            .build()?,
        Codec::Opus => gst::ElementFactory::make("rtpopuspay")
            .property("pt", pt)
            .property("mtu", 1200u32)
            .build()?,
        Codec::Aac => anyhow::bail!("AAC cannot be sent over WebRTC"),
        Codec::H265 => anyhow::bail!("H.265 is not sent over WebRTC"),
    };
    Ok(e)
}

fn codec_preferences(codec: Codec, pt: u8) -> gst::Caps {
    let media = if codec.is_video() { "video" } else { "audio" };
    let mut b = gst::Caps::builder("application/x-rtp")
        .field("media", media)
        .field("encoding-name", codec.rtp_name())
        .field("payload", i32::from(pt))
        .field("clock-rate", codec.clock_rate() as i32);
    match codec {
        // No profile-level-id: the stream's own profile is sent as it is (browsers decode any
        // profile without B-frames), and pinning one here would refuse other profiles' caps.
        Codec::H264 => b = b.field("packetization-mode", "1"),
        Codec::Opus => b = b.field("encoding-params", "2"),
        _ => {}
    }
    b.build()
}

/// Builds and starts a viewer pipeline for `tracks`; negotiation is up to the caller, and the
/// producers are attached when the connection comes up.
pub fn build(
    pipeline_name: &str,
    counter: &crate::engine::pipeline::PipelineCounter,
    tracks: Vec<ViewerTrack>,
    ice: &IceConfig,
    limits: &ProducerLimits,
) -> anyhow::Result<Viewer> {
    let guard = PipelineGuard::new(pipeline_name, counter);
    let pipeline = guard.pipeline().clone();
    let webrtcbin = super::make_webrtcbin("webrtc", ice)?;
    pipeline.add(&webrtcbin)?;
    let mut pending = Vec::new();
    for (i, t) in tracks.into_iter().enumerate() {
        let codec = t.producer.codec();
        let src = consumer_appsrc(&format!("src{i}-{}", codec.slug()), limits);
        if let Some(caps) = t.producer.caps() {
            src.set_caps(Some(&caps));
        } else {
            src.set_caps(Some(&codec.caps()));
        }
        let pay = payloader(codec, t.pt)?;
        pipeline.add_many([src.upcast_ref::<gst::Element>(), &pay])?;
        src.link(&pay)?;
        let sinkpad = webrtcbin
            .request_pad_simple("sink_%u")
            .ok_or_else(|| anyhow::anyhow!("webrtcbin refused a sink pad"))?;
        pay.static_pad("src")
            .ok_or_else(|| anyhow::anyhow!("payloader has no src pad"))?
            .link(&sinkpad)?;
        let transceiver = sinkpad.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
        transceiver.set_property("codec-preferences", codec_preferences(codec, t.pt));
        // A viewer's PLI/FIR arrives here as an upstream force-key-unit event; it dies at the
        // appsrc unless forwarded to the producer.
        crate::engine::producer::forward_keyframe_requests(&src, &t.producer);
        pending.push((t.producer, src));
    }
    let pending = Arc::new(Mutex::new(pending));
    let links: Arc<Mutex<Vec<ConsumerLink>>> = Arc::default();
    {
        let pending = Arc::downgrade(&pending);
        let links = Arc::downgrade(&links);
        super::on_peer_state(&webrtcbin, move |state| {
            if state == super::PeerState::Connected {
                if let (Some(p), Some(l)) = (pending.upgrade(), links.upgrade()) {
                    attach(&p, &l);
                }
            }
        });
    }
    pipeline.set_state(gst::State::Playing)?;
    Ok(Viewer {
        guard,
        webrtcbin,
        links,
        pending,
    })
}
