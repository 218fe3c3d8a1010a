//! The N-1 mixer: once per tick, everyone hears everyone but themselves.
//!
//! Meet first: [`Mixer`] (owns every participant's input and output frame
//! in two contiguous arrays indexed by slot; `mix()` does the whole tick),
//! [`SlotFlags`] (who speaks into the mix and who hears it), [`Limiter`]
//! (the soft limiter on each output) and [`TalkDetector`] (paired
//! talking/stopped events with hysteresis).
//!
//! How a tick works. Every speaking slot's frame energy is measured. In a
//! room with at most `k` speakers everybody is mixed, ungated — nothing can
//! be clipped. Beyond that only the `k` loudest open gates enter the mix:
//! a gate opens on the very first frame above the gate level (no onset
//! delay, so first syllables are not cut) and stays open 400 ms after the
//! last; incumbents keep their place unless a challenger is 3 dB louder.
//! The selected frames are summed once in i32. Listeners who are not in the
//! mix all get the same *common* output (limited sum), so the room encodes
//! it once per codec; each mixed talker gets `sum − own` through its own
//! limiter. The limiter lowers gain smoothly when a frame would exceed
//! −3 dBFS and a soft knee catches what is left, so 50 people shouting
//! neither wrap around nor crackle.
//!
//! Not here: decoding, encoding, prompts (the room adds those) and time.

/// Per-slot switches, set by the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotFlags {
    /// The slot's audio may enter the mix (admitted and not muted).
    pub speak: bool,
    /// The slot hears the mix (admitted and not deaf).
    pub hear: bool,
}

/// Which buffer a slot's listener gets after [`Mixer::mix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixOutput {
    /// The shared mix: [`Mixer::common`].
    Common,
    /// Its own N-1 mix: [`Mixer::output`].
    Private,
    /// Nothing (does not hear).
    Silent,
}

/// Soft limiter state for one output stream.
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    gain_q16: i32,
}

impl Default for Limiter {
    fn default() -> Self {
        Self { gain_q16: UNITY }
    }
}

const UNITY: i32 = 1 << 16;
/// Peak the gain control aims for (−3 dBFS): steady loud audio is scaled
/// cleanly and never reaches the knee.
const CEILING: i32 = 23_000;
/// Start of the soft knee (−2.7 dBFS); only transients inside the gain
/// ramp reach it.
const KNEE: i32 = 24_000;

#[inline]
fn soft_clip(v: i32) -> i16 {
    let a = v.abs();
    if a <= KNEE {
        return v as i16;
    }
    // Rational knee: continuous slope, approaches but never reaches full
    // scale.
    let room = 32_767 - KNEE;
    let x = (a - KNEE) as i64;
    let y = KNEE + ((x * i64::from(room)) / (x + i64::from(room))) as i32;
    (if v < 0 { -y } else { y }) as i16
}

impl Limiter {
    /// Current gain (1.0 = unity).
    pub fn gain(&self) -> f32 {
        self.gain_q16 as f32 / UNITY as f32
    }

    /// What [`Limiter::apply`] does to the gain over a frame of silence,
    /// without the frame.
    pub fn release_silent(&mut self) {
        let start = self.gain_q16;
        self.gain_q16 = (start + ((UNITY - start) >> 4) + 1).min(UNITY);
    }

    /// Limits `sum − own` into `out`. `own` may be empty (no subtraction).
    pub fn apply(&mut self, sum: &[i32], own: &[i16], out: &mut [i16]) {
        let n = out.len().min(sum.len());
        let mut peak = 0i32;
        if own.is_empty() {
            for &s in &sum[..n] {
                peak = peak.max(s.saturating_abs());
            }
        } else {
            for (&s, &o) in sum[..n].iter().zip(own) {
                peak = peak.max((s - i32::from(o)).saturating_abs());
            }
        }
        let target = if peak > CEILING {
            ((i64::from(CEILING) << 16) / i64::from(peak)) as i32
        } else {
            UNITY
        };
        let mut start = self.gain_q16;
        let end = if target < start {
            // Attack at once: the whole frame is known before it is sent,
            // so this is a 20 ms look-ahead limiter and the frame's peak
            // never goes past the ceiling.
            start = target;
            target
        } else {
            // Release: about 300 ms back to unity.
            (start + ((target - start) >> 4) + 1).min(target)
        };
        self.gain_q16 = end;
        // Release towards the new gain within the first quarter of the frame.
        let ramp = (n / 4).max(1) as i64;
        for i in 0..n {
            let s = if own.is_empty() {
                sum[i]
            } else {
                sum[i] - i32::from(own[i])
            };
            let g = if (i as i64) < ramp {
                start as i64 + (i64::from(end - start) * (i as i64 + 1)) / ramp
            } else {
                i64::from(end)
            };
            let v = if g == i64::from(UNITY) {
                s
            } else {
                ((i64::from(s) * g) >> 16) as i32
            };
            out[i] = soft_clip(v);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotState {
    used: bool,
    known_level: bool,
    flags: SlotFlags,
    mean_square: i64,
    score: i64,
    hang: u8,
    selected: bool,
    output: Option<MixOutput>,
    limiter: Limiter,
}

/// Mean of the squared samples. Eight f32 lanes so it vectorises; f32
/// precision is ample for level decisions.
#[inline]
pub fn mean_square(pcm: &[i16]) -> i64 {
    let mut lanes = [0f32; 8];
    let chunks = pcm.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            let x = f32::from(x);
            *l += x * x;
        }
    }
    let mut total: f64 = lanes.iter().map(|&l| f64::from(l)).sum();
    for &x in rest {
        total += f64::from(x) * f64::from(x);
    }
    (total / pcm.len().max(1) as f64) as i64
}

/// Gate level for large rooms: mean square of about −50 dBov.
const GATE_MEAN_SQUARE: i64 = 110;
/// Gate hang-over in frames (400 ms).
const HANG_FRAMES: u8 = 20;

/// The room's mixer. See the module docs.
#[derive(Debug)]
pub struct Mixer {
    frame: usize,
    k: usize,
    slots: Vec<SlotState>,
    input: Vec<i16>,
    output: Vec<i16>,
    sum: Vec<i32>,
    common: Vec<i16>,
    common_limiter: Limiter,
    selected: Vec<usize>,
    ranking: Vec<(i64, usize)>,
    free: Vec<usize>,
    /// Whether `common` is all zeros this tick (no talker and no extra).
    common_silent: bool,
}

impl Mixer {
    /// A mixer for frames of `frame` samples mixing at most `k` talkers in
    /// large rooms.
    pub fn new(frame: usize, k: usize) -> Self {
        Self {
            frame,
            k: k.max(1),
            slots: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
            sum: vec![0; frame],
            common: vec![0; frame],
            common_limiter: Limiter::default(),
            selected: Vec::new(),
            ranking: Vec::new(),
            free: Vec::new(),
            common_silent: true,
        }
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// Sets the number of talkers mixed in large rooms.
    pub fn set_max_talkers(&mut self, k: usize) {
        self.k = k.max(1);
    }

    /// Takes a slot for a new participant (allocates only when the room
    /// grows past its previous size).
    pub fn add_slot(&mut self) -> usize {
        let idx = if let Some(i) = self.free.pop() {
            i
        } else {
            self.slots.push(SlotState::default());
            self.input.resize(self.slots.len() * self.frame, 0);
            self.output.resize(self.slots.len() * self.frame, 0);
            self.slots.len() - 1
        };
        self.slots[idx] = SlotState {
            used: true,
            ..Default::default()
        };
        self.input_mut(idx).fill(0);
        self.selected.reserve(self.slots.len());
        self.ranking.reserve(self.slots.len());
        idx
    }

    /// Frees a slot.
    pub fn remove_slot(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot)
            && s.used
        {
            *s = SlotState::default();
            self.free.push(slot);
        }
    }

    /// Sets who speaks and hears.
    pub fn set_flags(&mut self, slot: usize, flags: SlotFlags) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.flags = flags;
        }
    }

    /// The slot's input frame, for the room to decode into.
    pub fn input_mut(&mut self, slot: usize) -> &mut [i16] {
        &mut self.input[slot * self.frame..(slot + 1) * self.frame]
    }

    /// The slot's input frame.
    pub fn input(&self, slot: usize) -> &[i16] {
        &self.input[slot * self.frame..(slot + 1) * self.frame]
    }

    /// The slot's private N-1 output (valid when [`Self::output_kind`] is
    /// `Private`).
    pub fn output(&self, slot: usize) -> &[i16] {
        &self.output[slot * self.frame..(slot + 1) * self.frame]
    }

    /// The shared output for listeners outside the mix.
    pub fn common(&self) -> &[i16] {
        &self.common
    }

    /// Whether this tick's common mix is silence (all zeros): nobody mixed
    /// had any energy and there was no room-wide audio.
    pub fn common_silent(&self) -> bool {
        self.common_silent
    }

    /// What the slot's listener gets this tick.
    pub fn output_kind(&self, slot: usize) -> MixOutput {
        self.slots
            .get(slot)
            .and_then(|s| s.output)
            .unwrap_or(MixOutput::Silent)
    }

    /// Tells the mixer the slot's mean square for this tick (when the
    /// decoder computed it anyway), saving a pass over the samples.
    pub fn set_mean_square(&mut self, slot: usize, mean_square: i64) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.mean_square = mean_square;
            s.known_level = true;
        }
    }

    /// Mean square of the slot's input this tick.
    pub fn mean_square(&self, slot: usize) -> i64 {
        self.slots.get(slot).map_or(0, |s| s.mean_square)
    }

    /// Whether the slot was mixed this tick.
    pub fn is_mixed(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.selected)
    }

    /// Slots mixed this tick.
    pub fn mixed(&self) -> &[usize] {
        &self.selected
    }

    /// Runs one tick. `extra` is audio every hearing listener gets in
    /// addition (room-wide prompts and beeps), not subtracted from anyone.
    pub fn mix(&mut self, extra: Option<&[i16]>) {
        let f = self.frame;
        let mut speakers = 0usize;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if !s.used {
                continue;
            }
            if !std::mem::take(&mut s.known_level) {
                s.mean_square = mean_square(&self.input[i * f..(i + 1) * f]);
            }
            if s.flags.speak {
                speakers += 1;
                if s.mean_square >= GATE_MEAN_SQUARE {
                    s.hang = HANG_FRAMES;
                } else {
                    s.hang = s.hang.saturating_sub(1);
                }
                // Peak-hold score: fast attack, ~0.7 dB per frame release.
                s.score = s.mean_square.max(s.score - s.score / 7);
            } else {
                s.hang = 0;
                s.score = 0;
            }
        }

        // Choose the talkers.
        self.selected.clear();
        if speakers <= self.k {
            for (i, s) in self.slots.iter().enumerate() {
                if s.used && s.flags.speak {
                    self.selected.push(i);
                }
            }
        } else {
            self.ranking.clear();
            for (i, s) in self.slots.iter().enumerate() {
                if s.used && s.flags.speak && s.hang > 0 {
                    // Incumbents get 3 dB of hysteresis.
                    let score = if s.selected {
                        s.score.saturating_mul(2)
                    } else {
                        s.score
                    };
                    self.ranking.push((score, i));
                }
            }
            if self.ranking.len() > self.k {
                self.ranking
                    .select_nth_unstable_by(self.k - 1, |a, b| b.0.cmp(&a.0));
                self.ranking.truncate(self.k);
            }
            self.selected.extend(self.ranking.iter().map(|&(_, i)| i));
            self.selected.sort_unstable();
        }

        // Sum once. A talker without energy adds nothing: it is left out
        // of the sum and hears the common mix, so a room whose selected
        // talkers are all silent (most small rooms, most of the time) mixes
        // nothing at all.
        let audible = extra.is_some()
            || self
                .selected
                .iter()
                .any(|&i| self.slots[i].mean_square != 0);
        if audible {
            self.sum.fill(0);
            if let Some(e) = extra {
                for (s, &x) in self.sum.iter_mut().zip(e) {
                    *s += i32::from(x);
                }
            }
            for &i in &self.selected {
                if self.slots[i].mean_square == 0 {
                    continue;
                }
                for (s, &x) in self.sum.iter_mut().zip(&self.input[i * f..(i + 1) * f]) {
                    *s += i32::from(x);
                }
            }
            self.common_limiter.apply(&self.sum, &[], &mut self.common);
        } else {
            if !self.common_silent {
                self.common.fill(0);
            }
            self.common_limiter.release_silent();
        }
        self.common_silent = !audible;

        let mut next = 0;
        for i in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if !s.used {
                continue;
            }
            let selected = next < self.selected.len() && self.selected[next] == i;
            if selected {
                next += 1;
            }
            // Silent input: its N-1 mix is the common one.
            let mixed = selected && s.mean_square != 0;
            if mixed && !s.selected {
                // Continue from the gain the listener was hearing.
                s.limiter = self.common_limiter;
            }
            s.selected = mixed;
            s.output = Some(if !s.flags.hear {
                MixOutput::Silent
            } else if mixed {
                let own = &self.input[i * f..(i + 1) * f];
                s.limiter
                    .apply(&self.sum, own, &mut self.output[i * f..(i + 1) * f]);
                MixOutput::Private
            } else {
                MixOutput::Common
            });
        }
    }
}

/// Talk detection with hysteresis, for the live "who is talking" events.
///
/// Starts after 2 frames (40 ms) above the start level, stops after 25
/// frames (500 ms) below the lower stop level. The start event counts from
/// the first loud frame (its pre-roll), so the reported onset is not late by
/// the confirmation time.
#[derive(Debug, Clone, Copy, Default)]
pub struct TalkDetector {
    talking: bool,
    above: u8,
    below: u8,
}

/// A talk-state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TalkChange {
    /// Started talking; `frames_ago` is the pre-roll (onset this many
    /// frames before the event).
    Started {
        /// Frames between onset and confirmation.
        frames_ago: u8,
    },
    /// Stopped.
    Stopped,
}

impl TalkDetector {
    /// Mean square to start (about −40 dBov).
    pub const START: i64 = 1_100;
    /// Mean square to stay talking (about −46 dBov).
    pub const STOP: i64 = 270;

    /// Whether currently talking.
    pub fn is_talking(&self) -> bool {
        self.talking
    }

    /// Feeds one frame's mean square.
    pub fn update(&mut self, mean_square: i64) -> Option<TalkChange> {
        if self.talking {
            if mean_square < Self::STOP {
                self.below += 1;
                if self.below >= 25 {
                    self.talking = false;
                    self.below = 0;
                    self.above = 0;
                    return Some(TalkChange::Stopped);
                }
            } else {
                self.below = 0;
            }
        } else if mean_square >= Self::START {
            self.above += 1;
            if self.above >= 2 {
                self.talking = true;
                self.below = 0;
                let frames_ago = self.above - 1;
                self.above = 0;
                return Some(TalkChange::Started { frames_ago });
            }
        } else {
            self.above = 0;
        }
        None
    }

    /// Forces the stopped state (mute, leave); returns `Stopped` if it was
    /// talking so events stay paired.
    pub fn reset(&mut self) -> Option<TalkChange> {
        let was = self.talking;
        *self = Self::default();
        was.then_some(TalkChange::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = 160;

    fn sine(freq: f64, amp: f64, k: usize) -> Vec<i16> {
        (0..F)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * (k * F + i) as f64 / 8000.0).sin())
                    as i16
            })
            .collect()
    }

    /// What a slot's listener gets, whichever stream that is.
    fn heard(m: &Mixer, slot: usize) -> Vec<i16> {
        match m.output_kind(slot) {
            MixOutput::Private => m.output(slot).to_vec(),
            MixOutput::Common => m.common().to_vec(),
            MixOutput::Silent => vec![0; F],
        }
    }

    fn room(n: usize, k: usize) -> (Mixer, Vec<usize>) {
        let mut m = Mixer::new(F, k);
        let slots: Vec<usize> = (0..n).map(|_| m.add_slot()).collect();
        for &s in &slots {
            m.set_flags(
                s,
                SlotFlags {
                    speak: true,
                    hear: true,
                },
            );
        }
        (m, slots)
    }

    #[test]
    fn exact_n_minus_one() {
        let (mut m, s) = room(3, 5);
        m.input_mut(s[0]).copy_from_slice(&sine(440.0, 3000.0, 0));
        m.input_mut(s[1]).copy_from_slice(&sine(700.0, 2000.0, 0));
        m.input_mut(s[2]).fill(0);
        m.mix(None);
        assert_eq!(m.output_kind(s[0]), MixOutput::Private);
        // A hears exactly B, B hears exactly A, C hears A+B.
        assert_eq!(heard(&m, s[0]), &sine(700.0, 2000.0, 0)[..]);
        assert_eq!(heard(&m, s[1]), &sine(440.0, 3000.0, 0)[..]);
        let ab: Vec<i16> = sine(440.0, 3000.0, 0)
            .iter()
            .zip(sine(700.0, 2000.0, 0))
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(heard(&m, s[2]), &ab[..]);
    }

    #[test]
    fn fifty_loud_talkers_neither_wrap_nor_clip() {
        let (mut m, s) = room(50, 50);
        let mut prev_max = 0i16;
        for k in 0..50 {
            for (j, &slot) in s.iter().enumerate() {
                let v = sine(300.0 + 20.0 * j as f64, 30000.0, k);
                m.input_mut(slot).copy_from_slice(&v);
            }
            m.mix(None);
            for &slot in &s {
                let out = heard(&m, slot);
                // No wrap-around: a wrapped sum would flip sign against the
                // exact sum; check sign agreement on large samples.
                let own = m.input(slot);
                for i in 0..F {
                    let exact: i32 = s.iter().map(|&o| i32::from(m.input(o)[i])).sum::<i32>()
                        - i32::from(own[i]);
                    if exact.abs() > 5000 {
                        assert_eq!(exact.signum(), i32::from(out[i]).signum(), "wrap at {i}");
                    }
                    assert!(out[i] > i16::MIN && out[i] < i16::MAX, "hard clip");
                }
                prev_max = prev_max.max(out.iter().map(|x| x.saturating_abs()).max().unwrap());
            }
        }
        assert!(prev_max > 20000 && prev_max < 32767, "{prev_max}");
    }

    fn tone_amp(pcm: &[i16], freq: f64) -> f64 {
        let c = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s0 = f64::from(x) + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2).sqrt() * 2.0 / pcm.len() as f64
    }

    #[test]
    fn limiter_is_smooth_and_clean() {
        // A sudden +32 dB burst (50 loud talkers starting together): no
        // wrap (steps of ~65000), and once the gain has settled the output
        // is an undistorted sine (a hard clipper would put the 3rd harmonic
        // at about -10 dB).
        let mut l = Limiter::default();
        let mut last = 0i16;
        let mut max_step = 0i32;
        let mut settled = Vec::new();
        for k in 0..40 {
            let amp = if k < 10 { 5000.0 } else { 200000.0 };
            let sum: Vec<i32> = (0..F)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * 200.0 * (k * F + i) as f64 / 8000.0).sin())
                        as i32
                })
                .collect();
            let mut out = vec![0i16; F];
            l.apply(&sum, &[], &mut out);
            for &o in &out {
                max_step = max_step.max((i32::from(o) - i32::from(last)).abs());
                last = o;
            }
            if k >= 15 {
                settled.extend_from_slice(&out);
            }
        }
        assert!(max_step < 20000, "step {max_step}");
        let fundamental = tone_amp(&settled, 200.0);
        let third = tone_amp(&settled, 600.0);
        assert!(fundamental > 20000.0, "{fundamental}");
        assert!(third / fundamental < 0.01, "THD3 {}", third / fundamental);
        assert!(l.gain() < 0.2);
    }

    #[test]
    fn k_loudest_with_hysteresis() {
        let (mut m, s) = room(10, 3);
        let amps = [
            100.0, 4500.0, 4000.0, 3500.0, 3000.0, 50.0, 0.0, 0.0, 0.0, 0.0,
        ];
        for k in 0..5 {
            for (j, &slot) in s.iter().enumerate() {
                m.input_mut(slot).copy_from_slice(&sine(500.0, amps[j], k));
            }
            m.mix(None);
        }
        assert_eq!(m.mixed(), &[s[1], s[2], s[3]]);
        assert_eq!(m.output_kind(s[4]), MixOutput::Common);
        // Slot 4 gets a little louder than slot 3: hysteresis keeps 3.
        let amps2 = [0.0, 4500.0, 4000.0, 3500.0, 3750.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for k in 5..10 {
            for (j, &slot) in s.iter().enumerate() {
                m.input_mut(slot).copy_from_slice(&sine(500.0, amps2[j], k));
            }
            m.mix(None);
        }
        assert_eq!(m.mixed(), &[s[1], s[2], s[3]]);
        // Much louder (> 3 dB): takes the place at once.
        let amps3 = [0.0, 4500.0, 4000.0, 3500.0, 7500.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (j, &slot) in s.iter().enumerate() {
            m.input_mut(slot)
                .copy_from_slice(&sine(500.0, amps3[j], 11));
        }
        m.mix(None);
        assert!(m.mixed().contains(&s[4]));
        // Common listeners hear the sum of the mixed talkers only.
        let c = m.common().to_vec();
        let exact: Vec<i32> = (0..F)
            .map(|i| m.mixed().iter().map(|&t| i32::from(m.input(t)[i])).sum())
            .collect();
        for i in 0..F {
            assert!((i32::from(c[i]) - exact[i]).abs() <= 1 || exact[i].abs() > KNEE);
        }
    }

    #[test]
    fn new_talker_is_mixed_from_its_first_frame() {
        let (mut m, s) = room(10, 3);
        for k in 0..10 {
            for &slot in &s {
                m.input_mut(slot).fill(0);
            }
            if k == 9 {
                m.input_mut(s[7]).copy_from_slice(&sine(500.0, 3000.0, k));
            }
            m.mix(None);
        }
        assert_eq!(m.mixed(), &[s[7]]);
        assert!(m.common().iter().any(|&x| x.abs() > 2000));
    }

    #[test]
    fn muted_is_not_mixed_deaf_hears_nothing() {
        let (mut m, s) = room(3, 5);
        m.set_flags(
            s[0],
            SlotFlags {
                speak: false,
                hear: true,
            },
        );
        m.set_flags(
            s[2],
            SlotFlags {
                speak: true,
                hear: false,
            },
        );
        m.input_mut(s[0]).copy_from_slice(&sine(440.0, 3000.0, 0));
        m.input_mut(s[1]).fill(0);
        m.mix(None);
        assert!(heard(&m, s[1]).iter().all(|&x| x == 0));
        assert_eq!(m.output_kind(s[0]), MixOutput::Common);
        assert_eq!(m.output_kind(s[2]), MixOutput::Silent);
    }

    /// A silent talker is left out of the sum and shares the common mix;
    /// a room where nobody makes a sound mixes nothing and says so.
    #[test]
    fn silent_talkers_share_the_common_mix() {
        let (mut m, s) = room(3, 5);
        m.mix(None);
        assert!(m.common_silent());
        assert!(s.iter().all(|&x| m.output_kind(x) == MixOutput::Common));
        assert!(m.common().iter().all(|&x| x == 0));

        m.input_mut(s[0]).copy_from_slice(&sine(440.0, 3000.0, 0));
        m.mix(None);
        assert!(!m.common_silent());
        assert_eq!(m.output_kind(s[0]), MixOutput::Private);
        assert_eq!(m.output_kind(s[1]), MixOutput::Common);
        assert_eq!(heard(&m, s[1]), &sine(440.0, 3000.0, 0)[..]);
        assert!(heard(&m, s[0]).iter().all(|&x| x == 0), "not itself");

        // Back to silence: the common buffer is cleared, not left stale.
        m.input_mut(s[0]).fill(0);
        m.mix(None);
        assert!(m.common_silent());
        assert!(heard(&m, s[1]).iter().all(|&x| x == 0));
    }

    #[test]
    fn extra_reaches_everyone_who_hears() {
        let (mut m, s) = room(2, 5);
        let beep = sine(1000.0, 2000.0, 0);
        m.mix(Some(&beep));
        assert_eq!(heard(&m, s[0]), &beep[..]);
        assert_eq!(m.common(), &beep[..]);
    }

    #[test]
    fn talk_events_are_paired() {
        let mut t = TalkDetector::default();
        assert_eq!(t.update(5000), None);
        assert_eq!(t.update(5000), Some(TalkChange::Started { frames_ago: 1 }));
        for _ in 0..24 {
            assert_eq!(t.update(500), None); // above STOP: keeps talking
        }
        for _ in 0..24 {
            assert_eq!(t.update(10), None);
        }
        assert_eq!(t.update(10), Some(TalkChange::Stopped));
        assert_eq!(t.update(5000), None);
        assert_eq!(t.update(5000), Some(TalkChange::Started { frames_ago: 1 }));
        assert_eq!(t.reset(), Some(TalkChange::Stopped));
        assert_eq!(t.reset(), None);
    }
}
