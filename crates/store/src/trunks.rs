//! SIP trunks (SPEC P2): carrier gateways, recognised by the source address of
//! their calls and optionally registered to. [`Trunk`] is a stored row with
//! parsed networks, [`TrunkFields`] what an admin sets (addresses as text).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, is_unique_violation};
use crate::fields::{self, Transport};
use crate::ids::TrunkId;
use crate::store::{Store, now_ms, on_pool};

/// A trunk as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    /// Row id.
    pub id: TrunkId,
    /// Unique name, e.g. "local" or "carrier-a".
    pub name: String,
    /// Networks the trunk's calls come from; a bare IP is a /32 or /128.
    pub addresses: Vec<IpNet>,
    /// Where to send calls and registrations (`host[:port]`), if anywhere.
    pub host: Option<String>,
    /// Transport towards `host`.
    pub transport: Transport,
    /// For registration or outbound digest auth.
    pub username: Option<String>,
    /// For registration or outbound digest auth.
    pub password: Option<String>,
    /// Whether Palaver registers to `host`.
    pub register: bool,
    /// Disabled trunks neither accept nor place calls.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Trunk {
    /// Whether a call from `source` comes from this trunk's networks.
    pub fn accepts_from(&self, source: IpAddr) -> bool {
        // An IPv4 peer may reach a dual-stack socket as ::ffff:a.b.c.d.
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        self.addresses.iter().any(|net| net.contains(&source))
    }
}

/// What an admin sets on a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkFields {
    /// 1–64 characters, unique.
    pub name: String,
    /// IPs or CIDR networks (`127.0.0.0/8`), as typed.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `host`, `host:port` or `[v6]:port`; required to register.
    pub host: Option<String>,
    /// Defaults to UDP.
    #[serde(default)]
    pub transport: Transport,
    /// Required with a password or to register.
    pub username: Option<String>,
    /// Required to register.
    pub password: Option<String>,
    /// Register to `host` with `username`/`password`.
    #[serde(default)]
    pub register: bool,
    /// Defaults to true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl TrunkFields {
    /// A trunk named `name` with no addresses, no host, UDP, enabled.
    pub fn new(name: impl Into<String>) -> TrunkFields {
        TrunkFields {
            name: name.into(),
            addresses: Vec::new(),
            host: None,
            transport: Transport::Udp,
            username: None,
            password: None,
            register: false,
            enabled: true,
        }
    }

    /// Checks every field, parses the addresses, and returns the values to
    /// store, or the first problem as [`StoreError::Invalid`].
    fn validated(&self) -> Result<ValidTrunk> {
        let name = fields::label("name", &self.name, 1, 64)?;
        let addresses = self
            .addresses
            .iter()
            .map(|a| fields::network("addresses", a))
            .collect::<Result<Vec<_>>>()?;
        let host = non_empty(&self.host)
            .map(|h| fields::host_port("host", h))
            .transpose()?;
        let username = non_empty(&self.username)
            .map(|u| fields::label("username", u, 1, 128))
            .transpose()?;
        let password = non_empty(&self.password)
            .map(|p| fields::secret("password", p))
            .transpose()?;
        if password.is_some() && username.is_none() {
            return Err(StoreError::invalid(
                "username",
                "is required when a password is set",
            ));
        }
        if self.register {
            if host.is_none() {
                return Err(StoreError::invalid(
                    "host",
                    "is required to register the trunk",
                ));
            }
            if username.is_none() {
                return Err(StoreError::invalid(
                    "username",
                    "is required to register the trunk",
                ));
            }
            if password.is_none() {
                return Err(StoreError::invalid(
                    "password",
                    "is required to register the trunk",
                ));
            }
        }
        Ok(ValidTrunk {
            name,
            addresses,
            host,
            transport: self.transport,
            username,
            password,
            register: self.register,
            enabled: self.enabled,
        })
    }

    /// Checks every field; the same rules [`Store::create_trunk`] applies.
    pub fn validate(&self) -> Result<()> {
        self.validated().map(|_| ())
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

struct ValidTrunk {
    name: String,
    addresses: Vec<IpNet>,
    host: Option<String>,
    transport: Transport,
    username: Option<String>,
    password: Option<String>,
    register: bool,
    enabled: bool,
}

impl ValidTrunk {
    fn addresses_text(&self) -> String {
        join_networks(&self.addresses)
    }

    fn into_trunk(self, id: TrunkId, created_at: i64) -> Trunk {
        Trunk {
            id,
            name: self.name,
            addresses: self.addresses,
            host: self.host,
            transport: self.transport,
            username: self.username,
            password: self.password,
            register: self.register,
            enabled: self.enabled,
            created_at,
        }
    }
}

/// Stored form of a network list: comma-separated CIDRs.
pub(crate) fn join_networks(networks: &[IpNet]) -> String {
    networks
        .iter()
        .map(IpNet::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the stored form back; anything unparsable was not written by us.
pub(crate) fn split_networks(text: &str) -> Result<Vec<IpNet>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| StoreError::corrupt("trunk address", s))
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct TrunkRow {
    id: i64,
    name: String,
    addresses: String,
    host: Option<String>,
    transport: String,
    username: Option<String>,
    password: Option<String>,
    register: bool,
    enabled: bool,
    created_at: i64,
}

impl TryFrom<TrunkRow> for Trunk {
    type Error = StoreError;
    fn try_from(r: TrunkRow) -> Result<Trunk> {
        Ok(Trunk {
            id: TrunkId(r.id),
            name: r.name,
            addresses: split_networks(&r.addresses)?,
            host: r.host,
            transport: r
                .transport
                .parse()
                .map_err(|_| StoreError::corrupt("transport", &r.transport))?,
            username: r.username,
            password: r.password,
            register: r.register,
            enabled: r.enabled,
            created_at: r.created_at,
        })
    }
}

const SELECT_TRUNK: &str = "SELECT id, name, addresses, host, transport, username, password, \
                            register, enabled, created_at FROM trunks";

fn name_conflict(e: StoreError, name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::conflict("name", format!("a trunk named {name:?} already exists"))
    } else {
        e
    }
}

impl Store {
    /// Creates a trunk. `Conflict { what: "name" }` if the name is taken.
    pub async fn create_trunk(&self, fields: &TrunkFields) -> Result<Trunk> {
        let t = fields.validated()?;
        let created_at = now_ms();
        let result: Result<i64> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "INSERT INTO trunks (name, addresses, host, transport, username, password, \
                     register, enabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(&t.name)
                .bind(t.addresses_text())
                .bind(&t.host)
                .bind(t.transport.as_str())
                .bind(&t.username)
                .bind(&t.password)
                .bind(t.register)
                .bind(t.enabled)
                .bind(created_at)
                .fetch_one(pool)
                .await?
            }))
        }
        .await;
        let id = result.map_err(|e| name_conflict(e, &t.name))?;
        Ok(t.into_trunk(TrunkId(id), created_at))
    }

    /// Replaces a trunk's fields. `NotFound` if it does not exist.
    pub async fn update_trunk(&self, id: TrunkId, fields: &TrunkFields) -> Result<Trunk> {
        let t = fields.validated()?;
        let result: Result<Option<i64>> = async {
            Ok(on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "UPDATE trunks SET name = $2, addresses = $3, host = $4, transport = $5, \
                     username = $6, password = $7, register = $8, enabled = $9 \
                     WHERE id = $1 RETURNING created_at",
                )
                .bind(id.0)
                .bind(&t.name)
                .bind(t.addresses_text())
                .bind(&t.host)
                .bind(t.transport.as_str())
                .bind(&t.username)
                .bind(&t.password)
                .bind(t.register)
                .bind(t.enabled)
                .fetch_optional(pool)
                .await?
            }))
        }
        .await;
        match result.map_err(|e| name_conflict(e, &t.name))? {
            Some(created_at) => Ok(t.into_trunk(id, created_at)),
            None => Err(StoreError::NotFound { what: "trunk" }),
        }
    }

    /// Deletes a trunk; numbers tied to it keep working, untied.
    pub async fn delete_trunk(&self, id: TrunkId) -> Result<()> {
        let deleted = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM trunks WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "trunk" });
        }
        Ok(())
    }

    /// The trunk with this id, or `NotFound`.
    pub async fn trunk(&self, id: TrunkId) -> Result<Trunk> {
        let sql = format!("{SELECT_TRUNK} WHERE id = $1");
        let row: Option<TrunkRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await?
        });
        row.ok_or(StoreError::NotFound { what: "trunk" })?
            .try_into()
    }

    /// The trunk with this name, if any.
    pub async fn trunk_by_name(&self, name: &str) -> Result<Option<Trunk>> {
        let sql = format!("{SELECT_TRUNK} WHERE name = $1");
        let row: Option<TrunkRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?
        });
        row.map(Trunk::try_from).transpose()
    }

    /// Every trunk, by name. The SIP layer loads these to match sources.
    pub async fn trunks(&self) -> Result<Vec<Trunk>> {
        let sql = format!("{SELECT_TRUNK} ORDER BY name");
        let rows: Vec<TrunkRow> =
            on_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        rows.into_iter().map(Trunk::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn invalid(fields: &TrunkFields) -> (&'static str, String) {
        match fields.validate() {
            Err(StoreError::Invalid { field, message }) => (field, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn register_needs_host_and_credentials() {
        let mut f = TrunkFields::new("carrier");
        f.register = true;
        assert_eq!(
            invalid(&f),
            ("host", "is required to register the trunk".into())
        );
        f.host = Some("sip.example.org:5060".into());
        assert_eq!(
            invalid(&f),
            ("username", "is required to register the trunk".into())
        );
        f.username = Some("acct".into());
        assert_eq!(
            invalid(&f),
            ("password", "is required to register the trunk".into())
        );
        f.password = Some("pw".into());
        assert!(f.validate().is_ok());
    }

    #[test]
    fn password_needs_username() {
        let mut f = TrunkFields::new("carrier");
        f.password = Some("pw".into());
        assert_eq!(
            invalid(&f),
            ("username", "is required when a password is set".into())
        );
    }

    #[test]
    fn bad_cidr_names_the_field() {
        let mut f = TrunkFields::new("carrier");
        f.addresses = vec!["127.0.0.0/8".into(), "300.1.1.1".into()];
        assert_eq!(
            invalid(&f),
            (
                "addresses",
                "\"300.1.1.1\" is not an IP address or CIDR network like 127.0.0.0/8".into()
            )
        );
    }

    #[test]
    fn accepts_from_matches_networks_and_mapped_v4() {
        let trunk = TrunkFields {
            addresses: vec!["127.0.0.0/8".into(), "2001:db8::/32".into()],
            ..TrunkFields::new("t")
        }
        .validated()
        .unwrap()
        .into_trunk(TrunkId(1), 0);
        assert!(trunk.accepts_from("127.1.2.3".parse().unwrap()));
        assert!(trunk.accepts_from("::ffff:127.0.0.1".parse().unwrap()));
        assert!(trunk.accepts_from("2001:db8::5".parse().unwrap()));
        assert!(!trunk.accepts_from("192.0.2.1".parse().unwrap()));
        assert!(!trunk.accepts_from("::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn stored_networks_round_trip(nets in proptest::collection::vec(
            (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
                IpNet::new(IpAddr::V4(a.into()), p).unwrap().trunc()
            }), 0..6)) {
            prop_assert_eq!(split_networks(&join_networks(&nets)).unwrap(), nets);
        }

        #[test]
        fn split_networks_never_panics(s in "\\PC*") {
            let _ = split_networks(&s);
        }
    }
}
