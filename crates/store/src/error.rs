//! The one error type of the crate, [`StoreError`], and the helpers that turn
//! driver errors into the variants a caller can act on (conflict, not found,
//! invalid). Nothing here talks to a database.

/// Everything a store operation can fail with.
///
/// The web layer maps these to HTTP: `NotFound` → 404, `Conflict` → 409,
/// `Invalid` → 422, `Database`/`Migration` → 500 (logged).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (`what` names the kind: "line", "room"…).
    #[error("{what} not found")]
    NotFound {
        /// The kind of row that was looked up.
        what: &'static str,
    },
    /// A value that must be unique (or a row that must not be referenced) is
    /// already taken; `what` is the field, `message` says by whom.
    #[error("{what}: {message}")]
    Conflict {
        /// The field whose value clashes, as named in the input type.
        what: &'static str,
        /// A sentence for the user, e.g. "800 is already used by room 3".
        message: String,
    },
    /// Input failed validation; `field` is the input field's name.
    #[error("{field}: {message}")]
    Invalid {
        /// The field that is wrong, as named in the input type.
        field: &'static str,
        /// What is wrong with it, phrased for the user.
        message: String,
    },
    /// The database failed or returned something we could not decode.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed at open.
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(what: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            what,
            message: message.into(),
        }
    }

    /// A stored value that our own code wrote but can no longer parse: the
    /// database was edited by hand or by a newer version.
    pub(crate) fn corrupt(what: &str, value: &str) -> Self {
        StoreError::Database(sqlx::Error::Decode(
            format!("stored {what} {value:?} is not valid").into(),
        ))
    }
}

/// The crate's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn is_unique_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
}
