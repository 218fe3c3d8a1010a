//! The control panel (SPEC W1): server-rendered HTML (maud), one small CSS
//! file, no build step. Every page needs a login ([`PanelSession`]); every
//! form that changes something carries the session's CSRF token and is
//! checked before anything else happens. Forms follow post/redirect/get; an
//! invalid form is rendered again with each message next to its field.
//!
//! Pages: rooms (list and editor with every C1–C15 setting, uploads, the C16
//! URLs and the C17 warning), lines, public numbers, trunks, recordings (C10)
//! and API tokens. The shared look is in [`layout`]; `rooms.rs` and
//! `directory.rs` hold the pages.
//!
//! Not here: the JSON API (`crate::api`), the live pages (`crate::follow`).

mod directory;
mod rooms;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::auth::{self, ClientIp, PanelSession, clear_session_cookie, safe_next};
use crate::error::{Error, FieldErrors};
use crate::state::WebState;

/// The panel's stylesheet, embedded in the binary.
pub const PANEL_CSS: &str = include_str!("../../assets/panel.css");
/// The follow/control pages' script, embedded in the binary.
pub const LIVE_JS: &str = include_str!("../../assets/live.js");

/// An error shown as an HTML page.
#[derive(Debug)]
pub struct PanelError(pub Error);

impl<E: Into<Error>> From<E> for PanelError {
    fn from(e: E) -> PanelError {
        PanelError(e.into())
    }
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Form expired",
            StatusCode::CONFLICT => "Conflict",
            s if s.is_server_error() => "Something went wrong",
            _ => "Request refused",
        };
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (title) " · Palaver" } link rel="stylesheet" href="/assets/panel.css"; }
                body {
                    main.narrow {
                        div.card {
                            h1 { (title) }
                            p { (self.0.public_message()) }
                            p { a href="javascript:history.back()" { "Go back" } " · " a href="/rooms" { "Rooms" } }
                        }
                    }
                }
            }
        };
        let mut r = (status, body).into_response();
        if status.is_server_error() {
            r.extensions_mut()
                .insert(crate::error::InternalDetail(self.0.to_string()));
        }
        r
    }
}

/// What panel handlers return.
pub type PanelResult = Result<Response, PanelError>;

/// The panel's routes.
pub fn routes(max_upload_bytes: usize) -> Router<WebState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/rooms") }))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/assets/panel.css", get(css))
        .route("/assets/live.js", get(js))
        .merge(rooms::routes(max_upload_bytes))
        .merge(directory::routes())
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    r
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        PANEL_CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        LIVE_JS,
    )
        .into_response()
}

/// Sections of the top navigation.
const NAV: [(&str, &str); 6] = [
    ("/rooms", "Rooms"),
    ("/lines", "Lines"),
    ("/numbers", "Numbers"),
    ("/trunks", "Trunks"),
    ("/recordings", "Recordings"),
    ("/tokens", "API tokens"),
];

/// The page frame: top bar with navigation and logout, then `content`.
pub fn layout(title: &str, active: &str, session: &PanelSession, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Palaver" }
                link rel="stylesheet" href="/assets/panel.css";
            }
            body {
                header.top {
                    a.brand href="/rooms" { "Palaver" }
                    nav {
                        @for (href, label) in NAV {
                            a href=(href) class=[(href == active).then_some("active")] { (label) }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf_field(session))
                        button.link type="submit" { "Log out" }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// The hidden CSRF input every form carries.
pub fn csrf_field(session: &PanelSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The message for `name`, if any, shown under its input.
pub fn field_error(errors: &FieldErrors, name: &str) -> Markup {
    html! {
        @if let Some(m) = errors.get(name) {
            p.field-error id=(format!("{name}-error")) { (m) }
        }
    }
}

/// A labelled text-like input with its hint and error.
pub fn text_input(
    name: &str,
    label: &str,
    value: &str,
    errors: &FieldErrors,
    hint: Option<&str>,
    input: InputKind,
) -> Markup {
    let invalid = errors.contains_key(name);
    html! {
        div.field.invalid[invalid] {
            label for=(name) { (label) }
            @match input {
                InputKind::Text => input #(name) name=(name) type="text" value=(value) aria-invalid=[invalid.then_some("true")];
                InputKind::Required => input #(name) name=(name) type="text" value=(value) required aria-invalid=[invalid.then_some("true")];
                InputKind::Digits => input #(name) name=(name) type="text" inputmode="numeric" value=(value) autocomplete="off" aria-invalid=[invalid.then_some("true")];
                InputKind::Number(min, max) => input #(name) name=(name) type="number" min=(min) max=(max) value=(value) aria-invalid=[invalid.then_some("true")];
                InputKind::Email => input #(name) name=(name) type="email" value=(value) aria-invalid=[invalid.then_some("true")];
                InputKind::Password => input #(name) name=(name) type="password" value=(value) autocomplete="new-password" aria-invalid=[invalid.then_some("true")];
            }
            @if let Some(h) = hint { p.hint { (h) } }
            (field_error(errors, name))
        }
    }
}

/// Kinds of input [`text_input`] draws.
#[derive(Debug, Clone, Copy)]
pub enum InputKind {
    /// Free text.
    Text,
    /// Free text that must not be empty.
    Required,
    /// Digits typed on a phone keypad.
    Digits,
    /// A number in a range.
    Number(u32, u32),
    /// An e-mail address.
    Email,
    /// A secret.
    Password,
}

/// A checkbox with its explanation.
pub fn checkbox(
    name: &str,
    label: &str,
    checked: bool,
    hint: &str,
    errors: &FieldErrors,
) -> Markup {
    html! {
        div.field.check.invalid[errors.contains_key(name)] {
            label {
                input type="checkbox" name=(name) value="on" checked[checked];
                span { (label) }
            }
            p.hint { (hint) }
            (field_error(errors, name))
        }
    }
}

/// A one-line notice after a redirect (`?notice=saved`).
pub fn notice(key: Option<&str>) -> Markup {
    let text = match key {
        Some("created") => "Created.",
        Some("saved") => "Saved.",
        Some("deleted") => "Deleted.",
        Some("uploaded") => "Uploaded.",
        Some("removed") => "Removed.",
        Some("urls-deleted") => {
            "The follow and control URLs were deleted; the old links stopped working."
        }
        _ => return html! {},
    };
    html! { p.banner.ok role="status" { (text) } }
}

/// `?notice=…` on pages reached by a redirect.
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    /// Which notice to show.
    pub notice: Option<String>,
}

/// Renders a full page with a status.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A button that posts a one-field form (delete, regenerate…), with a
/// confirmation prompt.
pub fn post_button(
    session: &PanelSession,
    action: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action)
            onsubmit=[confirm.map(|c| format!("return confirm({})", js_string(c)))] {
            (csrf_field(session))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A JavaScript string literal (for inline `confirm`).
fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Checks the form's CSRF token.
pub fn check_csrf(session: &PanelSession, sent: &str) -> Result<(), PanelError> {
    session.check_csrf(sent).map_err(PanelError)
}

// ---------------------------------------------------------------- login ----

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    next: String,
}

fn login_markup(username: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Palaver" }
                link rel="stylesheet" href="/assets/panel.css";
            }
            body.login {
                main.narrow {
                    form.card method="post" action="/login" {
                        h1 { "Palaver" }
                        p.muted { "Log in to the control panel." }
                        @if let Some(e) = error { p.banner.error role="alert" #login-error { (e) } }
                        input type="hidden" name="next" value=(next);
                        div.field {
                            label for="username" { "User name" }
                            input #username name="username" type="text" value=(username) autocomplete="username" required autofocus;
                        }
                        div.field {
                            label for="password" { "Password" }
                            input #password name="password" type="password" autocomplete="current-password" required;
                        }
                        button.primary type="submit" { "Log in" }
                        p.hint { "The first start prints the password of the user " code { "admin" } "." }
                    }
                }
            }
        }
    }
}

async fn login_page(Query(q): Query<LoginQuery>) -> Markup {
    login_markup("admin", &safe_next(q.next.as_deref()), None)
}

async fn login_submit(
    State(s): State<WebState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(Some(&form.next));
    match auth::login(&s, ip, &form.username, &form.password, Instant::now()).await {
        Ok((cookie, _)) => {
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e @ (Error::Invalid { .. } | Error::TooManyRequests { .. })) => {
            let message = match &e {
                Error::Invalid { fields } => fields
                    .get("password")
                    .cloned()
                    .unwrap_or_else(|| e.to_string()),
                other => other.to_string(),
            };
            let mut r = page(
                e.status(),
                login_markup(&form.username, &next, Some(&message)),
            );
            if let Error::TooManyRequests { retry_after_secs } = e {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            r
        }
        Err(e) => PanelError(e).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(s): State<WebState>,
    session: PanelSession,
    Form(form): Form<CsrfForm>,
) -> PanelResult {
    check_csrf(&session, &form.csrf)?;
    s.store.delete_session(&session.id_hash).await?;
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_session_cookie(&s.config)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Body limit for the multipart upload forms: the file plus the form fields.
pub(crate) fn upload_body_limit(max_upload_bytes: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(max_upload_bytes.saturating_add(64 << 10))
}
