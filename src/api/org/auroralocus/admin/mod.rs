//! `org.auroralocus.admin`: Aurora's own operator methods, beside `com.atproto.admin`.

mod list_audit_entries;
pub(crate) mod list_jobs;
mod run_job;
mod search_accounts;

use aurora_generated::org::auroralocus::admin::{self as lex, Service};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn list_audit_entries(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::list_audit_entries::Params,
    ) -> XrpcResult<lex::list_audit_entries::Output> {
        list_audit_entries::handle(&self.ctx, params).await
    }

    async fn search_accounts(
        &self,
        _: RequestContext,
        _: Admin,
        params: lex::search_accounts::Params,
    ) -> XrpcResult<lex::search_accounts::Output> {
        search_accounts::handle(&self.ctx, params).await
    }

    async fn list_jobs(
        &self,
        _: RequestContext,
        _: Admin,
        _: lex::list_jobs::Params,
    ) -> XrpcResult<lex::list_jobs::Output> {
        list_jobs::list(&self.ctx).await
    }

    async fn run_job(
        &self,
        _: RequestContext,
        admin: Admin,
        input: lex::run_job::Input,
    ) -> XrpcResult<lex::run_job::Output> {
        run_job::handle(&self.ctx, &admin, input).await
    }
}
