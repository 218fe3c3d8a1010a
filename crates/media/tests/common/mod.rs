//! A simulated phone and room driver for the room tests: synthetic time,
//! no sockets. Phones encode real audio with the crate's codecs and decode
//! what the room sends them, so checks are made on received audio.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_media::codec::{AudioDecoder, AudioEncoder, Codec};
use palaver_media::room::{
    MediaRoom, PacketKind, ParticipantId, ParticipantSpec, RoomCommand, RoomConfig, Transmit,
};
use palaver_media::rtp::{RtpHeader, RtpPacket, write_rtp};

pub const MS: Duration = Duration::from_millis(1);

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What a phone sends each 20 ms.
pub type Source = Box<dyn FnMut(usize, &mut [i16])>;

pub fn tone(freq: f64, amp: f64, rate: u32) -> Source {
    let mut n = 0usize;
    Box::new(move |_, out: &mut [i16]| {
        for o in out.iter_mut() {
            *o = (amp * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
                as i16;
            n += 1;
        }
    })
}

pub fn silence() -> Source {
    Box::new(|_, out: &mut [i16]| out.fill(0))
}

pub struct Phone {
    pub id: ParticipantId,
    pub addr: SocketAddr,
    pub codec: Codec,
    pub pt: u8,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub enc: AudioEncoder,
    pub dec: AudioDecoder,
    pub source: Source,
    pub received: Vec<i16>,
    pub rx_packets: Vec<(Instant, Vec<u8>)>,
    pub frames_sent: usize,
    pub muted_tx: bool,
    /// Send an RFC 6464 audio level in this extension id.
    pub level_ext: Option<u8>,
}

impl Phone {
    pub fn new(id: u32, codec: Codec, source: Source) -> Self {
        // Phones run their codec at its own rate.
        let rate = codec.sample_rate();
        Self {
            id: ParticipantId(id),
            addr: addr(20000 + 2 * id as u16),
            codec,
            pt: codec.default_payload_type().unwrap_or(111),
            ssrc: 0x1000 + id,
            seq: (id * 1000) as u16,
            ts: id * 12345,
            enc: AudioEncoder::new(codec, rate).unwrap(),
            dec: AudioDecoder::new(codec, rate).unwrap(),
            source,
            received: Vec::new(),
            rx_packets: Vec::new(),
            frames_sent: 0,
            muted_tx: false,
            level_ext: None,
        }
    }

    pub fn spec(&self) -> ParticipantSpec {
        let mut s = ParticipantSpec::new(self.codec, Some(self.addr));
        s.payload_type = self.pt;
        s.audio_level_ext_id = self.level_ext;
        s
    }

    pub fn rate(&self) -> u32 {
        self.codec.sample_rate()
    }

    /// Builds this phone's next 20 ms RTP packet.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let n = self.rate() as usize / 50;
        let mut pcm = vec![0i16; n];
        (self.source)(self.frames_sent, &mut pcm);
        self.frames_sent += 1;
        let mut payload = vec![0u8; 1500];
        let len = self.enc.encode(&pcm, &mut payload).unwrap();
        let h = RtpHeader {
            marker: self.frames_sent == 1,
            payload_type: self.pt,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            ..Default::default()
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.codec.rtp_clock_rate() / 50);
        let mut buf = vec![0u8; 1500];
        let ext = self.level_ext.map(|id| {
            let ms = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
            let dbov = if ms > 0.0 {
                -10.0 * (ms / (32768.0 * 32768.0)).log10()
            } else {
                127.0
            };
            palaver_media::rtp::audio_level_extension(id, dbov < 60.0, dbov.clamp(0.0, 127.0) as u8)
        });
        let l = write_rtp(
            &mut buf,
            &h,
            ext.as_ref().map(|(p, d)| (*p, &d[..])),
            &payload[..len],
        )
        .unwrap();
        buf.truncate(l);
        buf
    }

    /// Decodes one packet the room sent.
    pub fn receive(&mut self, now: Instant, data: &[u8]) {
        self.rx_packets.push((now, data.to_vec()));
        let p = RtpPacket::parse(data).expect("room sends valid RTP");
        if p.header.payload_type != self.pt {
            return;
        }
        let mut out = vec![0i16; 6000];
        let n = self.dec.decode(p.payload, &mut out).unwrap();
        self.received.extend_from_slice(&out[..n]);
    }
}

/// Room plus phones on a synthetic clock.
pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub room: MediaRoom,
    pub phones: Vec<Phone>,
    pub events: Vec<palaver_media::room::MediaEvent>,
    pub rtcp: Vec<(ParticipantId, Vec<u8>)>,
    pub transmits: Vec<Transmit>,
    pub ticks: u64,
    pub pending: Vec<(Instant, ParticipantId, SocketAddr, Vec<u8>)>,
    pub recorded: Vec<i16>,
}

impl Sim {
    pub fn new(cfg: RoomConfig, phones: Vec<Phone>) -> Self {
        let t0 = Instant::now();
        let mut room = MediaRoom::new(t0, cfg).unwrap();
        for p in &phones {
            room.handle_command(
                t0,
                RoomCommand::AddParticipant {
                    id: p.id,
                    spec: p.spec(),
                },
            )
            .unwrap();
        }
        Self {
            t0,
            now: t0,
            room,
            phones,
            events: Vec::new(),
            rtcp: Vec::new(),
            transmits: Vec::new(),
            ticks: 0,
            pending: Vec::new(),
            recorded: Vec::new(),
        }
    }

    pub fn phone(&mut self, id: u32) -> &mut Phone {
        self.phones
            .iter_mut()
            .find(|p| p.id == ParticipantId(id))
            .unwrap()
    }

    pub fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(t) = self.room.poll_transmit(&mut buf) {
            self.transmits.push(t);
            let data = buf[..t.len].to_vec();
            if t.kind == PacketKind::Rtcp {
                self.rtcp.push((t.participant, data));
                continue;
            }
            let now = self.now;
            if let Some(p) = self.phones.iter_mut().find(|p| p.addr == t.to) {
                p.receive(now, &data);
            }
        }
        while let Some(e) = self.room.poll_event() {
            self.events.push(e);
        }
        while let Some(b) = self.room.poll_record_block() {
            self.recorded.extend_from_slice(&b.samples);
            self.room.recycle_record_block(b.samples);
        }
    }

    /// Every phone sends one packet (arriving `delay(phone, frame)` later,
    /// None = lost), then the clock advances 20 ms and the room ticks.
    /// Packets are delivered in arrival order between ticks.
    /// Every phone that sends makes this tick's packet (sent at `base`);
    /// `delay` says when it reaches the server, or `None` if it is lost.
    fn queue_sends(
        &mut self,
        base: Instant,
        delay: &mut impl FnMut(ParticipantId, usize) -> Option<Duration>,
    ) {
        for i in 0..self.phones.len() {
            if self.phones[i].muted_tx {
                continue;
            }
            let frame = self.phones[i].frames_sent;
            let pkt = self.phones[i].next_packet();
            if let Some(d) = delay(self.phones[i].id, frame) {
                self.pending
                    .push((base + d, self.phones[i].id, self.phones[i].addr, pkt));
            }
        }
        self.pending.sort_by_key(|p| p.0);
    }

    pub fn run(
        &mut self,
        ticks: usize,
        mut delay: impl FnMut(ParticipantId, usize) -> Option<Duration>,
    ) {
        for _ in 0..ticks {
            let base = self.t0 + 20 * MS * self.ticks as u32;
            self.queue_sends(base, &mut delay);
            let tick_at = base + 20 * MS;
            while !self.pending.is_empty() && self.pending[0].0 <= tick_at {
                let (at, id, from, pkt) = self.pending.remove(0);
                self.now = at.max(self.now);
                self.room.handle_rtp(self.now, id, &pkt, from);
                self.drain();
            }
            self.now = tick_at;
            self.room.handle_tick(self.now);
            self.ticks += 1;
            self.drain();
        }
    }
}

/// A window during which the media worker is descheduled: it reads no
/// socket and runs no tick from `start` (offset from `t0`) for `length`.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub start: Duration,
    pub length: Duration,
}

impl Sim {
    /// Like [`Sim::run`], but the room is driven the way the runtime's
    /// worker drives it when the machine is busy: during a [`Stall`] the
    /// packets pile up in the socket; on waking the worker reads them all
    /// (stamped with their kernel arrival time when `kernel_stamps`, else
    /// with the read time) and then runs every tick it missed at its
    /// nominal time, sending each tick's packets before the next.
    pub fn run_stalled(
        &mut self,
        ticks: usize,
        mut delay: impl FnMut(ParticipantId, usize) -> Option<Duration>,
        stalls: &[Stall],
        kernel_stamps: bool,
    ) {
        let t0 = self.t0;
        let awake_at = |t: Instant| {
            stalls
                .iter()
                .map(|s| (t0 + s.start, t0 + s.start + s.length))
                .find(|&(a, b)| t >= a && t < b)
                .map_or(t, |(_, b)| b)
        };
        for _ in 0..ticks {
            let base = t0 + 20 * MS * self.ticks as u32;
            self.queue_sends(base, &mut delay);
            let tick_at = base + 20 * MS;
            let tick_run = awake_at(tick_at);
            // Everything the worker has read by the time it runs this tick.
            while !self.pending.is_empty() && awake_at(self.pending[0].0) <= tick_run {
                let (at, id, from, pkt) = self.pending.remove(0);
                let read_at = awake_at(at);
                self.now = read_at.max(self.now);
                let stamp = if kernel_stamps { at } else { read_at };
                self.room.handle_rtp(stamp, id, &pkt, from);
                self.drain();
            }
            self.now = tick_run.max(self.now);
            self.room.handle_tick(tick_at);
            self.ticks += 1;
            self.drain();
        }
    }
}

/// Share of `pcm`'s power that is the `freq` tone (1.0: a pure tone).
pub fn purity(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let a = amplitude(pcm, rate, freq);
    let power = rms(pcm).powi(2);
    if power == 0.0 {
        return 0.0;
    }
    (a * a / 2.0) / power
}

/// Amplitude of `freq` in `pcm` (Goertzel, normalised to sine peak).
pub fn amplitude(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s0 = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0).sqrt() * 2.0 / pcm.len().max(1) as f64
}

pub fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

pub fn last_secs(p: &Phone, secs: f64) -> &[i16] {
    let n = (f64::from(p.rate()) * secs) as usize;
    &p.received[p.received.len().saturating_sub(n)..]
}
