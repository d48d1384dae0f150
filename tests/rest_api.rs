//! The WCS-shaped REST API against a live stream: find_all, find (and its 404), terminate (the
//! publisher and its viewers are told), connection listing, data to a client, stream events from a
//! publisher to its viewers, and clear 400s for malformed bodies.

mod common;

use serde_json::{json, Value};
use std::time::Duration;
use streamgate::client::PublishOptions;
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_against_a_live_stream() {
    let app = common::start(common::config()).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let (mut pc, publisher) = common::publishing(&url, "rest", &PublishOptions::default()).await;
    let (mut vc, player) = common::playing(&url, "rest", &[Codec::H264]).await;
    player.wait_frames(10, T).await.unwrap();

    // find_all lists the publisher and the viewer with WCS's fields.
    let (status, body) = common::http(addr, "POST", "/rest-api/stream/find_all", "").await;
    assert_eq!(status, 200);
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(all.len(), 2, "{body}");
    let publ = &all[0];
    assert_eq!(publ["name"], "rest");
    assert_eq!(publ["published"], true);
    assert_eq!(publ["mediaType"], "publish");
    assert_eq!(publ["mediaProvider"], "WebRTC");
    assert_eq!(publ["videoCodec"], "H264");
    assert_eq!(publ["audioCodec"], "opus");
    assert_eq!(
        (publ["width"].as_i64(), publ["height"].as_i64()),
        (Some(640), Some(360))
    );
    assert_eq!(all[1]["mediaType"], "play");
    assert_eq!(all[1]["status"], "PLAYING");

    // find by mediaSessionId, and the 404.
    let (status, body) = common::http(
        addr,
        "POST",
        "/rest-api/stream/find",
        &json!({"mediaSessionId": publisher.media_session_id}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        common::http(addr, "POST", "/rest-api/stream/find", r#"{"name":"nope"}"#).await;
    assert_eq!(status, 404);
    assert!(body.contains("Stream not found"), "{body}");
    let (status, body) = common::http(addr, "POST", "/rest-api/stream/find", "{broken").await;
    assert_eq!(status, 400);
    assert!(body.contains("Malformed JSON"), "{body}");

    // Connections, and data to one of them.
    let (status, body) = common::http(addr, "POST", "/rest-api/connection/find_all", "").await;
    assert_eq!(status, 200);
    let conns: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(conns.len(), 2);
    let sid = vc.session_id().to_owned();
    assert!(conns.iter().any(|c| c["sessionId"] == sid.as_str()));
    let (status, _) = common::http(
        addr,
        "POST",
        "/rest-api/data/send",
        &json!({"sessionId": sid, "operationId": "x1", "payload": {"note": "hi"}}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let f = vc.wait(T, |f| f["message"] == "OnDataEvent").await.unwrap();
    assert_eq!(f["data"][0]["payload"]["note"], "hi");
    let (status, _) = common::http(
        addr,
        "POST",
        "/rest-api/data/send",
        r#"{"sessionId":"ghost","payload":{}}"#,
    )
    .await;
    assert_eq!(status, 404);

    // A publisher's stream events reach the viewer, with the viewer's own media session id.
    pc.send(
        "sendStreamEvent",
        json!({"mediaSessionId": publisher.media_session_id, "type": "audioMuted", "payload": {}}),
    )
    .await
    .unwrap();
    let f = vc
        .wait(T, |f| f["message"] == "notifyStreamEvent")
        .await
        .unwrap();
    assert_eq!(f["data"][0]["type"], "audioMuted");
    assert_eq!(
        f["data"][0]["mediaSessionId"],
        player.media_session_id.as_str()
    );
    let (_, body) = common::http(
        addr,
        "POST",
        "/rest-api/stream/find",
        r#"{"name":"rest","published":true}"#,
    )
    .await;
    assert!(body.contains(r#""audioState":{"muted":true}"#), "{body}");

    // Terminate by name: the publisher and the viewer are both told.
    let (status, _) = common::http(
        addr,
        "POST",
        "/rest-api/stream/terminate",
        r#"{"name":"rest","published":true}"#,
    )
    .await;
    assert_eq!(status, 200);
    let st = pc
        .wait_status(&publisher.media_session_id, T)
        .await
        .unwrap();
    assert_eq!(
        (st["status"].as_str(), st["info"].as_str()),
        (Some("UNPUBLISHED"), Some("Stopped by rest /terminate"))
    );
    let st = vc.wait_status(&player.media_session_id, T).await.unwrap();
    assert_eq!(
        (st["status"].as_str(), st["info"].as_str()),
        (Some("STOPPED"), Some("Stopped by publisher stop"))
    );
    let (status, _) = common::http(
        addr,
        "POST",
        "/rest-api/stream/terminate",
        r#"{"name":"rest"}"#,
    )
    .await;
    assert_eq!(status, 404);
    common::eventually(T, "pipelines released", || async move {
        common::metric(addr, "streamgate_pipelines").await == 0.0
    })
    .await;
    drop((publisher, player));
    app.shutdown().await;
}
