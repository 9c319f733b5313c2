//! `aurora-locus blobs migrate --to s3|disk`: copies every stored blob (quarantined ones into
//! quarantine) from the configured disk directory to the S3 bucket, or back. Each copy is
//! streamed, and the bytes that arrive are hashed and checked against the blob's CID before the
//! copy is put in place. A blob the target already holds is read back and checked the same
//! way, so an interrupted run is simply run again: it picks up where it stopped, and a second
//! run after stopping the server copies only what changed since the first.

use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{BlobError, BlobStore, Blobs, ByteStream, Digesting};
use crate::db::entities::blob;

/// Copies running at once: the store's latency, not its bandwidth, bounds a copy of many small
/// blobs.
const PARALLEL: usize = 8;
/// Blob rows read per query.
const PAGE: u64 = 500;

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub blobs: u64,
    /// Copied in this run.
    pub copied: u64,
    pub bytes_copied: u64,
    /// Already in the target, read back and checked.
    pub present: u64,
    pub problems: Vec<String>,
}

enum Outcome {
    Copied(u64),
    Present,
    Problem(String),
}

/// Copies every permanent blob the database lists from `from` to `to`; `progress` is called
/// once per blob done.
pub async fn migrate(
    db: &DatabaseConnection,
    from: &Blobs,
    to: &Blobs,
    progress: &(dyn Fn() + Sync),
) -> Result<Report, sea_orm::DbErr> {
    let mut report = Report::default();
    let mut after: Option<(String, String)> = None;
    loop {
        let mut query = blob::Entity::find()
            .filter(blob::Column::TempKey.is_null())
            .order_by_asc(blob::Column::Did)
            .order_by_asc(blob::Column::Cid)
            .limit(PAGE);
        if let Some((did, cid)) = &after {
            query = query.filter(
                sea_orm::Condition::any().add(blob::Column::Did.gt(did.as_str())).add(
                    sea_orm::Condition::all()
                        .add(blob::Column::Did.eq(did.as_str()))
                        .add(blob::Column::Cid.gt(cid.as_str())),
                ),
            );
        }
        let rows = query.all(db).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.did.to_string(), last.cid.to_string()));
        let outcomes: Vec<Outcome> = futures_util::stream::iter(rows.iter())
            .map(|row| async move {
                let outcome = copy_one(from, to, row)
                    .await
                    .unwrap_or_else(|e| Outcome::Problem(format!("blob {} of {}: {e}", row.cid, row.did)));
                progress();
                outcome
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for outcome in outcomes {
            report.blobs += 1;
            match outcome {
                Outcome::Copied(bytes) => {
                    report.copied += 1;
                    report.bytes_copied += bytes;
                }
                Outcome::Present => report.present += 1,
                Outcome::Problem(problem) => report.problems.push(problem),
            }
        }
    }
    Ok(report)
}

/// How many blobs [`migrate`] will go through.
pub async fn count(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    blob::Entity::find().filter(blob::Column::TempKey.is_null()).count(db).await
}

async fn copy_one(from: &Blobs, to: &Blobs, row: &blob::Model) -> Result<Outcome, BlobError> {
    let cid = row.cid.to_cid().map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?;
    let did = &row.did;
    let quarantined = row.takedown_ref.is_some();
    // Already there: checked against its CID, and copied again only if it does not match.
    let there = if quarantined { to.get_quarantined(did, &cid).await? } else { to.get(did, &cid, None).await? };
    if let Some(bytes) = there {
        if hash_of(bytes).await? == cid {
            return Ok(Outcome::Present);
        }
        to.delete(did, &cid).await?;
    }
    let source = match from.get(did, &cid, None).await? {
        Some(bytes) => bytes,
        None => match from.get_quarantined(did, &cid).await? {
            Some(bytes) => bytes,
            None => return Ok(Outcome::Problem(format!("blob {cid} of {did}: missing from the source store"))),
        },
    };
    let temp = to.put_temp(source, u64::MAX).await?;
    if temp.cid != cid {
        to.delete_temp(&temp.key).await?;
        return Ok(Outcome::Problem(format!("blob {cid} of {did}: the source's bytes hash to {}", temp.cid)));
    }
    to.make_permanent(&temp.key, did, &cid).await?;
    if quarantined {
        to.quarantine(did, &cid).await?;
    }
    Ok(Outcome::Copied(temp.size))
}

/// The raw-codec CID of a stream's bytes.
pub async fn hash_of(mut bytes: ByteStream) -> Result<cid::Cid, BlobError> {
    let mut digest = Digesting::new(u64::MAX);
    while let Some(chunk) = bytes.try_next().await? {
        digest.update(&chunk)?;
    }
    Ok(digest.finish().0)
}
