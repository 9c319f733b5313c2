//! `org.auroralocus.admin.listAuditEntries`: the audit log, newest first, paged by entry id.

use aurora_generated::org::auroralocus::admin::list_audit_entries::{Entry, EntryRole, Output, Params};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::admin::audit;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let before = match params.cursor.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| XrpcError::invalid_request("Malformed cursor"))?),
    };
    let limit = params.limit.clamp(1, 100) as u64;
    let rows = audit::list(&ctx.db, params.subject.as_deref(), before, limit).await.map_err(internal)?;
    let cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
    let entries = rows
        .into_iter()
        .map(|row| {
            Ok(Entry {
                id: row.id,
                created_at: row.at.parse().map_err(internal)?,
                operator: row.operator,
                role: EntryRole::from(row.role.as_str()),
                action: row.action,
                subject: row.subject,
                detail: row.detail.as_deref().map(serde_json::from_str).transpose().map_err(internal)?,
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<_>>()?;
    Ok(Output { entries, cursor, extra: Default::default() })
}
