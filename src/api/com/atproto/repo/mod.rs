//! `com.atproto.repo`: records and blobs in the account's own repository. One file per method;
//! the repository's owner is the only writer.

mod apply_writes;
mod create_record;
mod delete_record;
mod describe_repo;
mod get_record;
mod import_repo;
mod list_missing_blobs;
mod list_records;
mod put_record;
mod upload_blob;

use aurora_atproto::permission::{Need, RepoAction};
use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::repo::{self as lex, defs::CommitMeta, Service};
use aurora_xrpc::auth::{Access, Caller};
use aurora_xrpc::codegen::AtIdentifier;
use aurora_xrpc::{RawBody, RequestContext, XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::api::{internal, Api};
use crate::context::AppContext;
use crate::repo::writer::{Committed, WriteError};

impl Service for Api {
    async fn apply_writes(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::apply_writes::Input,
    ) -> XrpcResult<lex::apply_writes::Output> {
        apply_writes::handle(&self.ctx, auth, input).await
    }

    async fn create_record(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::create_record::Input,
    ) -> XrpcResult<lex::create_record::Output> {
        create_record::handle(&self.ctx, auth, input).await
    }

    async fn delete_record(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::delete_record::Input,
    ) -> XrpcResult<lex::delete_record::Output> {
        delete_record::handle(&self.ctx, auth, input).await
    }

    async fn describe_repo(
        &self,
        _ctx: RequestContext,
        params: lex::describe_repo::Params,
    ) -> XrpcResult<lex::describe_repo::Output> {
        describe_repo::handle(&self.ctx, params).await
    }

    async fn get_record(
        &self,
        _ctx: RequestContext,
        params: lex::get_record::Params,
    ) -> XrpcResult<lex::get_record::Output> {
        get_record::handle(&self.ctx, params).await
    }

    async fn import_repo(&self, _ctx: RequestContext, auth: Access, input: RawBody) -> XrpcResult<()> {
        import_repo::handle(&self.ctx, auth, input).await
    }

    async fn list_missing_blobs(
        &self,
        _ctx: RequestContext,
        auth: Access,
        params: lex::list_missing_blobs::Params,
    ) -> XrpcResult<lex::list_missing_blobs::Output> {
        list_missing_blobs::handle(&self.ctx, auth, params).await
    }

    async fn list_records(
        &self,
        _ctx: RequestContext,
        params: lex::list_records::Params,
    ) -> XrpcResult<lex::list_records::Output> {
        list_records::handle(&self.ctx, params).await
    }

    async fn put_record(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::put_record::Input,
    ) -> XrpcResult<lex::put_record::Output> {
        put_record::handle(&self.ctx, auth, input).await
    }

    async fn upload_blob(
        &self,
        _ctx: RequestContext,
        auth: Caller,
        input: RawBody,
    ) -> XrpcResult<lex::upload_blob::Output> {
        upload_blob::handle(&self.ctx, auth, input).await
    }
}

/// The caller's DID, once `repo` is known to name the caller's own repository. The account
/// `repo` names is refused as the reference refuses it (missing, taken down, deactivated), then
/// anyone else's repository. Writing to one's own DID needs no read here: whether the account
/// may write is checked where the commit is stored, in the statement that moves the
/// repository's root (see `repo::batch`), and refused with the same answers.
async fn own_repo(ctx: &AppContext, auth: &Access, repo: &AtIdentifier) -> XrpcResult<Did> {
    if let AtIdentifier::Did(did) = repo {
        if *did == auth.did {
            return Ok(auth.did.clone());
        }
    }
    let named = named(ctx, repo).await?;
    account::status::writable(named.as_ref().map(account::actor_status), false)?;
    match named {
        Some(actor) if actor.did == auth.did => Ok(actor.did),
        _ => Err(XrpcError::auth_required("Authentication Required")),
    }
}

/// A write's failure, answered as the reference answers it; `swap` makes the method's own
/// `InvalidSwap`.
fn write_error(error: WriteError, swap: impl FnOnce(Option<String>) -> XrpcError) -> XrpcError {
    match error {
        WriteError::Swap(message) => swap(Some(message)),
        WriteError::InvalidRecord(_)
        | WriteError::AlreadyExists(_)
        | WriteError::NotFound(_)
        | WriteError::DuplicateWrite(_) => XrpcError::invalid_request(error.to_string()),
        WriteError::BlobNotFound(_) => {
            XrpcError::new(poem::http::StatusCode::BAD_REQUEST, "BlobNotFound", Some(error.to_string()))
        }
        WriteError::Refused(refusal) => refusal.into(),
        WriteError::Moved(cause) | WriteError::Internal(cause) => XrpcError::internal(cause),
    }
}

/// What writing `collection` with `action` needs of an OAuth token (asked after the account
/// checks, as the reference does).
fn permit_write(auth: &Access, collection: &aurora_atproto::syntax::Nsid, action: RepoAction) -> XrpcResult<()> {
    auth.permit(&Need::Repo { collection: collection.as_str(), action })
}

/// A swap CID from a request, which the lexicon only checks for syntax.
fn parse_cid(text: &aurora_xrpc::codegen::CidString) -> XrpcResult<cid::Cid> {
    text.to_cid().map_err(|_| XrpcError::invalid_request(format!("{text} is not a CID")))
}

/// The commit a write made, as the lexicon reports it.
fn commit_meta(committed: &Committed) -> CommitMeta {
    CommitMeta { cid: committed.cid.into(), rev: committed.rev.clone(), extra: Default::default() }
}

fn repo_not_found(repo: &str) -> XrpcError {
    XrpcError::new(poem::http::StatusCode::BAD_REQUEST, "RepoNotFound", Some(format!("Could not find repo: {repo}")))
}

/// The account `repo` names, whatever its status.
async fn named(ctx: &AppContext, repo: &AtIdentifier) -> XrpcResult<Option<crate::db::entities::actor::Model>> {
    let lookup = match repo {
        AtIdentifier::Did(did) => Lookup::Did(did),
        AtIdentifier::Handle(handle) => Lookup::Handle(handle),
    };
    account::find_actor(&ctx.db, lookup).await.map_err(internal)
}
