//! Header names, the ordered header list of a message, and the typed views
//! ([`Via`], [`CSeq`], [`NameAddr`] lists, …) that the rest of the stack uses.
//!
//! Headers are kept raw (name + value text) in arrival order, so a message
//! re-serialises faithfully and a value is only parsed when somebody asks.

use std::fmt;

use crate::error::HeaderError;
use crate::method::{Method, is_token_byte};
use crate::text::{Param, find_param, parse_params, split_commas, write_params};
use crate::uri::{NameAddr, split_host_port};

/// A header name; well-known names are normalised (compact forms expanded).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    Expires,
    MinExpires,
    Route,
    RecordRoute,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Allow,
    Accept,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    UserAgent,
    Server,
    Event,
    AllowEvents,
    SubscriptionState,
    ReferTo,
    ReferredBy,
    PAssertedIdentity,
    Privacy,
    RetryAfter,
    Date,
    Subject,
    Other(String),
}

impl HeaderName {
    pub fn parse(name: &str) -> HeaderName {
        // Compact forms (RFC 3261 §7.3.3 and extensions).
        if name.len() == 1 {
            match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => return HeaderName::Via,
                b'f' => return HeaderName::From,
                b't' => return HeaderName::To,
                b'i' => return HeaderName::CallId,
                b'm' => return HeaderName::Contact,
                b'l' => return HeaderName::ContentLength,
                b'c' => return HeaderName::ContentType,
                b'k' => return HeaderName::Supported,
                b'o' => return HeaderName::Event,
                b'r' => return HeaderName::ReferTo,
                b'b' => return HeaderName::ReferredBy,
                b's' => return HeaderName::Subject,
                _ => {}
            }
        }
        const KNOWN: &[(&str, HeaderName)] = &[
            ("via", HeaderName::Via),
            ("from", HeaderName::From),
            ("to", HeaderName::To),
            ("call-id", HeaderName::CallId),
            ("cseq", HeaderName::CSeq),
            ("contact", HeaderName::Contact),
            ("max-forwards", HeaderName::MaxForwards),
            ("content-length", HeaderName::ContentLength),
            ("content-type", HeaderName::ContentType),
            ("expires", HeaderName::Expires),
            ("min-expires", HeaderName::MinExpires),
            ("route", HeaderName::Route),
            ("record-route", HeaderName::RecordRoute),
            ("authorization", HeaderName::Authorization),
            ("proxy-authorization", HeaderName::ProxyAuthorization),
            ("www-authenticate", HeaderName::WwwAuthenticate),
            ("proxy-authenticate", HeaderName::ProxyAuthenticate),
            ("allow", HeaderName::Allow),
            ("accept", HeaderName::Accept),
            ("supported", HeaderName::Supported),
            ("require", HeaderName::Require),
            ("proxy-require", HeaderName::ProxyRequire),
            ("unsupported", HeaderName::Unsupported),
            ("user-agent", HeaderName::UserAgent),
            ("server", HeaderName::Server),
            ("event", HeaderName::Event),
            ("allow-events", HeaderName::AllowEvents),
            ("subscription-state", HeaderName::SubscriptionState),
            ("refer-to", HeaderName::ReferTo),
            ("referred-by", HeaderName::ReferredBy),
            ("p-asserted-identity", HeaderName::PAssertedIdentity),
            ("privacy", HeaderName::Privacy),
            ("retry-after", HeaderName::RetryAfter),
            ("date", HeaderName::Date),
            ("subject", HeaderName::Subject),
        ];
        for (n, h) in KNOWN {
            if n.eq_ignore_ascii_case(name) {
                return h.clone();
            }
        }
        HeaderName::Other(name.to_owned())
    }

    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Event => "Event",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::Privacy => "Privacy",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Date => "Date",
            HeaderName::Subject => "Subject",
            HeaderName::Other(s) => s,
        }
    }

    /// Headers whose value is a comma-separated list (so several lines are
    /// equivalent to one line joined by commas).
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Allow
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Accept
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The headers of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts before every other header (used for a new top `Via`).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Replaces all lines of `name` by one line.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.0.iter().position(|h| h.name == name) {
            self.0[pos].value = value;
            let mut i = pos + 1;
            while i < self.0.len() {
                if self.0[i].name == name {
                    self.0.remove(i);
                } else {
                    i += 1;
                }
            }
        } else {
            self.push(name, value);
        }
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// All comma-separated elements of every line of a list header.
    pub fn list<'a>(&'a self, name: &HeaderName) -> Result<Vec<&'a str>, HeaderError> {
        let mut out = Vec::new();
        for v in self
            .0
            .iter()
            .filter(|h| &h.name == name)
            .map(|h| h.value.as_str())
        {
            out.extend(split_commas(v)?);
        }
        Ok(out)
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| &h.name == name)
    }
}

/// `SIP/2.0/UDP host:port;branch=…;rport;received=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, `WS`, … as written, upper-cased.
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        let s = s.trim();
        let mut parts = s.splitn(2, [' ', '\t']);
        let proto = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("").trim_start();
        let mut p = proto.split('/');
        let (name, version, transport) = (p.next(), p.next(), p.next());
        match (name, version, transport, p.next()) {
            (Some(n), Some(v), Some(t), None)
                if n.trim().eq_ignore_ascii_case("SIP") && v.trim() == "2.0" && !t.is_empty() =>
            {
                let transport = t.trim().to_ascii_uppercase();
                let (sent_by, params) = match rest.find(';') {
                    Some(sc) => (&rest[..sc], parse_params(&rest[sc..])?),
                    None => (rest, Vec::new()),
                };
                let (host, port) = split_host_port(sent_by.trim())
                    .map_err(|_| HeaderError::Invalid("bad Via sent-by"))?;
                Ok(Via {
                    transport,
                    host,
                    port,
                    params,
                })
            }
            _ => Err(HeaderError::Invalid("bad Via protocol")),
        }
    }

    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").and_then(|p| p.value.as_deref())
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        if let Some(p) = self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            p.value = value;
        } else {
            self.params.push(Param::new(name, value));
        }
    }

    /// `host:port` as written (the RFC's sent-by), for transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        let mut ps = String::new();
        write_params(&self.params, &mut ps);
        f.write_str(&ps)
    }
}

/// `CSeq: 314 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, HeaderError> {
        let mut it = s.split_ascii_whitespace();
        let n = it.next().ok_or(HeaderError::Invalid("empty CSeq"))?;
        let m = it
            .next()
            .ok_or(HeaderError::Invalid("CSeq without method"))?;
        if it.next().is_some() {
            return Err(HeaderError::Invalid("junk after CSeq method"));
        }
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HeaderError::Invalid("CSeq number is not a number"));
        }
        let seq: u64 = n.parse().map_err(|_| HeaderError::BadNumber)?;
        // RFC 3261 §8.1.1.5: the sequence number must be less than 2**31.
        if seq >= 1 << 31 {
            return Err(HeaderError::Invalid("CSeq number too large"));
        }
        let method = Method::parse(m).ok_or(HeaderError::Invalid("bad CSeq method"))?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// One element of a `Contact` header: a name-address, or `*` (unregister all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Star,
    Addr(NameAddr),
}

impl Contact {
    pub fn expires(&self) -> Option<u32> {
        match self {
            Contact::Star => None,
            Contact::Addr(na) => na
                .param("expires")
                .and_then(|p| p.value.as_deref())
                .and_then(parse_delta_seconds),
        }
    }
}

/// Parses a delta-seconds value, saturating at u32::MAX like RFC 3261 §20.19 says.
pub fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map(|v| v.min(u32::MAX as u64) as u32)
            .unwrap_or(u32::MAX),
    )
}

/// Checks that a header name is a valid token.
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_parses() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "10.0.0.1");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert!(v.param("rport").is_some());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport"
        );
    }

    #[test]
    fn cseq_parses() {
        let c = CSeq::parse("42 INVITE").unwrap();
        assert_eq!(c.seq, 42);
        assert_eq!(c.method, Method::Invite);
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn compact_names() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("call-id"), HeaderName::CallId);
        assert_eq!(
            HeaderName::parse("X-Foo"),
            HeaderName::Other("X-Foo".into())
        );
    }

    #[test]
    fn set_replaces_all() {
        let mut h = Headers::new();
        h.push(HeaderName::Contact, "a");
        h.push(HeaderName::Via, "v");
        h.push(HeaderName::Contact, "b");
        h.set(HeaderName::Contact, "c");
        assert_eq!(
            h.get_all(&HeaderName::Contact).collect::<Vec<_>>(),
            vec!["c"]
        );
        assert_eq!(h.0.len(), 2);
    }
}
