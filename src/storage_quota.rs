//! What an account may keep on disk besides its repository and its referenced blobs: uploads
//! no record references yet (temporary blobs) and a repository import being staged. Both are
//! bounded per account, counting uploads still in flight, and the server refuses new ones
//! when the disk's free space falls below a floor, instead of filling it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aurora_atproto::syntax::Did;
use aurora_xrpc::XrpcError;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "Upload quota reached: at most {0} bytes of uploads not yet used in a record; use or wait for the earlier ones"
    )]
    OverQuota(u64),
    #[error("An import of this repository is already in progress")]
    ImportRunning,
    #[error("The server is low on disk space; try again later")]
    DiskFull,
}

impl From<QuotaError> for XrpcError {
    fn from(error: QuotaError) -> XrpcError {
        match error {
            QuotaError::OverQuota(_) | QuotaError::ImportRunning => XrpcError::invalid_request(error.to_string()),
            QuotaError::DiskFull => XrpcError::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                "NotEnoughResources",
                Some(error.to_string()),
            ),
        }
    }
}

pub struct StorageQuota {
    /// The directory whose file system is watched (the blob store's).
    dir: PathBuf,
    /// Free bytes below which uploads and imports are refused (AURORA_MIN_FREE_DISK).
    floor: u64,
    /// Temporary blob bytes per account (AURORA_TEMP_BLOB_QUOTA).
    temp_per_account: u64,
    uploading: Arc<Mutex<HashMap<Did, u64>>>,
    importing: Arc<Mutex<HashSet<Did>>>,
}

impl StorageQuota {
    pub fn new(dir: PathBuf, floor: u64, temp_per_account: u64) -> StorageQuota {
        StorageQuota { dir, floor, temp_per_account, uploading: Arc::default(), importing: Arc::default() }
    }

    /// Free bytes on the blob store's file system (unknown: no limit is applied).
    pub fn free_space(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    fn check_floor(&self, incoming: u64) -> Result<(), QuotaError> {
        match self.free_space() {
            Some(free) if free < self.floor.saturating_add(incoming) => Err(QuotaError::DiskFull),
            _ => Ok(()),
        }
    }

    /// Room for an upload of up to `bytes` by `did`, held until the reservation is dropped
    /// (by then the upload is a stored temporary blob, or gone). The room is taken before the
    /// stored uploads are counted ([`UploadReservation::admit`]): an upload finishing meanwhile
    /// is then counted in flight, or stored, or both (too much, never too little), and uploads
    /// starting meanwhile see this one.
    pub fn hold_upload(&self, did: &Did, bytes: u64) -> UploadReservation {
        let in_flight = {
            let mut uploading = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
            let held = uploading.entry(did.clone()).or_default();
            let before = *held;
            *held += bytes;
            before
        };
        UploadReservation { did: did.clone(), bytes, in_flight, uploading: self.uploading.clone() }
    }

    /// Leave to stage an import of up to `bytes` for `did`: one at a time per account.
    pub fn start_import(&self, did: &Did, bytes: u64) -> Result<ImportReservation, QuotaError> {
        self.check_floor(bytes)?;
        let mut importing = self.importing.lock().unwrap_or_else(|p| p.into_inner());
        if !importing.insert(did.clone()) {
            return Err(QuotaError::ImportRunning);
        }
        Ok(ImportReservation { did: did.clone(), importing: self.importing.clone() })
    }
}

pub struct UploadReservation {
    did: Did,
    bytes: u64,
    /// What the account's other uploads held when this one took its room.
    in_flight: u64,
    uploading: Arc<Mutex<HashMap<Did, u64>>>,
}

impl UploadReservation {
    /// Whether the upload fits on the disk, and in `quota` beside `stored`, the bytes of the
    /// account's temporary blobs counted after the room was taken.
    pub fn admit(&self, quota: &StorageQuota, stored: u64) -> Result<(), QuotaError> {
        quota.check_floor(self.bytes)?;
        let limit = quota.temp_per_account;
        match stored.saturating_add(self.in_flight).saturating_add(self.bytes) > limit {
            true => Err(QuotaError::OverQuota(limit)),
            false => Ok(()),
        }
    }
}

impl Drop for UploadReservation {
    fn drop(&mut self) {
        let mut uploading = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = uploading.get_mut(&self.did) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                uploading.remove(&self.did);
            }
        }
    }
}

pub struct ImportReservation {
    did: Did,
    importing: Arc<Mutex<HashSet<Did>>>,
}

impl Drop for ImportReservation {
    fn drop(&mut self) {
        self.importing.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.did);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_stages_one_import_at_a_time() {
        let quota = StorageQuota::new(std::env::temp_dir(), 0, 1);
        let did: Did = "did:plc:importer00000000000000000".parse().expect("did");
        let first = quota.start_import(&did, 10).expect("first");
        assert!(matches!(quota.start_import(&did, 10), Err(QuotaError::ImportRunning)));
        let other: Did = "did:plc:another000000000000000000".parse().expect("did");
        assert!(quota.start_import(&other, 10).is_ok(), "another account's import is its own");
        drop(first);
        assert!(quota.start_import(&did, 10).is_ok(), "free again once the first ends");
    }

    #[test]
    fn uploads_in_flight_and_stored_share_the_quota() {
        let quota = StorageQuota::new(std::env::temp_dir(), 0, 100);
        let did: Did = "did:plc:uploader00000000000000000".parse().expect("did");
        let first = quota.hold_upload(&did, 60);
        assert!(first.admit(&quota, 40).is_ok(), "60 in this upload and 40 stored fill the quota exactly");
        assert!(matches!(first.admit(&quota, 41), Err(QuotaError::OverQuota(100))));
        let second = quota.hold_upload(&did, 30);
        assert!(matches!(second.admit(&quota, 20), Err(QuotaError::OverQuota(100))), "the first is in flight");
        drop(first);
        let third = quota.hold_upload(&did, 30);
        assert!(third.admit(&quota, 40).is_ok(), "the first's room went with it; the second's 30 remain");
        assert!(matches!(third.admit(&quota, 41), Err(QuotaError::OverQuota(100))));
    }
}
