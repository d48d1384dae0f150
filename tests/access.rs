//! Access control without a back end: REST API keys (bearer or basic) guard every REST method, and
//! signed tokens admit to one room with a role: an expired token or one for another room is
//! refused, an observer cannot publish, an interviewer's token mints invites.

mod common;

use serde_json::{json, Value};
use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

async fn request(
    addr: std::net::SocketAddr,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    common::http_with(addr, "POST", path, &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_methods_need_an_api_key_when_keys_are_configured() {
    let mut cfg = common::config();
    cfg.rest.api_keys = vec!["key-1".into()];
    let app = common::start(cfg).await;
    let url = common::ws_url(app.http_addr);
    let mut c = WcsConnection::connect(&url).await.unwrap();
    let p = client::publish(&mut c, "guarded", &PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(
        c.wait_status(&p.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );

    // An empty terminate would stop everything: without a key it is refused and nothing stops.
    let (code, body) = request(app.http_addr, "/rest-api/stream/terminate", None, "").await;
    assert_eq!(code, 401, "{body}");
    let (code, _) = request(
        app.http_addr,
        "/rest-api/stream/find_all",
        Some("Bearer wrong"),
        "{}",
    )
    .await;
    assert_eq!(code, 401);
    assert!(app
        .state()
        .engine
        .stream_of(Some("guarded"), None)
        .is_some());
    let (code, body) = request(
        app.http_addr,
        "/rest-api/stream/find_all",
        Some("Bearer key-1"),
        "{}",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("guarded"));
    // Basic, with the key as the password.
    let (code, body) = request(
        app.http_addr,
        "/rest-api/stream/terminate",
        Some("Basic YWRtaW46a2V5LTE="),
        "",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("terminate answers JSON");
    assert_eq!(answer["terminated"], 1);
    let st = c
        .wait(T, |f| {
            f["message"] == "notifyStreamStatusEvent" && f["data"][0]["status"] == "UNPUBLISHED"
        })
        .await
        .unwrap();
    assert_eq!(st["data"][0]["info"], "Stopped by rest /terminate");
    // Health stays open for load balancers.
    assert!(common::http_get(app.http_addr, "/health")
        .await
        .contains("ok"));
    drop(p);
    app.shutdown().await;
}

async fn mint(addr: std::net::SocketAddr, body: Value) -> String {
    let (code, text) = request(
        addr,
        "/rest-api/token/mint",
        Some("Bearer key-1"),
        &body.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

async fn join(c: &mut WcsConnection, op: &str, room: &str) -> Value {
    common::room_command(c, op, "join", json!({"name": room})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_admit_to_one_room_with_a_role() {
    let mut cfg = common::config();
    cfg.rest.api_keys = vec!["key-1".into()];
    cfg.auth.secret = Some("token-secret".into());
    let app = common::start(cfg).await;
    let (addr, url) = (app.http_addr, common::ws_url(app.http_addr));

    // No token, a forged one, an expired one: refused at connect.
    let err = WcsConnection::connect_with(&url, "roomApp", Value::Null)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("Restricted access"), "{err}");
    let err = WcsConnection::connect_with(
        &url,
        "roomApp",
        json!({"token": "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("Restricted access"), "{err}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = app
        .state()
        .tokens
        .mint(streamgate::auth::Claims {
            sub: "late".into(),
            room: Some("iv-1".into()),
            role: streamgate::auth::Role::Candidate,
            stream: None,
            exp: now - 60,
            iat: 0,
        })
        .unwrap();
    assert!(
        WcsConnection::connect_with(&url, "roomApp", json!({"token": expired}))
            .await
            .is_err()
    );

    // The interviewer joins their room but not another, and invites an observer.
    let host = mint(
        addr,
        json!({"role": "interviewer", "room": "iv-1", "login": "emma"}),
    )
    .await;
    let mut emma =
        WcsConnection::connect_with(&url, "roomApp", json!({"login": "emma", "token": host}))
            .await
            .unwrap();
    assert_eq!(
        join(&mut emma, "j0", "iv-2").await["info"],
        "Restricted access"
    );
    assert_eq!(join(&mut emma, "j1", "iv-1").await["status"], "ACCEPTED");
    let o = PublishOptions::default();
    let cam = client::publish_with_custom(&mut emma, "emma-cam", &o, json!({"name": "iv-1"}))
        .await
        .unwrap();
    assert_eq!(
        emma.wait_status(&cam.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );
    // Not into another room's name.
    let other =
        client::publish_with_custom(&mut emma, "emma-other", &o, json!({"name": "iv-2"})).await;
    assert!(other
        .err()
        .unwrap()
        .to_string()
        .contains("Restricted access"));

    // Invites need the interviewer's token, not an API key; a candidate's token cannot invite.
    let (code, text) = request(
        addr,
        "/rest-api/token/invite",
        None,
        &json!({"token": host, "role": "observer", "login": "olga"}).to_string(),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["room"], "iv-1");
    let observer = v["token"].as_str().unwrap().to_owned();
    let cand = mint(addr, json!({"role": "candidate", "room": "iv-1"})).await;
    let (code, _) = request(
        addr,
        "/rest-api/token/invite",
        None,
        &json!({"token": cand, "role": "observer"}).to_string(),
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = request(
        addr,
        "/rest-api/token/mint",
        None,
        r#"{"role":"interviewer"}"#,
    )
    .await;
    assert_eq!(code, 401);

    // The observer joins and watches, but cannot publish.
    let mut olga =
        WcsConnection::connect_with(&url, "roomApp", json!({"login": "olga", "token": observer}))
            .await
            .unwrap();
    assert_eq!(join(&mut olga, "j2", "iv-1").await["status"], "ACCEPTED");
    let refused =
        client::publish_with_custom(&mut olga, "olga-cam", &o, json!({"name": "iv-1"})).await;
    assert!(refused
        .err()
        .unwrap()
        .to_string()
        .contains("Restricted access"));
    assert!(app
        .state()
        .engine
        .stream_of(Some("olga-cam"), None)
        .is_none());
    let viewer = client::play(
        &mut olga,
        "emma-cam",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .unwrap();
    viewer.wait_frames(10, T).await.unwrap();

    // RTMP carries the token in the URL.
    let rtmp = |q: &str| format!("rtmp://{}/live/iv-rtmp{q}", app.rtmp_addr);
    let enc = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"];
    let mut ff = common::ffmpeg_live("320x240", 44100, 3, &enc, &rtmp(""));
    let status = tokio::task::spawn_blocking(move || ff.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !status.success(),
        "an RTMP publish without a token is refused"
    );
    let pub_token = mint(addr, json!({"role": "publisher", "stream": "iv-rtmp"})).await;
    let mut ff = common::ffmpeg_live(
        "320x240",
        44100,
        30,
        &enc,
        &rtmp(&format!("?token={pub_token}")),
    );
    common::eventually(T, "the RTMP publisher with a token is admitted", || async {
        app.state()
            .engine
            .stream_of(Some("iv-rtmp"), None)
            .is_some()
    })
    .await;
    let _ = ff.kill();
    let _ = ff.wait();
    drop((viewer, cam));
    app.shutdown().await;
}
