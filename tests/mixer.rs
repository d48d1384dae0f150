//! The mixer, end to end: real publishers (ffmpeg over RTMP, GStreamer over WebRTC), the mix
//! played back by ffmpeg over RTMP and looked at: the colour in each tile of a decoded frame, and
//! the tones in the decoded audio (a DFT at each publisher's frequency).

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamgate::ops::mixer::layout::{InputDesc, Layout, Tile};

const T: Duration = Duration::from_secs(30);
/// The mix is looked at scaled down to this size.
const SW: usize = 160;
const SH: usize = 90;
const W: u32 = 640;
const H: u32 = 360;

/// An ffmpeg publisher of a solid colour and a tone over RTMP.
fn colour_publisher(rtmp: SocketAddr, name: &str, colour: &str, hz: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:s=320x240:r=15"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency={hz}:sample_rate=44100"),
        ])
        .args([
            "-t",
            "120",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .args(["-f", "flv", &format!("rtmp://{rtmp}/live/{name}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs")
}

/// Decoded frames of a stream played over RTMP, kept as they come (the newest, and a count).
struct Frames {
    seen: Arc<Mutex<(u64, Vec<u8>)>>,
    child: Child,
}

impl Frames {
    fn watch(rtmp: SocketAddr, name: &str) -> Frames {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error"])
            .args(["-i", &format!("rtmp://{rtmp}/live/{name}")])
            .args([
                "-an",
                "-vf",
                &format!("scale={SW}:{SH}"),
                "-pix_fmt",
                "rgb24",
            ])
            .args(["-f", "rawvideo", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg runs");
        let mut out = child.stdout.take().expect("stdout");
        let seen = Arc::new(Mutex::new((0u64, Vec::new())));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            let mut frame = vec![0u8; SW * SH * 3];
            while out.read_exact(&mut frame).is_ok() {
                let mut s = s2.lock().unwrap();
                s.0 += 1;
                s.1 = frame.clone();
            }
        });
        Frames { seen, child }
    }

    fn count(&self) -> u64 {
        self.seen.lock().unwrap().0
    }

    /// The colour at the centre of `tile` (in mix coordinates) of the newest frame.
    fn at(&self, tile: &Tile) -> (u8, u8, u8) {
        let s = self.seen.lock().unwrap();
        if s.1.is_empty() {
            return (0, 0, 0);
        }
        let x = ((tile.x + tile.width / 2) as usize * SW) / W as usize;
        let y = ((tile.y + tile.height / 2) as usize * SH) / H as usize;
        let i = (y * SW + x) * 3;
        (s.1[i], s.1[i + 1], s.1[i + 2])
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(colour: (u8, u8, u8), name: &str) -> bool {
    let (r, g, b) = colour;
    match name {
        "red" => r > 150 && g < 90 && b < 90,
        "lime" => g > 150 && r < 90 && b < 90,
        "blue" => b > 150 && r < 90 && g < 90,
        _ => false,
    }
}

/// Where the layout puts `names` in the mix.
fn tiles(layout: &str, names: &[&str]) -> Vec<Tile> {
    let descs: Vec<InputDesc<'_>> = names
        .iter()
        .map(|n| InputDesc {
            name: n,
            is_screen: false,
        })
        .collect();
    Layout::builtin(layout)
        .expect("built-in layout")
        .place(&descs, None, W, H)
        .into_iter()
        .map(|t| t.expect("every input shown"))
        .collect()
}

/// `secs` of a stream's audio, decoded to 16 kHz mono.
async fn audio(rtmp: SocketAddr, name: &str, secs: u32) -> Vec<f64> {
    let url = format!("rtmp://{rtmp}/live/{name}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i", &url, "-vn"])
            .args(["-ac", "1", "-ar", "16000", "-t", &secs.to_string()])
            .args(["-f", "s16le", "pipe:1"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("ffmpeg runs")
    })
    .await
    .unwrap();
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0)
        .collect()
}

/// The amplitude of the `hz` component of 16 kHz samples: one bin of a DFT (the Goertzel
/// recurrence), which is all a check of known tones needs.
fn tone(samples: &[f64], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 16000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in samples {
        let s = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len().max(1) as f64
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    common::http(addr, "POST", path, body).await
}

async fn published(addr: SocketAddr, name: &str) {
    common::eventually(T, &format!("{name} publishing"), || async move {
        let (_, b) = post(
            addr,
            "/rest-api/stream/find",
            &format!(r#"{{"name":"{name}"}}"#),
        )
        .await;
        b.contains("PUBLISHING")
    })
    .await;
}

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
    let pcm = audio(rtmp, "mix", 3).await;
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
    // Alice hears Bob and Carol, not herself.
    let pcm = audio(rtmp, "room1-aliceroom1", 3).await;
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
