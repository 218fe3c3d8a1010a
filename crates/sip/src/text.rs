//! Small lexical helpers shared by the header parsers: splitting comma lists
//! without breaking quoted strings or `<…>` URIs, parameter lists, quoting.

use crate::error::HeaderError;

/// A `;name=value` parameter. `value` is `None` for a bare flag such as `;lr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Param {
        Param {
            name: name.into(),
            value,
        }
    }
}

/// Finds a parameter by case-insensitive name.
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Splits a header value on top-level commas (not inside quotes or `<>`).
pub fn split_commas(value: &str) -> Result<Vec<&str>, HeaderError> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else {
            match b {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    out.push(value[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_quotes {
        return Err(HeaderError::UnterminatedQuote);
    }
    if in_angle {
        return Err(HeaderError::UnterminatedAngle);
    }
    out.push(value[start..].trim());
    Ok(out.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Parses `;a=b;c;d="e f"` (the leading `;` optional) into parameters.
pub fn parse_params(s: &str) -> Result<Vec<Param>, HeaderError> {
    let mut params = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b';' || bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let name_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b';') {
            i += 1;
        }
        let name = s[name_start..i].trim();
        if name.is_empty() || !name.bytes().all(is_param_char) {
            return Err(HeaderError::BadParameter(name.to_owned()));
        }
        let mut value = None;
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'"' {
                let (v, used) = unquote_prefix(&s[i..])?;
                value = Some(v);
                i += used;
                while i < bytes.len() && bytes[i] != b';' {
                    if !matches!(bytes[i], b' ' | b'\t') {
                        return Err(HeaderError::BadParameter(name.to_owned()));
                    }
                    i += 1;
                }
            } else {
                let vs = i;
                while i < bytes.len() && bytes[i] != b';' {
                    i += 1;
                }
                let v = s[vs..i].trim();
                value = Some(v.to_owned());
            }
        }
        params.push(Param::new(name, value));
    }
    Ok(params)
}

fn is_param_char(b: u8) -> bool {
    crate::method::is_token_byte(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'$')
}

/// Reads a quoted string at the start of `s` (which must begin with `"`),
/// returning the unescaped content and the number of bytes consumed.
pub fn unquote_prefix(s: &str) -> Result<(String, usize), HeaderError> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return Err(HeaderError::UnterminatedQuote);
    }
    let mut out = String::new();
    let mut i = 1;
    let mut run_start = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                out.push_str(&s[run_start..i]);
                // An escaped character: take the next char whole (it may be multi-byte).
                let rest = &s[i + 1..];
                let ch = rest.chars().next().ok_or(HeaderError::UnterminatedQuote)?;
                out.push(ch);
                i += 1 + ch.len_utf8();
                run_start = i;
            }
            b'"' => {
                out.push_str(&s[run_start..i]);
                return Ok((out, i + 1));
            }
            _ => i += 1,
        }
    }
    Err(HeaderError::UnterminatedQuote)
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Writes URI parameters as `;a=b;c`, values as they were read: URI
/// parameters cannot be quoted (RFC 3261 §19.1.1), and values we parsed from
/// a URI are written back unchanged so the URI re-parses.
pub fn write_uri_params(params: &[Param], out: &mut String) {
    for p in params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            out.push_str(v);
        }
    }
}

/// Writes header parameters as `;a=b;c`, quoting values that need it.
pub fn write_params(params: &[Param], out: &mut String) {
    for p in params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            if v.is_empty() || v.bytes().any(|b| !is_param_char(b) && b != b'.') {
                quote(v, out);
            } else {
                out.push_str(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_angles() {
        let v = split_commas(r#""Doe, John" <sip:a@b;x=1,2>, <sip:c@d>"#).unwrap();
        assert_eq!(v, vec![r#""Doe, John" <sip:a@b;x=1,2>"#, "<sip:c@d>"]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            split_commas(r#""Doe <sip:a@b>"#),
            Err(HeaderError::UnterminatedQuote)
        );
    }

    #[test]
    fn params() {
        let p = parse_params(r#";tag=abc;lr;q="0.5""#).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].value.as_deref(), Some("abc"));
        assert_eq!(p[1].value, None);
        assert_eq!(p[2].value.as_deref(), Some("0.5"));
    }

    #[test]
    fn unquote_escapes() {
        let (s, n) = unquote_prefix(r#""a\"b" rest"#).unwrap();
        assert_eq!(s, "a\"b");
        assert_eq!(n, 6);
    }
}
