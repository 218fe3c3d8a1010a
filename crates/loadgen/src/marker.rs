//! Finding the marker burst in received audio, to the sample.
//!
//! Meet first: [`MarkerDetector`]. A listener pushes each decoded 20 ms
//! frame with the time its packet arrived; when a [`crate::signal::Marker`]
//! burst starts in that audio, the detector returns the instant its first
//! sample was *heard* (packet arrival + the onset's offset in the frame).
//! The talker knows when it sent that first sample, and the difference is
//! the mouth-to-ear delay through the bridge (no clock sync needed: talker
//! and listener live in the same process).
//!
//! How: the audio is cut into 16-sample blocks (2 ms). In each block the
//! sine and cosine sums at [`MARKER_HZ`] give the tone's amplitude; a block
//! counts when that amplitude is above a floor and the tone carries at
//! least half the block's power, so speech, noise and the server's beeps do
//! not count. Four counting blocks in a row confirm a marker. The onset is
//! the first counting block's start, moved back by the partial amplitude of
//! the block before it (a block holding the first `m` samples of the tone
//! measures about `m/16` of the full amplitude), which gets within about a
//! sample. Time is an argument; nothing here reads a clock.

use crate::signal::{MARKER_HZ, RATE};

/// Samples per analysis block (five whole cycles of the marker tone).
const BLOCK: usize = 16;
/// Counting blocks needed to confirm a marker (8 ms).
const CONFIRM: u32 = 4;
/// Tone power / block power needed for a block to count.
const DOMINANCE: f64 = 0.5;
/// Default amplitude floor (about −24 dBFS): after a limiter and a few
/// talkers in the mix, the marker is still well above it.
pub const DEFAULT_MIN_AMPLITUDE: f64 = 2_000.0;
/// Frames remembered for mapping a sample back to its arrival time.
const HISTORY: usize = 4;

/// Nanoseconds on one clock shared by talker and listener (the loadgen
/// uses `CLOCK_REALTIME`, the clock of kernel receive timestamps).
pub type Nanos = u64;

const NANOS_PER_SAMPLE: f64 = 1e9 / RATE as f64;

/// The state of one listener's search for the marker.
#[derive(Debug, Clone)]
pub struct MarkerDetector {
    min_amplitude: f64,
    cos: [f64; BLOCK],
    sin: [f64; BLOCK],
    block: [i16; BLOCK],
    filled: usize,
    /// Samples pushed since the last reset.
    samples: u64,
    /// (first sample index, arrival time) of recent frames.
    frames: [(u64, Nanos); HISTORY],
    frame_count: usize,
    /// Amplitudes of the last two blocks (older first), once seen.
    history: [Option<f64>; 2],
    run: u32,
    /// The run's first block: start sample and the two amplitudes before it.
    run_start: Option<(u64, [Option<f64>; 2])>,
    run_amplitudes: [f64; 2],
    /// After a detection, blocks ignored until the tone has ended.
    refractory: bool,
}

/// One detected marker onset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// When the onset was heard.
    pub heard_at: Nanos,
    /// Steady amplitude of the tone as received.
    pub amplitude: f64,
}

impl Default for MarkerDetector {
    fn default() -> Self {
        Self::new(DEFAULT_MIN_AMPLITUDE)
    }
}

impl MarkerDetector {
    /// A detector that ignores tones weaker than `min_amplitude` (peak).
    pub fn new(min_amplitude: f64) -> Self {
        let w = std::f64::consts::TAU * MARKER_HZ / f64::from(RATE);
        let mut cos = [0.0; BLOCK];
        let mut sin = [0.0; BLOCK];
        for n in 0..BLOCK {
            cos[n] = (w * n as f64).cos();
            sin[n] = (w * n as f64).sin();
        }
        Self {
            min_amplitude,
            cos,
            sin,
            block: [0; BLOCK],
            filled: 0,
            samples: 0,
            frames: [(0, 0); HISTORY],
            frame_count: 0,
            history: [None; 2],
            run: 0,
            run_start: None,
            run_amplitudes: [0.0; 2],
            refractory: false,
        }
    }

    /// Forgets everything (after a gap in the audio, or between markers).
    pub fn reset(&mut self) {
        *self = Self {
            cos: self.cos,
            sin: self.sin,
            ..Self::new(self.min_amplitude)
        };
    }

    /// Feeds one frame of audio whose packet arrived at `arrival`; returns
    /// the marker onset if this frame confirmed one.
    pub fn push(&mut self, arrival: Nanos, pcm: &[i16]) -> Option<Detection> {
        self.frames[self.frame_count % HISTORY] = (self.samples, arrival);
        self.frame_count += 1;
        let mut found = None;
        for &s in pcm {
            self.block[self.filled] = s;
            self.filled += 1;
            self.samples += 1;
            if self.filled == BLOCK {
                self.filled = 0;
                let block_start = self.samples - BLOCK as u64;
                if let Some(d) = self.analyse(block_start) {
                    found = Some(d);
                }
            }
        }
        found
    }

    fn analyse(&mut self, block_start: u64) -> Option<Detection> {
        let (mut i, mut q, mut power) = (0.0, 0.0, 0.0);
        for n in 0..BLOCK {
            let x = f64::from(self.block[n]);
            i += x * self.cos[n];
            q += x * self.sin[n];
            power += x * x;
        }
        let amplitude = 2.0 * (i * i + q * q).sqrt() / BLOCK as f64;
        let tone_power = amplitude * amplitude / 2.0;
        let block_power = power / BLOCK as f64;
        let counts =
            amplitude >= self.min_amplitude && tone_power >= DOMINANCE * block_power.max(1.0);

        if self.refractory {
            if !counts {
                self.run += 1;
                // 20 ms without the tone: the burst is over.
                if self.run >= 10 {
                    self.refractory = false;
                    self.run = 0;
                }
            } else {
                self.run = 0;
            }
            self.history = [self.history[1], Some(amplitude)];
            return None;
        }

        let mut found = None;
        if counts {
            if self.run == 0 {
                self.run_start = Some((block_start, self.history));
            }
            if (self.run as usize) < self.run_amplitudes.len() {
                self.run_amplitudes[self.run as usize] = amplitude;
            }
            self.run += 1;
            if self.run >= CONFIRM {
                found = self.confirm();
                self.refractory = true;
                self.run = 0;
            }
        } else {
            self.run = 0;
            self.run_start = None;
        }
        self.history = [self.history[1], Some(amplitude)];
        found
    }

    fn confirm(&mut self) -> Option<Detection> {
        let (start, [older, before]) = self.run_start.take()?;
        // Without the block before the run we cannot tell whether the tone
        // began inside it: the onset would be unreliable.
        let before = before?;
        // The second block of the run is full of tone (the onset is in the
        // first block or earlier).
        let steady = self.run_amplitudes[1];
        if steady <= 0.0 {
            return None;
        }
        // A block holding `m` tone samples reads about m/16 of the full
        // amplitude (within about one sample). The tone may have begun in
        // the block before the run (too little of it there to count) or
        // inside the run's first block; counting the tone samples in both
        // gives the onset. What the block before held without the tone is
        // estimated from the block before that.
        let noise = older.unwrap_or(0.0);
        let mut partial_before = ((before - noise) / steady).clamp(0.0, 1.0);
        if partial_before < 0.1 {
            partial_before = 0.0;
        }
        let partial_first = (self.run_amplitudes[0] / steady).clamp(0.0, 1.0);
        let tone_samples = (partial_before + partial_first) * BLOCK as f64;
        let onset = start as f64 + BLOCK as f64 - tone_samples;
        Some(Detection {
            heard_at: self.time_of(onset)?,
            amplitude: steady,
        })
    }

    /// Arrival time of the frame holding sample `onset`, plus its offset.
    fn time_of(&self, onset: f64) -> Option<Nanos> {
        let known = self.frame_count.min(HISTORY);
        let mut best: Option<(u64, Nanos)> = None;
        for k in 0..known {
            let (first, at) = self.frames[(self.frame_count - 1 - k) % HISTORY];
            if first as f64 <= onset {
                best = Some((first, at));
                break;
            }
        }
        let (first, at) = best?;
        let offset = ((onset - first as f64) * NANOS_PER_SAMPLE).max(0.0);
        Some(at + offset as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{FRAME, Marker, SpeechLike, Tone};

    const MS: u64 = 1_000_000;

    /// Plays `frames` (20 ms each, packet k arriving at t0 + k·20 ms +
    /// extra) through a detector; returns every detection.
    fn run(frames: &[[i16; FRAME]], t0: Nanos) -> Vec<Detection> {
        let mut d = MarkerDetector::default();
        let mut out = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            if let Some(x) = d.push(t0 + k as u64 * 20 * MS, f) {
                out.push(x);
            }
        }
        out
    }

    /// Silence, then the marker starting `offset` samples into frame 5.
    fn marker_at(offset: usize, background: Option<u64>) -> Vec<[i16; FRAME]> {
        let mut pcm = vec![0i16; FRAME * 12];
        if let Some(seed) = background {
            SpeechLike::new(seed).fill(&mut pcm);
        }
        let mut m = [0i16; FRAME];
        for k in 0..3 {
            Marker::frame(k, &mut m);
            for (i, &s) in m.iter().enumerate() {
                let at = 5 * FRAME + offset + k as usize * FRAME + i;
                if at < pcm.len() {
                    pcm[at] = pcm[at].saturating_add(s);
                }
            }
        }
        pcm.chunks(FRAME)
            .map(|c| {
                let mut f = [0i16; FRAME];
                f.copy_from_slice(c);
                f
            })
            .collect()
    }

    #[test]
    fn onset_on_a_frame_boundary_is_exact() {
        let t0 = 1_000 * MS;
        let got = run(&marker_at(0, None), t0);
        assert_eq!(got.len(), 1);
        let expect = t0 + 5 * 20 * MS;
        let err = got[0].heard_at as i64 - expect as i64;
        assert!(err.abs() <= 130_000, "error {err} ns");
    }

    #[test]
    fn onset_inside_a_frame_is_within_a_sample_or_two() {
        let t0 = 5_000 * MS;
        for offset in [1usize, 5, 8, 13, 16, 37, 77, 150, 159] {
            let got = run(&marker_at(offset, None), t0);
            assert_eq!(got.len(), 1, "offset {offset}");
            let expect = t0 + 100 * MS + offset as u64 * 125_000;
            let err = got[0].heard_at as i64 - expect as i64;
            // Two samples (250 µs): far below what the targets resolve.
            assert!(err.abs() <= 250_000, "offset {offset}: error {err} ns");
        }
    }

    #[test]
    fn found_under_speech_and_timing_holds() {
        for seed in 1..20 {
            let got = run(&marker_at(40, Some(seed)), 0);
            assert_eq!(got.len(), 1, "seed {seed}");
            let expect = 100 * MS + 40 * 125_000;
            let err = got[0].heard_at as i64 - expect as i64;
            assert!(err.abs() <= 500_000, "seed {seed}: error {err} ns");
        }
    }

    #[test]
    fn speech_and_beeps_alone_are_not_markers() {
        let mut pcm = vec![0i16; FRAME * 500];
        SpeechLike::new(42).fill(&mut pcm);
        let frames: Vec<[i16; FRAME]> = pcm
            .chunks(FRAME)
            .map(|c| c.try_into().expect("chunks of FRAME"))
            .collect();
        assert!(run(&frames, 0).is_empty());
        for hz in [425.0, 600.0, 900.0, 1_400.0, 1_633.0, 2_000.0] {
            let mut t = Tone::new(hz, 20_000.0);
            let mut frames = vec![[0i16; FRAME]; 50];
            for f in &mut frames {
                t.fill(f);
            }
            assert!(run(&frames, 0).is_empty(), "{hz} Hz");
        }
    }

    #[test]
    fn quiet_marker_is_ignored_loud_one_found_after_limiting() {
        let scale = |frames: Vec<[i16; FRAME]>, g: f64| -> Vec<[i16; FRAME]> {
            frames
                .into_iter()
                .map(|f| f.map(|s| (f64::from(s) * g) as i16))
                .collect()
        };
        assert!(run(&scale(marker_at(0, None), 0.05), 0).is_empty());
        assert_eq!(run(&scale(marker_at(0, None), 0.4), 0).len(), 1);
    }

    #[test]
    fn one_detection_per_burst_and_reset_rearms() {
        let mut d = MarkerDetector::default();
        let frames = marker_at(0, None);
        let mut n = 0;
        for round in 0..2u64 {
            for (k, f) in frames.iter().enumerate() {
                n += usize::from(d.push(round * 1_000 * MS + k as u64 * 20 * MS, f).is_some());
            }
        }
        // The second pass is a new burst after silence: found again.
        assert_eq!(n, 2);
        d.reset();
        let mut late = MarkerDetector::default();
        // Starting in the middle of a burst gives no (unreliable) onset.
        let mut got = 0;
        for (k, f) in frames.iter().enumerate().skip(6) {
            got += usize::from(late.push(k as u64 * 20 * MS, f).is_some());
        }
        assert_eq!(got, 0);
    }
}
