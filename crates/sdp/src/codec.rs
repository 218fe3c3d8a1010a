//! The audio codecs Palaver speaks and how they appear in SDP: [`Codec`]
//! (identity, clock, static payload type) and [`FmtpParams`] (the `a=fmtp`
//! parameter list, read-only).
//!
//! Recognising a codec from an `m=` format is the one place where SDP's quirks
//! meet our codec list: names compare case-insensitively, static payload types
//! 0, 8 and 9 need no `a=rtpmap`, and G.722 announces an RTP clock of 8000
//! although it samples at 16 kHz (RFC 3551 §4.5.2).

use crate::model::{Media, RtpMap};

/// An audio codec we can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus (RFC 7587): always `opus/48000/2` in SDP.
    Opus,
    /// G.722: `G722/8000` in SDP, 16 kHz audio.
    G722,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl Codec {
    /// The encoding name we write in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::G722 => "G722",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate (what the SDP says, not the audio sample rate).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::G722 | Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// The audio sample rate of decoded frames.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::G722 => 16_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// The channel count written in SDP (RFC 7587 §7 mandates `/2` for Opus
    /// whatever is actually sent).
    pub fn channels(self) -> u16 {
        match self {
            Codec::Opus => 2,
            Codec::G722 | Codec::Pcmu | Codec::Pcma => 1,
        }
    }

    /// The static payload type of RFC 3551, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// The `a=rtpmap` we write for this codec under payload type `pt`.
    pub fn rtpmap(self, pt: u8) -> RtpMap {
        RtpMap {
            payload_type: pt,
            encoding: self.encoding_name().to_owned(),
            clock_rate: self.clock_rate(),
            channels: (self == Codec::Opus).then_some(2),
        }
    }

    /// Recognises a codec from an `a=rtpmap`.
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        let name = map.encoding.as_str();
        let channels = map.channels.unwrap_or(1);
        let codec = if name.eq_ignore_ascii_case("opus") {
            // Some peers omit the mandatory "/2"; the codec is the same.
            (map.clock_rate == 48_000 && matches!(channels, 1 | 2)).then_some(Codec::Opus)?
        } else if name.eq_ignore_ascii_case("G722") {
            // A few broken stacks write the sample rate (16000) instead of
            // the RTP clock; the payload is still G.722.
            (matches!(map.clock_rate, 8_000 | 16_000) && channels == 1).then_some(Codec::G722)?
        } else if name.eq_ignore_ascii_case("PCMU") {
            (map.clock_rate == 8_000 && channels == 1).then_some(Codec::Pcmu)?
        } else if name.eq_ignore_ascii_case("PCMA") {
            (map.clock_rate == 8_000 && channels == 1).then_some(Codec::Pcma)?
        } else {
            return None;
        };
        Some(codec)
    }

    /// Recognises a static payload type that needs no `a=rtpmap`.
    pub fn from_static_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }
}

/// What a payload type of an `m=` line stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// An audio codec we know.
    Audio(Codec),
    /// RFC 4733 `telephone-event` at this clock rate.
    TelephoneEvent(u32),
    /// Anything else (CN, iLBC, AMR, an unmapped dynamic type…).
    Unknown,
}

/// Identifies payload type `pt` of `media`: its `a=rtpmap` wins, else the
/// static table.
pub(crate) fn identify(media: &Media, pt: u8) -> Format {
    match media.rtpmap(pt) {
        Some(map) => identify_rtpmap(map),
        None => Codec::from_static_payload_type(pt).map_or(Format::Unknown, Format::Audio),
    }
}

pub(crate) fn identify_rtpmap(map: &RtpMap) -> Format {
    if map.encoding.eq_ignore_ascii_case("telephone-event") {
        return Format::TelephoneEvent(map.clock_rate);
    }
    Codec::from_rtpmap(map).map_or(Format::Unknown, Format::Audio)
}

/// The parameters of an `a=fmtp` line: `key=value` pairs separated by `;`
/// (`useinbandfec=1; stereo=0`), or a bare value such as telephone-event's
/// `0-16`, which appears as a key with an empty value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FmtpParams<'a> {
    raw: &'a str,
}

impl<'a> FmtpParams<'a> {
    /// Wraps the parameter text of an `a=fmtp` line.
    pub fn new(raw: &'a str) -> Self {
        FmtpParams { raw }
    }

    /// The text as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The `(key, value)` pairs in order, trimmed; keys keep their case.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.raw
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (p, ""),
            })
    }

    /// The value of `key` (case-insensitive, as RFC 7587 parameters are).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Whether `key` is `1` (the boolean form Opus parameters use).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MediaKind, Proto};

    fn map(name: &str, clock: u32, channels: Option<u16>) -> RtpMap {
        RtpMap {
            payload_type: 96,
            encoding: name.to_owned(),
            clock_rate: clock,
            channels,
        }
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert_eq!(
            Codec::from_rtpmap(&map("OPUS", 48000, Some(2))),
            Some(Codec::Opus)
        );
        assert_eq!(
            Codec::from_rtpmap(&map("pcmu", 8000, None)),
            Some(Codec::Pcmu)
        );
        assert_eq!(
            Codec::from_rtpmap(&map("Pcma", 8000, Some(1))),
            Some(Codec::Pcma)
        );
        assert_eq!(
            Codec::from_rtpmap(&map("g722", 8000, None)),
            Some(Codec::G722)
        );
    }

    #[test]
    fn wrong_clock_or_channels_is_not_our_codec() {
        assert_eq!(Codec::from_rtpmap(&map("PCMU", 16000, None)), None);
        assert_eq!(Codec::from_rtpmap(&map("PCMU", 8000, Some(2))), None);
        assert_eq!(Codec::from_rtpmap(&map("opus", 16000, Some(2))), None);
        assert_eq!(Codec::from_rtpmap(&map("G7221", 16000, None)), None);
    }

    #[test]
    fn g722_has_an_8000_clock_but_samples_at_16k() {
        assert_eq!(Codec::G722.clock_rate(), 8000);
        assert_eq!(Codec::G722.sample_rate(), 16000);
        assert_eq!(Codec::G722.rtpmap(9).to_string(), "9 G722/8000");
        assert_eq!(Codec::Opus.rtpmap(111).to_string(), "111 opus/48000/2");
    }

    #[test]
    fn static_types_need_no_rtpmap_but_an_rtpmap_wins() {
        let mut m = Media::new(
            MediaKind::Audio,
            4000,
            Proto::RtpAvp,
            vec!["0".into(), "8".into(), "9".into(), "18".into(), "96".into()],
        );
        assert_eq!(identify(&m, 0), Format::Audio(Codec::Pcmu));
        assert_eq!(identify(&m, 8), Format::Audio(Codec::Pcma));
        assert_eq!(identify(&m, 9), Format::Audio(Codec::G722));
        assert_eq!(identify(&m, 18), Format::Unknown);
        assert_eq!(identify(&m, 96), Format::Unknown);
        m.attributes
            .push(crate::Attribute::RtpMap(map("telephone-event", 8000, None)));
        assert_eq!(identify(&m, 96), Format::TelephoneEvent(8000));
        let mut remapped = map("PCMA", 8000, None);
        remapped.payload_type = 0;
        m.attributes.push(crate::Attribute::RtpMap(remapped));
        assert_eq!(identify(&m, 0), Format::Audio(Codec::Pcma));
    }

    #[test]
    fn fmtp_params() {
        let p = FmtpParams::new("maxplaybackrate=16000; useinbandfec=1;stereo=0");
        assert_eq!(p.get("USEINBANDFEC"), Some("1"));
        assert!(p.flag("useinbandfec"));
        assert!(!p.flag("stereo"));
        assert_eq!(p.get("maxplaybackrate"), Some("16000"));
        assert_eq!(p.get("cbr"), None);
        let te = FmtpParams::new("0-16");
        assert_eq!(te.iter().collect::<Vec<_>>(), vec![("0-16", "")]);
        assert_eq!(FmtpParams::new("").iter().count(), 0);
    }
}
