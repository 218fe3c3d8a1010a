//! Panel pages for conference rooms: the list, and the editor with every
//! setting of C1–C15, the C17 warning, the announcement and music uploads
//! (C8, C11) and the follow/control URLs (C16).

use axum::Router;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, html};
use palaver_store::{Destination, Language, Room, RoomId, RoomSettings};
use serde::Deserialize;

use super::{
    InputKind, NoticeQuery, PanelResult, check_csrf, checkbox, csrf_field, field_error, layout,
    notice, page, post_button, text_input, upload_body_limit,
};
use crate::auth::PanelSession;
use crate::error::{Error, FieldErrors};
use crate::rooms::{self, NO_PIN_WARNING, RoomInput, RoomUrls};
use crate::state::WebState;
use crate::uploads::{self, UploadKind};

pub(super) fn routes(max_upload_bytes: usize) -> Router<WebState> {
    Router::new()
        .route("/rooms", get(list).post(create))
        .route("/rooms/new", get(new_form))
        .route("/rooms/{id}", get(edit).post(update))
        .route("/rooms/{id}/delete", post(delete))
        .route("/rooms/{id}/urls", post(generate_urls))
        .route("/rooms/{id}/urls/delete", post(delete_urls))
        .route(
            "/rooms/{id}/uploads/{kind}",
            post(upload).layer(upload_body_limit(max_upload_bytes)),
        )
        .route("/rooms/{id}/uploads/{kind}/delete", post(remove_upload))
}

fn room_id(raw: &str) -> Result<RoomId, Error> {
    raw.parse()
        .map(RoomId)
        .map_err(|_| Error::NotFound { what: "room" })
}

async fn list(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let rooms = s.store.rooms().await?;
    let numbers = s.store.numbers().await?;
    let content = html! {
        div.page-head {
            h1 { "Rooms" }
            a.button.primary href="/rooms/new" { "New room" }
        }
        (notice(q.notice.as_deref()))
        @if rooms.is_empty() {
            div.card.empty { p { "No rooms yet. " a href="/rooms/new" { "Create the first one" } "." } }
        } @else {
            table.list {
                thead { tr { th { "Name" } th { "Extension" } th { "Public numbers" } th { "Access" } th { "Max" } th { "Options" } } }
                tbody {
                    @for r in &rooms {
                        tr {
                            td { a href=(format!("/rooms/{}", r.id)) { (r.settings.name) } }
                            td { (r.settings.extension.as_deref().unwrap_or("—")) }
                            td {
                                @let dids: Vec<&str> = numbers.iter().filter(|n| n.destination == Destination::Room(r.id)).map(|n| n.number.as_str()).collect();
                                @if dids.is_empty() { span.muted { "—" } } @else { (dids.join(", ")) }
                            }
                            td {
                                @if rooms::is_open(r) { span.badge.warn title=(NO_PIN_WARNING) { "No PIN" } }
                                @else { span.badge.ok { "PIN" } }
                                @if r.settings.host_pin.is_some() { " " span.badge { "host PIN" } }
                            }
                            td { (r.settings.max_participants) }
                            td.options { (options_summary(&r.settings)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Rooms", "/rooms", &session, content).into_response())
}

fn options_summary(s: &RoomSettings) -> String {
    let mut parts = vec![s.language.code().to_uppercase()];
    for (on, label) in [
        (s.wait_for_host, "wait for host"),
        (s.mute_on_entry, "muted on entry"),
        (s.announce_join_leave, "join tones"),
        (!s.allow_anonymous, "no anonymous"),
        (s.recording_autostart, "auto-record"),
        (s.recording_enabled && !s.recording_autostart, "recording"),
    ] {
        if on {
            parts.push(label.to_owned());
        }
    }
    parts.join(" · ")
}

/// The room form as posted: text fields as typed, checkboxes present or not.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RoomForm {
    csrf: String,
    name: String,
    extension: String,
    access_pin: String,
    host_pin: String,
    max_participants: String,
    language: String,
    mute_on_entry: Option<String>,
    wait_for_host: Option<String>,
    announce_join_leave: Option<String>,
    allow_anonymous: Option<String>,
    recording_enabled: Option<String>,
    recording_autostart: Option<String>,
    report_email: String,
}

impl RoomForm {
    fn from_settings(s: &RoomSettings) -> RoomForm {
        let on = |b: bool| b.then(|| "on".to_owned());
        RoomForm {
            csrf: String::new(),
            name: s.name.clone(),
            extension: s.extension.clone().unwrap_or_default(),
            access_pin: s.access_pin.clone().unwrap_or_default(),
            host_pin: s.host_pin.clone().unwrap_or_default(),
            max_participants: s.max_participants.to_string(),
            language: s.language.code().to_owned(),
            mute_on_entry: on(s.mute_on_entry),
            wait_for_host: on(s.wait_for_host),
            announce_join_leave: on(s.announce_join_leave),
            allow_anonymous: on(s.allow_anonymous),
            recording_enabled: on(s.recording_enabled),
            recording_autostart: on(s.recording_autostart),
            report_email: s.report_email.clone().unwrap_or_default(),
        }
    }

    /// The settings, or every field error (a non-number participant limit
    /// included).
    fn to_settings(&self, existing: Option<&RoomSettings>) -> Result<RoomSettings, Error> {
        let mut errors = FieldErrors::new();
        let max = match self.max_participants.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                errors.insert(
                    "max_participants".into(),
                    "must be a number between 2 and 1000".into(),
                );
                palaver_store::rooms::DEFAULT_MAX_PARTICIPANTS
            }
        };
        let text = |s: &str| Some(s.to_owned());
        let input = RoomInput {
            name: self.name.clone(),
            extension: text(&self.extension),
            access_pin: text(&self.access_pin),
            host_pin: text(&self.host_pin),
            max_participants: max,
            language: self.language.clone(),
            mute_on_entry: self.mute_on_entry.is_some(),
            wait_for_host: self.wait_for_host.is_some(),
            announce_join_leave: self.announce_join_leave.is_some(),
            allow_anonymous: self.allow_anonymous.is_some(),
            recording_enabled: self.recording_enabled.is_some(),
            recording_autostart: self.recording_autostart.is_some(),
            report_email: text(&self.report_email),
        };
        match input.to_settings(existing) {
            Ok(s) if errors.is_empty() => Ok(s),
            Ok(_) => Err(Error::Invalid { fields: errors }),
            Err(Error::Invalid { fields }) => {
                errors.extend(fields);
                Err(Error::Invalid { fields: errors })
            }
            Err(e) => Err(e),
        }
    }
}

/// Everything the editor page shows besides the form.
struct EditorContext<'a> {
    room: Option<&'a Room>,
    numbers: Vec<String>,
    urls: Option<(String, String)>,
    notice: Option<&'a str>,
    upload_error: Option<(UploadKind, String)>,
}

fn editor(
    session: &PanelSession,
    form: &RoomForm,
    errors: &FieldErrors,
    ctx: EditorContext<'_>,
) -> Markup {
    let action = match ctx.room {
        Some(r) => format!("/rooms/{}", r.id),
        None => "/rooms".to_owned(),
    };
    let title = ctx
        .room
        .map(|r| r.settings.name.clone())
        .unwrap_or_else(|| "New room".to_owned());
    let open = form.access_pin.trim().is_empty() || form.access_pin.trim() == "0";
    let content = html! {
        div.page-head {
            div { p.crumbs { a href="/rooms" { "Rooms" } " /" } h1 { (title) } }
        }
        (notice(ctx.notice))
        @if !errors.is_empty() {
            p.banner.error role="alert" { "Please correct the fields marked below." }
        }
        div.editor {
            form.card.room-form method="post" action=(action) novalidate {
                (csrf_field(session))
                fieldset {
                    legend { "Room" }
                    div.row {
                        (text_input("name", "Name", &form.name, errors, None, InputKind::Required))
                        (text_input("extension", "Extension", &form.extension, errors,
                            Some("Internal number phones dial, 2–15 digits (C1)."), InputKind::Digits))
                    }
                }
                fieldset {
                    legend { "Access" }
                    @if open {
                        p.banner.warn #no-pin-warning role="note" { strong { "No PIN: " } "anyone who knows the number can join." }
                    }
                    div.row {
                        (text_input("access_pin", "Access PIN", &form.access_pin, errors,
                            Some("1–20 digits. Empty or 0: no PIN. Callers get 3 tries (C3)."), InputKind::Digits))
                        (text_input("host_pin", "Host PIN", &form.host_pin, errors,
                            Some("Callers who enter it join as host (C4)."), InputKind::Digits))
                    }
                    div.row {
                        (checkbox("wait_for_host", "Wait for host", form.wait_for_host.is_some(),
                            "Others hear music until a host joins (C5). Needs a host PIN.", errors))
                        (checkbox("allow_anonymous", "Allow anonymous callers", form.allow_anonymous.is_some(),
                            "Callers who withhold their number may join (C12).", errors))
                    }
                }
                fieldset {
                    legend { "Participants" }
                    div.row {
                        (text_input("max_participants", "Maximum participants", &form.max_participants, errors,
                            Some("2–1000. Callers beyond it hear that the conference is full (C2)."), InputKind::Number(2, 1000)))
                        div.field.invalid[errors.contains_key("language")] {
                            label for="language" { "Language" }
                            select #language name="language" {
                                @for l in Language::ALL {
                                    option value=(l.code()) selected[form.language == l.code()] { (language_name(l)) }
                                }
                            }
                            p.hint { "Every prompt of the room is in this language (C13)." }
                            (field_error(errors, "language"))
                        }
                    }
                    div.row {
                        (checkbox("mute_on_entry", "Mute on entry", form.mute_on_entry.is_some(),
                            "Participants join with their microphone off (C6).", errors))
                        (checkbox("announce_join_leave", "Announce join and leave", form.announce_join_leave.is_some(),
                            "A tone plays when someone joins or leaves (C7).", errors))
                    }
                }
                fieldset {
                    legend { "Recording and report" }
                    div.row {
                        (checkbox("recording_enabled", "Recording enabled", form.recording_enabled.is_some(),
                            "Hosts and the control page may record; callers hear that the call is recorded (C9).", errors))
                        (checkbox("recording_autostart", "Start recording automatically", form.recording_autostart.is_some(),
                            "Recording starts with the first participant (C9).", errors))
                    }
                    (text_input("report_email", "Report e-mail", &form.report_email, errors,
                        Some("Where the end-of-conference report goes (C15). Empty: no report."), InputKind::Email))
                }
                div.actions {
                    button.primary type="submit" { @if ctx.room.is_some() { "Save" } @else { "Create room" } }
                    a.button href="/rooms" { "Cancel" }
                }
            }
            @if let Some(room) = ctx.room {
                aside {
                    (numbers_card(&ctx.numbers, room))
                    (urls_card(session, room, ctx.urls.as_ref()))
                    (uploads_card(session, room, ctx.upload_error.as_ref()))
                    div.card {
                        h2 { "Recordings" }
                        p { a href=(format!("/recordings?room={}", room.id)) { "Recordings of this room" } }
                    }
                    div.card.danger {
                        h2 { "Delete room" }
                        (post_button(session, &format!("/rooms/{}/delete", room.id), "Delete this room", "danger",
                            Some("Delete this room? Its recordings are kept.")))
                    }
                }
            }
        }
    };
    layout(&title, "/rooms", session, content)
}

fn language_name(l: Language) -> &'static str {
    match l {
        Language::En => "English",
        Language::Fr => "Français",
        Language::De => "Deutsch",
        Language::Es => "Español",
        Language::It => "Italiano",
        Language::Nl => "Nederlands",
    }
}

fn numbers_card(numbers: &[String], room: &Room) -> Markup {
    html! {
        div.card {
            h2 { "Public numbers" }
            @if numbers.is_empty() { p.muted { "No public number routes here yet." } }
            @else { ul.plain { @for n in numbers { li { code { (n) } } } } }
            p { a href=(format!("/numbers/new?room={}", room.id)) { "Route a public number here" } }
        }
    }
}

fn urls_card(session: &PanelSession, room: &Room, fresh: Option<&(String, String)>) -> Markup {
    let exists = room.follow_token_hash.is_some() || room.control_token_hash.is_some();
    html! {
        div.card #urls {
            h2 { "Follow and control URLs" }
            @if let Some((follow, control)) = fresh {
                p.banner.ok { "New URLs generated. Copy them now: only a fingerprint is kept, so they cannot be shown again." }
                div.field {
                    label for="follow-url" { "Follow (read-only)" }
                    input #follow-url type="text" readonly value=(follow) onclick="this.select()";
                }
                div.field {
                    label for="control-url" { "Control" }
                    input #control-url type="text" readonly value=(control) onclick="this.select()";
                }
            } @else if exists {
                p { "URLs exist. Regenerate to get new ones; the old ones stop working at once." }
            } @else {
                p.muted { "No URLs yet. The follow URL shows who is in the room and who talks; the control URL also mutes, kicks, locks and records." }
            }
            div.actions {
                (post_button(session, &format!("/rooms/{}/urls", room.id),
                    if exists { "Regenerate URLs" } else { "Generate URLs" }, "",
                    exists.then_some("Regenerate? The current follow and control links stop working at once.")))
                @if exists {
                    (post_button(session, &format!("/rooms/{}/urls/delete", room.id), "Delete URLs", "danger",
                        Some("Delete both links? They stop working at once.")))
                }
            }
        }
    }
}

fn uploads_card(
    session: &PanelSession,
    room: &Room,
    error: Option<&(UploadKind, String)>,
) -> Markup {
    let rows = [
        (
            UploadKind::Announcement,
            "Entry announcement",
            "Replaces the default greeting (C8).",
            &room.settings.announcement_upload,
        ),
        (
            UploadKind::Music,
            "Music on hold",
            "Plays while callers wait (C11). Default music otherwise.",
            &room.settings.moh_upload,
        ),
    ];
    html! {
        div.card #uploads {
            h2 { "Announcement and music" }
            p.hint { "WAV, MP3, OGG or FLAC, up to 20 MiB." }
            @for (kind, label, hint, current) in rows {
                div.upload {
                    h3 { (label) }
                    p.hint { (hint) }
                    @if let Some(file) = current {
                        p { "Current: " code { (file) } }
                        (post_button(session, &format!("/rooms/{}/uploads/{}/delete", room.id, kind.as_str()),
                            "Remove", "small", None))
                    } @else {
                        p.muted { "Default." }
                    }
                    form.upload-form method="post" enctype="multipart/form-data"
                        action=(format!("/rooms/{}/uploads/{}", room.id, kind.as_str())) {
                        (csrf_field(session))
                        input type="file" name="file" accept=".wav,.mp3,.ogg,.oga,.flac,audio/*" required;
                        button.small type="submit" { "Upload" }
                    }
                    @if let Some((_, message)) = error.filter(|(k, _)| *k == kind) {
                        p.field-error.upload-error role="alert" { (message) }
                    }
                }
            }
        }
    }
}

async fn new_form(session: PanelSession) -> PanelResult {
    let form = RoomForm::from_settings(&RoomSettings::default());
    let ctx = EditorContext {
        room: None,
        numbers: Vec::new(),
        urls: None,
        notice: None,
        upload_error: None,
    };
    Ok(editor(&session, &form, &FieldErrors::new(), ctx).into_response())
}

async fn create(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<RoomForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let result = match form.to_settings(None) {
        Ok(settings) => s.store.create_room(&settings).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(room) => {
            s.directory_changed();
            Ok(Redirect::to(&format!("/rooms/{}?notice=created", room.id)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let ctx = EditorContext {
                room: None,
                numbers: Vec::new(),
                urls: None,
                notice: None,
                upload_error: None,
            };
            Ok(page(e.status(), editor(&session, &form, &e.fields(), ctx)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn room_numbers(s: &WebState, room: RoomId) -> Result<Vec<String>, Error> {
    Ok(s.store
        .numbers_to(Destination::Room(room))
        .await?
        .into_iter()
        .map(|n| n.number)
        .collect())
}

async fn edit(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let room = s.store.room(room_id(&id)?).await?;
    let ctx = EditorContext {
        numbers: room_numbers(&s, room.id).await?,
        room: Some(&room),
        urls: None,
        notice: q.notice.as_deref(),
        upload_error: None,
    };
    let form = RoomForm::from_settings(&room.settings);
    Ok(editor(&session, &form, &FieldErrors::new(), ctx).into_response())
}

async fn update(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<RoomForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let room = s.store.room(room_id(&id)?).await?;
    let result = match form.to_settings(Some(&room.settings)) {
        Ok(settings) => s
            .store
            .update_room(room.id, &settings)
            .await
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(room) => {
            s.directory_changed();
            Ok(Redirect::to(&format!("/rooms/{}?notice=saved", room.id)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let ctx = EditorContext {
                numbers: room_numbers(&s, room.id).await?,
                room: Some(&room),
                urls: None,
                notice: None,
                upload_error: None,
            };
            Ok(page(e.status(), editor(&session, &form, &e.fields(), ctx)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn delete(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = room_id(&id)?;
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
    Ok(Redirect::to("/rooms?notice=deleted").into_response())
}

async fn generate_urls(
    State(s): State<WebState>,
    session: PanelSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = room_id(&id)?;
    let RoomUrls {
        follow_path,
        control_path,
    } = rooms::generate_urls(&s, id).await?;
    let base = rooms::base_url(&s, &headers);
    let room = s.store.room(id).await?;
    let ctx = EditorContext {
        numbers: room_numbers(&s, id).await?,
        room: Some(&room),
        urls: Some((
            format!("{base}{follow_path}"),
            format!("{base}{control_path}"),
        )),
        notice: None,
        upload_error: None,
    };
    let form = RoomForm::from_settings(&room.settings);
    let mut r = editor(&session, &form, &FieldErrors::new(), ctx).into_response();
    // The page holds the secrets in clear: keep it out of caches.
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn delete_urls(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = room_id(&id)?;
    rooms::delete_urls(&s, id).await?;
    Ok(Redirect::to(&format!("/rooms/{id}?notice=urls-deleted")).into_response())
}

async fn upload(
    State(s): State<WebState>,
    session: PanelSession,
    Path((id, kind)): Path<(String, String)>,
    mut multipart: Multipart,
) -> PanelResult {
    let id = room_id(&id)?;
    let kind = UploadKind::parse(&kind).ok_or(Error::NotFound { what: "upload" })?;
    let mut csrf = None;
    let mut file = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return upload_error(
                    &s,
                    &session,
                    id,
                    kind,
                    Error::PayloadTooLarge {
                        limit_bytes: s.config.max_upload_bytes,
                    },
                )
                .await;
            }
            Err(e) => return Err(Error::BadRequest(e.body_text()).into()),
        };
        match field.name() {
            Some("csrf") => {
                csrf = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| Error::BadRequest(e.body_text()))?,
                )
            }
            Some("file") => {
                // Checked before reading the file, so a forged form costs nothing.
                check_csrf(&session, csrf.as_deref().unwrap_or(""))?;
                let bytes = match field.bytes().await {
                    Ok(b) => b,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return upload_error(
                            &s,
                            &session,
                            id,
                            kind,
                            Error::PayloadTooLarge {
                                limit_bytes: s.config.max_upload_bytes,
                            },
                        )
                        .await;
                    }
                    Err(e) => return Err(Error::BadRequest(e.body_text()).into()),
                };
                file = Some(bytes);
            }
            _ => {}
        }
    }
    check_csrf(&session, csrf.as_deref().unwrap_or(""))?;
    let Some(bytes) = file else {
        return upload_error(
            &s,
            &session,
            id,
            kind,
            Error::invalid("file", "choose a file to upload"),
        )
        .await;
    };
    match uploads::store_upload(&s, id, kind, &bytes).await {
        Ok(_) => Ok(Redirect::to(&format!("/rooms/{id}?notice=uploaded#uploads")).into_response()),
        Err(e @ (Error::Invalid { .. } | Error::PayloadTooLarge { .. })) => {
            upload_error(&s, &session, id, kind, e).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The room page again, with the upload's error next to its form.
async fn upload_error(
    s: &WebState,
    session: &PanelSession,
    id: RoomId,
    kind: UploadKind,
    error: Error,
) -> PanelResult {
    let room = s.store.room(id).await?;
    let message = match &error {
        Error::Invalid { fields } => fields
            .get("file")
            .map(|m| format!("Not uploaded: {m}."))
            .unwrap_or_else(|| error.to_string()),
        other => format!("{}.", other.public_message()),
    };
    let ctx = EditorContext {
        numbers: room_numbers(s, id).await?,
        room: Some(&room),
        urls: None,
        notice: None,
        upload_error: Some((kind, message)),
    };
    let form = RoomForm::from_settings(&room.settings);
    Ok(page(
        error.status(),
        editor(session, &form, &FieldErrors::new(), ctx),
    ))
}

async fn remove_upload(
    State(s): State<WebState>,
    session: PanelSession,
    Path((id, kind)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = room_id(&id)?;
    let kind = UploadKind::parse(&kind).ok_or(Error::NotFound { what: "upload" })?;
    uploads::remove_upload(&s, id, kind).await?;
    Ok(Redirect::to(&format!("/rooms/{id}?notice=removed#uploads")).into_response())
}
