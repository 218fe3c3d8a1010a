//! Where the web layer watches live rooms: a snapshot per room, the last
//! few hundred events, and a broadcast channel of new ones.
//!
//! The core's task publishes after every batch of conference actions;
//! readers (WebSocket handlers) subscribe from any thread without waiting
//! on the core. Publishing and subscribing take the same short lock, so a
//! subscriber gets a snapshot and exactly the events after it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use palaver_conference::{RoomEvent, RoomSnapshot};
use palaver_store::RoomId;
use tokio::sync::broadcast;

/// Events kept per room for resuming subscribers.
const RECENT: usize = 512;

struct RoomLive {
    snapshot: RoomSnapshot,
    recent: VecDeque<RoomEvent>,
    tx: broadcast::Sender<RoomEvent>,
}

impl RoomLive {
    fn new(room: RoomId) -> RoomLive {
        RoomLive {
            snapshot: RoomSnapshot::idle(room, 0),
            recent: VecDeque::new(),
            tx: broadcast::channel(1024).0,
        }
    }
}

/// How a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveStart {
    /// The whole state; apply events with a higher `seq`.
    Snapshot(RoomSnapshot),
    /// The events after the `seq` the subscriber already has.
    Resume(Vec<RoomEvent>),
}

/// Live state of every room, shared between the core and the web layer.
#[derive(Default)]
pub struct LiveHub {
    rooms: Mutex<HashMap<RoomId, RoomLive>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub").finish_non_exhaustive()
    }
}

impl LiveHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomLive>> {
        // Poisoning cannot leave a room half-updated in a way that matters:
        // the next publish replaces the snapshot.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching a room: a snapshot, or (with `after`) the missed
    /// events when they are all still kept; then every new event.
    pub fn subscribe(
        &self,
        room: RoomId,
        after: Option<u64>,
    ) -> (LiveStart, broadcast::Receiver<RoomEvent>) {
        let mut rooms = self.lock();
        let live = rooms.entry(room).or_insert_with(|| RoomLive::new(room));
        let rx = live.tx.subscribe();
        if let Some(after) = after {
            let last = live.snapshot.seq;
            let first_kept = live.recent.front().map(|e| e.seq);
            if after == last {
                return (LiveStart::Resume(Vec::new()), rx);
            }
            if after < last && first_kept.is_some_and(|f| f <= after + 1) {
                let missed = live
                    .recent
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .collect();
                return (LiveStart::Resume(missed), rx);
            }
        }
        (LiveStart::Snapshot(live.snapshot.clone()), rx)
    }

    /// Records a room's new state and sends its new events.
    pub fn publish(&self, snapshot: RoomSnapshot, events: Vec<RoomEvent>) {
        let mut rooms = self.lock();
        let live = rooms
            .entry(snapshot.room)
            .or_insert_with(|| RoomLive::new(snapshot.room));
        live.snapshot = snapshot;
        for e in events {
            live.recent.push_back(e.clone());
            if live.recent.len() > RECENT {
                live.recent.pop_front();
            }
            // No receivers is fine: nobody is watching.
            let _ = live.tx.send(e);
        }
    }
}
