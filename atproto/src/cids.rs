//! Content identifiers as atproto uses them: CIDv1, sha2-256, dag-cbor for records and raw for blobs.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec code of DAG-CBOR, the codec of every record, MST node and commit.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec code of raw bytes, the codec of blobs.
pub const RAW: u64 = 0x55;
/// Multihash code of sha2-256, the only hash atproto accepts.
pub const SHA2_256: u64 = 0x12;

/// The CID of a block of DAG-CBOR bytes.
pub fn for_dag_cbor(bytes: &[u8]) -> Cid {
    with_codec(DAG_CBOR, bytes)
}

/// The CID of a blob's raw bytes.
pub fn for_raw(bytes: &[u8]) -> Cid {
    with_codec(RAW, bytes)
}

/// A CIDv1 for a sha2-256 digest that was computed elsewhere (e.g. while streaming a blob).
pub fn from_sha256(codec: u64, digest: [u8; 32]) -> Cid {
    let hash = Multihash::<64>::wrap(SHA2_256, &digest).expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(codec, hash)
}

fn with_codec(codec: u64, bytes: &[u8]) -> Cid {
    from_sha256(codec, Sha256::digest(bytes).into())
}

/// Whether `cid` is one atproto produces: CIDv1 with a sha2-256 digest of 32 bytes.
pub fn is_atproto_cid(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1 && cid.hash().code() == SHA2_256 && cid.hash().size() == 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cid_of_an_empty_dag_cbor_map_is_the_well_known_one() {
        // 0xa0 is the DAG-CBOR encoding of {}.
        assert_eq!(for_dag_cbor(&[0xa0]).to_string(), "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua");
    }
}
