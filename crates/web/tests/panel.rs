//! The control panel (SPEC W1, C17, C16, C10): login, sessions, CSRF, rate
//! limits, and the room editor's forms, through `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{App, app, tone};
use palaver_store::{RoomId, RoomSettings};

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Browser {
    cookie: String,
    csrf: String,
}

async fn post_form(a: &App, path: &str, cookie: Option<&str>, body: String) -> common::Reply {
    let mut r =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    a.send(r.body(Body::from(body)).unwrap()).await
}

async fn get_page(a: &App, path: &str, cookie: &str) -> common::Reply {
    a.send(
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_owned()
}

async fn login(a: &App) -> Browser {
    palaver_web::ensure_admin(&a.store, Some("right-password"))
        .await
        .unwrap();
    let r = post_form(
        a,
        "/login",
        None,
        form(&[
            ("username", "admin"),
            ("password", "right-password"),
            ("next", "/rooms"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let set_cookie = r.header(header::SET_COOKIE);
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = get_page(a, "/rooms", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    Browser {
        csrf: csrf_of(&page.text()),
        cookie,
    }
}

#[tokio::test]
async fn w1_first_start_generates_a_password_once() {
    let a = app().await;
    let generated = palaver_web::ensure_admin(&a.store, None).await.unwrap();
    let password = generated.expect("a generated password");
    assert_eq!(password.len(), 20);
    assert_eq!(
        palaver_web::ensure_admin(&a.store, None).await.unwrap(),
        None
    );
    let user = a
        .store
        .admin_user_by_username("admin")
        .await
        .unwrap()
        .unwrap();
    assert!(palaver_web::verify_password(&password, &user.password_hash));
    // A configured password replaces it.
    assert_eq!(
        palaver_web::ensure_admin(&a.store, Some("from-config"))
            .await
            .unwrap(),
        None
    );
    let user = a
        .store
        .admin_user_by_username("admin")
        .await
        .unwrap()
        .unwrap();
    assert!(palaver_web::verify_password(
        "from-config",
        &user.password_hash
    ));
}

#[tokio::test]
async fn w1_login_sets_a_strict_http_only_cookie_and_pages_need_it() {
    let a = app().await;
    let r = a
        .send(Request::get("/rooms").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header(header::LOCATION), "/login?next=/rooms");
    palaver_web::ensure_admin(&a.store, Some("right-password"))
        .await
        .unwrap();
    let r = post_form(
        &a,
        "/login",
        None,
        form(&[
            ("username", "admin"),
            ("password", "right-password"),
            ("next", "//evil.example"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header(header::LOCATION), "/rooms", "no open redirect");
    let c = r.header(header::SET_COOKIE);
    assert!(c.starts_with("palaver_session="));
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    assert!(!c.contains("Secure"));
    // Only the hash of the session id is stored.
    let id = c
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("palaver_session=");
    assert!(a.store.session(id, 0).await.unwrap().is_none());
    assert!(
        a.store
            .session(&palaver_web::sha256_hex(id), 0)
            .await
            .unwrap()
            .is_some()
    );

    // Logout needs the CSRF token, then ends the session.
    let b = login(&a).await;
    let r = post_form(&a, "/logout", Some(&b.cookie), form(&[("csrf", "wrong")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_form(&a, "/logout", Some(&b.cookie), form(&[("csrf", &b.csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header(header::SET_COOKIE).contains("Max-Age=0"));
    assert_eq!(
        get_page(&a, "/rooms", &b.cookie).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn w1_login_attempts_are_rate_limited_per_user() {
    let a = app().await;
    palaver_web::ensure_admin(&a.store, Some("right-password"))
        .await
        .unwrap();
    for _ in 0..5 {
        let r = post_form(
            &a,
            "/login",
            None,
            form(&[("username", "admin"), ("password", "guess")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("wrong user name or password"));
    }
    // Even the right password is refused until the window passes.
    let r = post_form(
        &a,
        "/login",
        None,
        form(&[("username", "admin"), ("password", "right-password")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header(header::RETRY_AFTER).parse::<u64>().unwrap() > 800);
    assert!(r.text().contains("too many failed logins"));
}

fn room_form(csrf: &str, name: &str, max: &str, access_pin: &str) -> String {
    form(&[
        ("csrf", csrf),
        ("name", name),
        ("extension", "801"),
        ("access_pin", access_pin),
        ("host_pin", "4321"),
        ("max_participants", max),
        ("language", "nl"),
        ("mute_on_entry", "on"),
        ("wait_for_host", "on"),
        ("announce_join_leave", "on"),
        ("recording_enabled", "on"),
        ("recording_autostart", "on"),
        ("report_email", "ops@example.org"),
    ])
}

#[tokio::test]
async fn w1_room_editor_creates_with_every_setting_and_shows_errors_by_field() {
    let a = app().await;
    let b = login(&a).await;
    // No CSRF token: refused before anything is written.
    let r = post_form(
        &a,
        "/rooms",
        Some(&b.cookie),
        room_form("", "Board", "30", "1234"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(a.store.rooms().await.unwrap().is_empty());

    // Bad values: 422, the page again with each message next to its field.
    let r = post_form(
        &a,
        "/rooms",
        Some(&b.cookie),
        room_form(&b.csrf, "", "5000", "12ab"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text();
    assert!(html.contains("id=\"max_participants-error\">must be between 2 and 1000"));
    assert!(html.contains("id=\"access_pin-error\">must contain digits only"));
    assert!(html.contains("id=\"name-error\">is required"));
    assert!(html.contains("value=\"5000\""), "typed values are kept");
    let r = post_form(
        &a,
        "/rooms",
        Some(&b.cookie),
        room_form(&b.csrf, "x", "many", "1"),
    )
    .await;
    assert!(r.text().contains("must be a number between 2 and 1000"));

    // Every setting (C1–C15); anonymous callers unticked means refused.
    let r = post_form(
        &a,
        "/rooms",
        Some(&b.cookie),
        room_form(&b.csrf, "Board", "30", "1234"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rooms = a.store.rooms().await.unwrap();
    let s = &rooms[0].settings;
    let mut want = RoomSettings::new("Board");
    want.extension = Some("801".into());
    want.access_pin = Some("1234".into());
    want.host_pin = Some("4321".into());
    want.max_participants = 30;
    want.language = palaver_store::Language::Nl;
    want.mute_on_entry = true;
    want.wait_for_host = true;
    want.announce_join_leave = true;
    want.allow_anonymous = false;
    want.recording_enabled = true;
    want.recording_autostart = true;
    want.report_email = Some("ops@example.org".into());
    assert_eq!(s, &want);
    assert_eq!(a.changes(), 1);
    let page = get_page(&a, &format!("/rooms/{}", rooms[0].id), &b.cookie)
        .await
        .text();
    assert!(!page.contains("no-pin-warning"));

    // C17: the warning for a room without a PIN, in the editor and the list.
    let r = post_form(
        &a,
        &format!("/rooms/{}", rooms[0].id),
        Some(&b.cookie),
        form(&[
            ("csrf", &b.csrf),
            ("name", "Board"),
            ("max_participants", "30"),
            ("language", "en"),
            ("access_pin", "0"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = get_page(&a, &format!("/rooms/{}", rooms[0].id), &b.cookie)
        .await
        .text();
    assert!(page.contains("No PIN: </strong>anyone who knows the number can join."));
    let list = get_page(&a, "/rooms", &b.cookie).await.text();
    assert!(list.contains("No PIN"));
}

#[tokio::test]
async fn c16_panel_generates_and_deletes_urls() {
    let a = app().await;
    let b = login(&a).await;
    let room = a
        .store
        .create_room(&RoomSettings::new("Weekly"))
        .await
        .unwrap();
    let r = post_form(
        &a,
        &format!("/rooms/{}/urls", room.id),
        Some(&b.cookie),
        form(&[("csrf", &b.csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store");
    let html = r.text();
    let at = html.find("/follow/").unwrap() + 8;
    let token = &html[at..at + 32];
    let stored = a.store.room(room.id).await.unwrap();
    assert_eq!(
        stored.follow_token_hash,
        Some(palaver_web::sha256_hex(token))
    );
    let r = post_form(
        &a,
        &format!("/rooms/{}/urls/delete", room.id),
        Some(&b.cookie),
        form(&[("csrf", &b.csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        a.store
            .room(room.id)
            .await
            .unwrap()
            .follow_token_hash
            .is_none()
    );
    let r = post_form(
        &a,
        &format!("/rooms/{}/urls", room.id),
        Some(&b.cookie),
        form(&[("csrf", "x")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

fn multipart(csrf: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XBOUNDARYX";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn c8_panel_upload_accepts_audio_and_explains_refusals() {
    let a = app().await;
    let b = login(&a).await;
    let room = a.store.create_room(&RoomSettings::new("r")).await.unwrap();
    let send = |csrf: String, file: Vec<u8>| {
        let (ct, body) = multipart(&csrf, &file);
        let a = &a;
        let cookie = b.cookie.clone();
        let path = format!("/rooms/{}/uploads/music", room.id);
        async move {
            a.send(
                Request::post(path)
                    .header(header::CONTENT_TYPE, ct)
                    .header(header::COOKIE, cookie)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    let r = send(b.csrf.clone(), tone(1000)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(
        a.store
            .room(room.id)
            .await
            .unwrap()
            .settings
            .moh_upload
            .is_some()
    );
    let r = send(b.csrf.clone(), b"plain text".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .contains("Not uploaded: this is not a WAV, MP3, OGG Vorbis or FLAC file.")
    );
    let r = send("forged".into(), tone(10)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn w1_every_panel_page_renders() {
    let a = app().await;
    let b = login(&a).await;
    let room = a.store.create_room(&RoomSettings::new("r")).await.unwrap();
    let _ = RoomId(room.id.0);
    for path in [
        "/rooms",
        "/rooms/new",
        &format!("/rooms/{}", room.id),
        "/lines",
        "/numbers",
        "/numbers/new?room=1",
        "/trunks",
        "/recordings",
        "/tokens",
        "/api/v1/docs",
    ] {
        let r = get_page(&a, path, &b.cookie).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            r.header(header::X_FRAME_OPTIONS),
            if path.starts_with("/api") { "" } else { "DENY" },
            "{path}"
        );
    }
    assert_eq!(
        get_page(&a, "/rooms/999", &b.cookie).await.status,
        StatusCode::NOT_FOUND
    );
    // A token made in the panel works for the API, once shown.
    let r = post_form(
        &a,
        "/tokens",
        Some(&b.cookie),
        form(&[("csrf", &b.csrf), ("name", "script")]),
    )
    .await;
    let html = r.text();
    let at = html.find("id=\"token-value\"").unwrap();
    let value_at = html[at..].find("value=\"").unwrap() + at + 7;
    let token = &html[value_at..value_at + 64];
    let r = a
        .send(
            Request::get("/api/v1/rooms")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Lines, numbers and trunks through their forms.
    let r = post_form(
        &a,
        "/lines",
        Some(&b.cookie),
        form(&[
            ("csrf", &b.csrf),
            ("extension", "1001"),
            ("display_name", "Alice"),
            ("password", "pw"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = post_form(
        &a,
        "/lines",
        Some(&b.cookie),
        form(&[
            ("csrf", &b.csrf),
            ("extension", "1001"),
            ("display_name", "Bob"),
            ("password", "pw"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("1001 is already used by line"));
    let r = post_form(
        &a,
        "/trunks",
        Some(&b.cookie),
        form(&[
            ("csrf", &b.csrf),
            ("name", "carrier"),
            ("addresses", "127.0.0.0/8\n::1"),
            ("transport", "udp"),
            ("enabled", "on"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = post_form(
        &a,
        "/numbers",
        Some(&b.cookie),
        form(&[
            ("csrf", &b.csrf),
            ("number", "+3312"),
            ("destination", &format!("room:{}", room.id)),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = post_form(
        &a,
        "/numbers",
        Some(&b.cookie),
        form(&[("csrf", &b.csrf), ("number", "+3313"), ("destination", "")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("choose a line or a room"));
    assert_eq!(a.changes(), 3);
}
