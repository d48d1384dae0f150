//! The `streamgate` command: `serve` runs the server (no config file needed), `check` validates a
//! configuration and the installed GStreamer elements.

use clap::{Args, Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use streamgate::config::Config;

#[derive(Parser)]
#[command(
    name = "streamgate",
    version,
    about = "A GStreamer media server with WCS-compatible signaling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Check the configuration and the installed GStreamer elements, then exit.
    Check(ServeArgs),
    /// Publish a live test pattern (and tone) to a server over WCS signaling, until interrupted.
    Publish(PublishArgs),
    /// Measure a running server: time to first frame, viewers held, join bursts (see BENCHMARKS.md).
    Bench(streamgate::bench::BenchArgs),
    /// Measure what recording costs a running server, and snapshot latency (see BENCHMARKS.md).
    BenchRecord(streamgate::bench::record::RecordBenchArgs),
}

#[derive(Args)]
struct PublishArgs {
    /// Signaling URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    url: String,
    /// Stream name.
    #[arg(long)]
    name: String,
    /// Video codec: h264 or vp8.
    #[arg(long, default_value = "h264")]
    codec: String,
    /// Picture width.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// Picture height.
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video bitrate, kbit/s.
    #[arg(long, default_value_t = 1500)]
    kbps: u32,
    /// Local addresses ICE may use (repeatable) [default: 127.0.0.1].
    #[arg(long = "ice-address")]
    ice_address: Vec<IpAddr>,
    /// Test picture: `ball`, `clock` (the wall-clock time burned in as blocks, for latency
    /// measurements) or a colour `0xAARRGGBB`.
    #[arg(long, default_value = "ball")]
    pattern: String,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file; anything it does not set keeps its default.
    #[arg(long, env = "STREAMGATE_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP address (signaling, REST, pages) [default: 0.0.0.0:8080].
    #[arg(long, env = "STREAMGATE_HTTP")]
    http: Option<SocketAddr>,
    /// RTMP address [default: 0.0.0.0:1935].
    #[arg(long, env = "STREAMGATE_RTMP")]
    rtmp: Option<SocketAddr>,
    /// RTMP application name, as in rtmp://host/APP/stream [default: live].
    #[arg(long, env = "STREAMGATE_RTMP_APP")]
    rtmp_app: Option<String>,
    /// Seconds an RTMP stream waits for its dropped publisher to come back [default: 10].
    #[arg(long)]
    rtmp_reconnect_grace: Option<f64>,
    /// RTSP address [default: 0.0.0.0:8554].
    #[arg(long, env = "STREAMGATE_RTSP")]
    rtsp: Option<SocketAddr>,
    /// Let RTSP clients publish (ANNOUNCE/RECORD) to rtsp://host:8554/NAME.
    #[arg(long, env = "STREAMGATE_RTSP_PUBLISH")]
    rtsp_publish: bool,
    /// HLS listener, WCS's HLS port: /NAME/NAME.m3u8 [default: 0.0.0.0:8082].
    #[arg(long, env = "STREAMGATE_HLS")]
    hls: Option<SocketAddr>,
    /// Data directory (recordings, media files, history) [default: ./data].
    #[arg(long, env = "STREAMGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The media folder vod:// and vod-live:// names play from [default: DATA_DIR/media].
    #[arg(long, env = "STREAMGATE_MEDIA_DIR")]
    media_dir: Option<PathBuf>,
    /// Where recordings go [default: DATA_DIR/records].
    #[arg(long, env = "STREAMGATE_RECORD_DIR")]
    record_dir: Option<PathBuf>,
    /// Serve web pages and the SDK from this directory instead of the built-in copies.
    #[arg(long, env = "STREAMGATE_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Gather ICE candidates only on this local address (repeatable) [default: every interface].
    #[arg(long = "ice-address")]
    ice_address: Vec<IpAddr>,
    /// Public address to announce for 1:1 NAT.
    #[arg(long, env = "STREAMGATE_ANNOUNCE_ADDRESS")]
    announce_address: Option<IpAddr>,
    /// STUN server, stun://host:port (repeatable).
    #[arg(long = "stun")]
    stun: Vec<String>,
    /// TURN server, turn://user:password@host:port (repeatable).
    #[arg(long = "turn")]
    turn: Vec<String>,
    /// Lowest UDP port for WebRTC media [default: 31000].
    #[arg(long)]
    ice_port_min: Option<u16>,
    /// Highest UDP port for WebRTC media [default: 31999].
    #[arg(long)]
    ice_port_max: Option<u16>,
    /// Seconds between server pings on the signaling socket [default: 5].
    #[arg(long)]
    ping_interval: Option<f64>,
    /// Seconds of silence after which a signaling client is dropped [default: 30].
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// Require `Authorization: Bearer TOKEN` on WHIP/WHEP requests.
    #[arg(long, env = "STREAMGATE_WHIP_TOKEN")]
    whip_token: Option<String>,
    /// Any setting of the configuration file, as KEY=VALUE with KEY its path
    /// (`--set limits.max_connections_per_ip=64`); repeatable; applied last. From the environment:
    /// STREAMGATE_SET, settings separated by `;`.
    #[arg(long = "set", env = "STREAMGATE_SET", value_delimiter = ';')]
    set: Vec<String>,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(v) = self.http {
            c.http = v;
        }
        if let Some(v) = self.rtmp {
            c.rtmp = v;
        }
        if let Some(v) = self.hls {
            c.hls.listen = Some(v);
        }
        if let Some(v) = self.rtsp {
            c.rtsp = v;
        }
        if self.rtsp_publish {
            c.rtsp_publish = true;
        }
        if let Some(v) = &self.rtmp_app {
            c.rtmp_app = v.clone();
        }
        if let Some(v) = self.rtmp_reconnect_grace {
            c.rtmp_reconnect_grace = Duration::try_from_secs_f64(v)?;
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.media_dir {
            c.vod.media_dir = Some(v.clone());
        }
        if let Some(v) = &self.record_dir {
            c.record.dir = Some(v.clone());
        }
        if let Some(v) = &self.web_dir {
            c.web_dir = Some(v.clone());
        }
        if !self.ice_address.is_empty() {
            c.ice.addresses = self.ice_address.clone();
        }
        if self.announce_address.is_some() {
            c.ice.announce_address = self.announce_address;
        }
        if !self.stun.is_empty() {
            c.ice.stun_servers = self.stun.clone();
        }
        if !self.turn.is_empty() {
            c.ice.turn_servers = self.turn.clone();
        }
        if let Some(v) = self.ice_port_min {
            c.ice.port_min = v;
        }
        if let Some(v) = self.ice_port_max {
            c.ice.port_max = v;
        }
        if let Some(v) = self.ping_interval {
            c.signaling.ping_interval = Duration::try_from_secs_f64(v)?;
        }
        if let Some(v) = self.idle_timeout {
            c.signaling.idle_timeout = Duration::try_from_secs_f64(v)?;
        }
        if self.whip_token.is_some() {
            c.whip.token = self.whip_token.clone();
        }
        for a in &self.set {
            c.set(a)?;
        }
        c.validate()?;
        Ok(c)
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    streamgate::telemetry::init();
    gst::init()?;
    match cli.command {
        Command::Check(args) => {
            args.config()?;
            streamgate::engine::templates::validate()?;
            println!("configuration and GStreamer elements OK");
            Ok(())
        }
        Command::Publish(a) => {
            let codec = match a.codec.to_ascii_lowercase().as_str() {
                "h264" => streamgate::engine::media::Codec::H264,
                "vp8" => streamgate::engine::media::Codec::Vp8,
                other => anyhow::bail!("unknown codec {other:?} (h264 or vp8)"),
            };
            let opts = streamgate::client::PublishOptions {
                width: a.width,
                height: a.height,
                fps: a.fps,
                kbps: a.kbps,
                gop: 0,
                codec,
                audio: true,
                pattern: a.pattern.clone(),
                ice_addresses: if a.ice_address.is_empty() {
                    vec![IpAddr::from([127, 0, 0, 1])]
                } else {
                    a.ice_address
                },
                ..Default::default()
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mut conn = streamgate::client::WcsConnection::connect(&a.url).await?;
                let p = streamgate::client::publish(&mut conn, &a.name, &opts).await?;
                let st = conn.wait_status(&p.media_session_id, Duration::from_secs(15)).await?;
                anyhow::ensure!(st["status"] == "PUBLISHING", "server said {st}");
                eprintln!("publishing {} at {}x{} {} fps {} kbit/s", a.name, opts.width, opts.height, opts.fps, opts.kbps);
                tokio::select! {
                    _ = shutdown_signal() => {}
                    r = conn.wait_status(&p.media_session_id, Duration::from_secs(10 * 365 * 86_400)) => {
                        eprintln!("server ended the stream: {}", r?);
                    }
                }
                drop(p);
                anyhow::Ok(())
            })
        }
        Command::Bench(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(streamgate::bench::run(args))
        }
        Command::BenchRecord(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(streamgate::bench::record::run(args))
        }
        Command::Serve(args) => {
            let config = args.config()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let app = streamgate::start(config).await?;
                shutdown_signal().await;
                // Whatever happens, exit within 5 s of the signal.
                std::thread::spawn(|| {
                    std::thread::sleep(Duration::from_secs(5));
                    eprintln!("shutdown took too long; exiting");
                    std::process::exit(1);
                });
                app.shutdown().await;
                anyhow::Ok(())
            })?;
            Ok(())
        }
    }
}
