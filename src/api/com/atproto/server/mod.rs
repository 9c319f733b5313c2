//! `com.atproto.server`: accounts, sessions and app passwords. Methods not implemented here
//! answer `MethodNotImplemented`.

mod app_passwords;
mod create_account;
mod describe_server;
pub(crate) mod email;
mod invites;
mod lifecycle;
mod reserve_signing_key;
pub(crate) mod service_auth;
mod session;

use aurora_generated::com::atproto::server::{
    check_account_status as cas, confirm_email as ce, create_account as ca, create_app_password as cap,
    create_invite_code as cic, create_invite_codes as cics, create_session as cs, deactivate_account as da,
    delete_account as dla, describe_server as dsv, get_account_invite_codes as gaic, get_service_auth as gsa,
    get_session as gs, list_app_passwords as lap, refresh_session as rs, request_email_update as reu,
    request_password_reset as rpr, reserve_signing_key as rsk, reset_password as rp, revoke_app_password as rap,
    update_email as ue, Service,
};
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn describe_server(&self, _ctx: RequestContext, _params: dsv::Params) -> XrpcResult<dsv::Output> {
        describe_server::describe_server(&self.ctx)
    }

    async fn create_account(&self, ctx: RequestContext, input: ca::Input) -> XrpcResult<ca::Output> {
        create_account::create_account(&self.ctx, &ctx, input).await
    }

    async fn create_session(&self, _ctx: RequestContext, input: cs::Input) -> XrpcResult<cs::Output> {
        session::create_session(&self.ctx, input).await
    }

    async fn get_session(&self, ctx: RequestContext, _params: gs::Params) -> XrpcResult<gs::Output> {
        session::get_session(&self.ctx, &ctx).await
    }

    async fn refresh_session(&self, ctx: RequestContext) -> XrpcResult<rs::Output> {
        session::refresh_session(&self.ctx, &ctx).await
    }

    async fn delete_session(&self, ctx: RequestContext) -> XrpcResult<()> {
        session::delete_session(&self.ctx, &ctx).await
    }

    async fn create_app_password(&self, ctx: RequestContext, input: cap::Input) -> XrpcResult<cap::Output> {
        app_passwords::create(&self.ctx, &ctx, input).await
    }

    async fn list_app_passwords(&self, ctx: RequestContext, _params: lap::Params) -> XrpcResult<lap::Output> {
        app_passwords::list(&self.ctx, &ctx).await
    }

    async fn revoke_app_password(&self, ctx: RequestContext, input: rap::Input) -> XrpcResult<()> {
        app_passwords::revoke(&self.ctx, &ctx, input).await
    }

    async fn get_service_auth(&self, ctx: RequestContext, params: gsa::Params) -> XrpcResult<gsa::Output> {
        service_auth::get_service_auth(&self.ctx, &ctx, params).await
    }

    async fn activate_account(&self, ctx: RequestContext) -> XrpcResult<()> {
        lifecycle::activate(&self.ctx, &ctx).await
    }

    async fn deactivate_account(&self, ctx: RequestContext, input: da::Input) -> XrpcResult<()> {
        lifecycle::deactivate(&self.ctx, &ctx, input).await
    }

    async fn check_account_status(&self, ctx: RequestContext, _params: cas::Params) -> XrpcResult<cas::Output> {
        lifecycle::check_account_status(&self.ctx, &ctx).await
    }

    async fn request_email_confirmation(&self, ctx: RequestContext) -> XrpcResult<()> {
        email::request_email_confirmation(&self.ctx, &ctx).await
    }

    async fn confirm_email(&self, ctx: RequestContext, input: ce::Input) -> XrpcResult<()> {
        email::confirm_email(&self.ctx, &ctx, input).await
    }

    async fn request_email_update(&self, ctx: RequestContext) -> XrpcResult<reu::Output> {
        email::request_email_update(&self.ctx, &ctx).await
    }

    async fn update_email(&self, ctx: RequestContext, input: ue::Input) -> XrpcResult<()> {
        email::update_email(&self.ctx, &ctx, input).await
    }

    async fn request_password_reset(&self, _ctx: RequestContext, input: rpr::Input) -> XrpcResult<()> {
        email::request_password_reset(&self.ctx, input).await
    }

    async fn reset_password(&self, _ctx: RequestContext, input: rp::Input) -> XrpcResult<()> {
        email::reset_password(&self.ctx, input).await
    }

    async fn request_account_delete(&self, ctx: RequestContext) -> XrpcResult<()> {
        email::request_account_delete(&self.ctx, &ctx).await
    }

    async fn delete_account(&self, _ctx: RequestContext, input: dla::Input) -> XrpcResult<()> {
        email::delete_account(&self.ctx, input).await
    }

    async fn create_invite_code(&self, ctx: RequestContext, input: cic::Input) -> XrpcResult<cic::Output> {
        invites::create_one(&self.ctx, &ctx, input).await
    }

    async fn create_invite_codes(&self, ctx: RequestContext, input: cics::Input) -> XrpcResult<cics::Output> {
        invites::create_many(&self.ctx, &ctx, input).await
    }

    async fn get_account_invite_codes(&self, ctx: RequestContext, params: gaic::Params) -> XrpcResult<gaic::Output> {
        invites::for_account(&self.ctx, &ctx, params).await
    }

    async fn reserve_signing_key(&self, _ctx: RequestContext, input: rsk::Input) -> XrpcResult<rsk::Output> {
        reserve_signing_key::reserve(&self.ctx, input).await
    }
}
