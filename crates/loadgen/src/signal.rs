//! What simulated participants say: speech-like noise, tones, the marker
//! burst used to measure delay, and the on/off pattern that decides who is
//! talking.
//!
//! Meet first: [`SpeechLike`] (band-limited noise shaped by a syllabic
//! envelope: bursts of 100–300 ms with short gaps, energy mostly below
//! 2 kHz like real speech), [`Tone`], [`Marker`] (a loud 2.5 kHz burst
//! whose onset is what [`crate::marker::MarkerDetector`] looks for) and
//! [`TalkPattern`] (alternating talk spurts and silences with exponential
//! lengths, so that a chosen fraction of participants talks at any time).
//!
//! Everything runs at 8 kHz, in 20 ms frames of [`FRAME`] samples, from a
//! seeded [`Rng64`]: the same seed gives the same audio, which keeps the
//! tests exact. No clock here: the caller says which frame comes next.

/// Samples per second of every generated signal.
pub const RATE: u32 = 8_000;
/// Samples in one 20 ms frame.
pub const FRAME: usize = 160;
/// Frequency of the marker tone. 2.5 kHz is five whole cycles in the
/// detector's 16-sample block (so the block's sine and cosine sums are
/// exact) and sits above where [`SpeechLike`] puts its energy and above
/// every prompt tone of the server (join/leave beeps, DTMF).
pub const MARKER_HZ: f64 = 2_500.0;
/// Marker peak amplitude (−6 dBFS): louder by about 10 dB than
/// [`SpeechLike`], so a mixer that keeps only the loudest talkers lets it in.
pub const MARKER_AMPLITUDE: f64 = 16_000.0;
/// Marker length in frames (60 ms).
pub const MARKER_FRAMES: u32 = 3;

/// A small, fast, seeded generator (SplitMix64). Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng64(u64);

impl Rng64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Exponentially distributed with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        // 1 - unit() is in (0, 1], so the logarithm is finite.
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Speech-like noise: white noise through a 200–1800 Hz band-pass,
/// multiplied by a syllabic envelope (syllables of 100–300 ms at random
/// loudness, gaps of 30–150 ms, with 10 ms ramps). Its RMS over a long run
/// is about −20 dBFS.
#[derive(Debug, Clone)]
pub struct SpeechLike {
    rng: Rng64,
    /// High-pass (one pole) state.
    hp_prev_in: f64,
    hp_prev_out: f64,
    /// Two cascaded low-pass poles.
    lp1: f64,
    lp2: f64,
    /// Samples left in the current syllable or gap.
    segment_left: u32,
    in_syllable: bool,
    target: f64,
    level: f64,
}

/// Gain that brings the filtered noise to about −20 dBFS RMS.
const SPEECH_GAIN: f64 = 60_000.0;
/// Envelope step per sample: a 10 ms ramp from silence to full level.
const RAMP_STEP: f64 = 1.0 / 80.0;

impl SpeechLike {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng64::new(seed),
            hp_prev_in: 0.0,
            hp_prev_out: 0.0,
            lp1: 0.0,
            lp2: 0.0,
            segment_left: 0,
            in_syllable: false,
            target: 0.0,
            level: 0.0,
        }
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        // Pole coefficients for 8 kHz: high-pass at 200 Hz, two low-pass
        // poles at 1.8 kHz.
        const HP: f64 = 0.855;
        const LP: f64 = 0.76;
        for o in out.iter_mut() {
            if self.segment_left == 0 {
                self.in_syllable = !self.in_syllable;
                if self.in_syllable {
                    self.segment_left = self.rng.range(800.0, 2400.0) as u32;
                    self.target = self.rng.range(0.35, 1.0);
                } else {
                    self.segment_left = self.rng.range(240.0, 1200.0) as u32;
                    self.target = 0.0;
                }
            }
            self.segment_left -= 1;
            if self.level < self.target {
                self.level = (self.level + RAMP_STEP).min(self.target);
            } else if self.level > self.target {
                self.level = (self.level - RAMP_STEP).max(self.target);
            }
            let white = self.rng.unit() * 2.0 - 1.0;
            let hp = HP * (self.hp_prev_out + white - self.hp_prev_in);
            self.hp_prev_in = white;
            self.hp_prev_out = hp;
            self.lp1 += (1.0 - LP) * (hp - self.lp1);
            self.lp2 += (1.0 - LP) * (self.lp1 - self.lp2);
            let v = self.lp2 * self.level * SPEECH_GAIN;
            *o = v.clamp(-32_767.0, 32_767.0) as i16;
        }
    }
}

/// A continuous sine.
#[derive(Debug, Clone)]
pub struct Tone {
    phase: f64,
    step: f64,
    amplitude: f64,
}

impl Tone {
    /// A tone of `hz` at peak `amplitude` (full scale is 32767).
    pub fn new(hz: f64, amplitude: f64) -> Self {
        Self {
            phase: 0.0,
            step: std::f64::consts::TAU * hz / f64::from(RATE),
            amplitude,
        }
    }

    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            *o = (self.phase.sin() * self.amplitude) as i16;
            self.phase += self.step;
            if self.phase > std::f64::consts::TAU {
                self.phase -= std::f64::consts::TAU;
            }
        }
    }
}

/// The marker burst: [`MARKER_FRAMES`] frames of [`MARKER_HZ`] at
/// [`MARKER_AMPLITUDE`], starting at sample 0 of its first frame with
/// phase 0 (a sharp onset is what makes the arrival time precise).
#[derive(Debug, Clone, Copy, Default)]
pub struct Marker;

impl Marker {
    /// Frame `index` (0-based) of the burst.
    pub fn frame(index: u32, out: &mut [i16; FRAME]) {
        let step = std::f64::consts::TAU * MARKER_HZ / f64::from(RATE);
        let base = index as usize * FRAME;
        for (i, o) in out.iter_mut().enumerate() {
            *o = (((base + i) as f64 * step).sin() * MARKER_AMPLITUDE) as i16;
        }
    }
}

/// Whether a participant talks, frame by frame: talk spurts and silences
/// alternate with exponentially distributed lengths whose means give the
/// wanted fraction (`talk_mean / (talk_mean + silence_mean)`).
#[derive(Debug, Clone)]
pub struct TalkPattern {
    rng: Rng64,
    talking: bool,
    frames_left: u32,
    talk_mean: f64,
    silence_mean: f64,
}

/// Mean talk spurt, in frames (3 s).
const TALK_SPURT_FRAMES: f64 = 150.0;

impl TalkPattern {
    /// `fraction` of the time talking, in [0, 1]. The first state is drawn
    /// with that probability, so a crowd starts at the steady-state mix.
    pub fn new(seed: u64, fraction: f64) -> Self {
        let fraction = fraction.clamp(0.0, 1.0);
        let mut rng = Rng64::new(seed ^ 0x5A5A_5A5A_5A5A_5A5A);
        let talk_mean = TALK_SPURT_FRAMES;
        let silence_mean = if fraction > 0.0 {
            talk_mean * (1.0 - fraction) / fraction
        } else {
            f64::INFINITY
        };
        let talking = fraction > 0.0 && rng.unit() < fraction;
        let mut p = Self {
            rng,
            talking,
            frames_left: 0,
            talk_mean,
            silence_mean,
        };
        // Exponential lengths are memoryless: what is left of the state a
        // crowd is caught in at a random instant is a fresh draw.
        p.frames_left = p.draw();
        p
    }

    fn draw(&mut self) -> u32 {
        let mean = if self.talking {
            self.talk_mean
        } else {
            self.silence_mean
        };
        if mean.is_infinite() {
            u32::MAX
        } else if mean <= 0.0 {
            0
        } else {
            self.rng.exponential(mean).min(f64::from(u32::MAX - 1)) as u32 + 1
        }
    }

    /// Advances one frame; returns whether this frame is talk.
    pub fn next_frame(&mut self) -> bool {
        if self.frames_left == 0 {
            self.talking = !self.talking;
            self.frames_left = self.draw();
            if self.frames_left == 0 {
                // A zero-length state (fraction 1.0 or 0.0 after the first
                // draw): stay where the fraction says.
                self.talking = !self.talking;
                self.frames_left = u32::MAX;
            }
        }
        self.frames_left = self.frames_left.saturating_sub(1);
        self.talking
    }
}

/// Root-mean-square of `pcm`.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}

/// Power of `pcm` at `hz` (Goertzel), normalised so a full-length sine of
/// amplitude `a` gives about `a² / 2`.
pub fn tone_power(pcm: &[i16], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / f64::from(RATE);
    let (mut i, mut q) = (0.0, 0.0);
    for (n, &s) in pcm.iter().enumerate() {
        let x = f64::from(s);
        i += x * (w * n as f64).cos();
        q += x * (w * n as f64).sin();
    }
    let n = pcm.len().max(1) as f64;
    2.0 * (i * i + q * q) / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(seed: u64, seconds: usize) -> Vec<i16> {
        let mut g = SpeechLike::new(seed);
        let mut v = vec![0i16; RATE as usize * seconds];
        g.fill(&mut v);
        v
    }

    #[test]
    fn speech_like_is_about_minus_20_dbfs() {
        let v = speech(1, 20);
        let dbfs = 20.0 * (rms(&v) / 32_768.0).log10();
        assert!((-26.0..=-16.0).contains(&dbfs), "{dbfs} dBFS");
        assert!(v.iter().all(|&s| s != i16::MIN));
    }

    #[test]
    fn speech_like_has_syllables_and_pauses() {
        let v = speech(2, 20);
        let frames: Vec<f64> = v.chunks(FRAME).map(rms).collect();
        let quiet = frames.iter().filter(|&&r| r < 100.0).count() as f64 / frames.len() as f64;
        let loud = frames.iter().filter(|&&r| r > 1_500.0).count() as f64 / frames.len() as f64;
        assert!((0.1..0.5).contains(&quiet), "quiet frames {quiet}");
        assert!(loud > 0.3, "loud frames {loud}");
    }

    #[test]
    fn speech_like_keeps_its_energy_below_the_marker_band() {
        let v = speech(3, 10);
        let low: f64 = [400.0, 800.0, 1200.0]
            .iter()
            .map(|&f| v.chunks(FRAME).map(|c| tone_power(c, f)).sum::<f64>())
            .sum::<f64>()
            / 3.0;
        let marker: f64 = v.chunks(FRAME).map(|c| tone_power(c, MARKER_HZ)).sum();
        assert!(low > 8.0 * marker, "low {low} marker band {marker}");
    }

    #[test]
    fn same_seed_same_audio_different_seed_different_audio() {
        assert_eq!(speech(7, 1), speech(7, 1));
        assert_ne!(speech(7, 1), speech(8, 1));
    }

    #[test]
    fn marker_starts_at_zero_and_is_a_pure_tone() {
        let mut f = [0i16; FRAME];
        Marker::frame(0, &mut f);
        assert_eq!(f[0], 0);
        let p = tone_power(&f, MARKER_HZ);
        let total = rms(&f).powi(2);
        assert!(p > 0.99 * total, "tone {p} total {total}");
        let amp = (2.0 * p).sqrt();
        assert!((amp - MARKER_AMPLITUDE).abs() < 50.0, "{amp}");
        // Frames continue the phase.
        let mut g = [0i16; FRAME];
        Marker::frame(1, &mut g);
        let step = std::f64::consts::TAU * MARKER_HZ / f64::from(RATE);
        let expect = ((FRAME as f64) * step).sin() * MARKER_AMPLITUDE;
        assert!((f64::from(g[0]) - expect).abs() <= 1.0);
    }

    #[test]
    fn tone_has_its_frequency() {
        let mut t = Tone::new(440.0, 10_000.0);
        let mut v = vec![0i16; 800];
        t.fill(&mut v);
        assert!(tone_power(&v, 440.0) > 100.0 * tone_power(&v, 1000.0));
    }

    #[test]
    fn talk_pattern_hits_its_fraction_over_a_crowd() {
        for fraction in [0.05, 0.3] {
            let mut talking = 0u64;
            let mut total = 0u64;
            for seed in 0..400 {
                let mut p = TalkPattern::new(seed, fraction);
                for _ in 0..3_000 {
                    talking += u64::from(p.next_frame());
                    total += 1;
                }
            }
            let got = talking as f64 / total as f64;
            assert!(
                (got - fraction).abs() < fraction * 0.2,
                "wanted {fraction}, got {got}"
            );
        }
    }

    #[test]
    fn talk_pattern_extremes() {
        let mut never = TalkPattern::new(1, 0.0);
        assert!((0..10_000).all(|_| !never.next_frame()));
        let mut always = TalkPattern::new(1, 1.0);
        assert!((0..10_000).all(|_| always.next_frame()));
    }

    #[test]
    fn talk_spurts_last_seconds_not_frames() {
        let mut p = TalkPattern::new(9, 0.5);
        let mut switches = 0;
        let mut last = p.next_frame();
        for _ in 0..50_000 {
            let now = p.next_frame();
            switches += u32::from(now != last);
            last = now;
        }
        // Mean state length 150 frames: about 333 switches in 50,000 frames.
        assert!((200..500).contains(&switches), "{switches}");
    }
}
