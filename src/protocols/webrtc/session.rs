//! A WebRTC media session through the engine's seam: a publisher's offer becomes a stream (the
//! ingest pipeline is its source), a viewer's offer becomes a viewer (its pipeline is its output).
//! Both pass the engine's admission, and both answer with every candidate inlined. WCS signaling
//! and WHIP/WHEP call these; the engine knows nothing of SDP or ICE.

use super::{play, publish, sdp, NegotiationError, PeerState};
use crate::engine::bridge::Bridge;
use crate::engine::pipeline::PipelineGuard;
use crate::engine::{
    short, Engine, EngineError, MediaRequest, Output, PlayHandle, PublishHandle, PublishSpec,
    Source, StreamMedia,
};
use std::sync::Arc;

/// A publisher's ingest pipeline, as the stream's source.
struct IngestSource(#[allow(dead_code)] publish::Ingest);

impl Source for IngestSource {
    fn kind(&self) -> &'static str {
        "webrtc"
    }
}

/// A viewer's pipeline and the bridges it takes from, as its output.
struct ViewerOutput {
    _viewer: play::Viewer,
    _bridges: Vec<Arc<Bridge>>,
}

impl Output for ViewerOutput {
    fn kind(&self) -> &'static str {
        "webrtc"
    }
}

/// How many host candidates to wait for before answering, when that is knowable.
fn expected_candidates(engine: &Engine) -> Option<usize> {
    let ice = &engine.config().ice;
    (ice.stun_servers.is_empty() && ice.turn_servers.is_empty() && !ice.addresses.is_empty())
        .then_some(ice.addresses.len())
}

fn finish_answer(engine: &Engine, answer: String) -> String {
    match engine.config().ice.announce_address {
        Some(ip) => sdp::announce_address(&answer, ip),
        None => answer,
    }
}

/// Checks an offer's size before reading it, then reads it.
fn read_offer(engine: &Engine, text: &str) -> Result<Vec<sdp::OfferedMedia>, EngineError> {
    let l = &engine.config().limits;
    sdp::check_limits(text, l.max_sdp_bytes, l.max_media_sections)
        .and_then(|()| sdp::analyze_offer(text))
        .map_err(|e| EngineError::BadSdp(e.to_string()))
}

/// A failed negotiation as the client should hear it.
fn negotiation_error(e: NegotiationError) -> EngineError {
    match e {
        NegotiationError::NoCandidates => {
            tracing::warn!(
                "no free media port for a WebRTC session: the ICE port range is used up"
            );
            EngineError::Unavailable("No free media ports; try again later".into())
        }
        e => EngineError::BadSdp(e.to_string()),
    }
}

/// Wires a media session's peer state, bus errors and connect timeout to the engine.
fn watch(engine: &Engine, guard: &mut PipelineGuard, webrtcbin: &gst::Element, msid: &str) {
    let weak = engine.downgrade();
    let id = msid.to_owned();
    super::on_peer_state(webrtcbin, move |state| {
        let Some(engine) = weak.upgrade() else { return };
        match state {
            PeerState::Connected => engine.connected(&id),
            PeerState::Failed => engine.failed(&id, "Failed by ICE error"),
        }
    });
    let weak = engine.downgrade();
    let id = msid.to_owned();
    guard.watch_bus(move |_| {
        if let Some(engine) = weak.upgrade() {
            engine.failed(&id, "Failed by error");
        }
    });
    engine.fail_if_pending_after(
        msid,
        engine.config().ice.connect_timeout,
        "Failed by ICE timeout",
    );
}

/// Publishes a WebRTC stream from an offer. Returns the handle that keeps it alive and the answer.
pub async fn publish(
    engine: &Engine,
    req: MediaRequest,
    provider: &'static str,
) -> Result<(PublishHandle, String), EngineError> {
    let offer = read_offer(engine, &req.sdp)?;
    let plan = publish::IngestPlan::from_offer(&offer).ok_or(EngineError::NoCommonCodecs)?;
    let spec = PublishSpec {
        provider,
        video: plan.video.as_ref().map(|(c, _)| c.codec),
        audio: plan.audio.as_ref().map(|(c, _)| c.codec),
        complete: true,
        may_reorder: false,
        connected: false,
        resumable: false,
    };
    // From here on, dropping the handle undoes the registration.
    let mut handle = engine.publish(&req, spec).await?;
    let media = handle.media().clone();
    let pipeline_name = format!("{}-publish-{}", req.name, short(&req.media_session_id));
    let mut ingest = publish::build(
        &pipeline_name,
        engine.pipelines(),
        &plan,
        media.video(),
        media.audio(),
        &engine.config().ice,
    )
    .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    watch(
        engine,
        &mut ingest.guard,
        &ingest.webrtcbin,
        &req.media_session_id,
    );
    let webrtcbin = ingest.webrtcbin.clone();
    let answer = super::answer(&webrtcbin, &req.sdp, expected_candidates(engine));
    handle.set_source(Box::new(IngestSource(ingest)));
    let answer = answer.await.map_err(negotiation_error)?;
    tracing::debug!(offer = %req.sdp, answer = %answer, "publish negotiated");
    Ok((handle, finish_answer(engine, answer)))
}

/// Plays a stream over WebRTC from a (recvonly) offer.
pub async fn play(
    engine: &Engine,
    req: MediaRequest,
    provider: &'static str,
) -> Result<(PlayHandle, String), EngineError> {
    let offer = read_offer(engine, &req.sdp)?;
    let mut handle = engine.play(&req, provider, false).await?;
    let media = handle.media().clone();
    media.probe_reordering().await;
    let (tracks, bridges) = viewer_tracks(&media, &offer)?;
    let pipeline_name = format!("{}-play-{}", req.name, short(&req.media_session_id));
    let mut viewer = play::build(
        &pipeline_name,
        engine.pipelines(),
        tracks,
        &engine.config().ice,
        &engine.limits(),
    )
    .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    watch(
        engine,
        &mut viewer.guard,
        &viewer.webrtcbin,
        &req.media_session_id,
    );
    let webrtcbin = viewer.webrtcbin.clone();
    let answer = super::answer(&webrtcbin, &req.sdp, expected_candidates(engine));
    handle.set_output(Box::new(ViewerOutput {
        _viewer: viewer,
        _bridges: bridges,
    }));
    let answer = answer.await.map_err(negotiation_error)?;
    tracing::info!(stream = %crate::redact::Escaped(&req.name), media_session = %req.media_session_id, "playing");
    let answer = sdp::unify_msid(
        &answer,
        &format!("streamgate-{}", short(&req.media_session_id)),
    );
    Ok((handle, finish_answer(engine, answer)))
}

type Tracks = (Vec<play::ViewerTrack>, Vec<Arc<Bridge>>);

/// Chooses, per m-line the viewer receives on, the stream's track as is when the viewer takes its
/// codec, or a bridged one in the viewer's most preferred codec otherwise.
fn viewer_tracks(media: &StreamMedia, offer: &[sdp::OfferedMedia]) -> Result<Tracks, EngineError> {
    let mut tracks = Vec::new();
    let mut bridges = Vec::new();
    let (mut have_video, mut have_audio) = (false, false);
    for m in offer.iter().filter(|m| m.peer_receives) {
        let video = m.kind == sdp::Kind::Video;
        if (video && have_video) || (!video && have_audio) {
            continue;
        }
        let Some(source) = media.track(video) else {
            continue;
        };
        // Pass the codec through when the viewer takes it (re-encoded once, shared, if it has
        // B-frames); otherwise bridge to the viewer's preferred codec.
        let chosen = match m.pt_for(source.codec()) {
            Some(oc) => Some((source.codec(), oc.pt)),
            None => m.preferred().map(|oc| (oc.codec, oc.pt)),
        };
        let Some((codec, pt)) = chosen else { continue };
        let (producer, bridge) = media
            .track_in(codec, true)
            .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        bridges.extend(bridge);
        tracks.push(play::ViewerTrack { producer, pt });
        if video {
            have_video = true;
        } else {
            have_audio = true;
        }
    }
    if tracks.is_empty() {
        return Err(EngineError::NoCommonCodecs);
    }
    Ok((tracks, bridges))
}
