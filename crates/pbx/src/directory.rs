//! The PBX's in-memory view of what the store holds: lines, trunks, public
//! numbers and rooms, indexed for the lookups every call makes.
//!
//! The core never waits on the database while routing a call: the runtime
//! loads a [`Directory`] at start and swaps in a fresh one whenever the
//! admin changes something.

use std::collections::HashMap;
use std::net::IpAddr;

use palaver_store::{Destination, Line, LineId, Number, Room, RoomId, Trunk, TrunkId};

/// Lines, trunks, numbers and rooms, indexed.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    lines: HashMap<LineId, Line>,
    line_by_ext: HashMap<String, LineId>,
    trunks: Vec<Trunk>,
    numbers: HashMap<String, Number>,
    rooms: HashMap<RoomId, Room>,
    room_by_ext: HashMap<String, RoomId>,
}

/// What a dialled number leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Line(LineId),
    Room(RoomId),
    /// Out through a trunk, dialling this number.
    Trunk(TrunkId, String),
}

impl Directory {
    pub fn new(
        lines: Vec<Line>,
        trunks: Vec<Trunk>,
        numbers: Vec<Number>,
        rooms: Vec<Room>,
    ) -> Directory {
        let mut d = Directory::default();
        for l in lines {
            d.line_by_ext.insert(l.extension.clone(), l.id);
            d.lines.insert(l.id, l);
        }
        d.trunks = trunks;
        for n in numbers {
            d.numbers.insert(normalize_number(&n.number), n);
        }
        for r in rooms {
            if let Some(ext) = &r.settings.extension {
                d.room_by_ext.insert(ext.clone(), r.id);
            }
            d.rooms.insert(r.id, r);
        }
        d
    }

    pub fn line(&self, id: LineId) -> Option<&Line> {
        self.lines.get(&id)
    }

    pub fn line_by_extension(&self, ext: &str) -> Option<&Line> {
        self.line_by_ext.get(ext).and_then(|id| self.lines.get(id))
    }

    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    pub fn room(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    pub fn trunk(&self, id: TrunkId) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.id == id)
    }

    /// The enabled trunk whose networks contain `source`.
    pub fn trunk_for_source(&self, source: IpAddr) -> Option<&Trunk> {
        self.trunks
            .iter()
            .find(|t| t.enabled && t.accepts_from(source))
    }

    /// The public number `dialled` (as a trunk delivers it), if configured.
    pub fn number(&self, dialled: &str) -> Option<&Number> {
        self.numbers.get(&normalize_number(dialled))
    }

    /// Where a call from a trunk to `dialled` goes: only public numbers.
    pub fn route_from_trunk(&self, trunk: TrunkId, dialled: &str) -> Option<Target> {
        let n = self.number(dialled)?;
        if n.trunk_id.is_some_and(|t| t != trunk) {
            return None;
        }
        Some(match n.destination {
            Destination::Line(l) => Target::Line(l),
            Destination::Room(r) => Target::Room(r),
        })
    }

    /// Where a call from a line to `dialled` goes: an extension, a public
    /// number of ours, or out through the first trunk that can place calls.
    pub fn route_from_line(&self, dialled: &str) -> Option<Target> {
        if let Some(l) = self.line_by_ext.get(dialled) {
            return Some(Target::Line(*l));
        }
        if let Some(r) = self.room_by_ext.get(dialled) {
            return Some(Target::Room(*r));
        }
        if let Some(n) = self.number(dialled) {
            return Some(match n.destination {
                Destination::Line(l) => Target::Line(l),
                Destination::Room(r) => Target::Room(r),
            });
        }
        let outbound = self.trunks.iter().find(|t| t.enabled && t.host.is_some())?;
        let digits = dialled.trim_start_matches('+');
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Target::Trunk(outbound.id, dialled.to_owned()))
    }
}

/// Numbers compare without spaces, dashes or dots.
fn normalize_number(n: &str) -> String {
    n.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect()
}
