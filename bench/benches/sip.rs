//! SIP signalling benchmarks: parse and serialise of the three messages a
//! call and a registration are made of (an INVITE with SDP as SIPp sends it,
//! a REGISTER with digest credentials, a 200 OK with SDP), the transaction
//! layer's share of a call (INVITE in, 100 and 200 out, ACK in) and of an
//! OPTIONS ping, and digest verification (MD5 and SHA-256, `qop=auth`) as the
//! registrar does it: parse the `Authorization` value, then verify.
//!
//! Throughput is in messages: criterion prints messages/s ("elem/s").
//! Figures are recorded in `docs/benchmarks.md` ("SIP").

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palaver_sip::auth::{Algorithm, Challenge, Credentials, NonceIssuer};
use palaver_sip::{
    Message, Peer, Response, StatusCode, TransactionConfig, TransactionLayer, TxEvent,
    parse_message,
};

const SDP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn with_body(head: &str, body: &str) -> Vec<u8> {
    format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// An INVITE as SIPp's `uac_auth.xml` sends it once challenged (what the
/// call-rate run drives), with a typical softphone's extra headers.
fn invite(branch: &str) -> Vec<u8> {
    with_body(
        &format!(
            "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
From: \"Alice\" <sip:1001@127.0.0.1>;tag=18852SIPpTag001\r\n\
To: <sip:1002@127.0.0.1>\r\n\
Call-ID: 1-18852@127.0.0.1\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:1001@127.0.0.1:5070>\r\n\
Proxy-Authorization: Digest username=\"1001\",realm=\"palaver\",\
uri=\"sip:1002@127.0.0.1:5060\",nonce=\"0000018b3c5e7a10a1b2c3d4e5f60718293a4b5c6d7e8f9011223344\",\
response=\"0a7f3fd4bd2a1e5a6e5fbd0f2a1c0b12\",algorithm=MD5\r\n\
Max-Forwards: 70\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: SIPp\r\n\
Content-Type: application/sdp\r\n"
        ),
        SDP,
    )
}

fn register() -> Vec<u8> {
    with_body(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-18860-1-2;rport\r\n\
From: <sip:1002@127.0.0.1>;tag=18860R1\r\n\
To: <sip:1002@127.0.0.1>\r\n\
Call-ID: 1-18860@127.0.0.1\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:1002@127.0.0.1:5080>;expires=3600\r\n\
Authorization: Digest username=\"1002\", realm=\"palaver\", \
nonce=\"0000018b3c5e7a10a1b2c3d4e5f60718293a4b5c6d7e8f9011223344\", \
uri=\"sip:127.0.0.1:5060\", response=\"6629fae49393a05397450978507c4ef1\", \
algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
User-Agent: SIPp\r\n",
        "",
    )
}

fn ok_with_sdp() -> Vec<u8> {
    with_body(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb2bua7c1e9;rport=5060\r\n\
From: <sip:1001@127.0.0.1>;tag=p1d2f0a9\r\n\
To: <sip:1002@127.0.0.1>;tag=18861SIPpTag011\r\n\
Call-ID: palaver-7f3a2b1c9d@127.0.0.1\r\n\
CSeq: 4711 INVITE\r\n\
Contact: <sip:127.0.0.1:5080;transport=UDP>\r\n\
Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
Content-Type: application/sdp\r\n",
        SDP,
    )
}

fn parse_and_serialise(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_message");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("invite_sdp", invite("z9hG4bK-18852-1-2")),
        ("register_auth", register()),
        ("ok_sdp", ok_with_sdp()),
    ] {
        let msg = parse_message(&bytes, true).expect("the sample parses");
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| parse_message(black_box(&bytes), true))
        });
        g.bench_function(format!("serialise/{name}"), |b| {
            b.iter(|| black_box(&msg).to_bytes())
        });
        g.bench_function(format!("parse_serialise/{name}"), |b| {
            b.iter(|| match parse_message(black_box(&bytes), true) {
                Ok(m) => m.to_bytes(),
                Err(_) => Vec::new(),
            })
        });
    }
    g.finish();
}

/// A call's server-side transactions, as the PBX sees them from the caller:
/// the INVITE datagram in (parse, new server transaction, `100 Trying`
/// serialised out, event up), the user's `200 OK` sent (serialised, 2xx
/// retransmission armed), the ACK datagram in (parsed, matched, transaction
/// ended). A fresh Call-ID and branch per iteration; the datagrams are
/// prepared outside the timed part. Also one OPTIONS ping answered `200`.
fn transaction_layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_transaction");
    g.throughput(Throughput::Elements(1));
    let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], 5070)));
    let t0 = Instant::now();
    let invite_template = String::from_utf8(invite("z9hG4bK-NNNN")).expect("ASCII");
    let ack_template = "ACK sip:1002@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-NNNN-ack;rport\r\n\
From: \"Alice\" <sip:1001@127.0.0.1>;tag=18852SIPpTag001\r\n\
To: <sip:1002@127.0.0.1>;tag=srv\r\n\
Call-ID: 1-18852@127.0.0.1\r\n\
CSeq: 2 ACK\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
    let unique = |template: &str, n: u64| {
        template
            .replace("NNNN", &n.to_string())
            .replace("1-18852@", &format!("{n}-18852@"))
    };

    let mut layer = TransactionLayer::new(TransactionConfig::default());
    let mut n: u64 = 0;
    g.bench_function("invite_200_ack", |b| {
        b.iter_batched(
            || {
                n += 1;
                (n, unique(&invite_template, n), unique(ack_template, n))
            },
            |(n, invite, ack)| {
                let now = t0 + Duration::from_micros(n);
                layer.handle_datagram(now, peer, invite.as_bytes());
                while let Some(e) = layer.poll_event() {
                    if let TxEvent::Request { key, request, .. } = e {
                        let mut ok = Response::for_request(&request, StatusCode::OK);
                        ok.set_to_tag("srv");
                        let _ = layer.send_response(now, key, ok);
                    }
                }
                layer.handle_datagram(now, peer, ack.as_bytes());
                while let Some(e) = layer.poll_event() {
                    black_box(e);
                }
                while let Some(t) = layer.poll_transmit() {
                    black_box(t);
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // Every call was acknowledged: nothing may pile up.
    assert!(layer.is_empty(), "{} transactions left", layer.len());

    let options_template = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-NNNN;rport\r\n\
From: <sip:probe@127.0.0.1>;tag=p\r\n\
To: <sip:127.0.0.1:5060>\r\n\
Call-ID: 1-18852@127.0.0.1\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
    let mut layer = TransactionLayer::new(TransactionConfig::default());
    g.bench_function("options_200", |b| {
        b.iter_batched(
            || {
                n += 1;
                (n, unique(options_template, n))
            },
            |(n, options)| {
                // 1 ms of synthetic time per ping: Timer J (32 s) keeps
                // about 32,000 finished transactions alive, as a busy
                // server would.
                let now = t0 + Duration::from_millis(n);
                layer.handle_datagram(now, peer, options.as_bytes());
                while let Some(e) = layer.poll_event() {
                    if let TxEvent::Request { key, request, .. } = e {
                        let ok = Response::for_request(&request, StatusCode::OK);
                        let _ = layer.send_response(now, key, ok);
                    }
                }
                while let Some(t) = layer.poll_transmit() {
                    black_box(t);
                }
                layer.handle_timeout(now);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn digest(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_digest");
    g.throughput(Throughput::Elements(1));
    let issuer = NonceIssuer::new([7; 32], 300_000);
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let challenge = Challenge {
            realm: "palaver".into(),
            nonce: issuer.issue(1_000),
            opaque: None,
            algorithm: alg,
            qop_auth: true,
            stale: false,
        };
        let header = Credentials::answer(
            &challenge,
            "REGISTER",
            "sip:127.0.0.1:5060",
            "1002",
            "secret-password",
            1,
            "0a4f113b",
        )
        .to_header_value();
        let name = alg.as_str();
        g.bench_function(format!("parse_verify/{name}"), |b| {
            b.iter(|| {
                let creds = Credentials::parse(black_box(&header)).expect("valid");
                assert!(creds.verify("REGISTER", black_box("secret-password")));
            })
        });
        g.bench_function(format!("nonce_check_parse_verify/{name}"), |b| {
            b.iter(|| {
                let creds = Credentials::parse(black_box(&header)).expect("valid");
                black_box(issuer.check(&creds.nonce, 2_000));
                creds.verify("REGISTER", black_box("secret-password"))
            })
        });
    }
    g.finish();
}

fn is_request(m: &Message) -> bool {
    matches!(m, Message::Request(_))
}

fn sanity(_: &mut Criterion) {
    // The samples must be what they claim, or the figures mean nothing.
    for bytes in [invite("z9hG4bK1"), register()] {
        let m = parse_message(&bytes, true).expect("the sample parses");
        assert!(is_request(&m));
    }
    assert!(!is_request(
        &parse_message(&ok_with_sdp(), true).expect("the sample parses")
    ));
}

criterion_group!(
    benches,
    sanity,
    parse_and_serialise,
    transaction_layer,
    digest
);
criterion_main!(benches);
