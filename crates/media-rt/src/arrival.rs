//! When a datagram really arrived: the kernel's receive timestamp, on the
//! `Instant` timeline the media core runs on.
//!
//! Meet first: [`enable_stamps`] (asks the kernel to stamp every datagram
//! a socket receives, `SO_TIMESTAMPNS`), [`recv_stamped`] (reads one
//! datagram with its stamp through `recvmsg`) and [`ClockAnchor`] (turns a
//! `CLOCK_REALTIME` stamp into an `Instant`).
//!
//! Why. The jitter buffer learns the network's jitter from arrival times.
//! A worker that was descheduled for 80 ms reads a pile of packets at once;
//! stamped with the read time they all look late by up to 80 ms and the
//! buffer grows for jitter that never was. The kernel stamps a datagram
//! when it is queued to the socket, which is the arrival that matters.
//!
//! Clocks. Linux stamps UDP receives in `CLOCK_REALTIME` only (there is no
//! monotonic software receive stamp), so each read batch takes an anchor —
//! `Instant::now()` and `CLOCK_REALTIME` read back to back — and a stamp
//! becomes `anchor.instant − (anchor.realtime − stamp)`. A stamp older than
//! [`MAX_AGE`] or from the future (the wall clock was stepped) is not
//! trusted: the caller falls back to the read time, as it does when the
//! platform gives no stamp at all.
//!
//! Not here: batching (one `recvmsg` per datagram), sending.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

/// Oldest stamp believed: older ones mean the wall clock was stepped
/// (a packet does not wait in a socket that long while the worker runs).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(2);

/// One datagram read from a socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    /// Bytes written at the start of the buffer.
    pub len: usize,
    /// Sender.
    pub from: SocketAddr,
    /// Kernel receive time, nanoseconds of `CLOCK_REALTIME`, if stamped.
    pub stamp: Option<i128>,
}

/// Asks the kernel to stamp the datagrams `socket` receives. Returns
/// whether it agreed (stamps then come with [`recv_stamped`]).
#[cfg(target_os = "linux")]
pub(crate) fn enable_stamps(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: valid fd for the socket's lifetime; the option value is a
    // c_int whose size we pass.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Elsewhere: no stamps; the read time is used.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_stamps(_socket: &UdpSocket) -> bool {
    false
}

/// Reads one datagram (non-blocking, as the socket is) with its kernel
/// receive stamp when the socket has them enabled.
#[cfg(target_os = "linux")]
pub(crate) fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    use std::os::fd::AsRawFd;
    // SAFETY: sockaddr_storage and msghdr are plain C structs for which
    // all-zero bytes are a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` refers to a live local or to `buf`,
    // with the lengths set above.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = socket_addr(&addr, msg.msg_namelen).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address")
    })?;
    let mut stamp = None;
    // SAFETY: the kernel filled `msg_controllen` bytes of `control`; the
    // CMSG_* helpers walk only within them, and each stamp is read
    // unaligned from inside its header's data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_TIMESTAMPNS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (c.cmsg_len as usize).saturating_sub(data as usize - cmsg as usize);
                // 64-bit seconds and nanoseconds (64-bit targets, and
                // 32-bit ones with 64-bit time), else two 32-bit fields.
                if len >= 16 {
                    let sec = std::ptr::read_unaligned(data.cast::<i64>());
                    let nsec = std::ptr::read_unaligned(data.add(8).cast::<i64>());
                    stamp = Some(i128::from(sec) * 1_000_000_000 + i128::from(nsec));
                } else if len >= 8 {
                    let sec = std::ptr::read_unaligned(data.cast::<i32>());
                    let nsec = std::ptr::read_unaligned(data.add(4).cast::<i32>());
                    stamp = Some(i128::from(sec) * 1_000_000_000 + i128::from(nsec));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Datagram {
        len: n as usize,
        from,
        stamp,
    })
}

/// Elsewhere: a plain read, no stamp.
#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    let (len, from) = socket.recv_from(buf)?;
    Ok(Datagram {
        len,
        from,
        stamp: None,
    })
}

#[cfg(target_os = "linux")]
fn socket_addr(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match i32::from(addr.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Nanoseconds of `CLOCK_REALTIME` now.
fn realtime_now() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// A pair of readings of the two clocks, taken together, to carry kernel
/// stamps over to `Instant`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockAnchor {
    instant: Instant,
    realtime: i128,
}

impl ClockAnchor {
    /// Reads both clocks. The realtime reading is bracketed by two
    /// `Instant` readings and paired with their midpoint, so a preemption
    /// between the reads shows up (and is retried) instead of skewing
    /// every stamp of the batch.
    pub(crate) fn now() -> Self {
        let mut best: Option<(Duration, Self)> = None;
        for _ in 0..3 {
            let before = Instant::now();
            let realtime = realtime_now();
            let after = Instant::now();
            let spread = after - before;
            let anchor = Self {
                instant: before + spread / 2,
                realtime,
            };
            if spread < Duration::from_micros(5) {
                return anchor;
            }
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, anchor));
            }
        }
        // Three preempted readings in a row: the least skewed will do.
        best.map_or_else(
            || Self {
                instant: Instant::now(),
                realtime: realtime_now(),
            },
            |(_, a)| a,
        )
    }

    /// The `Instant` at which the kernel stamped a datagram, or `None` when
    /// the stamp cannot be right (the wall clock moved under us). Takes a
    /// fresh anchor when the stamp is newer than the current one.
    pub(crate) fn instant_of(&mut self, stamp: i128) -> Option<Instant> {
        if stamp > self.realtime {
            *self = Self::now();
        }
        let age = self.realtime - stamp;
        if age < 0 {
            // Still in the future: the clock was stepped back.
            return None;
        }
        let age = Duration::from_nanos(u64::try_from(age).ok()?);
        if age > MAX_AGE {
            return None;
        }
        self.instant.checked_sub(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, std::net::UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        (rx, tx)
    }

    /// The worker's read path reports when a datagram reached the socket,
    /// not when it was read: packets sent around a marker instant read
    /// back stamped before and after it, although both are read long after.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_stamp_is_the_arrival_not_the_read() {
        let (rx, tx) = pair();
        assert!(enable_stamps(&rx));
        let to = rx.local_addr().unwrap();
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink_addr = sink.local_addr().unwrap();
        let sent_before = Instant::now();
        tx.send_to(b"first", to).unwrap();
        // Let real time pass by doing work, not by waiting: a few hundred
        // datagrams to another socket take well over 100 µs.
        for _ in 0..300 {
            tx.send_to(&[0u8; 200], sink_addr).unwrap();
        }
        let marker = Instant::now();
        for _ in 0..300 {
            tx.send_to(&[0u8; 200], sink_addr).unwrap();
        }
        tx.send_to(b"second", to).unwrap();
        let read_from = Instant::now();

        let mut buf = [0u8; 64];
        let mut anchor = ClockAnchor::now();
        let mut arrivals = Vec::new();
        for want in [&b"first"[..], b"second"] {
            let d = recv_stamped(&rx, &mut buf).unwrap();
            assert_eq!(&buf[..d.len], want);
            assert_eq!(d.from, tx.local_addr().unwrap());
            let stamp = d.stamp.expect("kernel stamp present");
            arrivals.push(anchor.instant_of(stamp).expect("plausible stamp"));
        }
        // The conversion is good to a few µs; the gaps are far larger.
        let slop = Duration::from_micros(20);
        assert!(marker - sent_before > 5 * slop, "too fast a machine");
        assert!(
            arrivals[0] + slop >= sent_before,
            "{:?}",
            sent_before - arrivals[0]
        );
        assert!(arrivals[0] < marker - slop, "first stamped at the read");
        assert!(arrivals[1] > marker + slop, "second before it was sent");
        assert!(arrivals[1] <= read_from + slop);
        assert!(arrivals[1] < Instant::now());
        drop(sink);
    }

    #[test]
    fn without_stamps_enabled_there_is_none() {
        let (rx, tx) = pair();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let d = recv_stamped(&rx, &mut buf).unwrap();
        assert_eq!(d.len, 1);
        assert_eq!(d.stamp, None);
        // Nothing more: a non-blocking read says so.
        let e = recv_stamped(&rx, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn implausible_stamps_are_refused() {
        let mut a = ClockAnchor::now();
        let now = a.realtime;
        assert!(a.instant_of(now - 3_000_000_000).is_none(), "3 s old");
        assert!(
            a.instant_of(now + 60_000_000_000).is_none(),
            "a minute ahead"
        );
        let now = a.realtime;
        let t = a.instant_of(now - 10_000_000).unwrap();
        let ms = (a.instant - t).as_secs_f64() * 1000.0;
        assert!((ms - 10.0).abs() < 0.001, "{ms}");
    }
}
