//! The recording writer thread: one per worker, so file I/O never runs on
//! a tick. Blocks arrive over a bounded channel and their buffers go back
//! to the worker for reuse.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};

use palaver_media::recorder::{RecordBlock, WavFile};
use tokio::sync::mpsc::Sender;

use crate::{RoomEvent, RoomId};

pub(crate) enum WriterMsg {
    Open {
        room: RoomId,
        recording: u64,
        path: PathBuf,
        rate: u32,
        events: Sender<RoomEvent>,
    },
    Block {
        room: RoomId,
        block: RecordBlock,
    },
    Stop,
}

struct Open {
    file: Option<WavFile>,
    path: PathBuf,
    events: Sender<RoomEvent>,
    failed: bool,
}

pub(crate) fn run(rx: Receiver<WriterMsg>, returns: SyncSender<(RoomId, Vec<i16>)>) {
    let mut files: HashMap<(RoomId, u64), Open> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            WriterMsg::Open {
                room,
                recording,
                path,
                rate,
                events,
            } => {
                let (file, failed) = match WavFile::create(&path, rate) {
                    Ok(f) => (Some(f), false),
                    Err(e) => {
                        let _ = events.try_send(RoomEvent::RecordingFailed {
                            recording,
                            path: path.clone(),
                            reason: e.to_string(),
                        });
                        (None, true)
                    }
                };
                files.insert(
                    (room, recording),
                    Open {
                        file,
                        path,
                        events,
                        failed,
                    },
                );
            }
            WriterMsg::Block { room, block } => {
                let key = (room, block.recording);
                if let Some(open) = files.get_mut(&key) {
                    if let Some(f) = &mut open.file
                        && !block.samples.is_empty()
                        && let Err(e) = f.append(&block.samples)
                    {
                        open.failed = true;
                        open.file = None;
                        let _ = open.events.try_send(RoomEvent::RecordingFailed {
                            recording: block.recording,
                            path: open.path.clone(),
                            reason: e.to_string(),
                        });
                    }
                    if block.last
                        && let Some(open) = files.remove(&key)
                        && let Some(f) = open.file
                    {
                        let ev = match f.finish() {
                            Ok(samples) => RoomEvent::RecordingFinished {
                                recording: block.recording,
                                path: open.path,
                                samples,
                            },
                            Err(e) => RoomEvent::RecordingFailed {
                                recording: block.recording,
                                path: open.path,
                                reason: e.to_string(),
                            },
                        };
                        let _ = open.events.try_send(ev);
                    }
                }
                // The worker may be gone at shutdown; the buffer is then freed.
                let _ = returns.try_send((room, block.samples));
            }
            WriterMsg::Stop => break,
        }
    }
    // Close whatever is still open so headers are right.
    for (_, open) in files {
        if let Some(f) = open.file {
            let _ = f.finish();
        }
    }
}
