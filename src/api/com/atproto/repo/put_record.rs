//! `com.atproto.repo.putRecord`: creates or replaces one record, in a commit of its own.

use std::sync::Arc;

use aurora_atproto::syntax::AtUri;
use aurora_generated::com::atproto::repo::put_record::{Error, Input, Output};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use aurora_atproto::permission::RepoAction;

use super::{commit_meta, own_repo, parse_cid, permit_write, write_error};
use crate::api::{internal, request_json};
use crate::context::AppContext;
use crate::repo::writer::{self, Write};

pub async fn handle(ctx: &Arc<AppContext>, auth: Access, input: Input) -> XrpcResult<Output> {
    let did = own_repo(ctx, &auth, &input.repo).await?;
    // Whether the record exists is not known yet: a put may be either, so it needs both.
    permit_write(&auth, &input.collection, RepoAction::Create)?;
    permit_write(&auth, &input.collection, RepoAction::Update)?;
    let swap_commit = input.swap_commit.as_ref().map(parse_cid).transpose()?;
    // Absent: no condition; null: the record must not exist yet; a CID: it must be at that CID.
    let swap_record = input.swap_record.as_ref().map(|swap| swap.as_ref().map(parse_cid).transpose()).transpose()?;
    let uri = AtUri::record(&did, &input.collection, &input.rkey);
    let record = request_json(input.record)?;
    let write = Write::Put { collection: input.collection, rkey: input.rkey, record: record.clone(), swap_record };
    match writer::apply(ctx, &did, vec![write], input.validate, swap_commit)
        .await
        .map_err(|e| write_error(e, |m| Error::InvalidSwap(m).into()))?
    {
        Some(committed) => {
            let outcome = &committed.outcomes[0];
            Ok(Output {
                uri: outcome.uri.clone(),
                cid: outcome.cid.ok_or_else(|| XrpcError::internal("a put produced no record"))?.into(),
                commit: Some(commit_meta(&committed)),
                validation_status: outcome.validation_status.map(|s| s.as_str().into()),
                extra: Default::default(),
            })
        }
        // The record already held exactly this value: nothing to commit.
        None => {
            let ipld = aurora_atproto::data::json_to_ipld(&record).map_err(internal)?;
            let (cid, _) = aurora_atproto::data::cid_for_ipld(&ipld).map_err(internal)?;
            Ok(Output { uri, cid: cid.into(), commit: None, validation_status: None, extra: Default::default() })
        }
    }
}
