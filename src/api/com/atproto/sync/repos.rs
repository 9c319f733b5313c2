//! Repository sync reads: the latest commit and status, the list of hosted repositories, whole
//! repositories (or the part since a rev) as streamed CARs, a record with its MST proof, and
//! blobs.

use cid::Cid;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use aurora_atproto::blockstore::BlockStore;
use aurora_atproto::car::{car_bytes, car_bytes_without_root};
use aurora_atproto::repo::Repo;
use aurora_generated::com::atproto::sync::{
    get_blob as gb, get_blocks as gbl, get_latest_commit as glc, get_record as gr, get_repo as grp,
    get_repo_status as grs, list_blobs as lb, list_repos as lr,
};
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use crate::account::{self, Account, Lookup};
use crate::api::internal;
use crate::blobs::BlobStore;
use crate::context::AppContext;
use crate::db::entities::{actor, blob, repo_root};
use crate::repo::SqlBlockStore;
use crate::sequencer::AccountStatus;

const CAR: &str = "application/vnd.ipld.car";

fn wire<T: serde::de::DeserializeOwned>(text: &str) -> XrpcResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(internal)
}

/// The account, refused with the lexicons' repository errors unless it is active.
async fn available(ctx: &AppContext, did: &str) -> XrpcResult<Account> {
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    match found {
        None => Err(XrpcError::declared("RepoNotFound", Some(format!("Could not find repo for DID: {did}")))),
        Some(a) => match a.status() {
            AccountStatus::Active => Ok(a),
            AccountStatus::Takendown => {
                Err(XrpcError::declared("RepoTakendown", Some(format!("Repo has been takendown: {did}"))))
            }
            AccountStatus::Suspended => {
                Err(XrpcError::declared("RepoSuspended", Some(format!("Repo has been suspended: {did}"))))
            }
            _ => Err(XrpcError::declared("RepoDeactivated", Some(format!("Repo has been deactivated: {did}")))),
        },
    }
}

async fn root(ctx: &AppContext, did: &str) -> XrpcResult<repo_root::Model> {
    crate::repo::root(&ctx.db, did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::declared("RepoNotFound", Some(format!("Could not find root for DID: {did}"))))
}

pub async fn latest_commit(ctx: &AppContext, params: glc::Params) -> XrpcResult<glc::Output> {
    available(ctx, params.did.as_str()).await?;
    let root = root(ctx, params.did.as_str()).await?;
    Ok(glc::Output { cid: wire(&root.cid)?, rev: wire(&root.rev)?, extra: Default::default() })
}

pub async fn repo_status(ctx: &AppContext, params: grs::Params) -> XrpcResult<grs::Output> {
    let did = params.did.as_str();
    let found = account::find(&ctx.db, Lookup::Did(did)).await.map_err(internal)?;
    let status = match found {
        Some(found) => found.status(),
        // A deleted account awaiting purge is reported as such until it is gone.
        None if awaiting_purge(ctx, did).await? => AccountStatus::Deleted,
        None => return Err(XrpcError::declared("RepoNotFound", Some(format!("Could not find repo for DID: {did}")))),
    };
    let rev = crate::repo::root(&ctx.db, did).await.map_err(internal)?.map(|r| r.rev);
    Ok(grs::Output {
        did: params.did,
        active: status == AccountStatus::Active,
        status: status.as_str().map(wire).transpose()?,
        rev: match (status, rev) {
            (AccountStatus::Active, Some(rev)) => Some(wire(&rev)?),
            _ => None,
        },
        extra: Default::default(),
    })
}

async fn awaiting_purge(ctx: &AppContext, did: &str) -> XrpcResult<bool> {
    let actor = actor::Entity::find_by_id(did.to_owned()).one(&ctx.db).await.map_err(internal)?;
    Ok(actor.is_some_and(|a| a.deleted_at.is_some()))
}

pub async fn list_repos(ctx: &AppContext, params: lr::Params) -> XrpcResult<lr::Output> {
    let limit = params.limit.clamp(1, 1000) as u64;
    let mut query = repo_root::Entity::find().order_by_asc(repo_root::Column::Did);
    if let Some(cursor) = &params.cursor {
        query = query.filter(repo_root::Column::Did.gt(cursor.as_str()));
    }
    let roots = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    let cursor = (roots.len() as u64 == limit).then(|| roots.last().map(|r| r.did.clone())).flatten();
    let mut repos = Vec::with_capacity(roots.len());
    for root in roots {
        let actor = actor::Entity::find_by_id(root.did.clone()).one(&ctx.db).await.map_err(internal)?;
        let status = match actor {
            Some(a) if a.deleted_at.is_some() => AccountStatus::Deleted,
            Some(a) if a.takedown_ref.is_some() => AccountStatus::Takendown,
            Some(a) if a.deactivated_at.is_some() => AccountStatus::Deactivated,
            _ => AccountStatus::Active,
        };
        repos.push(lr::Repo {
            did: wire(&root.did)?,
            head: wire(&root.cid)?,
            rev: wire(&root.rev)?,
            active: Some(status == AccountStatus::Active),
            status: status.as_str().map(wire).transpose()?,
            extra: Default::default(),
        });
    }
    Ok(lr::Output { repos, cursor, extra: Default::default() })
}

/// The whole repository as a CAR, streamed as it is read (memory stays bounded by the pipe);
/// with `since`, only the blocks written after that rev, plus the current commit.
pub async fn get_repo(ctx: &AppContext, params: grp::Params) -> XrpcResult<RawBody> {
    let did = params.did.as_str().to_owned();
    available(ctx, &did).await?;
    let snapshot = crate::repo::export::snapshot(&ctx.db, &did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::declared("RepoNotFound", Some(format!("Could not find root for DID: {did}"))))?;
    let since = params.since.map(|rev| rev.as_str().to_owned());
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        // Blocks are small; batching their writes keeps the response in large chunks.
        let writer = tokio::io::BufWriter::with_capacity(32 * 1024, writer);
        if let Err(e) = snapshot.write_car(since.as_deref(), writer).await {
            tracing::warn!(did, error = %e, "repository export ended early");
        }
    });
    Ok(RawBody::new(CAR, poem::Body::from_async_read(reader)))
}

/// Blocks of a repository by CID, in the order asked for, as a CAR without a root; any
/// missing CID fails the whole request, naming what is missing.
pub async fn get_blocks(ctx: &AppContext, params: gbl::Params) -> XrpcResult<RawBody> {
    let did = params.did.as_str();
    available(ctx, did).await?;
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
        return Err(XrpcError::declared("BlockNotFound", Some(format!("Could not find cids: {}", missing.join(",")))));
    }
    let mut seen = std::collections::HashSet::new();
    let blocks = cids.into_iter().filter(|c| seen.insert(*c)).filter_map(|c| Some((c, found.get(&c)?.clone())));
    let bytes = car_bytes_without_root(blocks).await.map_err(internal)?;
    Ok(RawBody::new(CAR, bytes))
}

/// A record with the commit and the MST nodes that prove it is (or is not) in the repository.
pub async fn get_record(ctx: &AppContext, params: gr::Params) -> XrpcResult<RawBody> {
    let did = params.did.as_str();
    available(ctx, did).await?;
    let root = root(ctx, did).await?;
    let commit: Cid = root.cid.parse().map_err(internal)?;
    let repo = Repo::load(SqlBlockStore::new(&ctx.db, did), commit).await.map_err(internal)?;
    let mut blocks = repo.record_proof(&params.collection, &params.rkey).await.map_err(internal)?;
    let (commit_cid, commit_bytes) = repo.commit().to_block();
    blocks.insert(commit_cid, commit_bytes);
    let bytes = car_bytes(commit, blocks).await.map_err(internal)?;
    Ok(RawBody::new(CAR, bytes))
}

/// A blob's bytes, with headers that stop a browser from treating it as a page; one byte range
/// if asked for.
pub async fn get_blob(ctx: &AppContext, params: gb::Params, range: Option<&str>) -> XrpcResult<RawBody> {
    let did = params.did.as_str();
    available(ctx, did).await?;
    let not_found = || XrpcError::new(StatusCode::BAD_REQUEST, "BlobNotFound", Some("Blob not found".into()));
    let row = blob::Entity::find()
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::Cid.eq(params.cid.as_str()))
        .filter(blob::Column::TempKey.is_null())
        .filter(blob::Column::TakedownRef.is_null())
        .one(&ctx.db)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let cid: Cid = row.cid.parse().map_err(internal)?;
    let path = ctx.blobs.path(did, &cid).await.map_err(internal)?.ok_or_else(not_found)?;
    let mut file = tokio::fs::File::open(path).await.map_err(internal)?;
    let size = row.size as u64;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("x-content-type-options", "nosniff".into());
    set("content-security-policy", "default-src 'none'; sandbox".into());
    set("etag", format!("\"{}\"", row.cid));
    set("cache-control", "public, max-age=31536000, immutable".into());
    set("content-disposition", format!("attachment; filename=\"{}\"", row.cid));
    set("accept-ranges", "bytes".into());
    let (status, start, length) = match range.map(|r| parse_range(r, size)) {
        None | Some(Range::Ignored) => (None, 0, size),
        Some(Range::Bytes(start, end)) => {
            set("content-range", format!("bytes {start}-{end}/{size}"));
            (Some(StatusCode::PARTIAL_CONTENT), start, end - start + 1)
        }
        Some(Range::Unsatisfiable) => {
            return Err(XrpcError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRequest",
                Some(format!("Range not satisfiable for a blob of {size} bytes")),
            ));
        }
    };
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(internal)?;
    Ok(RawBody {
        content_type: row.mime_type,
        content_length: Some(length),
        headers,
        status,
        body: poem::Body::from_async_read(file.take(length)),
    })
}

enum Range {
    /// A single satisfiable range, inclusive.
    Bytes(u64, u64),
    Unsatisfiable,
    /// Several ranges, or a form this server does not serve: the whole blob is sent instead,
    /// which HTTP allows.
    Ignored,
}

/// Parses a `Range: bytes=…` header for a blob of `size` bytes.
fn parse_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Range::Ignored };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((first, last)) = spec.split_once('-') else { return Range::Ignored };
    let (start, end) = match (first.trim().parse::<u64>().ok(), last.trim().parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        (Some(start), None) if last.trim().is_empty() => (start, size.saturating_sub(1)),
        (None, Some(suffix)) if first.trim().is_empty() && suffix > 0 => {
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        _ => return Range::Ignored,
    };
    if size == 0 || start >= size {
        Range::Unsatisfiable
    } else {
        Range::Bytes(start, end)
    }
}

pub async fn list_blobs(ctx: &AppContext, params: lb::Params) -> XrpcResult<lb::Output> {
    let did = params.did.as_str();
    available(ctx, did).await?;
    let limit = params.limit.clamp(1, 1000) as u64;
    let mut query = blob::Entity::find()
        .filter(blob::Column::Did.eq(did))
        .filter(blob::Column::TempKey.is_null())
        .order_by_asc(blob::Column::Cid);
    if let Some(cursor) = &params.cursor {
        query = query.filter(blob::Column::Cid.gt(cursor.as_str()));
    }
    // With `since`, only blobs that records written after that rev reference.
    if let Some(since) = &params.since {
        use crate::db::entities::record;
        let uris: Vec<String> = record::Entity::find()
            .select_only()
            .column(record::Column::Uri)
            .filter(record::Column::Did.eq(did))
            .filter(record::Column::Rev.gt(since.as_str()))
            .into_tuple()
            .all(&ctx.db)
            .await
            .map_err(internal)?;
        let uris: Vec<&str> = uris.iter().map(String::as_str).collect();
        let cids = crate::blobs::refs::stored_for(&ctx.db, &uris).await.map_err(internal)?;
        query = query.filter(blob::Column::Cid.is_in(cids));
    }
    let rows = query.limit(limit).all(&ctx.db).await.map_err(internal)?;
    let cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.cid.clone())).flatten();
    let cids = rows.iter().map(|r| wire(&r.cid)).collect::<XrpcResult<Vec<_>>>()?;
    Ok(lb::Output { cids, cursor, extra: Default::default() })
}
