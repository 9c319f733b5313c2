//! `com.atproto.admin`: the operators' API (see `crate::admin`). Reads and takedowns are open to
//! moderators and the moderation service; deletion and changes to an account's email, handle or
//! password need the administrator (`codegen/method-auth.json`). Every change is audited.

mod delete_account;
mod disable_account_invites;
mod disable_invite_codes;
mod enable_account_invites;
mod get_account_info;
mod get_account_infos;
mod get_invite_codes;
mod get_subject_status;
mod search_accounts;
mod send_email;
mod update_account_email;
mod update_account_handle;
mod update_account_password;
mod update_subject_status;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use aurora_atproto::syntax::{AtIdentifier, Did};
use aurora_generated::com::atproto::admin::defs::StatusAttr;
use aurora_generated::com::atproto::admin::{self as lex, Service};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::account::{self, Account, Lookup};
use crate::admin::audit::Entry;
use crate::api::{internal, Api};
use crate::context::AppContext;
use crate::db::entities::account as account_row;

impl Service for Api {
    async fn delete_account(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::delete_account::Input,
    ) -> XrpcResult<()> {
        delete_account::handle(&self.ctx, auth, input).await
    }

    async fn disable_account_invites(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::disable_account_invites::Input,
    ) -> XrpcResult<()> {
        disable_account_invites::handle(&self.ctx, auth, input).await
    }

    async fn disable_invite_codes(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::disable_invite_codes::Input,
    ) -> XrpcResult<()> {
        disable_invite_codes::handle(&self.ctx, auth, input).await
    }

    async fn enable_account_invites(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::enable_account_invites::Input,
    ) -> XrpcResult<()> {
        enable_account_invites::handle(&self.ctx, auth, input).await
    }

    async fn get_account_info(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::get_account_info::Params,
    ) -> XrpcResult<lex::get_account_info::Output> {
        get_account_info::handle(&self.ctx, params).await
    }

    async fn get_account_infos(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::get_account_infos::Params,
    ) -> XrpcResult<lex::get_account_infos::Output> {
        get_account_infos::handle(&self.ctx, params).await
    }

    async fn get_invite_codes(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::get_invite_codes::Params,
    ) -> XrpcResult<lex::get_invite_codes::Output> {
        get_invite_codes::handle(&self.ctx, params).await
    }

    async fn get_subject_status(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::get_subject_status::Params,
    ) -> XrpcResult<lex::get_subject_status::Output> {
        get_subject_status::handle(&self.ctx, params).await
    }

    async fn search_accounts(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::search_accounts::Params,
    ) -> XrpcResult<lex::search_accounts::Output> {
        search_accounts::handle(&self.ctx, params).await
    }

    async fn send_email(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::send_email::Input,
    ) -> XrpcResult<lex::send_email::Output> {
        send_email::handle(&self.ctx, auth, input).await
    }

    async fn update_account_email(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::update_account_email::Input,
    ) -> XrpcResult<()> {
        update_account_email::handle(&self.ctx, auth, input).await
    }

    async fn update_account_handle(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::update_account_handle::Input,
    ) -> XrpcResult<()> {
        update_account_handle::handle(&self.ctx, auth, input).await
    }

    async fn update_account_password(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::update_account_password::Input,
    ) -> XrpcResult<()> {
        update_account_password::handle(&self.ctx, auth, input).await
    }

    async fn update_subject_status(
        &self,
        _: RequestContext,
        auth: Admin,
        input: lex::update_subject_status::Input,
    ) -> XrpcResult<lex::update_subject_status::Output> {
        update_subject_status::handle(&self.ctx, auth, input).await
    }
}

/// A takedown as the lexicon shows it: applied when it has a reference.
fn status_attr(reference: Option<String>) -> StatusAttr {
    StatusAttr { applied: reference.is_some(), r#ref: reference, extra: Default::default() }
}

/// The account a DID or handle names, deactivated or taken down included.
async fn find_identified(ctx: &AppContext, id: &AtIdentifier) -> XrpcResult<Option<Account>> {
    let lookup = match id {
        AtIdentifier::Did(did) => Lookup::Did(did),
        AtIdentifier::Handle(handle) => Lookup::Handle(handle),
    };
    account::find(&ctx.db, lookup).await.map_err(internal)
}

/// Stops or restarts an account's making of invite codes (the reference answers success for an
/// account that is not here, and so does this).
async fn set_invites_disabled(
    ctx: &AppContext,
    auth: &Admin,
    did: &Did,
    disabled: bool,
    note: Option<&str>,
) -> XrpcResult<()> {
    let txn = ctx.db.begin().await.map_err(internal)?;
    account_row::Entity::update_many()
        .col_expr(account_row::Column::InvitesDisabled, Expr::value(disabled))
        .filter(account_row::Column::Did.eq(did))
        .exec(&txn)
        .await
        .map_err(internal)?;
    let action = if disabled { "disableAccountInvites" } else { "enableAccountInvites" };
    Entry::by(auth, action)
        .subject(did)
        .detail(serde_json::json!({ "note": note }))
        .write(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(XrpcError::internal)
}
