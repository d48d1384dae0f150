//! Hostile RTMP input after a real handshake: interleaved chunk streams that used to panic the
//! chunk deserializer, AMF0 nested deep enough to overflow the stack, a `@setDataFrame` without
//! metadata and an empty AMF0 command. Each connection is answered or closed, no task panics,
//! and afterwards ffmpeg still publishes and `/health` is 200.

mod common;

use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::messages::MessagePayload;
use rml_rtmp::rml_amf0::{self, Amf0Value};
use rml_rtmp::time::RtmpTimestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(20);
/// The chunk size every RTMP peer starts with.
const CHUNK: usize = 128;
/// RTMP message type ids used below.
const TYPE_USER_CONTROL: u8 = 4;
const TYPE_AMF0_DATA: u8 = 18;
const TYPE_AMF0_COMMAND: u8 = 20;

/// Panics anywhere in this process (the server runs in it), counted by a hook that keeps the
/// default report. A panicking connection task would otherwise go unnoticed: tokio only closes
/// its socket.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            report(info);
        }));
    });
}

/// A type-0 chunk header (fmt 0, one-byte csid, timestamp 0, message stream 0).
fn type0_header(csid: u8, length: usize, type_id: u8) -> Vec<u8> {
    let len = (length as u32).to_be_bytes();
    vec![csid, 0, 0, 0, len[1], len[2], len[3], type_id, 0, 0, 0, 0]
}

/// An AMF0 `connect` to the `live` application, padded to exactly `size` bytes.
fn connect_command(size: usize) -> Vec<u8> {
    let encode = |pad: usize| {
        let mut props = HashMap::new();
        props.insert("app".to_string(), Amf0Value::Utf8String("live".into()));
        props.insert(
            "tcUrl".to_string(),
            Amf0Value::Utf8String("rtmp://127.0.0.1/live".into()),
        );
        props.insert("pad".to_string(), Amf0Value::Utf8String("x".repeat(pad)));
        let values = vec![
            Amf0Value::Utf8String("connect".into()),
            Amf0Value::Number(1.0),
            Amf0Value::Object(props),
        ];
        rml_amf0::serialize(&values).expect("AMF0 encodes")
    };
    let bare = encode(0).len();
    let command = encode(size - bare);
    assert_eq!(command.len(), size);
    command
}

/// Reads until `needle` appears in what the server sent (Ok) or it closes the connection (Err).
async fn read_until(s: &mut TcpStream, needle: &[u8]) -> Result<(), Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(T, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(seen),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if seen.windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
        }
    })
    .await
    .expect("the server answers or closes in time")
}

/// Sends `payload` as one RTMP message (chunked at the initial chunk size).
async fn send_message(s: &mut TcpStream, type_id: u8, data: Vec<u8>) {
    let payload = MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: 0,
        type_id,
        data: data.into(),
    };
    let packet = ChunkSerializer::new()
        .serialize(&payload, true, false)
        .expect("chunks serialize");
    // The server may close mid-write once it has seen enough; that is an answer too.
    let _ = s.write_all(&packet.bytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_chunks_and_amf0_leave_the_server_serving() {
    count_panics();
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);

    // 1. A type-0 chunk on csid 5 announcing a 1,000-byte message, of which only the first
    // 128 bytes are sent, then a complete 10-byte message on csid 6 (type-0 header): a user
    // control SetBufferLength (event 3, stream 0, 3000 ms).
    let (mut s, _) = common::rtmp_handshake(rtmp).await;
    let connect = connect_command(1000);
    let mut bytes = type0_header(5, connect.len(), TYPE_AMF0_COMMAND);
    bytes.extend_from_slice(&connect[..CHUNK]);
    bytes.extend_from_slice(&type0_header(6, 10, TYPE_USER_CONTROL));
    bytes.extend_from_slice(&[0, 3, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8]);
    s.write_all(&bytes).await.unwrap();
    // The rest of the connect arrives in type-3 chunks on csid 5: interleaving is legal RTMP,
    // so the server reassembles the message and accepts the connection.
    let mut rest = Vec::new();
    for part in connect[CHUNK..].chunks(CHUNK) {
        rest.push(0xc0 | 5);
        rest.extend_from_slice(part);
    }
    s.write_all(&rest).await.unwrap();
    assert!(
        read_until(&mut s, b"NetConnection.Connect.Success")
            .await
            .is_ok(),
        "the interleaved connect is answered"
    );
    drop(s);

    // 2. An AMF0 command nested 100,000 arrays deep (500 KB): an error for that connection,
    // not a stack overflow that aborts the process.
    let (mut s, _) = common::rtmp_handshake(rtmp).await;
    let mut nested: Vec<u8> = std::iter::repeat_n([0x0a, 0, 0, 0, 1], 100_000)
        .flatten()
        .collect();
    nested.push(0x05);
    send_message(&mut s, TYPE_AMF0_COMMAND, nested).await;
    assert!(
        read_until(&mut s, b"\0never sent\0").await.is_err(),
        "the connection is closed"
    );

    // 3. `@setDataFrame` with nothing after it, before connecting: ignored, and the connection
    // still answers a connect.
    let (mut s, _) = common::rtmp_handshake(rtmp).await;
    let data = rml_amf0::serialize(&vec![Amf0Value::Utf8String("@setDataFrame".into())]).unwrap();
    send_message(&mut s, TYPE_AMF0_DATA, data).await;
    send_message(&mut s, TYPE_AMF0_COMMAND, connect_command(200)).await;
    assert!(
        read_until(&mut s, b"NetConnection.Connect.Success")
            .await
            .is_ok(),
        "the connection still answers"
    );
    drop(s);

    // 4. An AMF0 command with no values at all (found by fuzzing): that connection ends.
    let (mut s, _) = common::rtmp_handshake(rtmp).await;
    // By hand: rml_rtmp's serializer writes no chunk at all for an empty message.
    s.write_all(&type0_header(3, 0, TYPE_AMF0_COMMAND))
        .await
        .unwrap();
    assert!(
        read_until(&mut s, b"\0never sent\0").await.is_err(),
        "the connection is closed"
    );

    // Another client still connects and publishes, and the server reports itself healthy.
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
    let url = format!("rtmp://{rtmp}/live/after");
    let mut publisher = common::ffmpeg_live("320x240", 48000, 30, &encode, &url);
    common::eventually(
        T,
        "ffmpeg publishes after the hostile input",
        || async move {
            let (status, body) =
                common::http(http, "POST", "/rest-api/stream/find", r#"{"name":"after"}"#).await;
            status == 200 && body.contains("\"RTMP\"")
        },
    )
    .await;
    let (status, body) = common::http(http, "GET", "/health", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task panicked");
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}
