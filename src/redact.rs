//! Keeping secrets and control characters out of what the server shows: REST answers and logs.
//!
//! Encoders and clients put credentials in URLs (`rtmp://host/live/cam?key=…`, `…?token=…`); those
//! values are replaced by `***` wherever a URL, a query or a JSON object is reported. Names and
//! messages from clients are written to the log escaped, so a newline cannot forge a log line and a
//! NUL cannot make the log binary.

use serde_json::Value;
use std::fmt;

/// Words that mark a query parameter or JSON key as a secret (matched case-insensitively, as a
/// part of the key: `streamKey`, `access_token`, `sipPassword` all match).
const SECRET_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "auth",
    "signature",
    "credential",
];

/// Whether a parameter or field named `name` holds a secret.
pub fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // `appKey` names an application, not a credential.
    if lower == "appkey" {
        return false;
    }
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// A query string (`a=1&key=abc`) with secret values replaced by `***`.
pub fn query(q: &str) -> String {
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if is_secret(k) && !v.is_empty() => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL or `name?query` with secret query values replaced, and any `user:password@` hidden.
pub fn url(u: &str) -> String {
    let (base, q) = match u.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (u, None),
    };
    let base = hide_userinfo(base);
    match q {
        Some(q) => format!("{base}?{}", query(q)),
        None => base,
    }
}

fn hide_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => base.to_owned(),
    }
}

/// Redacts a JSON value in place: secret-named fields become `"***"`, and strings that carry a
/// query (`?k=v` or `k=v&…`) have their secret parameters replaced.
pub fn json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if is_secret(k) && !matches!(val, Value::Null | Value::Bool(_)) {
                    *val = Value::String("***".into());
                } else {
                    json(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(json),
        Value::String(s) => {
            if s.contains('?') || s.contains("://") {
                *s = url(s);
            } else if s.contains('=') {
                *s = query(s);
            }
        }
        _ => {}
    }
}

/// A client-supplied string for the log: control characters escaped, long text cut.
pub struct Escaped<'a>(pub &'a str);

/// Longest client string written to the log, in characters.
const LOG_TEXT_MAX: usize = 200;

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == LOG_TEXT_MAX {
                return f.write_str("…");
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Escapes control characters in a formatted log line, keeping its final newline. The last line of
/// defence: whatever a field holds, one event stays one line of text.
pub fn escape_log_line(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    if !body
        .iter()
        .any(|b| (b.is_ascii_control() && *b != b'\t') || *b == 0x7f)
    {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    for &b in body {
        match b {
            b'\t' => out.push(b),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if b.is_ascii_control() || b == 0x7f => {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes())
            }
            b => out.push(b),
        }
    }
    if body.len() < line.len() {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_query_values_are_hidden() {
        assert_eq!(query("a=1&key=abc&token=&x"), "a=1&key=***&token=&x");
        assert_eq!(
            url("rtmp://u:p@host:1935/live/cam?streamKey=s3&w=1"),
            "rtmp://***@host:1935/live/cam?streamKey=***&w=1"
        );
        assert_eq!(url("cam?Password=x"), "cam?Password=***");
        assert_eq!(url("rtmp://host/live/cam"), "rtmp://host/live/cam");
    }

    #[test]
    fn json_fields_and_embedded_queries_are_hidden() {
        let mut v = json!({
            "appKey": "defaultApp",
            "authToken": "t0k",
            "custom": {"query": "key=abc&n=1", "params": {"key": "abc", "n": "1"}, "login": "bob"},
            "uri": "rtmp://h/live/s?auth=zz",
            "record": true,
        });
        json(&mut v);
        assert_eq!(v["appKey"], "defaultApp");
        assert_eq!(v["authToken"], "***");
        assert_eq!(v["custom"]["query"], "key=***&n=1");
        assert_eq!(v["custom"]["params"]["key"], "***");
        assert_eq!(v["custom"]["params"]["n"], "1");
        assert_eq!(v["custom"]["login"], "bob");
        assert_eq!(v["uri"], "rtmp://h/live/s?auth=***");
        assert_eq!(v["record"], true);
    }

    #[test]
    fn log_text_is_one_line() {
        assert_eq!(Escaped("a\nb\0c").to_string(), "a\\nb\\u{0}c");
        let long = "x".repeat(500);
        assert_eq!(Escaped(&long).to_string().chars().count(), LOG_TEXT_MAX + 1);
        assert_eq!(&*escape_log_line(b"ok line\n"), b"ok line\n");
        assert_eq!(
            &*escape_log_line(b"a\nb\x00\x1b[31m\n"),
            b"a\\nb\\x00\\x1b[31m\n"
        );
    }
}
