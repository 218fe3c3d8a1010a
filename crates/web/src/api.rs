//! The REST API under `/api/v1` (SPEC W2): lines, rooms (every C1–C15
//! setting, uploads, follow/control URLs, live snapshot and commands), public
//! numbers, trunks and recordings, described by an OpenAPI document at
//! `/api/v1/openapi.json` with a readable index at `/api/v1/docs`.
//!
//! Every endpoint but the two documents needs `Authorization: Bearer
//! <token>` (tokens are made in the panel). Bodies are JSON read by
//! [`ApiJson`], which turns a wrong type or a missing field into the usual
//! `422 {"error", "fields"}`; resource types here (`LineOut`, `RoomOut`, …)
//! are the wire shapes, converted from and to the store's types.
//!
//! Not here: HTML (see `panel`), the follow/control pages (see `follow`).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use palaver_store::{
    Destination, Line, LineFields, LineId, Number, NumberFields, NumberId, Recording, RecordingId,
    Room, RoomId, Transport, Trunk, TrunkFields, TrunkId, fields,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::ApiCaller;
use crate::error::{Error, ErrorBody, FieldErrors, Result};
use crate::live::{ControlCommand, RoomSnapshot, SubscriptionStart};
use crate::rooms::{self, NO_PIN_WARNING, RoomInput};
use crate::state::WebState;
use crate::uploads::{self, UploadKind};

/// JSON body extractor whose failures use the API's error shape: broken JSON
/// is a 400, a wrong type, unknown or missing field a 422 naming the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(Error::BadRequest(
                "send a JSON body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::BadRequest(e.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises `bytes`, naming the field that is wrong.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return Error::BadRequest(format!("the body is not valid JSON: {inner}"));
        }
        let text = inner.to_string();
        // serde_json appends " at line L column C": useless to a form.
        let text = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(m, _)| m)
            .to_owned();
        let quoted = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned)
        };
        if let Some(field) = quoted("missing field `") {
            return Error::invalid(field, "is required");
        }
        if let Some(field) = quoted("unknown field `") {
            return Error::invalid(field, "is not a known field");
        }
        let field = if path == "." { "body".to_owned() } else { path };
        Error::invalid(field, text)
    })
}

/// Parses a path id; anything that is not a number names nothing.
fn parse_id(raw: &str, what: &'static str) -> Result<i64> {
    raw.parse().map_err(|_| Error::NotFound { what })
}

// ---------------------------------------------------------------- lines ----

/// A line (SIP account, P1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineOut {
    /// Row id.
    pub id: i64,
    /// Extension, 2–15 digits.
    pub extension: String,
    /// Name shown to called parties.
    pub display_name: String,
    /// SIP digest password (phones need it in clear).
    pub password: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl From<Line> for LineOut {
    fn from(l: Line) -> LineOut {
        LineOut {
            id: l.id.0,
            extension: l.extension,
            display_name: l.display_name,
            password: l.password,
            created_at: l.created_at,
        }
    }
}

/// What a line is created or replaced with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// 2–15 digits, unique across lines and rooms.
    pub extension: String,
    /// 1–64 characters.
    pub display_name: String,
    /// 1–128 printable ASCII characters, no spaces.
    pub password: String,
}

impl LineInput {
    /// The store's fields, or every problem at once.
    pub fn to_fields(&self) -> Result<LineFields> {
        let mut errors = FieldErrors::new();
        for r in [
            fields::extension("extension", &self.extension),
            fields::label("display_name", &self.display_name, 1, 64),
            fields::secret("password", &self.password),
        ] {
            if let Err(palaver_store::StoreError::Invalid { field, message }) = r {
                errors.insert(field.to_owned(), message);
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid { fields: errors });
        }
        Ok(LineFields {
            extension: self.extension.clone(),
            display_name: self.display_name.clone(),
            password: self.password.clone(),
        })
    }
}

#[utoipa::path(get, path = "/api/v1/lines", tag = "lines",
    responses((status = 200, description = "Every line, by extension", body = [LineOut]),
              (status = 401, body = ErrorBody)))]
async fn list_lines(_: ApiCaller, State(s): State<WebState>) -> Result<Json<Vec<LineOut>>> {
    Ok(Json(
        s.store
            .lines()
            .await?
            .into_iter()
            .map(LineOut::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/lines", tag = "lines", request_body = LineInput,
    responses((status = 201, body = LineOut),
              (status = 409, description = "Extension taken", body = ErrorBody),
              (status = 422, description = "Invalid fields", body = ErrorBody)))]
async fn create_line(
    _: ApiCaller,
    State(s): State<WebState>,
    ApiJson(input): ApiJson<LineInput>,
) -> Result<(StatusCode, Json<LineOut>)> {
    let line = s.store.create_line(&input.to_fields()?).await?;
    s.directory_changed();
    Ok((StatusCode::CREATED, Json(line.into())))
}

#[utoipa::path(get, path = "/api/v1/lines/{id}", tag = "lines",
    params(("id" = i64, Path, description = "Line id")),
    responses((status = 200, body = LineOut), (status = 404, body = ErrorBody)))]
async fn get_line(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<LineOut>> {
    let id = LineId(parse_id(&id, "line")?);
    Ok(Json(s.store.line(id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/lines/{id}", tag = "lines", request_body = LineInput,
    params(("id" = i64, Path, description = "Line id")),
    responses((status = 200, body = LineOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_line(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<LineInput>,
) -> Result<Json<LineOut>> {
    let id = LineId(parse_id(&id, "line")?);
    let line = s.store.update_line(id, &input.to_fields()?).await?;
    s.directory_changed();
    Ok(Json(line.into()))
}

#[utoipa::path(delete, path = "/api/v1/lines/{id}", tag = "lines",
    params(("id" = i64, Path, description = "Line id")),
    responses((status = 204), (status = 404, body = ErrorBody),
              (status = 409, description = "A public number still routes here", body = ErrorBody)))]
async fn delete_line(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = LineId(parse_id(&id, "line")?);
    s.store.delete_line(id).await?;
    s.directory_changed();
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- rooms ----

/// A conference room with every setting (C1–C15).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomOut {
    /// Row id.
    pub id: i64,
    /// The settings, as for create and replace.
    #[serde(flatten)]
    pub settings: RoomInput,
    /// Stored file of the custom entry announcement (C8), if any.
    pub announcement_upload: Option<String>,
    /// Stored file of the custom music on hold (C11), if any.
    pub moh_upload: Option<String>,
    /// Public numbers (DIDs) routed to this room (C1).
    pub numbers: Vec<String>,
    /// Whether a follow URL exists (only its hash is kept).
    pub has_follow_url: bool,
    /// Whether a control URL exists.
    pub has_control_url: bool,
    /// C17: set when the room has no access PIN.
    pub warning: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl RoomOut {
    /// The wire form of `room`, with the numbers that reach it.
    pub fn new(room: &Room, numbers: Vec<String>) -> RoomOut {
        RoomOut {
            id: room.id.0,
            settings: RoomInput::from(&room.settings),
            announcement_upload: room.settings.announcement_upload.clone(),
            moh_upload: room.settings.moh_upload.clone(),
            numbers,
            has_follow_url: room.follow_token_hash.is_some(),
            has_control_url: room.control_token_hash.is_some(),
            warning: rooms::is_open(room).then(|| NO_PIN_WARNING.to_owned()),
            created_at: room.created_at,
        }
    }
}

async fn room_out(s: &WebState, room: &Room) -> Result<RoomOut> {
    let numbers = s
        .store
        .numbers_to(Destination::Room(room.id))
        .await?
        .into_iter()
        .map(|n| n.number)
        .collect();
    Ok(RoomOut::new(room, numbers))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms",
    responses((status = 200, description = "Every room, by name", body = [RoomOut])))]
async fn list_rooms(_: ApiCaller, State(s): State<WebState>) -> Result<Json<Vec<RoomOut>>> {
    let mut by_room: HashMap<RoomId, Vec<String>> = HashMap::new();
    for n in s.store.numbers().await? {
        if let Destination::Room(r) = n.destination {
            by_room.entry(r).or_default().push(n.number);
        }
    }
    let rooms = s.store.rooms().await?;
    Ok(Json(
        rooms
            .iter()
            .map(|r| RoomOut::new(r, by_room.remove(&r.id).unwrap_or_default()))
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", request_body = RoomInput,
    responses((status = 201, body = RoomOut), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_room(
    _: ApiCaller,
    State(s): State<WebState>,
    ApiJson(input): ApiJson<RoomInput>,
) -> Result<(StatusCode, Json<RoomOut>)> {
    let room = s.store.create_room(&input.to_settings(None)?).await?;
    s.directory_changed();
    Ok((StatusCode::CREATED, Json(room_out(&s, &room).await?)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 200, body = RoomOut), (status = 404, body = ErrorBody)))]
async fn get_room(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<RoomOut>> {
    let room = s.store.room(RoomId(parse_id(&id, "room")?)).await?;
    Ok(Json(room_out(&s, &room).await?))
}

#[utoipa::path(put, path = "/api/v1/rooms/{id}", tag = "rooms", request_body = RoomInput,
    description = "Replaces every setting; omitted fields take their defaults.",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 200, body = RoomOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_room(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RoomInput>,
) -> Result<Json<RoomOut>> {
    let id = RoomId(parse_id(&id, "room")?);
    let current = s.store.room(id).await?;
    let room = s
        .store
        .update_room(id, &input.to_settings(Some(&current.settings))?)
        .await?;
    s.directory_changed();
    Ok(Json(room_out(&s, &room).await?))
}

#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "rooms", request_body = RoomInput,
    description = "Changes only the settings present in the body.",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 200, body = RoomOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch_room(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<RoomOut>> {
    let id = RoomId(parse_id(&id, "room")?);
    let current = s.store.room(id).await?;
    let mut merged = serde_json::to_value(RoomInput::from(&current.settings))
        .map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(object) = merged.as_object_mut() {
        object.extend(patch);
    }
    let bytes = serde_json::to_vec(&merged).map_err(|e| Error::Internal(e.to_string()))?;
    let input: RoomInput = parse_json(&bytes)?;
    let room = s
        .store
        .update_room(id, &input.to_settings(Some(&current.settings))?)
        .await?;
    s.directory_changed();
    Ok(Json(room_out(&s, &room).await?))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "rooms",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 204), (status = 404, body = ErrorBody),
              (status = 409, description = "A public number still routes here", body = ErrorBody)))]
async fn delete_room(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = RoomId(parse_id(&id, "room")?);
    let room = s.store.room(id).await?;
    s.store.delete_room(id).await?;
    rooms::delete_urls_after_room_delete(&s, id);
    for file in [
        &room.settings.announcement_upload,
        &room.settings.moh_upload,
    ]
    .into_iter()
    .flatten()
    {
        uploads::remove_upload_files(&s, file).await;
    }
    s.directory_changed();
    Ok(StatusCode::NO_CONTENT)
}

fn upload_kind(raw: &str) -> Result<UploadKind> {
    UploadKind::parse(raw).ok_or(Error::NotFound { what: "upload" })
}

#[utoipa::path(put, path = "/api/v1/rooms/{id}/uploads/{kind}", tag = "rooms",
    description = "Uploads the room's entry announcement (C8, kind `announcement`) or music on \
                   hold (C11, kind `music`): a WAV, MP3, OGG or FLAC file as the raw body.",
    request_body(content = String, content_type = "application/octet-stream"),
    params(("id" = i64, Path, description = "Room id"),
           ("kind" = String, Path, description = "`announcement` or `music`")),
    responses((status = 200, body = RoomOut), (status = 404, body = ErrorBody),
              (status = 413, description = "Over the size limit", body = ErrorBody),
              (status = 422, description = "Not a supported audio file", body = ErrorBody)))]
async fn put_upload(
    _: ApiCaller,
    State(s): State<WebState>,
    Path((id, kind)): Path<(String, String)>,
    body: Body,
) -> Result<Json<RoomOut>> {
    let id = RoomId(parse_id(&id, "room")?);
    let kind = upload_kind(&kind)?;
    let limit = s.config.max_upload_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit_bytes: limit })?;
    let room = uploads::store_upload(&s, id, kind, &bytes).await?;
    Ok(Json(room_out(&s, &room).await?))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/uploads/{kind}", tag = "rooms",
    description = "Removes the upload: the room goes back to the default greeting or music.",
    params(("id" = i64, Path, description = "Room id"),
           ("kind" = String, Path, description = "`announcement` or `music`")),
    responses((status = 200, body = RoomOut), (status = 404, body = ErrorBody)))]
async fn delete_upload(
    _: ApiCaller,
    State(s): State<WebState>,
    Path((id, kind)): Path<(String, String)>,
) -> Result<Json<RoomOut>> {
    let id = RoomId(parse_id(&id, "room")?);
    let room = uploads::remove_upload(&s, id, upload_kind(&kind)?).await?;
    Ok(Json(room_out(&s, &room).await?))
}

/// A room's two secret URLs (C16). Shown once: only hashes are kept.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomUrlsOut {
    /// Read-only live view.
    pub follow_url: String,
    /// Live view with mute, deaf, kick, lock and record.
    pub control_url: String,
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/urls", tag = "rooms",
    description = "Generates the follow and control URLs, replacing any old ones at once \
                   (sockets open on old URLs are closed).",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 201, body = RoomUrlsOut), (status = 404, body = ErrorBody)))]
async fn generate_urls(
    _: ApiCaller,
    State(s): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RoomUrlsOut>)> {
    let id = RoomId(parse_id(&id, "room")?);
    let urls = rooms::generate_urls(&s, id).await?;
    let base = rooms::base_url(&s, &headers);
    Ok((
        StatusCode::CREATED,
        Json(RoomUrlsOut {
            follow_url: format!("{base}{}", urls.follow_path),
            control_url: format!("{base}{}", urls.control_path),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/urls", tag = "rooms",
    description = "Deletes both URLs; they stop working at once.",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_urls(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    rooms::delete_urls(&s, RoomId(parse_id(&id, "room")?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/live", tag = "live",
    description = "The room's live state now (who is in, talking, muted, locked, recording).",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 200, body = RoomSnapshot), (status = 404, body = ErrorBody)))]
async fn live_snapshot(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<RoomSnapshot>> {
    let id = RoomId(parse_id(&id, "room")?);
    s.store.room(id).await?;
    match s.live.subscribe(id, None)?.start {
        SubscriptionStart::Snapshot(snapshot) => Ok(Json(snapshot)),
        SubscriptionStart::Resume(_) => Err(Error::Internal(
            "live rooms resumed a subscription that asked for a snapshot".into(),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/live/commands", tag = "live",
    request_body = ControlCommand,
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 202, description = "Sent to the room"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn live_command(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(command): ApiJson<ControlCommand>,
) -> Result<StatusCode> {
    let id = RoomId(parse_id(&id, "room")?);
    s.store.room(id).await?;
    s.live.control(id, command)?;
    Ok(StatusCode::ACCEPTED)
}

// -------------------------------------------------------------- numbers ----

/// Where a public number's calls go.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationBody {
    /// `line` or `room`.
    #[schema(example = "room")]
    pub kind: DestinationKind,
    /// The line's or room's id.
    pub id: i64,
}

/// The kinds of destination a number can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// Ring a line.
    Line,
    /// Join a room.
    Room,
}

impl From<DestinationBody> for Destination {
    fn from(d: DestinationBody) -> Destination {
        match d.kind {
            DestinationKind::Line => Destination::Line(LineId(d.id)),
            DestinationKind::Room => Destination::Room(RoomId(d.id)),
        }
    }
}

impl From<Destination> for DestinationBody {
    fn from(d: Destination) -> DestinationBody {
        match d {
            Destination::Line(id) => DestinationBody {
                kind: DestinationKind::Line,
                id: id.0,
            },
            Destination::Room(id) => DestinationBody {
                kind: DestinationKind::Room,
                id: id.0,
            },
        }
    }
}

/// What a public number is created or replaced with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberInput {
    /// Digits with an optional leading `+`.
    #[schema(example = "+33123456789")]
    pub number: String,
    /// Where calls go; must exist.
    pub destination: DestinationBody,
    /// The trunk it arrives on, if tied to one.
    #[serde(default)]
    pub trunk_id: Option<i64>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

impl NumberInput {
    fn to_fields(&self) -> NumberFields {
        NumberFields {
            number: self.number.clone(),
            destination: self.destination.into(),
            trunk_id: self.trunk_id.map(TrunkId),
            description: self.description.clone(),
        }
    }
}

/// A public number (DID, P3).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NumberOut {
    /// Row id.
    pub id: i64,
    /// The number.
    pub number: String,
    /// Where calls go.
    pub destination: DestinationBody,
    /// The trunk it is tied to.
    pub trunk_id: Option<i64>,
    /// Free text.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl From<Number> for NumberOut {
    fn from(n: Number) -> NumberOut {
        NumberOut {
            id: n.id.0,
            number: n.number,
            destination: n.destination.into(),
            trunk_id: n.trunk_id.map(|t| t.0),
            description: n.description,
            created_at: n.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/numbers", tag = "numbers",
    responses((status = 200, body = [NumberOut])))]
async fn list_numbers(_: ApiCaller, State(s): State<WebState>) -> Result<Json<Vec<NumberOut>>> {
    Ok(Json(
        s.store
            .numbers()
            .await?
            .into_iter()
            .map(NumberOut::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/numbers", tag = "numbers", request_body = NumberInput,
    responses((status = 201, body = NumberOut), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_number(
    _: ApiCaller,
    State(s): State<WebState>,
    ApiJson(input): ApiJson<NumberInput>,
) -> Result<(StatusCode, Json<NumberOut>)> {
    let n = s.store.create_number(&input.to_fields()).await?;
    s.directory_changed();
    Ok((StatusCode::CREATED, Json(n.into())))
}

#[utoipa::path(get, path = "/api/v1/numbers/{id}", tag = "numbers",
    params(("id" = i64, Path, description = "Number id")),
    responses((status = 200, body = NumberOut), (status = 404, body = ErrorBody)))]
async fn get_number(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<NumberOut>> {
    let id = NumberId(parse_id(&id, "number")?);
    Ok(Json(s.store.number(id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/numbers/{id}", tag = "numbers", request_body = NumberInput,
    params(("id" = i64, Path, description = "Number id")),
    responses((status = 200, body = NumberOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_number(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NumberInput>,
) -> Result<Json<NumberOut>> {
    let id = NumberId(parse_id(&id, "number")?);
    let n = s.store.update_number(id, &input.to_fields()).await?;
    s.directory_changed();
    Ok(Json(n.into()))
}

#[utoipa::path(delete, path = "/api/v1/numbers/{id}", tag = "numbers",
    params(("id" = i64, Path, description = "Number id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_number(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    s.store
        .delete_number(NumberId(parse_id(&id, "number")?))
        .await?;
    s.directory_changed();
    Ok(StatusCode::NO_CONTENT)
}

// --------------------------------------------------------------- trunks ----

/// What a trunk is created or replaced with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkInput {
    /// 1–64 characters, unique.
    pub name: String,
    /// IPs or CIDR networks the trunk's calls come from.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `host[:port]` to send calls (and registrations) to.
    #[serde(default)]
    pub host: Option<String>,
    /// `udp` (default), `tcp` or `tls`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// For registration or outbound digest auth.
    #[serde(default)]
    pub username: Option<String>,
    /// On replace, omit (or `null`) to keep the current password; `""` clears it.
    #[serde(default)]
    pub password: Option<String>,
    /// Register to `host`.
    #[serde(default)]
    pub register: bool,
    /// Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_transport() -> String {
    "udp".into()
}

fn default_true() -> bool {
    true
}

impl TrunkInput {
    /// The store's fields; `keep_password` is used when none is given.
    pub fn to_fields(&self, keep_password: Option<String>) -> Result<TrunkFields> {
        let transport: Transport = self.transport.parse()?;
        let password = match &self.password {
            None => keep_password,
            Some(p) if p.is_empty() => None,
            Some(p) => Some(p.clone()),
        };
        let mut f = TrunkFields::new(self.name.clone());
        f.addresses = self.addresses.clone();
        f.host = self.host.clone();
        f.transport = transport;
        f.username = self.username.clone();
        f.password = password;
        f.register = self.register;
        f.enabled = self.enabled;
        f.validate()?;
        Ok(f)
    }
}

/// A SIP trunk (P2). The password is never shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrunkOut {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Source networks in CIDR form.
    pub addresses: Vec<String>,
    /// Where calls go.
    pub host: Option<String>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Auth user name.
    pub username: Option<String>,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether Palaver registers to `host`.
    pub register: bool,
    /// Disabled trunks neither accept nor place calls.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl From<Trunk> for TrunkOut {
    fn from(t: Trunk) -> TrunkOut {
        TrunkOut {
            id: t.id.0,
            name: t.name,
            addresses: t.addresses.iter().map(ToString::to_string).collect(),
            host: t.host,
            transport: t.transport.to_string(),
            username: t.username,
            has_password: t.password.is_some(),
            register: t.register,
            enabled: t.enabled,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/trunks", tag = "trunks",
    responses((status = 200, body = [TrunkOut])))]
async fn list_trunks(_: ApiCaller, State(s): State<WebState>) -> Result<Json<Vec<TrunkOut>>> {
    Ok(Json(
        s.store
            .trunks()
            .await?
            .into_iter()
            .map(TrunkOut::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/trunks", tag = "trunks", request_body = TrunkInput,
    responses((status = 201, body = TrunkOut), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_trunk(
    _: ApiCaller,
    State(s): State<WebState>,
    ApiJson(input): ApiJson<TrunkInput>,
) -> Result<(StatusCode, Json<TrunkOut>)> {
    let t = s.store.create_trunk(&input.to_fields(None)?).await?;
    s.directory_changed();
    Ok((StatusCode::CREATED, Json(t.into())))
}

#[utoipa::path(get, path = "/api/v1/trunks/{id}", tag = "trunks",
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkOut), (status = 404, body = ErrorBody)))]
async fn get_trunk(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<TrunkOut>> {
    let id = TrunkId(parse_id(&id, "trunk")?);
    Ok(Json(s.store.trunk(id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/trunks/{id}", tag = "trunks", request_body = TrunkInput,
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkOut), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_trunk(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TrunkInput>,
) -> Result<Json<TrunkOut>> {
    let id = TrunkId(parse_id(&id, "trunk")?);
    let current = s.store.trunk(id).await?;
    let t = s
        .store
        .update_trunk(id, &input.to_fields(current.password)?)
        .await?;
    s.directory_changed();
    Ok(Json(t.into()))
}

#[utoipa::path(delete, path = "/api/v1/trunks/{id}", tag = "trunks",
    params(("id" = i64, Path, description = "Trunk id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_trunk(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    s.store
        .delete_trunk(TrunkId(parse_id(&id, "trunk")?))
        .await?;
    s.directory_changed();
    Ok(StatusCode::NO_CONTENT)
}

// ----------------------------------------------------------- recordings ----

/// A conference recording (C10).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordingOut {
    /// Row id.
    pub id: i64,
    /// The room recorded; `null` once that room was deleted.
    pub room_id: Option<i64>,
    /// The room's name when recording started.
    pub room_name: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms; `null` while recording.
    pub ended_at: Option<i64>,
    /// Audio duration.
    pub duration_ms: i64,
    /// File size.
    pub size_bytes: i64,
    /// Who took part (shape decided by the conference layer).
    #[schema(value_type = Vec<Object>)]
    pub participants: serde_json::Value,
    /// Where to fetch the audio (WAV) with the same token.
    pub audio_url: String,
}

impl From<Recording> for RecordingOut {
    fn from(r: Recording) -> RecordingOut {
        RecordingOut {
            id: r.id.0,
            room_id: r.room_id.map(|id| id.0),
            room_name: r.room_name,
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            participants: serde_json::from_str(&r.participants)
                .unwrap_or(serde_json::Value::Array(Vec::new())),
            audio_url: format!("/api/v1/recordings/{}/audio", r.id.0),
        }
    }
}

/// Filters for the recordings list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecordingQuery {
    /// Only this room's recordings.
    pub room_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/recordings", tag = "recordings",
    params(RecordingQuery),
    responses((status = 200, description = "Newest first", body = [RecordingOut]),
              (status = 422, body = ErrorBody)))]
async fn list_recordings(
    _: ApiCaller,
    State(s): State<WebState>,
    Query(q): Query<RecordingQuery>,
) -> Result<Json<Vec<RecordingOut>>> {
    let room = match q.room_id.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Some(RoomId(r.parse().map_err(|_| {
            Error::invalid("room_id", "must be a room id (a number)")
        })?)),
        None => None,
    };
    Ok(Json(
        s.store
            .recordings(room)
            .await?
            .into_iter()
            .map(RecordingOut::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id")),
    responses((status = 200, body = RecordingOut), (status = 404, body = ErrorBody)))]
async fn get_recording(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingOut>> {
    let id = RecordingId(parse_id(&id, "recording")?);
    Ok(Json(s.store.recording(id).await?.into()))
}

/// Options for fetching a recording's audio.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AudioQuery {
    /// `1` to get `Content-Disposition: attachment`.
    pub download: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/recordings/{id}/audio", tag = "recordings",
    description = "The WAV file; supports Range requests.",
    params(("id" = i64, Path, description = "Recording id"), AudioQuery),
    responses((status = 200, content_type = "audio/wav", body = String),
              (status = 206, description = "Partial content"),
              (status = 404, body = ErrorBody)))]
async fn recording_audio(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<AudioQuery>,
    request: Request,
) -> Result<Response> {
    let id = RecordingId(parse_id(&id, "recording")?);
    let download = q.download.is_some_and(|d| d != "0");
    crate::recordings::serve_audio(&s, id, download, request).await
}

#[utoipa::path(delete, path = "/api/v1/recordings/{id}", tag = "recordings",
    description = "Deletes the recording and its file.",
    params(("id" = i64, Path, description = "Recording id")),
    responses((status = 204), (status = 404, body = ErrorBody),
              (status = 409, description = "Still recording", body = ErrorBody)))]
async fn delete_recording(
    _: ApiCaller,
    State(s): State<WebState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = RecordingId(parse_id(&id, "recording")?);
    crate::recordings::delete_recording(&s, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------- document ----

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token made in the panel (API tokens page)."))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI description of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver API", version = "1",
         description = "Lines, rooms, public numbers, trunks, recordings and live rooms of a \
                        Palaver PBX. Errors are `{\"error\": \"…\", \"fields\": {…}}`: 404 for \
                        unknown ids, 409 for conflicts, 422 for invalid fields."),
    paths(list_lines, create_line, get_line, update_line, delete_line,
          list_rooms, create_room, get_room, replace_room, patch_room, delete_room,
          put_upload, delete_upload, generate_urls, delete_urls, live_snapshot, live_command,
          list_numbers, create_number, get_number, update_number, delete_number,
          list_trunks, create_trunk, get_trunk, update_trunk, delete_trunk,
          list_recordings, get_recording, recording_audio, delete_recording),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "lines", description = "SIP accounts (P1)"),
         (name = "rooms", description = "Conference rooms (C1–C17)"),
         (name = "live", description = "Running conferences (C16, W3)"),
         (name = "numbers", description = "Public numbers / DIDs (P3)"),
         (name = "trunks", description = "SIP trunks (P2)"),
         (name = "recordings", description = "Conference recordings (C10)"))
)]
pub struct ApiDoc;

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => Error::Internal(format!("rendering the OpenAPI document: {e}")).into_response(),
    }
}

async fn docs_page() -> Html<String> {
    let doc = ApiDoc::openapi();
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Palaver API" }
                link rel="stylesheet" href="/assets/panel.css";
            }
            body.docs {
                main {
                    h1 { "Palaver API v1" }
                    p { "Send " code { "Authorization: Bearer <token>" } " with every request; make tokens on the "
                        a href="/tokens" { "API tokens" } " page. The machine-readable description is "
                        a href="/api/v1/openapi.json" { "openapi.json" } "." }
                    table {
                        thead { tr { th { "Method" } th { "Path" } th { "What it does" } } }
                        tbody {
                            @for (path, item) in &doc.paths.paths {
                                @for (method, op) in operations(item) {
                                    tr {
                                        td { code { (method) } }
                                        td { code { (path) } }
                                        td { (op.description.clone().or_else(|| op.summary.clone()).unwrap_or_default()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(page.into_string())
}

fn operations(
    item: &utoipa::openapi::path::PathItem,
) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

/// The `/api/v1` routes.
pub fn routes(max_upload_bytes: usize) -> Router<WebState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(docs_page))
        .route("/api/v1/lines", get(list_lines).post(create_line))
        .route(
            "/api/v1/lines/{id}",
            get(get_line).put(update_line).delete(delete_line),
        )
        .route("/api/v1/rooms", get(list_rooms).post(create_room))
        .route(
            "/api/v1/rooms/{id}",
            get(get_room)
                .put(replace_room)
                .patch(patch_room)
                .delete(delete_room),
        )
        .route(
            "/api/v1/rooms/{id}/uploads/{kind}",
            put(put_upload)
                .delete(delete_upload)
                // Room for the largest allowed file; the handler enforces the
                // exact limit with our error shape.
                .layer(DefaultBodyLimit::max(max_upload_bytes.saturating_add(1))),
        )
        .route(
            "/api/v1/rooms/{id}/urls",
            post(generate_urls).delete(delete_urls),
        )
        .route("/api/v1/rooms/{id}/live", get(live_snapshot))
        .route("/api/v1/rooms/{id}/live/commands", post(live_command))
        .route("/api/v1/numbers", get(list_numbers).post(create_number))
        .route(
            "/api/v1/numbers/{id}",
            get(get_number).put(update_number).delete(delete_number),
        )
        .route("/api/v1/trunks", get(list_trunks).post(create_trunk))
        .route(
            "/api/v1/trunks/{id}",
            get(get_trunk).put(update_trunk).delete(delete_trunk),
        )
        .route("/api/v1/recordings", get(list_recordings))
        .route(
            "/api/v1/recordings/{id}",
            get(get_recording).delete(delete_recording),
        )
        .route("/api/v1/recordings/{id}/audio", get(recording_audio))
        .fallback(api_not_found)
}

async fn api_not_found() -> Error {
    Error::NotFound { what: "endpoint" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<RoomInput>(br#"{"name":"x","max_participants":"many"}"#).unwrap_err();
        let fields = e.fields();
        assert!(fields["max_participants"].starts_with("invalid type: string"));
        let e = parse_json::<LineInput>(br#"{"extension":"1001"}"#).unwrap_err();
        assert_eq!(e.fields()["display_name"], "is required");
        let e = parse_json::<RoomInput>(br#"{"nmae":"x"}"#).unwrap_err();
        assert_eq!(e.fields()["nmae"], "is not a known field");
        let e = parse_json::<RoomInput>(br#"{"name": "#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = ApiDoc::openapi();
        let ops: usize = doc.paths.paths.values().map(|p| operations(p).len()).sum();
        assert_eq!(ops, 31);
        assert!(doc.to_json().unwrap().contains("\"bearer\""));
    }
}
