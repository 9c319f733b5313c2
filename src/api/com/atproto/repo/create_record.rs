//! `com.atproto.repo.createRecord`: one new record, in a commit of its own.

use std::sync::Arc;

use aurora_generated::com::atproto::repo::create_record::{Error, Input, Output};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use aurora_atproto::permission::RepoAction;

use super::{commit_meta, own_repo, parse_cid, permit_write, write_error};
use crate::api::request_json;
use crate::context::AppContext;
use crate::repo::writer::{self, Write};

pub async fn handle(ctx: &Arc<AppContext>, auth: Access, input: Input) -> XrpcResult<Output> {
    let did = own_repo(ctx, &auth, &input.repo).await?;
    permit_write(&auth, &input.collection, RepoAction::Create)?;
    let swap_commit = input.swap_commit.as_ref().map(parse_cid).transpose()?;
    let write = Write::Create { collection: input.collection, rkey: input.rkey, record: request_json(input.record)? };
    let committed = writer::apply(ctx, &did, vec![write], input.validate, swap_commit)
        .await
        .map_err(|e| write_error(e, |m| Error::InvalidSwap(m).into()))?
        .ok_or_else(|| XrpcError::internal("a create produced no commit"))?;
    let outcome = &committed.outcomes[0];
    Ok(Output {
        uri: outcome.uri.clone(),
        cid: outcome.cid.ok_or_else(|| XrpcError::internal("a create produced no record"))?.into(),
        commit: Some(commit_meta(&committed)),
        validation_status: outcome.validation_status.map(|s| s.as_str().into()),
        extra: Default::default(),
    })
}
