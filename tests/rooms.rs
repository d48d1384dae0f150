//! The room application over WCS signaling with GStreamer clients: three participants join, each
//! learns of the others and their streams, messages arrive, a leaver and a dropped socket are
//! announced as LEFT, and rooms are visible over REST.

mod common;

use serde_json::{json, Value};
use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};

const T: Duration = Duration::from_secs(15);

async fn member(url: &str, login: &str) -> WcsConnection {
    let mut c = WcsConnection::open(url).await.unwrap();
    c.send(
        "connection",
        json!({"appKey": "roomApp", "custom": {"login": login}}),
    )
    .await
    .unwrap();
    c.wait(T, |f| f["message"] == "getUserData").await.unwrap();
    c
}

async fn command(c: &mut WcsConnection, op: &str, command: &str, options: Value) -> Value {
    common::room_command(c, op, command, options).await
}

async fn room_event(c: &mut WcsConnection, name: &str) -> Value {
    let f = c
        .wait(T, |f| {
            f["message"] == "OnDataEvent" && f["data"][0]["payload"]["name"] == name
        })
        .await
        .unwrap();
    f["data"][0]["payload"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants() {
    let app = common::start(common::config()).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let join = json!({"name": "interview-42", "record": false});

    let mut employer = member(&url, "employer").await;
    assert_eq!(
        command(&mut employer, "j1", "join", join.clone()).await["status"],
        "ACCEPTED"
    );
    assert_eq!(room_event(&mut employer, "STATE").await["info"], json!([]));
    // The employer publishes in the room (the room API names streams room-login-xxxx and passes
    // the room as custom.name).
    let opts = PublishOptions {
        width: 320,
        height: 240,
        ..Default::default()
    };
    let p = client::publish_with_custom(
        &mut employer,
        "interview-42-employer-ab12",
        &opts,
        json!({"name": "interview-42"}),
    )
    .await
    .unwrap();
    assert_eq!(
        employer.wait_status(&p.media_session_id, T).await.unwrap()["status"],
        "PUBLISHING"
    );

    let mut candidate = member(&url, "candidate").await;
    assert_eq!(
        command(&mut candidate, "j2", "join", join.clone()).await["status"],
        "ACCEPTED"
    );
    let state = room_event(&mut candidate, "STATE").await;
    assert_eq!(
        state["info"],
        json!([{"login": "employer", "name": "interview-42-employer-ab12"}])
    );
    assert_eq!(
        room_event(&mut employer, "JOINED").await["info"],
        "candidate"
    );

    let mut hr = member(&url, "hr").await;
    assert_eq!(
        command(&mut hr, "j3", "join", join.clone()).await["status"],
        "ACCEPTED"
    );
    let state = room_event(&mut hr, "STATE").await;
    assert_eq!(
        state["info"],
        json!(["candidate", {"login": "employer", "name": "interview-42-employer-ab12"}])
    );
    room_event(&mut employer, "JOINED").await;
    room_event(&mut candidate, "JOINED").await;

    // A message to one participant reaches that one.
    let msg =
        json!({"roomConfig": {"name": "interview-42"}, "to": "candidate", "text": "Welcome!"});
    assert_eq!(
        command(&mut hr, "m1", "sendMessage", msg).await["status"],
        "ACCEPTED"
    );
    let m = room_event(&mut candidate, "MESSAGE").await;
    assert_eq!(m["info"], json!({"from": "hr", "text": "Welcome!"}));
    let bad = json!({"roomConfig": {"name": "interview-42"}, "to": "nobody", "text": "?"});
    let st = command(&mut hr, "m2", "sendMessage", bad).await;
    assert_eq!(
        (st["status"].as_str(), st["info"].as_str()),
        (Some("FAILED"), Some("Participant nobody not found"))
    );

    // REST shows the room and its three participants.
    let (status, body) = common::http(
        addr,
        "POST",
        "/rest-api/room/find",
        r#"{"name":"interview-42"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rooms: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rooms[0]["participants"].as_array().unwrap().len(), 3);
    assert_eq!(
        common::http(addr, "POST", "/rest-api/room/find", r#"{"name":"nope"}"#)
            .await
            .0,
        404
    );

    // HR leaves politely; the employer's socket drops: both are announced, the stream ends.
    assert_eq!(
        command(&mut hr, "l1", "leave", json!({"name": "interview-42"})).await["status"],
        "ACCEPTED"
    );
    assert_eq!(room_event(&mut candidate, "LEFT").await["info"], "hr");
    assert_eq!(room_event(&mut employer, "LEFT").await["info"], "hr");
    drop(employer);
    let ev = room_event(&mut candidate, "UNPUBLISHED").await;
    assert_eq!(
        ev["info"],
        json!({"login": "employer", "name": "interview-42-employer-ab12"})
    );
    assert_eq!(room_event(&mut candidate, "LEFT").await["info"], "employer");
    common::eventually(T, "employer's stream gone", || async move {
        common::metric(addr, "streamgate_streams").await == 0.0
    })
    .await;
    drop(p);
    app.shutdown().await;
}
