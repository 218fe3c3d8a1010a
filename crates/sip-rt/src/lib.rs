//! SIP transports: the sockets under the sans-IO SIP layer.
//!
//! [`SipTransports::bind`] opens the configured UDP, TCP and TLS listeners
//! and returns the transports (for sending) and a channel of [`Inbound`]
//! messages (for receiving). Messages arrive already parsed — parsing
//! happens on the receiving thread or connection task, not on the core — and
//! a parse failure arrives as the [`ParseError`] so the core can answer
//! `400` with its reason.
//!
//! - **UDP**: one OS thread per socket reads datagrams into the channel. The
//!   socket asks for a large receive buffer (SO_RCVBUFFORCE when privileged)
//!   because a burst of thousands of requests must not be lost while the core
//!   is busy (issue 2 measured more than half of a 2,000-OPTIONS burst lost
//!   with a default buffer).
//! - **TCP / TLS**: one task per connection cuts the stream into messages
//!   ([`StreamFramer`]), answers CRLF keep-alive pings, and owns a writer
//!   fed by a channel. Responses go back on the connection the request came
//!   in on ([`ConnId`]); requests to an address without a connection open
//!   one (TCP only).
//!
//! This crate knows nothing about transactions; see `palaver-sip`.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palaver_sip::{
    ConnId, Framed, Message, ParseError, Peer, StreamFramer, Transmit, Transport, parse_message,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Where to listen.
#[derive(Debug, Clone, Default)]
pub struct TransportConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Option<TlsConfig>,
    /// Requested UDP receive buffer in bytes.
    pub udp_recv_buffer: usize,
}

/// A TLS listener with its certificate chain and private key (PEM files).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Errors opening transports.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("binding {transport} on {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("TLS certificate or key {path}: {message}")]
    Tls { path: PathBuf, message: String },
}

/// One message from the network.
#[derive(Debug)]
pub struct Inbound {
    pub peer: Peer,
    /// The local address it arrived on.
    pub local: SocketAddr,
    pub message: Result<Message, ParseError>,
}

/// Everything the core receives from the transports.
#[derive(Debug)]
pub enum TransportEvent {
    Message(Box<Inbound>),
    /// A stream connection closed (by either side).
    Closed(ConnId),
}

struct StreamConn {
    peer: SocketAddr,
    transport: Transport,
    writer: mpsc::Sender<Vec<u8>>,
}

struct Shared {
    conns: Mutex<HashMap<ConnId, StreamConn>>,
    next_conn: AtomicU64,
    events: mpsc::Sender<TransportEvent>,
    stopping: AtomicBool,
}

/// The open transports. Cheap to clone; sending never blocks on the network.
#[derive(Clone)]
pub struct SipTransports {
    udp: Arc<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    tcp_local: Vec<SocketAddr>,
    tls_local: Option<SocketAddr>,
    shared: Arc<Shared>,
}

const CHANNEL_DEPTH: usize = 65_536;
const MAX_DATAGRAM: usize = 65_535;

impl SipTransports {
    /// Opens every listener. Must be called inside a tokio runtime.
    pub async fn bind(
        config: &TransportConfig,
    ) -> Result<(SipTransports, mpsc::Receiver<TransportEvent>), TransportError> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let shared = Arc::new(Shared {
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            events: tx,
            stopping: AtomicBool::new(false),
        });

        let mut udp = Vec::new();
        for addr in &config.udp {
            let sock = bind_udp(*addr, config.udp_recv_buffer.max(1 << 20)).map_err(|source| {
                TransportError::Bind {
                    transport: Transport::Udp,
                    addr: *addr,
                    source,
                }
            })?;
            let local = sock.local_addr().map_err(|source| TransportError::Bind {
                transport: Transport::Udp,
                addr: *addr,
                source,
            })?;
            let sock = Arc::new(sock);
            spawn_udp_reader(local, sock.clone(), shared.clone());
            info!(%local, "SIP UDP listening");
            udp.push((local, sock));
        }

        let mut tcp_local = Vec::new();
        for addr in &config.tcp {
            // With port 0, try the port UDP got on the same IP first, so one
            // "host:port" serves both transports as SIP users expect.
            let same_port = udp
                .iter()
                .map(|(u, _): &(SocketAddr, Arc<UdpSocket>)| *u)
                .find(|u| addr.port() == 0 && u.ip() == addr.ip());
            if let Some(u) = same_port
                && let Ok(l) = TcpListener::bind(u).await
            {
                info!(local = %u, "SIP TCP listening");
                tcp_local.push(u);
                tokio::spawn(accept_loop(l, u, None, shared.clone()));
                continue;
            }
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| TransportError::Bind {
                    transport: Transport::Tcp,
                    addr: *addr,
                    source,
                })?;
            let local = l.local_addr().map_err(|source| TransportError::Bind {
                transport: Transport::Tcp,
                addr: *addr,
                source,
            })?;
            info!(%local, "SIP TCP listening");
            tcp_local.push(local);
            tokio::spawn(accept_loop(l, local, None, shared.clone()));
        }

        let mut tls_local = None;
        if let Some(tls) = &config.tls {
            let acceptor = load_tls(tls)?;
            let l = TcpListener::bind(tls.listen)
                .await
                .map_err(|source| TransportError::Bind {
                    transport: Transport::Tls,
                    addr: tls.listen,
                    source,
                })?;
            let local = l.local_addr().map_err(|source| TransportError::Bind {
                transport: Transport::Tls,
                addr: tls.listen,
                source,
            })?;
            info!(%local, "SIP TLS listening");
            tls_local = Some(local);
            tokio::spawn(accept_loop(l, local, Some(acceptor), shared.clone()));
        }

        Ok((
            SipTransports {
                udp: Arc::new(udp),
                tcp_local,
                tls_local,
                shared,
            },
            rx,
        ))
    }

    /// The bound address of the first listener of a transport.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp.first().map(|(a, _)| *a),
            Transport::Tcp => self.tcp_local.first().copied(),
            Transport::Tls => self.tls_local,
        }
    }

    /// Sends bytes. UDP goes out at once; streams are queued on their
    /// connection's writer (a full queue drops the message and logs).
    pub fn send(&self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => {
                let sock = self
                    .udp
                    .iter()
                    .find(|(a, _)| a.is_ipv4() == t.peer.addr.is_ipv4())
                    .or_else(|| self.udp.first());
                if let Some((_, s)) = sock
                    && let Err(e) = s.send_to(&t.data, t.peer.addr)
                {
                    debug!(peer = %t.peer, error = %e, "UDP send failed");
                    metrics::counter!("palaver_sip_send_errors_total", "transport" => "udp")
                        .increment(1);
                }
            }
            Transport::Tcp | Transport::Tls => self.send_stream(t),
        }
    }

    fn send_stream(&self, t: Transmit) {
        let writer = {
            let conns = lock(&self.shared.conns);
            let by_id = t.peer.conn.and_then(|id| conns.get(&id));
            let by_addr = || {
                conns
                    .values()
                    .find(|c| c.peer == t.peer.addr && c.transport == t.peer.transport)
            };
            by_id.or_else(by_addr).map(|c| c.writer.clone())
        };
        match writer {
            Some(w) => {
                if w.try_send(t.data).is_err() {
                    warn!(peer = %t.peer, "stream writer queue full or closed: message dropped");
                }
            }
            None if t.peer.transport == Transport::Tcp => {
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(t.peer.addr).await {
                        Ok(stream) => {
                            let local = stream.local_addr().unwrap_or(t.peer.addr);
                            let writer =
                                register_stream(stream, t.peer.addr, local, Transport::Tcp, shared);
                            let _ = writer.send(t.data).await;
                        }
                        Err(e) => debug!(peer = %t.peer, error = %e, "TCP connect failed"),
                    }
                });
            }
            None => warn!(peer = %t.peer, "no TLS connection to peer: message dropped"),
        }
    }

    /// Stops readers and closes stream connections.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        lock(&self.shared.conns).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (single inserts/removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Ask for the buffer even beyond rmem_max when we are allowed to.
    if sock.set_recv_buffer_size(recv_buffer).is_ok() {
        #[cfg(target_os = "linux")]
        force_recv_buffer(&sock, recv_buffer);
    }
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    let sock: UdpSocket = sock.into();
    // The reader wakes up periodically to notice shutdown.
    sock.set_read_timeout(Some(Duration::from_millis(250)))?;
    Ok(sock)
}

#[cfg(target_os = "linux")]
fn force_recv_buffer(sock: &socket2::Socket, size: usize) {
    use std::os::fd::AsRawFd;
    let v: libc::c_int = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt on a valid fd with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        debug!("SO_RCVBUFFORCE not permitted; receive buffer capped by net.core.rmem_max");
    }
}

fn spawn_udp_reader(local: SocketAddr, sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name(format!("sip-udp-{}", local.port()))
        .spawn(move || {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while !shared.stopping.load(Ordering::Relaxed) {
                let (n, from) = match sock.recv_from(&mut buf) {
                    Ok(v) => v,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        // ICMP errors surface here on Linux; they are not fatal.
                        debug!(error = %e, "UDP receive error");
                        continue;
                    }
                };
                let data = &buf[..n];
                // Keep-alives (RFC 5626 CRLF) carry no message.
                if data.iter().all(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
                    continue;
                }
                // The parser never panics on any input we know of (fuzzed
                // for hours); should one slip through, it must cost one
                // datagram, not the thread that reads every UDP request.
                let message = match std::panic::catch_unwind(|| parse_message(data, true)) {
                    Ok(m) => m,
                    Err(_) => {
                        warn!(%from, len = n, "the SIP parser panicked on a datagram; dropped");
                        metrics::counter!("palaver_sip_parser_panics_total").increment(1);
                        continue;
                    }
                };
                let ev = TransportEvent::Message(Box::new(Inbound {
                    peer: Peer::udp(from),
                    local,
                    message,
                }));
                if shared.events.blocking_send(ev).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "could not start the UDP reader thread");
    }
}

fn load_tls(cfg: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, TransportError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| TransportError::Tls {
            path: p.clone(),
            message: e.to_string(),
        })
    };
    let cert_pem = read(&cfg.cert)?;
    let key_pem = read(&cfg.key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| TransportError::Tls {
            path: cfg.cert.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TransportError::Tls {
            path: cfg.cert.clone(),
            message: "no certificate found".into(),
        });
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| TransportError::Tls {
            path: cfg.key.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TransportError::Tls {
            path: cfg.key.clone(),
            message: "no private key found".into(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls {
            path: cfg.cert.clone(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TransportError::Tls {
            path: cfg.cert.clone(),
            message: e.to_string(),
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

async fn accept_loop(
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                register_stream(stream, peer, local, Transport::Tcp, shared.clone());
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => {
                            register_stream(s, peer, local, Transport::Tls, shared);
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Starts the reader and writer tasks of one connection; returns its writer.
fn register_stream<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    shared: Arc<Shared>,
) -> mpsc::Sender<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let (w_tx, mut w_rx) = mpsc::channel::<Vec<u8>>(1024);
    lock(&shared.conns).insert(
        id,
        StreamConn {
            peer,
            transport,
            writer: w_tx.clone(),
        },
    );
    let (mut rd, mut wr) = tokio::io::split(stream);
    let pong_tx = w_tx.clone();
    tokio::spawn(async move {
        while let Some(data) = w_rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        let peer_id = Peer {
            transport,
            addr: peer,
            conn: Some(id),
        };
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        'read: loop {
            let n = match tokio::time::timeout(Duration::from_secs(600), rd.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_message() {
                    Ok(None) => break,
                    Ok(Some(Framed::KeepAlivePing)) => {
                        let _ = pong_tx.try_send(b"\r\n".to_vec());
                    }
                    Ok(Some(Framed::Message(m))) => {
                        let ev = TransportEvent::Message(Box::new(Inbound {
                            peer: peer_id,
                            local,
                            message: Ok(m),
                        }));
                        if shared.events.send(ev).await.is_err() {
                            break 'read;
                        }
                    }
                    Err(e) => {
                        // The stream cannot be resynchronised: report (so the
                        // core can answer 400) and close.
                        let ev = TransportEvent::Message(Box::new(Inbound {
                            peer: peer_id,
                            local,
                            message: Err(e),
                        }));
                        let _ = shared.events.send(ev).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break 'read;
                    }
                }
            }
        }
        lock(&shared.conns).remove(&id);
        let _ = shared.events.send(TransportEvent::Closed(id)).await;
    });
    w_tx
}
