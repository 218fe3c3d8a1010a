//! Test-only: SDP bodies as the clients we must interoperate with send them
//! (SIPp, baresip, Linphone, Asterisk, PJSIP/MicroSIP, a Yealink desk phone,
//! Chrome/WebRTC and a WebRTC gateway), written from their usual output with
//! documentation addresses. Each is parsed, round-tripped and negotiated.

use std::net::SocketAddr;

use crate::{
    Codec, Direction, LocalCapabilities, MediaKind, NegotiationError, NotAcceptable, Origin,
    Session, accept_answer, answer, offer,
};

/// SIPp's built-in `uac` scenario.
const SIPP_UAC: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// SIPp's `uac_pcap` scenario (PCMA with RFC 2833 events).
const SIPP_UAC_PCAP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-11,16\r\n";

/// baresip with opus, g722 and g711 modules loaded. Its events are at 8 kHz
/// only, which does not fit Opus.
const BARESIP: &str = "v=0\r\n\
o=- 1184625424 3497624262 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 10390 RTP/AVP 96 9 0 8 101\r\n\
b=AS:96\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1;useinbandfec=1\r\n\
a=rtpmap:9 G722/8000/1\r\n\
a=rtpmap:0 PCMU/8000/1\r\n\
a=rtpmap:8 PCMA/8000/1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-rsize\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:2394671434 cname:ea0f1ba3-1b9e-4c8f-a8cb-0c9d5ba4f6a1\r\n";

/// Linphone desktop with video enabled: events at three clock rates, speex,
/// G.729 annex B, RTCP-XR, and a video stream we must refuse.
const LINPHONE: &str = "v=0\r\n\
o=alice 2413 3045 IN IP4 192.0.2.20\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n\
m=video 9078 RTP/AVP 96 97\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 H264/90000\r\n\
a=fmtp:97 profile-level-id=42801F\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=rtcp-fb:97 nack pli\r\n\
a=rtcp-fb:97 ccm fir\r\n";

/// Asterisk (chan_pjsip) as a trunk peer.
const ASTERISK: &str = "v=0\r\n\
o=- 1573649373 1573649373 IN IP4 203.0.113.5\r\n\
s=Asterisk\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 15372 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

/// Asterisk (chan_pjsip) putting us on hold by re-INVITE.
const ASTERISK_HOLD: &str = "v=0\r\n\
o=- 1573649373 1573649374 IN IP4 203.0.113.5\r\n\
s=Asterisk\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 15372 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendonly\r\n";

/// A Yealink T4x desk phone: G.722 first, G.729, optional SRTP offered over
/// RTP/AVP (SDES "best effort"), bare-LF free but with a trailing space.
const YEALINK: &str = "v=0\r\n\
o=- 20019 20019 IN IP4 192.0.2.50\r\n\
s=SDP data\r\n\
c=IN IP4 192.0.2.50\r\n\
t=0 0\r\n\
m=audio 11780 RTP/AVP 9 0 8 18 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz \r\n";

/// An older desk phone holding the RFC 2543 way.
const OLD_PHONE_HOLD: &str = "v=0\r\n\
o=SIPPhone 1 2 IN IP4 192.0.2.60\r\n\
s=SIP Call\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

/// MicroSIP (PJSIP): a=rtcp with explicit address, session-level b= and an
/// X- attribute, bare LF line ends.
const MICROSIP: &str = "v=0\n\
o=- 3843512345 3843512345 IN IP4 192.0.2.30\n\
s=pjmedia\n\
b=AS:84\n\
t=0 0\n\
a=X-nat:0\n\
m=audio 4000 RTP/AVP 8 0 101\n\
c=IN IP4 192.0.2.30\n\
b=TIAS:64000\n\
a=rtcp:4001 IN IP4 192.0.2.30\n\
a=sendrecv\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n\
a=ssrc:1863289346 cname:6c2c3ab25b4c41e9\n";

/// Chrome's offer: DTLS-SRTP over ICE, which we do not terminate.
const CHROME: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Xw8B\r\n\
a=ice-pwd:b4Bt1m6ci2oXQbAyZ0jBdqs9\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 5B:7E:E7:1D:4C:3D:9A:1F:6C:2A:0B:4A:DE:31:52:33:6F:0D:8D:BE:B4:6E:6A:1C:35:BF:A1:2F:B6:06:4A:E1\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=sendrecv\r\n\
a=msid:stream track\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\r\n";

/// A WebRTC client behind a media gateway that terminates DTLS/ICE and hands
/// us plain RTP/AVPF with rtcp-mux and the audio level extension.
const WEBRTC_GATEWAY: &str = "v=0\r\n\
o=- 8214623570184 2 IN IP4 198.51.100.7\r\n\
s=-\r\n\
t=0 0\r\n\
a=extmap-allow-mixed\r\n\
m=audio 30000 RTP/AVPF 111 9 0 8 110 126\r\n\
c=IN IP4 198.51.100.7\r\n\
a=rtcp:30000\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n";

/// Every sample with its client's name.
pub(crate) const ALL: &[(&str, &str)] = &[
    ("sipp uac", SIPP_UAC),
    ("sipp uac_pcap", SIPP_UAC_PCAP),
    ("baresip", BARESIP),
    ("linphone", LINPHONE),
    ("asterisk", ASTERISK),
    ("asterisk hold", ASTERISK_HOLD),
    ("yealink", YEALINK),
    ("old phone hold", OLD_PHONE_HOLD),
    ("microsip", MICROSIP),
    ("chrome", CHROME),
    ("webrtc gateway", WEBRTC_GATEWAY),
];

fn local() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

fn origin() -> Origin {
    Origin::new(77, 1, local().ip())
}

fn parse(text: &str) -> Session {
    Session::parse(text.as_bytes()).unwrap()
}

fn answer_default(text: &str) -> Result<crate::Answer, NegotiationError> {
    answer(
        &parse(text),
        &LocalCapabilities::default(),
        &origin(),
        local(),
        Direction::SendRecv,
    )
}

#[test]
fn every_client_sample_parses_and_round_trips() {
    for (client, text) in ALL {
        let session = Session::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{client}: {e}"));
        let written = session.to_string();
        assert!(
            !written.replace("\r\n", "").contains('\n'),
            "{client}: bare LF in output"
        );
        assert!(written.ends_with("\r\n"));
        assert_eq!(parse(&written), session, "{client} changed on round trip");
        // The samples are in RFC order, so apart from line ends and trailing
        // spaces they come back byte for byte.
        let canonical = text
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .replace(" \r\n", "\r\n");
        assert_eq!(written, canonical, "{client} not written back verbatim");
    }
}

#[test]
fn unknown_attributes_survive() {
    let linphone = parse(LINPHONE);
    assert_eq!(linphone.other_attribute("record"), Some(Some("off")));
    assert_eq!(
        linphone.media[1].other_attribute("rtcp-fb"),
        Some(Some("* trr-int 1000"))
    );
    let chrome = parse(CHROME);
    assert_eq!(chrome.other_attribute("group"), Some(Some("BUNDLE 0")));
    assert_eq!(chrome.other_attribute("extmap-allow-mixed"), Some(None));
    assert_eq!(
        chrome.media[0].other_attribute("setup"),
        Some(Some("actpass"))
    );
    assert!(parse(YEALINK).media[0].other_attribute("crypto").is_some());
}

/// What we expect from answering each client's offer.
struct Expected {
    client: &'static str,
    offer: &'static str,
    codec: Codec,
    payload_type: u8,
    events: Option<u8>,
    remote_rtp: &'static str,
    remote_rtcp: &'static str,
    direction: Direction,
    ports: &'static [u16],
}

#[test]
fn answers_to_client_offers() {
    let table = [
        Expected {
            client: "sipp uac",
            offer: SIPP_UAC,
            codec: Codec::Pcmu,
            payload_type: 0,
            events: None,
            remote_rtp: "127.0.0.1:6000",
            remote_rtcp: "127.0.0.1:6001",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        Expected {
            client: "sipp uac_pcap",
            offer: SIPP_UAC_PCAP,
            codec: Codec::Pcma,
            payload_type: 8,
            events: Some(101),
            remote_rtp: "127.0.0.1:6000",
            remote_rtcp: "127.0.0.1:6001",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        // Opus has no 48 kHz events here, so G.722 with events is chosen.
        Expected {
            client: "baresip",
            offer: BARESIP,
            codec: Codec::G722,
            payload_type: 9,
            events: Some(101),
            remote_rtp: "192.0.2.10:10390",
            remote_rtcp: "192.0.2.10:10391",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        Expected {
            client: "linphone",
            offer: LINPHONE,
            codec: Codec::Opus,
            payload_type: 96,
            events: Some(101),
            remote_rtp: "192.0.2.20:7078",
            remote_rtcp: "192.0.2.20:7079",
            direction: Direction::SendRecv,
            ports: &[4000, 0],
        },
        Expected {
            client: "asterisk",
            offer: ASTERISK,
            codec: Codec::G722,
            payload_type: 9,
            events: Some(101),
            remote_rtp: "203.0.113.5:15372",
            remote_rtcp: "203.0.113.5:15373",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        Expected {
            client: "asterisk hold",
            offer: ASTERISK_HOLD,
            codec: Codec::Pcmu,
            payload_type: 0,
            events: Some(101),
            remote_rtp: "203.0.113.5:15372",
            remote_rtcp: "203.0.113.5:15373",
            direction: Direction::RecvOnly,
            ports: &[4000],
        },
        // SDES keys over RTP/AVP are an optional upgrade: plain RTP is fine.
        Expected {
            client: "yealink",
            offer: YEALINK,
            codec: Codec::G722,
            payload_type: 9,
            events: Some(101),
            remote_rtp: "192.0.2.50:11780",
            remote_rtcp: "192.0.2.50:11781",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        Expected {
            client: "old phone hold",
            offer: OLD_PHONE_HOLD,
            codec: Codec::Pcmu,
            payload_type: 0,
            events: Some(101),
            remote_rtp: "0.0.0.0:16384",
            remote_rtcp: "0.0.0.0:16385",
            direction: Direction::RecvOnly,
            ports: &[4000],
        },
        Expected {
            client: "microsip",
            offer: MICROSIP,
            codec: Codec::Pcmu,
            payload_type: 0,
            events: Some(101),
            remote_rtp: "192.0.2.30:4000",
            remote_rtcp: "192.0.2.30:4001",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
        Expected {
            client: "webrtc gateway",
            offer: WEBRTC_GATEWAY,
            codec: Codec::Opus,
            payload_type: 111,
            events: Some(110),
            remote_rtp: "198.51.100.7:30000",
            remote_rtcp: "198.51.100.7:30000",
            direction: Direction::SendRecv,
            ports: &[4000],
        },
    ];
    for e in &table {
        let a = answer_default(e.offer).unwrap_or_else(|err| panic!("{}: {err}", e.client));
        let n = &a.negotiated;
        assert_eq!(
            (n.codec.codec, n.codec.payload_type),
            (e.codec, e.payload_type),
            "{}",
            e.client
        );
        assert_eq!(
            n.telephone_event.as_ref().map(|t| t.payload_type),
            e.events,
            "{}",
            e.client
        );
        assert_eq!(n.remote_rtp, e.remote_rtp.parse().unwrap(), "{}", e.client);
        assert_eq!(
            n.remote_rtcp,
            Some(e.remote_rtcp.parse().unwrap()),
            "{}",
            e.client
        );
        assert_eq!(n.direction, e.direction, "{}", e.client);
        let ports: Vec<u16> = a.session.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, e.ports, "{}", e.client);
        // What we send back is valid SDP that parses to the same thing.
        assert_eq!(parse(&a.session.to_string()), a.session, "{}", e.client);
    }
}

#[test]
fn linphone_video_is_refused_in_place() {
    let a = answer_default(LINPHONE).unwrap();
    assert_eq!(a.session.media[1].kind, MediaKind::Video);
    assert_eq!(a.session.media[1].port, 0);
    assert!(a.negotiated.codec.send_inband_fec());
}

#[test]
fn webrtc_gateway_gets_mux_and_audio_level() {
    let a = answer_default(WEBRTC_GATEWAY).unwrap();
    assert!(a.negotiated.rtcp_mux);
    assert_eq!(a.negotiated.audio_level_id, Some(1));
    let text = a.session.to_string();
    assert!(text.contains("m=audio 4000 RTP/AVPF 111 110\r\n"), "{text}");
    assert!(text.contains("a=rtcp-mux\r\n"));
    assert!(text.contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
}

#[test]
fn chrome_direct_is_not_acceptable() {
    assert_eq!(
        answer_default(CHROME).unwrap_err(),
        NegotiationError::NotAcceptable(NotAcceptable::UnsupportedTransport)
    );
}

#[test]
fn client_answers_to_our_offer() {
    let ours = offer(
        &LocalCapabilities::default(),
        &origin(),
        local(),
        Direction::SendRecv,
    );
    // Typical answers: Asterisk picks G.722 and echoes our event type;
    // a Yealink answers PCMU with its own event number 96; Linphone keeps Opus.
    let asterisk = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=Asterisk\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
        m=audio 15372 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:150\r\na=sendrecv\r\n";
    let yealink = "v=0\r\no=- 20020 20020 IN IP4 192.0.2.50\r\ns=SDP data\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
        m=audio 11782 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n\
        a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";
    let linphone = "v=0\r\no=bob 1 1 IN IP4 192.0.2.21\r\ns=Talk\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\n\
        m=audio 7080 RTP/AVP 111 110\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
        a=rtpmap:110 telephone-event/48000\r\n";
    let cases = [
        (asterisk, Codec::G722, 9, (101, 101)),
        (yealink, Codec::Pcmu, 0, (96, 101)),
        (linphone, Codec::Opus, 111, (110, 110)),
    ];
    for (text, codec, pt, (te_send, te_receive)) in cases {
        let n = accept_answer(&ours, &parse(text)).unwrap();
        assert_eq!((n.codec.codec, n.codec.payload_type), (codec, pt));
        let te = n.telephone_event.unwrap();
        assert_eq!(
            (te.payload_type, te.receive_payload_type),
            (te_send, te_receive)
        );
        assert!(!n.rtcp_mux);
        assert_eq!(n.direction, Direction::SendRecv);
    }
}
