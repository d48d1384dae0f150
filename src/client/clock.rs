//! The time burned into a test picture, for glass-to-glass latency: the low 24 bits of the wall
//! clock in milliseconds, as a row of 24 blocks across the top eighth of the picture (white is 1,
//! most significant bit on the left). A player on the same machine reads the blocks back from the
//! frame it shows and subtracts; blocks this large survive any encoder at any bitrate we use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits in the code.
pub const BITS: usize = 24;

/// The code for now.
pub fn now_code() -> u32 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    (ms & ((1 << BITS) - 1)) as u32
}

/// Paints `code` into an I420 frame of `w`×`h` (both even; the planes packed, as `videotestsrc`
/// lays them out when the width is a multiple of 8).
pub fn paint(buffer: &mut gst::BufferRef, w: usize, h: usize, code: u32) {
    let Ok(mut map) = buffer.map_writable() else {
        return;
    };
    let data = map.as_mut_slice();
    let (cw, ch) = (w / 2, h / 2);
    if w % 8 != 0 || data.len() < w * h + 2 * cw * ch {
        return;
    }
    let band = (h / 8).max(8);
    let block = w / BITS;
    for row in 0..band.min(h) {
        for bit in 0..BITS {
            let on = code & (1 << (BITS - 1 - bit)) != 0;
            let y = if on { 235 } else { 16 };
            let start = row * w + bit * block;
            data[start..start + block].fill(y);
        }
    }
    // Neutral colour under the band, so the blocks read as grey.
    let (u, v) = (w * h, w * h + cw * ch);
    for row in 0..(band / 2).min(ch) {
        data[u + row * cw..u + row * cw + cw].fill(128);
        data[v + row * cw..v + row * cw + cw].fill(128);
    }
}

/// Feeds `src` with `fps` fresh frames a second, each with the time burned in, until the pipeline
/// stops taking them.
pub fn feed(src: gst_app::AppSrc, w: usize, h: usize, fps: u32) {
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .build();
    src.set_caps(Some(&caps));
    std::thread::spawn(move || {
        let period = std::time::Duration::from_secs(1) / fps;
        let mut next = std::time::Instant::now();
        loop {
            let mut frame = vec![16u8; w * h];
            frame.resize(w * h * 3 / 2, 128);
            let mut buffer = gst::Buffer::from_mut_slice(frame);
            if let Some(b) = buffer.get_mut() {
                b.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
                paint(b, w, h, now_code());
            }
            if src.push_buffer(buffer).is_err() {
                return;
            }
            next += period;
            std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
        }
    });
}

/// Reads a code back from 8-bit luma samples taken at the centre of each block.
pub fn read(levels: &[u8; BITS]) -> u32 {
    levels
        .iter()
        .fold(0, |acc, &l| (acc << 1) | u32::from(l >= 128))
}

/// Milliseconds from `sent` to `seen` (codes modulo 2^24).
pub fn elapsed(sent: u32, seen: u32) -> u32 {
    seen.wrapping_sub(sent) & ((1 << BITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_painted_code_reads_back() {
        gst::init().unwrap();
        let (w, h) = (640, 360);
        let mut b = gst::Buffer::with_size(w * h * 3 / 2).unwrap();
        let code = 0xA5_3C_0F;
        paint(b.get_mut().unwrap(), w, h, code);
        let map = b.map_readable().unwrap();
        let row = (h / 8) / 2;
        let block = w / BITS;
        let mut levels = [0u8; BITS];
        for (i, l) in levels.iter_mut().enumerate() {
            *l = map[row * w + i * block + block / 2];
        }
        assert_eq!(read(&levels), code);
        assert_eq!(elapsed(0xFF_FFF0, 0x10), 0x20);
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;
    use gst::prelude::*;

    /// Encodes clock frames with `encoder` (launch syntax), decodes them and returns how many of
    /// the decoded frames read back as a code that was painted.
    fn read_back(encoder: &str) -> (usize, usize) {
        gst::init().unwrap();
        let (w, h) = (640usize, 360usize);
        let desc = format!(
            "appsrc name=src format=time ! {encoder} ! h264parse ! avdec_h264 ! video/x-raw,format=I420 ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline
            .by_name("src")
            .and_downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline
            .by_name("sink")
            .and_downcast::<gst_app::AppSink>()
            .unwrap();
        src.set_caps(Some(
            &gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("framerate", gst::Fraction::new(30, 1))
                .build(),
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut sent = Vec::new();
        for i in 0..60u64 {
            let code = (i as u32 * 33 + 0x12_3456) & 0xFF_FFFF;
            sent.push(code);
            let mut frame = vec![16u8; w * h];
            frame.resize(w * h * 3 / 2, 128);
            let mut b = gst::Buffer::from_mut_slice(frame);
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(i * 33));
                b.set_duration(gst::ClockTime::from_mseconds(33));
                paint(b, w, h, code);
            }
            src.push_buffer(b).unwrap();
        }
        src.end_of_stream().unwrap();
        let mut total = 0;
        let mut good = 0;
        while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            let b = s.buffer().unwrap();
            let map = b.map_readable().unwrap();
            let row = (h / 8) / 2;
            let block = w / BITS;
            let mut levels = [0u8; BITS];
            for (i, l) in levels.iter_mut().enumerate() {
                *l = map[row * w + i * block + block / 2];
            }
            total += 1;
            if sent.contains(&read(&levels)) {
                good += 1;
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (good, total)
    }

    #[test]
    fn every_frame_reads_back_after_h264_with_one_slice_and_with_sliced_threads() {
        for enc in [
            "x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max=60",
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60",
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! rtph264depay",
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! rtph264depay ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au",
        ] {
            let (good, total) = read_back(enc);
            assert!(total >= 55, "{enc}: {total} frames decoded");
            assert_eq!(good, total, "{enc}: {good} of {total} frames read back");
        }
    }
}
