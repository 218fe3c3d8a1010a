//! The few Linux system calls the runtime needs, wrapped once: epoll, a
//! `timerfd` on `CLOCK_REALTIME`, batched receive with kernel timestamps
//! (`recvmmsg` + `SO_TIMESTAMPNS`), batched send on one socket
//! (`sendmmsg`), `sendto`, the clock, CPU time from `/proc` and the
//! open-files limit.
//!
//! Meet first: [`Epoll`], [`TimerFd`], [`RecvBatch`] and [`SendBatch`].
//! Each `unsafe` block hands the kernel pointers into buffers that the
//! wrapper owns and that outlive the call; that is the whole argument for
//! their soundness, repeated where it matters.
//!
//! Why `CLOCK_REALTIME` everywhere in the media path: `SO_TIMESTAMPNS`
//! stamps packets with that clock, and the arrival stamp is taken by the
//! kernel when the packet is queued, not when a busy loop gets round to
//! reading it. Jitter and delay are therefore not inflated by the load
//! generator's own scheduling.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::marker::Nanos;

/// Largest datagram we read (RTP is far smaller; SIP fits too).
pub const MAX_DATAGRAM: usize = 4096;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Now on `CLOCK_REALTIME`, in nanoseconds since the Unix epoch.
pub fn now() -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An epoll instance (level-triggered).
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for input; `token` comes back in events.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is valid for the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (−1: forever); fills `events` and returns
    /// how many are valid. An interrupted wait returns 0.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is writable for `max` entries for the call.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

/// An empty event array for [`Epoll::wait`].
pub fn events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

/// A one-shot timer on `CLOCK_REALTIME` that becomes readable at an
/// absolute time.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let fd = check(unsafe {
            libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        })?;
        // SAFETY: fresh descriptor, owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires once at `at` (in the past: at once).
    pub fn set_at(&self, at: Nanos) -> io::Result<()> {
        let at = at.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / 1_000_000_000) as libc::time_t,
                tv_nsec: (at % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `spec` is valid for the call; the old value is not wanted.
        check(unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Clears the readable state.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is writable for 8 bytes; EAGAIN is fine and ignored.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }
}

/// Binds a non-blocking UDP socket with kernel receive timestamps and
/// the given buffer sizes (0: leave the default).
pub fn udp_socket(addr: SocketAddr, buffers: usize) -> io::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    let fd = s.as_raw_fd();
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    if buffers > 0 {
        let b = buffers.min(i32::MAX as usize) as i32;
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, b)?;
        set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, b)?;
    }
    Ok(s)
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    ))
}

/// A prepared IPv4 destination for [`send_to`].
#[derive(Clone, Copy)]
pub struct Destination(libc::sockaddr_in);

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Destination({})", from_sockaddr(&self.0))
    }
}

impl Destination {
    /// `None` for IPv6 (the load generator speaks IPv4 loopback only).
    pub fn new(addr: SocketAddr) -> Option<Self> {
        match addr {
            SocketAddr::V4(a) => Some(Self(sockaddr_in(a))),
            SocketAddr::V6(_) => None,
        }
    }
}

/// One datagram to `to`. A full socket buffer is `WouldBlock`.
pub fn send_to(fd: RawFd, data: &[u8], to: &Destination) -> io::Result<()> {
    // SAFETY: `data` and `to` are valid for the call; sizes are passed.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (&to.0 as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One received datagram, borrowed from a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub data: &'a [u8],
    pub from: SocketAddr,
    /// Kernel arrival time (`SO_TIMESTAMPNS`), if the socket has it on.
    pub at: Option<Nanos>,
}

/// Buffers for one `recvmmsg` call of up to `capacity` datagrams.
pub struct RecvBatch {
    bufs: Vec<u8>,
    iovecs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    controls: Vec<[u64; 8]>,
    headers: Vec<libc::mmsghdr>,
    filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecvBatch({} of {})", self.filled, self.headers.len())
    }
}

impl RecvBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let zero_name: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        Self {
            bufs: vec![0; capacity * MAX_DATAGRAM],
            iovecs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                capacity
            ],
            names: vec![zero_name; capacity],
            controls: vec![[0u64; 8]; capacity],
            headers: vec![zero_hdr; capacity],
            filled: 0,
        }
    }

    /// Reads what is queued on `fd` without blocking; returns the count
    /// (0 when nothing was waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.headers.len();
        for i in 0..n {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of::<[u64; 8]>() as _;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every pointer set above points into vectors owned by
        // `self`, which are neither moved nor resized during the call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.filled = 0;
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.filled = r as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`].
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.filled {
            return None;
        }
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(MAX_DATAGRAM);
        let data = &self.bufs[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len];
        Some(Received {
            data,
            from: from_sockaddr(&self.names[i]),
            at: timestamp(&h.msg_hdr),
        })
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received header.
fn timestamp(h: &libc::msghdr) -> Option<Nanos> {
    // SAFETY: the CMSG macros walk the control buffer that the kernel
    // filled for this header; `msg_controllen` bounds the walk.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Datagrams queued for one `sendmmsg` on one socket.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    dests: Vec<libc::sockaddr_in>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    len: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SendBatch({} queued)", self.len)
    }
}

impl SendBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let zero_name: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        Self {
            bufs: vec![Vec::with_capacity(MAX_DATAGRAM); capacity],
            dests: vec![zero_name; capacity],
            iovecs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                capacity
            ],
            headers: vec![zero_hdr; capacity],
            len: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data` for `to`; false when full (flush first).
    pub fn push(&mut self, data: &[u8], to: &Destination) -> bool {
        if self.is_full() {
            return false;
        }
        let b = &mut self.bufs[self.len];
        b.clear();
        b.extend_from_slice(data);
        self.dests[self.len] = to.0;
        self.len += 1;
        true
    }

    /// Sends everything queued on `fd`; returns how many went out. What the
    /// kernel refused (full buffer) is dropped, as a network would.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.len;
        self.len = 0;
        if n == 0 {
            return Ok(0);
        }
        for i in 0..n {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.dests[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: headers[sent..n] point into buffers owned by `self`
            // that stay put during the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[sent..].as_mut_ptr(),
                    (n - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(sent),
                    _ if r == 0 => Ok(sent),
                    _ => Err(e),
                };
            }
            sent += r as usize;
        }
        Ok(sent)
    }
}

/// CPU time used so far, from `/proc/<pid>/stat` (`None`: ourselves).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_s: f64,
    pub system_s: f64,
}

impl CpuTime {
    pub fn total(&self) -> f64 {
        self.user_s + self.system_s
    }

    /// Reads `/proc/self/stat` or `/proc/<pid>/stat`.
    pub fn read(pid: Option<u32>) -> io::Result<CpuTime> {
        let path = match pid {
            Some(p) => format!("/proc/{p}/stat"),
            None => "/proc/self/stat".to_owned(),
        };
        let text = std::fs::read_to_string(path)?;
        parse_stat(&text, clock_ticks()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat format")
        })
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str, ticks_per_s: f64) -> Option<CpuTime> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTime {
        user_s: utime / ticks_per_s,
        system_s: stime / ticks_per_s,
    })
}

/// Jiffies the whole machine spent busy and in total so far, from the
/// aggregate `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineTime {
    pub busy: f64,
    pub total: f64,
}

impl MachineTime {
    pub fn read() -> io::Result<MachineTime> {
        let text = std::fs::read_to_string("/proc/stat")?;
        parse_proc_stat(&text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/stat"))
    }

    /// Busy time between `self` and `later`, in seconds of one core.
    pub fn busy_seconds_until(&self, later: &MachineTime) -> f64 {
        (later.busy - self.busy) / clock_ticks()
    }
}

/// The aggregate `cpu` line: idle and iowait are idle, the rest is busy
/// (guest time is already counted in user).
pub fn parse_proc_stat(text: &str) -> Option<MachineTime> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<f64>>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: f64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some(MachineTime {
        busy: total - idle,
        total,
    })
}

/// Resident set size in KiB from `/proc/<pid>/status` (`VmRSS`).
pub fn rss_kib(pid: Option<u32>) -> io::Result<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Raises the soft open-files limit to the hard one; returns the new
/// soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is valid and writable for the call.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; only the soft limit changes, within the hard one.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 99 1000 50";
        let t = parse_stat(line, 100.0).expect("parses");
        assert!((t.user_s - 2.5).abs() < 1e-9);
        assert!((t.system_s - 0.75).abs() < 1e-9);
        assert!(parse_stat("garbage", 100.0).is_none());
        assert!(parse_stat("1 (x) S 1 2", 100.0).is_none());
    }

    #[test]
    fn proc_stat_busy_and_total() {
        let t = parse_proc_stat("cpu  100 5 50 1000 20 1 4 7 0 0\ncpu0 1 2 3 4\n").expect("parses");
        assert_eq!(t.total, 1187.0);
        assert_eq!(t.busy, 167.0);
        assert!(parse_proc_stat("intr 1 2 3").is_none());
        assert!(MachineTime::read().is_ok());
    }

    #[test]
    fn own_cpu_and_rss_are_readable() {
        let c = CpuTime::read(None).expect("/proc/self/stat");
        assert!(c.total() >= 0.0);
        assert!(rss_kib(None).expect("VmRSS") > 0);
    }

    #[test]
    fn batch_roundtrip_on_loopback_with_timestamps() {
        let a = udp_socket("127.0.0.1:0".parse().expect("addr"), 0).expect("bind");
        let b = udp_socket("127.0.0.1:0".parse().expect("addr"), 0).expect("bind");
        let to = Destination::new(b.local_addr().expect("addr")).expect("v4");
        let mut out = SendBatch::new(8);
        for i in 0..5u8 {
            assert!(out.push(&[i; 20], &to));
        }
        let before = now();
        assert_eq!(out.flush(a.as_raw_fd()).expect("send"), 5);
        send_to(a.as_raw_fd(), &[9; 3], &to).expect("sendto");
        // Loopback delivery is synchronous with the send call, so the
        // datagrams are queued by now.
        let mut batch = RecvBatch::new(16);
        let n = batch.recv(b.as_raw_fd()).expect("recv");
        assert_eq!(n, 6);
        for i in 0..5 {
            let p = batch.get(i).expect("datagram");
            assert_eq!(p.data, &[i as u8; 20]);
            assert_eq!(p.from, a.local_addr().expect("addr"));
            let at = p.at.expect("timestamp");
            assert!(at >= before - 1_000_000 && at <= now() + 1_000_000);
        }
        assert_eq!(batch.get(5).expect("last").data, &[9; 3]);
        assert!(batch.get(6).is_none());
        assert_eq!(batch.recv(b.as_raw_fd()).expect("empty"), 0);
    }

    #[test]
    fn epoll_and_timer() {
        let ep = Epoll::new().expect("epoll");
        let t = TimerFd::new().expect("timerfd");
        ep.add(t.raw(), 42).expect("add");
        t.set_at(now()).expect("arm");
        let mut ev = events(4);
        let n = ep.wait(&mut ev, 1_000).expect("wait");
        assert_eq!(n, 1);
        assert_eq!({ ev[0].u64 }, 42);
        t.drain();
        assert_eq!(ep.wait(&mut ev, 0).expect("wait"), 0);
        ep.remove(t.raw()).expect("remove");
    }
}
