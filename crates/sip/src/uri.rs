//! SIP URIs (`sip:` and `sips:`) and name-addresses (`"Name" <sip:…>;tag=…`).
//!
//! Other schemes (`tel:`, `mailto:`) are recognised only far enough to reject
//! them with [`HeaderError::UnsupportedScheme`], which the transaction layer
//! turns into `416 Unsupported URI Scheme`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::error::HeaderError;
use crate::text::{
    Param, find_param, parse_params, quote, unquote_prefix, write_params, write_uri_params,
};

/// `sip` or `sips`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
}

/// A SIP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host name, IPv4 address, or IPv6 reference in brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    /// The `?…` part, raw.
    pub headers: Option<String>,
}

impl Uri {
    /// `sip:user@host:port`.
    pub fn new(user: Option<&str>, host: impl Into<String>, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.into(),
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    /// A URI pointing at a socket address.
    pub fn from_addr(user: Option<&str>, addr: SocketAddr) -> Uri {
        let host = match addr.ip() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Uri::new(user, host, Some(addr.port()))
    }

    pub fn parse(s: &str) -> Result<Uri, HeaderError> {
        let s = s.trim();
        let colon = s.find(':').ok_or(HeaderError::BadUri("missing scheme"))?;
        let scheme_str = &s[..colon];
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            if scheme_str.is_empty()
                || !scheme_str
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            {
                return Err(HeaderError::BadUri("bad scheme"));
            }
            return Err(HeaderError::UnsupportedScheme(scheme_str.to_owned()));
        };
        let rest = &s[colon + 1..];
        if rest
            .bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
        {
            return Err(HeaderError::BadUri("illegal character"));
        }
        let (rest, headers) = match rest.find('?') {
            Some(q) => (&rest[..q], Some(rest[q + 1..].to_owned())),
            None => (rest, None),
        };
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                if ui.is_empty() {
                    return Err(HeaderError::BadUri("empty user part"));
                }
                match ui.find(':') {
                    Some(c) => (Some(ui[..c].to_owned()), Some(ui[c + 1..].to_owned())),
                    None => (Some(ui.to_owned()), None),
                }
            }
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(sc) => (&hostpart[..sc], parse_params(&hostpart[sc..])?),
            None => (hostpart, Vec::new()),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `transport=` parameter, lowercased.
    pub fn transport_param(&self) -> Option<String> {
        self.param("transport")
            .and_then(|p| p.value.as_ref())
            .map(|v| v.to_ascii_lowercase())
    }

    /// The host as an IP address when it is a literal.
    pub fn host_ip(&self) -> Option<IpAddr> {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse().ok()
    }

    /// Socket address when the host is an IP literal (port defaults to 5060/5061).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip = self.host_ip()?;
        let default = if self.scheme == Scheme::Sips {
            5061
        } else {
            5060
        };
        Some(SocketAddr::new(ip, self.port.unwrap_or(default)))
    }

    /// Compares the parts that identify an address of record: scheme, user, host, port.
    pub fn same_aor(&self, other: &Uri) -> bool {
        self.scheme == other.scheme
            && self.user == other.user
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

pub(crate) fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), HeaderError> {
    if hostport.is_empty() {
        return Err(HeaderError::BadUri("empty host"));
    }
    if let Some(stripped) = hostport.strip_prefix('[') {
        let end = stripped
            .find(']')
            .ok_or(HeaderError::BadUri("unterminated IPv6 reference"))?;
        let v6 = &stripped[..end];
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(HeaderError::BadUri("bad IPv6 address"));
        }
        let after = &stripped[end + 1..];
        let port = if after.is_empty() {
            None
        } else if let Some(p) = after.strip_prefix(':') {
            Some(
                p.parse::<u16>()
                    .map_err(|_| HeaderError::BadUri("bad port"))?,
            )
        } else {
            return Err(HeaderError::BadUri("junk after IPv6 reference"));
        };
        return Ok((format!("[{v6}]"), port));
    }
    let (host, port) = match hostport.rfind(':') {
        Some(c) => (
            &hostport[..c],
            Some(
                hostport[c + 1..]
                    .parse::<u16>()
                    .map_err(|_| HeaderError::BadUri("bad port"))?,
            ),
        ),
        None => (hostport, None),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(HeaderError::BadUri("bad host"));
    }
    Ok((host.to_owned(), port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        let mut ps = String::new();
        write_uri_params(&self.params, &mut ps);
        f.write_str(&ps)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// `"Display" <uri>;params` — the value of From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Vec<Param>,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        let s = s.trim();
        let (display, rest) = if s.starts_with('"') {
            let (d, used) = unquote_prefix(s)?;
            (Some(d), s[used..].trim_start())
        } else if let Some(lt) = s.find('<') {
            let d = s[..lt].trim();
            (
                if d.is_empty() {
                    None
                } else {
                    Some(d.to_owned())
                },
                &s[lt..],
            )
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or(HeaderError::UnterminatedAngle)?;
            let uri = Uri::parse(&inner[..gt])?;
            let params = parse_params(&inner[gt + 1..])?;
            Ok(NameAddr {
                display,
                uri,
                params,
            })
        } else {
            if display.is_some() {
                return Err(HeaderError::Invalid("display name without <URI>"));
            }
            // addr-spec form: parameters after the URI belong to the header.
            let (u, p) = match rest.find(';') {
                Some(sc) => (&rest[..sc], parse_params(&rest[sc..])?),
                None => (rest, Vec::new()),
            };
            if u.contains('?') {
                return Err(HeaderError::Invalid("URI headers need <> brackets"));
            }
            Ok(NameAddr {
                display: None,
                uri: Uri::parse(u)?,
                params: p,
            })
        }
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
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
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if let Some(d) = &self.display {
            quote(d, &mut s);
            s.push(' ');
        }
        s.push('<');
        f.write_str(&s)?;
        write!(f, "{}>", self.uri)?;
        let mut ps = String::new();
        write_params(&self.params, &mut ps);
        f.write_str(&ps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_uri() {
        let u = Uri::parse("sip:alice:pw@example.com:5070;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport_param().as_deref(), Some("tcp"));
        assert!(u.param("lr").is_some());
        assert_eq!(u.headers.as_deref(), Some("subject=x"));
        assert_eq!(
            u.to_string(),
            "sip:alice:pw@example.com:5070;transport=tcp;lr?subject=x"
        );
    }

    #[test]
    fn ipv6_host() {
        let u = Uri::parse("sip:1001@[::1]:5060").unwrap();
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.socket_addr(), Some("[::1]:5060".parse().unwrap()));
    }

    #[test]
    fn tel_is_unsupported() {
        assert_eq!(
            Uri::parse("tel:+15551234"),
            Err(HeaderError::UnsupportedScheme("tel".into()))
        );
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""Bob \"B\"" <sip:bob@host>;tag=12"#).unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob \"B\""));
        assert_eq!(n.tag(), Some("12"));
        let n = NameAddr::parse("Bob <sip:bob@host;lr>;tag=1").unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob"));
        assert!(n.uri.param("lr").is_some());
        let n = NameAddr::parse("sip:bob@host;tag=9").unwrap();
        assert_eq!(n.tag(), Some("9"));
        assert!(n.uri.params.is_empty());
        assert_eq!(
            NameAddr::parse(r#""Bob <sip:bob@host>"#),
            Err(HeaderError::UnterminatedQuote)
        );
    }
}
