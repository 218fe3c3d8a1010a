//! When a datagram really arrived: the kernel's receive timestamp, on the
//! `Instant` timeline the media core runs on.
//!
//! Meet first: [`enable_stamps`] (asks the kernel to stamp every datagram
//! a socket receives, `SO_TIMESTAMPNS`), [`RecvBatch`] (reads the
//! datagrams a socket holds with their stamps through `recvmmsg`) and
//! [`ClockAnchor`] (turns a
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
//! Not here: sending.

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
/// whether it agreed (stamps then come with [`RecvBatch::recv`]).
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

/// Datagrams read per `recvmmsg`: one per 20 ms is usual, a handful after
/// a stall; more would only cost buffer space.
pub(crate) const BATCH: usize = 8;

/// Largest datagram kept whole (RTP here is far smaller).
pub(crate) const DATAGRAM_BYTES: usize = 2048;

/// What one [`RecvBatch::recv`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    /// Datagrams now in the batch, `0..datagrams` for [`RecvBatch::get`].
    pub datagrams: usize,
    /// The read filled the batch, so the socket may hold more; otherwise
    /// it was read dry.
    pub maybe_more: bool,
}

/// Buffers for reading up to [`BATCH`] datagrams, with their senders and
/// kernel stamps, in one system call.
///
/// Why one call for several: the socket is edge-triggered, so a reader
/// must learn that it is empty. With `recvmsg` that takes a second call
/// that fails with `EAGAIN` after every datagram; `recvmmsg` returns fewer
/// than it was asked for when the queue ran dry, which says the same for
/// free. That halves the reads per packet on the common path.
pub(crate) struct RecvBatch {
    bufs: Box<[[u8; DATAGRAM_BYTES]; BATCH]>,
    got: [Datagram; BATCH],
    #[cfg(target_os = "linux")]
    addrs: [libc::sockaddr_storage; BATCH],
    // u64 elements keep each control buffer aligned for cmsghdr.
    #[cfg(target_os = "linux")]
    controls: [[u64; 8]; BATCH],
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").finish_non_exhaustive()
    }
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        let nowhere = Datagram {
            len: 0,
            from: SocketAddr::from(([0, 0, 0, 0], 0)),
            stamp: None,
        };
        Self {
            bufs: Box::new([[0; DATAGRAM_BYTES]; BATCH]),
            got: [nowhere; BATCH],
            // SAFETY: sockaddr_storage is a plain C struct for which
            // all-zero bytes are a valid value.
            #[cfg(target_os = "linux")]
            addrs: unsafe { std::mem::zeroed() },
            #[cfg(target_os = "linux")]
            controls: [[0; 8]; BATCH],
        }
    }

    /// Datagram `i` of the last read, and its bytes.
    pub(crate) fn get(&self, i: usize) -> (Datagram, &[u8]) {
        let d = self.got[i];
        (d, &self.bufs[i][..d.len])
    }

    /// Reads what the socket holds, up to [`BATCH`] datagrams (non-blocking),
    /// each with its kernel receive stamp when the socket has them enabled.
    /// `WouldBlock` means the socket was empty to begin with.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<Read> {
        use std::os::fd::AsRawFd;
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: DATAGRAM_BYTES,
        });
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are
        // a valid value.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of_val(&self.controls[i]) as _;
        }
        // SAFETY: every pointer in `hdrs` refers to a buffer of `self` or
        // to `iovs`, all alive for the call, with the lengths set above.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let mut kept = 0;
        for (i, h) in hdrs.iter().enumerate().take(n) {
            // A non-IP sender cannot happen on these sockets; skip it.
            let Some(from) = socket_addr(&self.addrs[i], h.msg_hdr.msg_namelen) else {
                continue;
            };
            let len = (h.msg_len as usize).min(DATAGRAM_BYTES);
            // SAFETY: the kernel filled `msg_controllen` bytes of this
            // header's control buffer.
            let stamp = unsafe { stamp_of(&h.msg_hdr) };
            if kept != i {
                let (a, b) = self.bufs.split_at_mut(i);
                a[kept][..len].copy_from_slice(&b[0][..len]);
            }
            self.got[kept] = Datagram { len, from, stamp };
            kept += 1;
        }
        Ok(Read {
            datagrams: kept,
            maybe_more: n == BATCH,
        })
    }

    /// Elsewhere: one plain read, no stamp.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<Read> {
        let (len, from) = socket.recv_from(&mut self.bufs[0])?;
        self.got[0] = Datagram {
            len,
            from,
            stamp: None,
        };
        Ok(Read {
            datagrams: 1,
            maybe_more: true,
        })
    }
}

/// The `SCM_TIMESTAMPNS` stamp in a received message's control data.
///
/// # Safety
/// `msg.msg_control` must point to `msg.msg_controllen` bytes the kernel
/// filled.
#[cfg(target_os = "linux")]
unsafe fn stamp_of(msg: &libc::msghdr) -> Option<i128> {
    let mut stamp = None;
    // SAFETY: the CMSG_* helpers walk only within the control data the
    // caller vouches for, and each stamp is read unaligned from inside its
    // header's data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
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
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    stamp
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
        // A busy machine can delay the loopback delivery (and so the
        // stamp) or preempt this thread between its clock reads by more
        // than the slop; a few attempts ride that out. Stamps taken at the
        // read would fail every attempt.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match stamp_attempt() {
                Ok(()) => return,
                Err(why) => failures.push(why),
            }
        }
        panic!("{failures:?}");
    }

    #[cfg(target_os = "linux")]
    fn stamp_attempt() -> Result<(), String> {
        let (rx, tx) = pair();
        assert!(enable_stamps(&rx));
        let to = rx.local_addr().unwrap();
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink_addr = sink.local_addr().unwrap();
        // Let real time pass by doing work, not by sleeping: datagrams to
        // another socket until `GAP` has passed. The gap dwarfs the slop,
        // which covers the clock conversion even when this thread is
        // preempted between its two clock reads (tests run in parallel).
        const GAP: Duration = Duration::from_millis(5);
        let busy = |from: Instant| {
            while from.elapsed() < GAP {
                let _ = tx.send_to(&[0u8; 200], sink_addr);
            }
        };
        let sent_before = Instant::now();
        tx.send_to(b"first", to).unwrap();
        busy(sent_before);
        let marker = Instant::now();
        busy(marker);
        tx.send_to(b"second", to).unwrap();
        let read_from = Instant::now();

        let mut batch = RecvBatch::new();
        let mut anchor = ClockAnchor::now();
        let mut arrivals = Vec::new();
        let read = batch.recv(&rx).unwrap();
        assert_eq!(
            (read.datagrams, read.maybe_more),
            (2, false),
            "both in one read"
        );
        for (i, want) in [&b"first"[..], b"second"].into_iter().enumerate() {
            let (d, bytes) = batch.get(i);
            assert_eq!(bytes, want);
            assert_eq!(d.from, tx.local_addr().unwrap());
            let stamp = d.stamp.expect("kernel stamp present");
            arrivals.push(anchor.instant_of(stamp).expect("plausible stamp"));
        }
        drop(sink);
        // The conversion is good to a few µs when the thread runs on; the
        // gaps are far larger than the slop allowed for a preemption.
        let slop = Duration::from_micros(500);
        let checks = [
            (
                arrivals[0] + slop >= sent_before,
                "first stamped before it was sent",
            ),
            (arrivals[0] < marker - slop, "first stamped at the read"),
            (
                arrivals[1] > marker + slop,
                "second stamped before it was sent",
            ),
            (
                arrivals[1] <= read_from + slop,
                "second stamped after the read began",
            ),
            (arrivals[1] < Instant::now(), "second stamped in the future"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            None => Ok(()),
            Some((_, why)) => Err(format!(
                "{why}: sent {:?}, marker +{:?}, stamps +{:?} / +{:?}",
                sent_before,
                marker - sent_before,
                arrivals[0].saturating_duration_since(sent_before),
                arrivals[1].saturating_duration_since(sent_before)
            )),
        }
    }

    #[test]
    fn without_stamps_enabled_there_is_none() {
        let (rx, tx) = pair();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx).unwrap().datagrams, 1);
        let (d, bytes) = batch.get(0);
        assert_eq!(bytes, b"x");
        assert_eq!(d.stamp, None);
        // Nothing more: a non-blocking read says so.
        let e = batch.recv(&rx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    /// More than a batch waiting: full batches until a short one, each
    /// datagram whole and in order.
    #[test]
    fn a_backlog_reads_in_batches_until_a_short_one() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        let total = BATCH * 2 + 3;
        for i in 0..total {
            tx.send_to(&[i as u8; 100], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut seen = Vec::new();
        loop {
            let read = batch.recv(&rx).unwrap();
            for i in 0..read.datagrams {
                let (d, bytes) = batch.get(i);
                assert_eq!(d.len, 100);
                assert!(bytes.iter().all(|&b| b == bytes[0]));
                seen.push(bytes[0] as usize);
            }
            if !read.maybe_more {
                break;
            }
        }
        assert_eq!(seen, (0..total).collect::<Vec<_>>());
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
