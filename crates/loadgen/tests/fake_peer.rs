//! The load generator end to end against a tiny fake server on loopback:
//! a SIP responder that challenges, answers and hangs up, and a 20 ms
//! G.711 N-1 mixer. Not the real server — CI must not run load — but real
//! sockets, real threads and the real `loadgen` runtime.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palaver_loadgen::run::{Mode, Settings, run};
use palaver_media::codec::{Codec, g711};
use palaver_media::rtp::{RtpHeader, RtpPacket, write_rtp};
use palaver_sdp::{Direction, LocalCapabilities, Origin, Session, answer};
use palaver_sip::auth::{Algorithm, Challenge, Credentials};
use palaver_sip::{HeaderName, Message, Method, Request, Response, SipMessage, StatusCode};

struct FakeServer {
    sip: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `hang_up_after`: the fake sends BYE this long after answering (the
/// call-rate test number's behaviour); `None` keeps calls up.
fn fake_server(hang_up_after: Option<Duration>) -> FakeServer {
    let stop = Arc::new(AtomicBool::new(false));
    let sip = UdpSocket::bind("127.0.0.1:0").expect("bind sip");
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind rtp");
    let sip_addr = sip.local_addr().expect("addr");
    let rtp_addr = rtp.local_addr().expect("addr");
    let s1 = stop.clone();
    let t1 = std::thread::spawn(move || sip_loop(&sip, rtp_addr, hang_up_after, &s1));
    let s2 = stop.clone();
    let t2 = std::thread::spawn(move || mixer_loop(&rtp, &s2));
    FakeServer {
        sip: sip_addr,
        stop,
        threads: vec![t1, t2],
    }
}

fn challenge() -> Challenge {
    Challenge {
        realm: "fake".into(),
        nonce: "n0nce".into(),
        opaque: None,
        algorithm: Algorithm::Md5,
        qop_auth: true,
        stale: false,
    }
}

fn sip_loop(sock: &UdpSocket, rtp: SocketAddr, hang_up_after: Option<Duration>, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    // Answered calls waiting for our BYE: (due, request that created them, peer).
    let mut byes: Vec<(Instant, Request, SocketAddr)> = Vec::new();
    let mut answered: HashMap<String, Vec<u8>> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        byes.retain(|(due, inv, peer)| {
            if *due > now {
                return true;
            }
            let mut bye = Request::new(
                Method::Bye,
                inv.contacts()
                    .first()
                    .and_then(|c| match c {
                        palaver_sip::Contact::Addr(a) => Some(a.uri.clone()),
                        palaver_sip::Contact::Star => None,
                    })
                    .expect("contact"),
            );
            bye.headers
                .push(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKbye");
            bye.headers.push(
                HeaderName::From,
                format!("{};tag=fake", inv.headers.get(&HeaderName::To).expect("to")),
            );
            bye.headers.push(
                HeaderName::To,
                inv.headers.get(&HeaderName::From).expect("from"),
            );
            bye.headers
                .push(HeaderName::CallId, inv.call_id().expect("call-id"));
            bye.headers.push(HeaderName::CSeq, "1 BYE");
            let _ = sock.send_to(&bye.to_bytes(), peer);
            false
        });
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(Message::Request(req)) = palaver_sip::parse_message(&buf[..n], true) else {
            continue;
        };
        let reply = match req.method {
            Method::Invite => {
                let call_id = req.call_id().unwrap_or("").to_owned();
                if let Some(r) = answered.get(&call_id) {
                    r.clone()
                } else {
                    let creds = req
                        .headers
                        .get(&HeaderName::ProxyAuthorization)
                        .and_then(|v| Credentials::parse(v).ok());
                    match creds {
                        None => {
                            let mut r =
                                Response::for_request(&req, StatusCode::PROXY_AUTH_REQUIRED);
                            r.set_to_tag("ch");
                            r.headers
                                .push(HeaderName::ProxyAuthenticate, challenge().to_header_value());
                            r.to_bytes()
                        }
                        Some(c) if !c.verify("INVITE", "pw") => {
                            Response::for_request(&req, StatusCode::FORBIDDEN).to_bytes()
                        }
                        Some(_) => {
                            let offer = Session::parse(&req.body).expect("loadgen sends valid SDP");
                            let origin = Origin::new(1, 1, rtp.ip());
                            let a = answer(
                                &offer,
                                &LocalCapabilities::default(),
                                &origin,
                                rtp,
                                Direction::SendRecv,
                            )
                            .expect("negotiable");
                            let mut r = Response::for_request(&req, StatusCode::OK);
                            r.set_to_tag("fake");
                            r.headers.push(
                                HeaderName::Contact,
                                format!("<sip:{}>", sock.local_addr().expect("addr")),
                            );
                            r.set_body("application/sdp", a.session.to_string().into_bytes());
                            let bytes = r.to_bytes();
                            answered.insert(call_id, bytes.clone());
                            if let Some(after) = hang_up_after {
                                byes.push((Instant::now() + after, req.clone(), peer));
                            }
                            bytes
                        }
                    }
                }
            }
            Method::Ack => continue,
            _ => Response::for_request(&req, StatusCode::OK).to_bytes(),
        };
        let _ = sock.send_to(&reply, peer);
    }
}

/// A 20 ms N-1 mixer for µ-law: every tick each latched source gets the
/// sum of everyone else's latest frame, in its own RTP stream.
fn mixer_loop(sock: &UdpSocket, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");
    struct Source {
        frame: [i16; 160],
        fresh: bool,
        seq: u16,
        ts: u32,
    }
    let mut sources: Vec<(SocketAddr, Source)> = Vec::new();
    let mut buf = [0u8; 2048];
    let mut next_tick = Instant::now() + Duration::from_millis(20);
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf)
            && let Ok(p) = RtpPacket::parse(&buf[..n])
            && p.header.payload_type == 0
            && p.payload.len() == 160
        {
            let idx = match sources.iter().position(|(a, _)| *a == from) {
                Some(i) => i,
                None => {
                    sources.push((
                        from,
                        Source {
                            frame: [0; 160],
                            fresh: false,
                            seq: 0,
                            ts: 0,
                        },
                    ));
                    sources.len() - 1
                }
            };
            g711::decode(false, p.payload, &mut sources[idx].1.frame);
            sources[idx].1.fresh = true;
        }
        if Instant::now() < next_tick {
            continue;
        }
        next_tick += Duration::from_millis(20);
        let mut sum = [0i32; 160];
        for (_, s) in &sources {
            if s.fresh {
                for (a, &b) in sum.iter_mut().zip(&s.frame) {
                    *a += i32::from(b);
                }
            }
        }
        let mut out = [0u8; 200];
        for (i, (addr, s)) in sources.iter_mut().enumerate() {
            let mut pcm = [0i16; 160];
            for k in 0..160 {
                let own = if s.fresh { i32::from(s.frame[k]) } else { 0 };
                pcm[k] = (sum[k] - own).clamp(-32_768, 32_767) as i16;
            }
            let mut payload = [0u8; 160];
            g711::encode(false, &pcm, &mut payload);
            let h = RtpHeader {
                payload_type: 0,
                sequence: s.seq,
                timestamp: s.ts,
                ssrc: 4242 + i as u32,
                ..RtpHeader::default()
            };
            let n = write_rtp(&mut out, &h, None, &payload).expect("fits");
            let _ = sock.send_to(&out[..n], *addr);
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(160);
        }
        for (_, s) in &mut sources {
            s.fresh = false;
        }
    }
}

#[test]
fn conference_run_against_a_fake_bridge() {
    let server = fake_server(None);
    let mut s = Settings::new(server.sip);
    s.mode = Mode::Conference;
    s.numbers = vec!["1234".into()];
    s.participants = 3;
    s.rate = 50.0;
    s.codec = Codec::Pcmu;
    s.user = "1001".into();
    s.password = Some("pw".into());
    s.settle = Duration::from_millis(500);
    s.window = Duration::from_secs(3);
    s.marker_interval = Duration::from_millis(700);
    s.threads = 2;
    let r = run(&s).expect("run");
    assert_eq!(r.calls.attempted, 3);
    assert_eq!(r.calls.answered, 3, "{:?}", r.calls.failures);
    assert_eq!(r.calls.failed, 0);
    assert_eq!(r.calls.unanswered_byes, 0);
    assert_eq!(r.media.participants, 3);
    // Three seconds of 50 packets per second to each of three listeners.
    assert!(r.media.window.expected >= 3 * 140, "{:?}", r.media.window);
    assert!(r.media.loss_fraction < 0.01, "{:?}", r.media.window);
    // Markers at 0.5, 1.2, 1.9, 2.6 s after the window starts, each heard
    // by the two others; the fake's 20 ms tick puts the delay below 40 ms
    // plus scheduling noise.
    assert!(r.media.markers_sent >= 3, "{:?}", r.media);
    assert!(r.media.markers_heard >= 4, "{:?}", r.media);
    assert_eq!(r.media.false_markers, 0);
    assert!(
        r.media.delay_ms.p50 > 0.0 && r.media.delay_ms.p50 < 60.0,
        "{:?}",
        r.media.delay_ms
    );
    assert!(r.loadgen_cpu.wall_s > 2.5);
    let json = serde_json::to_string(&r).expect("serialises");
    assert!(json.contains("\"delay_ms\""));
    assert!(r.summary().contains("markers heard"));
}

#[test]
fn call_rate_run_against_a_hanging_up_number() {
    let server = fake_server(Some(Duration::from_millis(300)));
    let mut s = Settings::new(server.sip);
    s.mode = Mode::CallRate;
    s.numbers = vec!["900".into()];
    s.participants = 20;
    s.rate = 40.0;
    s.password = Some("pw".into());
    let r = run(&s).expect("run");
    assert_eq!(r.calls.attempted, 20);
    assert_eq!(r.calls.answered, 20, "{:?}", r.calls.failures);
    assert_eq!(r.calls.failed, 0, "{:?}", r.calls.failures);
    assert_eq!(r.calls.remote_hangups, 20);
    assert!(
        r.calls.hold_ms.p50 >= 290.0 && r.calls.hold_ms.max < 1_000.0,
        "{:?}",
        r.calls.hold_ms
    );
    assert!(r.calls.setup_ms.max < 1_000.0);
}

#[test]
fn wrong_password_fails_every_call() {
    let server = fake_server(None);
    let mut s = Settings::new(server.sip);
    s.mode = Mode::CallRate;
    s.participants = 3;
    s.rate = 100.0;
    s.password = Some("nope".into());
    let r = run(&s).expect("run");
    assert_eq!(r.calls.answered, 0);
    assert_eq!(r.calls.failures.get("403"), Some(&3));
}
