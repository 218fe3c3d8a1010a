//! End-to-end tests of the foundation (issue 2): the real `palaver serve`
//! binary on loopback, driven by SIPp, baresip and a small SIP client.
//! SPEC P1 (registration), P2 (calls between lines, from trunks), P3 (DIDs).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use palaver_sip::auth::{Challenge, Credentials};

fn s(v: &str) -> String {
    v.to_owned()
}

fn options(port: u16, branch: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{branch}\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// P1: SIPp registers with digest auth; a wrong password is refused with 403.
#[test]
fn p1_sipp_registers_with_digest_auth() {
    if !have("sipp") {
        return;
    }
    let dir = TempDir::new("register");
    let server = Server::start(dir.path(), &[]);
    let ok = sipp_register(dir.path(), server.sip, "1001", free_udp_port(), PASSWORD);
    assert_eq!(ok.code, 0, "registration failed: {}", ok.output);
    assert_eq!(ok.successful, 1);
    let bad = sipp(
        dir.path(),
        "register_wrong.xml",
        &[
            server.sip.to_string(),
            s("-s"),
            s("1001"),
            s("-au"),
            s("1001"),
            s("-ap"),
            s("not-the-password"),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            free_udp_port().to_string(),
            s("-m"),
            s("1"),
            s("-timeout"),
            s("10"),
            s("-timeout_error"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(
        bad.code, 0,
        "wrong password was not refused with 403: {}",
        bad.output
    );
}

/// P2: SIPp calls SIPp through the server, line to line: 200 calls at 50
/// calls/s, none may fail.
#[test]
fn p2_sipp_line_to_line_200_calls_at_50_per_second() {
    if !have("sipp") {
        return;
    }
    let dir = TempDir::new("l2l");
    let server = Server::start(dir.path(), &[]);
    let uas_port = free_udp_port();
    let reg = sipp_register(dir.path(), server.sip, "1002", uas_port, PASSWORD);
    assert_eq!(reg.code, 0, "{}", reg.output);
    let _uas = sipp_background(
        dir.path(),
        "uas.xml",
        &[s("-i"), s("127.0.0.1"), s("-p"), uas_port.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let run = sipp(
        dir.path(),
        "uac_auth.xml",
        &[
            server.sip.to_string(),
            s("-s"),
            s("1002"),
            s("-au"),
            s("1001"),
            s("-ap"),
            s(PASSWORD),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            free_udp_port().to_string(),
            s("-d"),
            s("1000"),
            s("-r"),
            s("50"),
            s("-m"),
            s("200"),
            s("-l"),
            s("200"),
            s("-timeout"),
            s("60"),
            s("-timeout_error"),
        ],
        Duration::from_secs(90),
    );
    assert_eq!(run.failed, 0, "failed calls: {}", run.output);
    assert_eq!(run.successful, 200, "{}", run.output);
    assert_eq!(run.code, 0);
}

fn call_once(dir: &std::path::Path, server: std::net::SocketAddr, uas_port: u16) -> SippResult {
    let _uas = sipp_background(
        dir,
        "uas.xml",
        &[s("-i"), s("127.0.0.1"), s("-p"), uas_port.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    sipp(
        dir,
        "uac_auth.xml",
        &[
            server.to_string(),
            s("-s"),
            s("1002"),
            s("-au"),
            s("1001"),
            s("-ap"),
            s(PASSWORD),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            free_udp_port().to_string(),
            s("-d"),
            s("200"),
            s("-m"),
            s("1"),
            s("-timeout"),
            s("20"),
            s("-timeout_error"),
        ],
        Duration::from_secs(30),
    )
}

fn restart_keeps_registrations(extra: &[&str], name: &str) {
    let dir = TempDir::new(name);
    let mut server = Server::start(dir.path(), extra);
    let uas_port = free_udp_port();
    let reg = sipp_register(dir.path(), server.sip, "1002", uas_port, PASSWORD);
    assert_eq!(reg.code, 0, "{}", reg.output);
    server.restart(dir.path());
    // Nobody registers again: the binding must come back from the store.
    let call = call_once(dir.path(), server.sip, uas_port);
    assert_eq!(
        call.code,
        0,
        "call after restart failed: {}\n{}",
        call.output,
        server.log_text()
    );
    assert_eq!(call.successful, 1);
}

/// P1: registrations survive a restart (SQLite).
#[test]
fn p1_registrations_survive_restart() {
    if !have("sipp") {
        return;
    }
    restart_keeps_registrations(&[], "restart");
}

/// P1 on PostgreSQL: the same, with the server on a real PostgreSQL database
/// (the test script starts one and sets PALAVER_TEST_POSTGRES_URL).
#[test]
fn p1_registrations_survive_restart_on_postgresql() {
    let Ok(url) = std::env::var("PALAVER_TEST_POSTGRES_URL") else {
        if std::env::var("PALAVER_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("PALAVER_REQUIRE_POSTGRES=1 but PALAVER_TEST_POSTGRES_URL is unset");
        }
        eprintln!("SKIPPED: PALAVER_TEST_POSTGRES_URL not set");
        return;
    };
    if !have("sipp") {
        return;
    }
    // A database of our own, so other tests sharing the server don't interfere.
    let db = format!("palaver_e2e_{}", std::process::id());
    let status = std::process::Command::new("psql")
        .arg(&url)
        .args([
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {db}"),
            "-c",
            &format!("CREATE DATABASE {db}"),
        ])
        .status()
        .expect("psql");
    assert!(status.success(), "could not create the test database");
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
    let own = format!("{base}/{db}");
    restart_keeps_registrations(&["--database-url", &own], "restart-pg");
}

/// P1 + P2: baresip registers with its password and places a call that a
/// SIPp line answers.
#[test]
fn p2_baresip_registers_and_places_a_call() {
    if !have("sipp") || !have("baresip") {
        return;
    }
    let dir = TempDir::new("baresip");
    let server = Server::start(dir.path(), &[]);
    let uas_port = free_udp_port();
    assert_eq!(
        sipp_register(dir.path(), server.sip, "1002", uas_port, PASSWORD).code,
        0
    );
    let _uas = sipp_background(
        dir.path(),
        "uas.xml",
        &[s("-i"), s("127.0.0.1"), s("-p"), uas_port.to_string()],
    );
    let wav = dir.path().join("tone.wav");
    write_tone_wav(&wav, 440.0, 20.0, 8000);
    let mut phone = Baresip::start(
        dir.path(),
        &BaresipConfig {
            user: "1001",
            password: Some(PASSWORD),
            server: server.sip,
            audio: &wav,
            register: true,
            auto_answer: false,
        },
    );
    assert!(
        phone.wait_registered(Duration::from_secs(10)),
        "baresip did not register: {:?}",
        phone.event_types()
    );
    phone.command("dial", &format!("sip:1002@{}", server.sip));
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "call not established: {:?}\n{}",
        phone.event_types(),
        server.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    phone.command("hangup", "");
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some()
    );
}

/// SIGTERM: calls in progress are hung up with BYE, the server exits 0.
#[test]
fn sigterm_hangs_up_calls_with_bye_and_exits_zero() {
    if !have("sipp") {
        return;
    }
    let dir = TempDir::new("sigterm");
    let mut server = Server::start(dir.path(), &[]);
    let uas_port = free_udp_port();
    assert_eq!(
        sipp_register(dir.path(), server.sip, "1002", uas_port, PASSWORD).code,
        0
    );
    let _uas = sipp_background(
        dir.path(),
        "uas.xml",
        &[s("-i"), s("127.0.0.1"), s("-p"), uas_port.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let sip = server.sip;
    let d = dir.path().to_path_buf();
    let caller = std::thread::spawn(move || {
        sipp(
            &d,
            "uac_wait_bye.xml",
            &[
                sip.to_string(),
                s("-s"),
                s("1002"),
                s("-au"),
                s("1001"),
                s("-ap"),
                s(PASSWORD),
                s("-i"),
                s("127.0.0.1"),
                s("-p"),
                free_udp_port().to_string(),
                s("-m"),
                s("1"),
                s("-timeout"),
                s("30"),
                s("-timeout_error"),
            ],
            Duration::from_secs(40),
        )
    });
    // Let the call get established.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        server.log_text().contains("call answered"),
        "{}",
        server.log_text()
    );
    assert_eq!(server.stop(), 0, "exit code after SIGTERM");
    let res = caller.join().unwrap();
    assert_eq!(res.code, 0, "caller did not get a BYE: {}", res.output);
    assert_eq!(res.successful, 1);
}

/// Robustness: malformed requests get 400 with a reason (or 416/505/483/501),
/// and the server keeps answering; a burst of 2,000 OPTIONS is answered in full.
#[test]
fn malformed_sip_is_answered_and_never_crashes_the_server() {
    let dir = TempDir::new("malformed");
    let server = Server::start(dir.path(), &[]);
    let c = SipClient::new(server.sip);
    let p = c.port();
    let good = options(p, "good");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            good.replace("Content-Length: 0", "Content-Length: -1"),
            400,
            "negative Content-Length",
        ),
        (good.replace("1 OPTIONS", "1 INVITE"), 400, "CSeq method"),
        (good.replace("Max-Forwards: 70", "Max-Forwards: 0"), 483, ""),
        (
            good.replace("OPTIONS sip:", "FOO sip:")
                .replace("1 OPTIONS", "1 FOO"),
            501,
            "",
        ),
        (
            good.replace("sip:127.0.0.1 SIP/2.0", "tel:+123 SIP/2.0"),
            416,
            "",
        ),
        (
            good.replace("127.0.0.1 SIP/2.0\r\n", "127.0.0.1 SIP/3.0\r\n"),
            505,
            "",
        ),
        (
            good.replace("<sip:probe@", "\"Probe <sip:probe@"),
            400,
            "unterminated quoted string",
        ),
        (
            good.replace("Max-Forwards: 70", "Max-Forwards: 7\u{0}0"),
            400,
            "NUL",
        ),
        (
            good.replace("Max-Forwards: 70", "Subject: a\r\n folded"),
            200,
            "",
        ),
    ];
    for (i, (msg, status, reason)) in cases.iter().enumerate() {
        let msg = msg.replace("z9hG4bKgood", &format!("z9hG4bKcase{i}"));
        let resp = c
            .request(&msg)
            .unwrap_or_else(|| panic!("no answer to case {i}"));
        assert_eq!(status_of(&resp), *status, "case {i}: {resp}");
        let first = resp.lines().next().unwrap_or("");
        assert!(
            first.to_lowercase().contains(&reason.to_lowercase()),
            "case {i}: reason {first:?} lacks {reason:?}"
        );
    }
    // Garbage is dropped, not answered, and does not hurt.
    c.send(b"\x00\x01garbage\xff\xfe");
    c.send(b"INVITE");
    let resp = c
        .request(&options(p, "after"))
        .expect("server stopped answering");
    assert_eq!(status_of(&resp), 200);
    let allow = header(&resp, "Allow").unwrap();
    assert!(
        allow.contains("INVITE") && allow.contains("REGISTER"),
        "{allow}"
    );
    assert!(header(&resp, "Accept").unwrap().contains("application/sdp"));
    assert!(header(&resp, "Supported").is_some());

    // Burst: 2,000 OPTIONS as fast as one socket sends them.
    let burst = SipClient::new(server.sip);
    burst
        .sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let bp = burst.port();
    let sender = burst.sock.try_clone().unwrap();
    let target = server.sip;
    let t = std::thread::spawn(move || {
        for i in 0..2000 {
            sender
                .send_to(options(bp, &format!("b{i}")).as_bytes(), target)
                .unwrap();
        }
    });
    let mut answered = std::collections::HashSet::new();
    while answered.len() < 2000 {
        match burst.recv() {
            Some(r) if status_of(&r) == 200 => {
                answered.insert(header(&r, "Call-ID").unwrap_or("").to_owned());
            }
            Some(_) => {}
            None => break,
        }
    }
    t.join().unwrap();
    let seen = server.metric("palaver_sip_requests_total{method=\"OPTIONS\"}");
    assert_eq!(
        answered.len(),
        2000,
        "OPTIONS lost in a 2,000 burst (server counted {seen:?})"
    );
}

/// OPTIONS over TCP and over TLS with a configured certificate and key.
#[test]
fn options_over_tcp_and_tls() {
    let dir = TempDir::new("tls");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--sip-tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // TCP
    assert_eq!(
        server.sip_tcp.port(),
        server.sip.port(),
        "TCP and UDP share the SIP port"
    );
    let mut tcp = std::net::TcpStream::connect(server.sip_tcp).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(
        options(5999, "tcp")
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
            .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 2048];
    let n = tcp.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));

    // TLS
    let tls_addr = server.sip_tls.expect("TLS listener");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let sock = std::net::TcpStream::connect(tls_addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(
        options(5999, "tls")
            .replace("SIP/2.0/UDP", "SIP/2.0/TLS")
            .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 2048];
    let n = tls.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));
}

fn register_msg(port: u16, cseq: u32, auth: Option<&str>, expires: u32) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKreg{cseq}x{port};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1003@127.0.0.1>;tag=r{port}\r\nTo: <sip:1003@127.0.0.1>\r\n\
         Call-ID: reg-{port}@test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1003@127.0.0.1:{port}>\r\n\
         Expires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// P1: SHA-256 digest (RFC 8760) works; too-short expiry gets 423 with
/// Min-Expires; un-register removes the binding.
#[test]
fn p1_sha256_digest_min_expires_and_unregister() {
    let dir = TempDir::new("sha256");
    let server = Server::start(dir.path(), &["--auth-algorithms", "SHA-256,MD5"]);
    let c = SipClient::new(server.sip);
    let p = c.port();
    let r = c.request(&register_msg(p, 1, None, 3600)).unwrap();
    assert_eq!(status_of(&r), 401);
    let challenges = all_headers(&r, "WWW-Authenticate");
    assert!(challenges.iter().any(|v| v.contains("SHA-256")), "{r}");
    assert!(challenges.iter().any(|v| v.contains("MD5")), "{r}");
    let sha = challenges.iter().find(|v| v.contains("SHA-256")).unwrap();
    let ch = Challenge::parse(sha).unwrap();
    let creds = |nc: u32| {
        Credentials::answer(
            &ch,
            "REGISTER",
            "sip:127.0.0.1",
            "1003",
            PASSWORD,
            nc,
            "cnonce",
        )
        .to_header_value()
    };
    let r = c.request(&register_msg(p, 2, Some(&creds(1)), 30)).unwrap();
    assert_eq!(status_of(&r), 423, "{r}");
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    let r = c
        .request(&register_msg(p, 3, Some(&creds(2)), 600))
        .unwrap();
    assert_eq!(status_of(&r), 200, "{r}");
    assert!(header(&r, "Contact").unwrap().contains("expires="), "{r}");
    let r = c.request(&register_msg(p, 4, Some(&creds(3)), 0)).unwrap();
    assert_eq!(status_of(&r), 200, "{r}");
    assert!(header(&r, "Contact").is_none(), "binding still listed: {r}");
}

/// P1: after 10 bad passwords in a minute a source gets 403 for a cooling
/// period, even with the right password; the failures are logged.
#[test]
fn p1_failed_authentications_are_rate_limited_per_source() {
    let dir = TempDir::new("lockout");
    let server = Server::start(dir.path(), &[]);
    let c = SipClient::new(server.sip);
    let p = c.port();
    let answer = |resp: &str, pw: &str| {
        let v = all_headers(resp, "WWW-Authenticate")
            .into_iter()
            .find(|v| v.contains("MD5"))
            .unwrap()
            .to_owned();
        let ch = Challenge::parse(&v).unwrap();
        Credentials::answer(&ch, "REGISTER", "sip:127.0.0.1", "1003", pw, 1, "c").to_header_value()
    };
    let first = c.request(&register_msg(p, 1, None, 3600)).unwrap();
    for i in 0..10 {
        let r = c
            .request(&register_msg(
                p,
                2 + i,
                Some(&answer(&first, "wrong")),
                3600,
            ))
            .unwrap();
        assert_eq!(status_of(&r), 403, "{r}");
    }
    let r = c
        .request(&register_msg(p, 20, Some(&answer(&first, PASSWORD)), 3600))
        .unwrap();
    assert_eq!(
        status_of(&r),
        403,
        "right password accepted during the cooling period: {r}"
    );
    assert!(r.lines().next().unwrap().contains("too many failed"), "{r}");
    assert!(server.log_text().contains("authentication failed"));
}

/// P2: nothing unauthenticated reaches a line: an INVITE without
/// credentials to an extension is challenged with 407.
#[test]
fn p2_unauthenticated_invite_is_challenged() {
    let dir = TempDir::new("407");
    let server = Server::start(dir.path(), &[]);
    let c = SipClient::new(server.sip);
    let p = c.port();
    let invite = format!(
        "INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKinv1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:stranger@127.0.0.1>;tag=s1\r\nTo: <sip:1002@127.0.0.1>\r\n\
         Call-ID: inv1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:stranger@127.0.0.1:{p}>\r\nContent-Length: 0\r\n\r\n"
    );
    let r = c.request(&invite).unwrap();
    assert_eq!(status_of(&r), 407, "{r}");
    assert!(header(&r, "Proxy-Authenticate").is_some());
}

/// P2/P3: a call from a trunk to one of its public numbers reaches the line
/// the number is routed to, without authentication.
#[test]
fn p3_trunk_call_to_a_did_reaches_its_line() {
    if !have("sipp") {
        return;
    }
    let dir = TempDir::new("did");
    let mut server = Server::start(dir.path(), &[]);
    assert_eq!(server.stop(), 0);
    // Route a public number to line 1002 on the demo's `local` trunk.
    let data = server.data.clone();
    let rt = tokio_rt();
    rt.block_on(async {
        let store = palaver_store::Store::open(None, &data).await.unwrap();
        let line = store.line_by_extension("1002").await.unwrap().unwrap();
        let trunk = store.trunk_by_name("local").await.unwrap().unwrap();
        store
            .create_number(&palaver_store::NumberFields {
                number: "+3315551000".into(),
                destination: palaver_store::Destination::Line(line.id),
                trunk_id: Some(trunk.id),
                description: "test DID".into(),
            })
            .await
            .unwrap();
        store.close().await;
    });
    let mut server = Server::start_on(dir.path(), data, &[]);
    let uas_port = free_udp_port();
    assert_eq!(
        sipp_register(dir.path(), server.sip, "1002", uas_port, PASSWORD).code,
        0
    );
    let _uas = sipp_background(
        dir.path(),
        "uas.xml",
        &[s("-i"), s("127.0.0.1"), s("-p"), uas_port.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let run = sipp(
        dir.path(),
        "uac_trunk.xml",
        &[
            server.sip.to_string(),
            s("-s"),
            s("+3315551000"),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            free_udp_port().to_string(),
            s("-d"),
            s("200"),
            s("-m"),
            s("1"),
            s("-timeout"),
            s("20"),
            s("-timeout_error"),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.output, server.log_text());
    assert_eq!(run.successful, 1);
    assert_eq!(server.stop(), 0);
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
