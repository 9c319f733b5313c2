//! What every upload computes as its bytes stream past: the size (against the limit), the
//! SHA-256 that names it, and the head kept for sniffing its type.

use cid::Cid;
use sha2::{Digest, Sha256};

use super::{BlobError, HEAD_BYTES};

pub struct Digesting {
    hasher: Sha256,
    head: Vec<u8>,
    size: u64,
    limit: u64,
}

impl Digesting {
    pub fn new(limit: u64) -> Digesting {
        Digesting { hasher: Sha256::new(), head: Vec::new(), size: 0, limit }
    }

    /// Takes in the next chunk; refused once the total passes the limit.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge(self.limit));
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The raw-codec CID of the bytes, their size and head.
    pub fn finish(self) -> (Cid, u64, Vec<u8>) {
        let cid = aurora_atproto::cids::from_sha256(aurora_atproto::cids::RAW, self.hasher.finalize().into());
        (cid, self.size, self.head)
    }
}
