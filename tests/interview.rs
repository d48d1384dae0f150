//! A room recorded as an interview: one composite file with everyone's picture and voice, a file
//! per participant, and a sidecar listing the participants and when each spoke.

mod common;
mod mixing;

use mixing::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_is_recorded_as_one_interview_file_with_a_sidecar() {
    let mut config = common::config();
    config.mixer.width = W;
    config.mixer.height = H;
    config.mixer.fps = 15;
    let records = config.record_dir();
    let app = common::start(config).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let room = "interview-7";
    let mut people = Vec::new();
    for (login, hz, colour) in [
        ("employer", 500u32, "0xffff0000"),
        ("candidate", 800, "0xff0000ff"),
    ] {
        let mut c = room_member(&url, login, room).await;
        let opts = streamgate::client::PublishOptions {
            width: 320,
            height: 240,
            fps: 15,
            pattern: colour.into(),
            tone_hz: hz,
            ..Default::default()
        };
        let name = format!("{room}-{login}");
        let p = streamgate::client::publish_with_custom(
            &mut c,
            &name,
            &opts,
            serde_json::json!({"name": room}),
        )
        .await
        .unwrap();
        assert_eq!(
            c.wait_status(&p.media_session_id, T).await.unwrap()["status"],
            "PUBLISHING"
        );
        people.push((c, p));
    }
    let (s, b) = post(
        addr,
        "/rest-api/room/startRecording",
        r#"{"name":"nosuch"}"#,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = post(
        addr,
        "/rest-api/room/startRecording",
        &format!(r#"{{"name":"{room}"}}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let started = std::time::Instant::now();
    let (s, _) = post(
        addr,
        "/rest-api/room/startRecording",
        &format!(r#"{{"name":"{room}"}}"#),
    )
    .await;
    assert_eq!(s, 409, "recording twice");
    // Everyone in the room is told.
    let (c, _) = &mut people[1];
    c.wait(T, |f| {
        f["message"] == "OnDataEvent" && f["data"][0]["payload"]["name"] == "RECORDING"
    })
    .await
    .unwrap();
    // Four seconds of interview: the length of the content, not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (s, b) = post(
        addr,
        "/rest-api/room/stopRecording",
        &format!(r#"{{"name":"{room}"}}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let recorded = started.elapsed().as_secs_f64();
    let sidecar: serde_json::Value = serde_json::from_str(&b).unwrap();
    let mut logins: Vec<&str> = sidecar["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["login"].as_str().unwrap())
        .collect();
    logins.sort();
    assert_eq!(logins, ["candidate", "employer"], "{sidecar}");
    let chapters = sidecar["chapters"].as_array().unwrap();
    assert!(
        chapters.iter().any(|c| c["login"] == "employer")
            && chapters.iter().any(|c| c["login"] == "candidate"),
        "each spoke: {sidecar}"
    );
    // The composite plays with both tracks, for about as long as the interview ran.
    let file = sidecar["composite"]["file"]
        .as_str()
        .expect("a composite file");
    let path = records.join(file);
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:format=duration",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let kinds: Vec<&str> = info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"video") && kinds.contains(&"audio"),
        "{info}"
    );
    let secs: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // It starts at the mix's first keyframe after the start and ends at the stop.
    assert!(
        secs > recorded - 1.5 && secs < recorded + 0.5,
        "composite lasts {secs} s of {recorded:.1} s"
    );
    // Both voices are in it, and both pictures.
    let pcm = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1"])
        .output()
        .unwrap()
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0)
        .collect::<Vec<_>>();
    assert!(
        tone(&pcm, 500.0) > 0.01 && tone(&pcm, 800.0) > 0.01,
        "both voices"
    );
    // Each participant's own file is there and plays.
    for p in sidecar["participants"].as_array().unwrap() {
        let f = p["file"].as_str().expect("a file per participant");
        assert!(records.join(f).exists(), "{f}");
    }
    // The sidecar is written next to the files.
    let written = std::fs::read_dir(&records)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with("-interview.json"));
    assert!(written, "the room's sidecar is in the records folder");
}

/// A room joined with `record: true` records itself as an interview from its first stream, and
/// ends the recording (files finalised, sidecar written) when its last participant leaves; the
/// back end finds the sidecar over REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_joined_with_record_true_records_itself_until_it_empties() {
    let mut config = common::config();
    config.mixer.width = W;
    config.mixer.height = H;
    config.mixer.fps = 15;
    let records = config.record_dir();
    let app = common::start(config).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    let room = "interview-8";
    let mut people = Vec::new();
    for login in ["employer", "candidate"] {
        let mut c = room_member_with(
            &url,
            login,
            serde_json::json!({"name": room, "record": true}),
        )
        .await;
        let opts = streamgate::client::PublishOptions {
            width: 320,
            height: 240,
            fps: 15,
            ..Default::default()
        };
        let p = streamgate::client::publish_with_custom(
            &mut c,
            &format!("{room}-{login}"),
            &opts,
            serde_json::json!({"name": room}),
        )
        .await
        .unwrap();
        assert_eq!(
            c.wait_status(&p.media_session_id, T).await.unwrap()["status"],
            "PUBLISHING"
        );
        people.push(c);
    }
    // The room's recording runs: the composite is recorded, and REST cannot start a second one.
    let composite = format!("{room}-interview");
    let deadline = std::time::Instant::now() + T;
    loop {
        let (_, b) = post(addr, "/rest-api/recorder/find_all", "").await;
        let recs: serde_json::Value = serde_json::from_str(&b).unwrap();
        let on = |n: &str| {
            recs.as_array()
                .unwrap()
                .iter()
                .any(|r| r.to_string().contains(n))
        };
        if on(&composite) && on(&format!("{room}-candidate")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no composite recording: {recs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, b) = post(
        addr,
        "/rest-api/room/startRecording",
        &format!(r#"{{"name":"{room}"}}"#),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(people);
    // The last one out ends it: the sidecar appears.
    let deadline = std::time::Instant::now() + T;
    let sidecar = loop {
        let (s, b) = post(
            addr,
            "/rest-api/room/recordings",
            &format!(r#"{{"name":"{room}"}}"#),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let list: serde_json::Value = serde_json::from_str(&b).unwrap();
        if let Some(first) = list.as_array().and_then(|l| l.first()) {
            break first.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no sidecar");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut logins: Vec<&str> = sidecar["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["login"].as_str().unwrap())
        .collect();
    logins.sort();
    assert_eq!(logins, ["candidate", "employer"], "{sidecar}");
    let file = sidecar["composite"]["file"].as_str().expect("a composite");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(records.join(file))
        .output()
        .unwrap();
    let secs: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(secs > 2.0, "the composite lasts {secs} s");
    let sidecar_file = sidecar["sidecar"].as_str().unwrap();
    assert!(records.join(sidecar_file).exists(), "{sidecar_file}");
}
