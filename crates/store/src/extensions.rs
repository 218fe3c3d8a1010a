//! The extension namespace shared by lines and rooms. Every extension in use
//! has one row in the `extensions` table naming its owner; its primary key is
//! what makes "line 800 and room 800" impossible, even under concurrent
//! writes. [`ExtensionOwner`] is what a dial-plan lookup gets back.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::ids::{LineId, RoomId};
use crate::store::{Store, on_pool};

/// Who an internal extension belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum ExtensionOwner {
    /// A line (phone).
    Line(LineId),
    /// A conference room.
    Room(RoomId),
}

impl Store {
    /// Who owns `extension`, if anyone: one lookup for the dial plan.
    pub async fn extension_owner(&self, extension: &str) -> Result<Option<ExtensionOwner>> {
        let row: Option<(Option<i64>, Option<i64>)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT line_id, room_id FROM extensions WHERE extension = $1")
                .bind(extension)
                .fetch_optional(pool)
                .await?
        });
        Ok(match row {
            Some((Some(line), _)) => Some(ExtensionOwner::Line(LineId(line))),
            Some((None, Some(room))) => Some(ExtensionOwner::Room(RoomId(room))),
            _ => None,
        })
    }

    /// The `Conflict` to return after a unique violation on `extension`,
    /// naming the current owner when it can still be found.
    pub(crate) async fn extension_conflict(&self, extension: &str) -> StoreError {
        let message = match self.extension_owner(extension).await {
            Ok(Some(ExtensionOwner::Line(id))) => {
                format!("{extension} is already used by line {id}")
            }
            Ok(Some(ExtensionOwner::Room(id))) => {
                format!("{extension} is already used by room {id}")
            }
            // The owner went away between our failed write and this read, or
            // the read failed: the conflict itself is still what happened.
            _ => format!("{extension} is already in use"),
        };
        StoreError::conflict("extension", message)
    }
}
