//! Audio sources that are not participants: tones, prompts, music on hold
//! and comfort noise, all produced at the room's rate.
//!
//! Meet first: [`Tone`] (a cadence of one- or two-frequency steps: join and
//! leave beeps, ringback, busy, confirmation beeps), [`Prompt`] (PCM
//! converted once to the room rate and shared by `Arc<[i16]>`, loaded with
//! [`PromptCache`] from WAV files of any rate), [`Playback`] (a cursor over
//! either, filling 20 ms frames) and [`ComfortNoise`].
//!
//! Loading WAV files is file I/O: the runtime does it on the control
//! thread and hands the room a ready [`Prompt`]; nothing here reads files
//! on the tick path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::codec::resample::resample_clip;
use crate::error::{Error, Result};

/// One step of a tone cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneStep {
    /// First frequency in Hz (0 = silence).
    pub f1: u16,
    /// Second frequency in Hz (0 = none).
    pub f2: u16,
    /// Duration in milliseconds.
    pub ms: u32,
    /// Peak amplitude of each frequency.
    pub amplitude: i16,
}

impl ToneStep {
    const fn on(f1: u16, f2: u16, ms: u32, amplitude: i16) -> Self {
        Self {
            f1,
            f2,
            ms,
            amplitude,
        }
    }
    const fn off(ms: u32) -> Self {
        Self {
            f1: 0,
            f2: 0,
            ms,
            amplitude: 0,
        }
    }
}

/// A tone: steps played in order, once or looping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tone {
    /// The cadence.
    pub steps: Arc<[ToneStep]>,
    /// Loop forever (ringback, busy) instead of playing once.
    pub looped: bool,
}

// About −16 dBov per frequency: clearly audible, never near clipping.
const LEVEL: i16 = 5000;

impl Tone {
    /// Any cadence.
    pub fn new(steps: &[ToneStep], looped: bool) -> Self {
        Self {
            steps: steps.into(),
            looped,
        }
    }
    /// Join beep: two short rising beeps.
    pub fn join_beep() -> Self {
        Self::new(
            &[
                ToneStep::on(600, 0, 90, LEVEL),
                ToneStep::off(40),
                ToneStep::on(900, 0, 120, LEVEL),
            ],
            false,
        )
    }
    /// Leave beep: two short falling beeps.
    pub fn leave_beep() -> Self {
        Self::new(
            &[
                ToneStep::on(900, 0, 90, LEVEL),
                ToneStep::off(40),
                ToneStep::on(600, 0, 120, LEVEL),
            ],
            false,
        )
    }
    /// Confirmation: three quick high beeps.
    pub fn confirmation() -> Self {
        Self::new(
            &[
                ToneStep::on(1400, 0, 60, LEVEL),
                ToneStep::off(60),
                ToneStep::on(1400, 0, 60, LEVEL),
                ToneStep::off(60),
                ToneStep::on(1400, 0, 60, LEVEL),
            ],
            false,
        )
    }
    /// European ringback: 425 Hz, 1 s on, 4 s off.
    pub fn ringback_eu() -> Self {
        Self::new(
            &[ToneStep::on(425, 0, 1000, LEVEL), ToneStep::off(4000)],
            true,
        )
    }
    /// North American ringback: 440+480 Hz, 2 s on, 4 s off.
    pub fn ringback_us() -> Self {
        Self::new(
            &[ToneStep::on(440, 480, 2000, LEVEL / 2), ToneStep::off(4000)],
            true,
        )
    }
    /// European busy: 425 Hz, 0.5 s on, 0.5 s off.
    pub fn busy_eu() -> Self {
        Self::new(
            &[ToneStep::on(425, 0, 500, LEVEL), ToneStep::off(500)],
            true,
        )
    }
    /// North American busy: 480+620 Hz, 0.5 s on, 0.5 s off.
    pub fn busy_us() -> Self {
        Self::new(
            &[ToneStep::on(480, 620, 500, LEVEL / 2), ToneStep::off(500)],
            true,
        )
    }
    /// A DTMF digit as in-band audio (for peers without telephone-event).
    pub fn dtmf(digit: char, ms: u32) -> Result<Self> {
        const ROWS: [u16; 4] = [697, 770, 852, 941];
        const COLS: [u16; 4] = [1209, 1336, 1477, 1633];
        let code = crate::dtmf::digit_to_event(digit)?;
        let (r, c) = match code {
            0 => (3, 1),
            1..=9 => ((code - 1) / 3, (code - 1) % 3),
            10 => (3, 0),
            11 => (3, 2),
            _ => (code - 12, 3),
        };
        Ok(Self::new(
            &[
                ToneStep::on(ROWS[usize::from(r)], COLS[usize::from(c)], ms, LEVEL / 2),
                ToneStep::off(60),
            ],
            false,
        ))
    }
}

/// PCM at the room rate, shared between every room and participant playing
/// it.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Samples at `rate`.
    pub samples: Arc<[i16]>,
    /// Their rate (must equal the room's).
    pub rate: u32,
}

/// Length and rate, not the samples: a logged `RoomCommand::Play` would
/// otherwise print tens of thousands of numbers.
impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("rate", &self.rate)
            .field("samples", &self.samples.len())
            .finish()
    }
}

const SINE_BITS: u32 = 10;

fn sine_table() -> &'static [i16; 1 << SINE_BITS] {
    static T: OnceLock<[i16; 1 << SINE_BITS]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0i16; 1 << SINE_BITS];
        for (i, v) in t.iter_mut().enumerate() {
            *v = (32767.0
                * (2.0 * std::f64::consts::PI * i as f64 / f64::from(1u32 << SINE_BITS)).sin())
            .round() as i16;
        }
        t
    })
}

#[derive(Debug, Clone)]
struct ToneCursor {
    tone: Tone,
    step: usize,
    pos: usize,
    ph1: u32,
    ph2: u32,
}

impl ToneCursor {
    /// Adds the tone into `out`; returns false when finished.
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let table = sine_table();
        let mut i = 0;
        while i < out.len() {
            let Some(st) = self.tone.steps.get(self.step).copied() else {
                if self.tone.looped && !self.tone.steps.is_empty() {
                    self.step = 0;
                    continue;
                }
                return false;
            };
            let len = (rate as usize * st.ms as usize / 1000).max(1);
            let inc1 = ((u64::from(st.f1) << 32) / u64::from(rate)) as u32;
            let inc2 = ((u64::from(st.f2) << 32) / u64::from(rate)) as u32;
            // 5 ms raised edges so steps do not click.
            let ramp = (rate as usize / 200).min(len / 2).max(1);
            let n = (out.len() - i).min(len - self.pos);
            if st.f1 != 0 {
                let amplitude = i32::from(st.amplitude);
                for o in &mut out[i..i + n] {
                    // Full level between the edges: no envelope arithmetic.
                    let edge = self.pos.min(len - 1 - self.pos);
                    let env = if edge >= ramp {
                        amplitude
                    } else {
                        (amplitude * edge as i32) / ramp as i32
                    };
                    let mut v = i32::from(table[(self.ph1 >> (32 - SINE_BITS)) as usize]);
                    if st.f2 != 0 {
                        v += i32::from(table[(self.ph2 >> (32 - SINE_BITS)) as usize]);
                    }
                    let s = (v * env) >> 15;
                    *o = o.saturating_add(s.clamp(-32768, 32767) as i16);
                    self.ph1 = self.ph1.wrapping_add(inc1);
                    self.ph2 = self.ph2.wrapping_add(inc2);
                    self.pos += 1;
                }
            } else {
                self.pos += n;
            }
            i += n;
            if self.pos >= len {
                self.step += 1;
                self.pos = 0;
            }
        }
        true
    }
}

/// Something being played to a participant or a room, with the id the
/// conference logic gave it (reported back when it finishes).
#[derive(Debug, Clone)]
pub struct Playback {
    /// Caller's id, echoed in the "finished" event.
    pub id: u64,
    kind: PlaybackKind,
}

#[derive(Debug, Clone)]
enum PlaybackKind {
    Tone(ToneCursor),
    Prompt {
        prompt: Prompt,
        pos: usize,
        looped: bool,
    },
    Silence {
        remaining: usize,
    },
}

impl Playback {
    /// A tone.
    pub fn tone(id: u64, tone: Tone) -> Self {
        Self {
            id,
            kind: PlaybackKind::Tone(ToneCursor {
                tone,
                step: 0,
                pos: 0,
                ph1: 0,
                ph2: 0,
            }),
        }
    }
    /// A prompt played once.
    pub fn prompt(id: u64, prompt: Prompt) -> Self {
        Self {
            id,
            kind: PlaybackKind::Prompt {
                prompt,
                pos: 0,
                looped: false,
            },
        }
    }
    /// A prompt looped forever (music on hold).
    pub fn looped(id: u64, prompt: Prompt) -> Self {
        Self {
            id,
            kind: PlaybackKind::Prompt {
                prompt,
                pos: 0,
                looped: true,
            },
        }
    }
    /// A pause of `samples` (between chained prompts).
    pub fn silence(id: u64, samples: usize) -> Self {
        Self {
            id,
            kind: PlaybackKind::Silence { remaining: samples },
        }
    }

    /// Adds the next `out.len()` samples into `out` (saturating). Returns
    /// `false` once finished (the rest of `out` is untouched).
    pub fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        match &mut self.kind {
            PlaybackKind::Tone(c) => c.fill(rate, out),
            PlaybackKind::Prompt {
                prompt,
                pos,
                looped,
            } => {
                let s = &prompt.samples;
                if s.is_empty() {
                    return false;
                }
                let mut i = 0;
                while i < out.len() {
                    if *pos >= s.len() {
                        if !*looped {
                            return false;
                        }
                        *pos = 0;
                    }
                    let n = (s.len() - *pos).min(out.len() - i);
                    for (o, &v) in out[i..i + n].iter_mut().zip(&s[*pos..*pos + n]) {
                        *o = o.saturating_add(v);
                    }
                    *pos += n;
                    i += n;
                }
                *looped || *pos < s.len()
            }
            PlaybackKind::Silence { remaining } => {
                *remaining = remaining.saturating_sub(out.len());
                *remaining > 0
            }
        }
    }
}

/// Low-level white noise (about −66 dBov) so a deafened or lonely
/// participant knows the line is alive.
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    state: u32,
    amplitude: i32,
}

impl Default for ComfortNoise {
    fn default() -> Self {
        Self::new(0x1234_5678, 16)
    }
}

impl ComfortNoise {
    /// Noise of peak `amplitude` from `seed`.
    pub fn new(seed: u32, amplitude: i32) -> Self {
        Self {
            state: seed | 1,
            amplitude,
        }
    }

    /// Overwrites `out` with noise.
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            *o = (((self.state as i32 >> 16) * self.amplitude) >> 15) as i16;
        }
    }
}

/// Reads a WAV file (8–32-bit integer or float, mono or multi-channel,
/// any rate) and converts it to mono PCM at `rate`.
pub fn load_wav(path: &Path, rate: u32) -> Result<Prompt> {
    let wav_err = |reason: String| Error::Wav {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| wav_err(e.to_string()))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(wav_err("no channels or zero sample rate".into()));
    }
    let ch = usize::from(spec.channels);
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| v * 32767.0))
            .collect::<Result<_, _>>()
            .map_err(|e| wav_err(e.to_string()))?,
        hound::SampleFormat::Int => {
            if spec.bits_per_sample == 0 || spec.bits_per_sample > 32 {
                return Err(wav_err(format!("{} bits per sample", spec.bits_per_sample)));
            }
            let shift = i32::from(spec.bits_per_sample) - 16;
            reader
                .samples::<i32>()
                .map(|s| {
                    s.map(|v| {
                        if shift >= 0 {
                            (v >> shift) as f32
                        } else {
                            (v << -shift) as f32
                        }
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(|e| wav_err(e.to_string()))?
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    let samples = resample_clip(&mono, spec.sample_rate, rate)?;
    Ok(Prompt {
        samples: samples.into(),
        rate,
    })
}

/// Prompts already converted, by file and room rate: each file is decoded
/// and resampled once, then shared.
#[derive(Debug, Default)]
pub struct PromptCache {
    entries: HashMap<(PathBuf, u32), Prompt>,
}

impl PromptCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prompt for `path` at `rate`, loading it the first time.
    pub fn get(&mut self, path: &Path, rate: u32) -> Result<Prompt> {
        let key = (path.to_path_buf(), rate);
        if let Some(p) = self.entries.get(&key) {
            return Ok(p.clone());
        }
        let p = load_wav(path, rate)?;
        self.entries.insert(key, p.clone());
        Ok(p)
    }

    /// Drops a file from the cache (after an upload replaced it).
    pub fn invalidate(&mut self, path: &Path) {
        self.entries.retain(|(p, _), _| p != path);
    }

    /// Number of cached conversions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goertzel(pcm: &[i16], rate: u32, f: f64) -> f64 {
        let c = 2.0 * (2.0 * std::f64::consts::PI * f / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s0 = f64::from(x) + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2).sqrt() * 2.0 / pcm.len() as f64
    }

    #[test]
    fn tone_has_its_frequency_level_and_length() {
        for rate in [8000, 16000, 48000] {
            let mut p = Playback::tone(1, Tone::ringback_eu());
            let mut out = vec![0i16; rate as usize]; // 1 s = the "on" part
            assert!(p.fill(rate, &mut out));
            let amp = goertzel(&out[rate as usize / 10..], rate, 425.0);
            assert!((amp - f64::from(LEVEL)).abs() < 300.0, "{rate}: {amp}");
            let mut off = vec![0i16; rate as usize];
            p.fill(rate, &mut off);
            assert!(off.iter().all(|&s| s == 0));
        }
    }

    #[test]
    fn one_shot_tone_finishes() {
        let mut p = Playback::tone(7, Tone::join_beep());
        let mut frames = 0;
        let mut out = [0i16; 160];
        while p.fill(8000, &mut out) {
            frames += 1;
            assert!(frames < 100);
        }
        assert!((11..=13).contains(&frames), "{frames}");
    }

    #[test]
    fn dtmf_tone_is_detected() {
        let mut p = Playback::tone(1, Tone::dtmf('9', 100).unwrap());
        let mut audio = vec![0i16; 8000 / 50 * 10];
        for f in audio.chunks_mut(160) {
            p.fill(8000, f);
        }
        let mut d = crate::dtmf::ToneDetector::new(8000);
        assert_eq!(d.process(&audio), Some('9'));
    }

    #[test]
    fn wav_any_rate_is_converted_once_and_shared() {
        let dir = std::env::temp_dir().join(format!("palaver-media-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..44100 {
            let v = (2_000_000.0
                * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 44100.0).sin())
                as i32;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let mut cache = PromptCache::new();
        let a = cache.get(&path, 16000).unwrap();
        let b = cache.get(&path, 16000).unwrap();
        assert!(Arc::ptr_eq(&a.samples, &b.samples));
        assert!((a.samples.len() as i64 - 16000).abs() < 20);
        let amp = goertzel(&a.samples[1600..14400], 16000, 440.0);
        assert!((amp - 2_000_000.0 / 256.0).abs() < 300.0, "{amp}");
        assert!(cache.get(&dir.join("missing.wav"), 8000).is_err());
        std::fs::write(dir.join("bad.wav"), b"RIFF....WAVEjunk").unwrap();
        assert!(matches!(
            cache.get(&dir.join("bad.wav"), 8000),
            Err(Error::Wav { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn looped_prompt_wraps_and_comfort_noise_is_quiet() {
        let p = Prompt {
            samples: vec![1i16, 2, 3].into(),
            rate: 8000,
        };
        let mut pb = Playback::looped(1, p);
        let mut out = [0i16; 7];
        assert!(pb.fill(8000, &mut out));
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1]);
        let mut cn = ComfortNoise::default();
        let mut n = [0i16; 1000];
        cn.fill(&mut n);
        assert!(n.iter().all(|s| s.abs() <= 16) && n.iter().any(|&s| s != 0));
    }

    #[test]
    fn prompt_debug_is_short() {
        let p = Prompt {
            samples: vec![1234i16; 16000].into(),
            rate: 8000,
        };
        let text = format!("{:?}", Playback::prompt(7, p));
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("samples: 16000"), "{text}");
        assert!(!text.contains("1234"), "{text}");
    }
}
