//! What the mixer's tests share: publishers of a colour and a tone, the mix played back by ffmpeg
//! over RTMP and looked at (the colour in each tile of a decoded frame, the tones in the decoded
//! audio: a DFT at each publisher's frequency). Each test of a mix is a test binary of its own, so
//! one's real-time media never competes with another's on a small machine.
#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
pub use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
pub use std::time::Duration;
pub use streamgate::ops::mixer::layout::{InputDesc, Layout, Tile};

pub const T: Duration = Duration::from_secs(30);

/// Captures `secs` of `name`'s audio until `ok` holds for it (the mix may take a moment to hear a
/// newcomer), at most five times; returns the last capture.
pub async fn audio_until(
    rtmp: SocketAddr,
    name: &str,
    secs: u32,
    ok: impl Fn(&[f64]) -> bool,
) -> Vec<f64> {
    let mut pcm = Vec::new();
    for _ in 0..5 {
        pcm = audio(rtmp, name, secs).await;
        if ok(&pcm) {
            break;
        }
    }
    pcm
}
/// The mix is looked at scaled down to this size.
pub const SW: usize = 160;
pub const SH: usize = 90;
pub const W: u32 = 640;
pub const H: u32 = 360;

/// An ffmpeg publisher of a solid colour and a tone over RTMP.
pub fn colour_publisher(rtmp: SocketAddr, name: &str, colour: &str, hz: u32) -> Child {
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
pub struct Frames {
    seen: Arc<Mutex<(u64, Vec<u8>)>>,
    child: Child,
}

impl Frames {
    pub fn watch(rtmp: SocketAddr, name: &str) -> Frames {
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

    pub fn count(&self) -> u64 {
        self.seen.lock().unwrap().0
    }

    /// The colour at the centre of `tile` (in mix coordinates) of the newest frame.
    pub fn at(&self, tile: &Tile) -> (u8, u8, u8) {
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

pub fn is(colour: (u8, u8, u8), name: &str) -> bool {
    let (r, g, b) = colour;
    match name {
        "red" => r > 150 && g < 90 && b < 90,
        "lime" => g > 150 && r < 90 && b < 90,
        "blue" => b > 150 && r < 90 && g < 90,
        _ => false,
    }
}

/// Where the layout puts `names` in the mix.
pub fn tiles(layout: &str, names: &[&str]) -> Vec<Tile> {
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
pub async fn audio(rtmp: SocketAddr, name: &str, secs: u32) -> Vec<f64> {
    let url = format!("rtmp://{rtmp}/live/{name}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i", &url, "-vn"])
            .args(["-ac", "1", "-ar", "16000", "-t", &secs.to_string()])
            .args(["-f", "s16le", "pipe:1"])
            .stdin(Stdio::null())
            .output()
            .expect("ffmpeg runs")
    })
    .await
    .unwrap();
    if out.stdout.is_empty() {
        eprintln!(
            "no audio from {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0)
        .collect()
}

/// The amplitude of the `hz` component of 16 kHz samples: one bin of a DFT (the Goertzel
/// recurrence), which is all a check of known tones needs.
pub fn tone(samples: &[f64], hz: f64) -> f64 {
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

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    crate::common::http(addr, "POST", path, body).await
}

pub async fn published(addr: SocketAddr, name: &str) {
    crate::common::eventually(T, &format!("{name} publishing"), || async move {
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

/// Joins the room application as `login` and joins `room`.
pub async fn room_member(url: &str, login: &str, room: &str) -> streamgate::client::WcsConnection {
    room_member_with(url, login, serde_json::json!({ "name": room })).await
}

/// A room participant that joined with these `join` options (`{name, record?}`).
pub async fn room_member_with(
    url: &str,
    login: &str,
    options: serde_json::Value,
) -> streamgate::client::WcsConnection {
    use serde_json::json;
    let mut c = streamgate::client::WcsConnection::open(url).await.unwrap();
    c.send(
        "connection",
        json!({"appKey": "roomApp", "custom": {"login": login}}),
    )
    .await
    .unwrap();
    c.wait(T, |f| f["message"] == "getUserData").await.unwrap();
    c.send(
        "sendData",
        json!({"operationId": "j", "payload": {"command": "join", "options": options}}),
    )
    .await
    .unwrap();
    let f = c
        .wait(T, |f| {
            f["message"] == "DataStatusEvent" && f["data"][0]["operationId"] == "j"
        })
        .await
        .unwrap();
    assert_eq!(f["data"][0]["status"], "ACCEPTED", "{f}");
    c
}
