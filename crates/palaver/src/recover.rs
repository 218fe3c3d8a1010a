//! Start-up repair of recordings a crash left unfinished: the WAV header is
//! fixed from the bytes already on disk (nothing written is lost) and the
//! store row is finished from what the file holds.

use std::path::Path;

use anyhow::Context;
use palaver_store::{FinishedRecording, Store};
use tracing::warn;

/// Repairs every unfinished recording; returns how many.
pub async fn recover_recordings(store: &Store) -> anyhow::Result<usize> {
    let mut n = 0;
    for rec in store
        .unfinished_recordings()
        .await
        .context("listing unfinished recordings")?
    {
        let path = std::path::PathBuf::from(&rec.path);
        let measured = tokio::task::spawn_blocking(move || repair_and_measure(&path))
            .await
            .context("repairing a recording")?;
        let (duration_ms, size_bytes) = match measured {
            Ok(v) => v,
            Err(e) => {
                warn!(recording = rec.id.0, path = %rec.path, error = %e, "recording could not be repaired; kept as empty");
                (0, 0)
            }
        };
        store
            .finish_recording(
                rec.id,
                &FinishedRecording {
                    ended_at: rec.started_at + duration_ms,
                    duration_ms,
                    size_bytes,
                    participants: "[]".into(),
                },
            )
            .await
            .context("finishing a recovered recording")?;
        warn!(recording = rec.id.0, path = %rec.path, duration_ms, "recovered a recording left by a crash");
        n += 1;
    }
    Ok(n)
}

/// Fixes the header, then reads the rate and data length back.
fn repair_and_measure(path: &Path) -> anyhow::Result<(i64, i64)> {
    palaver_media::recorder::repair(path)
        .with_context(|| format!("repairing {}", path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut i = 12;
    let mut rate = 0u32;
    while i + 8 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]) as usize;
        match &bytes[i..i + 4] {
            b"fmt " if i + 16 <= bytes.len() => {
                rate = u32::from_le_bytes([
                    bytes[i + 12],
                    bytes[i + 13],
                    bytes[i + 14],
                    bytes[i + 15],
                ]);
            }
            b"data" => {
                let samples = len as i64 / 2;
                let ms = if rate > 0 {
                    samples * 1000 / i64::from(rate)
                } else {
                    0
                };
                return Ok((ms, bytes.len() as i64));
            }
            _ => {}
        }
        i += 8 + len + (len & 1);
    }
    anyhow::bail!("{} has no data chunk", path.display())
}
