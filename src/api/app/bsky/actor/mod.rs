//! `app.bsky.actor` preferences, which the PDS keeps for the account (the rest of the namespace
//! belongs to the AppView). One file per method.

mod get_preferences;
mod put_preferences;

use aurora_generated::app::bsky::actor::{get_preferences as gp, put_preferences as pp, Service};
use aurora_xrpc::auth::Access;
use aurora_xrpc::{RequestContext, XrpcResult};

use crate::api::Api;

impl Service for Api {
    async fn get_preferences(&self, _ctx: RequestContext, auth: Access, _params: gp::Params) -> XrpcResult<gp::Output> {
        get_preferences::handle(&self.ctx, auth).await
    }

    async fn put_preferences(&self, _ctx: RequestContext, auth: Access, input: pp::Input) -> XrpcResult<()> {
        put_preferences::handle(&self.ctx, auth, input).await
    }
}

/// Personal details (a birth date) are shown to and changed by full sessions only.
const FULL_ACCESS_ONLY: &str = "app.bsky.actor.defs#personalDetailsPref";
/// Derived from the birth date when read; never stored.
const READ_ONLY: &str = "app.bsky.actor.defs#declaredAgePref";
