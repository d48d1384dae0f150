//! `streamgate bench`: measures a running server from the outside, with the same GStreamer clients
//! the tests use. It publishes one live stream, then reports the server's idle cost, the time from
//! `playStream` to a new viewer's first decoded frame, how many WebRTC viewers it holds at full frame
//! rate with its CPU, memory and threads per viewer, and whether a burst of joins stalls the viewers
//! already watching. Figures go to stdout as Markdown (and raw JSON lines when asked).

pub mod record;

use crate::client::{self, PlayOptions, PublishOptions, TestPlayer, WcsConnection};
use crate::engine::media::Codec;
use anyhow::Context;
use serde_json::json;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Linux reports process CPU times in USER_HZ ticks, which is 100 on every mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// Options of `streamgate bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Signaling URL of the server under test.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    pub url: String,
    /// PID of the server process (for its CPU, memory and threads).
    #[arg(long)]
    pub server_pid: u32,
    /// Stream name to publish.
    #[arg(long, default_value = "bench")]
    pub name: String,
    /// Picture width of the published stream.
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    /// Picture height.
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Video bitrate, kbit/s.
    #[arg(long, default_value_t = 1500)]
    pub kbps: u32,
    /// Time-to-first-frame samples (0 skips).
    #[arg(long, default_value_t = 20)]
    pub ttff_samples: usize,
    /// Viewer counts to measure, ascending (empty skips).
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,150")]
    pub viewers: Vec<usize>,
    /// New viewers per second while ramping up.
    #[arg(long, default_value_t = 10.0)]
    pub ramp: f64,
    /// Seconds to let a point settle before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Seconds each point is measured over.
    #[arg(long, default_value_t = 20)]
    pub measure: u64,
    /// Viewers joining at once in the burst test (0 skips).
    #[arg(long, default_value_t = 50)]
    pub burst: usize,
    /// Viewers already watching during the burst.
    #[arg(long, default_value_t = 50)]
    pub burst_base: usize,
    /// Append raw figures as JSON lines to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Measure a stream that is already published (e.g. a clip sent by `ffmpeg -c copy` over RTMP)
    /// instead of publishing a test pattern, so no encoder runs in the load generator.
    #[arg(long)]
    pub existing: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    ticks: u64,
    rss_kib: u64,
    threads: u64,
}

fn proc_sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        ticks,
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
    })
}

pub(crate) struct Window {
    pub(crate) server_cpu_pct: f64,
    pub(crate) client_cpu_pct: f64,
    pub(crate) rss_kib: u64,
    pub(crate) threads: u64,
}

pub(crate) async fn measure_window(pid: u32, secs: u64) -> anyhow::Result<Window> {
    let me = std::process::id();
    let (s0, c0, t0) = (proc_sample(pid)?, proc_sample(me)?, Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (s1, c1, el) = (
        proc_sample(pid)?,
        proc_sample(me)?,
        t0.elapsed().as_secs_f64(),
    );
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / TICKS_PER_SEC / el * 100.0;
    Ok(Window {
        server_cpu_pct: pct(s0.ticks, s1.ticks),
        client_cpu_pct: pct(c0.ticks, c1.ticks),
        rss_kib: s1.rss_kib,
        threads: s1.threads,
    })
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn random_ms(max: u64) -> u64 {
    let b = uuid::Uuid::new_v4().as_u128();
    (b % u128::from(max.max(1))) as u64
}

type Viewer = (WcsConnection, TestPlayer);

async fn join(url: String, name: String, decode: bool) -> anyhow::Result<Viewer> {
    let mut c = WcsConnection::connect(&url).await?;
    let opts = PlayOptions {
        codecs: vec![Codec::H264],
        decode,
        ice_addresses: vec![IpAddr::from([127, 0, 0, 1])],
    };
    let p = client::play_with(&mut c, &name, &opts).await?;
    Ok((c, p))
}

/// Adds `n` viewers at `rate` joins per second; returns them once each has a frame.
async fn add_viewers(args: &BenchArgs, n: usize, rate: f64) -> anyhow::Result<Vec<Viewer>> {
    let mut set = tokio::task::JoinSet::new();
    let gap = if rate > 0.0 {
        Duration::from_secs_f64(1.0 / rate)
    } else {
        Duration::ZERO
    };
    for _ in 0..n {
        set.spawn(join(args.url.clone(), args.name.clone(), false));
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    for (_, p) in &out {
        p.wait_frames(1, Duration::from_secs(40)).await?;
    }
    Ok(out)
}

fn emit(json_out: &mut Option<std::fs::File>, v: serde_json::Value) {
    if let Some(f) = json_out {
        let _ = writeln!(f, "{v}");
    }
}

/// Runs the benchmark against a server that is already running.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut json_out = match &args.json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let pid = args.server_pid;
    let idle = proc_sample(pid)?;
    println!("# streamgate bench\n");
    println!(
        "server pid {pid}; stream {}x{} {} fps {} kbit/s H.264 + Opus; clients in this process\n",
        args.width, args.height, args.fps, args.kbps
    );
    println!(
        "server before publishing: RSS {:.1} MiB, {} threads\n",
        idle.rss_kib as f64 / 1024.0,
        idle.threads
    );
    emit(
        &mut json_out,
        json!({"point": "idle", "rss_kib": idle.rss_kib, "threads": idle.threads}),
    );

    let mut pc = WcsConnection::connect(&args.url).await?;
    let publisher = if args.existing {
        None
    } else {
        Some(publish_pattern(&args, &mut pc).await?)
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base = measure_window(pid, 10).await?;
    println!(
        "## {} (no viewers)\n\n| server CPU % | RSS MiB | threads |\n|---|---|---|",
        if args.existing {
            "Stream only"
        } else {
            "Publisher only"
        }
    );
    println!(
        "| {:.1} | {:.1} | {} |\n",
        base.server_cpu_pct,
        base.rss_kib as f64 / 1024.0,
        base.threads
    );
    emit(
        &mut json_out,
        json!({"point": "publisher", "cpu_pct": base.server_cpu_pct, "rss_kib": base.rss_kib, "threads": base.threads}),
    );
    run_points(&args, pid, &base, &mut json_out).await?;
    drop(publisher);
    pc.close().await;
    Ok(())
}

async fn publish_pattern(
    args: &BenchArgs,
    pc: &mut WcsConnection,
) -> anyhow::Result<client::TestPublisher> {
    let opts = PublishOptions {
        width: args.width,
        height: args.height,
        fps: args.fps,
        kbps: args.kbps,
        gop: 0,
        codec: Codec::H264,
        audio: true,
        ice_addresses: vec![IpAddr::from([127, 0, 0, 1])],
        ..Default::default()
    };
    let publisher = client::publish(pc, &args.name, &opts).await?;
    let st = pc
        .wait_status(&publisher.media_session_id, Duration::from_secs(15))
        .await?;
    anyhow::ensure!(st["status"] == "PUBLISHING", "publish failed: {st}");
    Ok(publisher)
}

async fn run_points(
    args: &BenchArgs,
    pid: u32,
    base: &Window,
    json_out: &mut Option<std::fs::File>,
) -> anyhow::Result<()> {
    if args.ttff_samples > 0 {
        let mut samples = Vec::new();
        for _ in 0..args.ttff_samples {
            // Land at a random point of the GOP.
            tokio::time::sleep(Duration::from_millis(500 + random_ms(2000))).await;
            let (c, p) = join(args.url.clone(), args.name.clone(), true).await?;
            let s = p.wait_frames(1, Duration::from_secs(10)).await?;
            let ms = s
                .first_frame
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(f64::NAN);
            samples.push(ms);
            drop(p);
            c.close().await;
        }
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "## Time from playStream to the first decoded frame ({} joins)\n",
            samples.len()
        );
        println!("| median ms | p90 ms | min ms | max ms |\n|---|---|---|---|");
        println!(
            "| {:.0} | {:.0} | {:.0} | {:.0} |\n",
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9),
            sorted.first().copied().unwrap_or(f64::NAN),
            sorted.last().copied().unwrap_or(f64::NAN)
        );
        emit(json_out, json!({"point": "ttff", "ms": samples}));
    }

    let mut viewers: Vec<Viewer> = Vec::new();
    if !args.viewers.is_empty() {
        println!("## Fan-out\n");
        println!("| viewers | server CPU % | per viewer % | RSS MiB | per viewer MiB | threads | per viewer | min fps | median fps | below 95 % | client CPU % |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
    }
    for &n in &args.viewers {
        if n > viewers.len() {
            let more = add_viewers(args, n - viewers.len(), args.ramp).await?;
            viewers.extend(more);
        }
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let f0: Vec<u64> = viewers.iter().map(|(_, p)| p.stats().frames).collect();
        let t0 = Instant::now();
        let w = measure_window(pid, args.measure).await?;
        let el = t0.elapsed().as_secs_f64();
        let mut fps: Vec<f64> = viewers
            .iter()
            .zip(&f0)
            .map(|((_, p), a)| (p.stats().frames - a) as f64 / el)
            .collect();
        fps.sort_by(|a, b| a.total_cmp(b));
        let below = fps
            .iter()
            .filter(|f| **f < 0.95 * f64::from(args.fps))
            .count();
        let nf = n as f64;
        println!(
            "| {n} | {:.1} | {:.2} | {:.1} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {below} | {:.1} |",
            w.server_cpu_pct,
            (w.server_cpu_pct - base.server_cpu_pct) / nf,
            w.rss_kib as f64 / 1024.0,
            (w.rss_kib as f64 - base.rss_kib as f64) / 1024.0 / nf,
            w.threads,
            (w.threads as f64 - base.threads as f64) / nf,
            fps.first().copied().unwrap_or(0.0),
            percentile(&fps, 0.5),
            w.client_cpu_pct,
        );
        emit(
            json_out,
            json!({"point": "fanout", "viewers": n, "cpu_pct": w.server_cpu_pct, "rss_kib": w.rss_kib,
            "threads": w.threads, "fps_min": fps.first(), "fps_median": percentile(&fps, 0.5), "below_95": below,
            "client_cpu_pct": w.client_cpu_pct}),
        );
        if below > 0 {
            println!(
                "\nstopping: {below} viewer(s) below 95 % of {} fps at {n} viewers",
                args.fps
            );
            break;
        }
    }
    println!();

    if args.burst > 0 {
        if viewers.len() > args.burst_base {
            viewers.truncate(args.burst_base);
        } else if viewers.len() < args.burst_base {
            let more = add_viewers(args, args.burst_base - viewers.len(), args.ramp).await?;
            viewers.extend(more);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (_, p) in &viewers {
            p.reset_gap();
        }
        let f0: Vec<u64> = viewers.iter().map(|(_, p)| p.stats().frames).collect();
        let t0 = Instant::now();
        let joined = add_viewers(args, args.burst, 0.0).await?;
        let join_s = t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let el = t0.elapsed().as_secs_f64();
        let gaps: Vec<f64> = viewers
            .iter()
            .map(|(_, p)| p.stats().max_gap.as_secs_f64() * 1000.0)
            .collect();
        let worst_gap = gaps.iter().copied().fold(0.0, f64::max);
        let mut fps: Vec<f64> = viewers
            .iter()
            .zip(&f0)
            .map(|((_, p), a)| (p.stats().frames - a) as f64 / el)
            .collect();
        fps.sort_by(|a, b| a.total_cmp(b));
        let mut ttf: Vec<f64> = joined
            .iter()
            .filter_map(|(_, p)| p.stats().first_frame.map(|d| d.as_secs_f64() * 1000.0))
            .collect();
        ttf.sort_by(|a, b| a.total_cmp(b));
        println!(
            "## Join burst: {} viewers join at once while {} watch\n",
            args.burst,
            viewers.len()
        );
        println!("| all joined in s | newcomers' first frame median / max ms | watchers' worst frame gap ms | watchers' min fps over the burst |");
        println!("|---|---|---|---|");
        println!(
            "| {join_s:.2} | {:.0} / {:.0} | {worst_gap:.0} | {:.1} |\n",
            percentile(&ttf, 0.5),
            ttf.last().copied().unwrap_or(f64::NAN),
            fps.first().copied().unwrap_or(0.0)
        );
        emit(
            json_out,
            json!({"point": "burst", "burst": args.burst, "watchers": viewers.len(), "join_s": join_s,
            "worst_gap_ms": worst_gap, "min_fps": fps.first(), "newcomer_ttff_ms": ttf}),
        );
        drop(joined);
    }
    drop(viewers);
    Ok(())
}
