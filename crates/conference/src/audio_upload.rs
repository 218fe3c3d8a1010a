//! Custom greetings and music uploads (SPEC C8, C11): one call,
//! [`convert`], turns an uploaded WAV, MP3, OGG Vorbis or FLAC file into
//! the two 16-bit mono WAVs a room plays (8 and 16 kHz), or says in an
//! [`UploadError`] why it cannot.
//!
//! Meet first: [`UploadLimits`] (size, length and loudness target; one
//! preset for announcements, one for music), [`ConvertedAudio`] (the two
//! WAVs and what was done) and [`upload_path`] (where the conference looks
//! for a converted file: `<uploads>/<8000|16000>/<name>`, the layout of
//! `prompts/`).
//!
//! Steps: decode with symphonia (stopping as soon as the file is longer than
//! allowed, so a small file cannot expand into hours of audio), mix to mono,
//! resample with rubato, then level it like the shipped prompts: the active
//! level (RMS of the 20 ms frames within 30 dB of the loudest) is brought to
//! the target, unless that would push the peak past −3 dBFS, and never by
//! more than +30 dB (which would only raise noise). A decoder panic on a
//! hostile file is caught and reported as undecodable. Nothing here knows
//! rooms or the store; the web layer stores the file name it chose.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_prompts::SampleRate;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Default largest upload (10 MB).
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Highest source rate accepted; beyond it decoding would cost memory for
/// nothing a phone can play.
const MAX_SOURCE_RATE: u32 = 192_000;
/// Peak ceiling after levelling.
const PEAK_CEILING_DBFS: f32 = -3.0;
/// Largest boost.
const MAX_GAIN_DB: f32 = 30.0;
/// Below this peak the file is considered silent.
const SILENCE_PEAK_DBFS: f32 = -60.0;

/// What an upload may be, and the level it is brought to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadLimits {
    /// Largest file, bytes.
    pub max_bytes: usize,
    /// Longest audio.
    pub max_duration: Duration,
    /// Active level to reach, dBFS.
    pub target_level_dbfs: f32,
}

impl UploadLimits {
    /// An entry announcement (C8): 10 MB, 60 s, −20 dBFS like the prompts.
    pub fn announcement() -> Self {
        UploadLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_duration: Duration::from_secs(60),
            target_level_dbfs: -20.0,
        }
    }

    /// Music on hold (C11): 10 MB, 10 min, −23 dBFS, a little under
    /// speech so prompts stand out of it.
    pub fn music() -> Self {
        UploadLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_duration: Duration::from_secs(600),
            target_level_dbfs: -23.0,
        }
    }
}

/// Why an upload was refused. Messages are for the person uploading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Over `max_bytes`.
    #[error("the file is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a format we read.
    #[error("this is not a WAV, MP3, OGG Vorbis or FLAC file")]
    UnknownFormat,
    /// A known format, but broken or with an unsupported codec.
    #[error("the audio could not be decoded: {0}")]
    Undecodable(String),
    /// Longer than allowed.
    #[error("the audio is longer than {max_seconds} s")]
    TooLong {
        /// The limit.
        max_seconds: u64,
    },
    /// Nothing audible.
    #[error("the audio is silent")]
    Silent,
    /// Our own conversion failed (a bug, not the file's fault).
    #[error("the audio could not be converted: {0}")]
    Conversion(String),
}

/// The converted audio.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedAudio {
    /// 8 kHz 16-bit mono WAV.
    pub wav_8k: Vec<u8>,
    /// 16 kHz 16-bit mono WAV.
    pub wav_16k: Vec<u8>,
    /// Audio length.
    pub duration: Duration,
    /// Codec found (`"mp3"`, `"vorbis"`, `"flac"`, `"pcm_s16le"`…).
    pub codec: String,
    /// Source sample rate.
    pub source_rate: u32,
    /// Source channel count.
    pub source_channels: usize,
    /// Gain applied, dB.
    pub gain_db: f32,
}

impl ConvertedAudio {
    /// The WAV for one prompt rate.
    pub fn wav(&self, rate: SampleRate) -> &[u8] {
        match rate {
            SampleRate::Hz8000 => &self.wav_8k,
            SampleRate::Hz16000 => &self.wav_16k,
        }
    }

    /// Writes both WAVs under `uploads_dir` as `file_name` (see
    /// [`upload_path`]); each file appears whole or not at all (written
    /// aside, then renamed).
    pub fn save(&self, uploads_dir: &Path, file_name: &str) -> std::io::Result<()> {
        for &rate in SampleRate::ALL {
            let path = upload_path(uploads_dir, file_name, rate);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("part");
            std::fs::write(&tmp, self.wav(rate))?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }
}

/// `<uploads_dir>/<8000|16000>/<file_name>`.
pub fn upload_path(uploads_dir: &Path, file_name: &str, rate: SampleRate) -> PathBuf {
    uploads_dir.join(rate.hz().to_string()).join(file_name)
}

/// Decodes, checks, levels and converts an upload. See the module docs.
pub fn convert(bytes: &[u8], limits: &UploadLimits) -> Result<ConvertedAudio, UploadError> {
    if bytes.is_empty() {
        return Err(UploadError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(UploadError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let decoded = catch_unwind(AssertUnwindSafe(|| decode(bytes, limits.max_duration)))
        .unwrap_or_else(|_| Err(UploadError::Undecodable("the decoder failed".into())))?;
    let duration =
        Duration::from_secs_f64(decoded.mono.len() as f64 / f64::from(decoded.rate.max(1)));
    let wide = resample(&decoded.mono, decoded.rate, 16_000)?;
    let narrow = resample(&decoded.mono, decoded.rate, 8_000)?;
    let gain_db = level_gain(&wide, 16_000, limits.target_level_dbfs)?;
    let gain = 10f32.powf(gain_db / 20.0);
    Ok(ConvertedAudio {
        wav_8k: wav_bytes(&narrow, 8_000, gain)?,
        wav_16k: wav_bytes(&wide, 16_000, gain)?,
        duration,
        codec: decoded.codec,
        source_rate: decoded.rate,
        source_channels: decoded.channels,
        gain_db,
    })
}

struct Decoded {
    mono: Vec<f32>,
    rate: u32,
    channels: usize,
    codec: String,
}

fn too_long(max: Duration) -> UploadError {
    UploadError::TooLong {
        max_seconds: max.as_secs(),
    }
}

fn decode(bytes: &[u8], max: Duration) -> Result<Decoded, UploadError> {
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            DecodeError::Unsupported(_) | DecodeError::IoError(_) => UploadError::UnknownFormat,
            other => UploadError::Undecodable(other.to_string()),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| UploadError::Undecodable("no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let codec = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map_or_else(|| "unknown".to_owned(), |d| d.short_name.to_owned());
    if let (Some(frames), Some(rate)) = (params.n_frames, params.sample_rate)
        && rate > 0
        && frames as f64 / f64::from(rate) > max.as_secs_f64()
    {
        return Err(too_long(max));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| UploadError::Undecodable(e.to_string()))?;
    let mut mono: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.map_or(0, |c| c.count());
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    let mut bad_packets = 0u32;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(DecodeError::ResetRequired) => break,
            // A truncated tail is tolerated once something was decoded.
            Err(_) if !mono.is_empty() => break,
            Err(e) => return Err(UploadError::Undecodable(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(a) => a,
            Err(DecodeError::DecodeError(_)) | Err(DecodeError::IoError(_)) => {
                bad_packets += 1;
                if bad_packets > 1000 {
                    return Err(UploadError::Undecodable("too many corrupt packets".into()));
                }
                continue;
            }
            Err(e) => return Err(UploadError::Undecodable(e.to_string())),
        };
        let spec = *audio.spec();
        if spec.rate == 0 || spec.rate > MAX_SOURCE_RATE {
            return Err(UploadError::Undecodable(format!(
                "unsupported sample rate {} Hz",
                spec.rate
            )));
        }
        if rate != 0 && rate != spec.rate && !mono.is_empty() {
            return Err(UploadError::Undecodable(
                "the sample rate changes within the file".into(),
            ));
        }
        rate = spec.rate;
        let ch = spec.channels.count().max(1);
        channels = ch;
        let needed = audio.capacity() as u64;
        let buf = match &mut sample_buf {
            Some(b) if b.capacity() as u64 >= needed * ch as u64 => b,
            _ => sample_buf.insert(SampleBuffer::<f32>::new(needed, spec)),
        };
        buf.copy_interleaved_ref(audio);
        mono.extend(
            buf.samples()
                .chunks(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32),
        );
        if mono.len() as f64 / f64::from(rate) > max.as_secs_f64() {
            return Err(too_long(max));
        }
    }
    if mono.is_empty() || rate == 0 {
        return Err(UploadError::Undecodable("no audio in the file".into()));
    }
    Ok(Decoded {
        mono,
        rate,
        channels,
        codec,
    })
}

fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, UploadError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| UploadError::Conversion(format!("{from}->{to} Hz: {e}"));
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| err(&e))?;
    let need = r.process_all_needed_output_len(input.len());
    let mut out = vec![0.0f32; need];
    let a = InterleavedSlice::new(input, 1, input.len()).map_err(|e| err(&e))?;
    let mut b = InterleavedSlice::new_mut(&mut out[..], 1, need).map_err(|e| err(&e))?;
    let (_, produced) = r
        .process_all_into_buffer(&a, &mut b, input.len(), None)
        .map_err(|e| err(&e))?;
    out.truncate(produced);
    Ok(out)
}

fn db(x: f32) -> f32 {
    20.0 * x.max(1e-10).log10()
}

/// The gain (dB) that brings the active level to `target`, within the
/// peak ceiling and the boost limit. `Silent` when there is nothing to level.
fn level_gain(pcm: &[f32], rate: u32, target: f32) -> Result<f32, UploadError> {
    let peak = pcm.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
    if db(peak) < SILENCE_PEAK_DBFS {
        return Err(UploadError::Silent);
    }
    let frame = (rate as usize / 50).max(1);
    let powers: Vec<f32> = pcm
        .chunks(frame)
        .map(|f| f.iter().map(|s| s * s).sum::<f32>() / f.len() as f32)
        .collect();
    let loudest = powers.iter().fold(0.0f32, |m, &p| m.max(p));
    let floor = loudest * 1e-3; // 30 dB under the loudest frame
    let active: Vec<f32> = powers.into_iter().filter(|&p| p >= floor).collect();
    if active.is_empty() {
        return Err(UploadError::Silent);
    }
    let level = 10.0 * (active.iter().sum::<f32>() / active.len() as f32).log10();
    let wanted = target - level;
    let allowed = PEAK_CEILING_DBFS - db(peak);
    Ok(wanted.min(allowed).min(MAX_GAIN_DB))
}

fn wav_bytes(pcm: &[f32], rate: u32, gain: f32) -> Result<Vec<u8>, UploadError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::with_capacity(pcm.len() * 2 + 44));
    let conv = |e: hound::Error| UploadError::Conversion(e.to_string());
    let mut w = hound::WavWriter::new(&mut cursor, spec).map_err(conv)?;
    for &s in pcm {
        let v = (s * gain * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
        w.write_sample(v).map_err(conv)?;
    }
    w.finalize().map_err(conv)?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c8_empty_and_oversized_files_are_refused_before_decoding() {
        let limits = UploadLimits::announcement();
        assert_eq!(convert(&[], &limits), Err(UploadError::Empty));
        let small = UploadLimits {
            max_bytes: 4,
            ..limits
        };
        assert_eq!(
            convert(b"RIFFxxxx", &small),
            Err(UploadError::TooLarge { size: 8, max: 4 })
        );
    }

    #[test]
    fn c8_unknown_bytes_are_an_unknown_format() {
        let limits = UploadLimits::announcement();
        assert_eq!(
            convert(b"this is a text file, not audio", &limits),
            Err(UploadError::UnknownFormat)
        );
    }

    #[test]
    fn levelling_reaches_the_target_within_the_peak_ceiling() {
        // A steady sine at -40 dBFS RMS: +20 dB to reach -20 dBFS.
        let amp = 10f32.powf(-40.0 / 20.0) * 2f32.sqrt();
        let pcm: Vec<f32> = (0..16_000).map(|i| amp * (i as f32 * 0.1).sin()).collect();
        let g = level_gain(&pcm, 16_000, -20.0).unwrap();
        assert!((g - 20.0).abs() < 0.2, "{g}");
        // A single click must not be boosted past the ceiling.
        let mut clicks = vec![0.0f32; 16_000];
        clicks[100] = 0.5;
        let g = level_gain(&clicks, 16_000, -20.0).unwrap();
        assert!(db(0.5) + g <= PEAK_CEILING_DBFS + 0.01, "{g}");
        assert_eq!(
            level_gain(&[0.0; 1000], 16_000, -20.0),
            Err(UploadError::Silent)
        );
    }

    #[test]
    fn uploads_live_beside_each_other_by_rate() {
        assert_eq!(
            upload_path(Path::new("/d/uploads"), "room-3.wav", SampleRate::Hz16000),
            Path::new("/d/uploads/16000/room-3.wav")
        );
    }
}
