//! The mixer over REST, end to end: three publishers tiled (each colour in its tile) and heard
//! (each tone in the mix), WCS's errors, a leaver and the reflow, a stalled input that does not
//! freeze the mix, a muted picture giving way to its placeholder.

mod common;
mod mixing;

use mixing::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_streams_are_tiled_and_heard_and_the_mix_never_waits() {
    let app = common::start(common::config()).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let inputs = [("red", 500), ("lime", 800), ("blue", 1300)];
    let mut pubs: Vec<Child> = inputs
        .iter()
        .map(|(c, hz)| colour_publisher(rtmp, c, c, *hz))
        .collect();
    for (c, _) in inputs {
        published(addr, c).await;
    }
    let startup = format!(
        r#"{{"uri":"mixer://m1","localStreamName":"mix","mixerVideoWidth":{W},"mixerVideoHeight":{H},"mixerVideoFps":15,"mixerLayoutClass":"grid"}}"#
    );
    let (s, b) = post(addr, "/rest-api/mixer/startup", &startup).await;
    assert_eq!(s, 200, "{b}");
    for (c, _) in inputs {
        let body =
            format!(r#"{{"uri":"mixer://m1","remoteStreamName":"{c}","streamLabel":"{c}"}}"#);
        let (s, b) = post(addr, "/rest-api/mixer/add", &body).await;
        assert_eq!(s, 200, "{b}");
    }
    // The errors WCS gives.
    let (s, b) = post(
        addr,
        "/rest-api/mixer/add",
        r#"{"uri":"mixer://m1","remoteStreamName":"nobody"}"#,
    )
    .await;
    assert_eq!((s, b.contains("Stream not found")), (404, true), "{b}");
    let (s, b) = post(
        addr,
        "/rest-api/mixer/add",
        r#"{"uri":"mixer://m9","remoteStreamName":"red"}"#,
    )
    .await;
    assert_eq!((s, b.contains("Mixer not found")), (404, true), "{b}");
    let (s, _) = post(addr, "/rest-api/mixer/startup", &startup).await;
    assert_eq!(s, 409, "the same mixer twice");
    let (s, _) = post(
        addr,
        "/rest-api/mixer/startup",
        r#"{"uri":"mixer://m2","localStreamName":"red"}"#,
    )
    .await;
    assert_eq!(s, 409, "an output name in use");
    let (s, b) = post(
        addr,
        "/rest-api/mixer/startup",
        r#"{"uri":"mixer://m3","mixerLayoutClass":"nosuch"}"#,
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (_, all) = post(addr, "/rest-api/mixer/find_all", "").await;
    assert!(
        all.contains("mixer://m1") && all.contains("\"lime\""),
        "{all}"
    );

    // Each colour in its tile.
    let frames = Frames::watch(rtmp, "mix");
    let grid = tiles("grid", &["red", "lime", "blue"]);
    common::eventually(T, "each input in its tile", || {
        let ok = inputs
            .iter()
            .zip(&grid)
            .all(|((c, _), t)| is(frames.at(t), c));
        async move { ok }
    })
    .await;

    // Every voice in the mix.
    let pcm = audio_until(rtmp, "mix", 3, |p| {
        inputs.iter().all(|(_, hz)| tone(p, *hz as f64) > 0.01)
    })
    .await;
    assert!(pcm.len() > 16000 * 2, "got {} samples", pcm.len());
    let noise = tone(&pcm, 2100.0);
    for (c, hz) in inputs {
        let a = tone(&pcm, hz as f64);
        assert!(
            a > 0.01 && a > noise * 10.0,
            "{c}'s {hz} Hz: {a:.4} (noise {noise:.4})"
        );
    }

    // One leaves: the others reflow into the two-input grid.
    let (s, _) = post(
        addr,
        "/rest-api/mixer/remove",
        r#"{"uri":"mixer://m1","remoteStreamName":"lime"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let two = tiles("grid", &["red", "blue"]);
    common::eventually(T, "the grid reflows for two", || {
        let ok = is(frames.at(&two[0]), "red") && is(frames.at(&two[1]), "blue");
        async move { ok }
    })
    .await;
    let (s, _) = post(
        addr,
        "/rest-api/mixer/remove",
        r#"{"uri":"mixer://m1","remoteStreamName":"lime"}"#,
    )
    .await;
    assert_eq!(s, 404, "removed already");

    // A stalled publisher does not freeze the mix.
    let red_pid = pubs[0].id().to_string();
    Command::new("kill")
        .args(["-STOP", &red_pid])
        .status()
        .unwrap();
    let before = frames.count();
    common::eventually(T, "the mix goes on while an input stalls", || {
        let n = frames.count();
        async move { n >= before + 30 }
    })
    .await;
    assert!(
        is(frames.at(&two[1]), "blue"),
        "the other input still shows"
    );
    Command::new("kill")
        .args(["-CONT", &red_pid])
        .status()
        .unwrap();

    // Muting video shows the placeholder instead.
    let (s, b) = post(
        addr,
        "/rest-api/mixer/setAudioVideo",
        r#"{"uri":"mixer://m1","streams":["blue"],"videoMuted":true}"#,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    common::eventually(T, "a muted picture gives way to the placeholder", || {
        let c = frames.at(&two[1]);
        async move { !is(c, "blue") }
    })
    .await;

    let (s, _) = post(addr, "/rest-api/mixer/terminate", r#"{"uri":"mixer://m1"}"#).await;
    assert_eq!(s, 200);
    let (s, _) = post(addr, "/rest-api/mixer/terminate", r#"{"uri":"mixer://m1"}"#).await;
    assert_eq!(s, 404);
    common::eventually(T, "the output stream ends with the mixer", || async move {
        let (_, b) = post(addr, "/rest-api/stream/find", r#"{"name":"mix"}"#).await;
        !b.contains("PUBLISHING")
    })
    .await;
    for p in pubs.iter_mut() {
        let _ = p.kill();
        let _ = p.wait();
    }
}
