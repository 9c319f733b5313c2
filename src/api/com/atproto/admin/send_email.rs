//! `com.atproto.admin.sendEmail`: a message from the moderators to an account's address.

use aurora_generated::com::atproto::admin::send_email::{Input, Output};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::{self, Lookup};
use crate::admin::audit::Entry;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<Output> {
    let found = account::find(&ctx.db, Lookup::Did(&input.recipient_did))
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::invalid_request("Recipient not found"))?;
    let to = found.email().ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))?;
    let subject = input.subject.as_deref().unwrap_or("Message via your PDS");
    ctx.mailer.send(to, subject, input.content, None).await.map_err(internal)?;
    // The audit keeps who wrote to whom and why, not the message.
    Entry::by(&auth, "sendEmail")
        .subject(&input.recipient_did)
        .detail(serde_json::json!({ "subject": subject, "sender": input.sender_did, "comment": input.comment }))
        .write(&ctx.db)
        .await
        .map_err(internal)?;
    Ok(Output { sent: true, extra: Default::default() })
}
