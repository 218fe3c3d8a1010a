//! Checks the committed audio under `prompts/` against the catalogue: every
//! prompt and number word of every language exists at 8 and 16 kHz as a
//! mono 16-bit WAV of sensible length and level, no stray files are left,
//! and the default music on hold is a clean 30 s loop. (SPEC C11, C13)
//!
//! When this fails after a text change, run `scripts/gen-prompts.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palaver_prompts::{Language, PromptId, SampleRate, files, moh_path, path};

fn prompts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts")
}

struct Wav {
    rate: u32,
    samples: Vec<i16>,
}

fn read(path: &Path) -> Wav {
    let reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: not a readable WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 1, "{}: not mono", path.display());
    assert_eq!(spec.bits_per_sample, 16, "{}: not 16-bit", path.display());
    assert_eq!(
        spec.sample_format,
        hound::SampleFormat::Int,
        "{}: not PCM",
        path.display()
    );
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: truncated: {e}", path.display()));
    Wav {
        rate: spec.sample_rate,
        samples,
    }
}

fn db(x: f64) -> f64 {
    20.0 * x.max(1e-12).log10()
}

fn peak_db(s: &[i16]) -> f64 {
    let peak = s.iter().map(|&x| i32::from(x).abs()).max().unwrap_or(0);
    db(f64::from(peak) / 32768.0)
}

fn rms_db(s: &[i16]) -> f64 {
    let sum: f64 = s.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    db((sum / s.len().max(1) as f64).sqrt() / 32768.0)
}

/// RMS over the 20 ms frames louder than -40 dBFS: the level a listener
/// hears, whatever the pauses (what scripts/gen-prompts.sh levels to).
fn active_level_db(s: &[i16], rate: u32) -> f64 {
    let frame = (rate / 50) as usize;
    let loud: Vec<f64> = s
        .chunks_exact(frame)
        .map(|c| {
            c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / frame as f64 / 32768f64.powi(2)
        })
        .filter(|&e| e > 1e-4)
        .collect();
    10.0 * (loud.iter().sum::<f64>() / loud.len().max(1) as f64).log10()
}

#[test]
fn every_prompt_and_number_word_has_audio_at_both_rates() {
    let base = prompts_dir();
    let mut checked = 0;
    for &lang in Language::ALL {
        for &rate in SampleRate::ALL {
            for file in files(lang) {
                let p = file.path(&base, lang, rate);
                assert!(
                    p.is_file(),
                    "missing {} (run scripts/gen-prompts.sh)",
                    p.display()
                );
                let wav = read(&p);
                assert_eq!(wav.rate, rate.hz(), "{}", p.display());
                let secs = wav.samples.len() as f64 / f64::from(wav.rate);
                assert!((0.15..15.0).contains(&secs), "{}: {secs:.2} s", p.display());
                // Peak normalised to -3 dBFS, turned down only to level
                // loud words with the rest: never clipped, never faint.
                let peak = peak_db(&wav.samples);
                assert!(
                    (-9.0..=-2.9).contains(&peak),
                    "{}: peak {peak:.1} dBFS",
                    p.display()
                );
                let level = active_level_db(&wav.samples, wav.rate);
                assert!(
                    (-24.5..=-18.5).contains(&level),
                    "{}: active level {level:.1} dBFS",
                    p.display()
                );
                checked += 1;
            }
        }
    }
    // 6 languages × 2 rates × (33 prompts + at least 110 number words).
    assert!(checked >= 6 * 2 * (PromptId::ALL.len() + 110), "{checked}");
}

#[test]
fn both_rates_say_the_same_thing() {
    let base = prompts_dir();
    for &lang in Language::ALL {
        for &id in PromptId::ALL {
            let narrow = read(&path(&base, lang, SampleRate::Hz8000, id));
            let wide = read(&path(&base, lang, SampleRate::Hz16000, id));
            let a = narrow.samples.len() as f64 / 8000.0;
            let b = wide.samples.len() as f64 / 16000.0;
            assert!((a - b).abs() < 0.02, "{lang} {id}: {a:.3} s vs {b:.3} s");
        }
    }
}

#[test]
fn no_stray_files_or_folders() {
    let base = prompts_dir();
    let mut expected_top: BTreeSet<String> = ["text", "moh", "README.md"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected_top.extend(Language::ALL.iter().map(|l| l.code().to_owned()));
    let top: BTreeSet<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, expected_top, "prompts/ holds unexpected entries");

    let texts: BTreeSet<String> = std::fs::read_dir(base.join("text"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected_texts: BTreeSet<String> =
        Language::ALL.iter().map(|l| format!("{l}.toml")).collect();
    assert_eq!(
        texts, expected_texts,
        "a text file without a Language, or the reverse"
    );

    for &lang in Language::ALL {
        let wanted: BTreeSet<String> = files(lang)
            .iter()
            .map(|f| format!("{}.wav", f.stem()))
            .collect();
        for &rate in SampleRate::ALL {
            let dir = base.join(lang.code()).join(rate.hz().to_string());
            let present: BTreeSet<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let stray: Vec<_> = present.difference(&wanted).collect();
            assert!(
                stray.is_empty(),
                "{}: files without a text: {stray:?}",
                dir.display()
            );
        }
    }
}

#[test]
fn music_on_hold_is_a_quiet_seamless_30_second_loop() {
    let base = prompts_dir();
    for &rate in SampleRate::ALL {
        let p = moh_path(&base, rate);
        let wav = read(&p);
        let s = &wav.samples;
        assert_eq!(wav.rate, rate.hz(), "{}", p.display());
        assert_eq!(
            s.len(),
            rate.hz() as usize * 30,
            "{}: not 30 s",
            p.display()
        );

        // Softer than the prompts around it.
        let peak = peak_db(s);
        let rms = rms_db(s);
        assert!(peak <= -6.0, "{}: peak {peak:.1} dBFS", p.display());
        assert!(
            (-24.0..=-20.0).contains(&rms),
            "{}: RMS {rms:.1} dBFS",
            p.display()
        );
        let mean = s.iter().map(|&x| f64::from(x)).sum::<f64>() / s.len() as f64;
        assert!(mean.abs() < 30.0, "{}: DC offset {mean:.0}", p.display());

        // Never silent for long: no 100 ms stretch below -45 dBFS.
        let window = rate.hz() as usize / 10;
        for (i, w) in s.chunks_exact(window).enumerate() {
            assert!(
                rms_db(w) > -45.0,
                "{}: quiet at {:.1} s",
                p.display(),
                i as f64 / 10.0
            );
        }

        // The seam: the step from the last sample to the first is no larger
        // than steps inside the music, and the level does not jump.
        let steps: Vec<i32> = s
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .collect();
        let max_step = *steps.iter().max().unwrap();
        let seam = (i32::from(s[0]) - i32::from(s[s.len() - 1])).abs();
        assert!(
            seam <= max_step,
            "{}: seam step {seam} > {max_step}",
            p.display()
        );
        let before = rms_db(&s[s.len() - window..]);
        let after = rms_db(&s[..window]);
        assert!(
            (before - after).abs() < 3.0,
            "{}: level jumps from {before:.1} to {after:.1} dBFS at the loop point",
            p.display()
        );
    }
}
