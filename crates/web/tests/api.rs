//! Every `/api/v1` endpoint with good and bad input (SPEC W2, C1–C17, C10,
//! C16), against SQLite, through `oneshot` (no port).

mod common;

use axum::http::{Method, StatusCode, header};
use common::{app, app_with, tone, wav};
use palaver_store::{FinishedRecording, NewRecording, RoomId, RoomToken};
use palaver_web::{ControlCommand, ParticipantId, sha256_hex};
use serde_json::json;

#[tokio::test]
async fn w2_requests_without_a_valid_token_get_401_in_the_error_shape() {
    let a = app().await;
    let r = a
        .send(
            axum::http::Request::get("/api/v1/lines")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header(header::WWW_AUTHENTICATE),
        "Bearer realm=\"palaver\""
    );
    assert_eq!(
        r.json(),
        json!({"error": "authentication required", "fields": {}})
    );
    let r = a
        .send(
            axum::http::Request::get("/api/v1/lines")
                .header(header::AUTHORIZATION, "Bearer wrong")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A used token records when.
    assert_eq!(a.get("/api/v1/lines").await.status, StatusCode::OK);
    let tokens = a.store.api_tokens().await.unwrap();
    assert!(tokens[0].last_used_at.is_some());
}

#[tokio::test]
async fn w2_openapi_document_and_docs_page_are_served() {
    let a = app().await;
    let r = a
        .send(
            axum::http::Request::get("/api/v1/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    for path in [
        "/api/v1/lines",
        "/api/v1/rooms/{id}",
        "/api/v1/rooms/{id}/uploads/{kind}",
        "/api/v1/rooms/{id}/urls",
        "/api/v1/numbers/{id}",
        "/api/v1/trunks",
        "/api/v1/recordings/{id}/audio",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(
        doc["components"]["schemas"]["RoomInput"]["properties"]["max_participants"].is_object()
    );
    let r = a
        .send(
            axum::http::Request::get("/api/v1/docs")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("/api/v1/rooms/{id}/urls"));
    // Unknown API paths answer in the same JSON shape.
    let r = a.get("/api/v1/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "endpoint not found");
}

#[tokio::test]
async fn p1_lines_crud_with_bad_input() {
    let a = app().await;
    let r = a
        .post(
            "/api/v1/lines",
            json!({"extension": "1001", "display_name": "Alice", "password": "s3cret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let line = r.json();
    let id = line["id"].as_i64().unwrap();
    assert_eq!(line["extension"], "1001");
    assert_eq!(a.changes(), 1);

    // Every bad field at once.
    let r = a
        .post(
            "/api/v1/lines",
            json!({"extension": "1x", "display_name": "", "password": "has space"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.json();
    assert_eq!(body["error"], "invalid input");
    assert_eq!(
        body["fields"]["extension"],
        "must contain digits only (found 'x')"
    );
    assert_eq!(body["fields"]["display_name"], "is required");
    assert_eq!(
        body["fields"]["password"],
        "must be printable ASCII without spaces"
    );
    // Missing field, wrong type, unknown field, broken JSON, no JSON.
    let r = a.post("/api/v1/lines", json!({"extension": "1002"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["fields"]["display_name"], "is required");
    let r = a
        .post(
            "/api/v1/lines",
            json!({"extension": 1002, "display_name": "B", "password": "p"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json()["fields"]["extension"]
            .as_str()
            .unwrap()
            .starts_with("invalid type: integer")
    );
    let r = a
        .send(
            axum::http::Request::post("/api/v1/lines")
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from("{\"extension\":"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    // Conflict: the extension is taken.
    let r = a
        .post(
            "/api/v1/lines",
            json!({"extension": "1001", "display_name": "Bob", "password": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.json()["fields"]["extension"],
        format!("1001 is already used by line {id}")
    );

    assert_eq!(
        a.get("/api/v1/lines")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get(&format!("/api/v1/lines/{id}")).await.json()["display_name"],
        "Alice"
    );
    let r = a
        .put(
            &format!("/api/v1/lines/{id}"),
            json!({"extension": "1005", "display_name": "Alice B", "password": "s3cret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["extension"], "1005");
    let r = a
        .put(
            &format!("/api/v1/lines/{id}"),
            json!({"extension": "", "display_name": "Alice B", "password": "s3cret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        a.get("/api/v1/lines/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.get("/api/v1/lines/abc").await.json()["error"],
        "line not found"
    );
    assert_eq!(
        a.put(
            "/api/v1/lines/999",
            json!({"extension": "1009", "display_name": "Z", "password": "p"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.delete(&format!("/api/v1/lines/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.delete(&format!("/api/v1/lines/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(a.changes(), 3);
}

fn every_setting() -> serde_json::Value {
    json!({
        "name": "Board meeting",
        "extension": "800",
        "access_pin": "1234",
        "host_pin": "4321",
        "max_participants": 50,
        "language": "fr",
        "mute_on_entry": true,
        "wait_for_host": true,
        "announce_join_leave": true,
        "allow_anonymous": false,
        "recording_enabled": true,
        "recording_autostart": true,
        "report_email": "ops@example.org"
    })
}

#[tokio::test]
async fn c1_c15_rooms_take_every_setting() {
    let a = app().await;
    let r = a.post("/api/v1/rooms", every_setting()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let room = r.json();
    for (k, v) in every_setting().as_object().unwrap() {
        assert_eq!(&room[k], v, "{k}");
    }
    assert_eq!(room["warning"], serde_json::Value::Null);
    assert_eq!(room["has_follow_url"], false);
    let id = room["id"].as_i64().unwrap();
    let stored = a.store.room(RoomId(id)).await.unwrap();
    assert_eq!(stored.settings.max_participants, 50);
    assert!(stored.settings.recording_autostart);

    // Defaults (C2: 25; C12: anonymous allowed) and the C17 warning.
    let r = a.post("/api/v1/rooms", json!({"name": "Open"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let open = r.json();
    assert_eq!(open["max_participants"], 25);
    assert_eq!(open["allow_anonymous"], true);
    assert_eq!(open["language"], "en");
    assert_eq!(
        open["warning"],
        "No PIN: anyone who knows the number can join."
    );
    // C3: "0" means no PIN.
    let r = a
        .post("/api/v1/rooms", json!({"name": "Zero", "access_pin": "0"}))
        .await;
    assert_eq!(r.json()["access_pin"], serde_json::Value::Null);
    assert_eq!(
        a.get("/api/v1/rooms")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn c2_c3_c5_c9_room_validation_names_each_field() {
    let a = app().await;
    let r = a
        .post(
            "/api/v1/rooms",
            json!({"name": "x", "max_participants": 1001, "access_pin": "12a4",
                   "host_pin": "123456789012345678901", "language": "pt",
                   "extension": "8", "report_email": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let f = &r.json()["fields"];
    assert_eq!(f["max_participants"], "must be between 2 and 1000");
    assert_eq!(f["access_pin"], "must contain digits only (found 'a')");
    assert_eq!(f["host_pin"], "must have at most 20 digits (has 21)");
    assert_eq!(f["language"], "\"pt\" is not one of en, fr, de, es, it, nl");
    assert_eq!(f["extension"], "must have 2 to 15 digits (has 1)");
    assert_eq!(f["report_email"], "must look like name@example.org");
    let r = a
        .post("/api/v1/rooms", json!({"name": "x", "max_participants": 1}))
        .await;
    assert_eq!(
        r.json()["fields"]["max_participants"],
        "must be between 2 and 1000"
    );
    let r = a
        .post(
            "/api/v1/rooms",
            json!({"name": "x", "max_participants": -5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["fields"]["max_participants"].is_string());
    let r = a
        .post("/api/v1/rooms", json!({"name": "x", "wait_for_host": true}))
        .await;
    assert!(
        r.json()["fields"]["wait_for_host"]
            .as_str()
            .unwrap()
            .starts_with("needs a host PIN")
    );
    let r = a
        .post(
            "/api/v1/rooms",
            json!({"name": "x", "recording_autostart": true}),
        )
        .await;
    assert_eq!(
        r.json()["fields"]["recording_autostart"],
        "needs recording to be enabled"
    );
    let r = a
        .post(
            "/api/v1/rooms",
            json!({"name": "x", "access_pin": "11", "host_pin": "11"}),
        )
        .await;
    assert!(r.json()["fields"]["host_pin"].is_string());
    let r = a
        .post("/api/v1/rooms", json!({"name": "x", "max_participans": 5}))
        .await;
    assert_eq!(
        r.json()["fields"]["max_participans"],
        "is not a known field"
    );
    assert!(a.store.rooms().await.unwrap().is_empty());
    assert_eq!(a.changes(), 0);
}

#[tokio::test]
async fn c1_room_update_patch_conflict_numbers_and_delete() {
    let a = app().await;
    let line = a
        .post(
            "/api/v1/lines",
            json!({"extension": "1001", "display_name": "A", "password": "p"}),
        )
        .await
        .json();
    let id = a.post("/api/v1/rooms", every_setting()).await.json()["id"]
        .as_i64()
        .unwrap();
    let url = format!("/api/v1/rooms/{id}");
    // The extension namespace is shared with lines (C1).
    let mut body = every_setting();
    body["extension"] = json!("1001");
    let r = a.put(&url, body).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.json()["fields"]["extension"],
        format!("1001 is already used by line {}", line["id"])
    );
    // PATCH changes only what it names.
    let r = a
        .api(
            Method::PATCH,
            &url,
            Some(json!({"max_participants": 200, "language": "de"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let room = r.json();
    assert_eq!(room["max_participants"], 200);
    assert_eq!(room["language"], "de");
    assert_eq!(room["access_pin"], "1234");
    let r = a
        .api(Method::PATCH, &url, Some(json!({"max_participants": 0})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = a
        .api(
            Method::PATCH,
            &url,
            Some(json!({"access_pin": null, "host_pin": null, "wait_for_host": false})),
        )
        .await;
    assert_eq!(
        r.json()["warning"],
        "No PIN: anyone who knows the number can join."
    );
    // PUT replaces everything; omitted fields take defaults.
    let r = a.put(&url, json!({"name": "Renamed"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["max_participants"], 25);
    assert_eq!(r.json()["extension"], serde_json::Value::Null);
    assert_eq!(
        a.get("/api/v1/rooms/77").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.put("/api/v1/rooms/77", json!({"name": "n"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.api(Method::PATCH, "/api/v1/rooms/77", Some(json!({})))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A public number routed to the room shows in it and blocks deletion.
    let n = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+33123456789", "destination": {"kind": "room", "id": id}}),
        )
        .await;
    assert_eq!(n.status, StatusCode::CREATED);
    assert_eq!(a.get(&url).await.json()["numbers"], json!(["+33123456789"]));
    assert_eq!(
        a.get("/api/v1/rooms").await.json()[0]["numbers"],
        json!(["+33123456789"])
    );
    let r = a.delete(&url).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.json()["fields"]["destination"]
            .as_str()
            .unwrap()
            .contains("+33123456789")
    );
    a.delete(&format!("/api/v1/numbers/{}", n.json()["id"]))
        .await;
    assert_eq!(a.delete(&url).await.status, StatusCode::NO_CONTENT);
    assert_eq!(a.delete(&url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn c8_c11_uploads_check_format_and_size() {
    let a = app_with(|c| c.max_upload_bytes = 4096).await;
    let id = a.post("/api/v1/rooms", json!({"name": "r"})).await.json()["id"]
        .as_i64()
        .unwrap();
    let url = format!("/api/v1/rooms/{id}/uploads/announcement");
    let stored = |name: &str, rate: &str| a.dir.path().join("uploads").join(rate).join(name);
    let r = a.put_bytes(&url, tone(1000)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json()["announcement_upload"].as_str().unwrap().to_owned();
    assert!(first.starts_with(&format!("room{id}-announcement-")) && first.ends_with(".wav"));
    // Converted to both internal rates.
    assert!(stored(&first, "8000").exists() && stored(&first, "16000").exists());
    // A new upload replaces the old files.
    let r = a.put_bytes(&url, tone(1200)).await;
    let second = r.json()["announcement_upload"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(!stored(&first, "8000").exists() && !stored(&first, "16000").exists());
    // Music goes to its own setting.
    let r = a
        .put_bytes(&format!("/api/v1/rooms/{id}/uploads/music"), tone(1000))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["moh_upload"].as_str().unwrap().contains("-music-"));

    // Bad files say why; too big is 413; unknown kind or room is 404.
    let r = a.put_bytes(&url, b"%PDF-1.7 not audio".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["fields"]["file"],
        "this is not a WAV, MP3, OGG Vorbis or FLAC file"
    );
    let r = a.put_bytes(&url, Vec::new()).await;
    assert_eq!(r.json()["fields"]["file"], "the file is empty");
    let r = a.put_bytes(&url, wav(1000)).await;
    assert_eq!(r.json()["fields"]["file"], "the audio is silent");
    let r = a.put_bytes(&url, wav(5000)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json()["error"],
        "the file is too large: the limit is 4096 bytes"
    );
    assert_eq!(
        a.put_bytes(&format!("/api/v1/rooms/{id}/uploads/video"), tone(10))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.put_bytes("/api/v1/rooms/999/uploads/music", tone(10))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The stored setting did not change on failures.
    let room = a.get(&format!("/api/v1/rooms/{id}")).await.json();
    assert_eq!(room["announcement_upload"], second);

    // Removing goes back to the default and deletes the file.
    let r = a.delete(&url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["announcement_upload"], serde_json::Value::Null);
    assert!(!stored(&second, "8000").exists() && !stored(&second, "16000").exists());
    assert_eq!(a.delete(&url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn c16_urls_generate_regenerate_delete() {
    let a = app().await;
    let id = a
        .post("/api/v1/rooms", json!({"name": "Weekly"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let r = a
        .send(
            axum::http::Request::post(format!("/api/v1/rooms/{id}/urls"))
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .header(header::HOST, "pbx.example.org:8080")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let urls = r.json();
    let follow = urls["follow_url"].as_str().unwrap().to_owned();
    let control = urls["control_url"].as_str().unwrap().to_owned();
    assert!(follow.starts_with("http://pbx.example.org:8080/follow/"));
    let follow_token = follow.rsplit('/').next().unwrap().to_owned();
    let control_token = control.rsplit('/').next().unwrap().to_owned();
    // 128 bits, hex; only the SHA-256 is stored.
    assert_eq!(follow_token.len(), 32);
    let stored = a.store.room(RoomId(id)).await.unwrap();
    assert_eq!(stored.follow_token_hash, Some(sha256_hex(&follow_token)));
    assert_eq!(stored.control_token_hash, Some(sha256_hex(&control_token)));
    assert_eq!(
        a.get(&format!("/api/v1/rooms/{id}")).await.json()["has_follow_url"],
        true
    );

    let page = |path: String| {
        let a = &a;
        async move {
            a.send(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let r = page(format!("/follow/{follow_token}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Weekly"));
    assert_eq!(r.header(header::REFERRER_POLICY), "no-referrer");
    assert!(
        !r.text().contains("id=\"lock\""),
        "follow page has no controls"
    );
    let r = page(format!("/control/{control_token}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("id=\"lock\""));
    // A follow token does not open the control page.
    assert_eq!(
        page(format!("/control/{follow_token}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Regenerating: the old URLs answer 404 at once.
    let again = a
        .post(&format!("/api/v1/rooms/{id}/urls"), json!({}))
        .await
        .json();
    assert_ne!(again["follow_url"].as_str().unwrap(), follow);
    assert_eq!(
        page(format!("/follow/{follow_token}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(format!("/control/{control_token}")).await.status,
        StatusCode::NOT_FOUND
    );
    let new_follow = again["follow_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        page(format!("/follow/{new_follow}")).await.status,
        StatusCode::OK
    );

    // Deleting: gone too.
    assert_eq!(
        a.delete(&format!("/api/v1/rooms/{id}/urls")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        page(format!("/follow/{new_follow}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        a.store
            .room(RoomId(id))
            .await
            .unwrap()
            .follow_token_hash
            .is_none()
    );
    assert_eq!(
        a.post("/api/v1/rooms/999/urls", json!({})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page("/follow/not-a-token".into()).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn c16_live_snapshot_and_commands() {
    let a = app().await;
    let id = a.post("/api/v1/rooms", json!({"name": "r"})).await.json()["id"]
        .as_i64()
        .unwrap();
    a.live.snapshot.lock().unwrap().locked = true;
    let r = a.get(&format!("/api/v1/rooms/{id}/live")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["locked"], true);
    assert_eq!(
        a.get("/api/v1/rooms/999/live").await.status,
        StatusCode::NOT_FOUND
    );

    let r = a
        .post(
            &format!("/api/v1/rooms/{id}/live/commands"),
            json!({"action": "mute", "participant": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = a
        .post(
            &format!("/api/v1/rooms/{id}/live/commands"),
            json!({"action": "explode"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = a
        .post(
            &format!("/api/v1/rooms/{id}/live/commands"),
            json!({"action": "kick", "participant": 404}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "participant 404 is not in the room");

    // The control URL sends commands without an API token.
    let urls = a
        .post(&format!("/api/v1/rooms/{id}/urls"), json!({}))
        .await
        .json();
    let control = urls["control_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let follow = urls["follow_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let command = |token: String, body: &'static str| {
        let a = &a;
        async move {
            a.send(
                axum::http::Request::post(format!("/control/{token}/commands"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(
        command(control.clone(), r#"{"action":"lock"}"#)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        command(follow, r#"{"action":"lock"}"#).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        command(control, r#"{"action":"deafen"}"#).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let commands = a.live.commands.lock().unwrap().clone();
    assert_eq!(
        commands,
        vec![
            (
                RoomId(id),
                ControlCommand::Mute {
                    participant: ParticipantId(3)
                }
            ),
            (RoomId(id), ControlCommand::Lock),
        ]
    );
}

#[tokio::test]
async fn c16_without_live_rooms_commands_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = palaver_store::Store::open_sqlite(&dir.path().join("db"))
        .await
        .unwrap();
    store
        .create_api_token("t", &sha256_hex("tok"))
        .await
        .unwrap();
    let room = store
        .create_room(&palaver_store::RoomSettings::new("r"))
        .await
        .unwrap();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let app = palaver_web::router(palaver_web::WebState::new(
        store,
        metrics,
        palaver_web::WebConfig::new(dir.path()),
    ));
    use tower::ServiceExt;
    let r = app
        .oneshot(
            axum::http::Request::post(format!("/api/v1/rooms/{}/live/commands", room.id))
                .header(header::AUTHORIZATION, "Bearer tok")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(r#"{"action":"lock"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn p3_numbers_crud_with_bad_input() {
    let a = app().await;
    let room = a.post("/api/v1/rooms", json!({"name": "r"})).await.json()["id"]
        .as_i64()
        .unwrap();
    let trunk = a
        .post("/api/v1/trunks", json!({"name": "carrier"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+3312", "destination": {"kind": "room", "id": room},
                   "trunk_id": trunk, "description": "main"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+3312", "destination": {"kind": "room", "id": room}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["fields"]["number"], "+3312 already exists");
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "12ab", "destination": {"kind": "room", "id": room}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["fields"]["number"].is_string());
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+3313", "destination": {"kind": "queue", "id": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["fields"]["destination.kind"].is_string());
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+3313", "destination": {"kind": "line", "id": 99}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["fields"]["destination"], "line 99 does not exist");
    let r = a
        .post(
            "/api/v1/numbers",
            json!({"number": "+3313", "destination": {"kind": "room", "id": room}, "trunk_id": 99}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["fields"]["trunk_id"], "trunk 99 does not exist");

    assert_eq!(a.get("/api/v1/numbers").await.json()[0]["trunk_id"], trunk);
    assert_eq!(
        a.get(&format!("/api/v1/numbers/{id}")).await.json()["description"],
        "main"
    );
    let r = a
        .put(
            &format!("/api/v1/numbers/{id}"),
            json!({"number": "+3314", "destination": {"kind": "room", "id": room}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["number"], "+3314");
    assert_eq!(r.json()["trunk_id"], serde_json::Value::Null);
    assert_eq!(
        a.put(
            "/api/v1/numbers/999",
            json!({"number": "1", "destination": {"kind": "room", "id": room}})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.get("/api/v1/numbers/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.delete(&format!("/api/v1/numbers/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.delete(&format!("/api/v1/numbers/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn p2_trunks_crud_with_bad_input_and_hidden_password() {
    let a = app().await;
    let body = json!({"name": "carrier", "addresses": ["127.0.0.0/8", "::1"],
                      "host": "127.0.0.1:5080", "transport": "tcp", "username": "acct",
                      "password": "pw", "register": true});
    let r = a.post("/api/v1/trunks", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let t = r.json();
    assert_eq!(t["addresses"], json!(["127.0.0.0/8", "::1/128"]));
    assert_eq!(t["has_password"], true);
    assert!(t.get("password").is_none());
    let id = t["id"].as_i64().unwrap();
    assert_eq!(
        a.post("/api/v1/trunks", body).await.status,
        StatusCode::CONFLICT
    );
    let r = a
        .post(
            "/api/v1/trunks",
            json!({"name": "b", "addresses": ["10.1.2.3/8"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["fields"]["addresses"],
        "\"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"
    );
    let r = a
        .post("/api/v1/trunks", json!({"name": "b", "register": true}))
        .await;
    assert_eq!(
        r.json()["fields"]["host"],
        "is required to register the trunk"
    );
    let r = a
        .post("/api/v1/trunks", json!({"name": "b", "transport": "sctp"}))
        .await;
    assert_eq!(
        r.json()["fields"]["transport"],
        "\"sctp\" is not one of udp, tcp, tls"
    );
    // Replacing without a password keeps it; "" clears it.
    let r = a
        .put(
            &format!("/api/v1/trunks/{id}"),
            json!({"name": "carrier-a", "host": "127.0.0.1", "username": "acct", "register": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        a.store
            .trunk(palaver_store::TrunkId(id))
            .await
            .unwrap()
            .password
            .as_deref(),
        Some("pw")
    );
    let r = a
        .put(
            &format!("/api/v1/trunks/{id}"),
            json!({"name": "carrier-a", "password": ""}),
        )
        .await;
    assert_eq!(r.json()["has_password"], false);
    assert_eq!(
        a.get("/api/v1/trunks")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get(&format!("/api/v1/trunks/{id}")).await.json()["name"],
        "carrier-a"
    );
    assert_eq!(
        a.get("/api/v1/trunks/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.put("/api/v1/trunks/999", json!({"name": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.delete(&format!("/api/v1/trunks/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.delete(&format!("/api/v1/trunks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn recording(a: &common::App, room: i64, finished: bool) -> i64 {
    let name = format!("recordings/rec-{room}-{finished}.wav");
    std::fs::create_dir_all(a.dir.path().join("recordings")).unwrap();
    std::fs::write(a.dir.path().join(&name), wav(800)).unwrap();
    let rec = a
        .store
        .create_recording(&NewRecording {
            room_id: RoomId(room),
            room_name: "Weekly".into(),
            path: name,
            started_at: 1_700_000_000_000,
        })
        .await
        .unwrap();
    if finished {
        a.store
            .finish_recording(
                rec.id,
                &FinishedRecording {
                    ended_at: 1_700_000_060_000,
                    duration_ms: 60_000,
                    size_bytes: 1644,
                    participants: r#"[{"number":"1001","name":"Alice","host":true}]"#.into(),
                },
            )
            .await
            .unwrap();
    }
    rec.id.0
}

#[tokio::test]
async fn c10_recordings_list_get_download_delete() {
    let a = app().await;
    let room = a
        .post("/api/v1/rooms", json!({"name": "Weekly"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let other = a
        .post("/api/v1/rooms", json!({"name": "Other"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let id = recording(&a, room, true).await;
    let running = recording(&a, other, false).await;

    let list = a.get("/api/v1/recordings").await.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let list = a
        .get(&format!("/api/v1/recordings?room_id={room}"))
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["duration_ms"], 60_000);
    assert_eq!(list[0]["participants"][0]["name"], "Alice");
    assert_eq!(
        list[0]["audio_url"],
        format!("/api/v1/recordings/{id}/audio")
    );
    let r = a.get("/api/v1/recordings?room_id=abc").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["fields"]["room_id"],
        "must be a room id (a number)"
    );
    assert_eq!(
        a.get(&format!("/api/v1/recordings/{id}")).await.json()["room_name"],
        "Weekly"
    );
    assert_eq!(
        a.get("/api/v1/recordings/999").await.status,
        StatusCode::NOT_FOUND
    );

    let r = a
        .get(&format!("/api/v1/recordings/{id}/audio?download=1"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "audio/wav");
    assert!(
        r.header(header::CONTENT_DISPOSITION)
            .starts_with("attachment;")
    );
    assert_eq!(r.body, wav(800));
    let r = a
        .send(
            axum::http::Request::get(format!("/api/v1/recordings/{id}/audio"))
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .header(header::RANGE, "bytes=0-3")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, b"RIFF");
    assert_eq!(
        a.get("/api/v1/recordings/999/audio").await.status,
        StatusCode::NOT_FOUND
    );

    let r = a.delete(&format!("/api/v1/recordings/{running}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        a.delete(&format!("/api/v1/recordings/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        !a.dir
            .path()
            .join(format!("recordings/rec-{room}-true.wav"))
            .exists()
    );
    assert_eq!(
        a.delete(&format!("/api/v1/recordings/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.get(&format!("/api/v1/recordings/{id}/audio"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn c10_recording_paths_never_leave_the_data_dir() {
    let a = app().await;
    let room = a.post("/api/v1/rooms", json!({"name": "r"})).await.json()["id"]
        .as_i64()
        .unwrap();
    let rec = a
        .store
        .create_recording(&NewRecording {
            room_id: RoomId(room),
            room_name: "r".into(),
            path: "../../etc/passwd".into(),
            started_at: 0,
        })
        .await
        .unwrap();
    let r = a.get(&format!("/api/v1/recordings/{}/audio", rec.id)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"], "Something went wrong");
}

#[tokio::test]
async fn w4_metrics_and_health() {
    let a = app().await;
    let r = a
        .send(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.text(), "ok");
    let r = a
        .send(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header(header::CONTENT_TYPE).starts_with("text/plain"));
    // Tokens in follow URLs never reach the route label.
    let _ = RoomToken::Follow;
}
