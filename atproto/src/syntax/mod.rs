//! Validated string formats of the atproto Lexicon: one newtype per format, each checked on
//! parse so that code holding a `Did` or an `AtUri` never re-validates it.
//!
//! Every type parses with `FromStr` and `TryFrom<String>`, shows and serialises as its string,
//! and validates again when deserialised. [`Format`] names the formats the way lexicons do, so a
//! lexicon validator can check a string against a format it only knows by name.

mod at_identifier;
mod at_uri;
mod cid_string;
#[cfg(feature = "sea-orm")]
mod columns;
mod datetime;
mod did;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod tid_clock;
mod uri;

#[cfg(test)]
mod interop_tests;

pub use at_identifier::AtIdentifier;
pub use at_uri::AtUri;
pub use cid_string::CidString;
pub use datetime::Datetime;
pub use did::Did;
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::Tid;
pub use tid_clock::TidClock;
pub use uri::Uri;

use std::fmt;

/// Why a string is not valid in some format. The offending input is deliberately left out: it
/// can be kilobytes long and usually came from a client, so it has no place in logs by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {format}: {reason}")]
pub struct SyntaxError {
    format: Format,
    reason: &'static str,
}

impl SyntaxError {
    pub(crate) const fn new(format: Format, reason: &'static str) -> Self {
        Self { format, reason }
    }

    /// The format the string failed to match.
    pub fn format(&self) -> Format {
        self.format
    }

    /// A short, human-readable explanation, stable enough to put in an API error message.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// The string formats a lexicon can require, named as lexicon documents name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Did,
    Handle,
    Nsid,
    AtUri,
    AtIdentifier,
    Tid,
    RecordKey,
    Cid,
    Datetime,
    Language,
    Uri,
}

impl Format {
    /// Every format, for callers that enumerate them (e.g. to build a lookup table).
    pub const ALL: [Format; 11] = [
        Format::Did,
        Format::Handle,
        Format::Nsid,
        Format::AtUri,
        Format::AtIdentifier,
        Format::Tid,
        Format::RecordKey,
        Format::Cid,
        Format::Datetime,
        Format::Language,
        Format::Uri,
    ];

    /// The format a lexicon names `name` (e.g. `"at-uri"`), or `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The name lexicon documents use for this format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Did => "did",
            Format::Handle => "handle",
            Format::Nsid => "nsid",
            Format::AtUri => "at-uri",
            Format::AtIdentifier => "at-identifier",
            Format::Tid => "tid",
            Format::RecordKey => "record-key",
            Format::Cid => "cid",
            Format::Datetime => "datetime",
            Format::Language => "language",
            Format::Uri => "uri",
        }
    }

    /// Whether `value` is valid in this format, without keeping the parsed value.
    pub fn check(self, value: &str) -> Result<(), SyntaxError> {
        match self {
            Format::Did => did::validate(value),
            Format::Handle => handle::validate(value),
            Format::Nsid => nsid::validate(value),
            Format::AtUri => value.parse::<AtUri>().map(drop),
            Format::AtIdentifier => at_identifier::validate(value),
            Format::Tid => tid::validate(value),
            Format::RecordKey => record_key::validate(value),
            Format::Cid => cid_string::validate(value),
            Format::Datetime => value.parse::<Datetime>().map(drop),
            Format::Language => language::validate(value),
            Format::Uri => uri::validate(value),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The conversions every string format shares, for a type with `as_str()` and a `FromStr`
/// whose error is [`SyntaxError`].
macro_rules! string_conversions {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::syntax::SyntaxError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.into_string()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

/// A newtype over `String` whose only invariant is that `validate` accepted the text; `$fixup`
/// may normalise the text once it is known to be valid (handles are lowercased).
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $validate:path) => {
        $crate::syntax::string_newtype!($(#[$meta])* $name, $validate, |_text: &mut String| {});
    };
    ($(#[$meta:meta])* $name:ident, $validate:path, $fixup:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated text, without copying it.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::syntax::SyntaxError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::try_from(text.to_owned())
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::syntax::SyntaxError;

            fn try_from(mut text: String) -> Result<Self, Self::Error> {
                $validate(&text)?;
                ($fixup)(&mut text);
                Ok(Self(text))
            }
        }

        $crate::syntax::string_conversions!($name);
    };
}

pub(crate) use string_conversions;
pub(crate) use string_newtype;

/// Whether every byte of `text` is one `allowed` accepts; the common shape of the simpler formats.
fn all_bytes(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    // Without the early exit the loop vectorises; text that passes is the case that matters.
    text.bytes().fold(true, |all, byte| all & allowed(byte))
}
