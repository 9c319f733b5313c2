//! The shared shape of resource scopes, `<resource>[:<positional>][?<query>]`: the positional
//! part is percent-decoded as a URI component (`+` stays `+`), the query as a form (`+` is a
//! space), and the canonical form escapes values the same two ways, keeping the characters
//! scopes are easier to read with.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// A resource scope split into its parts, values decoded.
pub(super) struct Parts<'a> {
    pub resource: &'a str,
    positional: Option<String>,
    query: Vec<(String, String)>,
}

impl<'a> Parts<'a> {
    pub fn split(token: &'a str) -> Option<Parts<'a>> {
        let name_end = token.find([':', '?']).unwrap_or(token.len());
        let resource = &token[..name_end];
        let rest = &token[name_end..];
        let (positional, query) = match rest.strip_prefix(':') {
            Some(after) => match after.split_once('?') {
                Some((positional, query)) => (Some(positional), Some(query)),
                None => (Some(after), None),
            },
            None => (None, rest.strip_prefix('?')),
        };
        let positional = match positional {
            Some(raw) => Some(decode_component(raw)?),
            None => None,
        };
        let query = query.map_or_else(Vec::new, |q| form_urlencoded::parse(q.as_bytes()).into_owned().collect());
        Some(Parts { resource, positional, query })
    }

    /// Whether every query key is one of `allowed`.
    pub fn only_keys(&self, allowed: &[&str]) -> bool {
        self.query.iter().all(|(key, _)| allowed.contains(&key.as_str()))
    }

    /// The values of `key`: the positional value when `key` is the positional one (and then
    /// not also in the query), else the query's. `None` when the scope breaks a rule: the key
    /// given both ways, or a single-valued key given twice.
    pub fn values(&self, key: &str, positional: bool, multiple: bool) -> Option<Vec<String>> {
        let from_query: Vec<String> = self.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect();
        if positional {
            if let Some(value) = &self.positional {
                return from_query.is_empty().then(|| vec![value.clone()]);
            }
        }
        (multiple || from_query.len() <= 1).then_some(from_query)
    }
}

/// Percent-decodes a URI component strictly: a `%` not followed by two hex digits, or bytes
/// that are not UTF-8, make it no value at all.
fn decode_component(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
    }
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|text| text.into_owned())
}

/// Characters a URI component keeps as they are (JavaScript's `encodeURIComponent`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Escapes that canonical scopes turn back into the characters they stand for.
fn readable(encoded: String) -> String {
    encoded
        .replace("%3A", ":")
        .replace("%2F", "/")
        .replace("%2B", "+")
        .replace("%2C", ",")
        .replace("%40", "@")
        .replace("%25", "%")
}

/// A positional value as a canonical scope writes it.
pub(super) fn encode_positional(value: &str) -> String {
    readable(utf8_percent_encode(value, COMPONENT).to_string())
}

/// A query value as a canonical scope writes it.
pub(crate) fn encode_query_value(value: &str) -> String {
    readable(form_urlencoded::byte_serialize(value.as_bytes()).collect())
}

/// `key=value` pairs as a canonical query, or nothing.
pub(super) fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={}", encode_query_value(value))).collect();
    format!("?{}", joined.join("&"))
}
