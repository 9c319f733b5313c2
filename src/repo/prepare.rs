//! Preparing writes: everything about a write that needs no repository state — key rules,
//! lexicon validation, DAG-CBOR encoding, the blobs a record references — done by the request's
//! own task before it joins the repository's queue.

use bytes::Bytes;
use cid::Cid;
use serde_json::Value;

use aurora_atproto::data;
use aurora_atproto::lexicon::Def;
use aurora_atproto::syntax::{Nsid, RecordKey, Tid, TidClock};

use super::error::WriteError;
use crate::blobs::refs::{self, BlobReference};

/// A requested change to one record.
pub enum Write {
    Create {
        collection: Nsid,
        rkey: Option<RecordKey>,
        record: Value,
    },
    /// Creates or replaces (`putRecord`).
    Put {
        collection: Nsid,
        rkey: RecordKey,
        record: Value,
        swap_record: Option<Option<Cid>>,
    },
    /// Replaces an existing record (`applyWrites#update`).
    Update {
        collection: Nsid,
        rkey: RecordKey,
        record: Value,
    },
    /// `must_exist`: whether deleting an absent record is an error (in a batch) or nothing to
    /// do (`deleteRecord`).
    Delete {
        collection: Nsid,
        rkey: RecordKey,
        swap_record: Option<Cid>,
        must_exist: bool,
    },
}

/// Whether a written record was checked against its lexicon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationStatus {
    /// Its lexicon is known and the record is valid.
    Valid,
    /// Its lexicon is not known here, so only the data model's rules were checked.
    Unknown,
}

impl ValidationStatus {
    /// The lexicons' name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Valid => "valid",
            ValidationStatus::Unknown => "unknown",
        }
    }
}

pub(super) fn invalid_record(message: impl Into<String>) -> WriteError {
    WriteError::InvalidRecord(message.into())
}

pub(super) struct Prepared {
    /// Blobs the record references.
    pub(super) blobs: Vec<BlobReference>,
    pub(super) collection: Nsid,
    pub(super) rkey: RecordKey,
    /// The encoded record, for creates and puts.
    pub(super) block: Option<(Cid, Bytes)>,
    pub(super) validation_status: Option<ValidationStatus>,
    pub(super) swap: Option<Option<Cid>>,
    pub(super) kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Create,
    Put,
    Update,
    Delete { must_exist: bool },
}

/// Validates a record per the `validate` flag and encodes it: `Some(true)` requires a known,
/// valid lexicon; `None` validates when the lexicon is known; `Some(false)` skips lexicon
/// validation. The data model's own rules (no floats, well-formed `$bytes`, `$link`, blobs)
/// always apply.
fn encode_record(
    collection: &Nsid,
    value: &mut Value,
    validate: Option<bool>,
) -> Result<((Cid, Bytes), Option<ValidationStatus>), WriteError> {
    let Value::Object(map) = value else {
        return Err(invalid_record("Record must be an object"));
    };
    // A record without a `$type` is of its collection's type, as the reference PDS fills it in.
    match map.entry("$type").or_insert_with(|| Value::String(collection.to_string())) {
        Value::String(t) if t == collection.as_str() => {}
        Value::String(t) if validate != Some(false) => {
            return Err(invalid_record(format!("Invalid $type: expected {collection}, got {t}")))
        }
        Value::String(_) => {}
        _ => return Err(invalid_record("Record/$type must be a string")),
    }
    let value = &*value;
    let status = match (validate, aurora_generated::catalog::validate_record(collection.as_str(), value)) {
        (Some(false), _) => None,
        (_, Some(Ok(()))) => Some(ValidationStatus::Valid),
        (_, Some(Err(e))) => return Err(invalid_record(format!("Invalid {collection} record: {e}"))),
        (Some(true), None) => {
            return Err(invalid_record(format!("Lexicon not found: {collection} (validation was required)")))
        }
        (None, None) => Some(ValidationStatus::Unknown),
    };
    let ipld = data::json_to_ipld(value).map_err(|e| invalid_record(format!("Invalid record data: {e}")))?;
    let bytes = data::to_dag_cbor(&ipld).map_err(|e| invalid_record(format!("Invalid record data: {e}")))?;
    let cid = aurora_atproto::cids::for_dag_cbor(&bytes);
    Ok(((cid, Bytes::from(bytes)), status))
}

/// Checks a record key against the key type the collection's lexicon declares.
fn check_rkey(collection: &Nsid, rkey: &RecordKey) -> Result<(), WriteError> {
    let Some(Def::Record(def)) = aurora_generated::catalog::catalog().main(collection.as_str()) else {
        return Ok(());
    };
    let ok = match def.key.as_deref() {
        Some("tid") => rkey.as_str().parse::<Tid>().is_ok(),
        Some("nsid") => rkey.as_str().parse::<Nsid>().is_ok(),
        Some(literal) if literal.starts_with("literal:") => literal["literal:".len()..] == *rkey.as_str(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid_record(format!(
            "Invalid record key {rkey} for {collection}: the lexicon requires {}",
            def.key.as_deref().unwrap_or("any")
        )))
    }
}

/// The key a new record gets when the client names none: `self` for literal:self records,
/// otherwise a fresh TID.
fn default_rkey(collection: &Nsid) -> RecordKey {
    if let Some(Def::Record(def)) = aurora_generated::catalog::catalog().main(collection.as_str()) {
        if let Some(literal) = def.key.as_deref().and_then(|k| k.strip_prefix("literal:")) {
            if let Ok(rkey) = literal.parse() {
                return rkey;
            }
        }
    }
    TidClock::global().next().as_str().parse().unwrap_or_else(|_| unreachable!("a TID is a valid record key"))
}

/// A create, put or update: key checked, record validated and encoded, blobs found.
fn prepare_record(
    collection: Nsid,
    rkey: RecordKey,
    mut record: Value,
    validate: Option<bool>,
    swap: Option<Option<Cid>>,
    kind: Kind,
) -> Result<Prepared, WriteError> {
    check_rkey(&collection, &rkey)?;
    let (block, validation_status) = encode_record(&collection, &mut record, validate)?;
    Ok(Prepared { blobs: refs::find(&record), collection, rkey, block: Some(block), validation_status, swap, kind })
}

pub(super) fn prepare(write: Write, validate: Option<bool>) -> Result<Prepared, WriteError> {
    match write {
        Write::Create { collection, rkey, record } => {
            let rkey = rkey.unwrap_or_else(|| default_rkey(&collection));
            prepare_record(collection, rkey, record, validate, None, Kind::Create)
        }
        Write::Put { collection, rkey, record, swap_record } => {
            prepare_record(collection, rkey, record, validate, swap_record, Kind::Put)
        }
        Write::Update { collection, rkey, record } => {
            prepare_record(collection, rkey, record, validate, None, Kind::Update)
        }
        Write::Delete { collection, rkey, swap_record, must_exist } => Ok(Prepared {
            blobs: Vec::new(),
            collection,
            rkey,
            block: None,
            validation_status: None,
            swap: swap_record.map(Some),
            kind: Kind::Delete { must_exist },
        }),
    }
}
