//! Panel pages for the rest of the directory and the archive: lines (P1),
//! public numbers (P3), trunks (P2), recordings (C10) and API tokens. Each
//! resource has a list page with a "new" form and an edit page using the same
//! form.

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, html};
use palaver_store::{
    ApiTokenId, Destination, Line, LineId, NumberFields, NumberId, RecordingId, RoomId, Trunk,
    TrunkId,
};
use serde::Deserialize;

use super::{
    InputKind, NoticeQuery, PanelResult, check_csrf, checkbox, csrf_field, field_error, layout,
    notice, page, post_button, text_input,
};
use crate::api::{LineInput, TrunkInput};
use crate::auth::{PanelSession, random_token, sha256_hex};
use crate::error::{Error, FieldErrors};
use crate::state::WebState;

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/lines", get(lines).post(create_line))
        .route("/lines/{id}", get(edit_line).post(update_line))
        .route("/lines/{id}/delete", post(delete_line))
        .route("/numbers", get(numbers).post(create_number))
        .route("/numbers/new", get(new_number))
        .route("/numbers/{id}", get(edit_number).post(update_number))
        .route("/numbers/{id}/delete", post(delete_number))
        .route("/trunks", get(trunks).post(create_trunk))
        .route("/trunks/{id}", get(edit_trunk).post(update_trunk))
        .route("/trunks/{id}/delete", post(delete_trunk))
        .route("/recordings", get(recordings))
        .route("/recordings/{id}/audio", get(recording_audio))
        .route("/recordings/{id}/delete", post(delete_recording))
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}/delete", post(delete_token))
}

fn id_of(raw: &str, what: &'static str) -> Result<i64, Error> {
    raw.parse().map_err(|_| Error::NotFound { what })
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix-ms timestamp.
pub fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn fmt_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h {:02}m {:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

fn fmt_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b >= 1_048_576.0 {
        format!("{:.1} MB", b / 1_048_576.0)
    } else {
        format!("{:.0} kB", (b / 1024.0).ceil())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

// ---------------------------------------------------------------- lines ----

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct LineForm {
    csrf: String,
    extension: String,
    display_name: String,
    password: String,
}

impl LineForm {
    fn input(&self) -> LineInput {
        LineInput {
            extension: self.extension.clone(),
            display_name: self.display_name.clone(),
            password: self.password.clone(),
        }
    }
}

fn line_form(
    session: &PanelSession,
    action: &str,
    f: &LineForm,
    errors: &FieldErrors,
    submit: &str,
) -> Markup {
    html! {
        form.card method="post" action=(action) novalidate {
            (csrf_field(session))
            div.row.three {
                (text_input("extension", "Extension", &f.extension, errors, Some("2–15 digits."), InputKind::Digits))
                (text_input("display_name", "Display name", &f.display_name, errors, None, InputKind::Required))
                (text_input("password", "SIP password", &f.password, errors, Some("Printable, no spaces."), InputKind::Text))
            }
            div.actions { button.primary type="submit" { (submit) } }
        }
    }
}

fn lines_page(
    session: &PanelSession,
    lines: &[Line],
    form: &LineForm,
    errors: &FieldErrors,
    notice_key: Option<&str>,
) -> Markup {
    let content = html! {
        div.page-head { h1 { "Lines" } }
        (notice(notice_key))
        table.list {
            thead { tr { th { "Extension" } th { "Name" } th { "Created" } } }
            tbody {
                @for l in lines {
                    tr {
                        td { a href=(format!("/lines/{}", l.id)) { (l.extension) } }
                        td { (l.display_name) }
                        td.muted { (fmt_time(l.created_at)) }
                    }
                }
                @if lines.is_empty() { tr { td colspan="3" .muted { "No lines yet." } } }
            }
        }
        h2 { "New line" }
        (line_form(session, "/lines", form, errors, "Add line"))
    };
    layout("Lines", "/lines", session, content)
}

async fn lines(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let lines = s.store.lines().await?;
    let form = LineForm {
        password: random_token()[..16].to_owned(),
        ..LineForm::default()
    };
    Ok(lines_page(
        &session,
        &lines,
        &form,
        &FieldErrors::new(),
        q.notice.as_deref(),
    )
    .into_response())
}

async fn create_line(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<LineForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let result = match form.input().to_fields() {
        Ok(f) => s.store.create_line(&f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to("/lines?notice=created").into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let lines = s.store.lines().await?;
            Ok(page(
                e.status(),
                lines_page(&session, &lines, &form, &e.fields(), None),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn line_edit_page(
    session: &PanelSession,
    id: LineId,
    f: &LineForm,
    errors: &FieldErrors,
    notice_key: Option<&str>,
) -> Markup {
    let content = html! {
        div.page-head { div { p.crumbs { a href="/lines" { "Lines" } " /" } h1 { "Line " (f.extension) } } }
        (notice(notice_key))
        (line_form(session, &format!("/lines/{id}"), f, errors, "Save"))
        div.card.danger {
            (post_button(session, &format!("/lines/{id}/delete"), "Delete this line", "danger", Some("Delete this line?")))
        }
    };
    layout("Line", "/lines", session, content)
}

async fn edit_line(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let line = s.store.line(LineId(id_of(&id, "line")?)).await?;
    let f = LineForm {
        csrf: String::new(),
        extension: line.extension,
        display_name: line.display_name,
        password: line.password,
    };
    Ok(line_edit_page(
        &session,
        line.id,
        &f,
        &FieldErrors::new(),
        q.notice.as_deref(),
    )
    .into_response())
}

async fn update_line(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<LineForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = LineId(id_of(&id, "line")?);
    let result = match form.input().to_fields() {
        Ok(f) => s.store.update_line(id, &f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to(&format!("/lines/{id}?notice=saved")).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => Ok(page(
            e.status(),
            line_edit_page(&session, id, &form, &e.fields(), None),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn delete_line(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    s.store.delete_line(LineId(id_of(&id, "line")?)).await?;
    s.directory_changed();
    Ok(Redirect::to("/lines?notice=deleted").into_response())
}

// -------------------------------------------------------------- numbers ----

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NumberForm {
    csrf: String,
    number: String,
    destination: String,
    trunk_id: String,
    description: String,
}

impl NumberForm {
    fn to_fields(&self) -> Result<NumberFields, Error> {
        let destination = match self.destination.split_once(':') {
            Some(("line", id)) => id.parse().ok().map(|i| Destination::Line(LineId(i))),
            Some(("room", id)) => id.parse().ok().map(|i| Destination::Room(RoomId(i))),
            _ => None,
        };
        let mut errors = FieldErrors::new();
        if let Err(palaver_store::StoreError::Invalid { field, message }) =
            palaver_store::fields::did("number", &self.number)
        {
            errors.insert(field.into(), message);
        }
        if destination.is_none() {
            errors.insert("destination".into(), "choose a line or a room".into());
        }
        let trunk_id = match self.trunk_id.trim() {
            "" => None,
            t => match t.parse() {
                Ok(i) => Some(TrunkId(i)),
                Err(_) => {
                    errors.insert("trunk_id".into(), "choose a trunk or none".into());
                    None
                }
            },
        };
        match destination {
            Some(destination) if errors.is_empty() => Ok(NumberFields {
                number: self.number.clone(),
                destination,
                trunk_id,
                description: self.description.clone(),
            }),
            _ => Err(Error::Invalid { fields: errors }),
        }
    }
}

struct Choices {
    lines: Vec<Line>,
    rooms: Vec<palaver_store::Room>,
    trunks: Vec<Trunk>,
}

async fn choices(s: &WebState) -> Result<Choices, Error> {
    Ok(Choices {
        lines: s.store.lines().await?,
        rooms: s.store.rooms().await?,
        trunks: s.store.trunks().await?,
    })
}

fn number_form(
    session: &PanelSession,
    action: &str,
    f: &NumberForm,
    errors: &FieldErrors,
    c: &Choices,
    submit: &str,
) -> Markup {
    html! {
        form.card method="post" action=(action) novalidate {
            (csrf_field(session))
            div.row {
                (text_input("number", "Number", &f.number, errors, Some("As the carrier sends it, e.g. +33123456789."), InputKind::Digits))
                div.field.invalid[errors.contains_key("destination")] {
                    label for="destination" { "Destination" }
                    select #destination name="destination" {
                        option value="" { "Choose…" }
                        optgroup label="Rooms" {
                            @for r in &c.rooms {
                                @let v = format!("room:{}", r.id);
                                option value=(v) selected[f.destination == v] { (r.settings.name) @if let Some(e) = &r.settings.extension { " (" (e) ")" } }
                            }
                        }
                        optgroup label="Lines" {
                            @for l in &c.lines {
                                @let v = format!("line:{}", l.id);
                                option value=(v) selected[f.destination == v] { (l.extension) " " (l.display_name) }
                            }
                        }
                    }
                    (field_error(errors, "destination"))
                }
            }
            div.row {
                div.field.invalid[errors.contains_key("trunk_id")] {
                    label for="trunk_id" { "Trunk" }
                    select #trunk_id name="trunk_id" {
                        option value="" { "Any trunk" }
                        @for t in &c.trunks {
                            option value=(t.id) selected[f.trunk_id == t.id.to_string()] { (t.name) }
                        }
                    }
                    (field_error(errors, "trunk_id"))
                }
                (text_input("description", "Description", &f.description, errors, None, InputKind::Text))
            }
            div.actions { button.primary type="submit" { (submit) } }
        }
    }
}

fn dest_label(d: Destination, c: &Choices) -> String {
    match d {
        Destination::Room(id) => c.rooms.iter().find(|r| r.id == id).map_or_else(
            || format!("room {id}"),
            |r| format!("Room: {}", r.settings.name),
        ),
        Destination::Line(id) => c.lines.iter().find(|l| l.id == id).map_or_else(
            || format!("line {id}"),
            |l| format!("Line: {} {}", l.extension, l.display_name),
        ),
    }
}

async fn numbers_page(
    s: &WebState,
    session: &PanelSession,
    form: &NumberForm,
    errors: &FieldErrors,
    notice_key: Option<&str>,
) -> Result<Markup, Error> {
    let numbers = s.store.numbers().await?;
    let c = choices(s).await?;
    let content = html! {
        div.page-head { h1 { "Public numbers" } }
        (notice(notice_key))
        table.list {
            thead { tr { th { "Number" } th { "Destination" } th { "Trunk" } th { "Description" } } }
            tbody {
                @for n in &numbers {
                    tr {
                        td { a href=(format!("/numbers/{}", n.id)) { (n.number) } }
                        td { (dest_label(n.destination, &c)) }
                        td { (n.trunk_id.and_then(|t| c.trunks.iter().find(|x| x.id == t)).map_or("any", |t| t.name.as_str())) }
                        td.muted { (n.description) }
                    }
                }
                @if numbers.is_empty() { tr { td colspan="4" .muted { "No public numbers yet." } } }
            }
        }
        h2 { "New public number" }
        (number_form(session, "/numbers", form, errors, &c, "Add number"))
    };
    Ok(layout("Public numbers", "/numbers", session, content))
}

async fn numbers(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    Ok(numbers_page(
        &s,
        &session,
        &NumberForm::default(),
        &FieldErrors::new(),
        q.notice.as_deref(),
    )
    .await?
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct NewNumberQuery {
    room: Option<String>,
}

async fn new_number(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NewNumberQuery>,
) -> PanelResult {
    let form = NumberForm {
        destination: q.room.map(|r| format!("room:{r}")).unwrap_or_default(),
        ..NumberForm::default()
    };
    Ok(numbers_page(&s, &session, &form, &FieldErrors::new(), None)
        .await?
        .into_response())
}

async fn create_number(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<NumberForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let result = match form.to_fields() {
        Ok(f) => s.store.create_number(&f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to("/numbers?notice=created").into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => Ok(page(
            e.status(),
            numbers_page(&s, &session, &form, &e.fields(), None).await?,
        )),
        Err(e) => Err(e.into()),
    }
}

async fn number_edit_page(
    s: &WebState,
    session: &PanelSession,
    id: NumberId,
    f: &NumberForm,
    errors: &FieldErrors,
    notice_key: Option<&str>,
) -> Result<Markup, Error> {
    let c = choices(s).await?;
    let content = html! {
        div.page-head { div { p.crumbs { a href="/numbers" { "Public numbers" } " /" } h1 { (f.number) } } }
        (notice(notice_key))
        (number_form(session, &format!("/numbers/{id}"), f, errors, &c, "Save"))
        div.card.danger { (post_button(session, &format!("/numbers/{id}/delete"), "Delete this number", "danger", Some("Delete this public number?"))) }
    };
    Ok(layout("Public number", "/numbers", session, content))
}

async fn edit_number(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let n = s.store.number(NumberId(id_of(&id, "number")?)).await?;
    let f = NumberForm {
        csrf: String::new(),
        number: n.number,
        destination: format!(
            "{}:{}",
            n.destination.kind(),
            match n.destination {
                Destination::Line(i) => i.0,
                Destination::Room(i) => i.0,
            }
        ),
        trunk_id: n.trunk_id.map(|t| t.to_string()).unwrap_or_default(),
        description: n.description,
    };
    Ok(number_edit_page(
        &s,
        &session,
        n.id,
        &f,
        &FieldErrors::new(),
        q.notice.as_deref(),
    )
    .await?
    .into_response())
}

async fn update_number(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<NumberForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = NumberId(id_of(&id, "number")?);
    let result = match form.to_fields() {
        Ok(f) => s.store.update_number(id, &f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to(&format!("/numbers/{id}?notice=saved")).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => Ok(page(
            e.status(),
            number_edit_page(&s, &session, id, &form, &e.fields(), None).await?,
        )),
        Err(e) => Err(e.into()),
    }
}

async fn delete_number(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    s.store
        .delete_number(NumberId(id_of(&id, "number")?))
        .await?;
    s.directory_changed();
    Ok(Redirect::to("/numbers?notice=deleted").into_response())
}

// --------------------------------------------------------------- trunks ----

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct TrunkForm {
    csrf: String,
    name: String,
    addresses: String,
    host: String,
    transport: String,
    username: String,
    password: String,
    register: Option<String>,
    enabled: Option<String>,
}

impl Default for TrunkForm {
    fn default() -> Self {
        TrunkForm {
            csrf: String::new(),
            name: String::new(),
            addresses: String::new(),
            host: String::new(),
            transport: "udp".into(),
            username: String::new(),
            password: String::new(),
            register: None,
            enabled: Some("on".into()),
        }
    }
}

impl TrunkForm {
    fn input(&self) -> TrunkInput {
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        TrunkInput {
            name: self.name.clone(),
            addresses: self
                .addresses
                .split([',', '\n', ' '])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            host: opt(&self.host),
            transport: self.transport.clone(),
            username: opt(&self.username),
            // Blank keeps the current password (it is never shown).
            password: opt(&self.password),
            register: self.register.is_some(),
            enabled: self.enabled.is_some(),
        }
    }

    fn from_trunk(t: &Trunk) -> TrunkForm {
        TrunkForm {
            csrf: String::new(),
            name: t.name.clone(),
            addresses: t
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            host: t.host.clone().unwrap_or_default(),
            transport: t.transport.to_string(),
            username: t.username.clone().unwrap_or_default(),
            password: String::new(),
            register: t.register.then(|| "on".into()),
            enabled: t.enabled.then(|| "on".into()),
        }
    }
}

fn trunk_form(
    session: &PanelSession,
    action: &str,
    f: &TrunkForm,
    errors: &FieldErrors,
    submit: &str,
    has_password: bool,
) -> Markup {
    html! {
        form.card method="post" action=(action) novalidate {
            (csrf_field(session))
            div.row {
                (text_input("name", "Name", &f.name, errors, None, InputKind::Required))
                (text_input("host", "Host", &f.host, errors, Some("Where calls go: host or host:port."), InputKind::Text))
            }
            div.field.invalid[errors.contains_key("addresses")] {
                label for="addresses" { "Source addresses" }
                textarea #addresses name="addresses" rows="3" { (f.addresses) }
                p.hint { "IPs or networks (127.0.0.0/8) the trunk's calls come from, one per line." }
                (field_error(errors, "addresses"))
            }
            div.row.three {
                div.field.invalid[errors.contains_key("transport")] {
                    label for="transport" { "Transport" }
                    select #transport name="transport" {
                        @for t in ["udp", "tcp", "tls"] { option value=(t) selected[f.transport == t] { (t.to_uppercase()) } }
                    }
                    (field_error(errors, "transport"))
                }
                (text_input("username", "User name", &f.username, errors, None, InputKind::Text))
                (text_input("password", "Password", &f.password, errors,
                    Some(if has_password { "Set. Leave blank to keep it." } else { "For registration or digest auth." }), InputKind::Password))
            }
            div.row {
                (checkbox("register", "Register", f.register.is_some(), "Palaver registers to the host with the user name and password.", errors))
                (checkbox("enabled", "Enabled", f.enabled.is_some(), "Disabled trunks neither accept nor place calls.", errors))
            }
            div.actions { button.primary type="submit" { (submit) } }
        }
    }
}

async fn trunks_page(
    s: &WebState,
    session: &PanelSession,
    form: &TrunkForm,
    errors: &FieldErrors,
    notice_key: Option<&str>,
) -> Result<Markup, Error> {
    let trunks = s.store.trunks().await?;
    let content = html! {
        div.page-head { h1 { "Trunks" } }
        (notice(notice_key))
        table.list {
            thead { tr { th { "Name" } th { "Host" } th { "Sources" } th { "State" } } }
            tbody {
                @for t in &trunks {
                    tr {
                        td { a href=(format!("/trunks/{}", t.id)) { (t.name) } }
                        td { (t.host.as_deref().unwrap_or("—")) " " span.muted { (t.transport.as_str().to_uppercase()) } }
                        td { (t.addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                        td {
                            @if t.enabled { span.badge.ok { "enabled" } } @else { span.badge { "disabled" } }
                            @if t.register { " " span.badge { "registers" } }
                        }
                    }
                }
                @if trunks.is_empty() { tr { td colspan="4" .muted { "No trunks yet." } } }
            }
        }
        h2 { "New trunk" }
        (trunk_form(session, "/trunks", form, errors, "Add trunk", false))
    };
    Ok(layout("Trunks", "/trunks", session, content))
}

async fn trunks(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    Ok(trunks_page(
        &s,
        &session,
        &TrunkForm::default(),
        &FieldErrors::new(),
        q.notice.as_deref(),
    )
    .await?
    .into_response())
}

async fn create_trunk(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<TrunkForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let result = match form.input().to_fields(None) {
        Ok(f) => s.store.create_trunk(&f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to("/trunks?notice=created").into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => Ok(page(
            e.status(),
            trunks_page(&s, &session, &form, &e.fields(), None).await?,
        )),
        Err(e) => Err(e.into()),
    }
}

fn trunk_edit_page(
    session: &PanelSession,
    id: TrunkId,
    f: &TrunkForm,
    errors: &FieldErrors,
    has_password: bool,
    notice_key: Option<&str>,
) -> Markup {
    let content = html! {
        div.page-head { div { p.crumbs { a href="/trunks" { "Trunks" } " /" } h1 { (f.name) } } }
        (notice(notice_key))
        (trunk_form(session, &format!("/trunks/{id}"), f, errors, "Save", has_password))
        div.card.danger { (post_button(session, &format!("/trunks/{id}/delete"), "Delete this trunk", "danger", Some("Delete this trunk?"))) }
    };
    layout("Trunk", "/trunks", session, content)
}

async fn edit_trunk(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    let t = s.store.trunk(TrunkId(id_of(&id, "trunk")?)).await?;
    Ok(trunk_edit_page(
        &session,
        t.id,
        &TrunkForm::from_trunk(&t),
        &FieldErrors::new(),
        t.password.is_some(),
        q.notice.as_deref(),
    )
    .into_response())
}

async fn update_trunk(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<TrunkForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = TrunkId(id_of(&id, "trunk")?);
    let current = s.store.trunk(id).await?;
    let has_password = current.password.is_some();
    let result = match form.input().to_fields(current.password) {
        Ok(f) => s.store.update_trunk(id, &f).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.directory_changed();
            Ok(Redirect::to(&format!("/trunks/{id}?notice=saved")).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict { .. })) => Ok(page(
            e.status(),
            trunk_edit_page(&session, id, &form, &e.fields(), has_password, None),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn delete_trunk(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    s.store.delete_trunk(TrunkId(id_of(&id, "trunk")?)).await?;
    s.directory_changed();
    Ok(Redirect::to("/trunks?notice=deleted").into_response())
}

// ----------------------------------------------------------- recordings ----

#[derive(Debug, Default, Deserialize)]
struct RecordingsQuery {
    room: Option<String>,
    notice: Option<String>,
}

async fn recordings(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<RecordingsQuery>,
) -> PanelResult {
    let room = q.room.as_deref().and_then(|r| r.parse().ok()).map(RoomId);
    let list = s.store.recordings(room).await?;
    let room_name = match room {
        Some(r) => Some(s.store.room(r).await?.settings.name),
        None => None,
    };
    let content = html! {
        div.page-head {
            div {
                h1 { "Recordings" @if let Some(n) = &room_name { " of " (n) } }
                @if room_name.is_some() { p { a href="/recordings" { "All recordings" } } }
            }
        }
        (notice(q.notice.as_deref()))
        @if list.is_empty() {
            div.card.empty { p.muted { "No recordings yet. Rooms with recording enabled are recorded by a host key, from the control page, or automatically." } }
        } @else {
            table.list.recordings {
                thead { tr { th { "Room" } th { "Started" } th { "Duration" } th { "Size" } th { "Participants" } th { "Listen" } th { "" } } }
                tbody {
                    @for r in &list {
                        tr {
                            td { (r.room_name) }
                            td { (fmt_time(r.started_at)) @if let Some(e) = r.ended_at { br; span.muted { "until " (fmt_time(e)) } } }
                            td { @if r.ended_at.is_some() { (fmt_duration(r.duration_ms)) } @else { span.badge.warn { "recording" } } }
                            td { (fmt_size(r.size_bytes)) }
                            td { (participant_summary(&r.participants)) }
                            td {
                                @if r.ended_at.is_some() {
                                    audio controls preload="none" src=(format!("/recordings/{}/audio", r.id)) {}
                                }
                            }
                            td.actions-cell {
                                @if r.ended_at.is_some() {
                                    a.button.small href=(format!("/recordings/{}/audio?download=1", r.id)) download { "Download" }
                                    (post_button(&session, &format!("/recordings/{}/delete", r.id), "Delete", "small danger", Some("Delete this recording and its file?")))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Recordings", "/recordings", &session, content).into_response())
}

/// "3: Alice (host), 1002, Bob" from the recorder's JSON list; any element
/// shape is tolerated (the conference layer owns it).
fn participant_summary(json: &str) -> String {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return "—".into();
    };
    if items.is_empty() {
        return "—".into();
    }
    let names: Vec<String> = items
        .iter()
        .take(4)
        .map(|p| {
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
            let who = text("name")
                .or_else(|| text("number"))
                .unwrap_or("anonymous");
            if p.get("host").and_then(|h| h.as_bool()) == Some(true) {
                format!("{who} (host)")
            } else {
                who.to_owned()
            }
        })
        .collect();
    let more = if items.len() > 4 { ", …" } else { "" };
    format!("{}: {}{more}", items.len(), names.join(", "))
}

#[derive(Debug, Default, Deserialize)]
struct AudioQuery {
    download: Option<String>,
}

async fn recording_audio(
    State(s): State<WebState>,
    _session: PanelSession,
    Path(id): Path<String>,
    Query(q): Query<AudioQuery>,
    request: Request,
) -> PanelResult {
    let id = RecordingId(id_of(&id, "recording")?);
    Ok(
        crate::recordings::serve_audio(&s, id, q.download.is_some_and(|d| d != "0"), request)
            .await?,
    )
}

async fn delete_recording(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let id = RecordingId(id_of(&id, "recording")?);
    let deleted = crate::recordings::delete_recording(&s, id).await?;
    let back = match deleted.room_id {
        Some(room) => format!("/recordings?room={room}&notice=deleted"),
        None => "/recordings?notice=deleted".into(),
    };
    Ok(Redirect::to(&back).into_response())
}

// ----------------------------------------------------------- API tokens ----

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenForm {
    csrf: String,
    name: String,
}

async fn tokens_page(
    s: &WebState,
    session: &PanelSession,
    name: &str,
    errors: &FieldErrors,
    fresh: Option<&str>,
    notice_key: Option<&str>,
) -> Result<Markup, Error> {
    let tokens = s.store.api_tokens().await?;
    let content = html! {
        div.page-head { h1 { "API tokens" } }
        (notice(notice_key))
        p { "Scripts call the " a href="/api/v1/docs" { "REST API" } " with " code { "Authorization: Bearer <token>" } "." }
        @if let Some(t) = fresh {
            div.banner.ok #new-token {
                p { "New token. Copy it now: it cannot be shown again." }
                input #token-value type="text" readonly value=(t) onclick="this.select()";
            }
        }
        table.list {
            thead { tr { th { "Name" } th { "Created" } th { "Last used" } th { "" } } }
            tbody {
                @for t in &tokens {
                    tr {
                        td { (t.name) }
                        td.muted { (fmt_time(t.created_at)) }
                        td.muted { (t.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into())) }
                        td { (post_button(session, &format!("/tokens/{}/delete", t.id), "Revoke", "small danger", Some("Revoke this token? Scripts using it stop working."))) }
                    }
                }
                @if tokens.is_empty() { tr { td colspan="4" .muted { "No tokens yet." } } }
            }
        }
        h2 { "New token" }
        form.card method="post" action="/tokens" novalidate {
            (csrf_field(session))
            div.row {
                (text_input("name", "Name", name, errors, Some("What uses it, e.g. \"provisioning script\"."), InputKind::Required))
            }
            div.actions { button.primary type="submit" { "Create token" } }
        }
    };
    Ok(layout("API tokens", "/tokens", session, content))
}

async fn tokens(
    State(s): State<WebState>,
    session: PanelSession,
    Query(q): Query<NoticeQuery>,
) -> PanelResult {
    Ok(tokens_page(
        &s,
        &session,
        "",
        &FieldErrors::new(),
        None,
        q.notice.as_deref(),
    )
    .await?
    .into_response())
}

async fn create_token(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<TokenForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    let token = random_token();
    match s
        .store
        .create_api_token(&form.name, &sha256_hex(&token))
        .await
    {
        Ok(_) => {
            let mut r = tokens_page(&s, &session, "", &FieldErrors::new(), Some(&token), None)
                .await?
                .into_response();
            r.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(r)
        }
        Err(e) => {
            let e = Error::from(e);
            match e {
                Error::Invalid { .. } => Ok(page(
                    e.status(),
                    tokens_page(&s, &session, &form.name, &e.fields(), None, None).await?,
                )),
                other => Err(other.into()),
            }
        }
    }
}

async fn delete_token(
    State(s): State<WebState>,
    session: PanelSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    s.store
        .delete_api_token(ApiTokenId(id_of(&id, "API token")?))
        .await?;
    Ok(Redirect::to("/tokens?notice=deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_in_utc() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(fmt_time(1_795_000_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(fmt_duration(3_723_000), "1h 02m 03s");
        assert_eq!(fmt_duration(65_000), "1m 05s");
    }

    #[test]
    fn participant_summaries_tolerate_any_shape() {
        assert_eq!(participant_summary("not json"), "—");
        assert_eq!(participant_summary("[]"), "—");
        assert_eq!(
            participant_summary(r#"[{"name":"Alice","host":true},{"number":"1002"},{}]"#),
            "3: Alice (host), 1002, anonymous"
        );
    }
}
