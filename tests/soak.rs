//! Soak: hundreds of connect-publish-play-leave cycles against the real binary, over WCS WebRTC
//! signaling, WHIP/WHEP and RTMP; then streams, sessions and pipelines are back to zero, and the
//! server process's threads, file descriptors and resident memory are back to their baseline
//! (within the tolerances below). The figures are printed.

mod common;

use serde_json::json;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use streamgate::client::{self, http, PlayOptions, PublishOptions, Via, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);
/// Cycles per protocol.
const CYCLES: usize = 100;
/// File descriptors the server may hold above its baseline after the cycles (log files, a
/// listener's pending accept, GStreamer's lazily opened device files).
const FD_TOLERANCE: f64 = 8.0;
/// Threads above the baseline (thread pools grow to their size on demand).
const THREAD_TOLERANCE: f64 = 4.0;
/// Resident memory above the baseline: the allocator keeps some freed memory for reuse.
const RSS_TOLERANCE_MIB: f64 = 48.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    http: SocketAddr,
    rtmp: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server() -> Server {
    let (hp, rp) = (free_port(), free_port());
    let data = std::env::temp_dir().join(format!("sg-soak-{hp}"));
    let child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--http", &format!("127.0.0.1:{hp}")])
        .args([
            "--rtmp",
            &format!("127.0.0.1:{rp}"),
            "--rtsp",
            "127.0.0.1:0",
        ])
        .args(["--ice-address", "127.0.0.1", "--rtmp-reconnect-grace", "0"])
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let server = Server {
        child,
        http: format!("127.0.0.1:{hp}").parse().unwrap(),
        rtmp: format!("127.0.0.1:{rp}").parse().unwrap(),
    };
    let addr = server.http;
    common::eventually(T, "server healthy", || async move {
        tokio::net::TcpStream::connect(addr).await.is_ok()
            && common::http(addr, "GET", "/health", "").await.0 == 200
    })
    .await;
    server
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    fds: f64,
    threads: f64,
    rss_mib: f64,
}

/// Waits until nothing is left, then reads the process figures.
async fn settled(addr: SocketAddr) -> Figures {
    common::eventually(T, "everything released", || async move {
        common::metric(addr, "streamgate_pipelines").await == 0.0
            && common::metric(addr, "streamgate_streams").await == 0.0
            && common::metric(addr, "streamgate_media_sessions").await == 0.0
            && common::metric(addr, "streamgate_signaling_sessions").await == 0.0
    })
    .await;
    // Threads of finished pipelines and closed sockets take a moment to go.
    tokio::time::sleep(Duration::from_millis(800)).await;
    Figures {
        fds: common::metric(addr, "process_open_fds").await,
        threads: common::metric(addr, "process_threads").await,
        rss_mib: common::metric(addr, "process_resident_memory_bytes").await / 1048576.0,
    }
}

fn small() -> PublishOptions {
    PublishOptions {
        width: 320,
        height: 240,
        fps: 15,
        kbps: 300,
        ..Default::default()
    }
}

fn player_opts() -> PlayOptions {
    PlayOptions {
        codecs: vec![Codec::H264],
        decode: false,
        ice_addresses: vec!["127.0.0.1".parse().unwrap()],
    }
}

async fn webrtc_cycle(addr: SocketAddr, n: usize) {
    let url = common::ws_url(addr);
    let name = format!("soak-ws-{n}");
    let (pc, publisher) = common::publishing(&url, &name, &small()).await;
    let mut vc = WcsConnection::connect(&url).await.unwrap();
    let player = client::play_via(Via::Wcs(&mut vc), &name, &player_opts())
        .await
        .unwrap();
    player.wait_frames(3, T).await.unwrap();
    drop(player);
    vc.close().await;
    drop(publisher);
    pc.close().await;
}

async fn whip_cycle(addr: SocketAddr, n: usize) {
    let name = format!("soak-whip-{n}");
    let publisher = client::publish_via(Via::Whip(addr), &name, &small(), json!(null))
        .await
        .unwrap();
    let player = client::play_via(Via::Whip(addr), &name, &player_opts())
        .await
        .unwrap();
    player.wait_frames(3, T).await.unwrap();
    for resource in [&player.resource, &publisher.resource] {
        let path = resource.as_deref().expect("a WHIP/WHEP resource");
        let a = http::request(addr, "DELETE", path, None, "").await.unwrap();
        assert_eq!(a.status, 200, "DELETE {path}: {}", a.body);
    }
}

/// A two-second H.264 + AAC clip, made once, that RTMP publishers send without encoding.
fn clip() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sg-soak-clip-{}.flv", std::process::id()));
    if !path.exists() {
        let ok = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args([
                "-t",
                "2",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "15",
            ])
            .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(ok.success());
    }
    path
}

async fn rtmp_cycle(server: (SocketAddr, SocketAddr), clip: std::path::PathBuf, n: usize) {
    let (addr, rtmp) = server;
    let name = format!("soak-rtmp-{n}");
    let url = format!("rtmp://{rtmp}/live/{name}");
    let mut publisher = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(&clip)
        .args(["-c", "copy", "-f", "flv", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    let body = json!({ "name": name }).to_string();
    common::eventually(T, "RTMP stream published", || {
        let body = body.clone();
        async move {
            common::http(addr, "POST", "/rest-api/stream/find", &body)
                .await
                .0
                == 200
        }
    })
    .await;
    let read = tokio::task::spawn_blocking(move || {
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-rw_timeout",
                "10000000",
            ])
            .args([
                "-i",
                &url,
                "-map",
                "0:v",
                "-frames:v",
                "5",
                "-c",
                "copy",
                "-f",
                "null",
                "-",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("ffmpeg runs")
    })
    .await
    .unwrap();
    assert!(
        read.status.success(),
        "RTMP play of {name} failed: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let _ = publisher.kill();
    let _ = tokio::task::spawn_blocking(move || publisher.wait()).await;
}

/// Runs `CYCLES` cycles, `parallel` at a time.
async fn cycles<F, Fut>(what: &str, parallel: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut n = 0;
    while n < CYCLES {
        let batch: Vec<Fut> = (n..(n + parallel).min(CYCLES)).map(&f).collect();
        n += batch.len();
        futures::future::join_all(batch).await;
    }
    eprintln!(
        "{CYCLES} {what} cycles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_cycles_leave_nothing_behind() {
    common::init();
    let server = start_server().await;
    let (addr, rtmp) = (server.http, server.rtmp);
    let clip = clip();
    // One of each first: plugins load, pools and caches reach their working size.
    webrtc_cycle(addr, 10_000).await;
    whip_cycle(addr, 10_000).await;
    rtmp_cycle((addr, rtmp), clip.clone(), 10_000).await;
    let base = settled(addr).await;
    eprintln!("baseline: {base:?}");

    cycles("WebRTC (WCS signaling)", 2, |n| webrtc_cycle(addr, n)).await;
    let after_ws = settled(addr).await;
    eprintln!("after WebRTC: {after_ws:?}");
    cycles("WHIP/WHEP", 2, |n| whip_cycle(addr, n)).await;
    let after_whip = settled(addr).await;
    eprintln!("after WHIP/WHEP: {after_whip:?}");
    cycles("RTMP", 3, |n| rtmp_cycle((addr, rtmp), clip.clone(), n)).await;
    let end = settled(addr).await;
    eprintln!("after RTMP: {end:?}");

    assert!(
        end.fds <= base.fds + FD_TOLERANCE,
        "file descriptors grew from {} to {}",
        base.fds,
        end.fds
    );
    assert!(
        end.threads <= base.threads + THREAD_TOLERANCE,
        "threads grew from {} to {}",
        base.threads,
        end.threads
    );
    assert!(
        end.rss_mib <= base.rss_mib + RSS_TOLERANCE_MIB,
        "resident memory grew from {:.1} MiB to {:.1} MiB",
        base.rss_mib,
        end.rss_mib
    );
    let _ = std::fs::remove_file(clip);
}
