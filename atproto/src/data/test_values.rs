//! Values the data model's unit tests build.

#![allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure

use super::Ipld;

pub fn map(entries: &[(&str, Ipld)]) -> Ipld {
    Ipld::Map(entries.iter().map(|(key, value)| (key.to_string(), value.clone())).collect())
}

/// Encodes without the data model's checks, to build blocks that break its rules.
pub fn raw(value: &Ipld) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(value).unwrap()
}
