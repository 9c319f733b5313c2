//! Invite codes: `createInviteCode(s)` for the administrator, `getAccountInviteCodes` for users.

use aurora_generated::com::atproto::server::{
    create_invite_code as cic, create_invite_codes as cics, defs, get_account_invite_codes as gaic,
};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::invites;
use crate::api::internal;
use crate::context::AppContext;

fn uses(count: i64) -> XrpcResult<i32> {
    i32::try_from(count)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| XrpcError::invalid_request("useCount must be at least 1"))
}

pub async fn create_one(ctx: &AppContext, req: &RequestContext, input: cic::Input) -> XrpcResult<cic::Output> {
    ctx.verifier().admin(req)?;
    let code = invites::new_code(&ctx.config.hostname);
    let for_account = input.for_account.map_or_else(|| "admin".to_owned(), |d| d.as_str().to_owned());
    invites::create(&ctx.db, &code, uses(input.use_count)?, &for_account, "admin").await.map_err(internal)?;
    Ok(cic::Output { code, extra: Default::default() })
}

pub async fn create_many(ctx: &AppContext, req: &RequestContext, input: cics::Input) -> XrpcResult<cics::Output> {
    ctx.verifier().admin(req)?;
    let use_count = uses(input.use_count)?;
    if !(1..=1000).contains(&input.code_count) {
        return Err(XrpcError::invalid_request("codeCount must be between 1 and 1000"));
    }
    let accounts: Vec<String> = match input.for_accounts {
        Some(dids) if !dids.is_empty() => dids.iter().map(|d| d.as_str().to_owned()).collect(),
        _ => vec!["admin".to_owned()],
    };
    let mut codes = Vec::new();
    for account in accounts {
        let mut these = Vec::new();
        for _ in 0..input.code_count {
            let code = invites::new_code(&ctx.config.hostname);
            invites::create(&ctx.db, &code, use_count, &account, "admin").await.map_err(internal)?;
            these.push(code);
        }
        codes.push(cics::AccountCodes { account, codes: these, extra: Default::default() });
    }
    Ok(cics::Output { codes, extra: Default::default() })
}

pub async fn for_account(ctx: &AppContext, req: &RequestContext, params: gaic::Params) -> XrpcResult<gaic::Output> {
    let creds = ctx.verifier().full(req)?;
    let mut codes = Vec::new();
    for (code, used) in invites::for_account(&ctx.db, &creds.did).await.map_err(internal)? {
        let fully_used = used.len() as i64 >= i64::from(code.available_uses);
        if code.disabled || (!params.include_used && fully_used) {
            continue;
        }
        let uses = used
            .into_iter()
            .map(|u| {
                Ok(defs::InviteCodeUse {
                    used_by: u.used_by.parse().map_err(internal)?,
                    used_at: u.used_at.parse().map_err(internal)?,
                    extra: Default::default(),
                })
            })
            .collect::<XrpcResult<Vec<_>>>()?;
        codes.push(defs::InviteCode {
            code: code.code,
            available: i64::from(code.available_uses),
            disabled: code.disabled,
            for_account: code.for_account,
            created_by: code.created_by,
            created_at: code.created_at.parse().map_err(internal)?,
            uses,
            extra: Default::default(),
        });
    }
    Ok(gaic::Output { codes, extra: Default::default() })
}
