//! The real binary: `streamgate serve` with no config file answers /health, and on SIGTERM tells
//! every client its stream stopped and exits within 5 s.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use streamgate::client::PublishOptions;
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_and_exits() {
    common::init();
    let port = free_port();
    let data = std::env::temp_dir().join(format!("sg-shutdown-{port}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--rtmp",
            "127.0.0.1:0",
            "--rtsp",
            "127.0.0.1:0",
        ])
        .args(["--ice-address", "127.0.0.1", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && common::http(addr, "GET", "/health", "").await.0 == 200
        {
            break;
        }
        assert!(started.elapsed() < T, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = common::ws_url(addr);
    let (mut pc, publisher) = common::publishing(&url, "bye", &PublishOptions::default()).await;
    let (mut vc, player) = common::playing(&url, "bye", &[Codec::H264]).await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let sent = Instant::now();
    let st = pc
        .wait_status(&publisher.media_session_id, T)
        .await
        .unwrap();
    assert_eq!(st["status"], "UNPUBLISHED", "{st}");
    let st = vc.wait_status(&player.media_session_id, T).await.unwrap();
    assert_eq!(st["status"], "STOPPED", "{st}");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&data);
}
