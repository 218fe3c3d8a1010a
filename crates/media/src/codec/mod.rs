//! Codecs: what the room decodes from and encodes for each participant.
//!
//! Meet first: [`Codec`] (the four codecs we negotiate, with their RTP
//! clock, sample rate and static payload type), [`AudioDecoder`] (payload →
//! PCM, plus packet-loss concealment: pitch-period waveform repeat with fade
//! for G.711/G.722, the decoder's own PLC or in-band FEC from the next
//! packet for Opus), [`AudioEncoder`] and [`ChunkResampler`] (rubato,
//! fixed 20 ms chunks, for codecs whose rate differs from the room's).
//!
//! Not here: choosing a codec (SDP does that) and packetisation (the room).

pub mod g711;
pub mod g722;
pub mod resample;

pub use resample::ChunkResampler;

use crate::error::{Error, Result};
use g722::{G722Decoder, G722Encoder};

/// A codec as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s (16 kHz audio on an 8 kHz RTP clock).
    G722,
    /// Opus, mono, 48 kHz RTP clock, in-band FEC on.
    Opus,
}

impl Codec {
    /// SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// Parses an SDP encoding name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// RTP timestamp clock (G.722 is 8000 by a historical error kept in
    /// RFC 3551).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// Rate of the audio the codec carries.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::G722 => 16_000,
            Codec::Opus => 48_000,
        }
    }

    /// Static payload type, if the codec has one.
    pub fn default_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// Whether the codec is stateless (an encoded frame can be sent to any
    /// listener regardless of what it heard before).
    pub fn is_stateless(self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }

    /// Rate the codec's encoder and decoder run at inside a room of
    /// `room_rate`: Opus works natively at 8/16/48 kHz, the others at
    /// their own rate (and are resampled).
    pub fn pcm_rate(self, room_rate: u32) -> u32 {
        match self {
            Codec::Opus => room_rate,
            _ => self.sample_rate(),
        }
    }

    /// Bytes of payload per millisecond for sample-based codecs (G.711 and
    /// G.722 both send 8 bytes per ms); `None` for Opus.
    pub fn bytes_per_ms(self) -> Option<usize> {
        match self {
            Codec::Opus => None,
            _ => Some(8),
        }
    }
}

/// Largest Opus packet we produce or accept (RFC 6716 §3.2.1 bound for one
/// frame).
pub const MAX_OPUS_PACKET: usize = 1275;

enum DecoderKind {
    G711 { alaw: bool },
    G722(Box<G722Decoder>),
    Opus(opus::Decoder),
}

/// Payload → PCM for one participant, with loss concealment.
pub struct AudioDecoder {
    codec: Codec,
    rate: u32,
    kind: DecoderKind,
    plc: Concealer,
}

impl std::fmt::Debug for AudioDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AudioDecoder({:?} @ {} Hz)", self.codec, self.rate)
    }
}

impl AudioDecoder {
    /// A decoder for `codec` in a room mixing at `room_rate`; it outputs at
    /// [`Codec::pcm_rate`].
    pub fn new(codec: Codec, room_rate: u32) -> Result<Self> {
        let rate = codec.pcm_rate(room_rate);
        let kind = match codec {
            Codec::Pcmu => DecoderKind::G711 { alaw: false },
            Codec::Pcma => DecoderKind::G711 { alaw: true },
            Codec::G722 => DecoderKind::G722(Box::default()),
            Codec::Opus => DecoderKind::Opus(opus::Decoder::new(rate, opus::Channels::Mono)?),
        };
        Ok(Self {
            codec,
            rate,
            kind,
            plc: Concealer::new(rate),
        })
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Output sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples `payload` decodes to (at [`Self::rate`]), or an error for a
    /// payload that cannot be decoded.
    #[inline]
    pub fn samples_in(&self, payload: &[u8]) -> Result<usize> {
        match self.kind {
            DecoderKind::G711 { .. } => Ok(payload.len()),
            DecoderKind::G722(_) => Ok(payload.len() * 2),
            DecoderKind::Opus(_) => Ok(opus::packet::get_nb_samples(payload, self.rate)?),
        }
    }

    /// Decodes one payload into `out`; returns samples written and, when
    /// the codec gives it for free (G.711), the sum of squared samples.
    #[inline]
    pub fn decode_with_energy(
        &mut self,
        payload: &[u8],
        out: &mut [i16],
    ) -> Result<(usize, Option<u64>)> {
        if let DecoderKind::G711 { alaw } = self.kind
            && self.plc.lost_run == 0
        {
            let n = payload.len().min(out.len());
            let e = g711::decode_with_energy(alaw, &payload[..n], &mut out[..n]);
            self.plc.remember(&out[..n]);
            return Ok((n, Some(e)));
        }
        self.decode(payload, out).map(|n| (n, None))
    }

    /// Decodes one payload into `out`; returns samples written.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize> {
        let n = match &mut self.kind {
            DecoderKind::G711 { alaw } => {
                let n = payload.len().min(out.len());
                g711::decode(*alaw, &payload[..n], &mut out[..n]);
                n
            }
            DecoderKind::G722(d) => d.decode(payload, out),
            DecoderKind::Opus(d) => {
                let n = d.decode(payload, out, false)?;
                self.plc.lost_run = 0;
                return Ok(n);
            }
        };
        self.plc.recover(&mut out[..n]);
        self.plc.remember(&out[..n]);
        Ok(n)
    }

    /// Produces `samples` of concealment for a lost packet. For Opus,
    /// `next` (the following packet, if it already arrived) is used for
    /// in-band FEC. Returns samples written.
    pub fn conceal(
        &mut self,
        samples: usize,
        next: Option<&[u8]>,
        out: &mut [i16],
    ) -> Result<usize> {
        let samples = samples.min(out.len());
        match &mut self.kind {
            DecoderKind::Opus(d) => {
                // Opus needs whole 2.5 ms units.
                let unit = self.rate as usize / 400;
                let n = samples / unit * unit;
                if n == 0 {
                    return Ok(0);
                }
                let got = match next {
                    Some(p) => d
                        .decode(p, &mut out[..n], true)
                        .or_else(|_| d.decode(&[], &mut out[..n], false))?,
                    None => d.decode(&[], &mut out[..n], false)?,
                };
                self.plc.lost_run += 1;
                Ok(got)
            }
            _ => {
                self.plc.conceal(&mut out[..samples]);
                Ok(samples)
            }
        }
    }

    /// Notes an Opus frame that was not decoded because it was plainly
    /// silent (DTX or RFC 6464). The Opus decoder resynchronises on the
    /// next frame it decodes; concealment state is cleared so silence is
    /// not followed by a repeat of older speech.
    pub fn skip_silent(&mut self) {
        self.plc.lost_run = 0;
    }

    /// Consecutive concealed packets so far.
    pub fn lost_run(&self) -> u32 {
        self.plc.lost_run
    }
}

/// Waveform-repeat concealment for G.711/G.722: repeats the last pitch
/// period (found by autocorrelation) so the joint is smooth, fading to
/// silence over 60 ms, and cross-fades back into real audio on recovery.
struct Concealer {
    rate: usize,
    hist: Vec<i16>,
    pos: usize,
    filled: bool,
    lost_run: u32,
    period: Vec<i16>,
    phase: usize,
    gain_q15: i32,
}

impl Concealer {
    fn new(rate: u32) -> Self {
        let rate = rate as usize;
        Self {
            rate,
            hist: vec![0; rate / 25],
            pos: 0,
            filled: false,
            lost_run: 0,
            period: Vec::with_capacity(rate / 50),
            phase: 0,
            gain_q15: 0,
        }
    }

    fn remember(&mut self, pcm: &[i16]) {
        let h = self.hist.len();
        let pcm = if pcm.len() > h {
            &pcm[pcm.len() - h..]
        } else {
            pcm
        };
        let first = (h - self.pos).min(pcm.len());
        self.hist[self.pos..self.pos + first].copy_from_slice(&pcm[..first]);
        self.hist[..pcm.len() - first].copy_from_slice(&pcm[first..]);
        if self.pos + pcm.len() >= h {
            self.filled = true;
        }
        self.pos = (self.pos + pcm.len()) % h;
    }

    fn hist_at(&self, back: usize) -> i16 {
        // `back` = 1 is the most recent sample.
        let h = self.hist.len();
        self.hist[(self.pos + h - back) % h]
    }

    fn start(&mut self) {
        let h = self.hist.len();
        let min_lag = self.rate / 400;
        let max_lag = self.rate * 15 / 1000;
        let win = self.rate / 100;
        let mut best = (self.rate / 100, f64::MIN);
        if self.filled {
            for lag in min_lag..=max_lag.min(h - win) {
                let mut c = 0f64;
                let mut e = 0f64;
                for i in 1..=win {
                    let a = f64::from(self.hist_at(i));
                    let b = f64::from(self.hist_at(i + lag));
                    c += a * b;
                    e += b * b;
                }
                let score = if e > 0.0 { c / e.sqrt() } else { 0.0 };
                if score > best.1 {
                    best = (lag, score);
                }
            }
        }
        let lag = best.0;
        self.period.clear();
        for i in (1..=lag).rev() {
            self.period.push(self.hist_at(i));
        }
        self.phase = 0;
        self.gain_q15 = 32768;
    }

    fn next_sample(&mut self, step_q15: i32) -> i16 {
        if self.period.is_empty() {
            return 0;
        }
        let s = i32::from(self.period[self.phase]);
        self.phase = (self.phase + 1) % self.period.len();
        let v = (s * self.gain_q15) >> 15;
        self.gain_q15 = (self.gain_q15 - step_q15).max(0);
        v as i16
    }

    fn conceal(&mut self, out: &mut [i16]) {
        if self.lost_run == 0 {
            self.start();
        }
        self.lost_run += 1;
        // Fade from full level to silence over 60 ms.
        let step = (32768 / (self.rate * 60 / 1000)) as i32;
        // History keeps the last real audio so a long gap repeats real
        // speech, not its own faded copy.
        for o in out.iter_mut() {
            *o = self.next_sample(step);
        }
    }

    fn recover(&mut self, good: &mut [i16]) {
        if self.lost_run == 0 {
            return;
        }
        self.lost_run = 0;
        let l = (self.rate / 200).min(good.len());
        let step = (32768 / (self.rate * 60 / 1000)) as i32;
        for (i, g) in good.iter_mut().take(l).enumerate() {
            let c = i32::from(self.next_sample(step));
            let w = ((i as i32 + 1) << 15) / (l as i32 + 1);
            *g = ((i32::from(*g) * w + c * (32768 - w)) >> 15) as i16;
        }
    }
}

enum EncoderKind {
    G711 { alaw: bool },
    G722(Box<G722Encoder>),
    Opus(opus::Encoder),
}

/// PCM → payload for one output stream (a shared mix or one listener).
pub struct AudioEncoder {
    codec: Codec,
    rate: u32,
    kind: EncoderKind,
}

impl std::fmt::Debug for AudioEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AudioEncoder({:?} @ {} Hz)", self.codec, self.rate)
    }
}

impl AudioEncoder {
    /// An encoder for `codec` fed at [`Codec::pcm_rate`] of `room_rate`.
    /// Opus runs as VoIP voice at 32 kbit/s, complexity 5 (a server encodes
    /// many streams), in-band FEC on with a 10 % loss assumption.
    pub fn new(codec: Codec, room_rate: u32) -> Result<Self> {
        let rate = codec.pcm_rate(room_rate);
        let kind = match codec {
            Codec::Pcmu => EncoderKind::G711 { alaw: false },
            Codec::Pcma => EncoderKind::G711 { alaw: true },
            Codec::G722 => EncoderKind::G722(Box::default()),
            Codec::Opus => {
                let mut e =
                    opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
                e.set_inband_fec(true)?;
                e.set_packet_loss_perc(10)?;
                e.set_complexity(5)?;
                // 32 kbit/s voice keeps Opus in SILK/hybrid mode, where the
                // in-band FEC lives (CELT-only mode has none).
                e.set_bitrate(opus::Bitrate::Bits(32_000))?;
                e.set_signal(opus::Signal::Voice)?;
                EncoderKind::Opus(e)
            }
        };
        Ok(Self { codec, rate, kind })
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Input sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Encodes `pcm` (a whole number of codec frames) into `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize> {
        match &mut self.kind {
            EncoderKind::G711 { alaw } => {
                let n = pcm.len();
                if out.len() < n {
                    return Err(Error::BufferTooSmall { need: n });
                }
                g711::encode(*alaw, pcm, &mut out[..n]);
                Ok(n)
            }
            EncoderKind::G722(e) => {
                let need = pcm.len() / 2;
                if out.len() < need {
                    return Err(Error::BufferTooSmall { need });
                }
                Ok(e.encode(pcm, out))
            }
            EncoderKind::Opus(e) => Ok(e.encode(pcm, out)?),
        }
    }

    /// Makes this encoder continue from `other`'s state where the codec
    /// allows it (G.722), so a listener switched between the shared and a
    /// private stream does not desynchronise its phone's decoder. G.711
    /// has no state; Opus state cannot be copied and Opus decoders ride
    /// out the switch like a lost packet.
    pub fn continue_from(&mut self, other: &AudioEncoder) {
        if let (EncoderKind::G722(me), EncoderKind::G722(them)) = (&mut self.kind, &other.kind) {
            me.clone_from(them);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, n: usize, start: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn codec_facts() {
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::G722.rtp_clock_rate(), 8000);
        assert_eq!(Codec::G722.sample_rate(), 16000);
        assert_eq!(Codec::Pcma.default_payload_type(), Some(8));
        assert_eq!(Codec::Opus.pcm_rate(16000), 16000);
        assert_eq!(Codec::Pcmu.pcm_rate(16000), 8000);
    }

    #[test]
    fn opus_round_trip_and_plc() {
        let mut enc = AudioEncoder::new(Codec::Opus, 48000).unwrap();
        let mut dec = AudioDecoder::new(Codec::Opus, 48000).unwrap();
        let mut pkt = [0u8; MAX_OPUS_PACKET];
        let mut out = vec![0i16; 960];
        let mut energy = 0f64;
        for k in 0..50 {
            let pcm = tone(48000, 440.0, 960, k * 960);
            let n = enc.encode(&pcm, &mut pkt).unwrap();
            assert_eq!(dec.samples_in(&pkt[..n]).unwrap(), 960);
            if k == 30 {
                // Lose this one; recover it from the next packet's FEC later
                // is covered by conceal(next).
                assert_eq!(dec.conceal(960, None, &mut out).unwrap(), 960);
                continue;
            }
            assert_eq!(dec.decode(&pkt[..n], &mut out).unwrap(), 960);
            if k > 40 {
                energy += out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
            }
        }
        let rms = (energy / (9.0 * 960.0)).sqrt();
        assert!((rms - 5657.0).abs() < 1200.0, "rms {rms}");
        assert!(
            dec.decode(&[0xFF, 0xFF, 0xFF], &mut out).is_err()
                || dec.samples_in(&[0xFF, 0xFF, 0xFF]).is_err()
        );
    }

    #[test]
    fn g711_plc_repeats_then_fades() {
        let mut dec = AudioDecoder::new(Codec::Pcmu, 8000).unwrap();
        let mut enc = AudioEncoder::new(Codec::Pcmu, 8000).unwrap();
        let mut bytes = [0u8; 160];
        let mut out = [0i16; 160];
        for k in 0..5 {
            enc.encode(&tone(8000, 400.0, 160, k * 160), &mut bytes)
                .unwrap();
            dec.decode(&bytes, &mut out).unwrap();
        }
        let rms = |v: &[i16]| {
            (v.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let real = rms(&out);
        dec.conceal(160, None, &mut out).unwrap();
        let first = rms(&out);
        // The pitch-synchronous repeat continues the tone: the 400 Hz
        // period is 20 samples, so the concealed frame matches the tone
        // that would have come next, under the fade.
        let expected = tone(8000, 400.0, 160, 5 * 160);
        let corr: f64 = out
            .iter()
            .zip(&expected)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum::<f64>()
            / (rms(&out) * rms(&expected) * 160.0);
        assert!(corr > 0.95, "corr {corr}");
        assert!(
            first > real * 0.5 && first < real * 1.05,
            "{first} vs {real}"
        );
        dec.conceal(160, None, &mut out).unwrap();
        dec.conceal(160, None, &mut out).unwrap();
        dec.conceal(160, None, &mut out).unwrap();
        assert!(rms(&out) < 1.0, "faded out: {}", rms(&out));
        assert_eq!(dec.lost_run(), 4);
        enc.encode(&tone(8000, 400.0, 160, 9 * 160), &mut bytes)
            .unwrap();
        dec.decode(&bytes, &mut out).unwrap();
        assert_eq!(dec.lost_run(), 0);
    }

    #[test]
    fn g722_through_decoder_api() {
        let mut enc = AudioEncoder::new(Codec::G722, 16000).unwrap();
        let mut dec = AudioDecoder::new(Codec::G722, 16000).unwrap();
        let mut bytes = [0u8; 160];
        let mut out = [0i16; 320];
        assert_eq!(
            enc.encode(&tone(16000, 1000.0, 320, 0), &mut bytes)
                .unwrap(),
            160
        );
        assert_eq!(dec.samples_in(&bytes).unwrap(), 320);
        assert_eq!(dec.decode(&bytes, &mut out).unwrap(), 320);
        let mut other = AudioEncoder::new(Codec::G722, 16000).unwrap();
        other.continue_from(&enc);
        let mut a = [0u8; 160];
        let mut b = [0u8; 160];
        let next = tone(16000, 1000.0, 320, 320);
        enc.encode(&next, &mut a).unwrap();
        other.encode(&next, &mut b).unwrap();
        assert_eq!(a, b);
    }
}
