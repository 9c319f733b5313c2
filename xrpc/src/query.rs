//! Query parameters read straight into their typed struct, for requests whose parameters are
//! all valid. The generator writes [`FromQuery`] for each method from its lexicon; when it
//! answers `None` the endpoint takes the lexicon validator's path, which names what is wrong, so
//! the fast path never has to produce (or agree on) an error message, only never accept more.

use std::borrow::Cow;

use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::DeserializeOwned;

/// Parameters built from a query string without the lexicon interpreter.
pub trait FromQuery: Sized {
    /// The parameters if every one is present when required, given once unless repeatable and
    /// valid by the lexicon; `None` otherwise (or when the generator wrote no fast path).
    fn from_query(_query: &str) -> Option<Self> {
        None
    }
}

impl FromQuery for crate::method::NoParams {
    fn from_query(_query: &str) -> Option<Self> {
        Some(Self {})
    }
}

/// The query's `(key, value)` pairs, split and decoded as `application/x-www-form-urlencoded`.
/// A pair with nothing to decode (no `%`, no `+`) is borrowed as it stands; the rest are decoded
/// by `form_urlencoded`, whose general path costs hundreds of instructions even for plain text.
pub fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let encoded = |text: &str| memchr::memchr2(b'%', b'+', text.as_bytes()).is_some();
    let any_encoded = encoded(query);
    query.split('&').filter(|pair| !pair.is_empty()).filter_map(move |pair| {
        if any_encoded && encoded(pair) {
            return form_urlencoded::parse(pair.as_bytes()).next();
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        Some((Cow::Borrowed(key), Cow::Borrowed(value)))
    })
}

/// Stores `value` in a parameter that may be given once; `None` if it was given before.
pub fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot.replace(value) {
        None => Some(()),
        Some(_) => None,
    }
}

/// Scalars read by the validator's own functions, so both paths read them alike.
pub use aurora_atproto::lexicon::{boolean_param as boolean, grapheme_count as graphemes, integer_param as integer};

/// A string parameter of a named type (a string enum), read as its deserialiser reads it.
pub fn named<T: DeserializeOwned>(raw: &str) -> Option<T> {
    T::deserialize(StrDeserializer::<ValueError>::new(raw)).ok()
}
