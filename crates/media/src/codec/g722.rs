//! G.722 at 64 kbit/s (ITU-T G.722 mode 1): a QMF splits 16 kHz audio into
//! two 8 kHz sub-bands coded by ADPCM (6 bits low band, 2 bits high band),
//! one byte per pair of input samples.
//!
//! Our own port of the ITU algorithm (the same block structure as the
//! public-domain spandsp/CMU code: blocks 1–6 named in the comments). No
//! well-kept Rust crate exists; the tests below check tone SNR in both bands,
//! the codec's gain and stability on full-scale noise. The state is `Clone`
//! so that a listener moving from the shared mix to a private one can start
//! from the shared encoder's state and its phone's decoder stays in step.

const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

#[inline(always)]
fn sat(v: i32) -> i32 {
    v.clamp(-32768, 32767)
}

/// The QMF's 24-sample history as a mirrored ring: every sample is stored
/// twice, 24 apart, so the current window is always one contiguous slice
/// and pushing a pair costs four stores instead of shifting 22 values.
#[derive(Debug, Clone, Copy)]
struct QmfHistory {
    buf: [i32; 48],
    pos: usize,
}

impl QmfHistory {
    fn new() -> Self {
        Self {
            buf: [0; 48],
            pos: 0,
        }
    }

    /// Appends two samples and returns the 24-sample window, oldest first.
    #[inline]
    fn push(&mut self, a: i32, b: i32) -> &[i32; 24] {
        self.pos = (self.pos + 2) % 24;
        let i = (self.pos + 22) % 24;
        self.buf[i] = a;
        self.buf[i + 24] = a;
        let j = (self.pos + 23) % 24;
        self.buf[j] = b;
        self.buf[j + 24] = b;
        // pos < 24, so pos + 24 <= 48.
        self.buf[self.pos..self.pos + 24]
            .try_into()
            .expect("window is 24 long")
    }
}

/// The two polyphase QMF sums over a window: `(even taps, odd taps)`.
#[inline]
fn qmf_sums(x: &[i32; 24]) -> (i32, i32) {
    let mut even = 0;
    let mut odd = 0;
    for i in 0..12 {
        even += x[2 * i] * QMF[i];
        odd += x[2 * i + 1] * QMF[11 - i];
    }
    (even, odd)
}

/// ADPCM state of one sub-band.
#[derive(Debug, Clone, Copy, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            det,
            ..Default::default()
        }
    }

    /// Block 4: reconstruction, pole and zero predictor adaptation.
    ///
    /// Written with locals and in-place updates (each new coefficient
    /// depends only on its own old value), which is bit-for-bit the ITU
    /// sequence of UPPOL2, UPPOL1, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC.
    #[inline]
    fn block4(&mut self, d: i32) {
        let r0 = sat(self.s + d);
        let p0 = sat(self.sz + d);
        let (sg0, sg1, sg2) = (p0 >> 15, self.p[1] >> 15, self.p[2] >> 15);
        let (a1, a2) = (self.a[1], self.a[2]);

        // UPPOL2
        let wd1 = sat(a1 << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 } + ((a2 * 32512) >> 15);
        let ap2 = wd3.clamp(-12288, 12288);

        // UPPOL1
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let ap1 = sat(wd1 + ((a1 * 32640) >> 15));
        let lim = sat(15360 - ap2);
        // lim >= 3072 because ap2 <= 12288, so the bounds are ordered.
        let ap1 = ap1.clamp(-lim, lim);

        // UPZERO, in place: b[i] uses only the old b[i] and d[i].
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let wd2 = if self.d[i] >> 15 == sgd { step } else { -step };
            self.b[i] = sat(wd2 + ((self.b[i] * 32640) >> 15));
        }

        // DELAYA
        self.d.copy_within(0..6, 1);
        self.d[1] = d;
        self.d[0] = d;
        self.r = [r0, r0, self.r[1]];
        self.p = [p0, p0, self.p[1]];
        self.a[1] = ap1;
        self.a[2] = ap2;

        // FILTEP
        let wd1 = (ap1 * sat(self.r[1] + self.r[1])) >> 15;
        let wd2 = (ap2 * sat(self.r[2] + self.r[2])) >> 15;
        self.sp = sat(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat(sz);

        // PREDIC
        self.s = sat(self.sp + self.sz);
    }

    /// Blocks 3L/3H: log scale factor adaptation and scale factor.
    fn scale(&mut self, w: i32, nb_max: i32, shift_base: i32) {
        let nb = ((self.nb * 127) >> 7) + w;
        self.nb = nb.clamp(0, nb_max);
        let wd1 = ((self.nb >> 6) & 31) as usize;
        let wd2 = shift_base - (self.nb >> 11);
        let wd3 = if wd2 < 0 {
            ILB[wd1] << -wd2
        } else {
            ILB[wd1] >> wd2
        };
        self.det = wd3 << 2;
    }
}

/// G.722 encoder state (64 kbit/s).
#[derive(Debug, Clone)]
pub struct G722Encoder {
    x: QmfHistory,
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// A fresh encoder.
    pub fn new() -> Self {
        Self {
            x: QmfHistory::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encodes 16 kHz PCM (even length) into `out` (`pcm.len() / 2`
    /// bytes). Returns bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut n = 0;
        for (pair, o) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            // Transmit QMF.
            let w = self.x.push(i32::from(pair[0]), i32::from(pair[1]));
            let (sumodd, sumeven) = qmf_sums(w);
            let xlow = (sumeven + sumodd) >> 14;
            let xhigh = (sumeven - sumodd) >> 14;

            // 1L SUBTRA / QUANTL
            let el = sat(xlow - self.low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let mut i = 1;
            while i < 30 {
                if wd < (Q6[i] * self.low.det) >> 12 {
                    break;
                }
                i += 1;
            }
            let ilow = if el < 0 { ILN[i] } else { ILP[i] };
            // 2L INVQAL
            let ril = (ilow >> 2) as usize;
            let dlow = (self.low.det * QM4[ril]) >> 15;
            // 3L LOGSCL / SCALEL
            self.low.scale(WL[RL42[ril] as usize], 18432, 8);
            self.low.block4(dlow);

            // 1H SUBTRA / QUANTH
            let eh = sat(xhigh - self.high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * self.high.det) >> 12 {
                2
            } else {
                1
            };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            // 2H INVQAH
            let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
            // 3H LOGSCH / SCALEH
            self.high.scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
            self.high.block4(dhigh);

            *o = ((ihigh << 6) | ilow) as u8;
            n += 1;
        }
        n
    }
}

/// G.722 decoder state (64 kbit/s).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    x: QmfHistory,
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self {
            x: QmfHistory::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Decodes `data` into `out` (2 samples per byte at 16 kHz). Returns
    /// samples written.
    pub fn decode(&mut self, data: &[u8], out: &mut [i16]) -> usize {
        let mut n = 0;
        for (&code, o) in data.iter().zip(out.chunks_exact_mut(2)) {
            let code = i32::from(code);
            let ilow = (code & 0x3F) as usize;
            let ihigh = ((code >> 6) & 0x03) as usize;

            // 5L INVQBL, RECONS, 6L LIMIT
            let wd2 = (self.low.det * QM6[ilow]) >> 15;
            let rlow = (self.low.s + wd2).clamp(-16384, 16383);
            // 2L INVQAL
            let ril = ilow >> 2;
            let dlow = (self.low.det * QM4[ril]) >> 15;
            self.low.scale(WL[RL42[ril] as usize], 18432, 8);
            self.low.block4(dlow);

            // 2H INVQAH, 5H RECONS, 6H LIMIT
            let dhigh = (self.high.det * QM2[ihigh]) >> 15;
            let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
            self.high.scale(WH[RH2[ihigh] as usize], 22528, 10);
            self.high.block4(dhigh);

            // Receive QMF.
            let w = self.x.push(rlow + rhigh, rlow - rhigh);
            let (xout2, xout1) = qmf_sums(w);
            o[0] = sat(xout1 >> 11) as i16;
            o[1] = sat(xout2 >> 11) as i16;
            n += 2;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16)
            .collect()
    }

    /// Best SNR over small delays (the QMF pair delays by 23 samples).
    fn snr_db(reference: &[i16], decoded: &[i16]) -> f64 {
        let skip = 800;
        (0..40)
            .map(|lag| {
                let mut sig = 0.0;
                let mut err = 0.0;
                for i in skip..reference.len() - 40 {
                    let r = f64::from(reference[i]);
                    let d = f64::from(decoded[i + lag]);
                    sig += r * r;
                    err += (r - d) * (r - d);
                }
                10.0 * (sig / err.max(1.0)).log10()
            })
            .fold(f64::MIN, f64::max)
    }

    fn codec_round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut bytes = vec![0u8; pcm.len() / 2];
        assert_eq!(enc.encode(pcm, &mut bytes), pcm.len() / 2);
        let mut out = vec![0i16; pcm.len()];
        assert_eq!(dec.decode(&bytes, &mut out), pcm.len());
        out
    }

    #[test]
    fn low_band_tone_survives() {
        let pcm = tone(1000.0, 8000.0, 16000);
        let out = codec_round_trip(&pcm);
        let snr = snr_db(&pcm, &out);
        assert!(snr > 25.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn high_band_tone_survives() {
        // The 2-bit high band is coarse: ~10 dB is what the codec gives.
        let pcm = tone(5500.0, 6000.0, 16000);
        let out = codec_round_trip(&pcm);
        let snr = snr_db(&pcm, &out);
        assert!(snr > 8.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn unity_gain_and_silence() {
        let pcm = tone(440.0, 10000.0, 16000);
        let out = codec_round_trip(&pcm);
        let rms = |v: &[i16]| {
            (v.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let ratio = rms(&out[1000..]) / rms(&pcm[1000..]);
        assert!((0.9..1.1).contains(&ratio), "gain {ratio}");
        let silent = codec_round_trip(&vec![0i16; 3200]);
        assert!(silent.iter().all(|s| s.abs() < 8));
    }

    /// Bit-exactness guard: a hash of encoder and decoder output for fixed
    /// pseudo-random input, recorded from the straightforward (shifting
    /// history) implementation. Optimisations must not change a bit.
    #[test]
    fn output_is_bit_exact() {
        let mut x: u32 = 0x1234_5678;
        let mut pcm = vec![0i16; 16000];
        for (i, s) in pcm.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x as i16) / 8;
            let t =
                (4000.0 * (2.0 * std::f64::consts::PI * 700.0 * i as f64 / 16000.0).sin()) as i16;
            *s = noise.saturating_add(t);
        }
        let mut enc = G722Encoder::new();
        let mut bytes = vec![0u8; 8000];
        enc.encode(&pcm, &mut bytes);
        let mut dec = G722Decoder::new();
        let mut out = vec![0i16; 16000];
        dec.decode(&bytes, &mut out);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in &bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        for &s in &out {
            h = (h ^ u64::from(s as u16)).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(h, GOLDEN, "{h:#x}");
    }

    const GOLDEN: u64 = 0x4380_ec3d_f583_f9ea;

    #[test]
    fn full_scale_noise_is_stable() {
        let mut x: u32 = 1;
        let pcm: Vec<i16> = (0..32000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as i16
            })
            .collect();
        // After full-scale noise, a tone must come back clean: the adaptive
        // state recovered instead of sticking at a limit.
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut bytes = vec![0u8; 16000];
        let mut out = vec![0i16; 32000];
        enc.encode(&pcm, &mut bytes);
        dec.decode(&bytes, &mut out);
        let t = tone(1000.0, 8000.0, 16000);
        let mut o = vec![0i16; 16000];
        enc.encode(&t, &mut bytes[..8000]);
        dec.decode(&bytes[..8000], &mut o);
        assert!(snr_db(&t[4000..], &o[4000..]) > 20.0);
    }
}
