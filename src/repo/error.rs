//! Why a write to a repository was not made. Handlers answer each the way the reference PDS
//! does (see `api::com::atproto::repo`).

use crate::account::status::Refusal;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The record breaks its lexicon, its key rules or the data model.
    #[error("{0}")]
    InvalidRecord(String),
    /// `swapCommit` or `swapRecord` did not match.
    #[error("{0}")]
    Swap(String),
    #[error("Record already exists at {0}")]
    AlreadyExists(String),
    #[error("Record not found: {0}")]
    NotFound(String),
    #[error("More than one write to {0}")]
    DuplicateWrite(String),
    /// A record references a blob this account never uploaded.
    #[error("Could not find blob: {0}")]
    BlobNotFound(String),
    /// The account may not change its repository.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The repository changed while the write was built on it (another replica committed and
    /// pruned blocks the build still needed): it is built again on the new state, never
    /// answered.
    #[error("the repository moved: {0}")]
    Moved(String),
    /// Our fault, not the client's: logged, and answered with a generic 500.
    #[error("{0}")]
    Internal(String),
}

impl WriteError {
    pub fn internal(cause: impl std::fmt::Display) -> WriteError {
        WriteError::Internal(cause.to_string())
    }
}
