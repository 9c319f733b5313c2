//! `com.atproto.repo.getRecord`: one record of an active account, from the record index.

use aurora_generated::com::atproto::repo::get_record::{Error, Output, Params};
use aurora_xrpc::XrpcResult;

use super::repo_not_found;
use crate::api::internal;
use crate::context::AppContext;
use crate::repo::records::{self, Lookup};

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let (did, record) =
        match records::find(&ctx.db, &params.repo, &params.collection, &params.rkey).await.map_err(internal)? {
            Lookup::Found { did, record } => (did, record),
            Lookup::NoRepo | Lookup::Unavailable => return Err(repo_not_found(params.repo.as_str())),
        };
    let wanted = |cid: &str| params.cid.as_ref().is_none_or(|c| c.as_str() == cid);
    let Some(record) = record.filter(|r| wanted(&r.cid)) else {
        let uri = format!("at://{did}/{}/{}", params.collection, params.rkey);
        return Err(Error::RecordNotFound(Some(format!("Could not locate record: {uri}"))).into());
    };
    Ok(Output {
        value: record.value().map_err(internal)?,
        uri: record.uri.parse().map_err(internal)?,
        cid: Some(record.cid.parse().map_err(internal)?),
        extra: Default::default(),
    })
}
