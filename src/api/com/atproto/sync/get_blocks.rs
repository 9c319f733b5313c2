//! `com.atproto.sync.getBlocks`: blocks of a repository by CID, as a CAR without a root.

use cid::Cid;

use aurora_atproto::blockstore::BlockStore;
use aurora_atproto::car::car_bytes_without_root;
use aurora_generated::com::atproto::sync::get_blocks::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use super::{available, CAR};
use crate::api::internal;
use crate::context::AppContext;
use crate::repo::SqlBlockStore;

/// Blocks of a repository by CID, in the order asked for, as a CAR without a root; any
/// missing CID fails the whole request, naming what is missing.
pub async fn handle(ctx: &AppContext, viewer: Option<&Viewer>, params: Params) -> XrpcResult<RawBody> {
    let did = &params.did;
    available(ctx, did, viewer).await?.map_err(Error::from)?;
    let mut cids = Vec::with_capacity(params.cids.len());
    for cid in &params.cids {
        cids.push(
            Cid::try_from(cid.as_str())
                .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {}", cid.as_str())))?,
        );
    }
    let found = SqlBlockStore::new(&ctx.db, did).get_many(&cids).await.map_err(internal)?;
    let missing: Vec<String> = cids.iter().filter(|c| !found.contains_key(c)).map(Cid::to_string).collect();
    if !missing.is_empty() {
        // The reference answers `InvalidRequest`, not the lexicon's `BlockNotFound`.
        return Err(XrpcError::invalid_request(format!("Could not find cids: {}", missing.join(","))));
    }
    let mut seen = std::collections::HashSet::new();
    let blocks = cids.into_iter().filter(|c| seen.insert(*c)).filter_map(|c| Some((c, found.get(&c)?.clone())));
    let bytes = car_bytes_without_root(blocks).await.map_err(internal)?;
    Ok(RawBody::new(CAR, bytes))
}
