//! Nothing leaks across many sessions: after each round of a publisher and three viewers coming and
//! going (H.264 and VP8, with bridged viewers), pipelines, streams and sessions are back to zero, and
//! the process's threads and file descriptors do not grow from round to round (every finished
//! pipeline used to keep its bus and the bus's socket pair).

mod common;

use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

async fn round(url: &str, addr: std::net::SocketAddr, n: usize) {
    let lo = ["127.0.0.1".parse().unwrap()];
    let mut pc = WcsConnection::connect(url).await.unwrap();
    let opts = PublishOptions {
        width: 320,
        height: 240,
        codec: if n % 2 == 0 { Codec::H264 } else { Codec::Vp8 },
        ..Default::default()
    };
    let name = format!("leak{n}");
    let publisher = client::publish(&mut pc, &name, &opts).await.unwrap();
    assert_eq!(
        pc.wait_status(&publisher.media_session_id, T)
            .await
            .unwrap()["status"],
        "PUBLISHING"
    );
    let mut viewers = Vec::new();
    for codec in [Codec::H264, Codec::Vp8, Codec::H264] {
        let mut c = WcsConnection::connect(url).await.unwrap();
        let p = client::play(&mut c, &name, &[codec], &lo).await.unwrap();
        p.wait_frames(10, T).await.unwrap();
        viewers.push((c, p));
    }
    drop(viewers);
    drop(publisher);
    pc.close().await;
    common::eventually(T, "round cleaned up", || async move {
        common::metric(addr, "streamgate_pipelines").await == 0.0
            && common::metric(addr, "streamgate_streams").await == 0.0
            && common::metric(addr, "streamgate_media_sessions").await == 0.0
            && common::metric(addr, "streamgate_signaling_sessions").await == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_leave_nothing_behind() {
    let app = common::start(common::config()).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    round(&url, addr, 0).await;
    // Threads of finished pipelines take a moment to exit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_first = threads();
    let fds_first = common::metric(addr, "process_open_fds").await;
    for n in 1..4 {
        round(&url, addr, n).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_last = threads();
    let fds_last = common::metric(addr, "process_open_fds").await;
    eprintln!("threads after the first round {after_first}, after the last {after_last}; fds {fds_first} then {fds_last}");
    // Each round made 8 pipelines (publisher, 3 viewers, bridges): 16 fds a round if buses leaked.
    assert!(
        fds_last <= fds_first + 4.0,
        "file descriptors grew from {fds_first} to {fds_last} over three more rounds"
    );
    assert!(
        after_last <= after_first + 4,
        "threads grew from {after_first} to {after_last} over three more rounds"
    );
    app.shutdown().await;
}
