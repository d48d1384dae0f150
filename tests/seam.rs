//! The engine's seam, seen from outside: one admission point every publish and play passes through
//! on every protocol (RTMP holds its answer until admission decides), resolvers that make a stream
//! when a name nobody publishes is asked for, and one event stream that tells what happened.

mod common;

use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamgate::client::{self, http, PublishOptions, Via, WcsConnection};
use streamgate::engine::media::Codec;
use streamgate::engine::{
    Action, Admission, AdmissionRequest, Admitted, BoxFuture, Engine, EngineError, EngineEvent,
    Resolver,
};

const T: Duration = Duration::from_secs(20);

/// Refuses names starting with `deny-` and takes its time over every answer.
struct Gate {
    asked: AtomicUsize,
    delay: Duration,
}

impl Admission for Gate {
    fn admit(&self, req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if req.name.starts_with("deny-") {
                let what = match req.action {
                    Action::Publish => "publish",
                    Action::Play => "play",
                };
                Err(EngineError::Denied(format!(
                    "{what} of {} is not allowed",
                    req.name
                )))
            } else {
                Ok(Admitted::default())
            }
        })
    }
}

fn small() -> PublishOptions {
    PublishOptions {
        width: 320,
        height: 240,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_passes_one_admission_point() {
    let app = common::start(common::config()).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let gate = Arc::new(Gate {
        asked: AtomicUsize::new(0),
        delay: Duration::from_millis(700),
    });
    app.state().engine.set_admission(gate.clone());

    // WCS signaling: refused with the reason as the status info.
    let mut c = WcsConnection::connect(&common::ws_url(addr)).await.unwrap();
    let msid = "m-deny";
    c.send(
        "publishStream",
        json!({"mediaSessionId": msid, "name": "deny-ws", "published": true, "sdp": common::LONELY_OFFER}),
    )
    .await
    .unwrap();
    let st = c.wait_status(msid, T).await.unwrap();
    assert_eq!(st["status"], "FAILED");
    assert_eq!(st["info"], "publish of deny-ws is not allowed");

    // WHIP: 403 with the reason.
    let a = http::request(
        addr,
        "POST",
        "/whip/deny-whip",
        Some("application/sdp"),
        common::LONELY_OFFER,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("not allowed"));

    // RTMP: the publish answer waits for admission, and a refusal fails the encoder.
    let started = Instant::now();
    let mut refused = common::ffmpeg_live(
        "320x240",
        48000,
        10,
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        &format!("rtmp://{rtmp}/live/deny-rtmp"),
    );
    let status = tokio::task::spawn_blocking(move || refused.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    assert!(started.elapsed() >= Duration::from_millis(700));

    // Allowed names go through on every protocol, after the same wait.
    let (_pc, publisher) = common::publishing(&common::ws_url(addr), "ok-ws", &small()).await;
    let mut rtmp_pub = common::ffmpeg_live(
        "320x240",
        48000,
        30,
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        &format!("rtmp://{rtmp}/live/ok-rtmp"),
    );
    common::eventually(T, "RTMP stream admitted", || async move {
        common::http(
            addr,
            "POST",
            "/rest-api/stream/find",
            r#"{"name":"ok-rtmp"}"#,
        )
        .await
        .0 == 200
    })
    .await;
    let player = client::play_via(
        Via::Whip(addr),
        "ok-rtmp",
        &client::PlayOptions {
            codecs: vec![Codec::H264],
            decode: true,
            ice_addresses: vec!["127.0.0.1".parse().unwrap()],
        },
    )
    .await
    .unwrap();
    player.wait_frames(10, T).await.unwrap();
    // WS publish + refused WS publish, WHIP, two RTMP publishes, WHEP play: each asked once.
    assert_eq!(gate.asked.load(Ordering::SeqCst), 6);
    drop(player);
    drop(publisher);
    let _ = rtmp_pub.kill();
    let _ = rtmp_pub.wait();
    app.shutdown().await;
}

/// Makes stream `ondemand` when it is asked for, by publishing a test pattern to the server.
struct OnDemand {
    url: String,
    made: Arc<std::sync::Mutex<Vec<(WcsConnection, client::TestPublisher)>>>,
}

impl Resolver for OnDemand {
    fn resolve(&self, _engine: &Engine, name: &str) -> Option<BoxFuture<Result<(), EngineError>>> {
        if name != "ondemand" {
            return None;
        }
        let (url, made) = (self.url.clone(), self.made.clone());
        Some(Box::pin(async move {
            let p = common::publishing(&url, "ondemand", &small()).await;
            made.lock().unwrap().push(p);
            Ok(())
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_makes_a_stream_when_it_is_asked_for() {
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    let made = Arc::default();
    app.state().engine.add_resolver(Arc::new(OnDemand {
        url: url.clone(),
        made: Arc::clone(&made),
    }));
    let mut events = app.state().engine.subscribe();
    // Nobody publishes it; playing it makes it.
    let (_c, player) = common::playing(&url, "ondemand", &[Codec::H264]).await;
    let s = player.wait_frames(10, T).await.unwrap();
    assert_eq!(s.size, Some((320, 240)));
    // Other names still get the default answer.
    let mut c = WcsConnection::connect(&url).await.unwrap();
    let p = client::play(
        &mut c,
        "nobody",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await;
    assert!(
        p.is_err() || {
            let st = c
                .wait_status(&p.unwrap().media_session_id, T)
                .await
                .unwrap();
            st["status"] == "FAILED" && st["info"] == "Stream not found"
        }
    );

    // The event stream told the story: the stream was published, then a viewer played it.
    let mut seen = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
        seen.push(e);
    }
    let published = seen
        .iter()
        .position(|e| matches!(e, EngineEvent::Published { name, .. } if name == "ondemand"));
    let playing = seen
        .iter()
        .position(|e| matches!(e, EngineEvent::Playing { name, .. } if name == "ondemand"));
    assert!(
        matches!((published, playing), (Some(a), Some(b)) if a < b),
        "{seen:?}"
    );
    drop(player);
    made.lock().unwrap().clear();
    let deadline = Instant::now() + T;
    let mut ended = false;
    while Instant::now() < deadline && !ended {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            ended = matches!(e, EngineEvent::Unpublished { ref name, .. } if name == "ondemand");
        }
    }
    assert!(ended, "no Unpublished event");
    app.shutdown().await;
}
