//! The RTP port range: even RTP ports with RTCP on port + 1, handed out to
//! participants and taken back when they leave.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::error::{Error, Result};

/// Sockets bound for one participant.
#[derive(Debug)]
pub(crate) struct BoundPorts {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
    pub port: u16,
}

/// Which even ports of the range are in use. Guarded by a mutex in the
/// engine; only the control plane and participant teardown touch it.
#[derive(Debug)]
pub(crate) struct PortPool {
    ip: IpAddr,
    low: u16,
    high: u16,
    used: Vec<bool>,
    cursor: usize,
}

impl PortPool {
    pub fn new(ip: IpAddr, low: u16, high: u16) -> Result<Self> {
        // Round the start up to even; need at least one pair.
        let start = low + (low & 1);
        if start == 0 || high < start.saturating_add(1) {
            return Err(Error::BadPortRange { low, high });
        }
        let pairs = usize::from((high - start).div_ceil(2));
        Ok(Self {
            ip,
            low: start,
            high,
            used: vec![false; pairs],
            cursor: 0,
        })
    }

    /// Binds the next free pair (or only the RTP port with rtcp-mux).
    /// Ports another process holds are skipped.
    pub fn bind(&mut self, rtcp_mux: bool) -> Result<BoundPorts> {
        let n = self.used.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if self.used[i] {
                continue;
            }
            let port = self.low + 2 * i as u16;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            let rtcp = if rtcp_mux {
                None
            } else {
                match UdpSocket::bind(SocketAddr::new(self.ip, port + 1)) {
                    Ok(s) => Some(s),
                    Err(_) => continue,
                }
            };
            for s in std::iter::once(&rtp).chain(rtcp.as_ref()) {
                s.set_nonblocking(true).map_err(|source| Error::Io {
                    what: "setting a socket non-blocking",
                    source,
                })?;
            }
            self.used[i] = true;
            self.cursor = (i + 1) % n;
            return Ok(BoundPorts { rtp, rtcp, port });
        }
        Err(Error::PortsExhausted {
            low: self.low,
            high: self.high,
        })
    }

    /// Returns a pair to the pool (after its sockets were closed).
    pub fn release(&mut self, port: u16) {
        if port >= self.low {
            let i = usize::from((port - self.low) / 2);
            if let Some(u) = self.used.get_mut(i) {
                *u = false;
            }
        }
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_released() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        // Find a free range by asking the OS, then use the 20 ports above.
        let probe = UdpSocket::bind((ip, 0)).unwrap();
        let base = probe.local_addr().unwrap().port().min(60000);
        drop(probe);
        let mut pool = PortPool::new(ip, base, base + 20).unwrap();
        let a = pool.bind(false).unwrap();
        assert_eq!(a.port % 2, 0);
        assert_eq!(a.rtp.local_addr().unwrap().port(), a.port);
        assert_eq!(
            a.rtcp.as_ref().unwrap().local_addr().unwrap().port(),
            a.port + 1
        );
        let b = pool.bind(true).unwrap();
        assert!(b.rtcp.is_none());
        assert_eq!(pool.in_use(), 2);
        let port = a.port;
        drop(a);
        pool.release(port);
        assert_eq!(pool.in_use(), 1);
        assert!(PortPool::new(ip, 5000, 5000).is_err());
    }
}
