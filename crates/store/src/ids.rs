//! Row identifiers. Each table gets its own newtype over `i64` so a `RoomId`
//! can never be passed where a `LineId` is expected. The inner value is public
//! because URLs and the API carry it as a plain number.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A line (SIP account).
    LineId
);
id_type!(
    /// A conference room.
    RoomId
);
id_type!(
    /// A SIP trunk.
    TrunkId
);
id_type!(
    /// A public number (DID).
    NumberId
);
id_type!(
    /// A conference recording.
    RecordingId
);
id_type!(
    /// A message in the mail outbox.
    MailId
);
id_type!(
    /// An administrator of the web panel.
    AdminUserId
);
id_type!(
    /// An API token for scripts.
    ApiTokenId
);
id_type!(
    /// A call detail record.
    CdrId
);
