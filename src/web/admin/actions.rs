//! The dashboard's forms: signing in and out, and each change to an account or the invite
//! codes, made through the admin XRPC methods under the signed-in operator's credential. Every
//! form must come from this server's page (origin and CSRF token) and be confirmed; changes
//! answer with a redirect to a page that says what happened (or the page with what went wrong).

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::web::{Form, Path};
use poem::{handler, Request, Response};
use serde_json::json;

use aurora_generated::com::atproto::admin::{
    delete_account, disable_account_invites, enable_account_invites, update_account_email, update_account_handle,
    update_account_password, update_subject_status, Service as _,
};
use aurora_generated::com::atproto::server::{create_invite_codes, Service as _};
use aurora_generated::org::auroralocus::admin::{run_job, Service as _};
use aurora_xrpc::auth::Admin;
use aurora_xrpc::{RequestContext, XrpcError};

use super::pages::{account_page, invites_page, overview};
use super::session::{self, Session};
use super::{redirect, sign_in_page, Ctx};
use crate::api::Api;
use crate::context::AppContext;

type Fields = HashMap<String, String>;

/// `POST /admin/sign-in`: the administrator's or a moderator's password. Wrong guesses count
/// against the address as wrong admin passwords on the API do.
#[handler]
pub async fn sign_in(ctx: Ctx<'_>, request: &Request, Form(form): Form<Fields>) -> Response {
    if !crate::oauth::authorize::csrf_ok(&ctx, request.headers(), &form) {
        return sign_in_page(&ctx, request, Some("This form expired; try again."), StatusCode::FORBIDDEN);
    }
    let user = form.get("user").map(String::as_str).unwrap_or("admin");
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    let Some(admin) = session::check_password(&ctx, user, password) else {
        let ip = request.extensions().get::<aurora_xrpc::ClientIp>().map(|c| c.0);
        if ctx.rate_limits.admin_failure(request.headers(), ip).await.is_err() {
            let message = "Too many wrong passwords from this address; wait a while and try again.";
            return sign_in_page(&ctx, request, Some(message), StatusCode::TOO_MANY_REQUESTS);
        }
        return sign_in_page(
            &ctx,
            request,
            Some("That password is not right for this role."),
            StatusCode::UNAUTHORIZED,
        );
    };
    tracing::info!(target: "aurora::audit", operator = %admin.name(), "dashboard sign-in");
    let mut response = redirect("/admin?done=signed-in");
    if let Some(cookie) = session::open(&ctx, &admin) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /admin/sign-out`.
#[handler]
pub async fn sign_out(ctx: Ctx<'_>, request: &Request, Form(form): Form<Fields>) -> Response {
    if let Err(refusal) = checked(&ctx, request, &form) {
        return *refusal;
    }
    let mut response = redirect("/admin");
    if let Some(cookie) = session::close(&ctx) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The session of a form post from our own page, or what to answer instead.
fn checked(ctx: &AppContext, request: &Request, form: &Fields) -> Result<Session, Box<Response>> {
    let Some(session) = session::current(ctx, request.headers()) else {
        let page = sign_in_page(ctx, request, Some("Sign in again to continue."), StatusCode::UNAUTHORIZED);
        return Err(Box::new(page));
    };
    if !session::same_origin(ctx, request.headers()) || !session.csrf_ok(ctx, form.get("csrf").map(String::as_str)) {
        let page = sign_in_page(ctx, request, Some("This form expired; reload the page."), StatusCode::FORBIDDEN);
        return Err(Box::new(page));
    }
    Ok(session)
}

fn confirmed(form: &Fields) -> bool {
    form.get("confirm").is_some_and(|c| c == "yes")
}

/// Runs an admin method as the operator, if their role may call it.
async fn call<T, F>(
    admin: &Admin,
    nsid: &'static str,
    run: impl FnOnce(RequestContext, Admin) -> F,
) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, XrpcError>>,
{
    let allowed = aurora_generated::auth::of(nsid).is_some_and(|rule| admin.may_call(rule));
    if !allowed {
        return Err("Only the administrator may do this.".to_owned());
    }
    run(RequestContext::new(nsid, Default::default(), None), admin.clone())
        .await
        .map_err(|e| e.message.unwrap_or_else(|| e.error.to_string()))
}

/// `POST /admin/accounts/:did/:action`.
#[handler]
pub async fn account_action(
    ctx: Ctx<'_>,
    request: &Request,
    Path((did_text, action)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Response {
    let session = match checked(&ctx, request, &form) {
        Ok(session) => session,
        Err(refusal) => return *refusal,
    };
    let back = |key: &str| redirect(&format!("/admin/accounts/{did_text}?done={key}"));
    let Ok(did) = did_text.parse::<aurora_atproto::syntax::Did>() else {
        return account_page(&ctx, &session, &did_text, None, None).await;
    };
    let unconfirmed = || "Tick “I confirm” to go ahead.".to_owned();
    let api = Api::new(Arc::clone(&ctx));
    let admin = &session.admin;
    let subject = json!({ "$type": "com.atproto.admin.defs#repoRef", "did": did });
    let outcome: Result<Response, String> = match action.as_str() {
        "takedown" if confirmed(&form) => {
            let mut takedown = json!({ "applied": true });
            if let Some(reference) = form.get("ref").map(|r| r.trim()).filter(|r| !r.is_empty()) {
                takedown["ref"] = reference.into();
            }
            let hours = form.get("hours").map(|h| h.trim()).filter(|h| !h.is_empty());
            let hours = match hours.map(str::parse::<i64>) {
                None => Ok(None),
                Some(Ok(h)) if (1..=87_600).contains(&h) => Ok(Some(h)),
                Some(_) => Err("Hours must be a whole number from 1 to 87600.".to_owned()),
            };
            match hours {
                Err(message) => Err(message),
                Ok(hours) => {
                    if let Some(hours) = hours {
                        takedown["expiresAt"] = crate::account::iso_after_secs(hours * 3600).into();
                    }
                    match serde_json::from_value(json!({ "subject": subject, "takedown": takedown })) {
                        Ok(input) => {
                            call(admin, update_subject_status::NSID, |c, a| api.update_subject_status(c, a, input))
                                .await
                                .map(|_| back(if hours.is_some() { "suspended" } else { "takedown" }))
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
            }
        }
        "untakedown" if confirmed(&form) => {
            match serde_json::from_value(json!({ "subject": subject, "takedown": { "applied": false } })) {
                Ok(input) => call(admin, update_subject_status::NSID, |c, a| api.update_subject_status(c, a, input))
                    .await
                    .map(|_| back("untakedown")),
                Err(e) => Err(e.to_string()),
            }
        }
        "invites" if confirmed(&form) => {
            if form.get("disabled").is_some_and(|d| d == "true") {
                let input =
                    disable_account_invites::Input { account: did.clone(), note: None, extra: Default::default() };
                call(admin, disable_account_invites::NSID, |c, a| api.disable_account_invites(c, a, input))
                    .await
                    .map(|_| back("invites-disabled"))
            } else {
                let input =
                    enable_account_invites::Input { account: did.clone(), note: None, extra: Default::default() };
                call(admin, enable_account_invites::NSID, |c, a| api.enable_account_invites(c, a, input))
                    .await
                    .map(|_| back("invites-enabled"))
            }
        }
        "password" if confirmed(&form) => {
            let password = crate::account::password::random_base32(24).to_lowercase();
            let input = update_account_password::Input {
                did: did.clone(),
                password: password.clone(),
                extra: Default::default(),
            };
            match call(admin, update_account_password::NSID, |c, a| api.update_account_password(c, a, input)).await {
                // Shown once, on this page, never in a URL.
                Ok(()) => {
                    let notice = format!("The new password is {password} — give it to the account holder now; it is not shown again. Every session ended.");
                    return account_page(&ctx, &session, &did_text, Some(notice), None).await;
                }
                Err(message) => Err(message),
            }
        }
        "handle" if confirmed(&form) => {
            match form.get("handle").map(|h| h.trim().to_lowercase()).unwrap_or_default().parse() {
                Ok(handle) => {
                    let input = update_account_handle::Input { did: did.clone(), handle, extra: Default::default() };
                    call(admin, update_account_handle::NSID, |c, a| api.update_account_handle(c, a, input))
                        .await
                        .map(|_| back("handle"))
                }
                Err(_) => Err("That is not a valid handle.".to_owned()),
            }
        }
        "email" if confirmed(&form) => {
            let email = form.get("email").map(|e| e.trim().to_owned()).unwrap_or_default();
            if crate::account::email::is_valid(&email) {
                let input = update_account_email::Input {
                    account: aurora_atproto::syntax::AtIdentifier::Did(did.clone()),
                    email,
                    extra: Default::default(),
                };
                call(admin, update_account_email::NSID, |c, a| api.update_account_email(c, a, input))
                    .await
                    .map(|_| back("email"))
            } else {
                Err("That is not a valid email address.".to_owned())
            }
        }
        "delete" => {
            let handle = crate::account::find_actor(&ctx.db, crate::account::Lookup::Did(&did))
                .await
                .ok()
                .flatten()
                .and_then(|a| a.handle)
                .map(|h| h.to_string());
            let typed = form.get("confirm_handle").map(|h| h.trim().trim_start_matches('@').to_lowercase());
            if handle.is_none() || typed != handle {
                Err("Type the account's handle exactly to confirm its deletion.".to_owned())
            } else {
                let input = delete_account::Input { did: did.clone(), extra: Default::default() };
                call(admin, delete_account::NSID, |c, a| {
                    aurora_generated::com::atproto::admin::Service::delete_account(&api, c, a, input)
                })
                .await
                .map(|_| redirect("/admin/accounts?done=deleted"))
            }
        }
        "takedown" | "untakedown" | "invites" | "password" | "handle" | "email" => Err(unconfirmed()),
        _ => Err(format!("There is no action {action:?}.")),
    };
    match outcome {
        Ok(response) => response,
        Err(message) => {
            let mut response = account_page(&ctx, &session, &did_text, None, Some(message)).await;
            if response.status() == StatusCode::OK {
                response.set_status(StatusCode::BAD_REQUEST);
            }
            response
        }
    }
}

/// `POST /admin/invites/:action`: `create` (codes for the administrator) or `disable`.
#[handler]
pub async fn invite_action(
    ctx: Ctx<'_>,
    request: &Request,
    Path(action): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let session = match checked(&ctx, request, &form) {
        Ok(session) => session,
        Err(refusal) => return *refusal,
    };
    let api = Api::new(Arc::clone(&ctx));
    let number = |name: &str, max: i64| {
        form.get(name).and_then(|v| v.trim().parse::<i64>().ok()).filter(|n| (1..=max).contains(n))
    };
    let outcome = match action.as_str() {
        "create" => match (number("count", 100), number("uses", 10_000)) {
            (Some(count), Some(uses)) => {
                let input = create_invite_codes::Input {
                    code_count: count,
                    use_count: uses,
                    for_accounts: None,
                    extra: Default::default(),
                };
                match call(&session.admin, create_invite_codes::NSID, |c, a| api.create_invite_codes(c, a, input)).await
                {
                    Ok(answer) => {
                        let created = answer.codes.into_iter().flat_map(|a| a.codes).collect();
                        let notice = Some("Invite codes created.".to_owned());
                        return invites_page(&ctx, &session, None, (notice, None), created).await;
                    }
                    Err(message) => Err(message),
                }
            }
            _ => Err("Give how many codes (1–100) and uses per code (1–10000).".to_owned()),
        },
        "disable" if confirmed(&form) => {
            let code = form.get("code").cloned().unwrap_or_default();
            let input = aurora_generated::com::atproto::admin::disable_invite_codes::Input {
                codes: Some(vec![code]),
                accounts: None,
                extra: Default::default(),
            };
            call(&session.admin, aurora_generated::com::atproto::admin::disable_invite_codes::NSID, |c, a| {
                api.disable_invite_codes(c, a, input)
            })
            .await
            .map(|()| redirect("/admin/invites?done=invite-disabled"))
        }
        "disable" => Err("Tick “confirm” to disable the code.".to_owned()),
        _ => Err(format!("There is no action {action:?}.")),
    };
    match outcome {
        Ok(response) => response,
        Err(message) => {
            let mut response = invites_page(&ctx, &session, None, (None, Some(message)), Vec::new()).await;
            response.set_status(StatusCode::BAD_REQUEST);
            response
        }
    }
}

/// `POST /admin/jobs/:name/run`: runs a background job now (the administrator only).
#[handler]
pub async fn job_action(
    ctx: Ctx<'_>,
    request: &Request,
    Path(name): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let session = match checked(&ctx, request, &form) {
        Ok(session) => session,
        Err(refusal) => return *refusal,
    };
    let api = Api::new(Arc::clone(&ctx));
    let input = run_job::Input { name, extra: Default::default() };
    match call(&session.admin, run_job::NSID, |c, a| api.run_job(c, a, input)).await {
        Ok(_) => redirect("/admin?done=job-ran"),
        Err(message) => overview(&ctx, &session, None, Some(message)).await,
    }
}
