//! WebRTC media on webrtcbin: the ingest side ([`publish`]) turns a browser's offer into encoded
//! tracks for the engine's producers; the viewer side ([`play`]) builds one pipeline per viewer that
//! sends a stream's tracks. This module holds what both share: creating a configured webrtcbin and
//! the offer/answer exchange, which always ends with an answer that carries the server's candidates
//! (WCS clients do not trickle).

pub mod ice;
pub mod play;
pub mod publish;
pub mod sdp;
pub mod session;
pub mod whip;

use crate::config::IceConfig;
use gst::glib;
use gst::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Longest wait for candidates before the answer goes out with what has been gathered.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer connection's state as the engine cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// ICE or DTLS failed, or the peer went away.
    Failed,
}

/// Why a negotiation failed.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    /// The offer could not be applied.
    #[error("the offer was refused: {0}")]
    Remote(String),
    /// No answer could be made (e.g. nothing in common).
    #[error("no answer could be made: {0}")]
    Answer(String),
    /// webrtcbin went away mid-negotiation.
    #[error("negotiation aborted")]
    Aborted,
    /// No local candidate could be gathered: every media port in the range is taken.
    #[error("no free media port")]
    NoCandidates,
}

/// Makes a webrtcbin with bundling and the ICE configuration applied.
pub fn make_webrtcbin(name: &str, cfg: &IceConfig) -> anyhow::Result<gst::Element> {
    let webrtcbin = gst::ElementFactory::make("webrtcbin")
        .name(name)
        .property_from_str("bundle-policy", "max-bundle")
        .build()?;
    ice::configure(&webrtcbin, cfg);
    Ok(webrtcbin)
}

/// Calls `f` when the peer connection connects or fails.
pub fn on_peer_state(webrtcbin: &gst::Element, f: impl Fn(PeerState) + Send + Sync + 'static) {
    webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
        let state = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        match state {
            gst_webrtc::WebRTCPeerConnectionState::Connected => f(PeerState::Connected),
            gst_webrtc::WebRTCPeerConnectionState::Failed
            | gst_webrtc::WebRTCPeerConnectionState::Closed => f(PeerState::Failed),
            _ => {}
        }
    });
}

async fn promise(
    webrtcbin: &gst::Element,
    signal: &str,
    arg: Option<&gst_webrtc::WebRTCSessionDescription>,
) -> Result<Option<gst::Structure>, NegotiationError> {
    let (tx, rx) = oneshot::channel();
    let p = gst::Promise::with_change_func(move |reply| {
        let r = match reply {
            Ok(Some(s)) => Ok(Some(s.to_owned())),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("{e:?}")),
        };
        let _ = tx.send(r);
    });
    match arg {
        Some(desc) => webrtcbin.emit_by_name::<()>(signal, &[desc, &p]),
        None => webrtcbin.emit_by_name::<()>(signal, &[&None::<gst::Structure>, &p]),
    }
    let reply = rx
        .await
        .map_err(|_| NegotiationError::Aborted)?
        .map_err(NegotiationError::Remote)?;
    if let Some(s) = &reply {
        if let Ok(err) = s.get::<glib::Error>("error") {
            return Err(NegotiationError::Remote(err.to_string()));
        }
    }
    Ok(reply)
}

/// Applies `offer`, answers it, gathers candidates and returns the answer text with them inlined.
/// `expected_candidates` lets the answer go out as soon as that many host candidates exist (when
/// gathering is restricted to known addresses and no STUN/TURN is used), instead of waiting for
/// libnice to declare gathering complete.
pub async fn answer(
    webrtcbin: &gst::Element,
    offer: &str,
    expected_candidates: Option<usize>,
) -> Result<String, NegotiationError> {
    let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
        .map_err(|e| NegotiationError::Remote(e.to_string()))?;
    let offer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
    promise(webrtcbin, "set-remote-description", Some(&offer)).await?;
    let reply = promise(webrtcbin, "create-answer", None)
        .await?
        .ok_or_else(|| NegotiationError::Answer("empty reply".into()))?;
    let answer = reply
        .get::<gst_webrtc::WebRTCSessionDescription>("answer")
        .map_err(|_| NegotiationError::Answer("no answer in reply".into()))?;

    // Collect candidates as they come; finish on "complete", on enough candidates, or on timeout.
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Arc::new(Mutex::new(Some(done_tx)));
    let candidates: Arc<Mutex<Vec<String>>> = Arc::default();
    let finish = {
        let done_tx = done_tx.clone();
        move || {
            if let Some(tx) = done_tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(());
            }
        }
    };
    let cand_handler = {
        let candidates = candidates.clone();
        let finish = finish.clone();
        webrtcbin.connect("on-ice-candidate", false, move |args| {
            let cand = args.get(2).and_then(|v| v.get::<String>().ok());
            if let (Some(c), Ok(mut list)) = (cand, candidates.lock()) {
                if !c.is_empty() {
                    list.push(c);
                }
                if expected_candidates.is_some_and(|n| list.len() >= n) {
                    finish();
                }
            }
            None
        })
    };
    let gather_handler = {
        let finish = finish.clone();
        webrtcbin.connect_notify(Some("ice-gathering-state"), move |bin, _| {
            if bin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
                == gst_webrtc::WebRTCICEGatheringState::Complete
            {
                finish();
            }
        })
    };
    promise(webrtcbin, "set-local-description", Some(&answer)).await?;
    let _ = tokio::time::timeout(GATHER_TIMEOUT, done_rx).await;
    webrtcbin.disconnect(cand_handler);
    webrtcbin.disconnect(gather_handler);

    let text = answer
        .sdp()
        .as_text()
        .map_err(|e| NegotiationError::Answer(e.to_string()))?;
    let list = candidates.lock().map(|l| l.clone()).unwrap_or_default();
    if list.is_empty() && !text.contains("a=candidate") {
        // An answer without candidates cannot connect; say so now instead of timing out later.
        return Err(NegotiationError::NoCandidates);
    }
    Ok(inline_candidates(&text, &list))
}

/// Puts the gathered candidates into every m-section (they share one transport under BUNDLE).
pub fn inline_candidates(sdp: &str, candidates: &[String]) -> String {
    let mut out = String::with_capacity(sdp.len() + candidates.len() * 80);
    let mut in_media = false;
    let flush = |out: &mut String| {
        for c in candidates {
            let line = c.strip_prefix("a=").unwrap_or(c);
            out.push_str("a=");
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("a=end-of-candidates\r\n");
    };
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_end();
        if l.starts_with("a=candidate:") || l == "a=end-of-candidates" {
            continue; // replaced by the complete list below
        }
        if l.starts_with("m=") {
            if in_media {
                flush(&mut out);
            }
            in_media = true;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    if in_media {
        flush(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn candidates_go_into_every_section() {
        let sdp = "v=0\r\ns=-\r\nm=audio 9 X 111\r\na=candidate:old\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\n";
        let out =
            super::inline_candidates(sdp, &["candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into()]);
        assert_eq!(out.matches("a=candidate:1 1 UDP").count(), 2);
        assert!(!out.contains("candidate:old"));
        assert_eq!(out.matches("a=end-of-candidates").count(), 2);
        assert!(out.ends_with("a=end-of-candidates\r\n"));
    }
}
