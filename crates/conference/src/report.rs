//! The end-of-conference report (SPEC C15): [`ConferenceReport`] is what
//! the conference hands out when its last participant leaves (who came,
//! when, for how long, the peak count, the recordings), and
//! [`ConferenceReport::render_email`] turns it into a plain-text e-mail.
//! [`ParticipantRecord`] is also the element of a recording's participant
//! list (`palaver_store::FinishedRecording::participants` as JSON).
//!
//! Sending is not here: see [`crate::mail`]. The e-mail is in English with
//! UTC times (the report has no time zone to go by).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use palaver_media::room::ParticipantId;
use palaver_store::{NewMail, RoomId};

use crate::clock::{format_duration, format_utc};
use crate::events::participant_id;

/// `2023-11-14 22:13:20 to 23:15:25 UTC`, with the end's date only when it
/// differs; short enough that report lines stay under 78 characters and
/// the e-mail needs no line-wrapping encoding.
fn span(from: i64, to: i64) -> String {
    let a = format_utc(from);
    let b = format_utc(to);
    let a = a.trim_end_matches(" UTC");
    match (a.split_once(' '), b.split_once(' ')) {
        (Some((day_a, _)), Some((day_b, time_b))) if day_a == day_b => {
            format!("{a} to {time_b}")
        }
        _ => format!("{a} to {b}"),
    }
}

/// One participant's stay in a conference (or during a recording).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRecord {
    /// Id within the room.
    #[serde(with = "participant_id")]
    pub participant: ParticipantId,
    /// Caller number; `None` when withheld.
    pub number: Option<String>,
    /// Caller display name.
    pub name: Option<String>,
    /// Joined as host.
    pub host: bool,
    /// Admitted at, Unix ms.
    pub joined_at: i64,
    /// Left at, Unix ms; `None` while still there.
    pub left_at: Option<i64>,
}

impl ParticipantRecord {
    /// Time in the room up to `left_at` (or `until` while still there), ms.
    pub fn duration_ms(&self, until: i64) -> i64 {
        (self.left_at.unwrap_or(until) - self.joined_at).max(0)
    }
}

/// One recording made during the conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecording {
    /// The conference's recording id.
    pub recording: u64,
    /// The audio file.
    pub path: PathBuf,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub ended_at: i64,
    /// Where to listen to it. The conference does not know the web
    /// layer's URLs: the integrator fills this in (from the store's
    /// recording id) before rendering; the e-mail shows the path otherwise.
    pub link: Option<String>,
}

/// Everything the report e-mail says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceReport {
    /// The room.
    pub room: RoomId,
    /// Its name.
    pub room_name: String,
    /// The room's report address (SPEC C15); `None`: the room wants no
    /// e-mail (the report is still useful for logs).
    pub to: Option<String>,
    /// First admission, Unix ms.
    pub started_at: i64,
    /// Last departure, Unix ms.
    pub ended_at: i64,
    /// Most participants present at once.
    pub peak_participants: u32,
    /// Everyone admitted, in order of arrival.
    pub participants: Vec<ParticipantRecord>,
    /// Recordings made, in order.
    pub recordings: Vec<ReportRecording>,
}

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line.
    pub subject: String,
    /// Plain text.
    pub body: String,
}

impl ConferenceReport {
    /// Length of the conference, ms.
    pub fn duration_ms(&self) -> i64 {
        (self.ended_at - self.started_at).max(0)
    }

    /// Subject and plain-text body.
    pub fn render_email(&self) -> RenderedEmail {
        // Control characters in a room name must not break the subject line.
        let name: String = self
            .room_name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let subject = format!(
            "Conference report: {name}, {} ({} participants)",
            format_utc(self.started_at),
            self.participants.len()
        );
        let mut b = String::new();
        // `write!` into a String cannot fail.
        let _ = writeln!(
            b,
            "Conference report for room \"{name}\" (room {})",
            self.room
        );
        let _ = writeln!(b);
        let _ = writeln!(b, "Started:       {}", format_utc(self.started_at));
        let _ = writeln!(b, "Ended:         {}", format_utc(self.ended_at));
        let _ = writeln!(b, "Duration:      {}", format_duration(self.duration_ms()));
        let _ = writeln!(b, "Participants:  {}", self.participants.len());
        let _ = writeln!(b, "Peak at once:  {}", self.peak_participants);
        let _ = writeln!(b);
        let _ = writeln!(b, "Participants");
        let _ = writeln!(b, "------------");
        for p in &self.participants {
            let who = match (&p.number, &p.name) {
                (Some(n), Some(name)) => format!("{name} <{n}>"),
                (Some(n), None) => n.clone(),
                (None, Some(name)) => format!("{name} (number withheld)"),
                (None, None) => "Anonymous (number withheld)".to_owned(),
            };
            let role = if p.host { " [host]" } else { "" };
            let _ = writeln!(b, "- {who}{role}");
            let _ = writeln!(
                b,
                "    {}, {}",
                span(p.joined_at, p.left_at.unwrap_or(self.ended_at)),
                format_duration(p.duration_ms(self.ended_at))
            );
        }
        let _ = writeln!(b);
        if self.recordings.is_empty() {
            let _ = writeln!(b, "Recording: none");
        } else {
            let _ = writeln!(b, "Recordings");
            let _ = writeln!(b, "----------");
            for r in &self.recordings {
                let at = r
                    .link
                    .clone()
                    .unwrap_or_else(|| r.path.display().to_string());
                let _ = writeln!(
                    b,
                    "- {}, {}",
                    span(r.started_at, r.ended_at),
                    format_duration(r.ended_at - r.started_at)
                );
                let _ = writeln!(b, "  {at}");
            }
        }
        let _ = writeln!(b);
        let _ = writeln!(b, "-- ");
        let _ = writeln!(b, "Sent by Palaver.");
        RenderedEmail { subject, body: b }
    }

    /// The outbox message for the room's report address, if it has one.
    pub fn to_mail(&self) -> Option<NewMail> {
        let to = self.to.clone()?;
        let RenderedEmail { subject, body } = self.render_email();
        Some(NewMail { to, subject, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ConferenceReport {
        let t = 1_700_000_000_000;
        ConferenceReport {
            room: RoomId(8),
            room_name: "Weekly\r\nBcc: evil@example.org".into(),
            to: Some("boss@example.org".into()),
            started_at: t,
            ended_at: t + 3_725_000,
            peak_participants: 2,
            participants: vec![
                ParticipantRecord {
                    participant: ParticipantId(1),
                    number: Some("+33123456789".into()),
                    name: Some("Alice".into()),
                    host: true,
                    joined_at: t,
                    left_at: Some(t + 3_725_000),
                },
                ParticipantRecord {
                    participant: ParticipantId(2),
                    number: None,
                    name: None,
                    host: false,
                    joined_at: t + 60_000,
                    left_at: Some(t + 120_000),
                },
            ],
            recordings: vec![ReportRecording {
                recording: 1,
                path: "/data/recordings/8/x.wav".into(),
                started_at: t,
                ended_at: t + 3_725_000,
                link: None,
            }],
        }
    }

    /// C15: the e-mail lists participants (number/name, host), join and
    /// leave times, durations, the peak count and the recording.
    #[test]
    fn c15_email_lists_everything() {
        let mail = report().render_email();
        assert!(!mail.subject.contains(['\r', '\n']), "{}", mail.subject);
        assert!(mail.body.lines().all(|l| l.len() <= 78), "{}", mail.body);
        let b = &mail.body;
        for needle in [
            "Duration:      1 h 02 min 05 s",
            "Peak at once:  2",
            "- Alice <+33123456789> [host]",
            "    2023-11-14 22:13:20 to 23:15:25 UTC, 1 h 02 min 05 s",
            "- Anonymous (number withheld)",
            "    2023-11-14 22:14:20 to 22:15:20 UTC, 1 min 00 s",
            "/data/recordings/8/x.wav",
        ] {
            assert!(b.contains(needle), "missing {needle:?} in\n{b}");
        }
        let mut r = report();
        r.recordings[0].link = Some("https://pbx.example.org/recordings/4".into());
        assert!(
            r.render_email()
                .body
                .contains("https://pbx.example.org/recordings/4")
        );
    }

    #[test]
    fn spans_show_the_end_date_only_when_it_changes() {
        let t = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC
        assert_eq!(span(t, t + 60_000), "2023-11-14 22:13:20 to 22:14:20 UTC");
        assert_eq!(
            span(t, t + 7_200_000),
            "2023-11-14 22:13:20 to 2023-11-15 00:13:20 UTC"
        );
    }

    #[test]
    fn c15_mail_goes_to_the_room_address_only() {
        let m = report().to_mail().unwrap();
        assert_eq!(m.to, "boss@example.org");
        let mut r = report();
        r.to = None;
        assert!(r.to_mail().is_none());
    }
}
