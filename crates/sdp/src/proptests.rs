//! Test-only property tests: the parser never panics, accepts every
//! description generated from the grammar (with the line-end and whitespace
//! slack real peers use), and round-trips generated sessions exactly; the
//! negotiator never panics, and its answers are accepted by the offerer side.

use std::net::SocketAddr;

use proptest::prelude::*;

use crate::{
    Attribute, Bandwidth, Codec, Connection, Direction, Extmap, Fmtp, LocalCapabilities, Media,
    MediaKind, Origin, OtherLine, Proto, Rtcp, RtpMap, Session, Timing, accept_answer, answer,
};

/// A token: no whitespace, no `:` or `/` (which split attribute values).
fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.+*#-]{1,12}"
}

/// Free text for values: printable, some non-ASCII, no line breaks, no
/// trailing whitespace (the parser drops trailing spaces).
fn text() -> impl Strategy<Value = String> {
    "[ -~éü€]{0,24}".prop_map(|s| s.trim_end().to_owned())
}

/// Free text that also has no leading whitespace and is not empty.
fn trimmed_text() -> impl Strategy<Value = String> {
    "[!-~é€][ -~é€]{0,20}".prop_map(|s| s.trim_end().to_owned())
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive),
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), token()).prop_map(|(net_type, addr_type, address)| Connection {
        net_type,
        addr_type,
        address,
    })
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        prop::collection::vec(token(), 1..3),
        token(),
        any::<u64>(),
        token(),
        token(),
        token(),
    )
        .prop_map(
            |(user, session_id, session_version, net_type, addr_type, address)| Origin {
                username: user.join(" "),
                session_id,
                session_version,
                net_type,
                addr_type,
                address,
            },
        )
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), any::<u64>()).prop_map(|(kind, value)| Bandwidth { kind, value })
}

const TYPED_NAMES: &[&str] = &[
    "rtpmap", "fmtp", "ptime", "maxptime", "rtcp", "rtcp-mux", "extmap", "sendrecv", "sendonly",
    "recvonly", "inactive",
];

fn attribute() -> impl Strategy<Value = Attribute> {
    let other_name = prop_oneof![
        Just("ice-ufrag".to_owned()),
        Just("candidate".to_owned()),
        Just("rtcp-fb".to_owned()),
        Just("ssrc".to_owned()),
        Just("crypto".to_owned()),
        Just("fingerprint".to_owned()),
        token(),
    ]
    .prop_filter("typed attribute name", |n| {
        !TYPED_NAMES.contains(&n.as_str())
    });
    prop_oneof![
        (
            0u8..=127,
            token(),
            any::<u32>(),
            prop::option::of(any::<u16>())
        )
            .prop_map(
                |(payload_type, encoding, clock_rate, channels)| Attribute::RtpMap(RtpMap {
                    payload_type,
                    encoding,
                    clock_rate,
                    channels,
                })
            ),
        (token(), prop_oneof![Just(String::new()), trimmed_text()])
            .prop_map(|(format, params)| Attribute::Fmtp(Fmtp { format, params })),
        any::<u32>().prop_map(Attribute::Ptime),
        any::<u32>().prop_map(Attribute::MaxPtime),
        direction().prop_map(Attribute::Direction),
        (any::<u16>(), prop::option::of(connection()))
            .prop_map(|(port, connection)| Attribute::Rtcp(Rtcp { port, connection })),
        Just(Attribute::RtcpMux),
        (
            any::<u16>(),
            prop::option::of(direction()),
            token(),
            prop::option::of(trimmed_text())
        )
            .prop_map(
                |(id, direction, uri, attributes)| Attribute::Extmap(Extmap {
                    id,
                    direction,
                    uri,
                    attributes,
                })
            ),
        (other_name, prop::option::of(text()))
            .prop_map(|(name, value)| Attribute::Other { name, value }),
    ]
}

fn other_line() -> impl Strategy<Value = OtherLine> {
    (
        prop::sample::select(
            "dfghjlnqwxyABCDEFGHIJKLMNOPQRSTUVWXYZ"
                .chars()
                .collect::<Vec<_>>(),
        ),
        text(),
    )
        .prop_map(|(kind, value)| OtherLine { kind, value })
}

fn media_kind() -> impl Strategy<Value = MediaKind> {
    prop_oneof![
        Just(MediaKind::Audio),
        Just(MediaKind::Video),
        Just(MediaKind::Text),
        Just(MediaKind::Application),
        Just(MediaKind::Message),
        Just(MediaKind::Image),
        token()
            .prop_filter("known kind", |t| MediaKind::from_token(t)
                == MediaKind::Other(t.clone()))
            .prop_map(MediaKind::Other),
    ]
}

fn proto() -> impl Strategy<Value = Proto> {
    prop_oneof![
        Just(Proto::RtpAvp),
        Just(Proto::RtpAvpf),
        Just(Proto::RtpSavp),
        Just(Proto::RtpSavpf),
        Just(Proto::UdpTlsRtpSavpf),
        "[a-zA-Z0-9/]{1,12}"
            .prop_filter("known proto", |t| Proto::from_token(t)
                == Proto::Other(t.clone()))
            .prop_map(Proto::Other),
    ]
}

fn media() -> impl Strategy<Value = Media> {
    (
        (
            media_kind(),
            any::<u16>(),
            prop::option::of(any::<u16>()),
            proto(),
            prop::collection::vec(token(), 0..6),
        ),
        (
            prop::option::of(text()),
            prop::option::of(connection()),
            prop::collection::vec(bandwidth(), 0..2),
            prop::option::of(text()),
            prop::collection::vec(attribute(), 0..8),
            prop::collection::vec(other_line(), 0..2),
        ),
    )
        .prop_map(
            |(
                (kind, port, port_count, proto, formats),
                (info, connection, bandwidths, key, attributes, other_lines),
            )| Media {
                kind,
                port,
                port_count,
                proto,
                formats,
                info,
                connection,
                bandwidths,
                key,
                attributes,
                other_lines,
            },
        )
}

fn timing() -> impl Strategy<Value = Timing> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(text(), 0..2),
    )
        .prop_map(|(start, stop, repeats)| Timing {
            start,
            stop,
            repeats,
        })
}

fn session() -> impl Strategy<Value = Session> {
    (
        (
            origin(),
            text(),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::collection::vec(text(), 0..2),
            prop::collection::vec(text(), 0..2),
            prop::option::of(connection()),
        ),
        (
            prop::collection::vec(bandwidth(), 0..2),
            prop::collection::vec(timing(), 1..3),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::collection::vec(attribute(), 0..6),
            prop::collection::vec(other_line(), 0..2),
            prop::collection::vec(media(), 0..4),
        ),
    )
        .prop_map(
            |(
                (origin, name, info, uri, emails, phones, connection),
                (bandwidths, timings, time_zones, key, attributes, other_lines, media),
            )| Session {
                origin,
                name,
                info,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                timings,
                time_zones,
                key,
                attributes,
                other_lines,
                media,
            },
        )
}

/// A plausible audio offer: a shuffled subset of codecs (ours and others),
/// telephone-event at some clock rates, and the options that change the
/// outcome (direction, hold address, ptime, rtcp-mux, audio level).
#[derive(Debug, Clone)]
struct AudioOffer {
    codecs: Vec<(&'static str, u32, Option<u16>, Option<u8>)>,
    event_clocks: Vec<u32>,
    static_rtpmaps: bool,
    direction: Option<Direction>,
    hold_address: bool,
    ptime: Option<u32>,
    rtcp_mux: bool,
    audio_level: Option<u16>,
    leading_video: bool,
}

fn audio_offer() -> impl Strategy<Value = AudioOffer> {
    let all_codecs = vec![
        ("opus", 48_000, Some(2), None),
        ("G722", 8_000, None, Some(9)),
        ("PCMU", 8_000, None, Some(0)),
        ("PCMA", 8_000, None, Some(8)),
        ("G729", 8_000, None, Some(18)),
        ("iLBC", 8_000, None, None),
        ("speex", 16_000, None, None),
    ];
    (
        prop::sample::subsequence(all_codecs, 0..=7).prop_shuffle(),
        prop::sample::subsequence(vec![8_000u32, 16_000, 48_000], 0..=3),
        any::<bool>(),
        prop::option::of(direction()),
        prop::bool::weighted(0.2),
        prop::option::of(prop_oneof![
            Just(10u32),
            Just(20),
            Just(30),
            Just(60),
            0u32..200
        ]),
        any::<bool>(),
        prop::option::of(1u16..=14),
        any::<bool>(),
    )
        .prop_map(
            |(
                codecs,
                event_clocks,
                static_rtpmaps,
                direction,
                hold_address,
                ptime,
                rtcp_mux,
                audio_level,
                leading_video,
            )| AudioOffer {
                codecs,
                event_clocks,
                static_rtpmaps,
                direction,
                hold_address,
                ptime,
                rtcp_mux,
                audio_level,
                leading_video,
            },
        )
}

impl AudioOffer {
    fn to_sdp(&self) -> String {
        let mut next_dynamic = 96u8;
        let mut formats = Vec::new();
        let mut attrs = Vec::new();
        for (name, clock, channels, static_pt) in &self.codecs {
            let pt = static_pt.unwrap_or_else(|| {
                next_dynamic += 1;
                next_dynamic
            });
            formats.push(pt.to_string());
            if static_pt.is_none() || self.static_rtpmaps {
                let ch = channels.map(|c| format!("/{c}")).unwrap_or_default();
                attrs.push(format!("a=rtpmap:{pt} {name}/{clock}{ch}"));
            }
        }
        for clock in &self.event_clocks {
            next_dynamic += 1;
            formats.push(next_dynamic.to_string());
            attrs.push(format!("a=rtpmap:{next_dynamic} telephone-event/{clock}"));
        }
        if let Some(d) = self.direction {
            attrs.push(format!("a={d}"));
        }
        if let Some(ms) = self.ptime {
            attrs.push(format!("a=ptime:{ms}"));
        }
        if self.rtcp_mux {
            attrs.push("a=rtcp-mux".to_owned());
        }
        if let Some(id) = self.audio_level {
            attrs.push(format!("a=extmap:{id} {}", crate::AUDIO_LEVEL_URI));
        }
        let addr = if self.hold_address {
            "0.0.0.0"
        } else {
            "127.0.0.2"
        };
        let video = if self.leading_video {
            "m=video 7000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
        } else {
            ""
        };
        let mut sdp = format!(
            "v=0\r\no=- 5 5 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n{video}m=audio 6000 RTP/AVP {}\r\n",
            formats.join(" ")
        );
        for a in attrs {
            sdp.push_str(&a);
            sdp.push_str("\r\n");
        }
        sdp
    }

    fn ours(&self) -> Vec<Codec> {
        self.codecs
            .iter()
            .filter_map(|(name, ..)| match *name {
                "opus" => Some(Codec::Opus),
                "G722" => Some(Codec::G722),
                "PCMU" => Some(Codec::Pcmu),
                "PCMA" => Some(Codec::Pcma),
                _ => None,
            })
            .collect()
    }
}

/// Serialised SDP with some CRLFs turned into LF, blank lines and trailing
/// spaces added, as sloppy peers send it.
fn sloppy(text: &str, mask: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in text.split_terminator("\r\n").enumerate() {
        let m = mask.get(i % mask.len().max(1)).copied().unwrap_or(0);
        out.push_str(line);
        if m & 1 != 0 {
            out.push_str("  \t");
        }
        out.push_str(if m & 2 != 0 { "\n" } else { "\r\n" });
        if m & 4 != 0 {
            out.push_str("\r\n");
        }
    }
    out
}

fn local() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Session::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_sdp_like_lines(
        lines in prop::collection::vec(
            ("[a-zA-Z0-9= ]", "=?", "[ -~\u{80}-\u{10ffff}]{0,40}"),
            0..20,
        ),
        lf_only in any::<bool>(),
    ) {
        let mut text = String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n");
        for (letter, eq, value) in lines {
            text.push_str(&letter);
            text.push_str(&eq);
            text.push_str(&value);
            text.push_str(if lf_only { "\n" } else { "\r\n" });
        }
        if let Ok(session) = Session::parse(text.as_bytes()) {
            // Whatever parses also survives negotiation and writing.
            let _ = answer(&session, &LocalCapabilities::default(), &session.origin.clone(), local(), Direction::SendRecv);
            let again = Session::parse(session.to_string().as_bytes());
            prop_assert!(again.is_ok());
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_sessions(
        s in session(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = s.to_string().into_bytes();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        if let Ok(parsed) = Session::parse(&bytes) {
            let _ = accept_answer(&s, &parsed);
            let _ = accept_answer(&parsed, &s);
            let _ = answer(&parsed, &LocalCapabilities::default(), &s.origin, local(), Direction::SendRecv);
        }
    }

    #[test]
    fn generated_sessions_round_trip(s in session()) {
        let text = s.to_string();
        let parsed = Session::parse(text.as_bytes());
        prop_assert_eq!(parsed.as_ref(), Ok(&s), "text was:\n{}", text);
        // And writing is stable.
        prop_assert_eq!(parsed.unwrap().to_string(), text);
    }

    #[test]
    fn sloppy_line_ends_and_spaces_are_accepted(s in session(), mask in prop::collection::vec(0u8..8, 1..6)) {
        let text = sloppy(&s.to_string(), &mask);
        prop_assert_eq!(Session::parse(text.as_bytes()), Ok(s));
    }

    #[test]
    fn answers_are_accepted_by_the_offerer(o in audio_offer()) {
        let text = o.to_sdp();
        let offer = Session::parse(text.as_bytes()).unwrap();
        let caps = LocalCapabilities::default();
        let origin = Origin::new(1, 1, local().ip());
        let result = answer(&offer, &caps, &origin, local(), Direction::SendRecv);
        let ours = o.ours();
        let Ok(a) = result else {
            prop_assert!(ours.is_empty(), "refused {:?} for\n{}", result, text);
            return Ok(());
        };
        let n = &a.negotiated;
        prop_assert!(ours.contains(&n.codec.codec));
        // Codecs with matching events come first, then our preference.
        let rank = |c: Codec| {
            let has_events = o.event_clocks.contains(&c.clock_rate());
            let pref = caps.codecs.iter().position(|x| x.codec == c).unwrap();
            (!has_events, pref)
        };
        let best = ours.iter().copied().min_by_key(|c| rank(*c)).unwrap();
        prop_assert_eq!(n.codec.codec, best);
        prop_assert_eq!(
            n.telephone_event.as_ref().map(|t| t.clock_rate),
            o.event_clocks.contains(&best.clock_rate()).then_some(best.clock_rate())
        );
        prop_assert_eq!(a.session.media.len(), offer.media.len());

        // Our answer goes back over the wire and the offerer takes it.
        let wire = Session::parse(a.session.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&wire, &a.session);
        if o.leading_video {
            // The offerer's first enabled audio line is the one we took.
            prop_assert_eq!(n.media_index, 1);
        }
        let back = accept_answer(&offer, &wire).unwrap();
        prop_assert_eq!(back.codec.codec, n.codec.codec);
        prop_assert_eq!(back.codec.payload_type, n.codec.payload_type);
        prop_assert_eq!(back.codec.receive_payload_type, n.codec.payload_type);
        prop_assert_eq!(
            back.telephone_event.map(|t| t.payload_type),
            n.telephone_event.as_ref().map(|t| t.payload_type)
        );
        prop_assert_eq!(back.direction, n.direction.reversed());
        prop_assert_eq!(back.rtcp_mux, n.rtcp_mux);
        prop_assert_eq!(back.audio_level_id, n.audio_level_id);
        prop_assert_eq!(back.remote_rtp, local());
        prop_assert!((10..=120).contains(&n.ptime));
    }

    /// Real client offers with lines dropped, duplicated, swapped or edited:
    /// negotiation never panics, and whenever we answer on the offer's first
    /// enabled audio line, the offerer side accepts our answer with the same
    /// codec and payload types.
    #[test]
    fn mutated_client_offers_negotiate_consistently(
        sample in prop::sample::select(crate::client_samples::ALL),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4, "[ -~]{0,12}"),
            0..6,
        ),
    ) {
        let mut lines: Vec<String> = sample.1.lines().map(str::to_owned).collect();
        for (a, b, op, junk) in edits {
            if lines.is_empty() {
                break;
            }
            let (i, j) = (a.index(lines.len()), b.index(lines.len()));
            match op {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let copy = lines[i].clone();
                    lines.insert(j, copy);
                }
                2 => lines.swap(i, j),
                _ => {
                    let cut = lines[i].char_indices().nth(j % 8 + 2).map_or(lines[i].len(), |(k, _)| k);
                    lines[i].truncate(cut);
                    lines[i].push_str(&junk);
                }
            }
        }
        let text = lines.join("\r\n");
        let Ok(offer) = Session::parse(text.as_bytes()) else {
            return Ok(());
        };
        let origin = Origin::new(1, 1, local().ip());
        for wish in [Direction::SendRecv, Direction::SendOnly] {
            let Ok(a) = answer(&offer, &LocalCapabilities::default(), &origin, local(), wish) else {
                continue;
            };
            let wire = Session::parse(a.session.to_string().as_bytes()).unwrap();
            prop_assert_eq!(&wire, &a.session);
            let first_audio = offer
                .media
                .iter()
                .position(|m| m.kind == MediaKind::Audio && m.port != 0);
            if first_audio == Some(a.negotiated.media_index) {
                let back = accept_answer(&offer, &wire);
                prop_assert!(back.is_ok(), "offerer refused our answer {:?}\noffer:\n{}", back, text);
                let back = back.unwrap();
                prop_assert_eq!(back.codec.codec, a.negotiated.codec.codec);
                prop_assert_eq!(back.codec.payload_type, a.negotiated.codec.payload_type);
                prop_assert_eq!(back.direction, a.negotiated.direction.reversed());
            }
        }
    }
}
