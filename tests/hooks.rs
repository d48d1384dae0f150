//! REST hooks against a real back end (an HTTP server in the test): it allows, refuses with a
//! reason, renames a stream with OVERWRITE, stalls past the timeout (LOG goes on, FAIL refuses),
//! stops a stream through its keep-alive, and hears every event, signed. RTMP and WHIP clients go
//! through the same hooks.

mod common;

use common::backend::{Answer, Backend};
use serde_json::{json, Value};
use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};

const T: Duration = Duration::from_secs(20);

fn hooked(backend: &Backend) -> streamgate::config::Config {
    let mut c = common::config();
    for app in ["defaultApp", "flashStreamingApp"] {
        c.hooks.apps.insert(
            app.into(),
            streamgate::hooks::AppConfig::Url(backend.url.clone()),
        );
    }
    c.hooks.timeout = Duration::from_secs(1);
    c.hooks.send_hash = true;
    c.hooks.secret_key = "hook-secret".into();
    c
}

fn login(body: &Value) -> &str {
    body["custom"]["login"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_end_allows_refuses_with_its_reason_renames_and_hears_events() {
    let backend = Backend::start().await;
    backend.rule(|m, b| {
        (m == "connect" && login(b) == "mallory")
            .then(|| Answer::Status(403, r#"{"status":403,"reason":"Wrong credentials"}"#.into()))
    });
    backend.rule(|m, b| {
        (m == "connect" && login(b) == "alice").then(|| {
            let mut a = b.clone();
            a["restClientConfig"] = json!({"publishStream": {"restPolicy": "OVERWRITE",
                                                             "restOverwrite": "name"}});
            Answer::Json(a)
        })
    });
    backend.rule(|m, b| {
        (m == "publishStream" && b["name"] == "deny-me").then(|| Answer::Status(403, String::new()))
    });
    backend.rule(|m, b| {
        (m == "publishStream" && b["name"] == "rename-me").then(|| {
            let mut a = b.clone();
            a["name"] = json!("renamed");
            Answer::Json(a)
        })
    });
    let app = common::start(hooked(&backend)).await;
    let url = common::ws_url(app.http_addr);

    // Refused with the back end's reason, and the socket is closed.
    let err = WcsConnection::connect_with(&url, "defaultApp", json!({"login": "mallory"}))
        .await
        .err()
        .expect("mallory is refused");
    assert!(err.to_string().contains("Wrong credentials"), "{err}");

    let mut c = WcsConnection::connect_with(&url, "defaultApp", json!({"login": "alice"}))
        .await
        .unwrap();
    let o = PublishOptions::default();
    // A plain 403 gives the HTTP reason phrase.
    let denied = client::publish(&mut c, "deny-me", &o).await;
    assert!(denied
        .err()
        .expect("refused")
        .to_string()
        .contains("Forbidden"));
    assert!(app
        .state()
        .engine
        .stream_of(Some("deny-me"), None)
        .is_none());

    // OVERWRITE renames the stream.
    let p = client::publish(&mut c, "rename-me", &o).await.unwrap();
    let st = c.wait_status(&p.media_session_id, T).await.unwrap();
    assert_eq!(st["status"], "PUBLISHING", "{st}");
    assert_eq!(st["name"], "renamed");
    assert!(app
        .state()
        .engine
        .stream_of(Some("renamed"), None)
        .is_some());
    assert!(app
        .state()
        .engine
        .stream_of(Some("rename-me"), None)
        .is_none());

    // availableStream answers with the strings the SDK compares.
    c.send(
        "availableStream",
        json!({"mediaSessionId": "q1", "name": "renamed"}),
    )
    .await
    .unwrap();
    let a = c
        .wait(T, |f| f["message"] == "availableStream")
        .await
        .unwrap();
    assert_eq!(a["data"][0]["status"], "true");
    c.send(
        "availableStream",
        json!({"mediaSessionId": "q2", "name": "nobody"}),
    )
    .await
    .unwrap();
    let a = c
        .wait(T, |f| f["message"] == "availableStream")
        .await
        .unwrap();
    assert_eq!(a["data"][0]["status"], "false");

    // sendData goes to OnDataEvent; a refusal reaches the client.
    backend.rule(|m, b| {
        (m == "OnDataEvent" && b["payload"]["bad"] == true)
            .then(|| Answer::Status(403, r#"{"status":403,"reason":"No spam"}"#.into()))
    });
    c.send(
        "sendData",
        json!({"operationId": "d1", "payload": {"bad": true}}),
    )
    .await
    .unwrap();
    let d = c
        .wait(T, |f| f["message"] == "DataStatusEvent")
        .await
        .unwrap();
    assert_eq!(d["data"][0]["status"], "FAILED");
    assert_eq!(d["data"][0]["info"], "No spam");

    c.send(
        "unPublishStream",
        json!({"mediaSessionId": p.media_session_id, "name": "renamed"}),
    )
    .await
    .unwrap();
    drop(p);
    c.close().await;

    // The events arrived, each signed with HMAC-MD5 of its body.
    common::eventually(T, "the events reach the back end", || {
        let calls = backend.calls();
        async move {
            let statuses: Vec<&str> = calls
                .iter()
                .filter(|c| c.method == "StreamStatusEvent" && c.body["name"] == "renamed")
                .filter_map(|c| c.body["status"].as_str())
                .collect();
            let conn: Vec<&str> = calls
                .iter()
                .filter(|c| c.method == "ConnectionStatusEvent")
                .filter_map(|c| c.body["status"].as_str())
                .collect();
            statuses.contains(&"PUBLISHING")
                && statuses.contains(&"UNPUBLISHED")
                && conn.contains(&"ESTABLISHED")
                && conn.contains(&"DISCONNECTED")
                && calls.iter().any(|c| c.method == "unPublishStream")
        }
    })
    .await;
    for call in backend.calls() {
        let want = streamgate::hooks::policy::signature("hook-secret", &call.raw);
        assert_eq!(
            call.authorization.as_deref(),
            Some(want.as_str()),
            "{}",
            call.method
        );
    }
    let publish = &backend.calls_to("publishStream")[0];
    assert_eq!(publish.body["appKey"], "defaultApp");
    assert_eq!(publish.body["mediaProvider"], "WebRTC");
    assert!(publish.body["sdp"].as_str().unwrap().starts_with("v=0"));

    // The delivery log shows the refusals.
    let (code, log) = common::http(
        app.http_addr,
        "POST",
        "/rest-api/hooks/find_all",
        r#"{"outcome":"refused"}"#,
    )
    .await;
    assert_eq!(code, 200);
    let log: Value = serde_json::from_str(&log).unwrap();
    let methods: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["method"].as_str())
        .collect();
    assert!(
        methods.contains(&"connect") && methods.contains(&"publishStream"),
        "{log}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_times_out_goes_on_under_log_and_refuses_under_fail() {
    let backend = Backend::start().await;
    backend.rule(|m, b| {
        (m == "connect" && login(b) == "strict").then(|| {
            let mut a = b.clone();
            a["restClientConfig"] = json!({"publishStream": {"restOnError": "FAIL"}});
            Answer::Json(a)
        })
    });
    backend.rule(|m, _| (m == "publishStream").then(|| Answer::Stall(Duration::from_secs(3))));
    let app = common::start(hooked(&backend)).await;
    let url = common::ws_url(app.http_addr);
    let o = PublishOptions::default();

    let mut lenient = WcsConnection::connect_with(&url, "defaultApp", json!({"login": "easy"}))
        .await
        .unwrap();
    let p = client::publish(&mut lenient, "slow-log", &o).await.unwrap();
    assert_eq!(
        lenient.wait_status(&p.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );

    let mut strict = WcsConnection::connect_with(&url, "defaultApp", json!({"login": "strict"}))
        .await
        .unwrap();
    let refused = client::publish(&mut strict, "slow-fail", &o).await;
    assert!(refused
        .err()
        .expect("refused")
        .to_string()
        .contains("Gateway Timeout"));
    assert!(app
        .state()
        .engine
        .stream_of(Some("slow-fail"), None)
        .is_none());
    drop(p);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_keep_alive_stops_the_stream() {
    let backend = Backend::start().await;
    backend.rule(|m, b| {
        (m == "connect").then(|| {
            let mut a = b.clone();
            a["restClientConfig"] = json!({"StreamKeepAliveEvent": {"restOnError": "FAIL"}});
            Answer::Json(a)
        })
    });
    backend.rule(|m, b| {
        (m == "StreamKeepAliveEvent" && b["name"] == "doomed")
            .then(|| Answer::Status(403, String::new()))
    });
    let mut cfg = hooked(&backend);
    cfg.hooks.keep_alive_interval = Duration::from_millis(500);
    let app = common::start(cfg).await;
    let url = common::ws_url(app.http_addr);
    let mut c = WcsConnection::connect(&url).await.unwrap();
    let o = PublishOptions::default();
    let keep = client::publish(&mut c, "kept", &o).await.unwrap();
    let doomed = client::publish(&mut c, "doomed", &o).await.unwrap();
    let st = c
        .wait(T, |f| {
            f["message"] == "notifyStreamStatusEvent"
                && f["data"][0]["mediaSessionId"] == doomed.media_session_id.as_str()
                && f["data"][0]["status"] == "UNPUBLISHED"
        })
        .await
        .unwrap();
    assert_eq!(st["data"][0]["info"], "Terminated by keep-alive");
    assert!(app.state().engine.stream_of(Some("kept"), None).is_some());
    // The other stream's keep-alives go on, allowed.
    common::eventually(T, "keep-alives of the kept stream", || {
        let calls = backend.calls_to("StreamKeepAliveEvent");
        async move { calls.iter().filter(|c| c.body["name"] == "kept").count() >= 2 }
    })
    .await;
    assert!(app.state().engine.stream_of(Some("kept"), None).is_some());
    drop((keep, doomed));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_and_whip_clients_are_refused_by_the_same_hooks() {
    let backend = Backend::start().await;
    backend.rule(|m, b| {
        (m == "connect" && b["appKey"] == "flashStreamingApp" && b["login"] == "mallory")
            .then(|| Answer::Status(403, String::new()))
    });
    backend.rule(|m, b| {
        (m == "publishStream" && b["name"] == "deny-rtmp")
            .then(|| Answer::Status(403, String::new()))
    });
    backend.rule(|m, b| {
        (m == "publishStream" && b["name"] == "deny-whip")
            .then(|| Answer::Status(403, r#"{"status":403,"reason":"Not today"}"#.into()))
    });
    let app = common::start(hooked(&backend)).await;

    // An RTMP publish the hook refuses: ffmpeg fails, and no stream exists.
    let rtmp = |path: &str| format!("rtmp://{}/live/{path}", app.rtmp_addr);
    for target in [
        rtmp("deny-rtmp?token=abc"),
        format!("rtmp://{}/live?login=mallory/anything", app.rtmp_addr),
    ] {
        let mut ff = common::ffmpeg_live(
            "320x240",
            44100,
            5,
            &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
            &target,
        );
        let status = tokio::task::spawn_blocking(move || ff.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!status.success(), "ffmpeg must fail for {target}");
    }
    assert!(app
        .state()
        .engine
        .stream_of(Some("deny-rtmp"), None)
        .is_none());
    assert!(backend
        .calls_to("connect")
        .iter()
        .any(|c| c.body["appKey"] == "flashStreamingApp" && c.body["login"] == "mallory"));
    let rtmp_publish = &backend.calls_to("publishStream")[0];
    assert_eq!(rtmp_publish.body["appKey"], "flashStreamingApp");
    assert_eq!(rtmp_publish.body["custom"]["params"]["token"], "abc");

    // An RTSP player the hook refuses (`playRTSP`) gets 403; one it lets through plays.
    let mut ff = common::ffmpeg_live(
        "320x240",
        44100,
        30,
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        &rtmp("cam"),
    );
    common::eventually(T, "the camera stream is published", || async {
        app.state().engine.stream_of(Some("cam"), None).is_some()
    })
    .await;
    backend.rule(|m, b| {
        (m == "playRTSP" && b["custom"]["token"] == "bad")
            .then(|| Answer::Status(403, String::new()))
    });
    let rtsp = app.rtsp_addr;
    let refused = tokio::task::spawn_blocking(move || rtsp_probe(rtsp, "?token=bad"))
        .await
        .unwrap();
    assert!(refused.contains("403"), "{refused}");
    let allowed = tokio::task::spawn_blocking(move || rtsp_probe(rtsp, "?token=good"))
        .await
        .unwrap();
    assert!(allowed.contains("codec_name=h264"), "{allowed}");
    let plays = backend.calls_to("playRTSP");
    assert_eq!(plays.len(), 2, "{plays:?}");
    assert_eq!(plays[0].body["name"], "cam");
    assert_eq!(plays[0].body["mediaProvider"], "RTSP");
    let _ = ff.kill();
    let _ = ff.wait();

    // A WHIP publish the hook refuses gets 403 with the reason.
    let (code, body) = whip(app.http_addr, "deny-whip", common::LONELY_OFFER).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("Not today"), "{body}");
    assert!(app
        .state()
        .engine
        .stream_of(Some("deny-whip"), None)
        .is_none());
    app.shutdown().await;
}

async fn whip(addr: std::net::SocketAddr, name: &str, sdp: &str) -> (u16, String) {
    let path = format!("/whip/{name}");
    common::http_with(
        addr,
        "POST",
        &path,
        &[("Content-Type", "application/sdp")],
        sdp,
    )
    .await
}

/// ffprobe's answer (streams, or the error) for stream `cam` of an RTSP server.
fn rtsp_probe(addr: std::net::SocketAddr, query: &str) -> String {
    let out = std::process::Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-rtsp_transport", "tcp"])
        .args(["-show_entries", "stream=codec_name", "-of", "compact"])
        .arg(format!("rtsp://{addr}/cam{query}"))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
