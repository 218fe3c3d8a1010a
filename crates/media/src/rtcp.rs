//! RTCP sender and receiver reports (RFC 3550 §6.4) and the bits of SDES
//! and BYE needed to build and read a valid compound packet.
//!
//! Meet first: [`RtcpPacket`] (one parsed packet of a compound datagram,
//! iterated with [`parse_compound`]), [`ReportBlock`] (loss, jitter, LSR and
//! DLSR about one source), [`SenderInfo`], and the writers
//! [`write_report`] / [`write_sdes_cname`]. [`round_trip`] turns an echoed
//! LSR/DLSR pair into a round-trip time.
//!
//! Not here: when to send reports (the room schedules them) and RTP.

use std::time::Duration;

use crate::error::{Error, Result};

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;

/// Sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp.
    pub ntp: u64,
    /// RTP timestamp matching `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Loss since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received (0 if none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Up to 31 report blocks, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for ReportBlocks<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let b = self.data.get(..24)?;
        self.data = &self.data[24..];
        let be32 = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let lost24 = (be32(4) & 0x00FF_FFFF) as i32;
        Some(ReportBlock {
            ssrc: be32(0),
            fraction_lost: b[4],
            // Sign-extend 24 bits.
            cumulative_lost: (lost24 << 8) >> 8,
            extended_highest_seq: be32(8),
            jitter: be32(12),
            last_sr: be32(16),
            delay_since_last_sr: be32(20),
        })
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport {
        /// Sender's SSRC.
        ssrc: u32,
        /// Its sending statistics.
        info: SenderInfo,
        /// Its reports about the sources it receives.
        reports: ReportBlocks<'a>,
    },
    /// Receiver report.
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Its reports.
        reports: ReportBlocks<'a>,
    },
    /// Source description (contents not interpreted).
    SourceDescription,
    /// Goodbye from these sources (count only; we do not act on the list).
    Bye {
        /// Number of sources saying goodbye.
        count: u8,
    },
    /// Anything else (APP, feedback...), by payload type.
    Other(u8),
}

/// Iterates the packets of a compound datagram. Each item is a `Result`:
/// after the first error the iterator stops.
pub fn parse_compound(buf: &[u8]) -> Compound<'_> {
    Compound {
        rest: buf,
        failed: false,
    }
}

/// Iterator returned by [`parse_compound`].
#[derive(Debug)]
pub struct Compound<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let r = parse_one(self.rest);
        match r {
            Ok((pkt, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(pkt))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn parse_one(buf: &[u8]) -> Result<(RtcpPacket<'_>, usize)> {
    if buf.len() < 4 {
        return Err(Error::Truncated);
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(Error::BadVersion(version));
    }
    let padding = buf[0] & 0x20 != 0;
    let count = buf[0] & 0x1F;
    let pt = buf[1];
    let len = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
    let whole = buf.get(..len).ok_or(Error::Truncated)?;
    let mut body_end = len;
    if padding {
        let pad = usize::from(whole[len - 1]);
        if pad == 0 || pad > len - 4 {
            return Err(Error::Malformed("bad RTCP padding"));
        }
        body_end -= pad;
    }
    let body = &whole[4..body_end];
    let be32 = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let pkt = match pt {
        PT_SR => {
            let need = 24 + 24 * usize::from(count);
            if body.len() < need {
                return Err(Error::Truncated);
            }
            RtcpPacket::SenderReport {
                ssrc: be32(body, 0),
                info: SenderInfo {
                    ntp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                    rtp_timestamp: be32(body, 12),
                    packet_count: be32(body, 16),
                    octet_count: be32(body, 20),
                },
                reports: ReportBlocks {
                    data: &body[24..need],
                },
            }
        }
        PT_RR => {
            let need = 4 + 24 * usize::from(count);
            if body.len() < need {
                return Err(Error::Truncated);
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0),
                reports: ReportBlocks {
                    data: &body[4..need],
                },
            }
        }
        PT_SDES => RtcpPacket::SourceDescription,
        PT_BYE => RtcpPacket::Bye { count },
        other => RtcpPacket::Other(other),
    };
    Ok((pkt, len))
}

/// Writes an SR (when `sender` is given) or RR with `blocks` (at most 31).
/// Returns bytes written.
pub fn write_report(
    buf: &mut [u8],
    ssrc: u32,
    sender: Option<&SenderInfo>,
    blocks: &[ReportBlock],
) -> Result<usize> {
    if blocks.len() > 31 {
        return Err(Error::Malformed("more than 31 report blocks"));
    }
    let need = 8 + if sender.is_some() { 20 } else { 0 } + 24 * blocks.len();
    if buf.len() < need {
        return Err(Error::BufferTooSmall { need });
    }
    buf[0] = 0x80 | blocks.len() as u8;
    buf[1] = if sender.is_some() { PT_SR } else { PT_RR };
    buf[2..4].copy_from_slice(&((need / 4 - 1) as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut pos = 8;
    if let Some(s) = sender {
        buf[pos..pos + 8].copy_from_slice(&s.ntp.to_be_bytes());
        buf[pos + 8..pos + 12].copy_from_slice(&s.rtp_timestamp.to_be_bytes());
        buf[pos + 12..pos + 16].copy_from_slice(&s.packet_count.to_be_bytes());
        buf[pos + 16..pos + 20].copy_from_slice(&s.octet_count.to_be_bytes());
        pos += 20;
    }
    for b in blocks {
        buf[pos..pos + 4].copy_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        buf[pos + 4..pos + 8]
            .copy_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        buf[pos + 8..pos + 12].copy_from_slice(&b.extended_highest_seq.to_be_bytes());
        buf[pos + 12..pos + 16].copy_from_slice(&b.jitter.to_be_bytes());
        buf[pos + 16..pos + 20].copy_from_slice(&b.last_sr.to_be_bytes());
        buf[pos + 20..pos + 24].copy_from_slice(&b.delay_since_last_sr.to_be_bytes());
        pos += 24;
    }
    Ok(pos)
}

/// Writes an SDES packet with one CNAME item (required in every compound
/// packet). `cname` longer than 255 bytes is an error.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize> {
    if cname.len() > 255 {
        return Err(Error::Malformed("CNAME longer than 255 bytes"));
    }
    // SSRC + type + len + text + at least one null, padded to 4.
    let chunk = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let need = 4 + chunk;
    if buf.len() < need {
        return Err(Error::BufferTooSmall { need });
    }
    buf[0] = 0x81;
    buf[1] = PT_SDES;
    buf[2..4].copy_from_slice(&((need / 4 - 1) as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8] = 1; // CNAME
    buf[9] = cname.len() as u8;
    buf[10..10 + cname.len()].copy_from_slice(cname);
    buf[10 + cname.len()..need].fill(0);
    Ok(need)
}

/// Middle 32 bits of a 64-bit NTP timestamp (the LSR format).
pub fn ntp_mid32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Converts a duration to the 1/65536 s unit of DLSR.
pub fn to_q16(d: Duration) -> u32 {
    ((d.as_nanos() << 16) / 1_000_000_000).min(u128::from(u32::MAX)) as u32
}

/// Round trip from a report block received at NTP time `now_ntp` (RFC 3550
/// §6.4.1: A − LSR − DLSR). `None` when the block carries no LSR or the
/// result is negative (clock nonsense from the peer).
pub fn round_trip(now_ntp: u64, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let a = ntp_mid32(now_ntp);
    let rtt = a
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(Duration::from_nanos((u64::from(rtt) * 1_000_000_000) >> 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 12,
            cumulative_lost: -3,
            extended_highest_seq: 70000,
            jitter: 55,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 0x10000,
        }
    }

    #[test]
    fn sr_sdes_compound_round_trip() {
        let mut buf = [0u8; 256];
        let info = SenderInfo {
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 9,
            packet_count: 10,
            octet_count: 11,
        };
        let n = write_report(&mut buf, 77, Some(&info), &[block(1), block(2)]).unwrap();
        let m = write_sdes_cname(&mut buf[n..], 77, b"palaver").unwrap();
        let pkts: Vec<_> = parse_compound(&buf[..n + m])
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(pkts.len(), 2);
        match pkts[0] {
            RtcpPacket::SenderReport {
                ssrc,
                info: i,
                reports,
            } => {
                assert_eq!(ssrc, 77);
                assert_eq!(i, info);
                let r: Vec<_> = reports.collect();
                assert_eq!(r, vec![block(1), block(2)]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pkts[1], RtcpPacket::SourceDescription);
    }

    #[test]
    fn rr_round_trip() {
        let mut buf = [0u8; 64];
        let n = write_report(&mut buf, 5, None, &[block(9)]).unwrap();
        let p = parse_compound(&buf[..n]).next().unwrap().unwrap();
        assert!(matches!(p, RtcpPacket::ReceiverReport { ssrc: 5, .. }));
    }

    #[test]
    fn rtt_from_lsr_dlsr() {
        // SR sent at NTP 100.0 s, peer held it 0.25 s, we receive at 100.5 s.
        let sent = 100u64 << 32;
        let b = ReportBlock {
            last_sr: ntp_mid32(sent),
            delay_since_last_sr: to_q16(Duration::from_millis(250)),
            ..Default::default()
        };
        let rtt = round_trip(sent + (1u64 << 31), &b).unwrap();
        assert!((rtt.as_secs_f64() - 0.25).abs() < 0.001, "{rtt:?}");
        assert_eq!(round_trip(sent, &ReportBlock::default()), None);
    }

    #[test]
    fn truncated_is_error() {
        let mut buf = [0u8; 64];
        let n = write_report(&mut buf, 5, None, &[block(9)]).unwrap();
        assert!(parse_compound(&buf[..n - 1]).next().unwrap().is_err());
    }

    fn arb_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..0x80_0000,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr,
                )| ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr,
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            for p in parse_compound(&data) {
                if let Ok(RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. }) = p {
                    let _ = reports.count();
                }
            }
        }

        #[test]
        fn report_round_trip(ssrc in any::<u32>(), sr in any::<bool>(), ntp in any::<u64>(), blocks in proptest::collection::vec(arb_block(), 0..31)) {
            let info = SenderInfo { ntp, rtp_timestamp: 1, packet_count: 2, octet_count: 3 };
            let mut buf = vec![0u8; 1024];
            let n = write_report(&mut buf, ssrc, sr.then_some(&info), &blocks).unwrap();
            let p = parse_compound(&buf[..n]).next().unwrap().unwrap();
            let (got_ssrc, got): (u32, Vec<ReportBlock>) = match p {
                RtcpPacket::SenderReport { ssrc, info: i, reports } => { prop_assert!(sr); prop_assert_eq!(i, info); (ssrc, reports.collect()) }
                RtcpPacket::ReceiverReport { ssrc, reports } => { prop_assert!(!sr); (ssrc, reports.collect()) }
                other => { prop_assert!(false, "{:?}", other); unreachable!() }
            };
            prop_assert_eq!(got_ssrc, ssrc);
            prop_assert_eq!(got, blocks);
        }
    }
}
