//! `com.atproto.server.describeServer`: what this server offers new accounts.

use aurora_generated::com::atproto::server::describe_server::{Contact, Links, Output};
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::context::AppContext;

pub fn handle(ctx: &AppContext) -> XrpcResult<Output> {
    let config = &ctx.config;
    let uri = |value: &Option<String>| value.as_deref().and_then(|v| v.parse().ok());
    Ok(Output {
        did: config.service_did.parse().map_err(XrpcError::internal)?,
        available_user_domains: config.service_handle_domains.clone(),
        invite_code_required: Some(config.invite_required),
        phone_verification_required: None,
        blob_upload_limit: Some(config.blob_upload_limit as i64),
        links: Some(Links {
            privacy_policy: uri(&config.privacy_policy_url),
            terms_of_service: uri(&config.terms_of_service_url),
            extra: Default::default(),
        }),
        contact: Some(Contact { email: config.contact_email_address.clone(), extra: Default::default() }),
        extra: Default::default(),
    })
}
