//! Upload conversion (SPEC C8, C11) on real files: the committed fixtures
//! (`tests/fixtures/make.sh`) and files sox makes in the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use palaver_conference::audio_upload::{self, ConvertedAudio, UploadError, UploadLimits};
use palaver_prompts::SampleRate;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs sox with `args` writing `out` in a temporary folder; returns the bytes.
fn sox(dir: &Path, out: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(out);
    let status = Command::new("sox")
        .arg("-R")
        .args(
            args.iter()
                .map(|a| a.replace("OUT", &path.display().to_string())),
        )
        .status()
        .expect("sox is needed for this test (Debian package sox)");
    assert!(status.success(), "sox {args:?}");
    std::fs::read(path).unwrap()
}

fn read_wav(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
    let spec = r.spec();
    let s = r.samples::<i16>().map(Result::unwrap).collect();
    (spec, s)
}

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

fn rms_dbfs(pcm: &[i16]) -> f64 {
    let p = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
    10.0 * (p / 32767f64.powi(2)).log10()
}

/// Both outputs are 16-bit mono WAVs at 8 and 16 kHz, as long as the
/// source, with the tone's frequency, levelled to the target.
fn check(c: &ConvertedAudio, seconds: f64, target: f64) {
    assert!(
        (c.duration.as_secs_f64() - seconds).abs() < 0.1,
        "{:?}",
        c.duration
    );
    for (bytes, rate) in [(&c.wav_8k, 8000u32), (&c.wav_16k, 16000)] {
        let (spec, pcm) = read_wav(bytes);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, rate, 16)
        );
        let secs = pcm.len() as f64 / f64::from(rate);
        assert!((secs - seconds).abs() < 0.1, "{rate}: {secs} s");
        // Skip the edges (resampler ramp, MP3 padding).
        let mid = &pcm[pcm.len() / 5..pcm.len() * 4 / 5];
        let level = rms_dbfs(mid);
        assert!(
            (level - target).abs() < 1.5,
            "{rate}: level {level:.1} dBFS"
        );
        let tone = goertzel(mid, rate, 440.0);
        let other = goertzel(mid, rate, 1000.0);
        assert!(
            tone > 20.0 * other,
            "{rate}: 440 Hz {tone:.0}, 1 kHz {other:.0}"
        );
    }
}

/// C8, C11: WAV, MP3, OGG Vorbis and FLAC uploads (stereo, 11–44 kHz,
/// quiet) become levelled 8 and 16 kHz mono WAVs.
#[test]
fn c8_c11_every_format_is_converted_and_levelled() {
    for (name, codec, seconds) in [
        ("tone.wav", "pcm_s16le", 0.25),
        ("tone.mp3", "mp3", 0.5),
        ("tone.ogg", "vorbis", 0.5),
        ("tone.flac", "flac", 0.5),
    ] {
        let c = audio_upload::convert(&fixture(name), &UploadLimits::announcement())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.codec, codec, "{name}");
        // MP3 encoders pad the end: up to 0.1 s longer.
        let seconds = if codec == "mp3" {
            let d = c.duration.as_secs_f64();
            assert!((0.5..0.6).contains(&d), "{name}: {d} s");
            d
        } else {
            seconds
        };
        check(&c, seconds, -20.0);
        assert!(
            c.gain_db > 10.0,
            "{name}: quiet source raised ({} dB)",
            c.gain_db
        );
        let m = audio_upload::convert(&fixture(name), &UploadLimits::music()).unwrap();
        check(&m, seconds, -23.0);
    }
}

/// C11: a long stereo 44.1 kHz music file made by sox converts whole.
#[test]
fn c11_long_stereo_music_from_sox() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sox(
        dir.path(),
        "music.flac",
        &[
            "-n", "-r", "44100", "-c", "2", "OUT", "synth", "20", "sine", "440", "vol", "0.5",
        ],
    );
    let c = audio_upload::convert(&bytes, &UploadLimits::music()).unwrap();
    assert_eq!((c.source_rate, c.source_channels), (44100, 2));
    check(&c, 20.0, -23.0);
}

/// C8: refusals say why — too long, silent, not audio, too large, empty.
#[test]
fn c8_bad_uploads_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let long = sox(
        dir.path(),
        "long.wav",
        &[
            "-n", "-r", "8000", "-c", "1", "-b", "16", "OUT", "synth", "61", "sine", "300",
        ],
    );
    let announcement = UploadLimits::announcement();
    assert_eq!(
        audio_upload::convert(&long, &announcement),
        Err(UploadError::TooLong { max_seconds: 60 })
    );
    assert!(audio_upload::convert(&long, &UploadLimits::music()).is_ok());
    // 11 minutes of FLAC silence is tiny but too long even for music.
    let hours = sox(
        dir.path(),
        "long.flac",
        &["-n", "-r", "8000", "-c", "1", "OUT", "trim", "0", "660"],
    );
    assert!(hours.len() < 200_000, "{}", hours.len());
    assert_eq!(
        audio_upload::convert(&hours, &UploadLimits::music()),
        Err(UploadError::TooLong { max_seconds: 600 })
    );
    let silent = sox(
        dir.path(),
        "silent.ogg",
        &["-n", "-r", "16000", "-c", "1", "OUT", "trim", "0", "2"],
    );
    assert_eq!(
        audio_upload::convert(&silent, &announcement),
        Err(UploadError::Silent)
    );
    assert_eq!(
        audio_upload::convert(b"<html>not audio</html>", &announcement),
        Err(UploadError::UnknownFormat)
    );
    assert_eq!(
        audio_upload::convert(&[], &announcement),
        Err(UploadError::Empty)
    );
    let wav = fixture("tone.wav");
    let small = UploadLimits {
        max_bytes: 1000,
        ..announcement
    };
    assert_eq!(
        audio_upload::convert(&wav, &small),
        Err(UploadError::TooLarge {
            size: wav.len(),
            max: 1000
        })
    );
    // Every refusal has a message for the person uploading.
    assert_eq!(
        UploadError::TooLong { max_seconds: 60 }.to_string(),
        "the audio is longer than 60 s"
    );
}

/// C8: a damaged file is refused (or, if a decodable part survives,
/// converted); it never panics.
#[test]
fn c8_damaged_files_are_errors_not_panics() {
    for name in ["tone.wav", "tone.mp3", "tone.ogg", "tone.flac"] {
        let good = fixture(name);
        for cut in [4, 12, 40, 100, good.len() / 2] {
            let _ = audio_upload::convert(&good[..cut.min(good.len())], &UploadLimits::music());
        }
        let mut bad = good.clone();
        for i in (60..bad.len()).step_by(7) {
            bad[i] = bad[i].wrapping_mul(31).wrapping_add(7);
        }
        let _ = audio_upload::convert(&bad, &UploadLimits::music());
    }
    let mut header_only = fixture("tone.wav");
    header_only.truncate(44);
    assert!(matches!(
        audio_upload::convert(&header_only, &UploadLimits::music()),
        Err(UploadError::Undecodable(_) | UploadError::UnknownFormat)
    ));
}

/// C8: saved files land where the conference looks for them, and the
/// media engine's prompt loader reads them.
#[test]
fn c8_saved_uploads_load_as_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let c = audio_upload::convert(&fixture("tone.flac"), &UploadLimits::announcement()).unwrap();
    c.save(dir.path(), "room-1-greeting.wav").unwrap();
    for &rate in SampleRate::ALL {
        let path: PathBuf = audio_upload::upload_path(dir.path(), "room-1-greeting.wav", rate);
        let prompt = palaver_media::source::load_wav(&path, rate.hz()).unwrap();
        let secs = prompt.samples.len() as f64 / f64::from(rate.hz());
        assert!((secs - 0.5).abs() < 0.05, "{secs}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("8000")).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any bytes: a result, never a panic.
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = audio_upload::convert(&bytes, &UploadLimits::announcement());
        }

        /// Real files with random bytes changed: a result, never a panic.
        #[test]
        fn mutated_fixtures_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        ) {
            let name = ["tone.wav", "tone.mp3", "tone.ogg", "tone.flac"][which];
            let mut bytes = fixture(name);
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let _ = audio_upload::convert(&bytes, &UploadLimits::music());
        }
    }
}
