//! The speech-quality scenario: what a listener should have heard, and how
//! what it did hear lines up with it.
//!
//! Meet first: [`References`] (from the talkers' speech: the clean mix, and
//! the *codec-only* path — each talker through the codec, summed, and
//! through the codec again, which is what an ideal bridge delivers),
//! [`align`] (finds where the reference starts inside a recording: a coarse
//! search on 1 ms energy envelopes, then sample-exact correlation) and
//! [`Continuity`] (the same alignment redone per second of speech: a
//! bridge that inserts silence or drops samples after its jitter buffer has
//! settled shows up as a lag that changes along the recording).
//!
//! PESQ itself (ITU-T P.862) is computed outside, by the `pesq` Python
//! package (`crates/loadgen/scripts/pesq_score.py`), on the WAV files
//! [`write_wav`] produces.

use std::path::Path;

use palaver_media::codec::{Codec, g711};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::signal::RATE;

/// What the listener should hear.
#[derive(Debug, Clone)]
pub struct References {
    /// The talkers' speech summed, untouched.
    pub clean: Vec<i16>,
    /// The same through the codec alone (an ideal, delay-free bridge).
    pub codec_only: Vec<i16>,
}

fn codec_round_trip(codec: Codec, pcm: &[i16]) -> Vec<i16> {
    let alaw = codec == Codec::Pcma;
    let mut bytes = vec![0u8; pcm.len()];
    g711::encode(alaw, pcm, &mut bytes);
    let mut out = vec![0i16; pcm.len()];
    g711::decode(alaw, &bytes, &mut out);
    out
}

impl References {
    /// References for `talkers` speaking at once through `codec` (G.711;
    /// other codecs are refused, their coding is not sample-exact and the
    /// scenario is defined for G.711).
    pub fn new(codec: Codec, talkers: &[Vec<i16>]) -> Result<Self> {
        if !matches!(codec, Codec::Pcmu | Codec::Pcma) {
            return Err(Error::Settings(
                "the quality scenario runs with PCMU or PCMA".into(),
            ));
        }
        let len = talkers.iter().map(Vec::len).max().unwrap_or(0);
        let mut clean = vec![0i32; len];
        let mut coded = vec![0i32; len];
        for t in talkers {
            let through = codec_round_trip(codec, t);
            for (i, (&s, &c)) in t.iter().zip(&through).enumerate() {
                clean[i] += i32::from(s);
                coded[i] += i32::from(c);
            }
        }
        let sat = |v: &Vec<i32>| -> Vec<i16> {
            v.iter().map(|&x| x.clamp(-32_768, 32_767) as i16).collect()
        };
        let codec_only = codec_round_trip(codec, &sat(&coded));
        Ok(Self {
            clean: sat(&clean),
            codec_only,
        })
    }
}

/// Samples per envelope block (1 ms).
const BLOCK: usize = 8;

fn envelope(pcm: &[i16]) -> Vec<f64> {
    pcm.chunks(BLOCK)
        .map(|c| c.iter().map(|&s| f64::from(s).abs()).sum::<f64>())
        .collect()
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Offset of `reference` inside `recording` (the sample where it starts),
/// if the recording holds it with a normalised correlation of at least 0.5.
pub fn align(reference: &[i16], recording: &[i16]) -> Option<usize> {
    if reference.is_empty() || recording.len() < reference.len() {
        return None;
    }
    let er = envelope(reference);
    let ec = envelope(recording);
    let lags = ec.len().checked_sub(er.len())? + 1;
    let mean_r = er.iter().sum::<f64>() / er.len() as f64;
    let mut best = (0usize, f64::MIN);
    for lag in 0..lags {
        let window = &ec[lag..lag + er.len()];
        let mean_c = window.iter().sum::<f64>() / window.len() as f64;
        let mut s = 0.0;
        for (x, y) in er.iter().zip(window) {
            s += (x - mean_r) * (y - mean_c);
        }
        if s > best.1 {
            best = (lag, s);
        }
    }
    let coarse = best.0 * BLOCK;
    let lo = coarse.saturating_sub(2 * BLOCK);
    let hi = (coarse + 2 * BLOCK).min(recording.len() - reference.len());
    let (offset, score) = (lo..=hi)
        .map(|o| {
            (
                o,
                correlation(reference, &recording[o..o + reference.len()]),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (score >= 0.5).then_some(offset)
}

/// How steady the bridge kept the talker's stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Continuity {
    /// Best lag of each 1 s speech segment relative to the whole-file
    /// alignment, in samples (0 everywhere: no sample inserted or lost).
    pub segment_lags: Vec<i64>,
    /// Segments too quiet to align.
    pub silent_segments: usize,
    /// Signal-to-difference ratio of the aligned recording against the
    /// codec-only reference, in dB (`inf` when bit-exact).
    pub snr_db: f64,
    /// Fraction of samples identical to the codec-only reference.
    pub exact_fraction: f64,
}

impl Continuity {
    /// Compares `aligned` (already cut to the reference's length) with
    /// `reference`; lags are searched within ±`max_lag` samples.
    pub fn measure(reference: &[i16], aligned: &[i16], max_lag: usize) -> Continuity {
        let n = reference.len().min(aligned.len());
        let seg = RATE as usize;
        let mut out = Continuity::default();
        let mut start = 0;
        while start + seg <= n {
            let r = &reference[start..start + seg];
            if crate::signal::rms(r) < 100.0 {
                out.silent_segments += 1;
                start += seg;
                continue;
            }
            let mut best = (0i64, f64::MIN);
            for lag in -(max_lag as i64)..=max_lag as i64 {
                let s = start as i64 + lag;
                if s < 0 || s as usize + seg > aligned.len() {
                    continue;
                }
                let c = correlation(r, &aligned[s as usize..s as usize + seg]);
                if c > best.1 {
                    best = (lag, c);
                }
            }
            out.segment_lags.push(best.0);
            start += seg;
        }
        let (mut sig, mut diff, mut same) = (0.0, 0.0, 0usize);
        for (&r, &a) in reference[..n].iter().zip(&aligned[..n]) {
            sig += f64::from(r) * f64::from(r);
            let d = f64::from(r) - f64::from(a);
            diff += d * d;
            same += usize::from(r == a);
        }
        out.snr_db = if diff == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (sig / diff).log10()
        };
        out.exact_fraction = if n == 0 { 0.0 } else { same as f64 / n as f64 };
        out
    }

    /// Whether every speech segment sat at the same lag.
    pub fn steady(&self) -> bool {
        self.segment_lags.windows(2).all(|w| w[0] == w[1])
    }
}

/// Reads a mono 16-bit WAV at 8 kHz.
pub fn read_wav(path: &Path) -> Result<Vec<i16>> {
    let err = |reason: String| Error::Wav {
        path: path.display().to_string(),
        reason,
    };
    let mut r = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = r.spec();
    if spec.channels != 1
        || spec.sample_rate != RATE
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(err(format!(
            "need mono 16-bit PCM at 8000 Hz, got {} ch {} bit {:?} at {} Hz (sox in.wav -r 8000 -c 1 -b 16 out.wav)",
            spec.channels, spec.bits_per_sample, spec.sample_format, spec.sample_rate
        )));
    }
    r.samples::<i16>()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))
}

/// Writes a mono 16-bit WAV at 8 kHz.
pub fn write_wav(path: &Path, pcm: &[i16]) -> Result<()> {
    let err = |e: hound::Error| Error::Wav {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in pcm {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::SpeechLike;

    fn speech(seed: u64, n: usize) -> Vec<i16> {
        let mut v = vec![0i16; n];
        SpeechLike::new(seed).fill(&mut v);
        v
    }

    #[test]
    fn single_talker_codec_only_is_one_round_trip() {
        let s = speech(1, 8_000);
        let r = References::new(Codec::Pcmu, std::slice::from_ref(&s)).expect("refs");
        assert_eq!(r.clean, s);
        // G.711 decode→encode→decode is exact, so the second pass changes
        // nothing.
        assert_eq!(r.codec_only, codec_round_trip(Codec::Pcmu, &s));
        assert!(References::new(Codec::Opus, &[s]).is_err());
    }

    #[test]
    fn three_talkers_are_summed() {
        let t: Vec<Vec<i16>> = (1..=3).map(|k| speech(k, 4_000)).collect();
        let r = References::new(Codec::Pcma, &t).expect("refs");
        for i in [100, 1_000, 3_999] {
            let sum: i32 = t.iter().map(|v| i32::from(v[i])).sum();
            assert_eq!(i32::from(r.clean[i]), sum.clamp(-32_768, 32_767));
        }
    }

    #[test]
    fn alignment_finds_the_offset_to_the_sample() {
        let reference = speech(4, 16_000);
        for offset in [0usize, 1, 7, 333, 4_321] {
            let mut rec = vec![0i16; offset];
            rec.extend_from_slice(&reference);
            rec.extend(std::iter::repeat_n(0, 3_000));
            assert_eq!(align(&reference, &rec), Some(offset), "offset {offset}");
        }
        // Unrelated audio does not align.
        let other = speech(99, 30_000);
        assert_eq!(align(&reference, &other), None);
        assert_eq!(align(&reference, &reference[..100]), None);
    }

    #[test]
    fn continuity_sees_an_inserted_gap() {
        let reference = speech(5, 8_000 * 4);
        let same = Continuity::measure(&reference, &reference, 80);
        assert!(same.steady());
        assert!(same.snr_db.is_infinite());
        assert_eq!(same.exact_fraction, 1.0);
        // 20 ms of silence inserted after 2 s: later segments lag by 160.
        let mut shifted = reference[..16_000].to_vec();
        shifted.extend(std::iter::repeat_n(0, 160));
        shifted.extend_from_slice(&reference[16_000..]);
        let c = Continuity::measure(&reference, &shifted, 240);
        assert!(!c.steady(), "{:?}", c.segment_lags);
        assert_eq!(c.segment_lags.first(), Some(&0));
        assert_eq!(c.segment_lags.last(), Some(&160));
        assert!(c.snr_db < 10.0);
    }

    #[test]
    fn wav_round_trip() {
        let dir = std::env::temp_dir().join(format!("loadgen-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("x.wav");
        let s = speech(6, 1_000);
        write_wav(&p, &s).expect("write");
        assert_eq!(read_wav(&p).expect("read"), s);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
