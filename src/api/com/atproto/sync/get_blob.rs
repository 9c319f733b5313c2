//! `com.atproto.sync.getBlob`: a blob's bytes (or one byte range), with headers that stop a
//! browser from treating it as a page.

use cid::Cid;
use poem::http::{HeaderMap, HeaderValue, StatusCode};

use aurora_generated::com::atproto::sync::get_blob::{Error, Params};
use aurora_xrpc::auth::Viewer;
use aurora_xrpc::{RawBody, XrpcError, XrpcResult};

use super::available;
use crate::api::internal;
use crate::blobs::served::served;
use crate::blobs::BlobStore;
use crate::context::AppContext;

/// A blob's bytes, with headers that stop a browser from treating it as a page; one byte range
/// if asked for.
pub async fn handle(
    ctx: &AppContext,
    viewer: Option<&Viewer>,
    params: Params,
    range: Option<&str>,
) -> XrpcResult<RawBody> {
    let did = &params.did;
    available(ctx, did, viewer).await?.map_err(Error::from)?;
    // The reference answers `InvalidRequest`, not the lexicon's `BlobNotFound`.
    let not_found = || XrpcError::invalid_request("Blob not found");
    let row =
        served(&ctx.db, ctx.reader.as_deref(), did, &params.cid).await.map_err(internal)?.ok_or_else(not_found)?;
    let cid: Cid = params.cid.to_cid().map_err(internal)?;
    let size = row.size;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("x-content-type-options", "nosniff".into());
    set("content-security-policy", "default-src 'none'; sandbox".into());
    set("etag", format!("\"{}\"", params.cid));
    set("cache-control", "public, max-age=31536000, immutable".into());
    set("content-disposition", format!("attachment; filename=\"{}\"", params.cid));
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
    let bytes = ctx.blobs.get(did, &cid, Some((start, length))).await.map_err(internal)?.ok_or_else(not_found)?;
    ctx.metrics.blob_served(length);
    Ok(RawBody {
        content_type: row.mime_type,
        content_length: Some(length),
        headers,
        status,
        body: poem::Body::from_bytes_stream(bytes),
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
