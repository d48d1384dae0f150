//! A new viewer's keyframe need is met by a keyframe request to the publisher when there is no
//! cache to start from: with the cache disabled and a 20 s GOP, a viewer still decodes at once
//! because the server asks the publisher (PLI) and the publisher's encoder emits a keyframe.

mod common;

use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_without_cache_asks_the_publisher_for_a_keyframe() {
    for codec in [Codec::H264, Codec::Vp8] {
        let mut cfg = common::config();
        cfg.engine.gop_cache_bytes = 1; // every cached GOP overflows at once: no cache
        let app = common::start(cfg).await;
        let url = common::ws_url(app.http_addr);
        let mut pc = WcsConnection::connect(&url).await.unwrap();
        let opts = PublishOptions {
            width: 320,
            height: 240,
            gop: 600,
            codec,
            ..Default::default()
        };
        let publisher = client::publish(&mut pc, "kf", &opts).await.unwrap();
        assert_eq!(
            pc.wait_status(&publisher.media_session_id, Duration::from_secs(15))
                .await
                .unwrap()["status"],
            "PUBLISHING"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = publisher.keyframes();
        let mut vc = WcsConnection::connect(&url).await.unwrap();
        let player = client::play(&mut vc, "kf", &[codec], &["127.0.0.1".parse().unwrap()])
            .await
            .unwrap();
        // Well inside the 20 s GOP: only a forced keyframe makes this possible.
        let s = player
            .wait_frames(10, Duration::from_secs(8))
            .await
            .unwrap();
        assert_eq!(s.size, Some((320, 240)));
        assert!(
            publisher.keyframes() > before,
            "{codec:?}: the publisher was asked for a keyframe"
        );
        drop((player, publisher));
        app.shutdown().await;
    }
}
