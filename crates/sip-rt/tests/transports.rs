//! The transports on loopback: UDP (including a 2,000-request burst), TCP
//! and TLS deliver parsed messages and carry responses back.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use palaver_sip::{Message, Transmit, Transport};
use palaver_sip_rt::{SipTransports, TlsConfig, TransportConfig, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn options(branch: u32, transport: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK{branch}\r\n\
         From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c{branch}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn next_message(rx: &mut mpsc::Receiver<TransportEvent>) -> palaver_sip_rt::Inbound {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(TransportEvent::Message(m))) => return *m,
            Ok(Some(TransportEvent::Closed(_))) => continue,
            other => panic!("no message: {other:?}"),
        }
    }
}

#[tokio::test]
async fn udp_burst_of_2000_is_not_lost() {
    let cfg = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        udp_recv_buffer: 8 << 20,
        ..Default::default()
    };
    let (t, mut rx) = SipTransports::bind(&cfg).await.unwrap();
    let server = t.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..2000 {
            client.send_to(&options(i, "UDP"), server).unwrap();
        }
        client
    });
    let mut got = 0;
    while got < 2000 {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(TransportEvent::Message(m))) => {
                assert!(m.message.is_ok());
                got += 1;
            }
            _ => break,
        }
    }
    let client = sender.join().unwrap();
    assert_eq!(got, 2000, "datagrams lost in the burst");
    // And a response goes back to the sender.
    let peer = palaver_sip::Peer::udp(client.local_addr().unwrap());
    t.send(Transmit {
        peer,
        data: b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
    });
    let mut buf = [0u8; 64];
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
}

#[tokio::test]
async fn tcp_frames_messages_and_answers_on_the_same_connection() {
    let cfg = TransportConfig {
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..Default::default()
    };
    let (t, mut rx) = SipTransports::bind(&cfg).await.unwrap();
    let server = t.local_addr(Transport::Tcp).unwrap();
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    // Two messages in one write, then a keep-alive ping, then a message split in two.
    let mut both = options(1, "TCP");
    both.extend_from_slice(&options(2, "TCP"));
    s.write_all(&both).await.unwrap();
    let a = next_message(&mut rx).await;
    let b = next_message(&mut rx).await;
    assert!(matches!(a.message, Ok(Message::Request(_))));
    assert!(matches!(b.message, Ok(Message::Request(_))));
    assert_eq!(a.peer.conn, b.peer.conn);
    s.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    s.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"\r\n");
    let third = options(3, "TCP");
    s.write_all(&third[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.write_all(&third[20..]).await.unwrap();
    let c = next_message(&mut rx).await;
    assert!(c.message.is_ok());
    t.send(Transmit {
        peer: a.peer,
        data: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    });
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"SIP/2.0 200");
}

#[tokio::test]
async fn tls_with_configured_certificate() {
    let dir = std::env::temp_dir().join(format!("palaver-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    let cfg = TransportConfig {
        tls: Some(TlsConfig {
            listen: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            cert: cert_path,
            key: key_path,
        }),
        ..Default::default()
    };
    let (t, mut rx) = SipTransports::bind(&cfg).await.unwrap();
    let server = t.local_addr(Transport::Tls).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(&options(7, "TLS")).await.unwrap();
    let m = next_message(&mut rx).await;
    assert_eq!(m.peer.transport, Transport::Tls);
    assert!(m.message.is_ok());
    t.send(Transmit {
        peer: m.peer,
        data: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    });
    let mut buf = [0u8; 11];
    tls.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"SIP/2.0 200");
    let _ = std::fs::remove_dir_all(&dir);
}
