//! Content identifiers as atproto uses them: CIDv1, sha2-256, dag-cbor for records and raw for blobs.

use std::sync::LazyLock;

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

/// Multibase's base32 (prefix `b`): lowercase RFC 4648 without padding, capitals read as
/// their lowercase letters, as the multibase crate decodes it.
static BASE32_LOWER: LazyLock<data_encoding::Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.translate.from.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    spec.translate.to.push_str("abcdefghijklmnopqrstuvwxyz");
    spec.encoding().expect("multibase's base32 is a valid specification")
});

/// A CID from its text, as [`Cid::try_from`] reads it. Every CID atproto writes is base32
/// (`b…`); that form is decoded onto the stack, where `Cid::try_from` first searches the text
/// for an `/ipfs/` path and decodes into a new vector (with the re-encoding, a sixth of the CPU
/// of a repository export, which reads a CID per block). Anything else, or text that does not
/// decode, takes `Cid::try_from`'s own path, so the answer is the same.
pub fn parse(text: &str) -> Result<Cid, cid::Error> {
    let mut bytes = [0u8; 96];
    match decode_base32(text.as_bytes(), &mut bytes) {
        Some(bytes) => Cid::try_from(bytes),
        None => Cid::try_from(text),
    }
}

/// The binary form of a CID's text (what a CAR section or a DAG-CBOR link carries) when it is
/// one atproto writes — CIDv1, DAG-CBOR or raw, a 32-byte sha2-256 digest — without building a
/// [`Cid`] to encode again. `None` for any other text, which [`parse`] reads.
pub fn atproto_bytes<'b>(text: &[u8], bytes: &'b mut [u8; 36]) -> Option<&'b [u8]> {
    let bytes = decode_base32(text, bytes)?;
    let atproto = bytes.len() == 36 && matches!(bytes, [1, 0x71 | 0x55, 0x12, 0x20, ..]);
    atproto.then_some(bytes)
}

/// The bytes of a multibase base32 text, if they fit in `bytes`.
fn decode_base32<'b>(text: &[u8], bytes: &'b mut [u8]) -> Option<&'b [u8]> {
    let base32 = text.strip_prefix(b"b")?;
    let len = BASE32_LOWER.decode_len(base32.len()).ok().filter(|&len| len <= bytes.len())?;
    let len = BASE32_LOWER.decode_mut(base32, &mut bytes[..len]).ok()?;
    Some(&bytes[..len])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    /// `parse` answers as `Cid::try_from` does, and `atproto_bytes` gives the bytes of the CIDs
    /// atproto writes, in the text it writes them in.
    fn same_as_cid_crate(text: &str) {
        let mut buffer = [0; 36];
        let bytes = atproto_bytes(text.as_bytes(), &mut buffer);
        match (parse(text), Cid::try_from(text)) {
            (Ok(fast), Ok(slow)) => {
                assert_eq!(fast, slow, "{text}");
                let atproto = is_atproto_cid(&slow) && matches!(slow.codec(), DAG_CBOR | RAW);
                if let Some(bytes) = bytes {
                    assert!(atproto, "{text}");
                    assert_eq!(bytes, slow.to_bytes(), "{text}");
                }
                // The text atproto writes always takes the short way.
                if atproto && slow.to_string() == text {
                    assert!(bytes.is_some(), "{text}");
                }
            }
            (Err(_), Err(_)) => assert_eq!(bytes, None, "{text}"),
            (fast, slow) => panic!("{text:?}: parse {fast:?}, Cid::try_from {slow:?}"),
        }
    }

    #[test]
    fn cids_parse_as_the_cid_crate_parses_them() {
        let record = for_dag_cbor(&[0xa0]).to_string();
        let blob = for_raw(b"a blob").to_string();
        for text in [
            record.as_str(),
            blob.as_str(),
            &record.to_uppercase()[..],
            &format!("B{}", &record[1..]),
            &format!("b{}", record[1..].to_uppercase()),
            "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
            "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",
            "b",
            "",
            "bafy",
            "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swu",
            "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swuaa",
            "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swu1",
            "/ipfs/bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua",
            "bx/ipfs/bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua",
        ] {
            same_as_cid_crate(text);
        }
        assert_eq!(parse(&record).unwrap().to_string(), record);
        let long = format!("b{}", "a".repeat(400));
        same_as_cid_crate(&long);
    }

    proptest::proptest! {
        #[test]
        fn a_changed_cid_parses_as_the_cid_crate_parses_it(at in 0usize..100, byte in 0x20u8..0x7f, cut in 0usize..100) {
            let mut text = for_dag_cbor(&[0xa0]).to_string().into_bytes();
            let at = at % text.len();
            text[at] = byte;
            text.truncate(text.len() - cut % 4);
            same_as_cid_crate(std::str::from_utf8(&text).unwrap());
        }
    }

    #[test]
    fn the_cid_of_an_empty_dag_cbor_map_is_the_well_known_one() {
        // 0xa0 is the DAG-CBOR encoding of {}.
        assert_eq!(for_dag_cbor(&[0xa0]).to_string(), "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua");
    }
}
