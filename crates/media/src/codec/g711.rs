//! G.711 µ-law and A-law (ITU-T G.711) as compile-time tables: encoding is
//! one indexed load per sample, which is what lets a 1000-participant room
//! decode and encode inside its tick budget.

const fn ulaw_encode_slow(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    if s > CLIP {
        s = CLIP;
    }
    s += BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn ulaw_decode_slow(byte: u8) -> i16 {
    let u = !byte;
    let mut t = (((u & 0x0F) as i32) << 3) + 0x84;
    t <<= ((u & 0x70) >> 4) as i32;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

const fn alaw_encode_slow(sample: i16) -> u8 {
    let mut linear = sample as i32;
    let mask;
    if linear >= 0 {
        mask = 0xD5;
    } else {
        mask = 0x55;
        linear = -linear - 1;
    }
    // Segment = position of the top bit above bit 7.
    let v = linear | 0xFF;
    let mut top = 31;
    while top > 0 && (v >> top) & 1 == 0 {
        top -= 1;
    }
    let seg = top - 7;
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg == 0 { 4 } else { seg + 3 };
    ((((seg << 4) | ((linear >> shift) & 0x0F)) ^ mask) & 0xFF) as u8
}

const fn alaw_decode_slow(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut i = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    if seg != 0 {
        i = (i + 0x108) << (seg - 1);
    } else {
        i += 8;
    }
    (if a & 0x80 != 0 { i } else { -i }) as i16
}

const fn encode_table(alaw: bool) -> [u8; 65536] {
    let mut t = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        let s = (i as u16) as i16;
        t[i] = if alaw {
            alaw_encode_slow(s)
        } else {
            ulaw_encode_slow(s)
        };
        i += 1;
    }
    t
}

const fn decode_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_slow(i as u8)
        } else {
            ulaw_decode_slow(i as u8)
        };
        i += 1;
    }
    t
}

const fn square_table(alaw: bool) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let v = if alaw {
            alaw_decode_slow(i as u8)
        } else {
            ulaw_decode_slow(i as u8)
        } as i32;
        t[i] = (v * v) as u32;
        i += 1;
    }
    t
}

static ULAW_SQ: [u32; 256] = square_table(false);
static ALAW_SQ: [u32; 256] = square_table(true);
static ULAW_ENC: [u8; 65536] = encode_table(false);
static ALAW_ENC: [u8; 65536] = encode_table(true);
static ULAW_DEC: [i16; 256] = decode_table(false);
static ALAW_DEC: [i16; 256] = decode_table(true);

/// Encodes one sample to µ-law.
#[inline]
pub fn ulaw_encode(s: i16) -> u8 {
    ULAW_ENC[usize::from(s as u16)]
}
/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_decode(b: u8) -> i16 {
    ULAW_DEC[usize::from(b)]
}
/// Encodes one sample to A-law.
#[inline]
pub fn alaw_encode(s: i16) -> u8 {
    ALAW_ENC[usize::from(s as u16)]
}
/// Decodes one A-law byte.
#[inline]
pub fn alaw_decode(b: u8) -> i16 {
    ALAW_DEC[usize::from(b)]
}

/// Encodes `pcm` into `out` (same length); `alaw` picks the law.
pub fn encode(alaw: bool, pcm: &[i16], out: &mut [u8]) {
    let table = if alaw { &ALAW_ENC } else { &ULAW_ENC };
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = table[usize::from(s as u16)];
    }
}

/// Decodes `bytes` into `out` (same length).
pub fn decode(alaw: bool, bytes: &[u8], out: &mut [i16]) {
    let table = if alaw { &ALAW_DEC } else { &ULAW_DEC };
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = table[usize::from(b)];
    }
}

/// Decodes `bytes` into `out` and returns the sum of the squared samples,
/// read from a second table: the frame energy the mixer needs comes free
/// with decoding.
#[inline]
pub fn decode_with_energy(alaw: bool, bytes: &[u8], out: &mut [i16]) -> u64 {
    let (table, sq) = if alaw {
        (&ALAW_DEC, &ALAW_SQ)
    } else {
        (&ULAW_DEC, &ULAW_SQ)
    };
    let n = bytes.len().min(out.len());
    let (bytes, out) = (&bytes[..n], &mut out[..n]);
    let mut energy = 0u64;
    // Eight at a time: fully unrolled, no bounds checks (u8 indices into
    // 256-entry tables).
    let mut oc = out.chunks_exact_mut(8);
    let mut bc = bytes.chunks_exact(8);
    for (o, b) in (&mut oc).zip(&mut bc) {
        let mut e = 0u64;
        for j in 0..8 {
            let k = usize::from(b[j]);
            o[j] = table[k];
            e += u64::from(sq[k]);
        }
        energy += e;
    }
    for (o, &b) in oc.into_remainder().iter_mut().zip(bc.remainder()) {
        *o = table[usize::from(b)];
        energy += u64::from(sq[usize::from(b)]);
    }
    energy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "alaw {b:#x}");
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0.
            if b != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(b)), b, "ulaw {b:#x}");
            }
        }
    }

    #[test]
    fn energy_matches_decoded_samples() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for alaw in [false, true] {
            let mut out = vec![0i16; 256];
            let e = decode_with_energy(alaw, &bytes, &mut out);
            let want: u64 = out
                .iter()
                .map(|&s| (i64::from(s) * i64::from(s)) as u64)
                .sum();
            assert_eq!(e, want);
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // G.711 keeps about 38 dB SNR over the range: the error is at most
        // half a step, and steps are at most 1/16 of the segment base.
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            for alaw in [false, true] {
                let mut o = [0u8];
                encode(alaw, &[s], &mut o);
                let mut d = [0i16];
                decode(alaw, &o, &mut d);
                let err = (i32::from(d[0]) - i32::from(s)).abs();
                let bound = (i32::from(s).abs() / 16).max(16) + 8;
                assert!(
                    err <= bound.max(1100 * i32::from(i32::from(s).abs() > 32000)),
                    "{alaw} {s} -> {} err {err}",
                    d[0]
                );
            }
        }
    }
}
