//! `--demo`: the lines, rooms, trunk and numbers someone needs to try
//! Palaver in five minutes. Created only when missing, never overwritten.

use palaver_store::{Destination, LineFields, NumberFields, RoomSettings, Store, TrunkFields};

/// What was created or found, for the welcome text.
pub struct Demo {
    pub lines: Vec<(String, String, String)>,
}

const LINES: [(&str, &str); 3] = [("1001", "Alice"), ("1002", "Bob"), ("1003", "Carol")];

pub async fn seed(store: &Store, password: Option<&str>) -> anyhow::Result<Demo> {
    let mut lines = Vec::new();
    for (ext, name) in LINES {
        let line = match store.line_by_extension(ext).await? {
            Some(l) => l,
            None => {
                let pw = password.map(str::to_owned).unwrap_or_else(random_password);
                store
                    .create_line(&LineFields {
                        extension: ext.into(),
                        display_name: name.into(),
                        password: pw,
                    })
                    .await?
            }
        };
        lines.push((line.extension, line.display_name, line.password));
    }

    let room800 = match store.room_by_extension("800").await? {
        Some(r) => r,
        None => {
            let mut s = RoomSettings::new("Demo room (open)");
            s.extension = Some("800".into());
            s.announce_join_leave = true;
            store.create_room(&s).await?
        }
    };
    let room801 = match store.room_by_extension("801").await? {
        Some(r) => r,
        None => {
            let mut s = RoomSettings::new("Demo room (PIN 1234, host 4321)");
            s.extension = Some("801".into());
            s.access_pin = Some("1234".into());
            s.host_pin = Some("4321".into());
            s.wait_for_host = true;
            s.announce_join_leave = true;
            store.create_room(&s).await?
        }
    };

    let trunk = match store.trunk_by_name("local").await? {
        Some(t) => t,
        None => {
            let mut t = TrunkFields::new("local");
            t.addresses = vec!["127.0.0.0/8".into()];
            store.create_trunk(&t).await?
        }
    };
    for (did, room) in [("800", room800.id), ("801", room801.id)] {
        if store.number_by_did(did).await?.is_none() {
            store
                .create_number(&NumberFields {
                    number: did.into(),
                    destination: Destination::Room(room),
                    trunk_id: Some(trunk.id),
                    description: "Demo".into(),
                })
                .await?;
        }
    }
    Ok(Demo { lines })
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
