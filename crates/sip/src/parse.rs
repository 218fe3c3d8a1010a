//! Parsing SIP messages from datagrams and from byte streams.
//!
//! [`parse_message`] takes one datagram (or one framed stream message) and
//! returns a validated [`Message`] or a [`ParseError`] whose `reason` says
//! what is wrong. The error carries a [`ReplyContext`] whenever the message
//! looked like a request with a `Via`, so that the caller can answer `400`
//! (or `505`, `416`) instead of leaving the client retransmitting.
//! [`StreamFramer`] cuts a TCP/TLS byte stream into messages by
//! `Content-Length`.
//!
//! The parser is strict where the RFC is (CSeq method, Content-Length, quoted
//! strings, NUL bytes) and lenient where real phones are sloppy (bare LF line
//! ends, folded header lines, compact header names, missing Max-Forwards).

use bytes::Bytes;

use crate::error::HeaderError;
use crate::error::{ParseError, ReplyContext};
use crate::header::{CSeq, Header, HeaderName, Headers, Via, valid_header_name};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::text::split_commas;
use crate::uri::{NameAddr, Uri};

/// Largest header section we accept (guards memory on streams).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Largest body we accept.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Parses one complete message. `datagram` is true for UDP, where a missing
/// `Content-Length` means "the rest of the datagram".
pub fn parse_message(buf: &[u8], datagram: bool) -> Result<Message, ParseError> {
    let buf = skip_leading_crlf(buf);
    if buf.is_empty() {
        return Err(ParseError::new("empty message"));
    }
    let (head, body_start) = match find_header_end(buf) {
        Some(pos) => pos,
        None => {
            if datagram {
                (buf, buf.len())
            } else {
                return Err(ParseError::new("incomplete header section"));
            }
        }
    };
    if head.len() > MAX_HEADER_BYTES {
        return Err(ParseError::new("header section too large"));
    }
    let raw_body = &buf[body_start..];

    let RawHead {
        start_line,
        headers,
        defect,
    } = split_head(head);

    if let Some(rest) = start_line.strip_prefix("SIP/") {
        let _ = rest;
        let resp = parse_response(&start_line, headers, defect, raw_body, datagram)?;
        return Ok(Message::Response(resp));
    }
    parse_request(&start_line, headers, defect, raw_body, datagram).map(Message::Request)
}

fn skip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// Finds the blank line ending the header section: returns the header bytes
/// and the offset where the body starts.
fn find_header_end(buf: &[u8]) -> Option<(&[u8], usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((&buf[..i], i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((&buf[..i], i + 3));
            }
        }
        i += 1;
    }
    None
}

struct RawHead {
    start_line: String,
    headers: Headers,
    /// The first problem found in the header section, if any.
    defect: Option<String>,
}

fn split_head(head: &[u8]) -> RawHead {
    let mut defect: Option<String> = None;
    let note = |d: &mut Option<String>, msg: String| {
        if d.is_none() {
            *d = Some(msg);
        }
    };
    if head.contains(&0) {
        note(&mut defect, "NUL byte in message header".into());
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => {
            note(&mut defect, "message header is not valid UTF-8".into());
            String::from_utf8_lossy(head)
        }
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("").to_owned();
    let mut headers = Headers::new();
    for (n, line) in lines.enumerate() {
        if line.starts_with(' ') || line.starts_with('\t') {
            // Folded continuation (RFC 3261 §7.3.1): joins the previous value.
            match headers.0.last_mut() {
                Some(last) => {
                    let cont = line.trim();
                    if !cont.is_empty() {
                        // The value may start on the continuation line.
                        if !last.value.is_empty() {
                            last.value.push(' ');
                        }
                        last.value.push_str(cont);
                    }
                }
                None => note(&mut defect, "continuation line before any header".into()),
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        match line.find(':') {
            Some(colon) => {
                let name = line[..colon].trim();
                if !valid_header_name(name) {
                    note(
                        &mut defect,
                        format!("malformed header name on line {}", n + 2),
                    );
                    continue;
                }
                headers.0.push(Header {
                    name: HeaderName::parse(name),
                    value: line[colon + 1..].trim().to_owned(),
                });
            }
            None => note(&mut defect, format!("header line {} has no colon", n + 2)),
        }
    }
    RawHead {
        start_line,
        headers,
        defect,
    }
}

fn reply_context(headers: &Headers, is_ack: bool) -> Option<Box<ReplyContext>> {
    let via: Vec<String> = headers
        .get_all(&HeaderName::Via)
        .map(str::to_owned)
        .collect();
    if via.is_empty() {
        return None;
    }
    Some(Box::new(ReplyContext {
        is_ack,
        via,
        from: headers
            .get(&HeaderName::From)
            .unwrap_or_default()
            .to_owned(),
        to: headers.get(&HeaderName::To).unwrap_or_default().to_owned(),
        call_id: headers
            .get(&HeaderName::CallId)
            .unwrap_or_default()
            .to_owned(),
        cseq: headers
            .get(&HeaderName::CSeq)
            .unwrap_or_default()
            .to_owned(),
    }))
}

fn parse_request(
    start_line: &str,
    headers: Headers,
    defect: Option<String>,
    raw_body: &[u8],
    datagram: bool,
) -> Result<Request, ParseError> {
    let mut parts = start_line.split(' ');
    let (m, u, v) = (parts.next(), parts.next(), parts.next());
    let is_ack = m == Some("ACK");
    let fail = |status: StatusCode, reason: String| ParseError {
        reason,
        status,
        reply: reply_context(&headers, is_ack),
    };
    let (m, u, v) = match (m, u, v, parts.next()) {
        (Some(m), Some(u), Some(v), None) if !m.is_empty() && !u.is_empty() => (m, u, v),
        _ => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "malformed request line".into(),
            ));
        }
    };
    let method =
        Method::parse(m).ok_or_else(|| fail(StatusCode::BAD_REQUEST, "malformed method".into()))?;
    if let Some(d) = defect {
        return Err(fail(StatusCode::BAD_REQUEST, d));
    }
    if !v.eq_ignore_ascii_case("SIP/2.0") {
        if v.len() > 4 && v.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
            return Err(fail(
                StatusCode::VERSION_NOT_SUPPORTED,
                format!("Version Not Supported: {}", clip(v)),
            ));
        }
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "malformed SIP version".into(),
        ));
    }
    let uri = match Uri::parse(u) {
        Ok(uri) => uri,
        Err(HeaderError::UnsupportedScheme(s)) => {
            return Err(fail(
                StatusCode::UNSUPPORTED_URI_SCHEME,
                format!("Unsupported URI Scheme: {}", clip(&s)),
            ));
        }
        Err(e) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("malformed Request-URI: {e}"),
            ));
        }
    };
    if let Err(reason) = validate_common(&headers) {
        return Err(fail(StatusCode::BAD_REQUEST, reason));
    }
    // CSeq method must be the request's (RFC 3261 §8.1.1.5).
    if let Some(cseq) = headers
        .get(&HeaderName::CSeq)
        .and_then(|c| CSeq::parse(c).ok())
        && cseq.method != method
    {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "CSeq method does not match request method".into(),
        ));
    }
    if let Some(mf) = headers.get(&HeaderName::MaxForwards) {
        let mf = mf.trim();
        if mf.is_empty() || mf.len() > 3 || !mf.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "malformed Max-Forwards".into(),
            ));
        }
    }
    for c in headers.get_all(&HeaderName::Contact) {
        let items = split_commas(c)
            .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("malformed Contact: {e}")))?;
        for item in items {
            if item != "*"
                && let Err(e) = NameAddr::parse(item)
            {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!("malformed Contact: {e}"),
                ));
            }
        }
    }
    if let Some(e) = headers.get(&HeaderName::Expires)
        && crate::header::parse_delta_seconds(e).is_none()
    {
        return Err(fail(StatusCode::BAD_REQUEST, "malformed Expires".into()));
    }
    let body = extract_body(&headers, raw_body, datagram)
        .map_err(|reason| fail(StatusCode::BAD_REQUEST, reason))?;
    Ok(Request {
        method,
        uri,
        headers,
        body,
    })
}

fn parse_response(
    start_line: &str,
    headers: Headers,
    defect: Option<String>,
    raw_body: &[u8],
    datagram: bool,
) -> Result<Response, ParseError> {
    if let Some(d) = defect {
        return Err(ParseError::new(d));
    }
    let mut parts = start_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let reason = parts.next().unwrap_or("").to_owned();
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::new("unsupported SIP version in response"));
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new("malformed status code"));
    }
    let status = StatusCode(
        code.parse()
            .map_err(|_| ParseError::new("malformed status code"))?,
    );
    if !(100..700).contains(&status.0) {
        return Err(ParseError::new("status code out of range"));
    }
    validate_common(&headers).map_err(ParseError::new)?;
    let body = extract_body(&headers, raw_body, datagram).map_err(ParseError::new)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// Checks the headers every message must have, and that they parse.
fn validate_common(headers: &Headers) -> Result<(), String> {
    let mut via_count = 0;
    for v in headers.get_all(&HeaderName::Via) {
        let items = split_commas(v).map_err(|e| format!("malformed Via: {e}"))?;
        for item in items {
            Via::parse(item).map_err(|e| format!("malformed Via: {e}"))?;
            via_count += 1;
        }
    }
    if via_count == 0 {
        return Err("missing Via header".into());
    }
    for (name, label) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
        let mut values = headers.get_all(&name);
        let v = values
            .next()
            .ok_or_else(|| format!("missing {label} header"))?;
        if values.next().is_some() {
            return Err(format!("more than one {label} header"));
        }
        NameAddr::parse(v).map_err(|e| format!("malformed {label} header: {e}"))?;
    }
    let mut call_ids = headers.get_all(&HeaderName::CallId);
    let call_id = call_ids.next().ok_or("missing Call-ID header")?;
    if call_ids.next().is_some() {
        return Err("more than one Call-ID header".into());
    }
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace() || b < 0x21) {
        return Err("malformed Call-ID".into());
    }
    let mut cseqs = headers.get_all(&HeaderName::CSeq);
    let cseq = cseqs.next().ok_or("missing CSeq header")?;
    if cseqs.next().is_some() {
        return Err("more than one CSeq header".into());
    }
    CSeq::parse(cseq).map_err(|e| format!("malformed CSeq: {e}"))?;
    Ok(())
}

/// Reads `Content-Length` (strictly) and returns the body.
fn extract_body(headers: &Headers, raw: &[u8], datagram: bool) -> Result<Bytes, String> {
    let mut declared: Option<usize> = None;
    for v in headers.get_all(&HeaderName::ContentLength) {
        let n = parse_content_length(v)?;
        if declared.is_some_and(|d| d != n) {
            return Err("conflicting Content-Length headers".into());
        }
        declared = Some(n);
    }
    match declared {
        Some(n) if n > MAX_BODY_BYTES => Err("message body too large".into()),
        Some(n) if n > raw.len() => Err("Content-Length larger than the message body".into()),
        // RFC 3261 §18.3: bytes past Content-Length in a datagram are discarded.
        Some(n) => Ok(Bytes::copy_from_slice(&raw[..n])),
        None if datagram => {
            if raw.len() > MAX_BODY_BYTES {
                return Err("message body too large".into());
            }
            Ok(Bytes::copy_from_slice(raw))
        }
        None => Err("missing Content-Length on a stream transport".into()),
    }
}

fn parse_content_length(v: &str) -> Result<usize, String> {
    let v = v.trim();
    if v.starts_with('-') {
        return Err("negative Content-Length".into());
    }
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("malformed Content-Length".into());
    }
    v.parse().map_err(|_| "malformed Content-Length".into())
}

fn clip(s: &str) -> String {
    s.chars().take(32).filter(|c| !c.is_control()).collect()
}

/// Cuts a byte stream (TCP, TLS) into SIP messages.
///
/// Push bytes as they arrive with [`StreamFramer::push`], then call
/// [`StreamFramer::next_message`] until it returns `Ok(None)`. An `Err` means
/// the stream cannot be resynchronised and the connection should be closed
/// (after answering, when the error carries a reply context).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

/// What the framer produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the message is the common case; boxing it would cost an allocation each
pub enum Framed {
    Message(Message),
    /// A CRLF keep-alive ping (RFC 5626 §4.4.1): answer with a single CRLF.
    KeepAlivePing,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn next_message(&mut self) -> Result<Option<Framed>, ParseError> {
        // Keep-alives: "\r\n\r\n" ping, "\r\n" pong.
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Framed::KeepAlivePing));
        }
        let lead = self.buf.len() - skip_leading_crlf(&self.buf).len();
        if lead > 0 && lead < self.buf.len() {
            self.buf.drain(..lead);
        } else if lead == self.buf.len() {
            // Only CRLFs so far: could be the start of a ping.
            if lead > 4 {
                self.buf.clear();
            }
            return Ok(None);
        }
        let Some((head, body_start)) = find_header_end(&self.buf) else {
            if self.buf.len() > MAX_HEADER_BYTES {
                return Err(ParseError::new("header section too large"));
            }
            return Ok(None);
        };
        let raw = split_head(head);
        let mut declared = None;
        for v in raw.headers.get_all(&HeaderName::ContentLength) {
            declared = Some(parse_content_length(v).map_err(|reason| ParseError {
                reason,
                status: StatusCode::BAD_REQUEST,
                reply: reply_context(&raw.headers, raw.start_line.starts_with("ACK ")),
            })?);
        }
        let Some(len) = declared else {
            return Err(ParseError {
                reason: "missing Content-Length on a stream transport".into(),
                status: StatusCode::BAD_REQUEST,
                reply: reply_context(&raw.headers, raw.start_line.starts_with("ACK ")),
            });
        };
        if len > MAX_BODY_BYTES {
            return Err(ParseError::new("message body too large"));
        }
        let total = body_start + len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        parse_message(&msg, false).map(|m| Some(Framed::Message(m)))
    }
}
