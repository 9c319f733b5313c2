//! `com.atproto.repo.describeRepo`: an active account's identity and the collections its
//! repository holds.

use aurora_atproto::syntax::{Did, Handle, Nsid};
use aurora_generated::com::atproto::repo::describe_repo::{Output, Params};
use aurora_xrpc::{XrpcError, XrpcResult};

use super::named;
use poem::http::StatusCode;

use crate::account;
use crate::api::internal;
use crate::context::AppContext;
use crate::db::bounded_read;
use crate::sequencer::AccountStatus;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let repo = params.repo.as_str();
    let status = |name: &'static str, message: String| XrpcError::new(StatusCode::BAD_REQUEST, name, Some(message));
    let actor = match named(ctx, &params.repo).await? {
        None => return Err(status("RepoNotFound", format!("Could not find repo for DID: {repo}"))),
        Some(actor) => match account::actor_status(&actor) {
            AccountStatus::Active => actor,
            AccountStatus::Takendown | AccountStatus::Suspended => {
                return Err(status("RepoTakendown", format!("Repo has been takendown: {repo}")))
            }
            _ => return Err(status("RepoDeactivated", format!("Repo has been deactivated: {repo}"))),
        },
    };
    let collections = collections(ctx, &actor.did).await?;
    let did_doc = ctx.resolver.did_doc(&actor.did, false).await.map_err(internal)?;
    let handle = actor.handle.unwrap_or_else(Handle::invalid);
    let handle_is_correct = crate::identity::atproto_handle(&did_doc).as_ref() == Some(&handle);
    Ok(Output {
        handle,
        did: actor.did,
        did_doc: did_doc.into(),
        collections,
        handle_is_correct,
        extra: Default::default(),
    })
}

/// The collections `did`'s repository holds, in order. `DISTINCT` over the record index reads
/// every record of the repository; this walks the index instead, one seek per collection (the
/// next collection after the last one found), so a repository of 100,000 records in a dozen
/// collections costs a dozen seeks.
const COLLECTIONS: &str = "WITH RECURSIVE found(collection) AS ( \
        SELECT (SELECT collection FROM record WHERE did = $1 ORDER BY collection LIMIT 1) \
        UNION ALL \
        SELECT (SELECT r.collection FROM record r WHERE r.did = $1 AND r.collection > found.collection \
            ORDER BY r.collection LIMIT 1) \
        FROM found WHERE found.collection IS NOT NULL \
    ) SELECT collection FROM found WHERE collection IS NOT NULL";

async fn collections(ctx: &AppContext, did: &Did) -> XrpcResult<Vec<Nsid>> {
    let reader = ctx.reader.as_deref();
    let on_reader = |row: &rusqlite::Row<'_>| row.get::<_, String>(0);
    let on_pool = |row: &sea_orm::QueryResult| row.try_get::<String>("", "collection");
    let names = bounded_read(&ctx.db, reader, |_| COLLECTIONS, &[did.as_str().into()], on_reader, on_pool)
        .await
        .map_err(internal)?;
    names
        .iter()
        .map(|name| name.parse().map_err(|_| internal(format!("stored collection {name:?} is malformed"))))
        .collect()
}
