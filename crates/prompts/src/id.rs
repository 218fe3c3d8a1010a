//! The names of things: [`Language`], [`SampleRate`], [`PromptId`] and
//! [`PromptFile`], with their spellings in file names and configuration.
//! No texts here (see `catalogue`) and no grammar (see `number`).

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::number::NumberWord;
use crate::{Error, catalogue};

/// A conference language (SPEC C13). Every language has every [`PromptId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Language {
    #[default]
    En,
    Fr,
    De,
    Es,
    It,
    Nl,
}

impl Language {
    /// Every language, in the order of their text files' documentation.
    pub const ALL: &'static [Language] = &[
        Language::En,
        Language::Fr,
        Language::De,
        Language::Es,
        Language::It,
        Language::Nl,
    ];

    /// The ISO 639-1 code, which is also the folder name under `prompts/`.
    pub const fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
            Language::Es => "es",
            Language::It => "it",
            Language::Nl => "nl",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = Error;

    /// Parses `"en"`, `"FR"`, and language tags with a region such as
    /// `"de-CH"` or `"nl_BE"` (the region is ignored: one voice per language).
    fn from_str(s: &str) -> Result<Self, Error> {
        let primary = s.split(['-', '_']).next().unwrap_or_default();
        Language::ALL
            .iter()
            .copied()
            .find(|lang| primary.eq_ignore_ascii_case(lang.code()))
            .ok_or_else(|| Error::UnknownLanguage(s.to_owned()))
    }
}

/// A sample rate at which the prompts and the music on hold exist.
///
/// Rooms mixing at another rate (48 kHz for Opus-only rooms) resample the
/// 16 kHz set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleRate {
    /// Narrowband (G.711).
    Hz8000,
    /// Wideband (G.722 and better).
    Hz16000,
}

impl SampleRate {
    /// Both rates.
    pub const ALL: &'static [SampleRate] = &[SampleRate::Hz8000, SampleRate::Hz16000];

    /// Samples per second.
    pub const fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8000,
            SampleRate::Hz16000 => 16000,
        }
    }

    /// The rate for `hz`, if prompts exist at it.
    pub fn from_hz(hz: u32) -> Result<Self, Error> {
        match hz {
            8000 => Ok(SampleRate::Hz8000),
            16000 => Ok(SampleRate::Hz16000),
            other => Err(Error::UnsupportedRate(other)),
        }
    }

    pub(crate) const fn dir_name(self) -> &'static str {
        match self {
            SampleRate::Hz8000 => "8000",
            SampleRate::Hz16000 => "16000",
        }
    }
}

// One list gives the enum, `ALL` and the file names, so they cannot drift
// apart; the catalogue refuses a text file whose [prompts] keys differ.
macro_rules! prompt_ids {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, )*) => {
        /// One sentence (or sentence part) of the call flow. Its name is the
        /// key in `prompts/text/<lang>.toml` and the WAV's file stem.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PromptId {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl PromptId {
            /// Every prompt, in call-flow order.
            pub const ALL: &'static [PromptId] = &[ $(PromptId::$variant,)* ];

            /// The id as in the text files and file names (`"enter_pin"`).
            pub const fn as_str(self) -> &'static str {
                match self { $(PromptId::$variant => $name,)* }
            }
        }
    };
}

prompt_ids! {
    /// Default entry announcement, replaced by a room's custom upload (C8).
    Welcome = "welcome",
    /// Entry announcement of the demo rooms.
    DemoWelcome = "demo_welcome",
    /// Ask for the access or host PIN, ended by `#` (C3, C4).
    EnterPin = "enter_pin",
    /// Wrong PIN, try again (C3).
    PinInvalid = "pin_invalid",
    /// Third wrong PIN; ends with goodbye (C3).
    PinTooManyAttempts = "pin_too_many_attempts",
    /// Said before hanging up: after `##`, or after a refusal.
    Goodbye = "goodbye",
    /// The room is at its maximum size (C2).
    ConferenceFull = "conference_full",
    /// Withheld caller ID is refused here; call again showing it (C12).
    AnonymousRejected = "anonymous_rejected",
    /// A locked room refuses a new caller.
    ConferenceLocked = "conference_locked",
    /// Something failed on our side; try later.
    TechnicalError = "technical_error",
    /// Said on entry to a room that records (C9).
    ConferenceRecorded = "conference_recorded",
    /// A host started the recording (C9, C14).
    RecordingStarted = "recording_started",
    /// A host stopped the recording (C9, C14).
    RecordingStopped = "recording_stopped",
    /// Confirms `00` (or mute on entry, C6): the microphone is off.
    Muted = "muted",
    /// Confirms `00` again: the microphone is on.
    Unmuted = "unmuted",
    /// Confirms `**`: muted and no longer hearing the room.
    MutedAndDeaf = "muted_and_deaf",
    /// Confirms `**` again: hearing the room again.
    Undeaf = "undeaf",
    /// Wait for host: music follows until a host joins (C5).
    WaitForHost = "wait_for_host",
    /// A host arrived; waiting participants are mixed from now on (C5).
    HostJoined = "host_joined",
    /// The last host left.
    HostLeft = "host_left",
    /// The host PIN made this caller a host (C4).
    YouAreHost = "you_are_host",
    /// Nobody else is in the room yet.
    FirstParticipant = "first_participant",
    /// Confirms the host's lock key.
    RoomLocked = "room_locked",
    /// Confirms the host's unlock key.
    RoomUnlocked = "room_unlocked",
    /// Confirms the host's "mute all non-hosts" key.
    AllMuted = "all_muted",
    /// Confirms the host's "unmute all" key.
    AllUnmuted = "all_unmuted",
    /// A key sequence that means nothing (C14).
    InvalidKey = "invalid_key",
    /// Asks for the caller's name before entry, when the room announces names (C7).
    NameRecord = "name_record",
    /// Follows a recorded name: "… has joined the conference" (C7).
    NameJoined = "name_joined",
    /// Follows a recorded name: "… has left the conference" (C7).
    NameLeft = "name_left",
    /// "There is one participant in the conference."
    ParticipantsOne = "participants_one",
    /// "There are" (before the number).
    ParticipantsBefore = "participants_before",
    /// "participants in the conference." (after the number).
    ParticipantsAfter = "participants_after",
}

impl fmt::Display for PromptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PromptId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        PromptId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| Error::UnknownPrompt(s.to_owned()))
    }
}

/// One WAV to play: a [`PromptId`] sentence or a number word of a count.
///
/// Number words only come out of [`crate::participant_count`] and
/// [`crate::files`], so every `PromptFile` names a file that the language's
/// text defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptFile(FileKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileKind {
    Prompt(PromptId),
    Number(NumberWord),
}

impl PromptFile {
    pub(crate) fn number(word: NumberWord) -> Self {
        PromptFile(FileKind::Number(word))
    }

    /// The sentence, if this file is one (not a number word).
    pub fn prompt_id(&self) -> Option<PromptId> {
        match self.0 {
            FileKind::Prompt(id) => Some(id),
            FileKind::Number(_) => None,
        }
    }

    /// The file name without `.wav`: a [`PromptId`] name, or `num_<…>` for a
    /// number word (`num_21`, `num_200_joined`, `num_and`, `num_1000`; the
    /// list is in `scripts/gen-prompts.sh` and `prompts/README.md`).
    pub fn stem(&self) -> Cow<'static, str> {
        match self.0 {
            FileKind::Prompt(id) => Cow::Borrowed(id.as_str()),
            FileKind::Number(word) => word.stem(),
        }
    }

    /// `<base_dir>/<lang>/<rate>/<stem>.wav`.
    pub fn path(&self, base_dir: &Path, lang: Language, rate: SampleRate) -> PathBuf {
        let mut path = base_dir.join(lang.code()).join(rate.dir_name());
        path.push(format!("{}.wav", self.stem()));
        path
    }

    /// The words this file says in `lang`; `None` for a number word that the
    /// language does not use (such as English "before noun" forms).
    pub fn text(&self, lang: Language) -> Option<&'static str> {
        let texts = catalogue::texts(lang);
        match self.0 {
            FileKind::Prompt(id) => Some(texts.prompt(id)),
            FileKind::Number(word) => texts.numbers.text(word),
        }
    }
}

impl From<PromptId> for PromptFile {
    fn from(id: PromptId) -> Self {
        PromptFile(FileKind::Prompt(id))
    }
}

impl fmt::Display for PromptFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_round_trip() {
        for &lang in Language::ALL {
            assert_eq!(lang.code().parse::<Language>(), Ok(lang));
            assert_eq!(lang.to_string(), lang.code());
        }
    }

    #[test]
    fn language_tags_with_case_and_region_are_accepted() {
        assert_eq!("FR".parse::<Language>(), Ok(Language::Fr));
        assert_eq!("de-CH".parse::<Language>(), Ok(Language::De));
        assert_eq!("nl_BE".parse::<Language>(), Ok(Language::Nl));
        assert_eq!("es-419".parse::<Language>(), Ok(Language::Es));
    }

    #[test]
    fn unknown_languages_are_errors() {
        for bad in ["", "pt", "english", "e", "-en", "zz-en", "énglish"] {
            assert_eq!(
                bad.parse::<Language>(),
                Err(Error::UnknownLanguage(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prompt_ids_round_trip_and_are_unique() {
        let mut names: Vec<_> = PromptId::ALL.iter().map(|id| id.as_str()).collect();
        for &id in PromptId::ALL {
            assert_eq!(id.as_str().parse::<PromptId>(), Ok(id));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PromptId::ALL.len());
        assert_eq!(
            "welcom".parse::<PromptId>(),
            Err(Error::UnknownPrompt("welcom".into()))
        );
    }

    #[test]
    fn sample_rates_round_trip() {
        for &rate in SampleRate::ALL {
            assert_eq!(SampleRate::from_hz(rate.hz()), Ok(rate));
        }
        assert_eq!(
            SampleRate::from_hz(48000),
            Err(Error::UnsupportedRate(48000))
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn any_language() -> impl Strategy<Value = Language> {
        proptest::sample::select(Language::ALL)
    }

    proptest! {
        #[test]
        fn language_parsing_never_panics(s in "\\PC*") {
            let _ = s.parse::<Language>();
        }

        #[test]
        fn language_tags_in_any_case_with_any_region_parse(
            lang in any_language(),
            upper in proptest::collection::vec(any::<bool>(), 2),
            region in proptest::option::of(("[-_]", "[A-Za-z0-9]{1,8}")),
        ) {
            let mut tag: String = lang
                .code()
                .chars()
                .zip(&upper)
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            if let Some((sep, sub)) = region {
                tag.push_str(&sep);
                tag.push_str(&sub);
            }
            prop_assert_eq!(tag.parse::<Language>(), Ok(lang));
        }

        #[test]
        fn language_display_round_trips(lang in any_language()) {
            prop_assert_eq!(lang.to_string().parse::<Language>(), Ok(lang));
        }

        #[test]
        fn prompt_id_parsing_never_panics_and_round_trips(
            s in "\\PC*",
            id in proptest::sample::select(PromptId::ALL),
        ) {
            if let Ok(parsed) = s.parse::<PromptId>() {
                prop_assert_eq!(parsed.as_str(), s.as_str());
            }
            prop_assert_eq!(id.to_string().parse::<PromptId>(), Ok(id));
        }
    }
}
