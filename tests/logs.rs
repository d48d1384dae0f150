//! The real binary's log stays plain text, one line per event, whatever clients send: names with
//! newlines and NUL bytes are escaped, and a client sending garbage gets an answer for every frame
//! but writes only a few warnings.

mod common;

use serde_json::json;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use streamgate::client::WcsConnection;

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_cannot_forge_or_flood_the_log() {
    common::init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = std::env::temp_dir().join(format!("sg-log-{port}.txt"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .args(["--rtmp", "127.0.0.1:0", "--rtsp", "127.0.0.1:0"])
        .args(["--ice-address", "127.0.0.1", "--data-dir"])
        .arg(std::env::temp_dir().join(format!("sg-log-data-{port}")))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("binary starts");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    common::eventually(T, "server healthy", || async move {
        tokio::net::TcpStream::connect(addr).await.is_ok()
            && common::http(addr, "GET", "/health", "").await.0 == 200
    })
    .await;

    let mut c = WcsConnection::connect(&common::ws_url(addr)).await.unwrap();
    // A name that would split the log line and make the file binary.
    let evil = "evil\nFAKE LOG LINE injected\u{0}\u{1b}[31m";
    c.send(
        "publishStream",
        json!({"mediaSessionId": "m1", "name": evil, "published": true, "sdp": common::LONELY_OFFER}),
    )
    .await
    .unwrap();
    let st = c.wait_status("m1", T).await.unwrap();
    assert_eq!(st["status"], "FAILED", "{st}");
    // 300 garbage frames: each is answered ...
    for i in 0..300 {
        c.send_raw(&format!("{{not json {i}\n\u{0}")).await.unwrap();
    }
    let mut answered = 0;
    while answered < 300 {
        let f = c.next_frame(T).await.unwrap();
        if f["message"] == "fail" {
            answered += 1;
        }
    }
    c.close().await;
    let _ = child.kill();
    let _ = child.wait();

    // ... but the log holds a few lines, all plain text.
    let mut bytes = Vec::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(!bytes.contains(&0), "NUL bytes in the log");
    assert!(!bytes.contains(&0x1b), "escape sequences in the log");
    let text = String::from_utf8(bytes).expect("the log is UTF-8 text");
    assert!(
        !text.lines().any(|l| l.starts_with("FAKE LOG LINE")),
        "a client forged a log line:\n{text}"
    );
    assert!(text.contains("evil\\nFAKE LOG LINE"), "{text}");
    let refused = text.lines().filter(|l| l.contains("refused frame")).count();
    eprintln!(
        "log: {} lines, {} bytes, {refused} 'refused frame' lines for 300 bad frames",
        text.lines().count(),
        text.len()
    );
    assert!(refused <= 10, "{refused} warnings for one client:\n{text}");
    assert!(text.len() < 20_000, "{} bytes of log", text.len());
}
