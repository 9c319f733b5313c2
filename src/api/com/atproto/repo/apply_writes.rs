//! `com.atproto.repo.applyWrites`: up to 200 creates, updates and deletes, all in one commit
//! or none.

use std::sync::Arc;

use aurora_generated::com::atproto::repo::apply_writes::{
    CreateResult, DeleteResult, Error, Input, InputWritesItem, Output, OutputResultsItem, UpdateResult,
};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{XrpcError, XrpcResult};

use aurora_atproto::permission::RepoAction;

use super::{commit_meta, own_repo, parse_cid, permit_write, write_error};
use crate::api::request_json;
use crate::context::AppContext;
use crate::repo::writer::{self, Write, WriteOutcome};

/// The most writes one call may carry (the lexicon's own limit).
const MAX_WRITES: usize = 200;

#[derive(Clone, Copy)]
enum Kind {
    Create,
    Update,
    Delete,
}

pub async fn handle(ctx: &Arc<AppContext>, auth: Access, input: Input) -> XrpcResult<Output> {
    let did = own_repo(ctx, &auth, &input.repo).await?;
    if input.writes.len() > MAX_WRITES {
        return Err(XrpcError::invalid_request(format!("Too many writes. Max: {MAX_WRITES}")));
    }
    permit_writes(&auth, &input.writes)?;
    let swap_commit = input.swap_commit.as_ref().map(parse_cid).transpose()?;
    let (kinds, writes): (Vec<Kind>, Vec<Write>) = input
        .writes
        .into_iter()
        .map(|w| {
            Ok(match w {
                InputWritesItem::Create(c) => {
                    let record = request_json(c.value)?;
                    (Kind::Create, Write::Create { collection: c.collection, rkey: c.rkey, record })
                }
                InputWritesItem::Update(u) => {
                    let record = request_json(u.value)?;
                    (Kind::Update, Write::Update { collection: u.collection, rkey: u.rkey, record })
                }
                InputWritesItem::Delete(d) => (
                    Kind::Delete,
                    Write::Delete { collection: d.collection, rkey: d.rkey, swap_record: None, must_exist: true },
                ),
            })
        })
        .collect::<XrpcResult<Vec<_>>>()?
        .into_iter()
        .unzip();
    let Some(committed) = writer::apply(ctx, &did, writes, input.validate, swap_commit)
        .await
        .map_err(|e| write_error(e, |m| Error::InvalidSwap(m).into()))?
    else {
        return Ok(Output { commit: None, results: Some(Vec::new()), extra: Default::default() });
    };
    let results = kinds
        .iter()
        .zip(&committed.outcomes)
        .map(|(kind, outcome)| result(*kind, outcome))
        .collect::<XrpcResult<Vec<_>>>()?;
    Ok(Output { commit: Some(commit_meta(&committed)), results: Some(results), extra: Default::default() })
}

/// Every collection and action the batch writes must be allowed: creates first, then updates,
/// then deletes, each collection once, the first refusal answering.
fn permit_writes(auth: &Access, writes: &[InputWritesItem]) -> XrpcResult<()> {
    for action in RepoAction::ALL {
        let mut seen = Vec::new();
        for write in writes {
            let collection = match (write, action) {
                (InputWritesItem::Create(c), RepoAction::Create) => &c.collection,
                (InputWritesItem::Update(u), RepoAction::Update) => &u.collection,
                (InputWritesItem::Delete(d), RepoAction::Delete) => &d.collection,
                _ => continue,
            };
            if !seen.contains(&collection) {
                seen.push(collection);
                permit_write(auth, collection, action)?;
            }
        }
    }
    Ok(())
}

fn result(kind: Kind, outcome: &WriteOutcome) -> XrpcResult<OutputResultsItem> {
    let written = || -> XrpcResult<_> {
        let cid = outcome.cid.ok_or_else(|| XrpcError::internal("a write produced no record"))?;
        Ok((outcome.uri.clone(), cid.into(), outcome.validation_status.map(|s| s.as_str())))
    };
    Ok(match kind {
        Kind::Create => {
            let (uri, cid, validation_status) = written()?;
            let validation_status = validation_status.map(Into::into);
            OutputResultsItem::CreateResult(Box::new(CreateResult {
                uri,
                cid,
                validation_status,
                extra: Default::default(),
            }))
        }
        Kind::Update => {
            let (uri, cid, validation_status) = written()?;
            let validation_status = validation_status.map(Into::into);
            OutputResultsItem::UpdateResult(Box::new(UpdateResult {
                uri,
                cid,
                validation_status,
                extra: Default::default(),
            }))
        }
        Kind::Delete => OutputResultsItem::DeleteResult(Box::new(DeleteResult { extra: Default::default() })),
    })
}
