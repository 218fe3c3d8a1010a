//! `reflector`: the floor to compare the server with. It binds N UDP
//! sockets on consecutive loopback ports and sends every datagram straight
//! back to where it came from, from the socket that received it — the
//! same packet rate and the same number of sockets as a bridge serving N
//! participants, with no processing at all. Batched `recvmmsg`/`sendmmsg`
//! on epoll, a few threads; it runs until killed.

use std::os::fd::AsRawFd;

use anyhow::{Context, bail};
use clap::Parser;
use palaver_loadgen::sys::{self, Destination, Epoll, RecvBatch, SendBatch};

#[derive(Parser, Debug)]
#[command(about = "UDP reflector: echoes every datagram back to its sender")]
struct Args {
    /// First address to bind; the next ports follow. Port 0: every
    /// socket takes a free port of the system's choosing (the ready file
    /// lists them), which cannot collide with anyone else's range.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Number of sockets.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Worker threads (sockets are shared out round-robin).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Written (atomically) once every socket is bound:
    /// `{"ip":…,"ports":[…],"pid":…}` (for `loadgen --reflector-ready`).
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        bail!("the reflector binds loopback addresses only");
    }
    let _ = sys::raise_open_files_limit();
    let threads = args.threads.clamp(1, 64);
    let mut groups: Vec<Vec<std::net::UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    let mut ports = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let port = if args.listen.port() == 0 {
            0
        } else {
            u16::try_from(usize::from(args.listen.port()) + i)
                .context("port range ends past 65535")?
        };
        let addr = std::net::SocketAddr::new(args.listen.ip(), port);
        let s = sys::udp_socket(addr, 0).with_context(|| format!("binding {addr}"))?;
        ports.push(s.local_addr()?.port());
        groups[i % threads].push(s);
    }
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        let body = serde_json::json!({
            "ip": args.listen.ip().to_string(),
            "ports": ports,
            "pid": std::process::id(),
        })
        .to_string();
        std::fs::write(&tmp, body).context("writing the ready file")?;
        std::fs::rename(&tmp, path).context("writing the ready file")?;
    }
    let handles: Vec<_> = groups
        .into_iter()
        .map(|sockets| std::thread::spawn(move || reflect(sockets)))
        .collect();
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("a reflector thread panicked"),
        }
    }
    Ok(())
}

fn reflect(sockets: Vec<std::net::UdpSocket>) -> anyhow::Result<()> {
    let epoll = Epoll::new()?;
    for (i, s) in sockets.iter().enumerate() {
        epoll.add(s.as_raw_fd(), i as u64)?;
    }
    let mut events = sys::events(256);
    let mut recv = RecvBatch::new(16);
    let mut send = SendBatch::new(16);
    loop {
        let n = epoll.wait(&mut events, -1)?;
        for ev in &events[..n] {
            let Some(s) = sockets.get(ev.u64 as usize) else {
                continue;
            };
            let fd = s.as_raw_fd();
            let k = recv.recv(fd)?;
            for i in 0..k {
                if let Some(p) = recv.get(i)
                    && let Some(to) = Destination::new(p.from)
                {
                    send.push(p.data, &to);
                }
            }
            send.flush(fd)?;
        }
    }
}
