//! Parsing SDP text into a [`Session`].
//!
//! Liberal where real peers are sloppy and strict where a mistake would change
//! the meaning of the session:
//!
//! - Lines may end in CRLF or bare LF; blank lines and trailing spaces are
//!   ignored; lines may come in any order within their section.
//! - A missing `s=` or `t=` line is tolerated (written back as `s=-` and
//!   `t=0 0`); `v=0` must come first and `o=` must be present.
//! - The structural lines (`o=`, `c=`, `m=`, `b=`, `t=`) must be well formed
//!   or parsing fails with a [`ParseError`] naming the line and the field.
//! - An attribute we type (rtpmap, fmtp, ptime, …) whose value is malformed
//!   is kept as [`Attribute::Other`] instead of failing the whole description:
//!   one broken `a=rtpmap` for a codec we would not pick anyway must not turn
//!   a call into a `488`. Negotiation then simply does not see that attribute.
//! - Line types RFC 8866 does not define are kept as [`OtherLine`].
//!
//! No input panics; no regular expressions; one pass over the bytes.

use std::str::FromStr;

use crate::error::{ParseError, ParseErrorKind};
use crate::model::{
    Attribute, Bandwidth, Connection, Direction, Extmap, Fmtp, Media, MediaKind, Origin, OtherLine,
    Proto, Rtcp, RtpMap, Session, Timing,
};

impl Session {
    /// Parses an SDP body as received (for example a SIP message body).
    pub fn parse(input: &[u8]) -> Result<Session, ParseError> {
        Parser::default().run(input)
    }
}

impl FromStr for Session {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Session::parse(s.as_bytes())
    }
}

/// Session-level fields while they are being collected; `o=` is only
/// required at the end so that line order does not matter.
#[derive(Default)]
struct Parser {
    seen_version: bool,
    origin: Option<Origin>,
    name: Option<String>,
    info: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    timings: Vec<Timing>,
    time_zones: Option<String>,
    key: Option<String>,
    attributes: Vec<Attribute>,
    other_lines: Vec<OtherLine>,
    media: Vec<Media>,
}

fn field(line_type: char, field: &'static str, problem: &'static str) -> ParseErrorKind {
    ParseErrorKind::Field {
        line_type,
        field,
        problem,
    }
}

/// Sets a once-per-section field, failing on a second occurrence.
fn set_once<T>(slot: &mut Option<T>, value: T, letter: char) -> Result<(), ParseErrorKind> {
    if slot.is_some() {
        return Err(ParseErrorKind::Duplicate(letter));
    }
    *slot = Some(value);
    Ok(())
}

impl Parser {
    fn run(mut self, input: &[u8]) -> Result<Session, ParseError> {
        for (index, raw) in input.split(|b| *b == b'\n').enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw)
                .map_err(|_| ParseError::at(number, ParseErrorKind::NotUtf8))?;
            let text = text.trim_end_matches([' ', '\t']);
            if text.is_empty() {
                continue;
            }
            self.line(text)
                .map_err(|kind| ParseError::at(number, kind))?;
        }
        if !self.seen_version {
            return Err(ParseError::whole(ParseErrorKind::Empty));
        }
        let origin = self
            .origin
            .ok_or(ParseError::whole(ParseErrorKind::MissingOrigin))?;
        Ok(Session {
            origin,
            name: self.name.unwrap_or_else(|| "-".to_owned()),
            info: self.info,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            timings: self.timings,
            time_zones: self.time_zones,
            key: self.key,
            attributes: self.attributes,
            other_lines: self.other_lines,
            media: self.media,
        })
    }

    fn line(&mut self, text: &str) -> Result<(), ParseErrorKind> {
        let bytes = text.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
            if !self.seen_version {
                return Err(ParseErrorKind::MissingVersion);
            }
            return Err(ParseErrorKind::MalformedLine);
        }
        let letter = char::from(bytes[0]);
        // Index 2 is a char boundary: bytes 0 and 1 are ASCII.
        let value = &text[2..];

        if !self.seen_version {
            if letter != 'v' {
                return Err(ParseErrorKind::MissingVersion);
            }
            if value.trim() != "0" {
                return Err(ParseErrorKind::UnsupportedVersion);
            }
            self.seen_version = true;
            return Ok(());
        }

        if letter == 'm' {
            self.media.push(parse_media(value)?);
            return Ok(());
        }
        if let Some(media) = self.media.last_mut() {
            return media_line(media, letter, value);
        }

        match letter {
            'v' => Err(ParseErrorKind::Duplicate('v')),
            'o' => set_once(&mut self.origin, parse_origin(value)?, 'o'),
            's' => set_once(&mut self.name, value.to_owned(), 's'),
            'i' => set_once(&mut self.info, value.to_owned(), 'i'),
            'u' => set_once(&mut self.uri, value.to_owned(), 'u'),
            'e' => {
                self.emails.push(value.to_owned());
                Ok(())
            }
            'p' => {
                self.phones.push(value.to_owned());
                Ok(())
            }
            'c' => set_once(&mut self.connection, parse_connection('c', value)?, 'c'),
            'b' => {
                self.bandwidths.push(parse_bandwidth(value)?);
                Ok(())
            }
            't' => {
                self.timings.push(parse_timing(value)?);
                Ok(())
            }
            'r' => match self.timings.last_mut() {
                Some(t) => {
                    t.repeats.push(value.to_owned());
                    Ok(())
                }
                None => Err(ParseErrorKind::RepeatWithoutTiming),
            },
            'z' => set_once(&mut self.time_zones, value.to_owned(), 'z'),
            'k' => set_once(&mut self.key, value.to_owned(), 'k'),
            'a' => {
                self.attributes.push(parse_attribute(value)?);
                Ok(())
            }
            kind => {
                self.other_lines.push(OtherLine {
                    kind,
                    value: value.to_owned(),
                });
                Ok(())
            }
        }
    }
}

fn media_line(media: &mut Media, letter: char, value: &str) -> Result<(), ParseErrorKind> {
    match letter {
        'i' => set_once(&mut media.info, value.to_owned(), 'i'),
        'c' => set_once(&mut media.connection, parse_connection('c', value)?, 'c'),
        'b' => {
            media.bandwidths.push(parse_bandwidth(value)?);
            Ok(())
        }
        'k' => set_once(&mut media.key, value.to_owned(), 'k'),
        'a' => {
            media.attributes.push(parse_attribute(value)?);
            Ok(())
        }
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
            Err(ParseErrorKind::NotAllowedInMedia(letter))
        }
        kind => {
            media.other_lines.push(OtherLine {
                kind,
                value: value.to_owned(),
            });
            Ok(())
        }
    }
}

fn parse_origin(value: &str) -> Result<Origin, ParseErrorKind> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let n = tokens.len();
    if n < 6 {
        return Err(field('o', "line", "has fewer than 6 fields"));
    }
    // Some phones put a space in the username; the last five fields are
    // unambiguous, so everything before them is the username.
    let username = tokens[..n - 5].join(" ");
    let session_version = tokens[n - 4]
        .parse::<u64>()
        .map_err(|_| field('o', "session version", "is not a number"))?;
    Ok(Origin {
        username,
        session_id: tokens[n - 5].to_owned(),
        session_version,
        net_type: tokens[n - 3].to_owned(),
        addr_type: tokens[n - 2].to_owned(),
        address: tokens[n - 1].to_owned(),
    })
}

fn parse_connection(line_type: char, value: &str) -> Result<Connection, ParseErrorKind> {
    let mut tokens = value.split_whitespace();
    let (Some(net_type), Some(addr_type), Some(address)) =
        (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(field(line_type, "address", "is missing"));
    };
    if tokens.next().is_some() {
        return Err(field(line_type, "address", "is followed by extra fields"));
    }
    Ok(Connection {
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_bandwidth(value: &str) -> Result<Bandwidth, ParseErrorKind> {
    let (kind, amount) = value
        .split_once(':')
        .ok_or(field('b', "line", "has no ':'"))?;
    let kind = kind.trim();
    if kind.is_empty() || kind.contains(char::is_whitespace) {
        return Err(field('b', "type", "is not a token"));
    }
    let value = amount
        .trim()
        .parse::<u64>()
        .map_err(|_| field('b', "bandwidth", "is not a number"))?;
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value,
    })
}

fn parse_timing(value: &str) -> Result<Timing, ParseErrorKind> {
    let mut tokens = value.split_whitespace();
    let (Some(start), Some(stop), None) = (tokens.next(), tokens.next(), tokens.next()) else {
        return Err(field('t', "line", "does not have 2 fields"));
    };
    let start = start
        .parse()
        .map_err(|_| field('t', "start time", "is not a number"))?;
    let stop = stop
        .parse()
        .map_err(|_| field('t', "stop time", "is not a number"))?;
    Ok(Timing {
        start,
        stop,
        repeats: Vec::new(),
    })
}

fn parse_media(value: &str) -> Result<Media, ParseErrorKind> {
    let mut tokens = value.split_whitespace();
    let kind = tokens
        .next()
        .ok_or(field('m', "media type", "is missing"))?;
    let port_field = tokens.next().ok_or(field('m', "port", "is missing"))?;
    let proto = tokens.next().ok_or(field('m', "protocol", "is missing"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => {
            let count = count
                .parse::<u16>()
                .map_err(|_| field('m', "number of ports", "is not a number 0-65535"))?;
            (port, Some(count))
        }
        None => (port_field, None),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| field('m', "port", "is not a number 0-65535"))?;
    let mut media = Media::new(
        MediaKind::from_token(kind),
        port,
        Proto::from_token(proto),
        tokens.map(str::to_owned).collect(),
    );
    media.port_count = port_count;
    Ok(media)
}

fn parse_attribute(value: &str) -> Result<Attribute, ParseErrorKind> {
    let (name, attr_value) = match value.split_once(':') {
        Some((name, v)) => (name, Some(v)),
        None => (value, None),
    };
    if name.is_empty() {
        return Err(field('a', "name", "is empty"));
    }
    let typed = match (name, attr_value) {
        ("rtpmap", Some(v)) => parse_rtpmap(v).map(Attribute::RtpMap),
        ("fmtp", Some(v)) => parse_fmtp(v).map(Attribute::Fmtp),
        ("ptime", Some(v)) => v.trim().parse().ok().map(Attribute::Ptime),
        ("maxptime", Some(v)) => v.trim().parse().ok().map(Attribute::MaxPtime),
        ("rtcp", Some(v)) => parse_rtcp(v).map(Attribute::Rtcp),
        ("rtcp-mux", None) => Some(Attribute::RtcpMux),
        ("extmap", Some(v)) => parse_extmap(v).map(Attribute::Extmap),
        (flag, None) => Direction::from_token(flag).map(Attribute::Direction),
        _ => None,
    };
    Ok(typed.unwrap_or_else(|| Attribute::Other {
        name: name.to_owned(),
        value: attr_value.map(str::to_owned),
    }))
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim_start().split_once(char::is_whitespace)?;
    let payload_type = pt.parse::<u8>().ok().filter(|pt| *pt <= 127)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parts.next()?.trim().parse::<u32>().ok()?;
    let channels = match parts.next() {
        Some(ch) => Some(ch.trim().parse::<u16>().ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_fmtp(value: &str) -> Option<Fmtp> {
    let value = value.trim_start();
    let (format, params) = match value.split_once(char::is_whitespace) {
        Some((format, params)) => (format, params.trim_start()),
        None => (value, ""),
    };
    if format.is_empty() {
        return None;
    }
    Some(Fmtp {
        format: format.to_owned(),
        params: params.to_owned(),
    })
}

fn parse_rtcp(value: &str) -> Option<Rtcp> {
    let value = value.trim();
    let (port, rest) = match value.split_once(char::is_whitespace) {
        Some((port, rest)) => (port, Some(rest)),
        None => (value, None),
    };
    let port = port.parse::<u16>().ok()?;
    let connection = match rest {
        Some(rest) => Some(parse_connection('a', rest).ok()?),
        None => None,
    };
    Some(Rtcp { port, connection })
}

fn parse_extmap(value: &str) -> Option<Extmap> {
    let mut tokens = value.trim_start().splitn(3, char::is_whitespace);
    let id_field = tokens.next()?;
    let uri = tokens.next().filter(|u| !u.is_empty())?;
    let attributes = tokens
        .next()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let (id, direction) = match id_field.split_once('/') {
        Some((id, dir)) => (id, Some(Direction::from_token(dir)?)),
        None => (id_field, None),
    };
    Some(Extmap {
        id: id.parse().ok()?,
        direction,
        uri: uri.to_owned(),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Session, ParseError> {
        Session::parse(text.as_bytes())
    }

    const MINIMAL: &str = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n";

    #[test]
    fn minimal_session() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.origin.session_id, "1");
        assert_eq!(s.origin.session_version, 2);
        assert_eq!(s.origin.address, "10.0.0.1");
        assert_eq!(s.timings, vec![Timing::default()]);
        assert_eq!(s.to_string(), MINIMAL);
    }

    #[test]
    fn bare_lf_blank_lines_and_trailing_spaces_are_accepted() {
        let text = "\nv=0\no=- 1 2 IN IP4 10.0.0.1  \n\ns=-\nt=0 0\n\n\n";
        let s = parse(text).unwrap();
        assert_eq!(s.to_string(), MINIMAL);
    }

    #[test]
    fn missing_s_and_t_are_tolerated() {
        let s = parse("v=0\no=- 1 2 IN IP4 10.0.0.1\n").unwrap();
        assert_eq!(s.name, "-");
        assert!(s.timings.is_empty());
        assert_eq!(s.to_string(), MINIMAL);
    }

    #[test]
    fn empty_session_name_is_written_as_a_space() {
        let s = parse("v=0\no=- 1 2 IN IP4 10.0.0.1\ns= \nt=0 0\n").unwrap();
        assert_eq!(s.name, "");
        assert!(s.to_string().contains("\r\ns= \r\n"));
    }

    #[test]
    fn structural_errors_name_line_and_field() {
        let cases: &[(&str, Option<usize>, ParseErrorKind)] = &[
            ("", None, ParseErrorKind::Empty),
            ("\r\n\r\n", None, ParseErrorKind::Empty),
            (
                "o=- 1 2 IN IP4 1.1.1.1\n",
                Some(1),
                ParseErrorKind::MissingVersion,
            ),
            ("hello\n", Some(1), ParseErrorKind::MissingVersion),
            ("v=1\n", Some(1), ParseErrorKind::UnsupportedVersion),
            ("v=0\ns=-\n", None, ParseErrorKind::MissingOrigin),
            ("v=0\nv=0\n", Some(2), ParseErrorKind::Duplicate('v')),
            ("v=0\n=x\n", Some(2), ParseErrorKind::MalformedLine),
            ("v=0\nab=x\n", Some(2), ParseErrorKind::MalformedLine),
            ("v=0\n1=x\n", Some(2), ParseErrorKind::MalformedLine),
            (
                "v=0\no=- 1 IN IP4 1.1.1.1\n",
                Some(2),
                field('o', "line", "has fewer than 6 fields"),
            ),
            (
                "v=0\no=- 1 x IN IP4 1.1.1.1\n",
                Some(2),
                field('o', "session version", "is not a number"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\no=- 1 2 IN IP4 1.1.1.1\n",
                Some(3),
                ParseErrorKind::Duplicate('o'),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nc=IN IP4\n",
                Some(3),
                field('c', "address", "is missing"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1 x\n",
                Some(3),
                field('c', "address", "is followed by extra fields"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nb=AS\n",
                Some(3),
                field('b', "line", "has no ':'"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nb=AS:fast\n",
                Some(3),
                field('b', "bandwidth", "is not a number"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nt=0\n",
                Some(3),
                field('t', "line", "does not have 2 fields"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nt=now 0\n",
                Some(3),
                field('t', "start time", "is not a number"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nr=7d 1h 0 25h\n",
                Some(3),
                ParseErrorKind::RepeatWithoutTiming,
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio\n",
                Some(3),
                field('m', "port", "is missing"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio 5000\n",
                Some(3),
                field('m', "protocol", "is missing"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio 70000 RTP/AVP 0\n",
                Some(3),
                field('m', "port", "is not a number 0-65535"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio 5000/x RTP/AVP 0\n",
                Some(3),
                field('m', "number of ports", "is not a number 0-65535"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio 5000 RTP/AVP 0\nt=0 0\n",
                Some(4),
                ParseErrorKind::NotAllowedInMedia('t'),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\nm=audio 5000 RTP/AVP 0\nc=IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\n",
                Some(5),
                ParseErrorKind::Duplicate('c'),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\na=\n",
                Some(3),
                field('a', "name", "is empty"),
            ),
            (
                "v=0\no=- 1 2 IN IP4 1.1.1.1\na=:x\n",
                Some(3),
                field('a', "name", "is empty"),
            ),
        ];
        for (text, line, kind) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                (&err.line, &err.kind),
                (line, kind),
                "input {text:?} gave {err}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line() {
        let err = Session::parse(b"v=0\r\ns=\xff\xfe\r\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(err.kind, ParseErrorKind::NotUtf8);
        assert_eq!(err.to_string(), "invalid SDP at line 2: not valid UTF-8");
    }

    #[test]
    fn error_messages_are_readable() {
        let err = parse("v=0\no=- 1 x IN IP4 1.1.1.1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid SDP at line 2: o= session version is not a number"
        );
    }

    #[test]
    fn username_with_spaces_is_kept() {
        let s = parse("v=0\no=Big Phone 7 8 IN IP4 1.1.1.1\n").unwrap();
        assert_eq!(s.origin.username, "Big Phone");
        assert_eq!(s.origin.session_id, "7");
    }

    #[test]
    fn typed_attributes() {
        let text = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 111 0 101\r\n\
            a=rtpmap:111 opus/48000/2\r\n\
            a=fmtp:111 useinbandfec=1; minptime=10\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-16\r\n\
            a=ptime:20\r\n\
            a=maxptime:60\r\n\
            a=sendonly\r\n\
            a=rtcp:4001 IN IP4 10.0.0.2\r\n\
            a=rtcp-mux\r\n\
            a=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n\
            a=ice-ufrag:abcd\r\n\
            a=x-flag\r\n";
        let s = parse(text).unwrap();
        let m = &s.media[0];
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![111, 0, 101]);
        let opus = m.rtpmap(111).unwrap();
        assert_eq!(
            (opus.encoding.as_str(), opus.clock_rate, opus.channels),
            ("opus", 48000, Some(2))
        );
        assert_eq!(m.fmtp(111).unwrap().params, "useinbandfec=1; minptime=10");
        assert_eq!(m.fmtp(101).unwrap().params, "0-16");
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.maxptime(), Some(60));
        assert_eq!(m.direction(), Some(Direction::SendOnly));
        let rtcp = m.rtcp().unwrap();
        assert_eq!(rtcp.port, 4001);
        assert_eq!(rtcp.connection.as_ref().unwrap().address, "10.0.0.2");
        assert!(m.rtcp_mux());
        let ext = m.extmaps().next().unwrap();
        assert_eq!(ext.id, 1);
        assert_eq!(ext.direction, Some(Direction::RecvOnly));
        assert_eq!(ext.uri, crate::AUDIO_LEVEL_URI);
        assert_eq!(ext.attributes.as_deref(), Some("vad=on"));
        assert_eq!(m.other_attribute("ice-ufrag"), Some(Some("abcd")));
        assert_eq!(m.other_attribute("x-flag"), Some(None));
        assert_eq!(s.to_string(), text);
    }

    #[test]
    fn malformed_typed_attributes_are_kept_as_other() {
        let lines = [
            "rtpmap:96",
            "rtpmap:96 opus",
            "rtpmap:200 PCMU/8000",
            "rtpmap:x PCMU/8000",
            "rtpmap:96 opus/fast",
            "rtpmap:96 opus/48000/2/1",
            "rtpmap:96 /8000",
            "fmtp:",
            "ptime:20.5",
            "maxptime:",
            "rtcp:99999",
            "rtcp:5000 IN IP4",
            "rtcp-mux:yes",
            "sendrecv:now",
            "extmap:x urn:a",
            "extmap:1",
            "extmap:1/sideways urn:a",
            "rtpmap",
        ];
        for line in lines {
            let text = format!("v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\na={line}\r\n");
            let s = parse(&text).unwrap();
            assert!(
                matches!(s.attributes[0], Attribute::Other { .. }),
                "{line} parsed as {:?}",
                s.attributes[0]
            );
            assert_eq!(s.to_string(), text, "{line} did not round-trip");
        }
    }

    #[test]
    fn unknown_lines_are_kept_in_their_section() {
        let text = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\na=tool:x\r\ny=0100000001\r\n\
            m=video 5000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\nf=v/2/4///a///\r\n";
        let s = parse(text).unwrap();
        assert_eq!(s.other_lines[0].kind, 'y');
        assert_eq!(s.media[0].other_lines[0].value, "v/2/4///a///");
        assert_eq!(s.to_string(), text);
    }

    #[test]
    fn lines_out_of_order_are_accepted_and_written_in_rfc_order() {
        let text = "v=0\nt=0 0\ns=-\no=- 1 2 IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=sendrecv\nc=IN IP4 10.0.0.1\n";
        let s = parse(text).unwrap();
        assert_eq!(
            s.to_string(),
            "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn full_session_level_round_trip() {
        let text = "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\n\
            i=A Seminar on the session description protocol\r\n\
            u=http://www.example.com/seminars/sdp.pdf\r\n\
            e=j.doe@example.com (Jane Doe)\r\np=+1 617 555-6011\r\n\
            c=IN IP4 224.2.17.12/127\r\nb=CT:128\r\nt=2873397496 2873404696\r\n\
            r=7d 1h 0 25h\r\nz=2882844526 -1h 2898848070 0\r\nk=prompt\r\na=recvonly\r\n\
            m=audio 49170/2 RTP/AVP 0\r\ni=voice\r\nb=AS:64\r\nk=clear:x\r\n\
            m=application 32416 udp wb\r\na=orient:portrait\r\n";
        let s = parse(text).unwrap();
        assert_eq!(
            s.connection.as_ref().unwrap().ip(),
            Some([224, 2, 17, 12].into())
        );
        assert_eq!(s.media[0].port_count, Some(2));
        assert_eq!(s.media[1].proto, Proto::Other("udp".into()));
        assert_eq!(s.to_string(), text);
    }
}
