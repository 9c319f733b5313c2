//! `com.atproto.server`: accounts, sessions, app passwords, email flows and invite codes. One
//! file per method.

/// A session answer: `createSession`, `refreshSession` and `getSession` each have their own
/// output type with the same account fields (the first two add `accessJwt` and `refreshJwt`,
/// given as `field: value` after the account).
macro_rules! session_output {
    ($output:path, $account:expr $(, $field:ident: $value:expr)* $(,)?) => {{
        let account: &crate::account::Account = $account;
        let status = account.status();
        let email = account.email().map(str::to_owned);
        $output {
            did: account.did().clone(),
            handle: account.handle(),
            did_doc: None,
            email_auth_factor: email.is_some().then(|| account.email_auth_factor()),
            email,
            email_confirmed: Some(account.email_confirmed()),
            active: Some(status == crate::sequencer::AccountStatus::Active),
            status: status.as_str().map(Into::into),
            extra: Default::default(),
            $($field: $value,)*
        }
    }};
}

mod activate_account;
mod check_account_status;
mod confirm_email;
mod create_account;
mod create_app_password;
mod create_invite_code;
mod create_invite_codes;
mod create_session;
mod deactivate_account;
mod delete_account;
mod delete_session;
mod describe_server;
mod get_account_invite_codes;
mod get_service_auth;
mod get_session;
mod list_app_passwords;
mod refresh_session;
mod request_account_delete;
mod request_email_confirmation;
mod request_email_update;
mod request_password_reset;
mod reserve_signing_key;
mod reset_password;
mod revoke_app_password;
mod update_email;

use serde_json::Value;

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::server::{self as lex, Service};
use aurora_xrpc::auth::{Access, Admin, Refresh, Service as ServiceAuth};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use crate::api::Api;
use crate::context::AppContext;

impl Service for Api {
    async fn activate_account(&self, _ctx: RequestContext, auth: Access) -> XrpcResult<()> {
        activate_account::handle(&self.ctx, auth).await
    }

    async fn check_account_status(
        &self,
        _ctx: RequestContext,
        auth: Access,
        _params: lex::check_account_status::Params,
    ) -> XrpcResult<lex::check_account_status::Output> {
        check_account_status::handle(&self.ctx, auth).await
    }

    async fn confirm_email(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::confirm_email::Input,
    ) -> XrpcResult<()> {
        confirm_email::handle(&self.ctx, auth, input).await
    }

    async fn create_account(
        &self,
        _ctx: RequestContext,
        auth: Option<ServiceAuth>,
        input: lex::create_account::Input,
    ) -> XrpcResult<lex::create_account::Output> {
        create_account::handle(&self.ctx, auth, input).await
    }

    async fn create_app_password(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::create_app_password::Input,
    ) -> XrpcResult<lex::create_app_password::Output> {
        create_app_password::handle(&self.ctx, auth, input).await
    }

    async fn create_invite_code(
        &self,
        _ctx: RequestContext,
        auth: Admin,
        input: lex::create_invite_code::Input,
    ) -> XrpcResult<lex::create_invite_code::Output> {
        create_invite_code::handle(&self.ctx, auth, input).await
    }

    async fn create_invite_codes(
        &self,
        _ctx: RequestContext,
        auth: Admin,
        input: lex::create_invite_codes::Input,
    ) -> XrpcResult<lex::create_invite_codes::Output> {
        create_invite_codes::handle(&self.ctx, auth, input).await
    }

    async fn create_session(
        &self,
        _ctx: RequestContext,
        input: lex::create_session::Input,
    ) -> XrpcResult<lex::create_session::Output> {
        create_session::handle(&self.ctx, input).await
    }

    async fn deactivate_account(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::deactivate_account::Input,
    ) -> XrpcResult<()> {
        deactivate_account::handle(&self.ctx, auth, input).await
    }

    async fn delete_account(&self, _ctx: RequestContext, input: lex::delete_account::Input) -> XrpcResult<()> {
        delete_account::handle(&self.ctx, input).await
    }

    async fn delete_session(&self, _ctx: RequestContext, auth: Refresh) -> XrpcResult<()> {
        delete_session::handle(&self.ctx, auth).await
    }

    async fn describe_server(
        &self,
        _ctx: RequestContext,
        _params: lex::describe_server::Params,
    ) -> XrpcResult<lex::describe_server::Output> {
        describe_server::handle(&self.ctx)
    }

    async fn get_account_invite_codes(
        &self,
        _ctx: RequestContext,
        auth: Access,
        params: lex::get_account_invite_codes::Params,
    ) -> XrpcResult<lex::get_account_invite_codes::Output> {
        get_account_invite_codes::handle(&self.ctx, auth, params).await
    }

    async fn get_service_auth(
        &self,
        _ctx: RequestContext,
        auth: Access,
        params: lex::get_service_auth::Params,
    ) -> XrpcResult<lex::get_service_auth::Output> {
        get_service_auth::handle(&self.ctx, auth, params).await
    }

    async fn get_session(
        &self,
        _ctx: RequestContext,
        auth: Access,
        _params: lex::get_session::Params,
    ) -> XrpcResult<lex::get_session::Output> {
        get_session::handle(&self.ctx, auth).await
    }

    async fn list_app_passwords(
        &self,
        _ctx: RequestContext,
        auth: Access,
        _params: lex::list_app_passwords::Params,
    ) -> XrpcResult<lex::list_app_passwords::Output> {
        list_app_passwords::handle(&self.ctx, auth).await
    }

    async fn refresh_session(&self, _ctx: RequestContext, auth: Refresh) -> XrpcResult<lex::refresh_session::Output> {
        refresh_session::handle(&self.ctx, auth).await
    }

    async fn request_account_delete(&self, _ctx: RequestContext, auth: Access) -> XrpcResult<()> {
        request_account_delete::handle(&self.ctx, auth).await
    }

    async fn request_email_confirmation(&self, _ctx: RequestContext, auth: Access) -> XrpcResult<()> {
        request_email_confirmation::handle(&self.ctx, auth).await
    }

    async fn request_email_update(
        &self,
        _ctx: RequestContext,
        auth: Access,
    ) -> XrpcResult<lex::request_email_update::Output> {
        request_email_update::handle(&self.ctx, auth).await
    }

    async fn request_password_reset(
        &self,
        _ctx: RequestContext,
        input: lex::request_password_reset::Input,
    ) -> XrpcResult<()> {
        request_password_reset::handle(&self.ctx, input).await
    }

    async fn reserve_signing_key(
        &self,
        _ctx: RequestContext,
        input: lex::reserve_signing_key::Input,
    ) -> XrpcResult<lex::reserve_signing_key::Output> {
        reserve_signing_key::handle(&self.ctx, input).await
    }

    async fn reset_password(&self, _ctx: RequestContext, input: lex::reset_password::Input) -> XrpcResult<()> {
        reset_password::handle(&self.ctx, input).await
    }

    async fn revoke_app_password(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::revoke_app_password::Input,
    ) -> XrpcResult<()> {
        revoke_app_password::handle(&self.ctx, auth, input).await
    }

    async fn update_email(
        &self,
        _ctx: RequestContext,
        auth: Access,
        input: lex::update_email::Input,
    ) -> XrpcResult<()> {
        update_email::handle(&self.ctx, auth, input).await
    }
}

fn account_not_found() -> XrpcError {
    XrpcError::new(poem::http::StatusCode::BAD_REQUEST, "AccountNotFound", Some("Account not found".into()))
}

fn taken_down() -> XrpcError {
    XrpcError::new(poem::http::StatusCode::UNAUTHORIZED, "AccountTakedown", Some("Account has been taken down".into()))
}

/// Whether the DID's identity points at this server, or why not.
async fn identity_problem(ctx: &AppContext, did: &Did) -> XrpcResult<Option<String>> {
    if did.method() != "plc" {
        return Ok(Some("Only did:plc identities can be checked by this version".into()));
    }
    let data: Value = match ctx.plc.data(did).await {
        Ok(data) => data,
        Err(e) => return Ok(Some(format!("Could not resolve DID: {e}"))),
    };
    let rotation = ctx.rotation_key.did_key();
    if !data["rotationKeys"].as_array().is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(&rotation))) {
        return Ok(Some("Server rotation key not included in PLC DID data".into()));
    }
    if data["services"]["atproto_pds"]["endpoint"].as_str() != Some(ctx.config.public_url.as_str()) {
        return Ok(Some("DID document atproto_pds service endpoint does not match PDS public url".into()));
    }
    let key = crate::keys::signing_key(ctx, did).await.map_err(crate::api::internal)?;
    if data["verificationMethods"]["atproto"].as_str() != Some(key.did_key().as_str()) {
        return Ok(Some("DID document verification method does not match expected signing key".into()));
    }
    Ok(None)
}
