//! Every repository function, run once against SQLite and once against
//! PostgreSQL (see `common/mod.rs` for how the databases are made).

mod common;

use common::TestDb;
use palaver_store::*;

fn line(ext: &str) -> LineFields {
    LineFields {
        extension: ext.into(),
        display_name: format!("Line {ext}"),
        password: format!("pw-{ext}"),
    }
}

fn room(name: &str, ext: Option<&str>) -> RoomSettings {
    let mut s = RoomSettings::new(name);
    s.extension = ext.map(Into::into);
    s
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, field: &str, message: &str) {
    match r {
        Err(StoreError::Invalid {
            field: f,
            message: m,
        }) => {
            assert_eq!((f, m.as_str()), (field, message));
        }
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T>, what: &str, message: &str) {
    match r {
        Err(StoreError::Conflict {
            what: w,
            message: m,
        }) => {
            assert_eq!((w, m.as_str()), (what, message));
        }
        other => panic!("expected Conflict({what}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(StoreError::NotFound { what: w }) => assert_eq!(w, what),
        other => panic!("expected NotFound({what}), got {other:?}"),
    }
}

// ---------------------------------------------------------------- lines

async fn lines_crud(db: &TestDb) {
    let s = &db.store;
    let a = s.create_line(&line("1001")).await.unwrap();
    assert_eq!(a.extension, "1001");
    assert!(a.created_at > 1_600_000_000_000, "Unix ms");
    let b = s
        .create_line(&LineFields {
            extension: " 1002 ".into(),
            display_name: " Bob ".into(),
            password: "secret".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (b.extension.as_str(), b.display_name.as_str()),
        ("1002", "Bob")
    );

    assert_eq!(s.line(a.id).await.unwrap(), a);
    assert_eq!(s.line_by_extension("1002").await.unwrap(), Some(b.clone()));
    assert_eq!(s.line_by_extension("1003").await.unwrap(), None);
    assert_eq!(s.lines().await.unwrap(), vec![a.clone(), b.clone()]);

    let updated = s
        .update_line(
            a.id,
            &LineFields {
                extension: "1011".into(),
                display_name: "Alice".into(),
                password: "new-pass".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.created_at, a.created_at);
    assert_eq!(s.line(a.id).await.unwrap(), updated);
    assert_eq!(s.line_by_extension("1001").await.unwrap(), None);
    // Its old extension is free again.
    assert_eq!(s.extension_owner("1001").await.unwrap(), None);
    assert_eq!(
        s.extension_owner("1011").await.unwrap(),
        Some(ExtensionOwner::Line(a.id))
    );

    assert_conflict(
        s.create_line(&line("1002")).await,
        "extension",
        &format!("1002 is already used by line {}", b.id),
    );
    assert_conflict(
        s.update_line(a.id, &line("1002")).await,
        "extension",
        &format!("1002 is already used by line {}", b.id),
    );
    // The failed update changed nothing.
    assert_eq!(s.line(a.id).await.unwrap(), updated);

    s.delete_line(b.id).await.unwrap();
    assert_not_found(s.line(b.id).await, "line");
    assert_not_found(s.delete_line(b.id).await, "line");
    assert_not_found(s.update_line(b.id, &line("1099")).await, "line");
    assert_eq!(s.extension_owner("1002").await.unwrap(), None);
    // Ids are never reused.
    let c = s.create_line(&line("1002")).await.unwrap();
    assert!(c.id > b.id);
}
backend_test!(lines_crud);

async fn line_validation(db: &TestDb) {
    let s = &db.store;
    assert_invalid(
        s.create_line(&line("1")).await,
        "extension",
        "must have 2 to 15 digits (has 1)",
    );
    assert_invalid(
        s.create_line(&line("10a1")).await,
        "extension",
        "must contain digits only (found 'a')",
    );
    let mut f = line("1001");
    f.display_name = " ".into();
    assert_invalid(s.create_line(&f).await, "display_name", "is required");
    let mut f = line("1001");
    f.password = "two words".into();
    assert_invalid(
        s.create_line(&f).await,
        "password",
        "must be printable ASCII without spaces",
    );
    assert!(s.lines().await.unwrap().is_empty());
}
backend_test!(line_validation);

// ---------------------------------------------------------------- extension namespace

async fn extensions_are_shared_by_lines_and_rooms(db: &TestDb) {
    let s = &db.store;
    let l = s.create_line(&line("800")).await.unwrap();
    assert_conflict(
        s.create_room(&room("Sales", Some("800"))).await,
        "extension",
        &format!("800 is already used by line {}", l.id),
    );
    let r = s.create_room(&room("Sales", Some("801"))).await.unwrap();
    assert_conflict(
        s.create_line(&line("801")).await,
        "extension",
        &format!("801 is already used by room {}", r.id),
    );
    assert_conflict(
        s.update_line(l.id, &line("801")).await,
        "extension",
        &format!("801 is already used by room {}", r.id),
    );
    assert_conflict(
        s.update_room(r.id, &room("Sales", Some("800"))).await,
        "extension",
        &format!("800 is already used by line {}", l.id),
    );
    let r2 = s.create_room(&room("Other", None)).await.unwrap();
    assert_conflict(
        s.update_room(r2.id, &room("Other", Some("801"))).await,
        "extension",
        &format!("801 is already used by room {}", r.id),
    );
    // Rooms without an extension do not clash with each other.
    s.create_room(&room("Third", None)).await.unwrap();
    assert_eq!(
        s.extension_owner("800").await.unwrap(),
        Some(ExtensionOwner::Line(l.id))
    );
    assert_eq!(
        s.extension_owner("801").await.unwrap(),
        Some(ExtensionOwner::Room(r.id))
    );
    // Freed by delete / by update to no extension.
    s.delete_line(l.id).await.unwrap();
    s.update_room(r.id, &room("Sales", None)).await.unwrap();
    let moved = s
        .update_room(r2.id, &room("Other", Some("800")))
        .await
        .unwrap();
    assert_eq!(moved.settings.extension.as_deref(), Some("800"));
    s.create_line(&line("801")).await.unwrap();
}
backend_test!(extensions_are_shared_by_lines_and_rooms);

async fn concurrent_writers_race_cleanly(db: &TestDb) {
    // Eight tasks want the same extension: exactly one gets it, the others
    // get a Conflict, none an error or a duplicate.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = db.store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    s.create_line(&line("900")).await.map(|_| ())
                } else {
                    s.create_room(&room("r", Some("900"))).await.map(|_| ())
                }
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict { what, .. }) => assert_eq!(what, "extension"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    // Distinct writes in parallel all succeed (SQLite writers queue).
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = db.store.clone();
            tokio::spawn(async move { s.create_line(&line(&format!("70{i:02}"))).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        db.store.lines().await.unwrap().len(),
        20 + usize::from(db.store.line_by_extension("900").await.unwrap().is_some())
    );
}
backend_test!(concurrent_writers_race_cleanly);

// ---------------------------------------------------------------- bindings

fn binding(line: LineId, contact: &str, expires_at: i64) -> Binding {
    Binding {
        line_id: line,
        contact: contact.into(),
        received: "127.0.0.1:5062".into(),
        transport: Transport::Udp,
        expires_at,
        call_id: "abc@127.0.0.1".into(),
        cseq: 1,
        user_agent: "baresip".into(),
        instance: None,
    }
}

async fn bindings_crud_and_expiry(db: &TestDb) {
    let s = &db.store;
    let a = s.create_line(&line("1001")).await.unwrap();
    let b = s.create_line(&line("1002")).await.unwrap();
    let a1 = binding(a.id, "sip:1001@127.0.0.1:5062", 10_000);
    let mut a2 = binding(a.id, "sip:1001@127.0.0.1:5064;transport=tcp", 20_000);
    a2.transport = Transport::Tcp;
    a2.instance = Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into());
    let b1 = binding(b.id, "sip:1002@127.0.0.2:5060", 5_000);
    for x in [&a1, &a2, &b1] {
        s.upsert_binding(x).await.unwrap();
    }
    assert_eq!(
        s.all_bindings(0).await.unwrap(),
        vec![a1.clone(), a2.clone(), b1.clone()]
    );
    // Expiry is "strictly after now".
    assert_eq!(
        s.all_bindings(5_000).await.unwrap(),
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(
        s.bindings_of_line(a.id, 10_000).await.unwrap(),
        vec![a2.clone()]
    );

    // A refresh replaces every field of the same (line, contact).
    let mut refreshed = a1.clone();
    refreshed.expires_at = 30_000;
    refreshed.cseq = 2;
    refreshed.received = "127.0.0.1:6000".into();
    refreshed.user_agent = String::new();
    s.upsert_binding(&refreshed).await.unwrap();
    assert_eq!(
        s.bindings_of_line(a.id, 0).await.unwrap(),
        vec![refreshed.clone(), a2.clone()]
    );

    assert_eq!(s.delete_expired_bindings(5_000).await.unwrap(), 1);
    assert_eq!(s.all_bindings(0).await.unwrap().len(), 2);

    assert!(s.delete_binding(a.id, &a2.contact).await.unwrap());
    assert!(!s.delete_binding(a.id, &a2.contact).await.unwrap());
    s.upsert_binding(&a2).await.unwrap();
    assert_eq!(s.delete_bindings_of_line(a.id).await.unwrap(), 2);
    assert!(s.all_bindings(0).await.unwrap().is_empty());

    // Unknown line: NotFound, not a database error.
    assert_not_found(
        s.upsert_binding(&binding(LineId(999_999), "sip:x@127.0.0.1", 1))
            .await,
        "line",
    );
    // Deleting a line removes its bindings.
    s.upsert_binding(&b1).await.unwrap();
    s.delete_line(b.id).await.unwrap();
    assert!(s.all_bindings(0).await.unwrap().is_empty());
    // u32::MAX CSeq survives the i64 column.
    let mut big = binding(a.id, "sip:big@127.0.0.1", 1);
    big.cseq = u32::MAX;
    s.upsert_binding(&big).await.unwrap();
    assert_eq!(s.all_bindings(0).await.unwrap()[0].cseq, u32::MAX);
}
backend_test!(bindings_crud_and_expiry);

async fn data_survives_a_restart(db: &TestDb) {
    let l = db.store.create_line(&line("1001")).await.unwrap();
    let b = binding(l.id, "sip:1001@127.0.0.1:5062", i64::MAX);
    db.store.upsert_binding(&b).await.unwrap();
    db.store.set_setting("k", "v").await.unwrap();
    // A second open runs the migrations again: they must be a no-op.
    let again = db.reopen().await;
    assert_eq!(again.backend(), db.store.backend());
    assert_eq!(again.all_bindings(0).await.unwrap(), vec![b]);
    assert_eq!(again.line(l.id).await.unwrap(), l);
    assert_eq!(again.get_setting("k").await.unwrap().as_deref(), Some("v"));
    again.close().await;
}
backend_test!(data_survives_a_restart);

// ---------------------------------------------------------------- trunks

async fn trunks_crud(db: &TestDb) {
    let s = &db.store;
    let mut f = TrunkFields::new("local");
    f.addresses = vec!["127.0.0.0/8".into(), " ::1 ".into()];
    let t = s.create_trunk(&f).await.unwrap();
    assert_eq!(
        t.addresses
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["127.0.0.0/8", "::1/128"]
    );
    assert!(t.accepts_from("127.0.0.1".parse().unwrap()));
    assert!(t.enabled && !t.register);
    assert_eq!(s.trunk(t.id).await.unwrap(), t);
    assert_eq!(s.trunk_by_name("local").await.unwrap(), Some(t.clone()));
    assert_eq!(s.trunk_by_name("nope").await.unwrap(), None);

    assert_conflict(
        s.create_trunk(&TrunkFields::new("local")).await,
        "name",
        "a trunk named \"local\" already exists",
    );

    let mut carrier = TrunkFields::new("carrier");
    carrier.host = Some("sip.example.org:5061".into());
    carrier.transport = Transport::Tls;
    carrier.username = Some("acct".into());
    carrier.password = Some("pw".into());
    carrier.register = true;
    carrier.enabled = false;
    let c = s.create_trunk(&carrier).await.unwrap();
    assert_eq!(s.trunk(c.id).await.unwrap(), c);
    assert_eq!(
        s.trunks()
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["carrier", "local"]
    );

    let mut renamed = f.clone();
    renamed.name = "loopback".into();
    renamed.addresses = vec![];
    let u = s.update_trunk(t.id, &renamed).await.unwrap();
    assert_eq!(u.created_at, t.created_at);
    assert!(u.addresses.is_empty());
    assert_eq!(s.trunk(t.id).await.unwrap(), u);
    assert_conflict(
        s.update_trunk(t.id, &carrier).await,
        "name",
        "a trunk named \"carrier\" already exists",
    );

    assert_invalid(
        s.create_trunk(&TrunkFields {
            addresses: vec!["10.0.0.1/8".into()],
            ..TrunkFields::new("bad")
        })
        .await,
        "addresses",
        "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?",
    );
    assert_invalid(
        s.create_trunk(&TrunkFields {
            host: Some("sip.example.org:99999".into()),
            ..TrunkFields::new("bad")
        })
        .await,
        "host",
        "\"sip.example.org:99999\" has a port that is not a number from 1 to 65535",
    );

    s.delete_trunk(c.id).await.unwrap();
    assert_not_found(s.trunk(c.id).await, "trunk");
    assert_not_found(s.delete_trunk(c.id).await, "trunk");
    assert_not_found(s.update_trunk(c.id, &carrier).await, "trunk");
}
backend_test!(trunks_crud);

// ---------------------------------------------------------------- numbers

async fn numbers_crud_and_routing(db: &TestDb) {
    let s = &db.store;
    let r = s.create_room(&room("Demo", Some("800"))).await.unwrap();
    let l = s.create_line(&line("1001")).await.unwrap();
    let t = s
        .create_trunk(&TrunkFields {
            addresses: vec!["127.0.0.0/8".into()],
            ..TrunkFields::new("local")
        })
        .await
        .unwrap();

    let n800 = s
        .create_number(&NumberFields {
            number: "800".into(),
            destination: Destination::Room(r.id),
            trunk_id: Some(t.id),
            description: "demo room".into(),
        })
        .await
        .unwrap();
    let e164 = s
        .create_number(&NumberFields {
            number: "+33123456789".into(),
            destination: Destination::Room(r.id),
            trunk_id: None,
            description: String::new(),
        })
        .await
        .unwrap();
    let to_line = s
        .create_number(&NumberFields {
            number: "+33100000000".into(),
            destination: Destination::Line(l.id),
            trunk_id: None,
            description: String::new(),
        })
        .await
        .unwrap();

    assert_eq!(s.number(n800.id).await.unwrap(), n800);
    assert_eq!(s.number_by_did("800").await.unwrap(), Some(n800.clone()));
    assert_eq!(s.number_by_did("801").await.unwrap(), None);
    assert_eq!(
        s.numbers_to(Destination::Room(r.id)).await.unwrap(),
        vec![e164.clone(), n800.clone()]
    );
    assert_eq!(
        s.numbers_to(Destination::Line(l.id)).await.unwrap(),
        vec![to_line.clone()]
    );
    assert_eq!(s.numbers().await.unwrap().len(), 3);

    assert_conflict(
        s.create_number(&NumberFields {
            number: "800".into(),
            destination: Destination::Line(l.id),
            trunk_id: None,
            description: String::new(),
        })
        .await,
        "number",
        "800 already exists",
    );
    assert_invalid(
        s.create_number(&NumberFields {
            number: "801".into(),
            destination: Destination::Room(RoomId(424_242)),
            trunk_id: None,
            description: String::new(),
        })
        .await,
        "destination",
        "room 424242 does not exist",
    );
    assert_invalid(
        s.create_number(&NumberFields {
            number: "801".into(),
            destination: Destination::Line(l.id),
            trunk_id: Some(TrunkId(424_242)),
            description: String::new(),
        })
        .await,
        "trunk_id",
        "trunk 424242 does not exist",
    );
    assert_invalid(
        s.create_number(&NumberFields {
            number: "80-1".into(),
            destination: Destination::Line(l.id),
            trunk_id: None,
            description: String::new(),
        })
        .await,
        "number",
        "must be digits with an optional leading + (found '-')",
    );
    assert_eq!(s.number_by_did("801").await.unwrap(), None, "rolled back");

    // Re-point the line's number to the room.
    let moved = s
        .update_number(
            to_line.id,
            &NumberFields {
                number: "+33100000000".into(),
                destination: Destination::Room(r.id),
                trunk_id: Some(t.id),
                description: "moved".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(s.number(to_line.id).await.unwrap(), moved);
    assert_invalid(
        s.update_number(
            to_line.id,
            &NumberFields {
                number: "+33100000000".into(),
                destination: Destination::Line(LineId(424_242)),
                trunk_id: None,
                description: String::new(),
            },
        )
        .await,
        "destination",
        "line 424242 does not exist",
    );
    assert_eq!(s.number(to_line.id).await.unwrap(), moved, "rolled back");
    assert_conflict(
        s.update_number(
            to_line.id,
            &NumberFields {
                number: "800".into(),
                destination: Destination::Room(r.id),
                trunk_id: None,
                description: String::new(),
            },
        )
        .await,
        "number",
        "800 already exists",
    );

    // The line has no numbers any more, so it can go; the room cannot.
    s.delete_line(l.id).await.unwrap();
    assert_conflict(
        s.delete_room(r.id).await,
        "destination",
        "this room is the destination of numbers +33100000000, +33123456789, 800; \
         route them elsewhere first",
    );
    assert_eq!(s.room(r.id).await.unwrap().id, r.id, "rolled back");

    // Deleting the trunk unties its numbers.
    s.delete_trunk(t.id).await.unwrap();
    assert_eq!(s.number(n800.id).await.unwrap().trunk_id, None);

    for n in [n800.id, e164.id, to_line.id] {
        s.delete_number(n).await.unwrap();
    }
    assert_not_found(s.number(n800.id).await, "number");
    assert_not_found(s.delete_number(n800.id).await, "number");
    assert_not_found(
        s.update_number(
            n800.id,
            &NumberFields {
                number: "800".into(),
                destination: Destination::Room(r.id),
                trunk_id: None,
                description: String::new(),
            },
        )
        .await,
        "number",
    );
    s.delete_room(r.id).await.unwrap();
}
backend_test!(numbers_crud_and_routing);

async fn line_routed_by_a_number_cannot_be_deleted(db: &TestDb) {
    let s = &db.store;
    let l = s.create_line(&line("1001")).await.unwrap();
    s.create_number(&NumberFields {
        number: "+3310".into(),
        destination: Destination::Line(l.id),
        trunk_id: None,
        description: String::new(),
    })
    .await
    .unwrap();
    assert_conflict(
        s.delete_line(l.id).await,
        "destination",
        "this line is the destination of number +3310; route it elsewhere first",
    );
    assert_eq!(s.line(l.id).await.unwrap(), l);
}
backend_test!(line_routed_by_a_number_cannot_be_deleted);

// ---------------------------------------------------------------- rooms

async fn rooms_crud(db: &TestDb) {
    let s = &db.store;
    let mut full = RoomSettings::new("Board");
    full.extension = Some("801".into());
    full.access_pin = Some("1234".into());
    full.host_pin = Some("4321".into());
    full.max_participants = 1000;
    full.language = Language::Nl;
    full.mute_on_entry = true;
    full.wait_for_host = true;
    full.announce_join_leave = true;
    full.announcement_upload = Some("greeting-801.wav".into());
    full.moh_upload = Some("moh-801.wav".into());
    full.allow_anonymous = false;
    full.recording_enabled = true;
    full.recording_autostart = true;
    full.report_email = Some("board@example.org".into());
    let board = s.create_room(&full).await.unwrap();
    assert_eq!(board.settings, full);
    assert_eq!(s.room(board.id).await.unwrap(), board);

    let mut open = RoomSettings::new("Open");
    open.extension = Some("800".into());
    open.access_pin = Some("0".into());
    let o = s.create_room(&open).await.unwrap();
    assert_eq!(o.settings.access_pin, None, "\"0\" means no PIN");
    assert_eq!(o.settings.max_participants, 25);
    assert!(o.settings.allow_anonymous);

    assert_eq!(
        s.room_by_extension("801").await.unwrap(),
        Some(board.clone())
    );
    assert_eq!(s.room_by_extension("802").await.unwrap(), None);
    assert_eq!(
        s.rooms()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [board.id, o.id]
    );

    let mut changed = full.clone();
    changed.name = "Board (new)".into();
    changed.language = Language::De;
    changed.host_pin = Some("".into());
    changed.wait_for_host = false;
    changed.report_email = None;
    let u = s.update_room(board.id, &changed).await.unwrap();
    assert_eq!(u.settings.host_pin, None);
    assert_eq!(u.settings.language, Language::De);
    assert_eq!(u.created_at, board.created_at);
    assert_eq!(s.room(board.id).await.unwrap(), u);

    assert_not_found(s.room(RoomId(424_242)).await, "room");
    assert_not_found(s.update_room(RoomId(424_242), &open).await, "room");
    s.delete_room(o.id).await.unwrap();
    assert_not_found(s.delete_room(o.id).await, "room");
    assert_eq!(s.extension_owner("800").await.unwrap(), None);
}
backend_test!(rooms_crud);

async fn room_validation(db: &TestDb) {
    let s = &db.store;
    let mut r = room("r", Some("800"));
    r.access_pin = Some("12ab".into());
    assert_invalid(
        s.create_room(&r).await,
        "access_pin",
        "must contain digits only (found 'a')",
    );
    let mut r = room("r", Some("800"));
    r.host_pin = Some("1".repeat(21));
    assert_invalid(
        s.create_room(&r).await,
        "host_pin",
        "must have at most 20 digits (has 21)",
    );
    let mut r = room("r", Some("800"));
    r.max_participants = 1;
    assert_invalid(
        s.create_room(&r).await,
        "max_participants",
        "must be from 2 to 1000 (got 1)",
    );
    r.max_participants = 1001;
    assert_invalid(
        s.create_room(&r).await,
        "max_participants",
        "must be from 2 to 1000 (got 1001)",
    );
    let mut r = room("r", Some("800"));
    r.report_email = Some("board.example.org".into());
    assert_invalid(
        s.create_room(&r).await,
        "report_email",
        "must look like name@example.org",
    );
    assert!(s.rooms().await.unwrap().is_empty());
    // Update validates too, and leaves the row alone.
    let ok = s.create_room(&room("ok", Some("800"))).await.unwrap();
    let mut bad = ok.settings.clone();
    bad.recording_autostart = true;
    assert_invalid(
        s.update_room(ok.id, &bad).await,
        "recording_autostart",
        "needs recording to be enabled",
    );
    assert_eq!(s.room(ok.id).await.unwrap(), ok);
}
backend_test!(room_validation);

async fn room_tokens(db: &TestDb) {
    let s = &db.store;
    let r = s.create_room(&room("r", None)).await.unwrap();
    let other = s.create_room(&room("o", None)).await.unwrap();
    assert_eq!(r.follow_token_hash, None);
    s.set_room_token(r.id, RoomToken::Follow, Some("f1"))
        .await
        .unwrap();
    s.set_room_token(r.id, RoomToken::Control, Some("c1"))
        .await
        .unwrap();
    let got = s
        .room_by_token(RoomToken::Follow, "f1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, r.id);
    assert_eq!(got.follow_token_hash.as_deref(), Some("f1"));
    assert_eq!(got.control_token_hash.as_deref(), Some("c1"));
    // A follow hash does not open the control page.
    assert_eq!(
        s.room_by_token(RoomToken::Control, "f1").await.unwrap(),
        None
    );
    // Regenerate: the old hash stops resolving at once.
    s.set_room_token(r.id, RoomToken::Follow, Some("f2"))
        .await
        .unwrap();
    assert_eq!(
        s.room_by_token(RoomToken::Follow, "f1").await.unwrap(),
        None
    );
    assert!(
        s.room_by_token(RoomToken::Follow, "f2")
            .await
            .unwrap()
            .is_some()
    );
    // Settings updates keep the tokens.
    let u = s.update_room(r.id, &room("renamed", None)).await.unwrap();
    assert_eq!(u.follow_token_hash.as_deref(), Some("f2"));
    // Delete.
    s.set_room_token(r.id, RoomToken::Control, None)
        .await
        .unwrap();
    assert_eq!(
        s.room_by_token(RoomToken::Control, "c1").await.unwrap(),
        None
    );
    assert_eq!(s.room(r.id).await.unwrap().control_token_hash, None);
    assert_conflict(
        s.set_room_token(other.id, RoomToken::Follow, Some("f2"))
            .await,
        "follow_token_hash",
        "this token hash is already used by another room",
    );
    assert_not_found(
        s.set_room_token(RoomId(424_242), RoomToken::Follow, Some("x"))
            .await,
        "room",
    );
}
backend_test!(room_tokens);

// ---------------------------------------------------------------- recordings

async fn recordings_lifecycle(db: &TestDb) {
    let s = &db.store;
    let r = s.create_room(&room("Weekly", Some("800"))).await.unwrap();
    let other = s.create_room(&room("Other", None)).await.unwrap();
    let first = s
        .create_recording(&NewRecording {
            room_id: r.id,
            room_name: "Weekly".into(),
            path: "recordings/800-1.wav".into(),
            started_at: 1_000,
        })
        .await
        .unwrap();
    assert_eq!(first.ended_at, None);
    assert_eq!(s.recording(first.id).await.unwrap(), first);
    let second = s
        .create_recording(&NewRecording {
            room_id: r.id,
            room_name: "Weekly".into(),
            path: "recordings/800-2.wav".into(),
            started_at: 5_000,
        })
        .await
        .unwrap();
    let third = s
        .create_recording(&NewRecording {
            room_id: other.id,
            room_name: "Other".into(),
            path: "recordings/o-1.wav".into(),
            started_at: 3_000,
        })
        .await
        .unwrap();
    assert_eq!(
        s.unfinished_recordings()
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [first.id, second.id, third.id]
    );

    let participants = r#"[{"number":"1001","name":"Alice","host":true}]"#;
    let done = s
        .finish_recording(
            first.id,
            &FinishedRecording {
                ended_at: 61_000,
                duration_ms: 60_000,
                size_bytes: 960_044,
                participants: participants.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.ended_at, Some(61_000));
    assert_eq!((done.duration_ms, done.size_bytes), (60_000, 960_044));
    assert_eq!(done.participants, participants);
    assert_eq!(s.recording(first.id).await.unwrap(), done);

    // Newest first.
    assert_eq!(
        s.recordings(Some(r.id))
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [second.id, first.id]
    );
    assert_eq!(
        s.recordings(None)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [second.id, third.id, first.id]
    );
    assert_eq!(
        s.unfinished_recordings()
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [second.id, third.id]
    );

    assert_invalid(
        s.finish_recording(
            second.id,
            &FinishedRecording {
                ended_at: 1,
                duration_ms: 1,
                size_bytes: 1,
                participants: "{not json".into(),
            },
        )
        .await,
        "participants",
        "must be a JSON array",
    );
    assert_invalid(
        s.create_recording(&NewRecording {
            room_id: RoomId(424_242),
            room_name: "x".into(),
            path: "x.wav".into(),
            started_at: 0,
        })
        .await,
        "room_id",
        "room 424242 does not exist",
    );

    // Deleting the room keeps its recordings, unlinked, with the name.
    s.delete_room(r.id).await.unwrap();
    let kept = s.recording(first.id).await.unwrap();
    assert_eq!(kept.room_id, None);
    assert_eq!(kept.room_name, "Weekly");
    assert!(s.recordings(Some(r.id)).await.unwrap().is_empty());

    let deleted = s.delete_recording(first.id).await.unwrap();
    assert_eq!(deleted.path, "recordings/800-1.wav");
    assert_not_found(s.recording(first.id).await, "recording");
    assert_not_found(s.delete_recording(first.id).await, "recording");
    assert_not_found(
        s.finish_recording(
            first.id,
            &FinishedRecording {
                ended_at: 1,
                duration_ms: 1,
                size_bytes: 1,
                participants: "[]".into(),
            },
        )
        .await,
        "recording",
    );
}
backend_test!(recordings_lifecycle);

// ---------------------------------------------------------------- settings

async fn settings(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.get_setting("smtp.host").await.unwrap(), None);
    s.set_setting("smtp.host", "127.0.0.1").await.unwrap();
    s.set_setting("smtp.host", "localhost").await.unwrap();
    assert_eq!(
        s.get_setting("smtp.host").await.unwrap().as_deref(),
        Some("localhost")
    );
    s.set_setting("empty", "").await.unwrap();
    assert_eq!(s.get_setting("empty").await.unwrap().as_deref(), Some(""));
    assert!(s.delete_setting("smtp.host").await.unwrap());
    assert!(!s.delete_setting("smtp.host").await.unwrap());
    assert_eq!(s.get_setting("smtp.host").await.unwrap(), None);
    assert_invalid(s.set_setting("", "x").await, "key", "is required");
}
backend_test!(settings);

// ---------------------------------------------------------------- mail outbox

async fn mail_outbox(db: &TestDb) {
    let s = &db.store;
    let mail = |to: &str| NewMail {
        to: to.into(),
        subject: "Conference report".into(),
        body: "Participants: …\n".into(),
    };
    let a = s
        .enqueue_mail(&mail("ops@example.org"), 1_000)
        .await
        .unwrap();
    let b = s
        .enqueue_mail(&mail("root@localhost"), 2_000)
        .await
        .unwrap();
    assert_eq!(s.mail(a.id).await.unwrap(), a);
    assert!(s.due_mail(999, 10).await.unwrap().is_empty());
    assert_eq!(s.due_mail(1_000, 10).await.unwrap(), vec![a.clone()]);
    assert_eq!(
        s.due_mail(2_000, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [a.id, b.id]
    );
    assert_eq!(s.due_mail(2_000, 1).await.unwrap().len(), 1);

    let backoff = Backoff::default();
    let next = s
        .mark_mail_failed(a.id, "connection refused", 10_000, &backoff)
        .await
        .unwrap();
    assert_eq!(next, 40_000);
    let failed = s.mail(a.id).await.unwrap();
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("connection refused"));
    assert_eq!(failed.next_attempt_at, 40_000);
    assert_eq!(
        s.due_mail(39_999, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [b.id]
    );
    let next = s
        .mark_mail_failed(a.id, "timeout", 40_000, &backoff)
        .await
        .unwrap();
    assert_eq!(next, 100_000, "second failure waits twice as long");
    assert_eq!(s.mail(a.id).await.unwrap().attempts, 2);

    s.mark_mail_sent(b.id, 3_000).await.unwrap();
    let sent = s.mail(b.id).await.unwrap();
    assert_eq!(sent.sent_at, Some(3_000));
    assert_eq!(
        s.due_mail(i64::MAX, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [a.id]
    );

    assert_invalid(
        s.enqueue_mail(&mail("not-an-address"), 0).await,
        "to",
        "must look like name@example.org",
    );
    let mut injected = mail("ops@example.org");
    injected.subject = "hi\r\nBcc: x@example.org".into();
    assert_invalid(
        s.enqueue_mail(&injected, 0).await,
        "subject",
        "must be a single line",
    );
    assert_not_found(s.mail(MailId(424_242)).await, "mail");
    assert_not_found(s.mark_mail_sent(MailId(424_242), 0).await, "mail");
    assert_not_found(
        s.mark_mail_failed(MailId(424_242), "x", 0, &backoff).await,
        "mail",
    );
}
backend_test!(mail_outbox);

// ---------------------------------------------------------------- admin

async fn admin_users_sessions_tokens(db: &TestDb) {
    let s = &db.store;
    let admin = s
        .create_admin_user("admin", "$argon2id$v=19$...")
        .await
        .unwrap();
    assert_eq!(s.admin_user(admin.id).await.unwrap(), admin);
    assert_eq!(
        s.admin_user_by_username("admin").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(s.admin_user_by_username("root").await.unwrap(), None);
    assert_conflict(
        s.create_admin_user("admin", "h").await,
        "username",
        "\"admin\" is already taken",
    );
    assert_invalid(
        s.create_admin_user("", "h").await,
        "username",
        "is required",
    );
    assert_invalid(
        s.create_admin_user("x", "").await,
        "password_hash",
        "is required",
    );
    let second = s.create_admin_user("bob", "h2").await.unwrap();
    assert_eq!(
        s.admin_users().await.unwrap(),
        vec![admin.clone(), second.clone()]
    );
    s.set_admin_password_hash(admin.id, "h3").await.unwrap();
    assert_eq!(s.admin_user(admin.id).await.unwrap().password_hash, "h3");

    let session = Session {
        id_hash: "sid-hash".into(),
        user_id: admin.id,
        csrf: "csrf-token".into(),
        expires_at: 10_000,
    };
    s.create_session(&session).await.unwrap();
    assert_eq!(
        s.session("sid-hash", 9_999).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        s.session("sid-hash", 10_000).await.unwrap(),
        None,
        "expired"
    );
    assert!(s.extend_session("sid-hash", 20_000).await.unwrap());
    assert!(s.session("sid-hash", 10_000).await.unwrap().is_some());
    assert!(!s.extend_session("nope", 1).await.unwrap());
    assert_conflict(
        s.create_session(&session).await,
        "id_hash",
        "a session with this id already exists",
    );
    assert_not_found(
        s.create_session(&Session {
            user_id: AdminUserId(424_242),
            id_hash: "other".into(),
            ..session.clone()
        })
        .await,
        "admin user",
    );
    s.create_session(&Session {
        id_hash: "old".into(),
        expires_at: 5,
        ..session.clone()
    })
    .await
    .unwrap();
    assert_eq!(s.delete_expired_sessions(5).await.unwrap(), 1);
    assert!(s.delete_session("sid-hash").await.unwrap());
    assert!(!s.delete_session("sid-hash").await.unwrap());
    s.create_session(&session).await.unwrap();
    s.create_session(&Session {
        id_hash: "second".into(),
        ..session.clone()
    })
    .await
    .unwrap();
    assert_eq!(s.delete_sessions_of_user(admin.id).await.unwrap(), 2);
    // Deleting a user ends their sessions.
    s.create_session(&Session {
        user_id: second.id,
        ..session.clone()
    })
    .await
    .unwrap();
    s.delete_admin_user(second.id).await.unwrap();
    assert_eq!(s.session("sid-hash", 0).await.unwrap(), None);
    assert_not_found(s.admin_user(second.id).await, "admin user");
    assert_not_found(s.delete_admin_user(second.id).await, "admin user");
    assert_not_found(
        s.set_admin_password_hash(second.id, "h").await,
        "admin user",
    );

    let t = s
        .create_api_token("backup script", "tok-hash")
        .await
        .unwrap();
    assert_eq!(t.last_used_at, None);
    assert_eq!(
        s.api_token_by_hash("tok-hash").await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(s.api_token_by_hash("other").await.unwrap(), None);
    assert_conflict(
        s.create_api_token("again", "tok-hash").await,
        "token_hash",
        "a token with this hash already exists",
    );
    s.touch_api_token(t.id, 77).await.unwrap();
    assert_eq!(s.api_tokens().await.unwrap()[0].last_used_at, Some(77));
    s.delete_api_token(t.id).await.unwrap();
    assert_eq!(s.api_token_by_hash("tok-hash").await.unwrap(), None);
    assert_not_found(s.delete_api_token(t.id).await, "API token");
    assert_not_found(s.touch_api_token(t.id, 1).await, "API token");
}
backend_test!(admin_users_sessions_tokens);

// ---------------------------------------------------------------- CDRs

async fn cdrs(db: &TestDb) {
    let s = &db.store;
    let call = |i: i64, answered: Option<i64>, disposition| NewCdr {
        call_id: format!("call-{i}@127.0.0.1"),
        from_uri: "sip:1001@127.0.0.1".into(),
        to_uri: "sip:800@127.0.0.1".into(),
        caller: "1001".into(),
        callee: "800".into(),
        destination_kind: "room".into(),
        started_at: i * 1_000,
        answered_at: answered,
        ended_at: i * 1_000 + 900,
        disposition,
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let answered = (i % 2 == 0).then_some(i * 1_000 + 100);
        let d = if answered.is_some() {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        };
        let c = s.insert_cdr(&call(i, answered, d)).await.unwrap();
        assert_eq!(c.duration_ms, if answered.is_some() { 800 } else { 0 });
        ids.push(c.id);
    }
    let page1 = s.cdrs(2, None).await.unwrap();
    assert_eq!(
        page1.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    assert_eq!(page1[0].call, call(4, Some(4_100), Disposition::Answered));
    let page2 = s.cdrs(2, Some(ids[3])).await.unwrap();
    assert_eq!(
        page2.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    assert_eq!(s.cdrs(10, Some(ids[0])).await.unwrap(), vec![]);

    // A batch: one commit; a record with its times out of order is skipped.
    let batch = vec![
        call(10, Some(10_100), Disposition::Answered),
        NewCdr {
            ended_at: -1,
            ..call(11, None, Disposition::Failed)
        },
        call(12, None, Disposition::Busy),
    ];
    assert_eq!(s.insert_cdrs(&batch).await.unwrap(), (2, 1));
    let newest = s.cdrs(2, None).await.unwrap();
    assert_eq!(newest[0].call, call(12, None, Disposition::Busy));
    assert_eq!(
        newest[1].call,
        call(10, Some(10_100), Disposition::Answered)
    );
    assert_eq!(newest[1].duration_ms, 800);
    assert_eq!(s.insert_cdrs(&[]).await.unwrap(), (0, 0));

    assert_invalid(
        s.insert_cdr(&NewCdr {
            ended_at: -1,
            ..call(9, None, Disposition::Failed)
        })
        .await,
        "ended_at",
        "must not be before started_at",
    );
    assert_invalid(
        s.insert_cdr(&call(9, Some(1), Disposition::Answered)).await,
        "answered_at",
        "must be between started_at and ended_at",
    );
}
backend_test!(cdrs);

// ---------------------------------------------------------------- open

#[tokio::test]
async fn open_refuses_unknown_url_schemes() {
    let dir = tempfile::tempdir().unwrap();
    assert_invalid(
        Store::open(Some("mysql://localhost/x"), dir.path()).await,
        "database_url",
        "\"mysql\" is neither postgres://… nor sqlite:…",
    );
}

#[tokio::test]
async fn open_sqlite_uses_wal_and_creates_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::open(Some(""), &data).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.create_line(&line("1001")).await.unwrap();
    assert!(data.join("palaver.db").exists());
    assert!(data.join("palaver.db-wal").exists(), "WAL mode");
    store.close().await;
    // sqlite: URLs work too.
    let url = format!("sqlite://{}", data.join("palaver.db").display());
    let again = Store::open(Some(&url), dir.path()).await.unwrap();
    assert_eq!(again.lines().await.unwrap().len(), 1);
    again.close().await;
}

#[tokio::test]
async fn sqlite_commits_survive_a_crash() {
    // Copy the files while the store is still open and never closed or
    // checkpointed: that is what a killed process leaves on disk.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let l = store.create_line(&line("1001")).await.unwrap();
    let crashed = tempfile::tempdir().unwrap();
    for name in ["palaver.db", "palaver.db-wal"] {
        std::fs::copy(dir.path().join(name), crashed.path().join(name)).unwrap();
    }
    let recovered = Store::open(None, crashed.path()).await.unwrap();
    assert_eq!(recovered.line(l.id).await.unwrap(), l);
    recovered.close().await;
    store.close().await;
}
