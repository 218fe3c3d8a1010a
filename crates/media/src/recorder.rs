//! Recording the room mix to WAV.
//!
//! Meet first: [`RecorderTap`] (inside the room, on the tick path: copies
//! each 20 ms mix frame into reusable PCM blocks, never touching a file),
//! [`WavFile`] (the runtime's writer thread appends blocks to a 16-bit PCM
//! WAV at the room rate and fixes the header on close) and [`repair`] /
//! [`repair_dir`] (a file left by a crash gets its header sizes set from
//! what is really on disk; nothing already written is lost).
//!
//! Blocks travel tap → runtime → writer thread → back to the tap
//! ([`RecorderTap::recycle`]), so a steady recording allocates nothing.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A filled block of room-mix PCM.
#[derive(Debug)]
pub struct RecordBlock {
    /// Which recording of the room it belongs to.
    pub recording: u64,
    /// Samples (the vector returns to the tap through `recycle`).
    pub samples: Vec<i16>,
    /// The last block of this recording: close the file after it.
    pub last: bool,
}

/// Tick-side half of the recorder: fills blocks from a pool.
///
/// The pool is filled when a recording starts, not when the room is made:
/// most rooms never record (a tone test, a two-party call), and a second
/// of audio per block times a few blocks is most of what an idle room
/// would otherwise hold.
#[derive(Debug)]
pub struct RecorderTap {
    block_len: usize,
    pool_size: usize,
    recording: Option<u64>,
    current: Vec<i16>,
    pool: Vec<Vec<i16>>,
    ready: VecDeque<RecordBlock>,
    /// Blocks allocated because the pool was empty (writer too slow).
    pub pool_misses: u64,
}

impl RecorderTap {
    /// A tap cutting blocks of `block_len` samples, keeping `pool` blocks
    /// ready while it records.
    pub fn new(block_len: usize, pool: usize) -> Self {
        Self {
            block_len,
            pool_size: pool,
            recording: None,
            current: Vec::new(),
            pool: Vec::new(),
            ready: VecDeque::new(),
            pool_misses: 0,
        }
    }

    /// The recording in progress, if any.
    pub fn recording(&self) -> Option<u64> {
        self.recording
    }

    /// Starts recording `id` (ends any recording in progress).
    pub fn start(&mut self, id: u64) {
        self.stop();
        // Here, on a command, rather than on the tick path.
        while self.pool.len() < self.pool_size {
            self.pool.push(Vec::with_capacity(self.block_len));
        }
        self.ready.reserve(self.pool_size + 2);
        if self.current.capacity() < self.block_len {
            self.current = Vec::with_capacity(self.block_len);
        }
        self.recording = Some(id);
    }

    /// Ends the recording in progress; its final block is queued.
    pub fn stop(&mut self) {
        if let Some(id) = self.recording.take() {
            let fresh = self.take_buffer();
            let samples = std::mem::replace(&mut self.current, fresh);
            self.ready.push_back(RecordBlock {
                recording: id,
                samples,
                last: true,
            });
        }
    }

    fn take_buffer(&mut self) -> Vec<i16> {
        match self.pool.pop() {
            Some(mut v) => {
                v.clear();
                v
            }
            None => {
                self.pool_misses += 1;
                Vec::with_capacity(self.block_len)
            }
        }
    }

    /// Appends one mix frame (no-op when not recording).
    pub fn push_frame(&mut self, pcm: &[i16]) {
        let Some(id) = self.recording else { return };
        let mut pcm = pcm;
        while !pcm.is_empty() {
            let room = self.block_len - self.current.len();
            let n = room.min(pcm.len());
            self.current.extend_from_slice(&pcm[..n]);
            pcm = &pcm[n..];
            if self.current.len() == self.block_len {
                let fresh = self.take_buffer();
                let samples = std::mem::replace(&mut self.current, fresh);
                self.ready.push_back(RecordBlock {
                    recording: id,
                    samples,
                    last: false,
                });
            }
        }
    }

    /// Next block for the writer.
    pub fn poll_block(&mut self) -> Option<RecordBlock> {
        self.ready.pop_front()
    }

    /// Returns a written block's buffer to the pool.
    pub fn recycle(&mut self, mut samples: Vec<i16>) {
        samples.clear();
        if samples.capacity() >= self.block_len {
            self.pool.push(samples);
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn header(rate: u32, data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// A WAV file being written incrementally. The header's sizes are zero
/// until [`WavFile::finish`]; [`repair`] fixes them if that never happens.
#[derive(Debug)]
pub struct WavFile {
    path: PathBuf,
    file: File,
    rate: u32,
    data_bytes: u64,
    scratch: Vec<u8>,
}

impl WavFile {
    /// Creates (truncates) `path` and writes a provisional header.
    pub fn create(path: &Path, rate: u32) -> Result<Self> {
        let mut file = File::create(path).map_err(io_err(path))?;
        file.write_all(&header(rate, 0)).map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            rate,
            data_bytes: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends samples (little-endian 16-bit). Each call is one `write`, so
    /// after a crash everything appended before it is on disk.
    pub fn append(&mut self, samples: &[i16]) -> Result<()> {
        self.scratch.clear();
        for s in samples {
            self.scratch.extend_from_slice(&s.to_le_bytes());
        }
        self.file
            .write_all(&self.scratch)
            .map_err(io_err(&self.path))?;
        self.data_bytes += self.scratch.len() as u64;
        Ok(())
    }

    /// Bytes of audio written.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Writes the final header and syncs. Returns the audio duration in
    /// samples.
    pub fn finish(mut self) -> Result<u64> {
        let size = u32::try_from(self.data_bytes).unwrap_or(u32::MAX);
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err(&self.path))?;
        self.file
            .write_all(&header(self.rate, size))
            .map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        Ok(self.data_bytes / 2)
    }
}

/// What [`repair`] did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// The header already matched the file.
    Intact,
    /// Sizes rewritten; this many audio bytes are now declared.
    Fixed {
        /// Declared data length after repair.
        data_bytes: u64,
    },
}

/// Makes a WAV left by a crash consistent: finds the `data` chunk, sets
/// its size and the RIFF size from the real file length (dropping a
/// trailing half sample). Audio already on disk is kept.
pub fn repair(path: &Path) -> Result<Repair> {
    let bad = |reason: &str| Error::Wav {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut riff = [0u8; 12];
    f.read_exact(&mut riff)
        .map_err(|_| bad("shorter than a RIFF header"))?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    // Walk the chunks to the data chunk.
    let mut pos = 12u64;
    let data_at = loop {
        let mut ch = [0u8; 8];
        f.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        f.read_exact(&mut ch).map_err(|_| bad("no data chunk"))?;
        if &ch[0..4] == b"data" {
            break pos;
        }
        let size = u64::from(u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]));
        pos += 8 + size + (size & 1);
        if pos >= len {
            return Err(bad("no data chunk"));
        }
    };
    let mut declared = [0u8; 4];
    f.seek(SeekFrom::Start(data_at + 4)).map_err(io_err(path))?;
    f.read_exact(&mut declared).map_err(io_err(path))?;
    let declared = u64::from(u32::from_le_bytes(declared));
    let actual = (len - data_at - 8) & !1;
    let riff_declared = u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]));
    let riff_actual = data_at + 8 + actual - 8;
    if declared == actual && riff_declared == riff_actual && len == data_at + 8 + actual {
        return Ok(Repair::Intact);
    }
    let cap = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    f.set_len(data_at + 8 + actual).map_err(io_err(path))?;
    f.seek(SeekFrom::Start(4)).map_err(io_err(path))?;
    f.write_all(&cap(riff_actual).to_le_bytes())
        .map_err(io_err(path))?;
    f.seek(SeekFrom::Start(data_at + 4)).map_err(io_err(path))?;
    f.write_all(&cap(actual).to_le_bytes())
        .map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(Repair::Fixed { data_bytes: actual })
}

/// Repairs every `*.wav` in `dir` (not recursive); returns the files that
/// needed it. Files that are not WAV at all are skipped.
pub fn repair_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut fixed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
            && let Ok(Repair::Fixed { .. }) = repair(&path)
        {
            fixed.push(path);
        }
    }
    Ok(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("palaver-rec-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn samples(n: usize) -> Vec<i16> {
        (0..n).map(|i| (i as i16).wrapping_mul(7)).collect()
    }

    #[test]
    fn tap_cuts_blocks_and_recycles() {
        let mut t = RecorderTap::new(400, 4);
        t.push_frame(&[1; 160]);
        assert!(t.poll_block().is_none());
        t.start(9);
        for _ in 0..5 {
            t.push_frame(&[2; 160]);
        }
        let b = t.poll_block().unwrap();
        assert_eq!((b.recording, b.samples.len(), b.last), (9, 400, false));
        t.recycle(b.samples);
        let b = t.poll_block().unwrap();
        t.recycle(b.samples);
        t.stop();
        let last = t.poll_block().unwrap();
        assert!(last.last);
        assert_eq!(last.samples.len(), 0);
        assert_eq!(t.pool_misses, 0);
    }

    #[test]
    fn finished_file_reads_back() {
        let d = tmp("fin");
        let p = d.join("a.wav");
        let mut w = WavFile::create(&p, 16000).unwrap();
        w.append(&samples(1000)).unwrap();
        w.append(&samples(600)).unwrap();
        assert_eq!(w.finish().unwrap(), 1600);
        let r = hound::WavReader::open(&p).unwrap();
        assert_eq!(r.spec().sample_rate, 16000);
        let got: Vec<i16> = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
        let mut want = samples(1000);
        want.extend(samples(600));
        assert_eq!(got, want);
        assert_eq!(repair(&p).unwrap(), Repair::Intact);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn crash_leftover_is_repaired_without_loss() {
        let d = tmp("crash");
        let p = d.join("crashed.wav");
        {
            let mut w = WavFile::create(&p, 8000).unwrap();
            w.append(&samples(8000)).unwrap();
            w.append(&samples(3000)).unwrap();
            // Process dies: no finish().
            std::mem::forget(w);
        }
        // A torn last write leaves half a sample.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[0x55]).unwrap();
        drop(f);
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        let fixed = repair_dir(&d).unwrap();
        assert_eq!(fixed, vec![p.clone()]);
        let r = hound::WavReader::open(&p).unwrap();
        let got: Vec<i16> = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
        let mut want = samples(8000);
        want.extend(samples(3000));
        assert_eq!(got, want);
        assert!(repair_dir(&d).unwrap().is_empty());
        std::fs::write(d.join("bad.wav"), b"nonsense").unwrap();
        assert!(repair(&d.join("bad.wav")).is_err());
        assert!(repair_dir(&d).unwrap().is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }
}
