//! `com.atproto.admin.updateSubjectStatus`: applies or lifts a takedown on an account, a record
//! or a blob, and deactivates or reactivates an account. Beyond the reference, an account
//! takedown may carry `expiresAt` (a suspension, lifted by the server when it comes).

use aurora_atproto::syntax::Datetime;
use aurora_generated::com::atproto::admin::defs::StatusAttr;
use aurora_generated::com::atproto::admin::update_subject_status::{Input, InputSubject, Output};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::admin::audit::Entry;
use crate::admin::takedown::{self, Takedown};
use crate::api::internal;
use crate::context::AppContext;

pub async fn handle(ctx: &AppContext, auth: Admin, input: Input) -> XrpcResult<Output> {
    let Input { subject, takedown, deactivated, .. } = input;
    if takedown.as_ref().is_some_and(|t| t.applied) && deactivated.as_ref().is_some_and(|d| !d.applied) {
        return Err(XrpcError::invalid_request("Cannot activate and takedown an account at the same time"));
    }
    if let Some(attr) = &takedown {
        let until = expiry(attr)?;
        let action = match (attr.applied, &until) {
            (false, _) => "reverse-takedown",
            (true, Some(_)) => "suspend",
            (true, None) => "takedown",
        };
        let applied = attr.applied.then(|| Takedown { reference: attr.r#ref.clone(), until });
        let audit = Entry::by(&auth, action).detail(serde_json::json!({ "ref": attr.r#ref }));
        // A subject that is not here changes nothing and is no error, as in the reference: a
        // moderation service may act on a record or account that is already gone.
        match &subject {
            InputSubject::DefsRepoRef(repo) => {
                takedown::set_account(ctx, &repo.did, applied, audit.subject(&repo.did)).await.map_err(internal)?;
            }
            InputSubject::StrongRef(record) => {
                if applied.as_ref().is_some_and(|a| a.until.is_some()) {
                    return Err(XrpcError::invalid_request("Only an account takedown may expire"));
                }
                takedown::set_record(ctx, &record.uri, applied, audit.subject(&record.uri)).await.map_err(internal)?;
            }
            InputSubject::DefsRepoBlobRef(blob) => {
                if applied.as_ref().is_some_and(|a| a.until.is_some()) {
                    return Err(XrpcError::invalid_request("Only an account takedown may expire"));
                }
                let audit = audit.subject(format!("{}/{}", blob.did, blob.cid));
                takedown::set_blob(ctx, &blob.did, &blob.cid, applied, audit).await.map_err(internal)?;
            }
            InputSubject::Unknown(other) => {
                let kind = other.type_name().unwrap_or_default();
                return Err(XrpcError::invalid_request(format!("Invalid subject ({kind})")));
            }
        }
    }
    if let (Some(attr), InputSubject::DefsRepoRef(repo)) = (&deactivated, &subject) {
        let action = if attr.applied { "deactivate" } else { "reactivate" };
        let audit = Entry::by(&auth, action).subject(&repo.did);
        takedown::set_deactivated(ctx, &repo.did, attr.applied, audit).await.map_err(internal)?;
    }
    // The reference announces the account's status even when nothing changed.
    if takedown.is_none() && deactivated.is_none() {
        if let InputSubject::DefsRepoRef(repo) = &subject {
            takedown::announce(ctx, &repo.did).await.map_err(internal)?;
        }
    }
    let subject = serde_json::to_value(&subject).and_then(serde_json::from_value).map_err(internal)?;
    Ok(Output { subject, takedown, extra: Default::default() })
}

/// A suspension's end (`expiresAt`, beyond the lexicon), normalized; it must lie ahead.
fn expiry(attr: &StatusAttr) -> XrpcResult<Option<String>> {
    let Some(raw) = attr.extra.get("expiresAt").filter(|_| attr.applied) else { return Ok(None) };
    let at: Datetime = raw
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| XrpcError::invalid_request("expiresAt must be a datetime"))?;
    if at.unix_micros() <= Datetime::now().unix_micros() {
        return Err(XrpcError::invalid_request("expiresAt must be in the future"));
    }
    Ok(Some(Datetime::from_unix_micros(at.unix_micros()).as_str().to_owned()))
}
