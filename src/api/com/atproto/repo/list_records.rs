//! `com.atproto.repo.listRecords`: a page of one collection's records, newest first unless
//! reversed (record keys are TIDs, which sort by time).

use aurora_generated::com::atproto::repo::list_records::{Output, Params, Record};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::api::internal;
use crate::context::AppContext;
use crate::repo::records;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let reverse = params.reverse.unwrap_or(false);
    let limit = params.limit.clamp(1, 100) as u64;
    // An empty cursor is no cursor, as the reference reads it.
    let cursor = params.cursor.as_deref().filter(|c| !c.is_empty());
    let page = records::Page { cursor, reverse, limit };
    let listed = records::list(&ctx.db, ctx.reader.as_deref(), &ctx.rendered, &params.repo, &params.collection, page);
    let Some(rows) = listed.await.map_err(internal)? else {
        // Unknown, or not active (taken down, suspended, deactivated), as the reference answers.
        return Err(XrpcError::invalid_request(format!("Could not find repo: {}", params.repo)));
    };
    // As the reference pages: any non-empty page, the short last one too, carries its last key.
    let cursor = rows.last().map(|r| r.rkey().to_owned());
    // Pushed into room for the whole page: collected through a `Result`, whose iterator cannot
    // tell its length, the page grew and moved six times.
    let mut records = Vec::with_capacity(rows.len());
    for mut row in rows {
        // With no records kept, each is written out straight from its block into the answer.
        let value = if ctx.rendered.is_off() {
            row.served_value().map_err(internal)?.into()
        } else {
            row.served_json(&ctx.rendered).map_err(internal)?.into()
        };
        records.push(Record { value, uri: row.uri, cid: row.cid, extra: Default::default() });
    }
    Ok(Output { records, cursor, extra: Default::default() })
}
