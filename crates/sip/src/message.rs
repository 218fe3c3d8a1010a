//! SIP requests and responses: the parsed form, accessors for the headers
//! every layer needs, builders for responses, and serialisation.
//!
//! A message that came out of [`crate::parse`] has already been validated:
//! its `Via`, `From`, `To`, `Call-ID` and `CSeq` exist and parse, so the
//! accessors below return `Some` for it. Messages we build ourselves go
//! through the same accessors.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::error::ReplyContext;
use crate::header::{CSeq, Contact, HeaderName, Headers, Via, parse_delta_seconds};
use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::{NameAddr, Uri};

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Accessors shared by requests and responses.
// `from_*` names the SIP From header here, not a conversion.
#[allow(clippy::wrong_self_convention)]
pub trait SipMessage {
    fn headers(&self) -> &Headers;
    fn headers_mut(&mut self) -> &mut Headers;
    fn body(&self) -> &Bytes;

    fn call_id(&self) -> Option<&str> {
        self.headers().get(&HeaderName::CallId).map(str::trim)
    }
    fn cseq(&self) -> Option<CSeq> {
        self.headers()
            .get(&HeaderName::CSeq)
            .and_then(|v| CSeq::parse(v).ok())
    }
    fn from_header(&self) -> Option<NameAddr> {
        self.headers()
            .get(&HeaderName::From)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    fn to_header(&self) -> Option<NameAddr> {
        self.headers()
            .get(&HeaderName::To)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    fn from_tag(&self) -> Option<String> {
        self.from_header().and_then(|f| f.tag().map(str::to_owned))
    }
    fn to_tag(&self) -> Option<String> {
        self.to_header().and_then(|f| f.tag().map(str::to_owned))
    }
    fn vias(&self) -> Vec<Via> {
        self.headers()
            .list(&HeaderName::Via)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }
    fn top_via(&self) -> Option<Via> {
        let first = self.headers().get(&HeaderName::Via)?;
        let list = crate::text::split_commas(first).ok()?;
        Via::parse(list.first()?).ok()
    }
    fn contacts(&self) -> Vec<Contact> {
        let mut out = Vec::new();
        for v in self
            .headers()
            .list(&HeaderName::Contact)
            .unwrap_or_default()
        {
            if v.trim() == "*" {
                out.push(Contact::Star);
            } else if let Ok(na) = NameAddr::parse(v) {
                out.push(Contact::Addr(na));
            }
        }
        out
    }
    fn expires(&self) -> Option<u32> {
        self.headers()
            .get(&HeaderName::Expires)
            .and_then(parse_delta_seconds)
    }
    fn content_type(&self) -> Option<String> {
        self.headers().get(&HeaderName::ContentType).map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }
    fn record_routes(&self) -> Vec<NameAddr> {
        self.headers()
            .list(&HeaderName::RecordRoute)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }
    fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers().get(name)
    }
}

impl SipMessage for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
    fn body(&self) -> &Bytes {
        &self.body
    }
}

impl SipMessage for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
    fn body(&self) -> &Bytes {
        &self.body
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// `Max-Forwards`, defaulting to 70 when absent (lenient with old clients).
    pub fn max_forwards(&self) -> Option<u32> {
        match self.headers.get(&HeaderName::MaxForwards) {
            None => Some(70),
            Some(v) => v.trim().parse().ok(),
        }
    }

    pub fn routes(&self) -> Vec<NameAddr> {
        self.headers
            .list(&HeaderName::Route)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        let _ = write!(s, "{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers(&self.headers, self.body.len(), &mut s);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.body = body.into();
        self.headers.set(HeaderName::ContentType, content_type);
    }
}

impl Response {
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: status.reason().to_owned(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// A response to `req` carrying its `Via`s, `From`, `To`, `Call-ID` and
    /// `CSeq` (RFC 3261 §8.2.6.2). The caller adds a To tag when needed.
    pub fn for_request(req: &Request, status: StatusCode) -> Response {
        let mut r = Response::new(status);
        for h in &req.headers.0 {
            match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq => r.headers.0.push(h.clone()),
                _ => {}
            }
        }
        // Record-Route is copied into 2xx/18x of dialog-creating requests by the dialog layer.
        r
    }

    /// A response built from what could be salvaged of a malformed request.
    pub fn from_reply_context(ctx: &ReplyContext, status: StatusCode, reason: &str) -> Response {
        let mut r = Response::new(status);
        r.reason = sanitize_reason(reason);
        for v in &ctx.via {
            r.headers.push(HeaderName::Via, v.clone());
        }
        for (name, value) in [
            (HeaderName::From, &ctx.from),
            (HeaderName::To, &ctx.to),
            (HeaderName::CallId, &ctx.call_id),
            (HeaderName::CSeq, &ctx.cseq),
        ] {
            // A header the request lacked stays absent rather than empty.
            if !value.is_empty() {
                r.headers.push(name, value.clone());
            }
        }
        r
    }

    pub fn with_reason(mut self, reason: &str) -> Response {
        self.reason = sanitize_reason(reason);
        self
    }

    /// Adds a To tag unless one is present.
    pub fn set_to_tag(&mut self, tag: &str) {
        if let Some(to) = self.headers.get(&HeaderName::To)
            && let Ok(mut na) = NameAddr::parse(to)
            && na.tag().is_none()
        {
            na.set_param("tag", Some(tag.to_owned()));
            self.headers.set(HeaderName::To, na.to_string());
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        let _ = write!(s, "SIP/2.0 {} {}\r\n", self.status.0, self.reason);
        write_headers(&self.headers, self.body.len(), &mut s);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.body = body.into();
        self.headers.set(HeaderName::ContentType, content_type);
    }
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Message::Request(r) => r.call_id(),
            Message::Response(r) => r.call_id(),
        }
    }
}

/// Reason phrases must be a single line of printable text.
fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn write_headers(headers: &Headers, body_len: usize, s: &mut String) {
    for h in &headers.0 {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        s.push_str(h.name.as_str());
        s.push_str(": ");
        s.push_str(&h.value);
        s.push_str("\r\n");
    }
    let _ = write!(s, "Content-Length: {body_len}\r\n\r\n");
}
