//! Repository exports for `com.atproto.sync.getRepo`: every stored block of the repository
//! (or those written after a rev), read by one streaming query inside a read snapshot, so the
//! CAR is consistent with its root even while commits land, and memory stays bounded by the
//! output pipe whatever the repository's size.
//!
//! The block table holds exactly the current repository (each commit deletes the blocks it
//! no longer needs), so the CAR needs no tree walk: blocks come out in CID order, as the
//! reference PDS writes them.

use cid::Cid;
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IsolationLevel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::io::AsyncWrite;

use aurora_atproto::car::{CarError, CarWriter};

use crate::db::entities::{repo_block, repo_root};
use aurora_atproto::syntax::Did;

/// Blocks read per query: few round trips, bounded memory.
const PAGE: u64 = 1000;

/// A repository as of one moment: its root and a read transaction that sees its blocks.
pub struct Snapshot {
    txn: DatabaseTransaction,
    did: Did,
    pub root: repo_root::Model,
}

/// Opens a snapshot of `did`'s repository, or `None` when it has no root.
pub async fn snapshot(db: &DatabaseConnection, did: &Did) -> Result<Option<Snapshot>, DbErr> {
    // PostgreSQL's default isolation gives each statement its own snapshot; the root and the
    // blocks must come from the same one. SQLite's read transaction is a snapshot already.
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?
        }
        _ => db.begin().await?,
    };
    let Some(root) = repo_root::Entity::find_by_id(did.clone()).one(&txn).await? else { return Ok(None) };
    Ok(Some(Snapshot { txn, did: did.clone(), root }))
}

impl Snapshot {
    /// The commit CID this snapshot is at.
    pub fn commit(&self) -> Result<Cid, DbErr> {
        Cid::try_from(self.root.cid.as_str()).map_err(|e| DbErr::Custom(format!("bad root CID: {e}")))
    }

    /// Writes the repository as a CAR rooted at its commit: all of it, or with `since` only
    /// the blocks written by later revisions (which include the current commit).
    pub async fn write_car<W: AsyncWrite + Send + Unpin>(self, since: Option<&str>, writer: W) -> Result<W, CarError> {
        let commit = self.commit().map_err(|e| CarError::Malformed(e.to_string()))?;
        let mut car = CarWriter::new(writer, commit).await?;
        let backend = |e: DbErr| CarError::Io(std::io::Error::other(e));
        let mut after: Option<String> = None;
        loop {
            let mut query = repo_block::Entity::find()
                .select_only()
                .columns([repo_block::Column::Cid, repo_block::Column::Content])
                .filter(repo_block::Column::Did.eq(self.did.as_str()))
                .order_by_asc(repo_block::Column::Cid)
                .limit(PAGE);
            if let Some(since) = since {
                query = query.filter(repo_block::Column::Rev.gt(since));
            }
            if let Some(after) = &after {
                query = query.filter(repo_block::Column::Cid.gt(after.as_str()));
            }
            let rows = query.into_tuple::<(String, Vec<u8>)>().all(&self.txn).await.map_err(backend)?;
            let full = rows.len() as u64 == PAGE;
            for (cid, content) in rows {
                let parsed =
                    Cid::try_from(cid.as_str()).map_err(|e| CarError::Malformed(format!("stored CID {cid}: {e}")))?;
                car.write_block(parsed, &content).await?;
                after = Some(cid);
            }
            if !full {
                break;
            }
        }
        let writer = car.finish().await?;
        // Read only: ending it either way is the same.
        let _ = self.txn.commit().await;
        Ok(writer)
    }
}
