//! One-time values that must not be accepted twice.
//!
//! DPoP proof ids are many (one per request) and only acceptable for a few minutes, so they are
//! remembered in memory, in buckets of ten seconds dropped as they expire; a restart loses them,
//! but also invalidates every nonce a remembered proof could carry (see `nonce`). Replicas share
//! them through Redis when one is configured (`SET … NX` with the proof's remaining lifetime),
//! so a proof used at one replica is refused at every other; without Redis, or while it is
//! down, each replica still refuses what it has seen itself. Client assertion ids and PKCE
//! challenges are few and longer-lived: they go to the database.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::db::entities::oauth_replay;

const BUCKET_SECS: i64 = 10;

/// Proof ids seen recently, by the ten seconds they expire in; in Redis too, when configured.
#[derive(Default)]
pub struct RecentIds {
    buckets: Mutex<VecDeque<(i64, HashSet<[u8; 16]>)>>,
    shared: Option<crate::scratch::Scratch>,
}

impl RecentIds {
    /// Shared with the other replicas through the Redis at `address`.
    pub fn shared(address: &str) -> Result<RecentIds, String> {
        let scratch = crate::scratch::Scratch::new(address, "DPoP proofs are checked for reuse on this replica only")?;
        Ok(RecentIds { buckets: Mutex::default(), shared: Some(scratch) })
    }

    /// Remembers `id` until `expires_at`; false when this replica or (through Redis) another
    /// one already saw it.
    pub async fn first_use(&self, id: &str, expires_at: i64, now: i64) -> bool {
        if !self.first_use_here(id, expires_at, now) {
            return false;
        }
        let Some(scratch) = &self.shared else { return true };
        let digest = hex::encode(&Sha256::digest(id.as_bytes())[..16]);
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(format!("dpop:{digest}")).arg(1).arg("EX").arg((expires_at - now).max(1)).arg("NX");
        // `SET … NX` answers nil when the key was there: another replica took the proof.
        let answer: Option<(Option<String>,)> = scratch.query(&pipe).await;
        !matches!(answer, Some((None,)))
    }

    /// [`RecentIds::first_use`] in this replica's memory.
    fn first_use_here(&self, id: &str, expires_at: i64, now: i64) -> bool {
        let digest: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while buckets.front().is_some_and(|(end, _)| *end < now) {
            buckets.pop_front();
        }
        if buckets.iter().any(|(_, ids)| ids.contains(&key)) {
            return false;
        }
        let end = (expires_at.div_euclid(BUCKET_SECS) + 1) * BUCKET_SECS;
        match buckets.iter_mut().find(|(bucket_end, _)| *bucket_end == end) {
            Some((_, ids)) => {
                ids.insert(key);
            }
            None => {
                let at = buckets.iter().position(|(bucket_end, _)| *bucket_end > end).unwrap_or(buckets.len());
                buckets.insert(at, (end, HashSet::from([key])));
            }
        }
        true
    }
}

/// Records `namespace:value` until `expires_at`; false when it was recorded before and has not
/// expired.
pub async fn first_use_stored<C: ConnectionTrait>(
    conn: &C,
    namespace: &str,
    value: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, DbErr> {
    let key = format!("{namespace}:{value}");
    oauth_replay::Entity::delete_many().filter(oauth_replay::Column::ExpiresAt.lt(now)).exec(conn).await?;
    let row = oauth_replay::ActiveModel { key: Set(key), expires_at: Set(expires_at) };
    let inserted = oauth_replay::Entity::insert(row)
        .on_conflict(OnConflict::column(oauth_replay::Column::Key).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_refused_until_it_expires() {
        let ids = RecentIds::default();
        assert!(ids.first_use_here("a", 1_200, 1_000));
        assert!(!ids.first_use_here("a", 1_200, 1_100));
        assert!(ids.first_use_here("b", 1_050, 1_100), "another id");
        assert!(ids.first_use_here("a", 1_500, 1_300), "forgotten once expired");
    }
}
