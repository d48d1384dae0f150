//! The call history: a three-party call in a room, recorded, leaves rows for the call, its
//! participants, its recording and its streams; the site's results are kept with it; and all of
//! it is still there after the server restarts. The same runs against a real PostgreSQL that the
//! test starts (skipped, with the reason printed, only where PostgreSQL cannot start here).

mod common;
mod mixing;

use mixing::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

async fn rest(addr: std::net::SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let (code, text) = post(addr, path, &body.to_string()).await;
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A 3-party call with a recording; returns the call's id once the history has it all.
async fn a_recorded_call(config: streamgate::config::Config, room: &str) -> String {
    let app = common::start(config).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let mut people = Vec::new();
    for login in ["employer", "candidate", "hr"] {
        people.push(room_member(&url, login, room).await);
    }
    let opts = streamgate::client::PublishOptions {
        width: 320,
        height: 240,
        fps: 15,
        ..Default::default()
    };
    let mut cams = Vec::new();
    for (i, login) in ["employer", "candidate"].iter().enumerate() {
        let p = streamgate::client::publish_with_custom(
            &mut people[i],
            &format!("{room}-{login}"),
            &opts,
            json!({"name": room}),
        )
        .await
        .unwrap();
        assert_eq!(
            people[i].wait_status(&p.media_session_id, T).await.unwrap()["status"],
            "PUBLISHING"
        );
        cams.push(p);
    }
    let (s, b) = rest(addr, "/rest-api/room/startRecording", json!({"name": room})).await;
    assert_eq!(s, 200, "{b}");
    // Two seconds of interview: the content's length, not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, b) = rest(addr, "/rest-api/room/stopRecording", json!({"name": room})).await;
    assert_eq!(s, 200, "{b}");
    drop(cams);
    for c in people {
        c.close().await;
    }
    common::eventually(T, "the call is in the history, ended", || async move {
        let (_, calls) = rest(
            addr,
            "/rest-api/history/calls/find_all",
            json!({"room": room}),
        )
        .await;
        let Some(call) = calls.as_array().and_then(|a| a.first()) else {
            return false;
        };
        !call["endedAt"].is_null()
            && call["participants"]
                .as_array()
                .is_some_and(|p| p.len() == 3 && p.iter().all(|p| !p["leftAt"].is_null()))
            && call["recordings"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["streamName"] == format!("{room}-interview"))
            })
    })
    .await;
    let (_, calls) = rest(
        addr,
        "/rest-api/history/calls/find_all",
        json!({"room": room}),
    )
    .await;
    assert_eq!(calls.as_array().unwrap().len(), 1, "one call: {calls}");
    let id = calls[0]["id"].as_str().unwrap().to_owned();
    let (_, call) = rest(addr, "/rest-api/history/calls/find", json!({"id": id})).await;
    let mut logins: Vec<&str> = call["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["login"].as_str().unwrap())
        .collect();
    logins.sort();
    assert_eq!(logins, ["candidate", "employer", "hr"], "{call}");
    let composite = call["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["streamName"] == format!("{room}-interview"))
        .unwrap();
    let secs = composite["duration"].as_f64().unwrap();
    assert!(
        (1.5..10.0).contains(&secs),
        "recording lasted {secs} s: {call}"
    );
    assert!(call["startedAt"].as_str().unwrap().ends_with('Z'));
    assert!(call["duration"].as_f64().unwrap() >= secs);

    // The site keeps its interview results with the call.
    let results = json!({"score": 4, "decision": "hire", "notes": "strong on systems"});
    let (s, _) = rest(
        addr,
        "/rest-api/history/calls/set_results",
        json!({"id": id, "results": results}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = rest(
        addr,
        "/rest-api/history/calls/find",
        json!({"id": "no-such-call"}),
    )
    .await;
    assert_eq!((s, b["message"].as_str()), (404, Some("Call not found")));
    let (s, _) = rest(
        addr,
        "/rest-api/history/calls/find_all",
        json!({"from": "yesterday"}),
    )
    .await;
    assert_eq!(s, 400);

    // Streams: who published, over what, for how long, in which call.
    let (_, streams) = rest(
        addr,
        "/rest-api/history/streams/find_all",
        json!({"name": format!("{room}-employer")}),
    )
    .await;
    let row = &streams[0];
    assert_eq!(row["published"], true, "{streams}");
    assert_eq!(row["login"], "employer");
    assert_eq!(row["mediaProvider"], "WebRTC");
    assert_eq!(row["callId"], id.as_str());
    assert!(row["duration"].as_f64().unwrap() > 1.0, "{row}");
    // A login's calls.
    let (_, mine) = rest(
        addr,
        "/rest-api/history/calls/find_all",
        json!({"login": "hr"}),
    )
    .await;
    assert!(mine
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.as_str()));
    let (_, none) = rest(
        addr,
        "/rest-api/history/calls/find_all",
        json!({"login": "nobody"}),
    )
    .await;
    assert_eq!(none, json!([]));
    app.shutdown().await;
    id
}

async fn survives_a_restart(config: streamgate::config::Config, id: &str) {
    let app = common::start(config).await;
    let (s, call) = rest(
        app.http_addr,
        "/rest-api/history/calls/find",
        json!({"id": id}),
    )
    .await;
    assert_eq!(s, 200, "{call}");
    assert_eq!(call["results"]["decision"], "hire");
    assert_eq!(call["participants"].as_array().unwrap().len(), 3);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorded_call_is_in_the_sqlite_history_before_and_after_a_restart() {
    let config = common::config();
    let id = a_recorded_call(config.clone(), "call-1").await;
    assert!(config.data_dir.join("history.db").exists());
    survives_a_restart(config, &id).await;
}

/// A PostgreSQL server of the test's own, in a temporary directory, on a free port.
struct Postgres {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin(name: &str) -> Option<std::path::PathBuf> {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin").join(name))
        .find(|p| p.exists())
}

/// Runs a PostgreSQL program, as the `postgres` user when the test runs as root (PostgreSQL
/// refuses to run as root).
fn pg_command(bin: &std::path::Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

async fn start_postgres() -> Result<Postgres, String> {
    let initdb =
        pg_bin("initdb").ok_or("PostgreSQL is not installed (Debian package postgresql)")?;
    let postgres = pg_bin("postgres").ok_or("the postgres binary is missing")?;
    let dir = std::env::temp_dir().join(format!("streamgate-pg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let _ = Command::new("chown").arg("postgres").arg(&dir).status();
    let data = dir.join("data");
    let out = pg_command(&initdb)
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = pg_command(&postgres)
        .arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("postgres: {e}"))?;
    let pg = Postgres {
        child,
        dir,
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            // Accepting connections is not yet accepting logins; give it the moment it needs.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(pg);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("PostgreSQL did not start listening within 10 s".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorded_call_is_in_the_postgresql_history_before_and_after_a_restart() {
    let pg = match start_postgres().await {
        Ok(pg) => pg,
        Err(why) => {
            println!("SKIPPED: PostgreSQL cannot start here: {why}");
            return;
        }
    };
    let mut config = common::config();
    config.history.database_url = Some(pg.url.clone());
    let id = a_recorded_call(config.clone(), "call-pg").await;
    assert!(
        !config.data_dir.join("history.db").exists(),
        "PostgreSQL, not SQLite"
    );
    survives_a_restart(config, &id).await;
    drop(pg);
}
