//! CAR v1 files: the format of repository exports, imports, and the block slices of firehose
//! commits and sync proofs.
//!
//! [`CarWriter`] streams to any `AsyncWrite`; [`CarReader`] reads through iroh-car under
//! [`CarLimits`] and checks that every block hashes to its CID, so that everything after it can
//! trust a block's name. [`export_repo`] streams a whole repository out of a block store;
//! [`import_repo`] reads one back and verifies it completely.

mod export;
mod import;
mod reader;
mod walk;
mod writer;

pub use export::{export_repo, ExportStats};
pub use import::{import_repo, verify_repo, VerifiedRepo};
pub use reader::{read_car, CarLimits, CarReader};
pub use walk::{walk_tree, Visit};
pub use writer::{car_bytes, car_bytes_without_root, write_car, BlockingCarWriter, CarWriter};

use cid::Cid;

use crate::blockstore::BlockStoreError;
use crate::commit::CommitError;
use crate::mst::{MstError, MstKey};

/// Why a CAR could not be read, written, exported or imported.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// Reading or writing the underlying stream failed.
    #[error("CAR i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// Not a CAR v1: a bad varint, header or CID, or a truncated section.
    #[error("malformed CAR: {0}")]
    Malformed(String),
    /// The header lists no root.
    #[error("CAR header has no root")]
    MissingRoot,
    /// The root block is not in the file.
    #[error("CAR root block {0} is missing")]
    RootBlockMissing(Cid),
    /// A block over the configured maximum.
    #[error("CAR block of {size} bytes exceeds the limit of {max}")]
    BlockTooLarge { size: usize, max: usize },
    /// The file is over the configured total size.
    #[error("CAR exceeds the limit of {max} bytes")]
    TooLarge { max: u64 },
    /// The file holds more blocks than the configured maximum.
    #[error("CAR holds more than {max} blocks")]
    TooManyBlocks { max: usize },
    /// A block's CID uses a hash other than sha2-256, which atproto never uses.
    #[error("CID {0} does not use sha2-256")]
    UnsupportedHash(Cid),
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(Cid),
    /// The commit block is invalid, or its signature or DID is wrong.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The MST is malformed or incomplete.
    #[error(transparent)]
    Mst(#[from] MstError),
    /// Keys are out of order across nodes: the tree is not a valid MST.
    #[error("MST keys out of order at {0}")]
    KeysOutOfOrder(MstKey),
    /// A record the tree points to is not in the file (import) or store (export).
    #[error("record {cid} for {key} is missing")]
    MissingRecord { key: MstKey, cid: Cid },
    /// A block the export needs is not in the store.
    #[error("block {0} is missing from the store")]
    MissingBlock(Cid),
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] BlockStoreError),
}
