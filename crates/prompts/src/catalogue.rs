//! The compiled-in texts: `prompts/text/<lang>.toml`, parsed and checked once
//! into a [`LanguageTexts`] per language.
//!
//! The files are part of the binary, not read at run time, so a deployment
//! cannot lose them; a file that breaks the rules (a missing or unknown
//! prompt id, a gap in the number table) is a build defect that the unit
//! tests here catch before it ships.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::number::{NumberTable, NumbersFile};
use crate::{Error, Language, PromptId};

/// The text of one language file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageFile {
    // Read by scripts/gen-prompts.sh only; declared so that typos elsewhere
    // in the file are still refused by `deny_unknown_fields`.
    #[allow(dead_code)]
    voice: VoiceFile,
    prompts: BTreeMap<String, String>,
    numbers: NumbersFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct VoiceFile {
    espeak: String,
    speed: u32,
    number_speed: Option<u32>,
    pitch: u32,
}

/// Everything one language says.
#[derive(Debug)]
pub(crate) struct LanguageTexts {
    /// Indexed like [`PromptId::ALL`].
    prompts: Vec<String>,
    pub(crate) numbers: NumberTable,
}

impl LanguageTexts {
    pub(crate) fn prompt(&self, id: PromptId) -> &str {
        // `parse` fills one entry per `PromptId::ALL` element, in that order.
        &self.prompts[id as usize]
    }
}

fn source(lang: Language) -> &'static str {
    match lang {
        Language::En => include_str!("../../../prompts/text/en.toml"),
        Language::Fr => include_str!("../../../prompts/text/fr.toml"),
        Language::De => include_str!("../../../prompts/text/de.toml"),
        Language::Es => include_str!("../../../prompts/text/es.toml"),
        Language::It => include_str!("../../../prompts/text/it.toml"),
        Language::Nl => include_str!("../../../prompts/text/nl.toml"),
    }
}

/// The texts of `lang`, parsed on first use.
pub(crate) fn texts(lang: Language) -> &'static LanguageTexts {
    static ALL: OnceLock<Vec<LanguageTexts>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        Language::ALL
            .iter()
            .map(|&lang| {
                // The files are compiled in, so this can only fail on a
                // defect of the build itself; `every_language_file_is_valid`
                // parses each of them and fails first.
                parse(lang, source(lang)).expect("compiled-in prompt texts are valid")
            })
            .collect()
    });
    // `all` follows `Language::ALL`, whose order is the enum's.
    &all[lang as usize]
}

/// Reads and checks one language file.
pub(crate) fn parse(lang: Language, src: &str) -> Result<LanguageTexts, Error> {
    let bad = |reason: String| Error::Catalogue { lang, reason };
    let file: LanguageFile = toml::from_str(src).map_err(|e| bad(e.to_string()))?;
    let mut prompts = file.prompts;
    let mut ordered = Vec::with_capacity(PromptId::ALL.len());
    for &id in PromptId::ALL {
        let text = prompts
            .remove(id.as_str())
            .ok_or_else(|| bad(format!("prompt `{id}` is missing")))?;
        check_text(&text).map_err(|why| bad(format!("prompt `{id}`: {why}")))?;
        ordered.push(text);
    }
    if let Some(unknown) = prompts.keys().next() {
        return Err(bad(format!(
            "prompt `{unknown}` is not a PromptId (add it to crates/prompts first)"
        )));
    }
    let numbers = NumberTable::from_file(file.numbers).map_err(bad)?;
    Ok(LanguageTexts {
        prompts: ordered,
        numbers,
    })
}

/// A text must be speakable, and fit on one line of the generator's
/// tab-separated list.
pub(crate) fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("empty text".into());
    }
    if text.contains(['\t', '\n', '\r']) {
        return Err("tabs and line breaks are not allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_file_is_valid() {
        for &lang in Language::ALL {
            if let Err(e) = parse(lang, source(lang)) {
                panic!("{e}");
            }
        }
    }

    fn en_with(edit: impl FnOnce(String) -> String) -> Result<LanguageTexts, Error> {
        parse(Language::En, &edit(source(Language::En).to_owned()))
    }

    fn reason(r: Result<LanguageTexts, Error>) -> String {
        match r {
            Err(Error::Catalogue { reason, .. }) => reason,
            other => panic!("expected a catalogue error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_prompt_is_refused() {
        let r = en_with(|s| s.replace("goodbye = \"Goodbye.\"\n", ""));
        assert_eq!(reason(r), "prompt `goodbye` is missing");
    }

    #[test]
    fn an_unknown_prompt_is_refused() {
        let r = en_with(|s| s.replace("[prompts]\n", "[prompts]\nhello = \"Hello.\"\n"));
        assert!(reason(r).starts_with("prompt `hello` is not a PromptId"));
    }

    #[test]
    fn an_empty_prompt_is_refused() {
        let r = en_with(|s| s.replace("\"Goodbye.\"", "\"  \""));
        assert_eq!(reason(r), "prompt `goodbye`: empty text");
    }

    #[test]
    fn an_unknown_section_is_refused() {
        let r = en_with(|s| s + "\n[extra]\nx = 1\n");
        assert!(reason(r).contains("extra"));
    }

    #[test]
    fn a_gap_in_the_number_table_is_refused() {
        let r = en_with(|s| s.replace("42 = \"forty-two\"\n", ""));
        assert_eq!(reason(r), "numbers.cardinal: 42 is missing");
    }

    #[test]
    fn malformed_toml_is_an_error_not_a_panic() {
        for src in [
            "",
            "[prompts",
            "prompts = 3",
            "\u{0}",
            "[numbers.cardinal]\n0 = 1",
        ] {
            assert!(parse(Language::En, src).is_err(), "{src:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(src in "\\PC*") {
            let _ = parse(Language::En, &src);
        }

        /// Damaged copies of a real file (a slice cut out, a line replaced)
        /// are refused or accepted, never a panic; an accepted one still
        /// has every prompt.
        #[test]
        fn parsing_damaged_files_never_panics(
            lang in proptest::sample::select(Language::ALL),
            cut_at in any::<prop::sample::Index>(),
            cut_len in 0usize..200,
            junk in "\\PC{0,40}",
        ) {
            let src = source(lang);
            let start = cut_at.index(src.len());
            let start = (0..=start).rev().find(|&i| src.is_char_boundary(i)).unwrap_or(0);
            let end = (start + cut_len).min(src.len());
            let end = (end..=src.len()).find(|&i| src.is_char_boundary(i)).unwrap_or(src.len());
            let damaged = format!("{}{}{}", &src[..start], junk, &src[end..]);
            if let Ok(texts) = parse(lang, &damaged) {
                for &id in PromptId::ALL {
                    prop_assert!(!texts.prompt(id).trim().is_empty());
                }
            }
        }
    }
}
