//! Lexicon views several namespaces build from the same rows.

use aurora_generated::com::atproto::admin::defs::AccountView;
use aurora_generated::com::atproto::server::defs::{InviteCode, InviteCodeUse};
use aurora_xrpc::XrpcResult;

use super::internal;
use crate::admin::accounts::{Info, Invite};

/// `com.atproto.server.defs#inviteCode`.
pub fn invite_code((code, used): Invite) -> XrpcResult<InviteCode> {
    let uses = used
        .into_iter()
        .map(|u| {
            Ok(InviteCodeUse {
                used_by: u.used_by,
                used_at: u.used_at.parse().map_err(internal)?,
                extra: Default::default(),
            })
        })
        .collect::<XrpcResult<Vec<_>>>()?;
    Ok(InviteCode {
        code: code.code,
        available: i64::from(code.available_uses),
        disabled: code.disabled,
        for_account: code.for_account,
        created_by: code.created_by,
        created_at: code.created_at.parse().map_err(internal)?,
        uses,
        extra: Default::default(),
    })
}

/// `com.atproto.admin.defs#accountView`, as the reference fills it for a server that manages
/// its own invites.
pub fn account_view(info: Info) -> XrpcResult<AccountView> {
    let handle = match info.actor.handle {
        Some(handle) => handle,
        None => "handle.invalid".parse().map_err(internal)?,
    };
    let account = info.account;
    Ok(AccountView {
        did: info.actor.did,
        handle,
        email: account.as_ref().and_then(|a| a.email.clone()),
        email_confirmed_at: account.as_ref().and_then(|a| a.email_confirmed_at.as_deref()?.parse().ok()),
        indexed_at: info.actor.created_at.parse().map_err(internal)?,
        invited_by: info.invited_by.map(invite_code).transpose()?,
        invites: Some(info.invites.into_iter().map(invite_code).collect::<XrpcResult<_>>()?),
        invites_disabled: Some(account.as_ref().is_some_and(|a| a.invites_disabled)),
        deactivated_at: info.actor.deactivated_at.as_deref().and_then(|d| d.parse().ok()),
        invite_note: None,
        related_records: None,
        threat_signatures: None,
        extra: Default::default(),
    })
}
