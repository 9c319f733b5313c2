//! The atproto data model: records and other signed data as IPLD values, with the two encodings
//! the protocol uses, DAG-CBOR (hashed and signed) and JSON (spoken over XRPC).
//!
//! Values are [`Ipld`] from `ipld-core`. Conversion between the encodings is lossless for every
//! value the data model admits, and everything that crosses a boundary is checked against its
//! rules: no floats, integers within JavaScript's safe range, well-formed `$type`, `$link`,
//! `$bytes` and blob objects. The DAG-CBOR decoder accepts only the canonical encoding of a
//! value, so one value has exactly one CID.

mod blob;
mod cbor;
mod json;
mod rules;
mod served;
mod transcode;

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod test_values;

pub use blob::BlobRef;
pub use cbor::{cid_for_ipld, cid_for_json, decode, encode, from_dag_cbor, to_dag_cbor};
pub use ipld_core::ipld::Ipld;
pub use json::{ipld_to_json, json_to_ipld, object_from_json};
pub use rules::validate;
pub use served::DagCborJson;
pub use transcode::dag_cbor_to_json;

/// The largest magnitude an integer may have: 2^53 − 1, JavaScript's `Number.MAX_SAFE_INTEGER`,
/// beyond which the JSON side of the protocol cannot carry integers exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Why a value is outside the atproto data model, or bytes are not its canonical DAG-CBOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("floating-point numbers are not allowed")]
    Float,
    #[error("integer outside the safe range ±(2^53 − 1)")]
    IntegerOutOfRange,
    #[error("expected an object at the top level")]
    NotAnObject,
    #[error("$type must be a non-empty string")]
    InvalidType,
    #[error("invalid $link object: {0}")]
    InvalidLink(&'static str),
    #[error("invalid $bytes object: {0}")]
    InvalidBytes(&'static str),
    #[error("invalid blob: {0}")]
    InvalidBlob(&'static str),
    #[error("the key {0:?} is reserved for links and bytes")]
    ReservedKey(&'static str),
    #[error("invalid DAG-CBOR: {0}")]
    Decode(String),
    #[error("DAG-CBOR is not in canonical form")]
    NotCanonical,
    #[error("could not encode DAG-CBOR: {0}")]
    Encode(String),
}
