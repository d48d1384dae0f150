//! Who is speaking: audio levels in, the active speaker out (the focus of the speaker and
//! picture-in-picture layouts), and who spoke when (the chapters of a recorded meeting). Pure
//! logic, fed with the levels the mixer measures on each input's audio, so it is tested without
//! a pipeline.
//!
//! Hysteresis keeps the large tile from flapping: the first input to speak becomes the speaker at
//! once, but another takes over only after leading it (louder by a margin, or speaking while it
//! is silent) continuously for a while; and an input stays "speaking" through the short pauses
//! between words and sentences.

use std::collections::BTreeMap;
use std::time::Duration;

/// The floor of every level: what silence, an empty buffer or garbage measures.
const FLOOR_DB: f64 = -120.0;

/// How fast a level's envelope falls, in dB a second. Speech is a train of syllables: its raw
/// level swings 20 dB or more every few tens of milliseconds, so comparing raw levels would give
/// the lead to whoever's syllable came last. The envelope rises at once with a louder level and
/// falls slowly, so it follows the voice and not the syllables; in time rather than per update,
/// since levels arrive every 20 to 100 ms. 20 dB/s: a 200 ms gap between words costs 4 dB (less
/// than the switch margin), while someone who stopped talking is overtaken within a second.
const DECAY_DB_PER_S: f64 = 20.0;

/// The level of interleaved f32 samples in dBFS; silence and empty buffers are -120 dB (never
/// -inf or NaN, which would poison comparisons).
pub fn rms_db(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return FLOOR_DB;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    // 1e-6 is -120 dB; NaN and infinite samples are garbage, not a very loud speaker.
    if rms.is_finite() && rms > 1e-6 {
        20.0 * rms.log10()
    } else {
        FLOOR_DB
    }
}

/// How speech is told from silence and one speaker from another.
#[derive(Debug, Clone, Copy)]
pub struct SpeakerParams {
    /// Above this level (dBFS) an input is speaking.
    pub threshold_db: f64,
    /// How much louder than the current speaker another input must be to lead it.
    pub switch_margin_db: f64,
    /// How long another input must lead before it becomes the speaker.
    pub hold: Duration,
    /// Speaking goes on through pauses shorter than this.
    pub silence_hang: Duration,
}

impl Default for SpeakerParams {
    /// -45 dB, 6 dB, 1.5 s and 0.8 s: speech over a quiet room, and a switch that follows a
    /// conversation without reacting to every interjection.
    fn default() -> Self {
        Self {
            threshold_db: -45.0,
            switch_margin_db: 6.0,
            hold: Duration::from_millis(1500),
            silence_hang: Duration::from_millis(800),
        }
    }
}

/// One stretch of speech of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The input (stream name).
    pub input: String,
    /// When it began (since the mixer started).
    pub start: Duration,
    /// When it ended: the last level above the threshold, or the cut-off.
    pub end: Duration,
}

/// What is known of one input.
#[derive(Debug)]
struct Voice {
    /// The envelope's level at `at` (see [`DECAY_DB_PER_S`]).
    envelope: f64,
    /// When `envelope` was measured.
    at: Duration,
    /// The start of its current (or last) stretch of speech.
    since: Option<Duration>,
    /// The last level above the threshold.
    last_loud: Duration,
    /// Since when it has led the current speaker without a break.
    leading_since: Option<Duration>,
}

impl Voice {
    /// The envelope decayed to `now`: an input whose levels stop coming fades like a silent one.
    fn level(&self, now: Duration) -> f64 {
        let dt = now.saturating_sub(self.at).as_secs_f64();
        (self.envelope - DECAY_DB_PER_S * dt).max(FLOOR_DB)
    }

    /// Whether it is speaking at `now`, pauses shorter than `hang` included.
    fn speaking(&self, now: Duration, hang: Duration) -> bool {
        self.since.is_some() && now.saturating_sub(self.last_loud) <= hang
    }

    /// Its stretch of speech, if one was started, as seen at `now`: still open (cut at `now`)
    /// within the hang, otherwise ended at its last loud level.
    fn interval(&self, input: &str, now: Duration, hang: Duration) -> Option<Interval> {
        let start = self.since?;
        let end = if self.speaking(now, hang) {
            now.max(start)
        } else {
            self.last_loud
        };
        Some(Interval {
            input: input.to_owned(),
            start,
            end,
        })
    }
}

/// Tracks levels per input: the active speaker, and who spoke when.
#[derive(Debug)]
pub struct SpeakerTracker {
    params: SpeakerParams,
    voices: BTreeMap<String, Voice>,
    speaker: Option<String>,
    /// Finished stretches of speech, including those of inputs that left.
    closed: Vec<Interval>,
}

impl SpeakerTracker {
    /// A tracker with nobody speaking yet.
    pub fn new(params: SpeakerParams) -> Self {
        Self {
            params,
            voices: BTreeMap::new(),
            speaker: None,
            closed: Vec::new(),
        }
    }

    /// A level measured for `input` at `now` (time since the mixer started; levels of different
    /// inputs may come in any interleaving). Returns true when the active speaker changed.
    pub fn update(&mut self, input: &str, level_db: f64, now: Duration) -> bool {
        let p = self.params;
        let level = if level_db.is_nan() {
            FLOOR_DB
        } else {
            level_db.clamp(FLOOR_DB, 20.0)
        };
        let v = self.voices.entry(input.to_owned()).or_insert(Voice {
            envelope: FLOOR_DB,
            at: now,
            since: None,
            last_loud: now,
            leading_since: None,
        });
        // A level from before the last one (threads racing for the lock) still counts, but
        // must not move time backwards.
        let now_v = now.max(v.at);
        v.envelope = v.level(now_v).max(level);
        v.at = now_v;
        if level > p.threshold_db {
            if v.since.is_some() && !v.speaking(now_v, p.silence_hang) {
                // The pause was long enough: the last stretch ended and a new one begins.
                if let Some(done) = v.interval(input, now_v, p.silence_hang) {
                    self.closed.push(done);
                }
                v.since = None;
            }
            v.since.get_or_insert(now_v);
            v.last_loud = now_v;
        }
        self.decide(now_v)
    }

    /// Re-evaluates who leads whom at `now`; true when the speaker changed.
    fn decide(&mut self, now: Duration) -> bool {
        let p = self.params;
        let current = self
            .speaker
            .as_ref()
            .and_then(|s| self.voices.get(s))
            .map(|c| (c.level(now), c.speaking(now, p.silence_hang)));
        let Some((current_level, current_speaking)) = current else {
            // Nobody holds the floor: the loudest of those speaking takes it at once.
            return self.elect(now);
        };
        let mut best: Option<(Duration, f64, &str)> = None;
        for (name, v) in &mut self.voices {
            if self.speaker.as_deref() == Some(name) {
                continue;
            }
            let level = v.level(now);
            let leads = v.speaking(now, p.silence_hang)
                && (!current_speaking || level > current_level + p.switch_margin_db);
            if !leads {
                v.leading_since = None;
                continue;
            }
            let since = *v.leading_since.get_or_insert(now);
            // Among several with a long enough lead, the longest lead, then the loudest.
            let better = best.is_none_or(|(s, l, _)| since < s || (since == s && level > l));
            if now.saturating_sub(since) >= p.hold && better {
                best = Some((since, level, name));
            }
        }
        let Some((_, _, name)) = best else {
            return false;
        };
        self.speaker = Some(name.to_owned());
        self.reset_leads();
        true
    }

    /// Gives the floor to the loudest input speaking at `now`, if any; true if someone took it.
    fn elect(&mut self, now: Duration) -> bool {
        let hang = self.params.silence_hang;
        let loudest = self
            .voices
            .iter()
            .filter(|(_, v)| v.speaking(now, hang))
            .max_by(|a, b| a.1.level(now).total_cmp(&b.1.level(now)))
            .map(|(name, _)| name.clone());
        let changed = loudest.is_some();
        if changed {
            self.speaker = loudest;
            self.reset_leads();
        }
        changed
    }

    /// A new speaker: leads over the old one no longer count.
    fn reset_leads(&mut self) {
        for v in self.voices.values_mut() {
            v.leading_since = None;
        }
    }

    /// The active speaker: the last one chosen, even if silent now (the picture stays on them
    /// until someone else talks).
    pub fn speaker(&self) -> Option<&str> {
        self.speaker.as_deref()
    }

    /// `input` left: it is no longer a candidate, and its stretch of speech, if open, ends at
    /// `now`. If it was the speaker, whoever is speaking now takes over at once (or nobody).
    /// Returns true if the speaker changed.
    pub fn remove(&mut self, input: &str, now: Duration) -> bool {
        if let Some(v) = self.voices.remove(input) {
            let hang = self.params.silence_hang;
            if let Some(done) = v.interval(input, now.max(v.at), hang) {
                self.closed.push(done);
            }
        }
        if self.speaker.as_deref() != Some(input) {
            return false;
        }
        self.speaker = None;
        self.elect(now);
        true
    }

    /// Every stretch of speech so far (the closed ones, and the open ones cut at `now`), ordered
    /// by start.
    pub fn intervals(&self, now: Duration) -> Vec<Interval> {
        let hang = self.params.silence_hang;
        let mut all = self.closed.clone();
        all.extend(
            self.voices
                .iter()
                .filter_map(|(name, v)| v.interval(name, now.max(v.at), hang)),
        );
        all.sort_by(|a, b| (a.start, &a.input).cmp(&(b.start, &b.input)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds levels every 20 ms from `from` to `to` (ms), interleaved; returns when the speaker
    /// changed (ms), if it did.
    fn feed(t: &mut SpeakerTracker, from: u64, to: u64, levels: &[(&str, f64)]) -> Vec<u64> {
        let mut changes = Vec::new();
        for at in (from..to).step_by(20) {
            for (input, db) in levels {
                if t.update(input, *db, ms(at)) {
                    changes.push(at);
                }
            }
        }
        changes
    }

    #[test]
    fn levels_are_finite_dbfs() {
        assert_eq!(rms_db(&[]), -120.0);
        assert_eq!(rms_db(&[0.0; 64]), -120.0);
        assert_eq!(rms_db(&[f32::NAN, 0.5]), -120.0);
        assert_eq!(rms_db(&[f32::INFINITY]), -120.0);
        assert!(rms_db(&[1.0, -1.0]).abs() < 1e-9);
        assert!((rms_db(&[0.1, -0.1, 0.1]) + 20.0).abs() < 1e-4);
        assert!(
            (rms_db(&[1e-7; 8]) + 120.0).abs() < 1e-9,
            "floored, not -140"
        );
    }

    #[test]
    fn the_first_to_speak_is_the_speaker_at_once() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        assert!(!t.update("a", -70.0, ms(0)), "below the threshold");
        assert!(!t.update("a", f64::NAN, ms(10)));
        assert_eq!(t.speaker(), None);
        assert!(t.update("b", -30.0, ms(20)));
        assert_eq!(t.speaker(), Some("b"));
    }

    #[test]
    fn switches_only_after_a_lead_held_for_the_hold() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        assert_eq!(feed(&mut t, 0, 1000, &[("a", -20.0), ("b", -60.0)]), [0]);
        // b louder by more than the margin: the switch comes after the hold, not before.
        let changes = feed(&mut t, 1000, 4000, &[("a", -30.0), ("b", -15.0)]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        // a's envelope falls from -20 to -30 within 0.5 s, so b leads from the start.
        assert!(
            (2500..2600).contains(&changes[0]),
            "switched at {changes:?}"
        );
        assert_eq!(t.speaker(), Some("b"));
    }

    #[test]
    fn a_lead_interrupted_starts_over() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 500, &[("a", -20.0)]);
        // b leads for 1 s, a gets loud again for 200 ms, b leads for 1 s: never 1.5 s at once.
        assert!(feed(&mut t, 500, 1500, &[("a", -40.0), ("b", -10.0)]).is_empty());
        assert!(feed(&mut t, 1500, 1700, &[("a", 0.0), ("b", -10.0)]).is_empty());
        assert!(feed(&mut t, 1700, 2700, &[("a", -40.0), ("b", -10.0)]).is_empty());
        assert_eq!(t.speaker(), Some("a"));
    }

    #[test]
    fn two_similar_voices_do_not_flap() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 100, &[("a", -20.0)]);
        // Both talk for a minute, levels swinging like syllables, a little out of phase.
        let mut changes = 0;
        for i in 0..3000u64 {
            let swing = |k: u64| if (i + k) % 7 < 3 { -18.0 } else { -32.0 };
            changes += t.update("a", swing(0), ms(100 + i * 20)) as u32;
            changes += t.update("b", swing(3), ms(100 + i * 20 + 7)) as u32;
        }
        assert_eq!((changes, t.speaker()), (0, Some("a")));
    }

    #[test]
    fn a_silent_speaker_is_replaced_after_the_hold() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 1000, &[("a", -20.0)]);
        // a stops; b talks more quietly than a did: b leads once a is silent (the hang), and
        // takes over after the hold.
        let changes = feed(&mut t, 1000, 5000, &[("a", -90.0), ("b", -30.0)]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!((2000..3500).contains(&changes[0]), "{changes:?}");
        // Everyone silent: the last speaker keeps the floor.
        assert!(feed(&mut t, 5000, 9000, &[("a", -90.0), ("b", -90.0)]).is_empty());
        assert_eq!(t.speaker(), Some("b"));
    }

    #[test]
    fn speech_lasts_through_short_pauses() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 1000, &[("a", -20.0)]);
        feed(&mut t, 1000, 1500, &[("a", -90.0)]); // 500 ms: a pause within the hang
        feed(&mut t, 1500, 2000, &[("a", -20.0)]);
        feed(&mut t, 2000, 4000, &[("a", -90.0)]); // 2 s: the end
        feed(&mut t, 4000, 4500, &[("a", -20.0)]);
        let iv = t.intervals(ms(4500));
        let spans: Vec<_> = iv.iter().map(|i| (i.start, i.end)).collect();
        assert_eq!(spans, [(ms(0), ms(1980)), (ms(4000), ms(4500))]);
        // Later, after silence, the open stretch is seen as ended at its last loud level.
        assert_eq!(t.intervals(ms(9000))[1].end, ms(4480));
    }

    #[test]
    fn intervals_of_several_inputs_are_ordered_by_start() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 1000, &[("b", -20.0)]);
        feed(&mut t, 1000, 3000, &[("b", -90.0), ("a", -25.0)]);
        feed(&mut t, 3000, 4000, &[("b", -20.0), ("a", -90.0)]);
        let iv = t.intervals(ms(4000));
        let got: Vec<_> = iv
            .iter()
            .map(|i| (i.input.as_str(), i.start, i.end))
            .collect();
        assert_eq!(
            got,
            [
                ("b", ms(0), ms(980)),
                ("a", ms(1000), ms(2980)),
                ("b", ms(3000), ms(4000)),
            ]
        );
    }

    #[test]
    fn removing_the_speaker_hands_over_and_closes_its_speech() {
        let mut t = SpeakerTracker::new(SpeakerParams::default());
        feed(&mut t, 0, 1000, &[("a", -20.0), ("b", -30.0), ("c", -90.0)]);
        assert_eq!(t.speaker(), Some("a"));
        assert!(!t.remove("c", ms(1000)), "not the speaker");
        assert!(t.remove("a", ms(1100)));
        assert_eq!(
            t.speaker(),
            Some("b"),
            "b is speaking: it takes over at once"
        );
        let a: Vec<_> = t
            .intervals(ms(2000))
            .into_iter()
            .filter(|i| i.input == "a")
            .collect();
        assert_eq!(
            a,
            [Interval {
                input: "a".into(),
                start: ms(0),
                end: ms(1100)
            }]
        );
        // a's levels are gone: it cannot take the floor back.
        assert!(t.remove("b", ms(1200)));
        assert_eq!(t.speaker(), None, "nobody else is speaking");
        assert!(
            t.update("c", -20.0, ms(1300)),
            "the next to speak takes it at once"
        );
        assert_eq!(t.speaker(), Some("c"));
        assert!(!t.remove("nosuch", ms(1400)));
    }
}
