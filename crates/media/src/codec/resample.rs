//! Sample-rate conversion with rubato, in fixed 20 ms chunks for the tick
//! path (no allocation per call) and whole clips for prompts.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::error::{Error, Result};

fn err(from: u32, to: u32, e: impl std::fmt::Display) -> Error {
    Error::Resampler {
        from,
        to,
        reason: e.to_string(),
    }
}

/// Converts fixed-size mono chunks of `from` Hz PCM to `to` Hz.
///
/// Built on rubato's synchronous FFT resampler with small sub-chunks so
/// its delay stays near 5 ms (all our rate pairs are integer ratios, so
/// the FFT blocks divide a 20 ms chunk exactly).
pub struct ChunkResampler {
    inner: Fft<f32>,
    from: u32,
    to: u32,
    in_frames: usize,
    out_frames: usize,
    block_in: usize,
    block_out: usize,
    in_f: Vec<f32>,
    out_f: Vec<f32>,
}

impl std::fmt::Debug for ChunkResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChunkResampler({} Hz -> {} Hz, {} frames)",
            self.from, self.to, self.in_frames
        )
    }
}

impl ChunkResampler {
    /// A resampler taking `in_frames` samples per call.
    pub fn new(from: u32, to: u32, in_frames: usize) -> Result<Self> {
        let out_frames = in_frames * to as usize / from as usize;
        // Blocks of 5 ms keep the FFT resampler's delay (half a block) low;
        // a 20 ms chunk is processed as four blocks.
        let block_in = from as usize / 200;
        let block_out = to as usize / 200;
        let inner = Fft::<f32>::new(from as usize, to as usize, block_in, 1, FixedSync::Both)
            .map_err(|e| err(from, to, e))?;
        if inner.input_frames_next() != block_in
            || inner.output_frames_next() != block_out
            || !in_frames.is_multiple_of(block_in)
        {
            return Err(err(from, to, "chunk size does not divide into FFT blocks"));
        }
        Ok(Self {
            inner,
            from,
            to,
            in_frames,
            out_frames,
            block_in,
            block_out,
            in_f: vec![0.0; in_frames],
            out_f: vec![0.0; out_frames],
        })
    }

    /// Output frames produced per call.
    pub fn out_frames(&self) -> usize {
        self.out_frames
    }

    /// Delay added, in output frames.
    pub fn delay(&self) -> usize {
        self.inner.output_delay()
    }

    /// Resamples exactly `in_frames` samples into `out` (`out_frames`
    /// long).
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> Result<()> {
        if input.len() != self.in_frames || out.len() != self.out_frames {
            return Err(err(self.from, self.to, "wrong chunk length"));
        }
        for (f, &s) in self.in_f.iter_mut().zip(input) {
            *f = f32::from(s);
        }
        for (i, o) in self
            .in_f
            .chunks_exact(self.block_in)
            .zip(self.out_f.chunks_exact_mut(self.block_out))
        {
            let a = InterleavedSlice::new(i, 1, self.block_in)
                .map_err(|e| err(self.from, self.to, e))?;
            let mut b = InterleavedSlice::new_mut(o, 1, self.block_out)
                .map_err(|e| err(self.from, self.to, e))?;
            self.inner
                .process_into_buffer(&a, &mut b, None)
                .map_err(|e| err(self.from, self.to, e))?;
        }
        for (o, &f) in out.iter_mut().zip(&self.out_f) {
            *o = f.round().clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

/// Resamples a whole clip (prompt loading; allocates). The resampler's
/// start-up delay is trimmed so the clip keeps its timing.
pub fn resample_clip(input: &[f32], from: u32, to: u32) -> Result<Vec<i16>> {
    if from == to {
        return Ok(input
            .iter()
            .map(|&f| f.round().clamp(-32768.0, 32767.0) as i16)
            .collect());
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| err(from, to, e))?;
    let need = r.process_all_needed_output_len(input.len());
    let mut out = vec![0.0f32; need];
    let a = InterleavedSlice::new(input, 1, input.len()).map_err(|e| err(from, to, e))?;
    let mut b = InterleavedSlice::new_mut(&mut out[..], 1, need).map_err(|e| err(from, to, e))?;
    let (_, produced) = r
        .process_all_into_buffer(&a, &mut b, input.len(), None)
        .map_err(|e| err(from, to, e))?;
    Ok(out[..produced]
        .iter()
        .map(|&f| f.round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_a_tone() {
        for (from, to) in [
            (8000, 16000),
            (16000, 8000),
            (8000, 48000),
            (48000, 8000),
            (16000, 48000),
            (48000, 16000),
        ] {
            let n_in = from as usize / 50;
            let mut r = ChunkResampler::new(from, to, n_in).unwrap();
            let n_out = r.out_frames();
            let mut out = vec![0i16; n_out * 20];
            for k in 0..20 {
                let chunk: Vec<i16> = (0..n_in)
                    .map(|i| {
                        let t = (k * n_in + i) as f64 / f64::from(from);
                        (10000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect();
                r.process(&chunk, &mut out[k * n_out..(k + 1) * n_out])
                    .unwrap();
            }
            let tail = &out[n_out * 5..];
            let rms = (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64)
                .sqrt();
            assert!((rms - 7071.0).abs() < 500.0, "{from}->{to}: rms {rms}");
            assert!(
                r.delay() * 1000 / to as usize <= 6,
                "{from}->{to}: delay {}",
                r.delay()
            );
        }
    }

    #[test]
    fn clip_length_scales() {
        let input = vec![1000.0f32; 8000];
        let out = resample_clip(&input, 8000, 48000).unwrap();
        assert!((out.len() as i64 - 48000).abs() < 10, "{}", out.len());
    }
}
