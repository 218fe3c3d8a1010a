//! Conference rooms (SPEC C1–C15, C17): everything a caller experiences
//! after the PBX answered a call to a room, as a sans-IO state machine, plus
//! the room events the web layer shows.
//!
//! Meet first: [`events::RoomEvent`] (sequence-numbered changes of a room),
//! [`events::RoomSnapshot`] (its whole live state) and
//! [`events::ControlCommand`] (what the control page may ask).
//!
//! No sockets, no clock, no threads in the room logic: time is an argument.

pub mod events;

pub use events::{
    ControlCommand, ControlError, LeaveReason, Origin, ParticipantView, RoomEvent, RoomEventKind,
    RoomSnapshot,
};
