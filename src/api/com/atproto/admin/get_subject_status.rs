//! `com.atproto.admin.getSubjectStatus`: what is applied to an account, a record or a blob.

use poem::http::StatusCode;

use aurora_generated::com::atproto::admin::defs::{RepoBlobRef, RepoRef, StatusAttr};
use aurora_generated::com::atproto::admin::get_subject_status::{Output, OutputSubject, Params};
use aurora_generated::com::atproto::repo::strong_ref;
use aurora_xrpc::{XrpcError, XrpcResult};

use super::status_attr;
use crate::admin::takedown;
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, params: Params) -> XrpcResult<Output> {
    let found = if let Some(cid) = params.blob {
        let did = params.did.ok_or_else(|| XrpcError::invalid_request("Must provide a did to request blob state"))?;
        takedown::blob_status(&ctx.db, &did, &cid).await.map_err(internal)?.map(|applied| Output {
            subject: OutputSubject::DefsRepoBlobRef(Box::new(RepoBlobRef {
                did,
                cid,
                record_uri: None,
                extra: Default::default(),
            })),
            takedown: Some(status_attr(applied)),
            deactivated: None,
            extra: Default::default(),
        })
    } else if let Some(uri) = params.uri {
        takedown::record_status(&ctx.db, &uri).await.map_err(internal)?.map(|(applied, cid)| Output {
            subject: OutputSubject::StrongRef(Box::new(strong_ref::Main { uri, cid, extra: Default::default() })),
            takedown: Some(status_attr(applied)),
            deactivated: None,
            extra: Default::default(),
        })
    } else if let Some(did) = params.did {
        takedown::account_status(&ctx.db, &did).await.map_err(internal)?.map(|applied| {
            let mut takedown = status_attr(applied.takedown);
            if let Some(until) = applied.until {
                takedown.extra.insert("expiresAt".into(), until.into());
            }
            Output {
                subject: OutputSubject::DefsRepoRef(Box::new(RepoRef { did, extra: Default::default() })),
                takedown: Some(takedown),
                deactivated: Some(StatusAttr { applied: applied.deactivated, r#ref: None, extra: Default::default() }),
                extra: Default::default(),
            }
        })
    } else {
        return Err(XrpcError::invalid_request("No provided subject"));
    };
    found.ok_or_else(|| XrpcError::new(StatusCode::BAD_REQUEST, "NotFound", Some("Subject not found".into())))
}
