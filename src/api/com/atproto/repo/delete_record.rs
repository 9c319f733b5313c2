//! `com.atproto.repo.deleteRecord`: removes one record, in a commit of its own; deleting a
//! record that is not there commits nothing.

use std::sync::Arc;

use aurora_generated::com::atproto::repo::delete_record::{Error, Input, Output};
use aurora_xrpc::auth::Access;
use aurora_xrpc::XrpcResult;

use aurora_atproto::permission::RepoAction;

use super::{commit_meta, own_repo, parse_cid, permit_write, write_error};
use crate::context::AppContext;
use crate::repo::writer::{self, Write};

pub async fn handle(ctx: &Arc<AppContext>, auth: Access, input: Input) -> XrpcResult<Output> {
    let did = own_repo(ctx, &auth, &input.repo).await?;
    permit_write(&auth, &input.collection, RepoAction::Delete)?;
    let swap_commit = input.swap_commit.as_ref().map(parse_cid).transpose()?;
    let swap_record = input.swap_record.as_ref().map(parse_cid).transpose()?;
    let write = Write::Delete { collection: input.collection, rkey: input.rkey, swap_record, must_exist: false };
    let committed = writer::apply(ctx, &did, vec![write], None, swap_commit)
        .await
        .map_err(|e| write_error(e, |m| Error::InvalidSwap(m).into()))?;
    Ok(Output { commit: committed.as_ref().map(commit_meta), extra: Default::default() })
}
