//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and the corpus replay test
//! (`tests/fuzz_corpora.rs`). Each takes arbitrary bytes and runs them through the crate's real
//! code the way the server runs what a peer sends, so an input libFuzzer finds replays under a
//! plain `cargo test` (CI needs neither cargo-fuzz nor nightly). A panic is a finding: besides
//! the code's own checks, the functions assert what must hold for every input. Nothing here opens
//! a socket or builds a pipeline.

use crate::engine::media::Codec;
use crate::rtmp::{flv, output};
use crate::signaling::protocol::{self, Incoming};
use crate::webrtc::sdp;
use rml_rtmp::chunk_io::ChunkDeserializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::collections::VecDeque;

/// Every codec the server negotiates, for [`sdp::OfferedMedia::pt_for`].
const CODECS: [Codec; 4] = [Codec::H264, Codec::Vp8, Codec::Opus, Codec::Aac];

/// `ws_message`: one WebSocket signaling text frame, parsed as the signaling session does. An
/// error becomes the `fail` frame the client would get; the SDP of a publish or play request
/// goes on to the offer analysis the engine does.
pub fn ws_message(data: &[u8]) {
    // The WebSocket layer hands the session only valid UTF-8 text frames.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match protocol::parse(text) {
        Ok(Incoming::PublishStream(req) | Incoming::PlayStream(req)) => offer(&req.sdp),
        Ok(_) => {}
        Err(e) => {
            let reply = protocol::fail(&e.to_string(), e.api_method());
            assert!(
                serde_json::from_str::<serde_json::Value>(&reply).is_ok(),
                "the fail frame is JSON: {reply}"
            );
        }
    }
}

/// `sdp_offer`: an SDP offer as text (invalid UTF-8 replaced; offers arrive inside JSON strings).
pub fn sdp_offer(data: &[u8]) {
    offer(&String::from_utf8_lossy(data));
}

/// What the engine does with an offer: analyze it, plan the ingest, pick a payload type per codec.
fn offer(text: &str) {
    let Ok(media) = sdp::analyze_offer(text) else {
        return;
    };
    assert!(
        !media.is_empty(),
        "a parsed offer has an audio or video m-line"
    );
    let _ = crate::webrtc::publish::IngestPlan::from_offer(&media);
    for m in &media {
        if let Some(c) = m.preferred() {
            assert_eq!(c.codec.is_video(), m.kind == sdp::Kind::Video);
        }
        for codec in CODECS {
            if let Some(c) = m.pt_for(codec) {
                assert_eq!(c.codec, codec, "pt_for returns the codec asked for");
            }
        }
    }
}

/// `rtmp_input`: bytes from an RTMP peer, through the handshake and the server session as
/// `rtmp::run` drives them, and straight into the AMF0 decoder. The first byte says how the rest
/// arrives: 0 = in one read, n = in reads of 16·n bytes (so the fuzzer explores split points).
pub fn rtmp_input(data: &[u8]) {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    // rml_rtmp decodes every command and data message body with rml_amf0.
    let _ = rml_rtmp::rml_amf0::deserialize(&mut std::io::Cursor::new(bytes));

    let step = match split {
        0 => bytes.len().max(1),
        n => usize::from(n) * 16,
    };
    let mut handshake = Handshake::new(PeerType::Server);
    let mut conn: Option<(ServerSession, FuzzConn)> = None;
    for read in bytes.chunks(step) {
        // Any error ends the connection in the server: so it does here.
        let ok = match &mut conn {
            Some((session, c)) => session
                .handle_input(read)
                .is_ok_and(|results| c.apply(session, results)),
            None => match handshake.process_bytes(read) {
                Err(_) => false,
                Ok(HandshakeProcessResult::InProgress { .. }) => true,
                Ok(HandshakeProcessResult::Completed {
                    remaining_bytes, ..
                }) => {
                    let mut config = ServerSessionConfig::new();
                    config.chunk_size = output::CHUNK_SIZE as u32;
                    let Ok((mut session, initial)) = ServerSession::new(config) else {
                        return;
                    };
                    let mut c = FuzzConn::default();
                    let ok = c.apply(&mut session, initial)
                        && (remaining_bytes.is_empty()
                            || session
                                .handle_input(&remaining_bytes)
                                .is_ok_and(|results| c.apply(&mut session, results)));
                    conn = Some((session, c));
                    ok
                }
            },
        };
        if !ok {
            return;
        }
    }
}

/// The part of `rtmp::Conn` that answers the session: connect, publish and play requests are
/// accepted or refused by the same rules, media becomes the FLV tags the ingest would get.
#[derive(Default)]
struct FuzzConn {
    publishing: bool,
    connect_query: String,
}

impl FuzzConn {
    /// Handles results as `Conn::apply` does; false where the server would end the connection.
    fn apply(&mut self, session: &mut ServerSession, results: Vec<ServerSessionResult>) -> bool {
        let mut queue: VecDeque<ServerSessionResult> = results.into();
        while let Some(r) = queue.pop_front() {
            let ServerSessionResult::RaisedEvent(ev) = r else {
                continue;
            };
            match self.on_event(session, ev) {
                Ok(more) => queue.extend(more),
                Err(_) => return false,
            }
        }
        true
    }

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        ev: ServerSessionEvent,
    ) -> Result<Vec<ServerSessionResult>, rml_rtmp::sessions::ServerSessionError> {
        match ev {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let (app, query) = crate::rtmp::split_name(&app_name);
                self.connect_query = query.to_owned();
                if app == crate::config::Config::default().rtmp_app {
                    session.accept_request(request_id)
                } else {
                    session.reject_request(request_id, "NetConnection.Connect.Rejected", "no")
                }
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                if self.publishing || !self.admits(&stream_key) {
                    return session.reject_request(request_id, "NetStream.Publish.BadName", "no");
                }
                self.publishing = true;
                session.accept_request(request_id)
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                if !self.admits(&stream_key) {
                    return session.reject_request(
                        request_id,
                        "NetStream.Play.StreamNotFound",
                        "no",
                    );
                }
                session.accept_request(request_id)
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } if self.publishing => {
                ingest_tag(flv::TAG_VIDEO, timestamp.value, &data);
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } if self.publishing => {
                ingest_tag(flv::TAG_AUDIO, timestamp.value, &data);
                Ok(Vec::new())
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.publishing = false;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A stream key the engine would take: the name part must be valid; the query parameters
    /// are what hooks get.
    fn admits(&self, stream_key: &str) -> bool {
        let (name, query) = crate::rtmp::split_name(stream_key);
        let _ = crate::rtmp::query_params(&format!("{}&{}", self.connect_query, query));
        crate::engine::valid_name(name).is_ok()
    }
}

/// The FLV tag the RTMP ingest builds from a media message, read back as `flvdemux` would get it.
fn ingest_tag(kind: u8, ts: u32, body: &[u8]) {
    let tag = flv::tag(kind, ts, body);
    if body.len() < 1 << 24 {
        let (tags, used) = flv::parse(&tag);
        assert_eq!(used, tag.len());
        assert_eq!(tags.len(), 1);
        assert_eq!(&tags[0].body[..], body);
    }
}

/// `flv`: FLV bytes cut into tags, Annex B cut into NAL units, and every builder in
/// `rtmp::flv` fed with pieces of the input. Round trips must give back what went in: each tag
/// through [`flv::tag`] and [`flv::parse`], and each message through [`flv::chunk`] and
/// rml_rtmp's chunk deserializer (what a viewer's client does with it).
pub fn flv(data: &[u8]) {
    let (tags, used) = flv::parse(data);
    assert!(used <= data.len());
    for t in &tags {
        let _ = (t.is_keyframe(), t.is_sequence_header());
        let again = flv::tag(t.kind, t.ts, &t.body);
        let (back, n) = flv::parse(&again);
        assert_eq!(n, again.len());
        assert_eq!(back.as_slice(), std::slice::from_ref(t), "tag round trip");
    }

    let nals = flv::nal_units(data);
    for n in &nals {
        assert!(n.len() <= data.len());
    }
    let _ = flv::avc_frame(&nals, data.first().is_some_and(|b| b & 1 == 1), 0);
    let (a, b) = data.split_at(data.len() / 2);
    let _ = flv::avc_sequence_header(a, b);
    let _ = flv::aac_body(data, data.len() % 2 == 0);

    // A message chunked as the shared RTMP output does, then read back by a client.
    if let [csid, type_id, size, ts0, ts1, ts2, ts3, body @ ..] = data {
        let csid = u32::from(3 + csid % 61);
        let chunk_size = 1 + usize::from(*size) * 16;
        let ts = u32::from_be_bytes([*ts0, *ts1, *ts2, *ts3]);
        let bytes = flv::chunk(csid, *type_id, ts, 1, body, chunk_size);
        let mut reader = ChunkDeserializer::new();
        reader
            .set_max_chunk_size(chunk_size)
            .expect("a valid chunk size");
        let message = reader
            .get_next_message(&bytes)
            .expect("our chunks deserialize")
            .expect("one whole message");
        assert_eq!(&message.data[..], body, "chunk round trip");
        assert_eq!(message.type_id, *type_id);
        assert_eq!(message.timestamp.value, ts);
        assert_eq!(message.message_stream_id, 1);
    }
}

/// The REST routes the `rest_body` target posts to: every POST route in `src/api/` except
/// `/rest-api/pull/rtmp/pull`, which starts network pulls. Recording and snapshot requests are
/// safe here: the fuzzed server has no streams, so they end at the stream lookup.
pub const REST_ROUTES: [&str; 18] = [
    "/rest-api/stream/find_all",
    "/rest-api/stream/find",
    "/rest-api/stream/terminate",
    "/rest-api/stream/event/send",
    "/rest-api/connection/find_all",
    "/rest-api/connection/terminate",
    "/rest-api/data/send",
    "/rest-api/pull/rtmp/find_all",
    "/rest-api/pull/rtmp/terminate",
    "/rest-api/room/find_all",
    "/rest-api/room/find",
    "/rest-api/room/terminate",
    "/rest-api/stream/startRecording",
    "/rest-api/recorder/startup",
    "/rest-api/stream/stopRecording",
    "/rest-api/recorder/terminate",
    "/rest-api/recorder/find_all",
    "/rest-api/stream/snapshot",
];

/// One runtime and one router for every input: building them per input would cost more than
/// the request, and the router's state (no streams, no sessions) does not change between inputs.
struct RestFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// Kept so the server never looks stopped.
    _stop: tokio::sync::watch::Sender<bool>,
}

fn rest_fixture() -> &'static RestFixture {
    static FIXTURE: std::sync::OnceLock<RestFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime builds");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let router = {
            let _in_runtime = runtime.enter();
            let state = crate::server::AppState::new(
                crate::config::Config::default(),
                "fuzz".into(),
                stop_rx,
            );
            crate::server::router(state)
        };
        RestFixture {
            runtime,
            router,
            _stop: stop,
        }
    })
}

/// `rest_body`: a JSON POST to the REST route the first byte picks, with the rest as the body,
/// through the real router. No input may make the server fail (5xx).
pub fn rest_body(data: &[u8]) {
    use axum::http::{header, Method, Request};
    use tower::ServiceExt;
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = REST_ROUTES[usize::from(pick) % REST_ROUTES.len()];
    let fixture = rest_fixture();
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request from a fixed path and header");
    let response = match fixture
        .runtime
        .block_on(fixture.router.clone().oneshot(request))
    {
        Ok(r) => r,
        Err(never) => match never {},
    };
    assert!(
        !response.status().is_server_error(),
        "POST {path} answered {} for {:?}",
        response.status(),
        String::from_utf8_lossy(body)
    );
}

/// `stream_name`: names as RTMP clients send them. An optional first line is the `connect`
/// application (`app?query`), the rest a publish/play stream key (`name?query`); both are split
/// as `rtmp::Conn` does, their queries become hook parameters, and the name is validated.
pub fn stream_name(data: &[u8]) {
    // AMF0 strings are UTF-8 (rml_amf0 refuses anything else).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (app, key) = text.split_once('\n').unwrap_or(("live", text));
    let (_, connect_query) = crate::rtmp::split_name(app);
    let (name, query) = crate::rtmp::split_name(key);
    assert!(!name.contains('?'), "the name ends at the first '?'");
    if key.contains('?') {
        assert_eq!(format!("{name}?{query}"), key, "split loses nothing");
    }
    let params = crate::rtmp::query_params(&format!("{connect_query}&{query}"));
    let map = params.as_object().expect("query parameters are an object");
    assert!(map.values().all(serde_json::Value::is_string));
    if crate::engine::valid_name(name).is_ok() {
        assert!((1..=255).contains(&name.len()), "{} bytes", name.len());
        assert!(!name.chars().any(char::is_control));
    }
}
