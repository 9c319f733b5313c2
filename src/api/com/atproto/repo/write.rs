//! Record writes: `createRecord`, `putRecord`, `deleteRecord`, `applyWrites`. Each authorises
//! the repository's owner, then hands the writes to the repository writer as one commit.

use std::sync::Arc;

use cid::Cid;
use poem::http::StatusCode;
use serde::de::DeserializeOwned;

use aurora_generated::com::atproto::repo::{
    apply_writes as aw, create_record as cr, defs::CommitMeta, delete_record as dr, put_record as pr,
};
use aurora_xrpc::codegen::{AtIdentifier, CidString};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::internal;
use crate::context::AppContext;
use crate::repo::writer::{self, Committed, Write};
use crate::sequencer::AccountStatus;

/// The most writes one applyWrites may carry (the lexicon's own limit).
const MAX_WRITES: usize = 200;

/// The caller, who must own `repo`.
async fn owner(ctx: &AppContext, req: &RequestContext, repo: &AtIdentifier) -> XrpcResult<String> {
    let creds = ctx.verifier().standard(req)?;
    let named = match repo.as_str() {
        did if did.starts_with("did:") => did.to_owned(),
        handle => account::find_actor(&ctx.db, Lookup::Handle(handle))
            .await
            .map_err(internal)?
            .map(|a| a.did)
            .unwrap_or_default(),
    };
    if named != creds.did {
        return Err(XrpcError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("Cannot write to another account's repository".into()),
        ));
    }
    // Whether the account may write is checked where the commit is stored, in the same
    // statement that moves the repository's root (see `repo::batch`).
    Ok(creds.did)
}

/// Refuses accounts that are deactivated, taken down or gone.
pub async fn require_active(ctx: &AppContext, did: &str) -> XrpcResult<()> {
    let found = account::find_actor(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    match refusal(found.as_ref().map(account::actor_status), false) {
        Some(refused) => Err(refused),
        None => Ok(()),
    }
}

/// Why an account of `status` (`None`: there is none) may not change its repository, if it
/// may not; a deactivated one may when `deactivated_may` (an account moving here imports its
/// repository before it is activated).
pub fn refusal(status: Option<AccountStatus>, deactivated_may: bool) -> Option<XrpcError> {
    match status {
        Some(AccountStatus::Active) => None,
        Some(AccountStatus::Deactivated) if deactivated_may => None,
        Some(AccountStatus::Takendown) => Some(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AccountTakedown",
            Some("Account has been taken down".into()),
        )),
        Some(_) => {
            Some(XrpcError::new(StatusCode::UNAUTHORIZED, "AccountDeactivated", Some("Account is deactivated".into())))
        }
        None => Some(XrpcError::new(StatusCode::FORBIDDEN, "AccountNotFound", Some("Account not found".into()))),
    }
}

fn cid(text: &CidString) -> XrpcResult<Cid> {
    text.as_str().parse().map_err(|_| XrpcError::invalid_request(format!("{text} is not a CID")))
}

fn wire<T: DeserializeOwned>(value: impl serde::Serialize) -> XrpcResult<T> {
    serde_json::to_value(value).and_then(serde_json::from_value).map_err(internal)
}

fn meta(committed: &Committed) -> XrpcResult<CommitMeta> {
    Ok(CommitMeta { cid: wire(committed.cid.to_string())?, rev: wire(&committed.rev)?, extra: Default::default() })
}

pub async fn create_record(ctx: &Arc<AppContext>, req: &RequestContext, input: cr::Input) -> XrpcResult<cr::Output> {
    let did = owner(ctx, req, &input.repo).await?;
    let swap_commit = input.swap_commit.as_ref().map(cid).transpose()?;
    let write = Write::Create { collection: input.collection, rkey: input.rkey, record: input.record };
    let committed = writer::apply(ctx, &did, vec![write], input.validate, swap_commit)
        .await?
        .ok_or_else(|| XrpcError::internal("a create produced no commit"))?;
    let outcome = &committed.outcomes[0];
    Ok(cr::Output {
        uri: wire(&outcome.uri)?,
        cid: wire(outcome.cid.map(|c| c.to_string()))?,
        commit: Some(meta(&committed)?),
        validation_status: outcome.validation_status.map(wire).transpose()?,
        extra: Default::default(),
    })
}

pub async fn put_record(ctx: &Arc<AppContext>, req: &RequestContext, input: pr::Input) -> XrpcResult<pr::Output> {
    let did = owner(ctx, req, &input.repo).await?;
    let swap_commit = input.swap_commit.as_ref().map(cid).transpose()?;
    let swap_record = input.swap_record.as_ref().map(cid).transpose()?.map(Some);
    let uri = format!("at://{did}/{}/{}", input.collection, input.rkey);
    let write =
        Write::Put { collection: input.collection, rkey: input.rkey, record: input.record.clone(), swap_record };
    match writer::apply(ctx, &did, vec![write], input.validate, swap_commit).await? {
        Some(committed) => {
            let outcome = &committed.outcomes[0];
            Ok(pr::Output {
                uri: wire(&outcome.uri)?,
                cid: wire(outcome.cid.map(|c| c.to_string()))?,
                commit: Some(meta(&committed)?),
                validation_status: outcome.validation_status.map(wire).transpose()?,
                extra: Default::default(),
            })
        }
        // The record already held exactly this value: nothing to commit.
        None => {
            let ipld = aurora_atproto::data::json_to_ipld(&input.record).map_err(internal)?;
            let (cid, _) = aurora_atproto::data::cid_for_ipld(&ipld).map_err(internal)?;
            Ok(pr::Output {
                uri: wire(&uri)?,
                cid: wire(cid.to_string())?,
                commit: None,
                validation_status: None,
                extra: Default::default(),
            })
        }
    }
}

pub async fn delete_record(ctx: &Arc<AppContext>, req: &RequestContext, input: dr::Input) -> XrpcResult<dr::Output> {
    let did = owner(ctx, req, &input.repo).await?;
    let swap_commit = input.swap_commit.as_ref().map(cid).transpose()?;
    let swap_record = input.swap_record.as_ref().map(cid).transpose()?;
    let write = Write::Delete { collection: input.collection, rkey: input.rkey, swap_record, must_exist: false };
    let committed = writer::apply(ctx, &did, vec![write], None, swap_commit).await?;
    Ok(dr::Output { commit: committed.as_ref().map(meta).transpose()?, extra: Default::default() })
}

pub async fn apply_writes(ctx: &Arc<AppContext>, req: &RequestContext, input: aw::Input) -> XrpcResult<aw::Output> {
    let did = owner(ctx, req, &input.repo).await?;
    if input.writes.len() > MAX_WRITES {
        return Err(XrpcError::invalid_request(format!("Too many writes. Max: {MAX_WRITES}")));
    }
    let swap_commit = input.swap_commit.as_ref().map(cid).transpose()?;
    let mut kinds = Vec::new();
    let writes = input
        .writes
        .into_iter()
        .map(|w| match w {
            aw::InputWritesItem::Create(c) => {
                kinds.push(0);
                Ok(Write::Create { collection: c.collection, rkey: c.rkey, record: c.value })
            }
            aw::InputWritesItem::Update(u) => {
                kinds.push(1);
                Ok(Write::Update { collection: u.collection, rkey: u.rkey, record: u.value })
            }
            aw::InputWritesItem::Delete(d) => {
                kinds.push(2);
                Ok(Write::Delete { collection: d.collection, rkey: d.rkey, swap_record: None, must_exist: true })
            }
        })
        .collect::<XrpcResult<Vec<_>>>()?;
    let Some(committed) = writer::apply(ctx, &did, writes, input.validate, swap_commit).await? else {
        return Ok(aw::Output { commit: None, results: Some(Vec::new()), extra: Default::default() });
    };
    let mut results = Vec::new();
    for (kind, outcome) in kinds.iter().zip(&committed.outcomes) {
        let status = outcome.validation_status;
        results.push(match kind {
            0 => aw::OutputResultsItem::CreateResult(Box::new(aw::CreateResult {
                uri: wire(&outcome.uri)?,
                cid: wire(outcome.cid.map(|c| c.to_string()))?,
                validation_status: status.map(wire).transpose()?,
                extra: Default::default(),
            })),
            1 => aw::OutputResultsItem::UpdateResult(Box::new(aw::UpdateResult {
                uri: wire(&outcome.uri)?,
                cid: wire(outcome.cid.map(|c| c.to_string()))?,
                validation_status: status.map(wire).transpose()?,
                extra: Default::default(),
            })),
            _ => aw::OutputResultsItem::DeleteResult(Box::new(aw::DeleteResult { extra: Default::default() })),
        });
    }
    Ok(aw::Output { commit: Some(meta(&committed)?), results: Some(results), extra: Default::default() })
}
