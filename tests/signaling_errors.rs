//! Bad input over the signaling socket gets a precise WCS-style answer and harms nothing else:
//! malformed JSON, unknown messages, bad SDP, names in use, unknown streams, clients that vanish
//! mid-negotiation or go silent, peers that never connect.

mod common;

use serde_json::json;
use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(15);

use common::LONELY_OFFER;

fn publish_msg(msid: &str, name: &str, sdp: &str) -> serde_json::Value {
    json!({"mediaSessionId": msid, "name": name, "published": true, "hasVideo": true, "hasAudio": true,
           "status": "PENDING", "record": false, "mediaProvider": "WebRTC", "sdp": sdp})
}

async fn assert_clean(addr: std::net::SocketAddr) {
    common::eventually(T, "everything released", || async move {
        common::metric(addr, "streamgate_pipelines").await == 0.0
            && common::metric(addr, "streamgate_streams").await == 0.0
            && common::metric(addr, "streamgate_media_sessions").await == 0.0
            && common::metric(addr, "streamgate_signaling_sessions").await == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_session_goes_on() {
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    let mut c = WcsConnection::connect(&url).await.unwrap();
    let fail = |f: &serde_json::Value| f["message"] == "fail";

    c.send_raw("{this is not json").await.unwrap();
    let f = c.wait(T, fail).await.unwrap();
    assert!(
        f["data"][0]["info"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON"),
        "{f}"
    );

    c.send_raw(r#"{"message":"launchRocket","data":[{}]}"#)
        .await
        .unwrap();
    let f = c.wait(T, fail).await.unwrap();
    assert_eq!(f["data"][0]["info"], "Unknown message \"launchRocket\"");
    assert_eq!(f["data"][0]["apiMethod"], "launchRocket");

    c.send(
        "publishStream",
        publish_msg("m1", "s1", "v=0\r\nthis is not sdp\r\n"),
    )
    .await
    .unwrap();
    let st = c.wait_status("m1", T).await.unwrap();
    assert_eq!(st["status"], "FAILED");
    assert!(st["info"].as_str().unwrap().starts_with("Bad SDP"), "{st}");

    c.send(
        "playStream",
        publish_msg("m2", "nobody-publishes-this", LONELY_OFFER),
    )
    .await
    .unwrap();
    let st = c.wait_status("m2", T).await.unwrap();
    assert_eq!(
        (st["status"].as_str(), st["info"].as_str()),
        (Some("FAILED"), Some("Stream not found"))
    );

    // The same socket still works: data is accepted, ping is answered.
    c.send(
        "sendData",
        json!({"operationId": "op1", "payload": {"hello": 1}}),
    )
    .await
    .unwrap();
    let f = c
        .wait(T, |f| f["message"] == "DataStatusEvent")
        .await
        .unwrap();
    assert_eq!(
        f["data"][0],
        json!({"operationId": "op1", "status": "ACCEPTED"})
    );
    c.send("ping", serde_json::Value::Null).await.unwrap();
    c.wait(T, |f| f["message"] == "pong").await.unwrap();

    // And a real publish on the same server works.
    let mut pc = WcsConnection::connect(&url).await.unwrap();
    let p = client::publish(&mut pc, "ok", &PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(
        pc.wait_status(&p.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );
    drop(p);
    c.close().await;
    pc.close().await;
    assert_clean(app.http_addr).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_in_use_and_unknown_stream() {
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    let mut a = WcsConnection::connect(&url).await.unwrap();
    let opts = PublishOptions {
        codec: Codec::Vp8,
        ..Default::default()
    };
    let first = client::publish(&mut a, "taken", &opts).await.unwrap();
    assert_eq!(
        a.wait_status(&first.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );

    let mut b = WcsConnection::connect(&url).await.unwrap();
    let err = match client::publish(&mut b, "taken", &opts).await {
        Ok(_) => panic!("second publisher of the same name was accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(err, "FAILED Stream name is already in use");

    let err = match client::play(
        &mut b,
        "no-such-stream",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    {
        Ok(_) => panic!("playing an unknown stream was accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(err, "FAILED Stream not found");

    // The first publisher was not disturbed.
    let (status, body) = common::http(
        app.http_addr,
        "POST",
        "/rest-api/stream/find",
        r#"{"name":"taken"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"PUBLISHING\""), "{body}");
    drop(first);
    a.close().await;
    b.close().await;
    assert_clean(app.http_addr).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_negotiation_leaves_nothing() {
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    for i in 0..3 {
        let mut c = WcsConnection::connect(&url).await.unwrap();
        c.send(
            "publishStream",
            publish_msg(&format!("v{i}"), &format!("vanish{i}"), LONELY_OFFER),
        )
        .await
        .unwrap();
        // Gone before the answer.
        drop(c);
    }
    assert_clean(app.http_addr).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_connects_fails_with_ice_timeout() {
    let mut cfg = common::config();
    cfg.ice.connect_timeout = Duration::from_secs(2);
    let app = common::start(cfg).await;
    let mut c = WcsConnection::connect(&common::ws_url(app.http_addr))
        .await
        .unwrap();
    c.send(
        "publishStream",
        publish_msg("lonely", "lonely", LONELY_OFFER),
    )
    .await
    .unwrap();
    c.wait(T, |f| f["message"] == "setRemoteSDP").await.unwrap();
    let st = c.wait_status("lonely", T).await.unwrap();
    assert_eq!(
        (st["status"].as_str(), st["info"].as_str()),
        (Some("FAILED"), Some("Failed by ICE timeout")),
        "{st}"
    );
    let addr = app.http_addr;
    common::eventually(T, "stream released", || async move {
        common::metric(addr, "streamgate_streams").await == 0.0
            && common::metric(addr, "streamgate_pipelines").await == 0.0
    })
    .await;
    c.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_and_its_stream_ends() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut cfg = common::config();
    cfg.signaling.idle_timeout = Duration::from_secs(1);
    let app = common::start(cfg).await;
    let addr = app.http_addr;
    // A raw client that completes the handshake, starts a publish, then never says anything again
    // (no pong): the server must drop it and end its stream while the socket is still open.
    let (mut ws, _) = tokio_tungstenite::connect_async(common::ws_url(addr))
        .await
        .unwrap();
    let hello = json!({"message": "connection", "data": [{"appKey": "defaultApp"}]}).to_string();
    ws.send(Message::Text(hello.into())).await.unwrap();
    let publish =
        json!({"message": "publishStream", "data": [publish_msg("quiet", "quiet", LONELY_OFFER)]})
            .to_string();
    ws.send(Message::Text(publish.into())).await.unwrap();
    loop {
        let got = tokio::time::timeout(T, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = got.to_text().unwrap().to_owned();
        if text.contains("getUserData") {
            break;
        }
        assert!(
            text.contains("\"ping\""),
            "unexpected frame before getUserData: {text}"
        );
    }
    common::eventually(T, "stream registered", || async move {
        common::metric(addr, "streamgate_streams").await == 1.0
    })
    .await;
    assert_clean(addr).await;
    drop(ws);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_port_range_and_announced_address_show_in_the_answer() {
    let mut cfg = common::config();
    cfg.ice.port_min = 41000;
    cfg.ice.port_max = 41010;
    // A documentation address (RFC 5737): announced in the answer, never contacted.
    cfg.ice.announce_address = Some("203.0.113.7".parse().unwrap());
    let app = common::start(cfg).await;
    let mut c = WcsConnection::connect(&common::ws_url(app.http_addr))
        .await
        .unwrap();
    c.send("publishStream", publish_msg("ports", "ports", LONELY_OFFER))
        .await
        .unwrap();
    let f = c.wait(T, |f| f["message"] == "setRemoteSDP").await.unwrap();
    let answer = f["data"][1].as_str().unwrap().to_owned();
    let candidates: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "{answer}");
    for cand in &candidates {
        let port: u16 = cand.split(' ').nth(5).unwrap().parse().unwrap();
        assert!(
            (41000..=41010).contains(&port),
            "candidate outside the port range: {cand}"
        );
    }
    assert!(
        candidates.iter().any(|c| c.contains(" 127.0.0.1 ")),
        "{answer}"
    );
    assert!(
        candidates.iter().any(|c| c.contains(" 203.0.113.7 ")),
        "{answer}"
    );
    c.close().await;
    app.shutdown().await;
}
