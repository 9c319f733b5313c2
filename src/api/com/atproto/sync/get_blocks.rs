//! `com.atproto.sync.getBlocks`: blocks of a repository by CID, as a CAR without a root.

use cid::Cid;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use aurora_atproto::blockstore::BlockStore;
use aurora_atproto::car::CarWriter;
use aurora_generated::com::atproto::sync::get_blocks::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use super::{available, CAR};
use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::repo_block;
use crate::repo::SqlBlockStore;

/// The most CIDs one request may ask for.
pub const MAX_CIDS: usize = 1000;
/// Blocks read from the database per step of the answer, so that memory holds a few at once.
const STEP: usize = 50;

/// Blocks of a repository by CID, in the order asked for (each once), as a CAR without a root;
/// any missing CID fails the whole request, naming what is missing. The answer is streamed a
/// few blocks at a time.
pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = params.did.clone();
    available(ctx, &did, viewer).await?.map_err(Error::from)?;
    if params.cids.len() > MAX_CIDS {
        return Err(XrpcError::invalid_request(format!("Too many CIDs: at most {MAX_CIDS} per request")));
    }
    let mut cids = Vec::with_capacity(params.cids.len());
    let mut seen = std::collections::HashSet::new();
    for cid in &params.cids {
        let parsed = aurora_atproto::cids::parse(cid.as_str())
            .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {}", cid.as_str())))?;
        if seen.insert(parsed) {
            cids.push(parsed);
        }
    }
    let mut present = std::collections::HashSet::new();
    for chunk in cids.chunks(500) {
        let rows: Vec<String> = repo_block::Entity::find()
            .select_only()
            .column(repo_block::Column::Cid)
            .filter(repo_block::Column::Did.eq(did.as_str()))
            .filter(repo_block::Column::Cid.is_in(chunk.iter().map(Cid::to_string)))
            .into_tuple()
            .all(&ctx.db)
            .await
            .map_err(internal)?;
        present.extend(rows);
    }
    let missing: Vec<String> = cids.iter().map(Cid::to_string).filter(|c| !present.contains(c)).collect();
    if !missing.is_empty() {
        // The reference answers `InvalidRequest`, not the lexicon's `BlockNotFound`.
        return Err(XrpcError::invalid_request(format!("Could not find cids: {}", missing.join(","))));
    }
    let db = ctx.db.clone();
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let written = async {
            let mut car = CarWriter::without_root(writer).await?;
            for step in cids.chunks(STEP) {
                let found = SqlBlockStore::new(&db, &did).get_many(step).await.map_err(std::io::Error::other)?;
                for cid in step {
                    // Gone since it was checked (a commit dropped it): the answer ends short.
                    let block =
                        found.get(cid).ok_or_else(|| std::io::Error::other(format!("block {cid} went away")))?;
                    car.write_block(*cid, block).await?;
                }
            }
            car.finish().await?;
            Ok::<_, aurora_atproto::car::CarError>(())
        };
        if let Err(e) = written.await {
            tracing::debug!(error = %e, "getBlocks answer ended early");
        }
    });
    Ok(RawBody::new(CAR, poem::Body::from_async_read(reader)))
}
