//! DTMF carried in SIP INFO bodies: `application/dtmf-relay`
//! (`Signal=5\r\nDuration=160`) and `application/dtmf` (just the key).

/// A key pressed, as reported in an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// Duration in milliseconds, when given.
    pub duration_ms: Option<u32>,
}

/// Parses an INFO body of the given content type; `None` when the type is not
/// a DTMF type or the body names no valid key.
pub fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Option<InfoDigit> {
    let text = std::str::from_utf8(body).ok()?;
    match content_type {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration = None;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("signal") {
                    digit = normalize(v);
                } else if k.eq_ignore_ascii_case("duration") {
                    duration = v.parse().ok();
                }
            }
            Some(InfoDigit {
                digit: digit?,
                duration_ms: duration,
            })
        }
        "application/dtmf" => Some(InfoDigit {
            digit: normalize(text.trim())?,
            duration_ms: None,
        }),
        _ => None,
    }
}

fn normalize(v: &str) -> Option<char> {
    // Some phones send the RFC 4733 event number instead of the character.
    match v {
        "10" => return Some('*'),
        "11" => return Some('#'),
        "12" => return Some('A'),
        "13" => return Some('B'),
        "14" => return Some('C'),
        "15" => return Some('D'),
        _ => {}
    }
    let mut chars = v.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    let c = c.to_ascii_uppercase();
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_and_plain() {
        let d = parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(d.digit, '5');
        assert_eq!(d.duration_ms, Some(160));
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal= #\n")
                .unwrap()
                .digit,
            '#'
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf", b"11").unwrap().digit,
            '#'
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf", b"*").unwrap().digit,
            '*'
        );
        assert!(parse_dtmf_info("application/dtmf", b"x").is_none());
        assert!(parse_dtmf_info("text/plain", b"5").is_none());
        assert!(parse_dtmf_info("application/dtmf-relay", b"Duration=100").is_none());
    }
}
