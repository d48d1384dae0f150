//! What a hostile or careless client can do, and what it gets: REST refuses simple cross-origin
//! requests and hides secrets; an RTMP stream cannot be taken over during its reconnect grace;
//! silent, slow and too many connections are closed; a publisher that sends no media frees its
//! name; oversized offers, used-up media ports and piles of pending negotiations get a precise
//! answer. Every other stream goes on meanwhile.

mod common;

use common::LONELY_OFFER;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use serde_json::json;
use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};
use streamgate::client::{self, http, PublishOptions, Via, WcsConnection};
use streamgate::engine::media::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(20);

fn ffmpeg_publish(url: &str, seconds: u32) -> Child {
    let encode = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ];
    common::ffmpeg_live("320x240", 48000, seconds, &encode, url)
}

async fn find(addr: SocketAddr, name: &str) -> (u16, String) {
    common::http(
        addr,
        "POST",
        "/rest-api/stream/find",
        &json!({ "name": name }).to_string(),
    )
    .await
}

async fn wait_published(addr: SocketAddr, name: &str) {
    common::eventually(T, "stream published", || async move {
        let (status, body) = find(addr, name).await;
        status == 200 && body.contains("\"width\":320")
    })
    .await;
}

/// Reads until the peer closes; true when it did within `within`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refuses_simple_cross_origin_requests_and_hides_secrets() {
    let app = common::start(common::config()).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/keep?key=s3cret&w=1"), 30);
    wait_published(addr, "keep").await;
    let mut ws = WcsConnection::connect(&common::ws_url(addr)).await.unwrap();

    // What any web page can send without a preflight: text/plain, or no type at all.
    for ct in [Some("text/plain"), None] {
        let a = http::request(addr, "POST", "/rest-api/stream/terminate", ct, "")
            .await
            .unwrap();
        assert_eq!(a.status, 415, "{ct:?}: {}", a.body);
        assert!(a.body.contains("application/json"), "{}", a.body);
    }
    assert_eq!(
        find(addr, "keep").await.0,
        200,
        "the stream was not stopped"
    );

    // A page of another origin is not allowed to POST (the preflight fails) but may read.
    let pre = http::request_with(
        addr,
        "OPTIONS",
        "/rest-api/stream/terminate",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        "",
    )
    .await
    .unwrap();
    let methods = pre.header("access-control-allow-methods").unwrap_or("");
    assert!(!methods.contains("POST"), "preflight allowed POST: {pre:?}");
    let read = http::request_with(
        addr,
        "GET",
        "/rest-api/stream/find_all",
        &[("Origin", "http://evil.example")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), Some("*"));

    // Secrets in the stream key's query are not shown; other sessions' tokens are not given out.
    assert!(read.body.contains("key=***"), "{}", read.body);
    assert!(!read.body.contains("s3cret"), "{}", read.body);
    let conns = http::request(
        addr,
        "POST",
        "/rest-api/connection/find_all",
        Some("application/json"),
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(conns.status, 200);
    assert!(conns.body.contains(ws.session_id()), "{}", conns.body);
    assert!(!conns.body.contains("authToken"), "{}", conns.body);

    // A JSON request still works.
    let (status, _) = common::http(
        addr,
        "POST",
        "/rest-api/stream/terminate",
        r#"{"name":"keep"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let _ = ws.send("ping", json!(null)).await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;

    // With an origin configured, its pages may call every method; others still may not.
    let mut cfg = common::config();
    cfg.rest.cors_origins = vec!["https://admin.example".into()];
    let app = common::start(cfg).await;
    for (origin, allowed) in [
        ("https://admin.example", true),
        ("http://evil.example", false),
    ] {
        let pre = http::request_with(
            app.http_addr,
            "OPTIONS",
            "/rest-api/stream/terminate",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            "",
        )
        .await
        .unwrap();
        let ok = pre.header("access-control-allow-origin") == Some(origin)
            && pre
                .header("access-control-allow-methods")
                .is_some_and(|m| m.contains("POST"));
        assert_eq!(ok, allowed, "{origin}: {pre:?}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtmp_stream_cannot_be_taken_over_during_its_grace() {
    let mut cfg = common::config();
    cfg.rtmp_reconnect_grace = Duration::from_secs(5);
    let app = common::start(cfg).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let mut first = ffmpeg_publish(&format!("rtmp://{rtmp}/live/hj?key=owner"), 60);
    wait_published(http, "hj").await;
    let mut vc = WcsConnection::connect(&common::ws_url(http)).await.unwrap();
    let lo = ["127.0.0.1".parse().unwrap()];
    let player = client::play(&mut vc, "hj", &[Codec::H264], &lo)
        .await
        .unwrap();
    player.wait_frames(10, T).await.unwrap();
    let _ = first.kill();
    let _ = first.wait();

    // Another client, with another key, is refused while the stream waits for its owner.
    let started = Instant::now();
    let mut intruder = ffmpeg_publish(&format!("rtmp://{rtmp}/live/hj?key=intruder"), 60);
    let status = tokio::task::spawn_blocking(move || intruder.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "the intruder's publish was accepted");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal came only after the grace"
    );
    // The viewer is told the stream stopped once the grace ends; it never watches the intruder.
    let stopped = vc
        .wait(T, |f| {
            f["message"] == "notifyStreamStatusEvent" && f["data"][0]["status"] == "STOPPED"
        })
        .await
        .unwrap();
    assert_eq!(stopped["data"][0]["info"], "Stopped by publisher stop");
    // After the grace the name is free for anyone.
    let mut newcomer = ffmpeg_publish(&format!("rtmp://{rtmp}/live/hj?key=intruder"), 30);
    wait_published(http, "hj").await;
    let _ = newcomer.kill();
    let _ = newcomer.wait();
    drop(player);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed() {
    let mut cfg = common::config();
    cfg.limits.http_header_timeout = Duration::from_secs(1);
    cfg.limits.http_idle_timeout = Duration::from_secs(2);
    cfg.limits.rtmp_idle_timeout = Duration::from_secs(1);
    let app = common::start(cfg).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);

    // Headers a byte at a time: closed at the header timeout, though bytes keep coming.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for b in
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if slow.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    let cut = tokio::time::timeout(Duration::from_secs(6), trickle).await;
    assert!(
        matches!(cut, Ok(true)),
        "a slow header sender was not cut off"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // A keep-alive connection that goes quiet after its request is closed at the idle timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);

    // An RTMP client that completes the handshake and then says nothing is closed.
    let (mut quiet, _) = common::rtmp_handshake(rtmp).await;
    assert!(closed_within(&mut quiet, Duration::from_secs(4)).await);

    // The server still serves everyone else.
    assert_eq!(common::http(addr, "GET", "/health", "").await.0, 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let mut cfg = common::config();
    cfg.limits.max_connections_per_ip = 4;
    let app = common::start(cfg).await;
    for target in [app.http_addr, app.rtmp_addr] {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(tokio::net::TcpStream::connect(target).await.unwrap());
        }
        // Give the server the moment to accept them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fifth = tokio::net::TcpStream::connect(target).await.unwrap();
        assert!(
            closed_within(&mut fifth, Duration::from_secs(2)).await,
            "{target}: the fifth connection was kept"
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        common::http(app.http_addr, "GET", "/health", "").await.0,
        200
    );
    app.shutdown().await;
}

/// Publishes `name` over RTMP without ever sending media, keeping the connection busy with
/// protocol messages (window acknowledgement sizes) every 300 ms.
async fn publish_without_media(rtmp: SocketAddr, name: &str, for_how_long: Duration) -> bool {
    let (mut s, leftover) = common::rtmp_handshake(rtmp).await;
    let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    let mut out: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let take = |results: Vec<ClientSessionResult>, out: &mut Vec<u8>, events: &mut Vec<_>| {
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => out.extend_from_slice(&p.bytes),
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                _ => {}
            }
        }
    };
    take(initial, &mut out, &mut events);
    take(
        session.handle_input(&leftover).unwrap(),
        &mut out,
        &mut events,
    );
    let r = session.request_connection("live".into()).unwrap();
    take(vec![r], &mut out, &mut events);
    let mut asked = false;
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        s.write_all(&out).await.unwrap();
        out.clear();
        for e in events.drain(..) {
            match e {
                ClientSessionEvent::ConnectionRequestAccepted if !asked => {
                    asked = true;
                    let r = session
                        .request_publishing(name.into(), PublishRequestType::Live)
                        .unwrap();
                    if let ClientSessionResult::OutboundResponse(p) = r {
                        out.extend_from_slice(&p.bytes);
                    }
                }
                ClientSessionEvent::PublishRequestAccepted => {
                    s.write_all(&out).await.unwrap();
                    // Window acknowledgement size (type 5) on chunk stream 2: valid, not media.
                    let ack = [2u8, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0, 0x26, 0x25, 0xa0];
                    let end = Instant::now() + for_how_long;
                    while Instant::now() < end {
                        if s.write_all(&ack).await.is_err() {
                            return true;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    return false;
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            continue;
        }
        assert!(Instant::now() < deadline, "publish was not accepted");
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "server closed before accepting the publish");
        take(
            session.handle_input(&buf[..n]).unwrap(),
            &mut out,
            &mut events,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtmp_publisher_without_media_frees_its_name() {
    let mut cfg = common::config();
    cfg.limits.rtmp_media_timeout = Duration::from_secs(2);
    let app = common::start(cfg).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let started = Instant::now();
    let cut = publish_without_media(rtmp, "mute", Duration::from_secs(12)).await;
    assert!(cut, "a publisher that sends no media was kept for 12 s");
    assert!(started.elapsed() < Duration::from_secs(8));
    // After the reconnect grace (1 s in tests) the name is free again.
    common::eventually(T, "name released", || async move {
        find(http, "mute").await.0 == 404
    })
    .await;
    let mut real = ffmpeg_publish(&format!("rtmp://{rtmp}/live/mute"), 30);
    wait_published(http, "mute").await;
    let _ = real.kill();
    let _ = real.wait();
    app.shutdown().await;
}

fn publish_msg(msid: &str, name: &str, sdp: &str) -> serde_json::Value {
    json!({"mediaSessionId": msid, "name": name, "published": true, "hasVideo": true, "hasAudio": true,
           "status": "PENDING", "record": false, "mediaProvider": "WebRTC", "sdp": sdp})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_offers_are_refused_with_a_reason() {
    let app = common::start(common::config()).await;
    let mut c = WcsConnection::connect(&common::ws_url(app.http_addr))
        .await
        .unwrap();
    let extra = |n: usize| -> String {
        (0..n)
            .map(|i| format!("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:x{i}\r\na=rtpmap:111 opus/48000/2\r\n"))
            .collect()
    };
    // 1,000 m-lines, about 100 KB: within a signaling frame, past the offer limit.
    let many = format!("{LONELY_OFFER}{}", extra(1000));
    assert!(many.len() > 90_000 && many.len() < 200_000);
    let small_many = format!("{LONELY_OFFER}{}", extra(20));
    for (msid, sdp, says) in [
        ("big", &many, "bytes"),
        ("many", &small_many, "media sections"),
    ] {
        c.send("publishStream", publish_msg(msid, msid, sdp))
            .await
            .unwrap();
        let st = c.wait_status(msid, T).await.unwrap();
        assert_eq!(st["status"], "FAILED", "{st}");
        assert!(st["info"].as_str().unwrap().contains(says), "{st}");
    }
    assert_eq!(
        common::metric(app.http_addr, "streamgate_pipelines").await,
        0.0
    );
    c.close().await;
    app.shutdown().await;
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_up_media_ports_get_503_and_free_the_name() {
    let mut cfg = common::config();
    let port = free_udp_port();
    cfg.ice.port_min = port;
    cfg.ice.port_max = port;
    let app = common::start(cfg).await;
    let addr = app.http_addr;
    let opts = PublishOptions {
        width: 320,
        height: 240,
        ..Default::default()
    };
    let first = client::publish_via(Via::Whip(addr), "one", &opts, json!(null))
        .await
        .unwrap();
    for _ in 0..2 {
        let a = http::request(
            addr,
            "POST",
            "/whip/two",
            Some("application/sdp"),
            LONELY_OFFER,
        )
        .await
        .unwrap();
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(a.body.contains("No free media ports"), "{}", a.body);
    }
    assert_eq!(find(addr, "two").await.0, 404, "the name stayed reserved");
    // Over WCS signaling the publisher is told the same.
    let mut c = WcsConnection::connect(&common::ws_url(addr)).await.unwrap();
    c.send("publishStream", publish_msg("p3", "three", LONELY_OFFER))
        .await
        .unwrap();
    let st = c.wait_status("p3", T).await.unwrap();
    assert_eq!(st["status"], "FAILED");
    assert_eq!(st["info"], "No free media ports; try again later");
    drop(first);
    c.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_negotiations_are_bounded_and_expire() {
    let mut cfg = common::config();
    cfg.limits.max_pending_per_client = 2;
    cfg.ice.connect_timeout = Duration::from_secs(2);
    let app = common::start(cfg).await;
    let addr = app.http_addr;
    let post = |name: &'static str| async move {
        http::request(
            addr,
            "POST",
            &format!("/whip/{name}"),
            Some("application/sdp"),
            LONELY_OFFER,
        )
        .await
        .unwrap()
    };
    assert_eq!(post("p1").await.status, 201);
    assert_eq!(post("p2").await.status, 201);
    let third = post("p3").await;
    assert_eq!(third.status, 429, "{}", third.body);
    // Offers that never connect give their names back at the connect timeout.
    common::eventually(T, "pending negotiations expired", || async move {
        find(addr, "p1").await.0 == 404 && find(addr, "p2").await.0 == 404
    })
    .await;
    assert_eq!(post("p1").await.status, 201);
    app.shutdown().await;
}
