//! MCU rooms: publishing `login#room` joins the room's mixer, each participant hears everyone but
//! themselves (checked by frequency), and the mixer ends with its last participant.

mod common;
mod mixing;

use mixing::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcu_rooms_give_each_participant_everyone_but_themselves() {
    let mut config = common::config();
    config.mixer.auto = true;
    config.mixer.width = W;
    config.mixer.height = H;
    config.mixer.fps = 15;
    let app = common::start(config).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let url = common::ws_url(addr);
    let people = [
        ("alice", 500u32, "0xffff0000"),
        ("bob", 800, "0xff00ff00"),
        ("carol", 1300, "0xff0000ff"),
    ];
    let mut publishers = Vec::new();
    for (login, hz, colour) in people {
        let opts = streamgate::client::PublishOptions {
            width: 320,
            height: 240,
            fps: 15,
            pattern: colour.into(),
            tone_hz: hz,
            ..Default::default()
        };
        publishers.push(common::publishing(&url, &format!("{login}#room1"), &opts).await);
    }
    common::eventually(T, "the room's mixer has all three", || async move {
        let (_, b) = post(addr, "/rest-api/mixer/find_all", "").await;
        ["alice#room1", "bob#room1", "carol#room1"]
            .iter()
            .all(|n| b.contains(n))
    })
    .await;
    for name in ["room1", "room1-aliceroom1"] {
        published(addr, name).await;
    }
    // Alice watches her stream; while she does, its audio for RTMP (AAC from the mix's Opus) is
    // being made, so the capture below starts with it.
    let watching = Frames::watch(rtmp, "room1-aliceroom1");
    common::eventually(T, "Alice sees the room", || {
        let n = watching.count();
        async move { n > 5 }
    })
    .await;
    // Alice hears Bob and Carol, not herself.
    let pcm = audio_until(rtmp, "room1-aliceroom1", 3, |p| {
        tone(p, 800.0) > 0.01 && tone(p, 1300.0) > 0.01
    })
    .await;
    let (own, bob, carol) = (tone(&pcm, 500.0), tone(&pcm, 800.0), tone(&pcm, 1300.0));
    assert!(
        bob > 0.01 && carol > 0.01,
        "others: bob {bob:.4}, carol {carol:.4}"
    );
    assert!(
        own < bob / 10.0 && own < carol / 10.0,
        "her own voice is left out: {own:.4}"
    );
    // Everyone leaves: the room's mixer ends.
    drop(publishers);
    common::eventually(
        T,
        "the room's mixer ends with its last participant",
        || async move {
            let (_, b) = post(addr, "/rest-api/mixer/find_all", "").await;
            !b.contains("room1")
        },
    )
    .await;
}
