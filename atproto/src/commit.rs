//! Signed repository commits (repo format v3): `{did, version: 3, data, rev, prev: null, sig}`.
//!
//! The signature covers the DAG-CBOR of the commit without `sig`; the commit's CID covers it
//! with. Which key signed is not recorded: the verifier resolves the account's DID document and
//! passes its `#atproto` key.

use bytes::Bytes;
use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::cids;
use crate::crypto::{CryptoError, Keypair, PublicKey};
use crate::syntax::{Did, Tid};

/// The repository format version this crate reads and writes.
pub const VERSION: u64 = 3;

/// Why a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Not DAG-CBOR of the commit schema (a field missing, mistyped or unknown, an invalid DID
    /// or TID).
    #[error("malformed commit: {0}")]
    Malformed(String),
    /// Decodable, but not byte-for-byte the canonical encoding (so its CID is not unique).
    #[error("commit is not canonically encoded")]
    NotCanonical,
    /// A version other than 3.
    #[error("unsupported repo version {0}")]
    UnsupportedVersion(u64),
    /// `data` or `prev` is not a CIDv1 dag-cbor sha2-256 link.
    #[error("commit links must be CIDv1 dag-cbor sha2-256")]
    BadLink,
    /// The signature does not verify against the key given.
    #[error("bad commit signature: {0}")]
    BadSignature(#[from] CryptoError),
    /// The commit names a different account than expected.
    #[error("commit is for {found}, expected {expected}")]
    WrongDid { expected: Did, found: Did },
    /// `rev` does not sort after the previous commit's.
    #[error("rev {next} does not come after {previous}")]
    RevNotIncreasing { previous: Tid, next: Tid },
}

/// A commit's fields without its signature: what gets signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedCommit {
    /// The account whose repository this is.
    pub did: Did,
    /// The MST root.
    pub data: Cid,
    /// The revision, a logical clock that must increase with every commit.
    pub rev: Tid,
    /// The previous commit; kept for v2 compatibility and virtually always `None`.
    pub prev: Option<Cid>,
}

/// A signed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The account whose repository this is.
    pub did: Did,
    /// The MST root.
    pub data: Cid,
    /// The revision.
    pub rev: Tid,
    /// The previous commit; virtually always `None`.
    pub prev: Option<Cid>,
    /// 64-byte compact ECDSA signature over [`UnsignedCommit::to_bytes`].
    pub sig: Bytes,
}

/// The wire form. Field order does not matter: the encoder sorts map keys canonically.
#[derive(Serialize)]
struct UnsignedWire<'a> {
    did: &'a Did,
    version: u64,
    data: &'a Cid,
    rev: &'a Tid,
    // Serialised as null when absent: v3 requires the field to be present.
    prev: &'a Option<Cid>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedWire {
    did: Did,
    version: u64,
    data: Cid,
    rev: Tid,
    prev: Option<Cid>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // The only failure the encoder reports is running out of memory while growing a Vec.
    #[allow(clippy::expect_used)]
    serde_ipld_dagcbor::to_vec(value).expect("encoding a commit into memory does not fail")
}

impl UnsignedCommit {
    /// An unsigned commit of `data` at `rev`, with `prev` null as v3 repos have it.
    pub fn new(did: Did, data: Cid, rev: Tid) -> UnsignedCommit {
        UnsignedCommit { did, data, rev, prev: None }
    }

    /// The canonical DAG-CBOR bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&UnsignedWire { did: &self.did, version: VERSION, data: &self.data, rev: &self.rev, prev: &self.prev })
    }

    /// Signs with the account's signing key.
    pub fn sign(self, key: &Keypair) -> Commit {
        let sig = Bytes::copy_from_slice(&key.sign(&self.to_bytes()));
        Commit { did: self.did, data: self.data, rev: self.rev, prev: self.prev, sig }
    }
}

impl Commit {
    /// The commit without its signature.
    pub fn unsigned(&self) -> UnsignedCommit {
        UnsignedCommit { did: self.did.clone(), data: self.data, rev: self.rev.clone(), prev: self.prev }
    }

    /// The canonical DAG-CBOR bytes of the signed commit: its block.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&SignedWire {
            did: self.did.clone(),
            version: VERSION,
            data: self.data,
            rev: self.rev.clone(),
            prev: self.prev,
            sig: self.sig.to_vec(),
        })
    }

    /// The commit's CID and block bytes.
    pub fn to_block(&self) -> (Cid, Bytes) {
        let bytes = self.to_bytes();
        (cids::for_dag_cbor(&bytes), Bytes::from(bytes))
    }

    /// The commit's CID.
    pub fn cid(&self) -> Cid {
        self.to_block().0
    }

    /// Decodes a commit block strictly: the v3 schema, in its canonical encoding, with blessed
    /// links. The signature is not checked here (see [`Commit::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Commit, CommitError> {
        let wire: SignedWire =
            serde_ipld_dagcbor::from_slice(bytes).map_err(|error| CommitError::Malformed(error.to_string()))?;
        if wire.version != VERSION {
            return Err(CommitError::UnsupportedVersion(wire.version));
        }
        let blessed = |cid: &Cid| cids::is_atproto_cid(cid) && cid.codec() == cids::DAG_CBOR;
        if !blessed(&wire.data) || wire.prev.as_ref().is_some_and(|prev| !blessed(prev)) {
            return Err(CommitError::BadLink);
        }
        // Catches everything serde lets through: a missing `prev` (read as null), long-form
        // integers, misordered keys.
        if encode(&wire) != bytes {
            return Err(CommitError::NotCanonical);
        }
        Ok(Commit { did: wire.did, data: wire.data, rev: wire.rev, prev: wire.prev, sig: Bytes::from(wire.sig) })
    }

    /// Checks the signature against `key`, the `#atproto` verification method of the account's
    /// current DID document.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CommitError> {
        key.verify(&self.unsigned().to_bytes(), &self.sig)?;
        Ok(())
    }

    /// Checks that the commit belongs to `did`.
    pub fn check_did(&self, did: &Did) -> Result<(), CommitError> {
        if self.did != *did {
            return Err(CommitError::WrongDid { expected: did.clone(), found: self.did.clone() });
        }
        Ok(())
    }
}

/// The rev for a new commit: now, but always after `previous` (the repo's current rev), even if
/// that came from a machine whose clock ran ahead.
pub fn next_rev(previous: Option<&Tid>) -> Tid {
    match previous {
        Some(previous) => Tid::next_after(previous),
        None => Tid::now(),
    }
}

/// Checks that `next` sorts strictly after `previous`, as each commit's rev must.
pub fn check_rev_advances(previous: &Tid, next: &Tid) -> Result<(), CommitError> {
    if next <= previous {
        return Err(CommitError::RevNotIncreasing { previous: previous.clone(), next: next.clone() });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;
    use crate::crypto::KeyType;

    fn sample() -> UnsignedCommit {
        UnsignedCommit::new(
            "did:plc:abcdefghijklmnopqrstuvwx".parse().unwrap(),
            "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm".parse().unwrap(),
            "3jzfcijpj2z2a".parse().unwrap(),
        )
    }

    #[test]
    fn the_unsigned_bytes_are_the_canonical_map_with_a_null_prev() {
        let bytes = sample().to_bytes();
        // A map of 5, keys in length-then-bytewise order: did, rev, data, prev, version.
        assert_eq!(bytes[0], 0xa5);
        let keys: Vec<usize> = ["did", "rev", "data", "prev", "version"]
            .iter()
            .map(|key| bytes.windows(key.len()).position(|window| window == key.as_bytes()).unwrap())
            .collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
        // "prev" is followed by null, "version" by 3.
        assert_eq!(bytes[keys[3] + 4], 0xf6);
        assert_eq!(*bytes.last().unwrap(), 0x03);
    }

    #[test]
    fn a_signed_commit_round_trips_and_verifies_with_either_curve() {
        for key_type in [KeyType::K256, KeyType::P256] {
            let key = Keypair::generate(key_type);
            let commit = sample().sign(&key);
            assert_eq!(commit.sig.len(), 64);
            let (cid, bytes) = commit.to_block();
            assert_eq!(cid, cids::for_dag_cbor(&bytes));
            let decoded = Commit::from_bytes(&bytes).unwrap();
            assert_eq!(decoded, commit);
            decoded.verify(&key.public_key()).unwrap();
            decoded.check_did(&sample().did).unwrap();
        }
    }

    #[test]
    fn a_commit_fails_verification_with_another_key_or_after_tampering() {
        let key = Keypair::generate(KeyType::K256);
        let commit = sample().sign(&key);
        let other = Keypair::generate(KeyType::K256);
        assert!(matches!(commit.verify(&other.public_key()), Err(CommitError::BadSignature(_))));
        let tampered = Commit { rev: "3jzfcijpj2z2b".parse().unwrap(), ..commit };
        assert!(tampered.verify(&key.public_key()).is_err());
    }

    #[test]
    fn a_commit_without_prev_or_with_another_version_is_refused() {
        let key = Keypair::generate(KeyType::K256);
        let commit = sample().sign(&key);
        #[derive(Serialize)]
        struct NoPrev<'a> {
            did: &'a Did,
            version: u64,
            data: Cid,
            rev: &'a Tid,
            #[serde(with = "serde_bytes")]
            sig: &'a [u8],
        }
        let no_prev =
            encode(&NoPrev { did: &commit.did, version: 3, data: commit.data, rev: &commit.rev, sig: &commit.sig });
        assert!(matches!(Commit::from_bytes(&no_prev), Err(CommitError::NotCanonical)));

        let v2 = SignedWire {
            did: commit.did.clone(),
            version: 2,
            data: commit.data,
            rev: commit.rev.clone(),
            prev: None,
            sig: commit.sig.to_vec(),
        };
        assert!(matches!(Commit::from_bytes(&encode(&v2)), Err(CommitError::UnsupportedVersion(2))));
        assert!(matches!(Commit::from_bytes(&[0xa0]), Err(CommitError::Malformed(_))));
        assert!(matches!(Commit::from_bytes(b"\xff\x00garbage"), Err(CommitError::Malformed(_))));
    }

    #[test]
    fn revs_must_strictly_increase() {
        let first = next_rev(None);
        let second = next_rev(Some(&first));
        check_rev_advances(&first, &second).unwrap();
        assert!(check_rev_advances(&second, &first).is_err());
        assert!(check_rev_advances(&first, &first).is_err());
    }
}
