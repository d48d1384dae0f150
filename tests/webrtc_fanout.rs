//! WebRTC publish and play through WCS signaling with real GStreamer clients: one publisher, three
//! players that decode frames of the right size, and the players hear when the publisher stops.

mod common;

use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(15);

async fn fanout(codec: Codec) {
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    let lo = ["127.0.0.1".parse().unwrap()];

    let mut pc = WcsConnection::connect(&url).await.unwrap();
    let opts = PublishOptions {
        width: 640,
        height: 360,
        codec,
        ..Default::default()
    };
    let publisher = client::publish(&mut pc, "fanout", &opts).await.unwrap();
    let st = pc
        .wait_status(&publisher.media_session_id, T)
        .await
        .unwrap();
    assert_eq!(st["status"], "PUBLISHING", "{st}");

    let mut players = Vec::new();
    for _ in 0..3 {
        let mut c = WcsConnection::connect(&url).await.unwrap();
        let p = client::play(&mut c, "fanout", &[Codec::H264, Codec::Vp8], &lo)
            .await
            .unwrap();
        let st = c.wait_status(&p.media_session_id, T).await.unwrap();
        assert_eq!(st["status"], "PLAYING", "{st}");
        players.push((c, p));
    }
    for (_, p) in &players {
        let s = p.wait_frames(60, T).await.unwrap();
        assert_eq!(s.size, Some((640, 360)), "decoded picture size");
        assert!(s.audio_buffers > 0, "audio decoded too");
    }
    assert_eq!(
        common::metric(app.http_addr, "streamgate_media_sessions").await,
        4.0
    );
    assert_eq!(
        common::metric(app.http_addr, "streamgate_pipelines").await,
        4.0
    );

    pc.send(
        "unPublishStream",
        serde_json::json!({"mediaSessionId": publisher.media_session_id, "name": "fanout"}),
    )
    .await
    .unwrap();
    let st = pc
        .wait_status(&publisher.media_session_id, T)
        .await
        .unwrap();
    assert_eq!(st["status"], "UNPUBLISHED", "{st}");
    for (c, p) in &mut players {
        let st = c.wait_status(&p.media_session_id, T).await.unwrap();
        assert_eq!(st["status"], "STOPPED", "{st}");
        assert_eq!(st["info"], "Stopped by publisher stop", "{st}");
    }
    let addr = app.http_addr;
    common::eventually(T, "no pipelines left", || async move {
        common::metric(addr, "streamgate_pipelines").await == 0.0
    })
    .await;
    assert_eq!(common::metric(addr, "streamgate_streams").await, 0.0);
    assert_eq!(common::metric(addr, "streamgate_media_sessions").await, 0.0);
    drop(publisher);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_three_players() {
    fanout(Codec::H264).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_publisher_three_players() {
    fanout(Codec::Vp8).await;
}
