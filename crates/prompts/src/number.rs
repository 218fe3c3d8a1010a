//! Saying a count from 1 to 1000 with recorded number words.
//!
//! Each language's `[numbers]` table (in `prompts/text/<lang>.toml`) holds
//! the words; [`NumberTable::compose`] holds the one rule that all six
//! languages share, and the table's optional forms carry the differences:
//!
//! - `n < 100`: one word, `cardinal` (the table spells out 0–99 in full, so
//!   German "einundsiebzig", Dutch "eenentwintig", French "soixante et onze"
//!   and Italian "ventotto" need no rules here).
//! - `h × 100`: `hundreds` ("deux cents", "cien").
//! - `h × 100 + r`: the hundreds in the form that `r` asks for, then the
//!   optional `connector` (English "and"), then `r`:
//!   - `hundreds_elided` when `r` is in `elide_before` (Italian "cent" +
//!     "otto" = "centotto"),
//!   - else `hundreds_joined` (French "deux cent un", Spanish "ciento uno"),
//!   - else `hundreds`.
//! - the last part takes its `before_noun` form if the table has one, since
//!   the noun follows (Spanish "veintiún participantes", German "einhundertein
//!   Teilnehmer").
//! - `1000`: `thousand`.
//!
//! The same file stems are produced by `scripts/gen-prompts.sh`; this
//! crate's tests fail if the audio and the table disagree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::catalogue::check_text;
use crate::{Error, MAX_PARTICIPANT_COUNT};

/// One recorded number word.
///
/// Values are in range by construction: only [`NumberTable`] makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NumberWord {
    /// 0–99, said alone or at the end of a larger number.
    Cardinal(u8),
    /// 0–99 as the last part of a number right before the noun.
    BeforeNoun(u8),
    /// 1–9: h × 100 said alone.
    Hundreds(u8),
    /// 1–9: h × 100 when more follows.
    HundredsJoined(u8),
    /// 1–9: h × 100 before a remainder in `elide_before`.
    HundredsElided(u8),
    /// The word between the hundreds and the rest.
    Connector,
    /// 1000.
    Thousand,
}

impl NumberWord {
    pub(crate) fn stem(self) -> Cow<'static, str> {
        match self {
            NumberWord::Cardinal(n) => Cow::Owned(format!("num_{n}")),
            NumberWord::BeforeNoun(n) => Cow::Owned(format!("num_{n}_noun")),
            NumberWord::Hundreds(h) => Cow::Owned(format!("num_{h}00")),
            NumberWord::HundredsJoined(h) => Cow::Owned(format!("num_{h}00_joined")),
            NumberWord::HundredsElided(h) => Cow::Owned(format!("num_{h}00_elided")),
            NumberWord::Connector => Cow::Borrowed("num_and"),
            NumberWord::Thousand => Cow::Borrowed("num_1000"),
        }
    }
}

/// `[numbers]` as written in the text file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumbersFile {
    connector: Option<String>,
    thousand: String,
    #[serde(default)]
    elide_before: Vec<u32>,
    cardinal: BTreeMap<String, String>,
    hundreds: BTreeMap<String, String>,
    #[serde(default)]
    hundreds_joined: BTreeMap<String, String>,
    #[serde(default)]
    hundreds_elided: BTreeMap<String, String>,
    #[serde(default)]
    before_noun: BTreeMap<String, String>,
}

/// A language's number words, checked and indexed.
#[derive(Debug)]
pub(crate) struct NumberTable {
    cardinal: Vec<String>,
    before_noun: Vec<Option<String>>,
    hundreds: Vec<String>,
    hundreds_joined: Vec<Option<String>>,
    hundreds_elided: Vec<Option<String>>,
    elide_before: [bool; 100],
    connector: Option<String>,
    thousand: String,
}

impl NumberTable {
    pub(crate) fn from_file(file: NumbersFile) -> Result<Self, String> {
        let cardinal = dense("numbers.cardinal", file.cardinal, 0..=99)?;
        let hundreds = dense("numbers.hundreds", file.hundreds, 1..=9)?;
        let hundreds_joined = sparse("numbers.hundreds_joined", file.hundreds_joined, 1..=9)?;
        let hundreds_elided = sparse("numbers.hundreds_elided", file.hundreds_elided, 1..=9)?;
        let before_noun = sparse("numbers.before_noun", file.before_noun, 0..=99)?;
        let mut elide_before = [false; 100];
        for r in file.elide_before {
            match usize::try_from(r) {
                Ok(i @ 1..=99) => elide_before[i] = true,
                _ => return Err(format!("numbers.elide_before: {r} is not in 1..=99")),
            }
        }
        if let Some(c) = &file.connector {
            check_text(c).map_err(|why| format!("numbers.connector: {why}"))?;
        }
        check_text(&file.thousand).map_err(|why| format!("numbers.thousand: {why}"))?;
        Ok(NumberTable {
            cardinal,
            before_noun,
            hundreds,
            hundreds_joined,
            hundreds_elided,
            elide_before,
            connector: file.connector,
            thousand: file.thousand,
        })
    }

    /// The words that say `n`, for 1 ≤ n ≤ 1000, in the position right
    /// before the noun.
    pub(crate) fn compose(&self, n: u32) -> Result<Vec<NumberWord>, Error> {
        if n == 0 || n > MAX_PARTICIPANT_COUNT {
            return Err(Error::CountOutOfRange(n));
        }
        if n == 1000 {
            return Ok(vec![NumberWord::Thousand]);
        }
        // n < 1000, so both fit in a u8.
        let h = (n / 100) as u8;
        let r = (n % 100) as u8;
        let last = if self.before_noun[usize::from(r)].is_some() {
            NumberWord::BeforeNoun(r)
        } else {
            NumberWord::Cardinal(r)
        };
        Ok(match (h, r) {
            (0, _) => vec![last],
            (_, 0) => vec![NumberWord::Hundreds(h)],
            _ => {
                let i = usize::from(h - 1);
                let head = if self.elide_before[usize::from(r)] && self.hundreds_elided[i].is_some()
                {
                    NumberWord::HundredsElided(h)
                } else if self.hundreds_joined[i].is_some() {
                    NumberWord::HundredsJoined(h)
                } else {
                    NumberWord::Hundreds(h)
                };
                let mut words = vec![head];
                if self.connector.is_some() {
                    words.push(NumberWord::Connector);
                }
                words.push(last);
                words
            }
        })
    }

    /// The text of `word`, if this language has that word.
    pub(crate) fn text(&self, word: NumberWord) -> Option<&str> {
        fn at(v: &[Option<String>], i: usize) -> Option<&str> {
            v.get(i)?.as_deref()
        }
        match word {
            NumberWord::Cardinal(n) => self.cardinal.get(usize::from(n)).map(String::as_str),
            NumberWord::BeforeNoun(n) => at(&self.before_noun, usize::from(n)),
            NumberWord::Hundreds(h) => self
                .hundreds
                .get(usize::from(h).checked_sub(1)?)
                .map(String::as_str),
            NumberWord::HundredsJoined(h) => {
                at(&self.hundreds_joined, usize::from(h).checked_sub(1)?)
            }
            NumberWord::HundredsElided(h) => {
                at(&self.hundreds_elided, usize::from(h).checked_sub(1)?)
            }
            NumberWord::Connector => self.connector.as_deref(),
            NumberWord::Thousand => Some(&self.thousand),
        }
    }

    /// Every word this table defines (each is one WAV).
    pub(crate) fn words(&self) -> impl Iterator<Item = NumberWord> + '_ {
        let present = |v: &[Option<String>], offset: u8| {
            v.iter()
                .enumerate()
                .filter(|(_, t)| t.is_some())
                .map(move |(i, _)| i as u8 + offset)
                .collect::<Vec<_>>()
        };
        let cardinal = (0..=99).map(NumberWord::Cardinal);
        let hundreds = (1..=9).map(NumberWord::Hundreds);
        let joined = present(&self.hundreds_joined, 1)
            .into_iter()
            .map(NumberWord::HundredsJoined);
        let elided = present(&self.hundreds_elided, 1)
            .into_iter()
            .map(NumberWord::HundredsElided);
        let noun = present(&self.before_noun, 0)
            .into_iter()
            .map(NumberWord::BeforeNoun);
        let connector = self.connector.is_some().then_some(NumberWord::Connector);
        cardinal
            .chain(noun)
            .chain(hundreds)
            .chain(joined)
            .chain(elided)
            .chain(connector)
            .chain(std::iter::once(NumberWord::Thousand))
    }
}

/// Keys of a number table are written as TOML keys ("21"); read them back.
fn key(table: &str, k: &str, range: &std::ops::RangeInclusive<usize>) -> Result<usize, String> {
    match k.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{table}: key {k:?} is not a number in {}..={}",
            range.start(),
            range.end()
        )),
    }
}

/// A table that must have every key of `range`, as a vector from its start.
fn dense(
    table: &str,
    entries: BTreeMap<String, String>,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Vec<String>, String> {
    let slots = sparse(table, entries, range.clone())?;
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.ok_or_else(|| format!("{table}: {} is missing", i + range.start())))
        .collect()
}

/// A table whose keys are in `range`, as optional slots from its start.
fn sparse(
    table: &str,
    entries: BTreeMap<String, String>,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Vec<Option<String>>, String> {
    let mut slots = vec![None; range.end() - range.start() + 1];
    for (k, text) in entries {
        let n = key(table, &k, &range)?;
        check_text(&text).map_err(|why| format!("{table}.{k}: {why}"))?;
        let slot = &mut slots[n - range.start()];
        if slot.is_some() {
            // "07" and "7" are different TOML keys but the same number.
            return Err(format!("{table}: {n} is given twice"));
        }
        *slot = Some(text);
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use crate::{Language, participant_count};

    /// The number part of "there are N participants", as it is written: the
    /// files' texts joined with a space, or with nothing in the languages
    /// that write a number as one word.
    fn written(lang: Language, n: u32) -> String {
        let files = participant_count(lang, n).unwrap();
        let joiner = match lang {
            Language::De | Language::It | Language::Nl => "",
            Language::En | Language::Fr | Language::Es => " ",
        };
        let inner = &files[1..files.len() - 1];
        inner
            .iter()
            .map(|f| f.text(lang).unwrap())
            .collect::<Vec<_>>()
            .join(joiner)
    }

    /// The whole announcement, file texts joined with spaces.
    fn sentence(lang: Language, n: u32) -> String {
        participant_count(lang, n)
            .unwrap()
            .iter()
            .map(|f| f.text(lang).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn check(lang: Language, cases: &[(u32, &str)]) {
        for &(n, expected) in cases {
            assert_eq!(written(lang, n), expected, "{lang} {n}");
        }
    }

    #[test]
    fn english() {
        assert_eq!(
            sentence(Language::En, 1),
            "There is one participant in the conference."
        );
        assert_eq!(
            sentence(Language::En, 171),
            "There are one hundred and seventy-one participants in the conference."
        );
        check(
            Language::En,
            &[
                (2, "two"),
                (7, "seven"),
                (17, "seventeen"),
                (21, "twenty-one"),
                (40, "forty"),
                (71, "seventy-one"),
                (80, "eighty"),
                (99, "ninety-nine"),
                (100, "one hundred"),
                (101, "one hundred and one"),
                (200, "two hundred"),
                (315, "three hundred and fifteen"),
                (999, "nine hundred and ninety-nine"),
                (1000, "one thousand"),
            ],
        );
    }

    #[test]
    fn french() {
        assert_eq!(
            sentence(Language::Fr, 1),
            "Il y a un participant dans la conférence."
        );
        assert_eq!(
            sentence(Language::Fr, 280),
            "Il y a deux cent quatre-vingts participants dans la conférence."
        );
        check(
            Language::Fr,
            &[
                (7, "sept"),
                (17, "dix-sept"),
                (21, "vingt et un"),
                (22, "vingt-deux"),
                (70, "soixante-dix"),
                (71, "soixante et onze"),
                (77, "soixante-dix-sept"),
                (80, "quatre-vingts"),
                (81, "quatre-vingt-un"),
                (91, "quatre-vingt-onze"),
                (99, "quatre-vingt-dix-neuf"),
                (100, "cent"),
                (101, "cent un"),
                (171, "cent soixante et onze"),
                (180, "cent quatre-vingts"),
                (200, "deux cents"),
                (201, "deux cent un"),
                (999, "neuf cent quatre-vingt-dix-neuf"),
                (1000, "mille"),
            ],
        );
    }

    #[test]
    fn german() {
        assert_eq!(
            sentence(Language::De, 1),
            "Es ist ein Teilnehmer in der Konferenz."
        );
        assert_eq!(
            sentence(Language::De, 21),
            "Es sind einundzwanzig Teilnehmer in der Konferenz."
        );
        check(
            Language::De,
            &[
                (7, "sieben"),
                (16, "sechzehn"),
                (17, "siebzehn"),
                (21, "einundzwanzig"),
                (30, "dreißig"),
                (67, "siebenundsechzig"),
                (71, "einundsiebzig"),
                (80, "achtzig"),
                (99, "neunundneunzig"),
                (100, "einhundert"),
                // "eins" only at the very end of a number said alone; before
                // the noun it is "ein" (einhundertein Teilnehmer).
                (101, "einhundertein"),
                (171, "einhunderteinundsiebzig"),
                (200, "zweihundert"),
                (999, "neunhundertneunundneunzig"),
                (1000, "eintausend"),
            ],
        );
    }

    #[test]
    fn spanish() {
        assert_eq!(
            sentence(Language::Es, 1),
            "Hay un participante en la conferencia."
        );
        assert_eq!(
            sentence(Language::Es, 21),
            "Hay veintiún participantes en la conferencia."
        );
        check(
            Language::Es,
            &[
                (7, "siete"),
                (16, "dieciséis"),
                (17, "diecisiete"),
                (22, "veintidós"),
                (31, "treinta y un"),
                (71, "setenta y un"),
                (80, "ochenta"),
                (99, "noventa y nueve"),
                (100, "cien"),
                (101, "ciento un"),
                (115, "ciento quince"),
                (171, "ciento setenta y un"),
                (200, "doscientos"),
                (500, "quinientos"),
                (721, "setecientos veintiún"),
                (999, "novecientos noventa y nueve"),
                (1000, "mil"),
            ],
        );
    }

    #[test]
    fn italian() {
        assert_eq!(
            sentence(Language::It, 1),
            "C'è un partecipante nella conferenza."
        );
        check(
            Language::It,
            &[
                (7, "sette"),
                (17, "diciassette"),
                (21, "ventuno"),
                (23, "ventitré"),
                (28, "ventotto"),
                (71, "settantuno"),
                (80, "ottanta"),
                (99, "novantanove"),
                (100, "cento"),
                (101, "centuno"),
                (108, "centotto"),
                (111, "centoundici"),
                (171, "centosettantuno"),
                (180, "centottanta"),
                (188, "centottantotto"),
                (200, "duecento"),
                (283, "duecentottantatré"),
                (999, "novecentonovantanove"),
                (1000, "mille"),
            ],
        );
    }

    #[test]
    fn dutch() {
        assert_eq!(
            sentence(Language::Nl, 1),
            "Er is één deelnemer in de conferentie."
        );
        check(
            Language::Nl,
            &[
                (7, "zeven"),
                (17, "zeventien"),
                (21, "eenentwintig"),
                (22, "tweeëntwintig"),
                (23, "drieëntwintig"),
                (71, "eenenzeventig"),
                (80, "tachtig"),
                (99, "negenennegentig"),
                (100, "honderd"),
                // Written "honderdeen"; the accent tells the synthesiser to
                // say the number "één", not the article "een".
                (101, "honderdéén"),
                (171, "honderdeenenzeventig"),
                (200, "tweehonderd"),
                (999, "negenhonderdnegenennegentig"),
                (1000, "duizend"),
            ],
        );
    }
}
