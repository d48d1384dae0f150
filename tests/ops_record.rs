//! Recording with real GStreamer: live encoders feed producers, a [`Recording`] writes them as
//! they are, and ffprobe/ffmpeg read the files back. Shows the containers per codec, the A/V
//! relation kept in the file, rotation into numbered parts, a copy taken mid-recording (as a
//! `kill -9` would leave it) playing, and a full disk failing only the recording.

mod ops_support;

use ops_support::{ffmpeg_metadata, ffprobe, onsets, temp_dir, Picture, Source};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamgate::engine::media::Codec;
use streamgate::engine::pipeline::{flush_reaper, PipelineCounter};
use streamgate::ops::naming::DEFAULT_TEMPLATE;
use streamgate::ops::record::{
    self, ContainerPolicy, FinishedFile, RecordEvent, RecordSpec, Recording, Rotation,
};

type Events = Arc<Mutex<Vec<RecordEvent>>>;

fn spec(dir: &Path, stream: &str) -> RecordSpec {
    RecordSpec {
        dir: dir.to_owned(),
        template: DEFAULT_TEMPLATE.into(),
        rotation: None,
        stream_name: stream.into(),
        media_session_id: "ms-1".into(),
        login: "tester".into(),
        container: ContainerPolicy::ByCodec,
    }
}

fn start(src: &Source, spec: RecordSpec, counter: &PipelineCounter) -> (Recording, Events) {
    let events: Events = Arc::default();
    let ev = events.clone();
    let rec = Recording::start(
        spec,
        src.video.clone(),
        src.audio.clone(),
        &ops_support::limits(),
        counter,
        move |e| ev.lock().unwrap().push(e),
    )
    .expect("recording starts");
    (rec, events)
}

/// Records `src` for `secs` and returns the finished files and the events.
async fn record_for(src: &Source, spec: RecordSpec, secs: f64) -> (Vec<FinishedFile>, Events) {
    let counter = PipelineCounter::default();
    let (rec, events) = start(src, spec, &counter);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let files = rec.stop_async().await.expect("recording stops cleanly");
    assert!(flush_reaper(Duration::from_secs(5)));
    assert_eq!(counter.get(), 0, "the recording pipeline is gone");
    (files, events)
}

/// Checks one finished recording of about `secs` with `codecs`, named `{stream}-{start}-{end}.ext`.
fn check_file(dir: &Path, f: &FinishedFile, ext: &str, codecs: &[&str], secs: f64) {
    assert!(f.name.ends_with(&format!(".{ext}")), "{}", f.name);
    let parsed =
        streamgate::ops::naming::parse_default_name(&f.name).expect("default-template name");
    let (start, end) = (
        parsed.start_time_ms,
        parsed.end_time_ms.expect("an end time"),
    );
    assert!(end > start, "{}", f.name);
    let path = dir.join(&f.name);
    let p = ffprobe(&path).expect("ffprobe reads the file");
    let mut got = p.codecs.clone();
    got.sort();
    let mut want: Vec<String> = codecs.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "tracks of {}", f.name);
    let dur = p.duration.unwrap_or(p.last_packet);
    eprintln!(
        "# {}: {:?}, ffprobe duration {:?}, last packet {:.2}s, reported {:?}",
        f.name, p.codecs, p.duration, p.last_packet, f.duration
    );
    assert!(
        (dur - secs).abs() <= 1.0,
        "{}: duration {dur} for about {secs}s",
        f.name
    );
    assert!(
        (f.duration.as_secs_f64() - dur).abs() <= 0.5,
        "reported {:?} vs {dur}",
        f.duration
    );
    let info = record::probe(&path).expect("probe describes it");
    assert_eq!(info.stream.as_deref(), Some(parsed.stream.as_str()));
    assert_eq!(
        info.duration,
        Some(Duration::from_millis(f.duration.as_millis() as u64))
    );
    assert!(info.complete);
}

fn names(events: &Events) -> (Vec<String>, Vec<String>) {
    let ev = events.lock().unwrap();
    let started = ev
        .iter()
        .filter_map(|e| match e {
            RecordEvent::FileStarted { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let finished = ev
        .iter()
        .filter_map(|e| match e {
            RecordEvent::FileFinished { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    (started, finished)
}

async fn one_file(
    video: Option<Codec>,
    audio: Option<Codec>,
    policy: ContainerPolicy,
    ext: &str,
    codecs: &[&str],
) {
    let src = Source::start(video, audio, (320, 240), Picture::Pattern);
    src.wait_ready();
    let dir = temp_dir("rec");
    let mut s = spec(&dir, "cam");
    s.container = policy;
    let (files, events) = record_for(&src, s, 3.0).await;
    assert_eq!(files.len(), 1, "{files:?}");
    check_file(&dir, &files[0], ext, codecs, 3.0);
    let (started, finished) = names(&events);
    assert_eq!(started.len(), 1);
    assert!(
        started[0].contains("-recording"),
        "interim name {}",
        started[0]
    );
    assert_eq!(finished, [files[0].name.clone()]);
    assert!(!dir.join(&started[0]).exists(), "the interim name is gone");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_aac_to_mp4() {
    one_file(
        Some(Codec::H264),
        Some(Codec::Aac),
        ContainerPolicy::ByCodec,
        "mp4",
        &["h264", "aac"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_opus_to_mp4() {
    one_file(
        Some(Codec::H264),
        Some(Codec::Opus),
        ContainerPolicy::ByCodec,
        "mp4",
        &["h264", "opus"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_opus_to_webm() {
    one_file(
        Some(Codec::Vp8),
        Some(Codec::Opus),
        ContainerPolicy::ByCodec,
        "webm",
        &["vp8", "opus"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matroska_policy_gives_mkv() {
    one_file(
        Some(Codec::H264),
        Some(Codec::Aac),
        ContainerPolicy::Matroska,
        "mkv",
        &["h264", "aac"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_and_video_only() {
    one_file(
        None,
        Some(Codec::Aac),
        ContainerPolicy::ByCodec,
        "mp4",
        &["aac"],
    )
    .await;
    one_file(
        Some(Codec::H264),
        None,
        ContainerPolicy::ByCodec,
        "mp4",
        &["h264"],
    )
    .await;
    one_file(
        None,
        Some(Codec::Opus),
        ContainerPolicy::ByCodec,
        "webm",
        &["opus"],
    )
    .await;
}

/// Flash and beep happen at the same instants at the source; in the file the first bright frame
/// and the first loud audio must be within 100 ms.
async fn av_offset(video: Codec, audio: Codec, policy: ContainerPolicy) {
    let src = Source::start(Some(video), Some(audio), (320, 240), Picture::Flash);
    src.wait_ready();
    let dir = temp_dir("sync");
    let mut s = spec(&dir, "sync");
    s.container = policy;
    let (files, _) = record_for(&src, s, 5.0).await;
    let path = dir.join(&files[0].name);
    let luma = ffmpeg_metadata(
        &path,
        "0:v:0",
        "-vf",
        "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
        "lavfi.signalstats.YAVG",
    );
    let peaks = ffmpeg_metadata(
        &path,
        "0:a:0",
        "-af",
        "asetnsamples=n=240:p=0,astats=metadata=1:reset=1,ametadata=print:key=lavfi.astats.Overall.Peak_level:file=-",
        "lavfi.astats.Overall.Peak_level",
    );
    let flashes = onsets(&luma, 128.0);
    let beeps = onsets(&peaks, -20.0);
    eprintln!(
        "# {}: flashes at {flashes:?}, beeps at {beeps:?}",
        files[0].name
    );
    assert!(
        !flashes.is_empty() && !beeps.is_empty(),
        "the file holds a flash and a beep"
    );
    let mut offsets = Vec::new();
    for f in &flashes {
        let nearest = beeps
            .iter()
            .map(|b| b - f)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap();
        offsets.push(nearest);
    }
    eprintln!(
        "# {}: audio minus video at each flash: {offsets:?} s",
        files[0].name
    );
    for o in offsets {
        assert!(o.abs() <= 0.1, "A/V offset {o:.3}s in {}", files[0].name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av_in_step_mp4() {
    av_offset(Codec::H264, Codec::Aac, ContainerPolicy::ByCodec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av_in_step_webm() {
    av_offset(Codec::Vp8, Codec::Opus, ContainerPolicy::ByCodec).await;
}

async fn rotation(rot: Rotation, secs: f64) -> Vec<FinishedFile> {
    let src = Source::start(
        Some(Codec::H264),
        Some(Codec::Aac),
        (320, 240),
        Picture::Pattern,
    );
    src.wait_ready();
    let dir = temp_dir("rot");
    let mut s = spec(&dir, "rot");
    s.rotation = Some(rot);
    let (files, events) = record_for(&src, s, secs).await;
    assert!(files.len() >= 2, "{rot:?} gave {files:?}");
    let (started, finished) = names(&events);
    assert_eq!(started.len(), files.len());
    assert_eq!(finished.len(), files.len());
    let mut total = 0.0;
    for (i, f) in files.iter().enumerate() {
        let parsed = streamgate::ops::naming::parse_default_name(&f.name).unwrap();
        assert_eq!(parsed.part, Some(i as u32 + 1), "{}", f.name);
        let p = ffprobe(&dir.join(&f.name)).expect("each part plays");
        let mut codecs = p.codecs.clone();
        codecs.sort();
        assert_eq!(codecs, ["aac", "h264"], "{}", f.name);
        let d = p.duration.unwrap_or(p.last_packet);
        eprintln!("# {}: {d:.2}s, {} bytes", f.name, f.bytes);
        // The last part holds whatever came after the last cut; the others a whole part.
        assert!(d > 0.0, "{} is not empty", f.name);
        total += d;
    }
    assert!(
        (total - secs).abs() <= 1.5,
        "parts add up to {total}s of {secs}s"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_duration() {
    let files = rotation(Rotation::Duration(Duration::from_secs(2)), 5.0).await;
    for f in &files[..files.len() - 1] {
        let d = f.duration.as_secs_f64();
        assert!(
            (1.9..=3.5).contains(&d),
            "{} lasts {d}s for a 2 s rotation",
            f.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_size() {
    let files = rotation("300K".parse().unwrap(), 5.0).await;
    for f in &files[..files.len() - 1] {
        assert!(
            f.bytes >= 300 << 10,
            "{} has {} bytes for a 300K rotation",
            f.name,
            f.bytes
        );
    }
}

/// What `kill -9` leaves: the file as it is on disk while the recording runs.
async fn copy_mid_recording(video: Codec, audio: Codec) {
    let src = Source::start(Some(video), Some(audio), (320, 240), Picture::Pattern);
    src.wait_ready();
    let dir = temp_dir("crash");
    let counter = PipelineCounter::default();
    // Wait for 5 s of media, not of wall time: on a busy machine the test's own encoder may lag.
    let span = Arc::new(Mutex::new((None::<u64>, 0u64)));
    let s2 = span.clone();
    let _watch = src
        .video
        .as_ref()
        .unwrap()
        .add_consumer_fn(Arc::new(move |_, b| {
            if let Some(t) = b.pts() {
                let mut s = s2.lock().unwrap();
                s.0.get_or_insert(t.nseconds());
                s.1 = s.1.max(t.nseconds());
            }
        }));
    let (rec, _) = start(&src, spec(&dir, "crash"), &counter);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (first, last) = *span.lock().unwrap();
        if first.is_some_and(|f| last.saturating_sub(f) >= 5_000_000_000) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no 5 s of media");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let current = dir.join(rec.current_file());
    let copy = dir.join(format!("copy-{}", rec.current_file()));
    std::fs::copy(&current, &copy).unwrap();
    let p = ffprobe(&copy).expect("the copy is readable");
    eprintln!(
        "# copy of {}: {:?}, ffprobe duration {:?}, last packet {:.2}s",
        rec.current_file(),
        p.codecs,
        p.duration,
        p.last_packet
    );
    assert_eq!(p.codecs.len(), 2, "both tracks in the copy");
    // A killed WebM has no duration in its header (it is written at the end); its packets are
    // all there, which is what players read.
    let got = p.duration.unwrap_or(p.last_packet).max(p.last_packet);
    assert!(got >= 4.0, "the copy holds {got}s of about 5 s");
    let info = record::probe(&copy);
    assert!(info.is_some());
    rec.stop_async()
        .await
        .expect("the recording still stops cleanly");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mid_recording_plays_mp4() {
    copy_mid_recording(Codec::H264, Codec::Aac).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mid_recording_plays_webm() {
    copy_mid_recording(Codec::Vp8, Codec::Opus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_without_stop_finalises() {
    let src = Source::start(
        Some(Codec::H264),
        Some(Codec::Aac),
        (320, 240),
        Picture::Pattern,
    );
    src.wait_ready();
    let dir = temp_dir("drop");
    let counter = PipelineCounter::default();
    let (rec, events) = start(&src, spec(&dir, "drop"), &counter);
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(rec);
    for _ in 0..100 {
        if !names(&events).1.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, finished) = names(&events);
    assert_eq!(finished.len(), 1, "the dropped recording finished its file");
    let p = ffprobe(&dir.join(&finished[0])).unwrap();
    assert_eq!(p.codecs.len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_folder_fails_at_start() {
    let src = Source::start(Some(Codec::H264), None, (320, 240), Picture::Pattern);
    let dir = temp_dir("nowrite");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let r = Recording::start(
        spec(&file.join("records"), "x"),
        src.video.clone(),
        None,
        &ops_support::limits(),
        &PipelineCounter::default(),
        |_| {},
    );
    let err = r.err().expect("a folder under a file cannot be made");
    eprintln!("# {err}");
    assert!(matches!(err, record::RecordError::Folder(_)), "{err:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A tiny tmpfs fills up: the recording fails with "No space left on device" and stops; the
/// producer goes on feeding its other consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_only_the_recording() {
    let dir = temp_dir("full");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=300k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the disk-full case is not tested"
        );
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _unmount = Unmount(dir.clone());
    let src = Source::start(
        Some(Codec::H264),
        Some(Codec::Aac),
        (640, 360),
        Picture::Pattern,
    );
    src.wait_ready();
    let video = src.video.clone().unwrap();
    let other = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let o = other.clone();
    let _viewer = video.add_consumer_fn(Arc::new(move |_, _| {
        o.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    let counter = PipelineCounter::default();
    let (rec, events) = start(&src, spec(&dir, "full"), &counter);
    let mut reason = None;
    for _ in 0..200 {
        reason = events.lock().unwrap().iter().find_map(|e| match e {
            RecordEvent::Failed { reason } => Some(reason.clone()),
            _ => None,
        });
        if reason.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reason = reason.expect("the recording failed");
    eprintln!("# failed: {reason}");
    assert_eq!(reason, "No space left on device");
    assert!(flush_reaper(Duration::from_secs(5)));
    assert_eq!(
        counter.get(),
        0,
        "the failed recording's pipeline is gone at once"
    );
    assert_eq!(
        video.consumer_count(),
        1,
        "only the other viewer is still attached"
    );
    let before = other.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = other.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        after >= before + 10,
        "the other viewer still gets frames ({before} -> {after})"
    );
    let err = rec
        .stop_async()
        .await
        .expect_err("stop reports the failure");
    assert_eq!(
        err,
        record::RecordError::Failed("No space left on device".into())
    );
}
