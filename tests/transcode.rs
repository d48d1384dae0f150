//! A player that cannot take the stream's codec gets one shared transcode: two VP8-only players of
//! an H.264 stream decode frames through a single bridge, which stops with the last of them.

mod common;

use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_only_players_share_one_bridge() {
    let app = common::start(common::config()).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let lo = ["127.0.0.1".parse().unwrap()];
    let mut pc = WcsConnection::connect(&url).await.unwrap();
    let opts = PublishOptions {
        width: 320,
        height: 240,
        codec: Codec::H264,
        ..Default::default()
    };
    let publisher = client::publish(&mut pc, "tc", &opts).await.unwrap();
    assert_eq!(
        pc.wait_status(&publisher.media_session_id, T)
            .await
            .unwrap()["status"],
        "PUBLISHING"
    );

    let mut players = Vec::new();
    for _ in 0..2 {
        let mut c = WcsConnection::connect(&url).await.unwrap();
        let p = client::play(&mut c, "tc", &[Codec::Vp8], &lo)
            .await
            .unwrap();
        assert_eq!(
            c.wait_status(&p.media_session_id, T).await.unwrap()["status"],
            "PLAYING"
        );
        players.push((c, p));
    }
    for (_, p) in &players {
        let s = p.wait_frames(30, T).await.unwrap();
        assert_eq!(s.size, Some((320, 240)));
    }
    assert_eq!(
        common::metric(addr, "streamgate_bridges").await,
        1.0,
        "one bridge for both players"
    );
    // publisher + 2 players + 1 bridge
    assert_eq!(common::metric(addr, "streamgate_pipelines").await, 4.0);
    players.clear();
    common::eventually(T, "bridge stopped with its last player", || async move {
        common::metric(addr, "streamgate_bridges").await == 0.0
            && common::metric(addr, "streamgate_pipelines").await == 1.0
    })
    .await;
    drop(publisher);
    app.shutdown().await;
}
