//! `com.atproto.repo.getRecord`: one record of an active account, from the record index.

use aurora_atproto::syntax::{AtUri, CidString};
use aurora_generated::com::atproto::repo::get_record::{Error, Output, Params};
use aurora_xrpc::XrpcResult;

use super::repo_not_found;
use crate::api::internal;
use crate::context::AppContext;
use crate::repo::records::{self, Lookup};

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let (did, record) =
        match records::find(&ctx.db, ctx.reader.as_deref(), &params.repo, &params.collection, &params.rkey)
            .await
            .map_err(internal)?
        {
            Lookup::Found { did, record } => (did, record),
            Lookup::NoRepo | Lookup::Unavailable => return Err(repo_not_found(params.repo.as_str())),
        };
    let wanted = |cid: &CidString| params.cid.as_ref().is_none_or(|c| c == cid);
    let Some(mut record) = record.filter(|r| wanted(&r.cid)) else {
        let uri = AtUri::record(&did, &params.collection, &params.rkey);
        return Err(Error::RecordNotFound(Some(format!("Could not locate record: {uri}"))).into());
    };
    Ok(Output {
        value: record.served_value().map_err(internal)?.into(),
        uri: record.uri,
        cid: Some(record.cid),
        extra: Default::default(),
    })
}
