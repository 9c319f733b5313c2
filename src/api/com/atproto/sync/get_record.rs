//! `com.atproto.sync.getRecord`: a record with the commit and the MST nodes that prove it is
//! (or is not) in the repository, as a CAR.

use cid::Cid;

use aurora_atproto::car::car_bytes;
use aurora_atproto::repo::Repo;
use aurora_generated::com::atproto::sync::get_record::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcResult};

use super::{available, root, CAR};
use crate::api::internal;
use crate::context::AppContext;
use crate::repo::SqlBlockStore;

/// A record with the commit and the MST nodes that prove it is (or is not) in the repository.
pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = &params.did;
    available(ctx, did, viewer).await?.map_err(Error::from)?;
    let root = root(ctx, did).await?.map_err(Error::from)?;
    let commit: Cid = root.cid.to_cid().map_err(internal)?;
    let repo = Repo::load(SqlBlockStore::new(&ctx.db, did), commit).await.map_err(internal)?;
    let mut blocks = repo.record_proof(&params.collection, &params.rkey).await.map_err(internal)?;
    let (commit_cid, commit_bytes) = repo.commit().to_block();
    blocks.insert(commit_cid, commit_bytes);
    let bytes = car_bytes(commit, blocks).await.map_err(internal)?;
    Ok(RawBody::new(CAR, bytes))
}
