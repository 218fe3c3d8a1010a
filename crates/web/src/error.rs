//! The crate's one error type, [`Error`], and its one mapping to HTTP
//! ([`Error::status`], plus `IntoResponse` for the JSON API). The panel
//! renders the same errors as HTML pages (see `panel::PanelError`) but takes
//! the status from [`Error::status`], so a 404 is a 404 everywhere.
//!
//! Every JSON error has one shape: `{"error": "…", "fields": {"name": "…"}}`.
//! A 5xx body only says "Something went wrong"; the real cause rides in a
//! response extension ([`InternalDetail`]) that the request-log middleware
//! logs. Bad input (4xx) is not logged as an error.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palaver_store::StoreError;
use serde::Serialize;

use crate::live::LiveError;

/// Per-field messages, keyed by the input field's name.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything a web request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (`what`: "room", "line"…).
    #[error("{what} not found")]
    NotFound {
        /// The kind of thing looked up.
        what: &'static str,
    },
    /// A value that must be unique is taken, or a row is still in use.
    #[error("{message}")]
    Conflict {
        /// The input field that clashes.
        field: String,
        /// What clashes with what, for the user.
        message: String,
    },
    /// The input failed validation; one message per wrong field.
    #[error("invalid input")]
    Invalid {
        /// What is wrong, field by field.
        fields: FieldErrors,
    },
    /// The body could not be read as the expected format at all.
    #[error("{0}")]
    BadRequest(String),
    /// No valid session or API token.
    #[error("authentication required")]
    Unauthorized,
    /// A form came without the session's CSRF token.
    #[error("the form expired or came from another site; reload the page and try again")]
    CsrfMismatch,
    /// Too many failed logins from this address or for this user.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    TooManyRequests {
        /// When the caller may try again.
        retry_after_secs: u64,
    },
    /// The request body is larger than allowed.
    #[error("the file is too large: the limit is {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// The live-room layer refused or failed a request.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// The database failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// A file in the data dir could not be read or written.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// A bug or an unexpected state; the message is for the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        let mut fields = FieldErrors::new();
        fields.insert(field.into(), message.into());
        Error::Invalid { fields }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::CsrfMismatch => StatusCode::FORBIDDEN,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Live(e) => match e {
                LiveError::NoSuchParticipant(_) => StatusCode::NOT_FOUND,
                LiveError::Refused(_) => StatusCode::CONFLICT,
                LiveError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                LiveError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            },
            Error::Store(_) | Error::Io(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The message shown to the user: the real one for 4xx, a neutral one
    /// for 5xx (the details may name files or SQL).
    pub fn public_message(&self) -> String {
        if self.status().is_server_error() && !matches!(self, Error::Live(_)) {
            "Something went wrong".to_owned()
        } else {
            self.to_string()
        }
    }

    /// The per-field messages, if this error has any.
    pub fn fields(&self) -> FieldErrors {
        match self {
            Error::Invalid { fields } => fields.clone(),
            Error::Conflict { field, message } => {
                FieldErrors::from([(field.clone(), message.clone())])
            }
            _ => FieldErrors::new(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::NotFound { what } => Error::NotFound { what },
            StoreError::Conflict { what, message } => Error::Conflict {
                field: what.to_owned(),
                message,
            },
            StoreError::Invalid { field, message } => Error::invalid(field, message),
            other => Error::Store(other),
        }
    }
}

/// The cause of a 5xx, attached to the response for the request log.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

/// The JSON body of every API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
    /// Messages for individual input fields; empty when none apply.
    pub fields: FieldErrors,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: self.public_message(),
            fields: self.fields(),
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            Error::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"palaver\""),
                );
            }
            Error::TooManyRequests { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        if status.is_server_error() {
            response
                .extensions_mut()
                .insert(InternalDetail(self.to_string()));
        }
        response
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let e: Error = StoreError::NotFound { what: "room" }.into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e: Error = StoreError::Invalid {
            field: "max_participants",
            message: "must be from 2 to 1000 (got 1)".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.fields().get("max_participants").map(String::as_str),
            Some("must be from 2 to 1000 (got 1)")
        );
        let e: Error = StoreError::Conflict {
            what: "extension",
            message: "800 is already used by room 1".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let e = Error::Internal("disk on fire at /var/lib".into());
        assert_eq!(e.public_message(), "Something went wrong");
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let detail = response.extensions().get::<InternalDetail>();
        assert!(detail.is_some_and(|d| d.0.contains("disk on fire")));
    }
}
