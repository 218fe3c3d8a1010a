//! The catalogue of what a Palaver caller can hear: every voice prompt, in
//! every conference language, and where its audio lives on disk.
//!
//! Meet first: [`PromptId`] (one sentence of the call flow, such as
//! [`PromptId::EnterPin`]), [`Language`] (a room's prompt language, parsed
//! from `"en"`, `"fr"`, …), [`SampleRate`] (the 8 and 16 kHz sets) and
//! [`PromptFile`] (one WAV to play: a sentence or a number word).
//! [`path`] turns a prompt into a file name; [`participant_count`] builds the
//! ordered list of files that says "there are N participants", with each
//! language's number grammar.
//!
//! The texts and number words are data, not code: `prompts/text/<lang>.toml`
//! is compiled in and read once. `scripts/gen-prompts.sh` turns the same files
//! into `prompts/<lang>/<rate>/<id>.wav`, and the tests of this crate check
//! that every text has its audio at both rates.
//!
//! This crate plays nothing, decodes nothing and opens no file: it only names
//! files. Loading and playing them belongs to `palaver-media`; choosing which
//! prompt to play when belongs to the conference logic.
//!
//! ```
//! use std::path::Path;
//! use palaver_prompts::{participant_count, path, Language, PromptId, SampleRate};
//!
//! let lang: Language = "fr".parse().unwrap();
//! let greeting = path(Path::new("prompts"), lang, SampleRate::Hz8000, PromptId::Welcome);
//! assert_eq!(greeting, Path::new("prompts/fr/8000/welcome.wav"));
//!
//! let files = participant_count(lang, 71).unwrap();
//! let words: Vec<_> = files.iter().filter_map(|f| f.text(lang)).collect();
//! assert_eq!(words, ["Il y a", "soixante et onze", "participants dans la conférence."]);
//! ```

mod catalogue;
mod id;
mod number;

use std::path::{Path, PathBuf};

pub use id::{Language, PromptFile, PromptId, SampleRate};

/// The largest count [`participant_count`] can say: a room's largest size.
pub const MAX_PARTICIPANT_COUNT: u32 = 1000;

/// What can go wrong when naming prompts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A language code that has no prompts (the caller may fall back to English).
    #[error("unknown prompt language {0:?}; expected one of en, fr, de, es, it, nl")]
    UnknownLanguage(String),
    /// A prompt id that is not in the catalogue.
    #[error("unknown prompt id {0:?}")]
    UnknownPrompt(String),
    /// A sample rate for which no prompt set is generated.
    #[error("no prompts at {0} Hz; they exist at 8000 and 16000 Hz")]
    UnsupportedRate(u32),
    /// A participant count that cannot be said.
    #[error("participant count {0} is outside 1..={MAX_PARTICIPANT_COUNT}")]
    CountOutOfRange(u32),
    /// A `prompts/text/<lang>.toml` that does not follow the catalogue's rules.
    #[error("prompts/text/{lang}.toml: {reason}")]
    Catalogue { lang: Language, reason: String },
}

/// The WAV of `id` in `lang` at `rate`: `<base_dir>/<lang>/<rate>/<id>.wav`.
///
/// `base_dir` is the `prompts/` folder of the installation (the repository's
/// `prompts/` in development).
pub fn path(base_dir: &Path, lang: Language, rate: SampleRate, id: PromptId) -> PathBuf {
    PromptFile::from(id).path(base_dir, lang, rate)
}

/// The default music on hold at `rate`: `<base_dir>/moh/<rate>/default.wav`,
/// a 30 s loop whose last sample leads straight into its first.
pub fn moh_path(base_dir: &Path, rate: SampleRate) -> PathBuf {
    base_dir
        .join("moh")
        .join(rate.dir_name())
        .join("default.wav")
}

/// The files that say how many participants a room has, in playing order.
///
/// One participant is the singular sentence ([`PromptId::ParticipantsOne`]);
/// any other count is [`PromptId::ParticipantsBefore`], the number words and
/// [`PromptId::ParticipantsAfter`]. The number follows the language's
/// grammar as its text file describes it (German "einundsiebzig", French
/// "deux cents" but "deux cent un", Spanish "veintiún participantes", Italian
/// "centottanta").
///
/// # Errors
/// [`Error::CountOutOfRange`] for 0 or more than [`MAX_PARTICIPANT_COUNT`].
pub fn participant_count(lang: Language, n: u32) -> Result<Vec<PromptFile>, Error> {
    if n == 1 {
        return Ok(vec![PromptId::ParticipantsOne.into()]);
    }
    let words = catalogue::texts(lang).numbers.compose(n)?;
    let mut files = Vec::with_capacity(words.len() + 2);
    files.push(PromptId::ParticipantsBefore.into());
    files.extend(words.into_iter().map(PromptFile::number));
    files.push(PromptId::ParticipantsAfter.into());
    Ok(files)
}

/// The exact words of `id` in `lang`, as the synthesiser said them (for
/// captions, logs and tests).
pub fn text(lang: Language, id: PromptId) -> &'static str {
    catalogue::texts(lang).prompt(id)
}

/// Every file the language has: all [`PromptId`]s, then every number word its
/// text defines. Useful to preload a language or to check an installation.
pub fn files(lang: Language) -> Vec<PromptFile> {
    let mut files: Vec<PromptFile> = PromptId::ALL.iter().map(|&id| id.into()).collect();
    files.extend(
        catalogue::texts(lang)
            .numbers
            .words()
            .map(PromptFile::number),
    );
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_layout() {
        let base = Path::new("/srv/palaver/prompts");
        assert_eq!(
            path(base, Language::De, SampleRate::Hz16000, PromptId::EnterPin),
            Path::new("/srv/palaver/prompts/de/16000/enter_pin.wav")
        );
        assert_eq!(
            moh_path(base, SampleRate::Hz8000),
            Path::new("/srv/palaver/prompts/moh/8000/default.wav")
        );
    }

    #[test]
    fn one_participant_is_the_singular_sentence() {
        for &lang in Language::ALL {
            assert_eq!(
                participant_count(lang, 1).unwrap(),
                vec![PromptFile::from(PromptId::ParticipantsOne)]
            );
        }
    }

    #[test]
    fn counts_outside_the_room_size_are_refused() {
        for n in [0, 1001, u32::MAX] {
            assert_eq!(
                participant_count(Language::En, n),
                Err(Error::CountOutOfRange(n))
            );
        }
    }

    #[test]
    fn plural_counts_are_framed_by_the_sentence_parts() {
        for &lang in Language::ALL {
            for n in 2..=MAX_PARTICIPANT_COUNT {
                let files = participant_count(lang, n).unwrap();
                assert_eq!(files.first(), Some(&PromptId::ParticipantsBefore.into()));
                assert_eq!(files.last(), Some(&PromptId::ParticipantsAfter.into()));
                assert!((3..=6).contains(&files.len()), "{lang} {n}: {files:?}");
                for f in &files {
                    assert!(f.text(lang).is_some(), "{lang} {n}: {f} has no text");
                }
            }
        }
    }

    #[test]
    fn every_prompt_has_text_in_every_language() {
        for &lang in Language::ALL {
            for &id in PromptId::ALL {
                assert!(!text(lang, id).trim().is_empty(), "{lang} {id}");
            }
        }
    }

    #[test]
    fn files_lists_prompts_and_number_words_once() {
        for &lang in Language::ALL {
            let files = files(lang);
            let mut stems: Vec<_> = files.iter().map(|f| f.stem()).collect();
            stems.sort();
            let before = stems.len();
            stems.dedup();
            assert_eq!(stems.len(), before, "{lang}: duplicate file names");
            // 100 cardinals and 9 hundreds at least, plus 1000.
            assert!(files.len() >= PromptId::ALL.len() + 110, "{lang}");
        }
    }
}
