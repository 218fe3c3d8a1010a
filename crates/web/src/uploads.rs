//! Room announcement and music-on-hold uploads (SPEC C8, C11): size and
//! format checks ([`check_audio`]), conversion ([`convert`]), and storage in
//! `<data dir>/uploads/` with the file name recorded in the room's settings.
//!
//! [`convert`] is the one place to swap for the conference layer's
//! `audio_upload::convert` (WAV/MP3/OGG/FLAC → internal WAV) once it lands;
//! until then uploads are checked (size, container magic, WAV encoding) and
//! kept as sent.
//!
//! Not here: decoding audio, playing it.

use std::path::PathBuf;

use palaver_store::{Room, RoomId};
use rand::Rng;

use crate::error::{Error, Result};
use crate::state::WebState;

/// Which of a room's two uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// The greeting that replaces the default one (C8).
    Announcement,
    /// Music on hold while waiting (C11).
    Music,
}

impl UploadKind {
    /// The URL segment and file-name part: `announcement` or `music`.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Announcement => "announcement",
            UploadKind::Music => "music",
        }
    }

    /// Parses a URL segment.
    pub fn parse(s: &str) -> Option<UploadKind> {
        match s {
            "announcement" => Some(UploadKind::Announcement),
            "music" => Some(UploadKind::Music),
            _ => None,
        }
    }
}

/// A container format we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// RIFF/WAVE.
    Wav,
    /// MPEG layer III (with or without an ID3 tag).
    Mp3,
    /// Ogg (Vorbis or Opus).
    Ogg,
    /// FLAC.
    Flac,
}

impl AudioFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Flac => "flac",
        }
    }
}

const NOT_AUDIO: &str = "is not a WAV, MP3, OGG or FLAC file";

/// Checks an upload's size and format; the message says what is wrong.
pub fn check_audio(bytes: &[u8], max_bytes: usize) -> Result<AudioFormat> {
    if bytes.is_empty() {
        return Err(Error::invalid("file", "is empty"));
    }
    if bytes.len() > max_bytes {
        return Err(Error::PayloadTooLarge {
            limit_bytes: max_bytes,
        });
    }
    let format = if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        AudioFormat::Wav
    } else if bytes.starts_with(b"OggS") {
        AudioFormat::Ogg
    } else if bytes.starts_with(b"fLaC") {
        AudioFormat::Flac
    } else if bytes.starts_with(b"ID3")
        || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
    {
        AudioFormat::Mp3
    } else {
        return Err(Error::invalid("file", NOT_AUDIO));
    };
    if format == AudioFormat::Wav {
        check_wav(bytes)?;
    }
    Ok(format)
}

/// Walks the RIFF chunks to the `fmt ` chunk and checks the encoding is one
/// a decoder can read (PCM, float, A-law, µ-law, extensible).
fn check_wav(bytes: &[u8]) -> Result<()> {
    let mut at = 12usize;
    while let Some(header) = bytes.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[0..4] == b"fmt " {
            let Some(fmt) = bytes
                .get(at + 8..at + 8 + size.min(16))
                .filter(|f| f.len() >= 16)
            else {
                return Err(Error::invalid(
                    "file",
                    "is a WAV file with a damaged header",
                ));
            };
            let encoding = u16::from_le_bytes([fmt[0], fmt[1]]);
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            if !matches!(encoding, 1 | 3 | 6 | 7 | 0xFFFE) {
                return Err(Error::invalid(
                    "file",
                    format!("is a WAV file with encoding {encoding}; use PCM"),
                ));
            }
            if channels == 0 {
                return Err(Error::invalid("file", "is a WAV file with no channels"));
            }
            return Ok(());
        }
        // Chunks are padded to even sizes.
        at = at.saturating_add(8).saturating_add(size + (size & 1));
    }
    Err(Error::invalid(
        "file",
        "is a WAV file without a format chunk",
    ))
}

/// Turns an accepted upload into the file kept for the room: (extension,
/// bytes). The swap point for the conference layer's converter.
pub fn convert(format: AudioFormat, bytes: &[u8]) -> Result<(&'static str, Vec<u8>)> {
    Ok((format.extension(), bytes.to_vec()))
}

fn uploads_dir(state: &WebState) -> PathBuf {
    state.config.data_dir.join("uploads")
}

/// The path of an upload named in a room's settings.
pub fn upload_path(state: &WebState, file_name: &str) -> PathBuf {
    uploads_dir(state).join(file_name)
}

/// Checks, converts and stores an upload for `room`, records it in the room
/// and removes the file it replaces.
pub async fn store_upload(
    state: &WebState,
    room: RoomId,
    kind: UploadKind,
    bytes: &[u8],
) -> Result<Room> {
    let current = state.store.room(room).await?;
    let format = check_audio(bytes, state.config.max_upload_bytes)?;
    let (extension, converted) = convert(format, bytes)?;
    let dir = uploads_dir(state);
    tokio::fs::create_dir_all(&dir).await?;
    let tag: u32 = rand::rng().random();
    let name = format!("room{}-{}-{tag:08x}.{extension}", room.0, kind.as_str());
    let temp = dir.join(format!(".{name}.part"));
    tokio::fs::write(&temp, &converted).await?;
    tokio::fs::rename(&temp, dir.join(&name)).await?;

    let mut settings = current.settings.clone();
    let old = match kind {
        UploadKind::Announcement => settings.announcement_upload.replace(name.clone()),
        UploadKind::Music => settings.moh_upload.replace(name.clone()),
    };
    match state.store.update_room(room, &settings).await {
        Ok(updated) => {
            if let Some(old) = old {
                remove_file(&dir.join(old)).await;
            }
            state.directory_changed();
            Ok(updated)
        }
        Err(e) => {
            remove_file(&dir.join(&name)).await;
            Err(e.into())
        }
    }
}

/// Removes a room's upload (the room goes back to the default prompt or music).
pub async fn remove_upload(state: &WebState, room: RoomId, kind: UploadKind) -> Result<Room> {
    let current = state.store.room(room).await?;
    let mut settings = current.settings.clone();
    let old = match kind {
        UploadKind::Announcement => settings.announcement_upload.take(),
        UploadKind::Music => settings.moh_upload.take(),
    };
    let Some(old) = old else {
        return Err(Error::NotFound { what: "upload" });
    };
    let updated = state.store.update_room(room, &settings).await?;
    remove_file(&upload_path(state, &old)).await;
    state.directory_changed();
    Ok(updated)
}

/// Deletes a file that may already be gone; other failures are logged, since
/// the database change they follow has happened.
pub(crate) async fn remove_file(path: &std::path::Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not delete file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn wav(encoding: u16) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
        v.extend_from_slice(b"LIST\x03\0\0\0abc\0"); // odd size, padded
        v.extend_from_slice(b"fmt \x10\0\0\0");
        v.extend_from_slice(&encoding.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&16000u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data\x04\0\0\0\0\0\0\0");
        v
    }

    fn message(r: Result<AudioFormat>) -> String {
        match r {
            Err(Error::Invalid { fields }) => fields["file"].clone(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn formats_are_recognised() {
        assert_eq!(check_audio(&wav(1), 1000).unwrap(), AudioFormat::Wav);
        assert_eq!(check_audio(b"OggS\0\x02", 1000).unwrap(), AudioFormat::Ogg);
        assert_eq!(check_audio(b"fLaC\0\0", 1000).unwrap(), AudioFormat::Flac);
        assert_eq!(check_audio(b"ID3\x04\0", 1000).unwrap(), AudioFormat::Mp3);
        assert_eq!(
            check_audio(&[0xFF, 0xFB, 0x90], 1000).unwrap(),
            AudioFormat::Mp3
        );
    }

    #[test]
    fn bad_files_say_why() {
        assert_eq!(message(check_audio(b"", 10)), "is empty");
        assert_eq!(message(check_audio(b"%PDF-1.4", 100)), NOT_AUDIO);
        assert_eq!(
            message(check_audio(&wav(2), 1000)),
            "is a WAV file with encoding 2; use PCM"
        );
        assert_eq!(
            message(check_audio(b"RIFF\0\0\0\0WAVEdata\0\0\0\0", 1000)),
            "is a WAV file without a format chunk"
        );
        assert!(matches!(
            check_audio(&[0u8; 11], 10),
            Err(Error::PayloadTooLarge { limit_bytes: 10 })
        ));
    }

    #[test]
    fn truncated_and_hostile_wavs_never_panic() {
        let full = wav(1);
        for len in 0..full.len() {
            let _ = check_audio(&full[..len], 1000);
        }
        let mut huge = b"RIFF\0\0\0\0WAVE".to_vec();
        huge.extend_from_slice(b"junk\xff\xff\xff\xff");
        assert!(check_audio(&huge, 1000).is_err());
    }
}
