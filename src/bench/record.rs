//! `streamgate bench-record`: what recording costs a running server. It publishes N streams over
//! RTMP without encoding (`ffmpeg -c copy` of a 720p clip, so the load generator costs little),
//! measures the server with the streams alone, then with all of them recorded at once (pass-through,
//! no re-encoding), and reports CPU and memory per recorded stream. Then it times snapshots of one
//! stream (median and p90). Figures go to stdout as Markdown.

use super::{measure_window, percentile};
use crate::client::http;
use anyhow::Context;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `streamgate bench-record`.
#[derive(clap::Args, Debug, Clone)]
pub struct RecordBenchArgs {
    /// The server's process id (its CPU and memory are read from /proc).
    #[arg(long)]
    pub server_pid: u32,
    /// The server's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// The server's RTMP address.
    #[arg(long, default_value = "127.0.0.1:1935")]
    pub rtmp: SocketAddr,
    /// Streams published and recorded at once.
    #[arg(long, default_value_t = 20)]
    pub streams: usize,
    /// An H.264 + AAC FLV/MP4 clip to publish (made with ffmpeg when not given: 1280x720 30 fps,
    /// 2 Mbit/s, GOP 2 s).
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Seconds of each measuring window.
    #[arg(long, default_value_t = 10)]
    pub window: u64,
    /// Snapshots timed.
    #[arg(long, default_value_t = 20)]
    pub snapshots: usize,
}

fn make_clip() -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join("streamgate-bench-720p.flv");
    if path.exists() {
        return Ok(path);
    }
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2M",
        ])
        .args([
            "-g", "60", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
        ])
        .arg(&path)
        .status()
        .context("running ffmpeg")?;
    anyhow::ensure!(ok.success(), "ffmpeg could not make the clip");
    Ok(path)
}

/// Publishers that are killed when dropped.
struct Publishers(Vec<Child>);

impl Drop for Publishers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn rest(addr: SocketAddr, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let a = http::request(
        addr,
        "POST",
        path,
        Some("application/json"),
        &body.to_string(),
    )
    .await?;
    Ok((
        a.status,
        serde_json::from_str(&a.body).unwrap_or(Value::Null),
    ))
}

async fn publisher_of(addr: SocketAddr, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = rest(
            addr,
            "/rest-api/stream/find",
            json!({"name": name, "published": true}),
        )
        .await?;
        if s == 200 && v[0]["width"].as_i64().unwrap_or(0) > 0 {
            return Ok(v[0]["mediaSessionId"].as_str().unwrap_or("").to_owned());
        }
        anyhow::ensure!(Instant::now() < deadline, "{name} was not published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the benchmark against a server that is already running.
pub async fn run(args: RecordBenchArgs) -> anyhow::Result<()> {
    let clip = match &args.clip {
        Some(c) => c.clone(),
        None => make_clip()?,
    };
    let idle = measure_window(args.server_pid, args.window.min(5)).await?;
    let mut pubs = Publishers(Vec::new());
    let mut ids = Vec::new();
    for i in 0..args.streams {
        let url = format!("rtmp://{}/live/rec-bench-{i}", args.rtmp);
        pubs.0.push(
            Command::new("ffmpeg")
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
                .context("running ffmpeg")?,
        );
    }
    for i in 0..args.streams {
        ids.push(publisher_of(args.http, &format!("rec-bench-{i}")).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = measure_window(args.server_pid, args.window).await?;
    for id in &ids {
        let (s, v) = rest(
            args.http,
            "/rest-api/stream/startRecording",
            json!({"mediaSessionId": id}),
        )
        .await?;
        anyhow::ensure!(s == 200, "startRecording answered {s}: {v}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rec = measure_window(args.server_pid, args.window).await?;

    // Snapshots of a recorded 720p stream, at random points of its GOP.
    let mut times = Vec::new();
    for _ in 0..args.snapshots {
        tokio::time::sleep(Duration::from_millis(100 + u64::from(rand_ms() % 900))).await;
        let t = Instant::now();
        let (s, v) = rest(
            args.http,
            "/rest-api/stream/snapshot",
            json!({"streamName": "rec-bench-0"}),
        )
        .await?;
        anyhow::ensure!(s == 200 && v["data"].is_string(), "snapshot answered {s}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for id in &ids {
        let _ = rest(
            args.http,
            "/rest-api/stream/stopRecording",
            json!({"mediaSessionId": id}),
        )
        .await;
    }
    drop(pubs);
    times.sort_by(f64::total_cmp);

    let n = args.streams as f64;
    println!("| state | server CPU % | RSS MiB | threads |\n|---|---|---|---|");
    for (what, w) in [
        ("idle", &idle),
        ("streams published", &live),
        ("all recorded", &rec),
    ] {
        println!(
            "| {what} | {:.1} | {:.1} | {} |",
            w.server_cpu_pct,
            w.rss_kib as f64 / 1024.0,
            w.threads
        );
    }
    println!(
        "\nper recorded stream: {:.2} % of a core, {:.2} MiB, {:.1} threads ({} streams, load generator {:.1} %)",
        (rec.server_cpu_pct - live.server_cpu_pct) / n,
        (rec.rss_kib as f64 - live.rss_kib as f64) / 1024.0 / n,
        (rec.threads as f64 - live.threads as f64) / n,
        args.streams,
        rec.client_cpu_pct,
    );
    println!(
        "snapshot of a 720p stream over REST ({} taken): median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn rand_ms() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
