//! What an account may keep on disk besides its repository and its referenced blobs: uploads
//! no record references yet (temporary blobs) and a repository import being staged. Both are
//! bounded per account, counting uploads still in flight, and the server refuses new ones
//! when the disk's free space falls below a floor, instead of filling it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use aurora_atproto::syntax::Did;
use aurora_xrpc::XrpcError;

use crate::db::entities::blob;

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
    #[error(transparent)]
    Db(#[from] DbErr),
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
            QuotaError::Db(e) => XrpcError::internal(e),
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
    /// (by then the upload is a stored temporary blob, or gone).
    pub async fn reserve_upload<C: ConnectionTrait>(
        &self,
        conn: &C,
        did: &Did,
        bytes: u64,
    ) -> Result<UploadReservation, QuotaError> {
        self.check_floor(bytes)?;
        // The room is taken before the stored uploads are counted: an upload finishing
        // meanwhile is then counted in flight, or stored, or both (too much, never too little),
        // and uploads starting meanwhile see this one.
        let in_flight = {
            let mut uploading = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
            let held = uploading.entry(did.clone()).or_default();
            let before = *held;
            *held += bytes;
            before
        };
        let reservation = UploadReservation { did: did.clone(), bytes, uploading: self.uploading.clone() };
        let stored: Option<i64> = blob::Entity::find()
            .select_only()
            // PostgreSQL sums bigints as numeric.
            .expr(Expr::col(blob::Column::Size).sum().cast_as(Alias::new("BIGINT")))
            .filter(blob::Column::Did.eq(did))
            .filter(blob::Column::TempKey.is_not_null())
            .into_tuple::<Option<i64>>()
            .one(conn)
            .await?
            .flatten();
        let stored = stored.unwrap_or(0).max(0) as u64;
        if stored + in_flight + bytes > self.temp_per_account {
            return Err(QuotaError::OverQuota(self.temp_per_account));
        }
        Ok(reservation)
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
    uploading: Arc<Mutex<HashMap<Did, u64>>>,
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
}
