//! The in-call key menu (SPEC C14): which digit sequences mean what, and
//! the small collector that turns single key presses into actions.
//!
//! Meet first: [`KeyAction`] (leave, mute, mute+deaf and the host actions,
//! each with its [`KeyAction::keys`]) and [`KeyCollector`] (one per
//! participant: `press(now, digit)` in, a [`KeyOutcome`] out, and a deadline
//! after which an incomplete sequence is dropped).
//!
//! Every sequence is two keys and the set is prefix-free, so a sequence is
//! recognised on its last key without waiting: `##`, `00`, `**` for
//! everyone, `*1`…`*4` for hosts (the table is in `KEYS.md`). A first key
//! that starts no sequence is ignored, so a stray digit or a false in-band
//! detection makes no noise; a complete two-key sequence that means nothing
//! (or a host key pressed by a non-host, which the conference decides) is
//! answered with "invalid key". This module knows nothing of rooms.

use std::time::{Duration, Instant};

/// What a key sequence does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// `##`: leave the conference (goodbye, hang up).
    Leave,
    /// `00`: microphone off / on.
    ToggleMute,
    /// `**`: muted and deaf / back to how it was.
    ToggleMuteDeaf,
    /// `*1` (host): start / stop recording.
    ToggleRecording,
    /// `*2` (host): lock / unlock the room.
    ToggleLock,
    /// `*3` (host): hear how many participants are in the room.
    ParticipantCount,
    /// `*4` (host): mute every non-host / unmute them.
    ToggleMuteAll,
}

impl KeyAction {
    /// Every action, participants' first.
    pub const ALL: &'static [KeyAction] = &[
        KeyAction::Leave,
        KeyAction::ToggleMute,
        KeyAction::ToggleMuteDeaf,
        KeyAction::ToggleRecording,
        KeyAction::ToggleLock,
        KeyAction::ParticipantCount,
        KeyAction::ToggleMuteAll,
    ];

    /// The keys to press.
    pub const fn keys(self) -> &'static str {
        match self {
            KeyAction::Leave => "##",
            KeyAction::ToggleMute => "00",
            KeyAction::ToggleMuteDeaf => "**",
            KeyAction::ToggleRecording => "*1",
            KeyAction::ToggleLock => "*2",
            KeyAction::ParticipantCount => "*3",
            KeyAction::ToggleMuteAll => "*4",
        }
    }

    /// Only hosts may use it.
    pub const fn host_only(self) -> bool {
        matches!(
            self,
            KeyAction::ToggleRecording
                | KeyAction::ToggleLock
                | KeyAction::ParticipantCount
                | KeyAction::ToggleMuteAll
        )
    }

    /// The action of a complete sequence.
    pub fn from_keys(keys: &str) -> Option<KeyAction> {
        KeyAction::ALL.iter().copied().find(|a| a.keys() == keys)
    }
}

/// What one key press produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// A sequence is under way; wait for the next key (or the deadline).
    Pending,
    /// The key starts no sequence and was dropped.
    Ignored,
    /// A complete sequence that means nothing.
    Invalid,
    /// A complete sequence.
    Action(KeyAction),
}

/// Collects one participant's key presses into sequences.
#[derive(Debug, Clone, Default)]
pub struct KeyCollector {
    first: Option<(char, Instant)>,
}

/// Longest sequence in the menu.
const SEQUENCE_LEN: usize = 2;

impl KeyCollector {
    /// A collector with nothing pressed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one key; `timeout` is how long the next key may take.
    pub fn press(&mut self, now: Instant, digit: char, timeout: Duration) -> KeyOutcome {
        let digit = digit.to_ascii_uppercase();
        self.expire(now);
        match self.first.take() {
            None => {
                if KeyAction::ALL
                    .iter()
                    .any(|a| a.keys().starts_with(digit) && a.keys().len() == SEQUENCE_LEN)
                {
                    self.first = Some((digit, now + timeout));
                    KeyOutcome::Pending
                } else {
                    KeyOutcome::Ignored
                }
            }
            Some((first, _)) => {
                let mut keys = String::with_capacity(SEQUENCE_LEN);
                keys.push(first);
                keys.push(digit);
                match KeyAction::from_keys(&keys) {
                    Some(a) => KeyOutcome::Action(a),
                    None => KeyOutcome::Invalid,
                }
            }
        }
    }

    /// Drops an incomplete sequence whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        if self.first.is_some_and(|(_, deadline)| now >= deadline) {
            self.first = None;
        }
    }

    /// When an incomplete sequence will be dropped.
    pub fn deadline(&self) -> Option<Instant> {
        self.first.map(|(_, d)| d)
    }

    /// Forgets what was pressed.
    pub fn clear(&mut self) {
        self.first = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    fn feed(keys: &str, t0: Instant) -> Vec<KeyOutcome> {
        let mut c = KeyCollector::new();
        keys.chars().map(|k| c.press(t0, k, T)).collect()
    }

    #[test]
    fn c14_participant_sequences_are_exactly_the_spec() {
        assert_eq!(KeyAction::Leave.keys(), "##");
        assert_eq!(KeyAction::ToggleMute.keys(), "00");
        assert_eq!(KeyAction::ToggleMuteDeaf.keys(), "**");
        for a in [
            KeyAction::Leave,
            KeyAction::ToggleMute,
            KeyAction::ToggleMuteDeaf,
        ] {
            assert!(!a.host_only());
        }
    }

    /// C14: no sequence is a prefix of another, so each is recognised on
    /// its last key and host keys cannot shadow participant keys.
    #[test]
    fn c14_sequences_are_prefix_free_and_distinct() {
        for a in KeyAction::ALL {
            assert_eq!(a.keys().len(), SEQUENCE_LEN);
            for b in KeyAction::ALL {
                if a != b {
                    assert!(!b.keys().starts_with(a.keys()), "{a:?} / {b:?}");
                }
            }
        }
    }

    #[test]
    fn c14_each_sequence_gives_its_action() {
        let t0 = Instant::now();
        for &a in KeyAction::ALL {
            assert_eq!(
                feed(a.keys(), t0),
                vec![KeyOutcome::Pending, KeyOutcome::Action(a)]
            );
        }
    }

    #[test]
    fn stray_digits_are_ignored_and_unknown_pairs_invalid() {
        let t0 = Instant::now();
        assert_eq!(feed("5", t0), vec![KeyOutcome::Ignored]);
        assert_eq!(
            feed("#1", t0),
            vec![KeyOutcome::Pending, KeyOutcome::Invalid]
        );
        assert_eq!(
            feed("*9", t0),
            vec![KeyOutcome::Pending, KeyOutcome::Invalid]
        );
        // After an invalid pair the collector starts afresh.
        assert_eq!(
            feed("0*00", t0),
            vec![
                KeyOutcome::Pending,
                KeyOutcome::Invalid,
                KeyOutcome::Pending,
                KeyOutcome::Action(KeyAction::ToggleMute)
            ]
        );
    }

    /// C14: an incomplete sequence times out after two seconds.
    #[test]
    fn c14_incomplete_sequence_times_out() {
        let t0 = Instant::now();
        let mut c = KeyCollector::new();
        assert_eq!(c.press(t0, '#', T), KeyOutcome::Pending);
        assert_eq!(c.deadline(), Some(t0 + T));
        // The second `#` comes too late: it starts a new sequence.
        assert_eq!(c.press(t0 + T, '#', T), KeyOutcome::Pending);
        assert_eq!(
            c.press(t0 + T + Duration::from_millis(300), '#', T),
            KeyOutcome::Action(KeyAction::Leave)
        );
        assert_eq!(c.deadline(), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn any_key() -> impl Strategy<Value = char> {
        proptest::sample::select("0123456789*#ABCDabcd".chars().collect::<Vec<_>>())
    }

    proptest! {
        /// Any key stream, at any pace, never panics, and a sequence never
        /// stays pending past its deadline.
        #[test]
        fn any_key_stream_is_handled(
            keys in proptest::collection::vec((any_key(), 0u64..3000), 0..64),
            odd in any::<char>(),
        ) {
            let t0 = Instant::now();
            let mut t = t0;
            let mut c = KeyCollector::new();
            for (k, gap) in keys {
                t += Duration::from_millis(gap);
                let _ = c.press(t, k, Duration::from_secs(2));
                if let Some(d) = c.deadline() {
                    prop_assert!(d <= t + Duration::from_secs(2));
                }
            }
            let _ = c.press(t, odd, Duration::from_secs(2));
        }

        /// Round trip: the keys of any list of actions, pressed in order,
        /// give back exactly that list.
        #[test]
        fn action_keys_round_trip(
            actions in proptest::collection::vec(proptest::sample::select(KeyAction::ALL), 0..20),
        ) {
            let t0 = Instant::now();
            let mut c = KeyCollector::new();
            let mut got = Vec::new();
            for a in &actions {
                for k in a.keys().chars() {
                    match c.press(t0, k, Duration::from_secs(2)) {
                        KeyOutcome::Action(x) => got.push(x),
                        KeyOutcome::Pending => {}
                        other => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
            }
            prop_assert_eq!(got, actions);
        }
    }
}
