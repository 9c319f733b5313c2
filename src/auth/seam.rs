//! The authentication seam: the XRPC runtime asks [`Api`] for each request's credentials,
//! as the method's generated rule says, before its handler runs. Handlers receive the typed
//! credential and never verify anything themselves.

use aurora_atproto::syntax::Did;
use aurora_xrpc::auth::{
    Access, AccessRule, Admin, Admission, Authenticator, Caller, Operator, Refresh, Role, Scheme, Service,
};
use aurora_xrpc::{RequestContext, XrpcError, XrpcResult};

use super::error::AuthError;
use super::{jwt, service};
use crate::account;
use crate::api::Api;

impl Authenticator for Api {
    async fn access(&self, ctx: &RequestContext, rule: AccessRule) -> XrpcResult<Access> {
        let access = match super::authorization(ctx)? {
            Some((Scheme::Dpop, token)) => super::oauth::verify(&self.ctx, ctx, token, rule).await?,
            _ => super::session_access(&self.ctx, ctx, rule).await?,
        };
        if rule.checked {
            self.check_present(&access.did).await?;
        }
        super::oauth::apply_rule(&self.ctx, ctx, &access, rule.oauth)?;
        Ok(access)
    }

    async fn caller(&self, ctx: &RequestContext, rule: AccessRule) -> XrpcResult<Caller> {
        // Service-auth tokens carry the method they were minted for; sessions never do.
        if let Some(token) = super::bearer(ctx)? {
            if is_service_token(token) {
                let service = self.service(ctx).await?;
                if rule.checked {
                    self.check_present(&service.iss).await?;
                }
                return Ok(Caller::Service(service));
            }
        }
        Ok(Caller::Access(self.access(ctx, rule).await?))
    }

    async fn refresh(&self, ctx: &RequestContext, allow_expired: bool) -> XrpcResult<Refresh> {
        Ok(self.ctx.verifier().refresh(ctx, allow_expired)?)
    }

    async fn admin(&self, ctx: &RequestContext, role: Role) -> XrpcResult<Admin> {
        match self.ctx.verifier().admin(ctx, role) {
            Ok(admin) => Ok(admin),
            Err(AuthError::RoleTooLow) => Err(AuthError::RoleTooLow.into()),
            Err(error) => {
                // Guessing the admin password costs a counter per address.
                if let Err(status) = self.ctx.rate_limits.admin_failure(&ctx.headers, ctx.remote_addr).await {
                    return Err(status.refusal());
                }
                Err(error.into())
            }
        }
    }

    async fn moderator(&self, ctx: &RequestContext) -> XrpcResult<Admin> {
        if !matches!(super::authorization(ctx)?, Some((Scheme::Bearer, _))) {
            return self.admin(ctx, Role::Moderator).await;
        }
        // The moderation service, as the reference trusts it: its DID or its labeler identity.
        let Some((_, mod_did)) = &self.ctx.config.mod_service else {
            return Err(AuthError::Service("UntrustedIss", "Untrusted issuer".into()).into());
        };
        let service = self.service(ctx).await?;
        if service.iss.as_str() != mod_did {
            return Err(AuthError::Service("UntrustedIss", "Untrusted issuer".into()).into());
        }
        Ok(Admin { role: Role::Moderator, operator: Operator::ModService(service.iss) })
    }

    async fn admit(
        &self,
        ctx: &RequestContext,
        account: Option<&Did>,
        input: Admission,
    ) -> XrpcResult<Vec<(&'static str, String)>> {
        self.ctx.rate_limits.admit(ctx.nsid, &ctx.headers, ctx.remote_addr, account, input.field.as_ref()).await
    }

    fn rate_key_field(&self, nsid: &str) -> Option<&'static str> {
        crate::rate_limit::policy::input_field(nsid)
    }

    async fn service(&self, ctx: &RequestContext) -> XrpcResult<Service> {
        let Some(token) = super::bearer(ctx)? else {
            return Err(AuthError::Service("MissingJwt", "missing jwt".into()).into());
        };
        Ok(service::verify(token, &self.ctx.config.service_did, ctx.nsid, &self.ctx.resolver).await?)
    }
}

impl Api {
    /// The account must be hosted here and not taken down.
    async fn check_present(&self, did: &Did) -> XrpcResult<()> {
        let present = account::status::check_present(&self.ctx.db, did).await.map_err(XrpcError::internal)?;
        Ok(present?)
    }
}

/// Whether a bearer token is a service-auth token: its claims name a method (`lxm`).
fn is_service_token(token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Claims {
        lxm: Option<serde_json::Value>,
    }
    jwt::split(token)
        .ok()
        .and_then(|(_, _, _, payload)| jwt::claims::<Claims>(payload).ok())
        .is_some_and(|claims| claims.lxm.is_some_and(|lxm| !lxm.is_null()))
}
