//! The account pages (`/account`): signed in on the same browser session as the OAuth pages, a
//! person sees and revokes the apps they connected and their sessions and devices, manages app
//! passwords, changes email, handle and password, sets up an authenticator app, and deactivates
//! or deletes the account. Changes go through the same service methods the XRPC API calls.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use poem::http::{header, HeaderMap, HeaderValue, StatusCode};
use poem::web::{Data, Form, Query};
use poem::{handler, Request, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::identity::{self as identity_lex, Service as _};
use aurora_generated::com::atproto::server::{self as server_lex, Service as _};
use aurora_xrpc::auth::{Access, Grant};
use aurora_xrpc::{RequestContext, XrpcError};

use crate::account::{self, password, totp, Account, Lookup};
use crate::api::Api;
use crate::context::AppContext;
use crate::db::entities::{oauth_authorized_client, oauth_device, oauth_device_account};
use crate::oauth::authorize::{
    check_credentials, csrf_ok, csrf_token, error_page, html, secure, SignInError, FROM_APP, FROM_EMAIL,
};
use crate::oauth::{device, now, session};
use crate::sequencer::AccountStatus;

#[derive(Template)]
#[template(path = "account/sign_in.html")]
struct SignInPage<'a> {
    hostname: &'a str,
    csrf: &'a str,
    identifier: String,
    error: Option<String>,
    notice: Option<String>,
    code_hint: &'a str,
}

struct AppRow {
    client_id: String,
    name: String,
    scope: String,
    sessions: usize,
}

struct SessionRow {
    kind: &'static str,
    id: String,
    label: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "account/page.html")]
struct AccountPage<'a> {
    hostname: &'a str,
    csrf: &'a str,
    did: String,
    handle: String,
    email: Option<String>,
    email_confirmed: bool,
    deactivated: bool,
    notice: Option<String>,
    error: Option<String>,
    apps: Vec<AppRow>,
    sessions: Vec<SessionRow>,
    app_passwords: Vec<crate::db::entities::app_password::Model>,
    totp_enabled: bool,
    recovery_left: usize,
    pending_email: String,
    email_code_needed: bool,
    delete_code_sent: bool,
}

#[derive(Template)]
#[template(path = "account/totp.html")]
struct TotpPage<'a> {
    hostname: &'a str,
    csrf: &'a str,
    did: String,
    qr: String,
    secret: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/secret.html")]
struct SecretPage<'a> {
    hostname: &'a str,
    title: &'a str,
    explanation: &'a str,
    values: Vec<String>,
}

/// What a finished change says, by its key (the redirect carries the key, never the text).
fn done_message(key: &str) -> Option<&'static str> {
    Some(match key {
        "signed-in" => "Signed in.",
        "app-revoked" => "The app's access was revoked.",
        "session-ended" => "The session was ended.",
        "app-password-revoked" => "The app password was revoked.",
        "email-changed" => "Your email address was changed. Check your inbox to confirm it.",
        "handle-changed" => "Your handle was changed.",
        "password-changed" => "Your password was changed; sessions opened with the old one were ended.",
        "totp-off" => "Two-factor sign-in is off.",
        "deactivated" => "Your account is deactivated.",
        "reactivated" => "Your account is active again.",
        "signed-out" => "Signed out.",
        _ => return None,
    })
}

fn back(key: &str, did: Option<&Did>) -> Response {
    let location = match did {
        Some(did) => format!("/account?did={did}&done={key}"),
        None => format!("/account?done={key}"),
    };
    let mut response = Response::builder().status(StatusCode::SEE_OTHER).body(());
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Page answers carry the browser's cookies when they are new.
fn finish(ctx: &AppContext, response: Response, device: Option<&device::Device>, csrf: Option<&str>) -> Response {
    let secure_cookie = ctx.config.public_url.starts_with("https://");
    let mut response = secure(response, None, None);
    if let Some(value) = device.and_then(|d| d.new_cookie.as_deref()) {
        response.headers_mut().append(header::SET_COOKIE, device::device_cookie(value, secure_cookie));
    }
    if let Some(token) = csrf {
        response
            .headers_mut()
            .append(header::SET_COOKIE, device::set_cookie(device::CSRF_COOKIE, token, 86_400, secure_cookie, "/"));
    }
    response
}

fn internal(ctx: &AppContext, cause: impl std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "account page failed");
    error_page(
        ctx,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not complete this request.",
    )
}

/// `GET /account`.
#[handler]
pub async fn account_page(
    ctx: Data<&Arc<AppContext>>,
    http: &Request,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx: &AppContext = &ctx;
    let now = now();
    let remote = http.remote_addr().as_socket_addr().map(|a| a.ip().to_string());
    let device = match device::current_or_new(&ctx.db, http.headers(), remote, now).await {
        Ok(device) => device,
        Err(e) => return internal(ctx, e),
    };
    let (csrf, new_csrf) = csrf_token(http.headers());
    let notice = query.get("done").and_then(|k| done_message(k)).map(str::to_owned);
    let signed_in = device::accounts(&ctx.db, &device.id, now).await.unwrap_or_default();
    let chosen = match query.get("did").and_then(|d| d.parse::<Did>().ok()) {
        Some(did) if signed_in.contains(&did) => Some(did),
        _ => signed_in.first().cloned(),
    };
    let response = match chosen {
        None => {
            let page = SignInPage {
                hostname: &ctx.config.hostname,
                csrf: &csrf,
                identifier: String::new(),
                error: None,
                notice,
                code_hint: "",
            };
            html(&page, StatusCode::OK)
        }
        Some(did) => match dashboard(ctx, &did, &csrf, View { notice, ..View::default() }).await {
            Ok(response) => response,
            Err(e) => internal(ctx, e),
        },
    };
    finish(ctx, response, Some(&device), new_csrf.then_some(csrf.as_str()))
}

/// What the dashboard shows besides the account's state.
#[derive(Default)]
struct View {
    notice: Option<String>,
    error: Option<String>,
    pending_email: String,
    email_code_needed: bool,
    delete_code_sent: bool,
}

async fn dashboard(ctx: &AppContext, did: &Did, csrf: &str, view: View) -> Result<Response, sea_orm::DbErr> {
    let Some(found) = account::find(&ctx.db, Lookup::Did(did)).await? else {
        return Ok(error_page(ctx, StatusCode::NOT_FOUND, "No such account", "This account no longer exists."));
    };
    let sessions = session::for_account(&ctx.db, did).await?;
    let authorized = oauth_authorized_client::Entity::find()
        .filter(oauth_authorized_client::Column::Did.eq(did))
        .all(&ctx.db)
        .await?;
    let apps = authorized
        .into_iter()
        .map(|a| AppRow {
            name: client_label(&a.client_id),
            sessions: sessions.iter().filter(|s| s.client_id == a.client_id).count(),
            scope: a.scope,
            client_id: a.client_id,
        })
        .collect();
    let mut rows: Vec<SessionRow> = sessions
        .iter()
        .map(|s| SessionRow {
            kind: "oauth",
            id: s.id.clone(),
            label: client_label(&s.client_id),
            detail: format!("app session, signed in {}", when(s.created_at)),
        })
        .collect();
    for token in account::refresh_tokens(&ctx.db, did).await? {
        let label = match &token.app_password_name {
            Some(name) => format!("app password \"{name}\""),
            None => "password session".to_owned(),
        };
        rows.push(SessionRow {
            kind: "password",
            id: token.id,
            label,
            detail: format!("valid until {}", token.expires_at),
        });
    }
    let devices =
        oauth_device_account::Entity::find().filter(oauth_device_account::Column::Did.eq(did)).all(&ctx.db).await?;
    for signed_in in devices {
        let browser = oauth_device::Entity::find_by_id(signed_in.device_id.clone()).one(&ctx.db).await?;
        let agent = browser.and_then(|b| b.user_agent).unwrap_or_else(|| "a browser".to_owned());
        rows.push(SessionRow {
            kind: "device",
            id: signed_in.device_id,
            label: "browser sign-in".to_owned(),
            detail: format!("{agent}, signed in {}", when(signed_in.authenticated_at)),
        });
    }
    let page = AccountPage {
        hostname: &ctx.config.hostname,
        csrf,
        did: did.to_string(),
        handle: found.handle().to_string(),
        email: found.email().map(str::to_owned),
        email_confirmed: found.email_confirmed(),
        deactivated: found.status() == AccountStatus::Deactivated,
        notice: view.notice,
        error: view.error,
        apps,
        sessions: rows,
        app_passwords: account::app_passwords(&ctx.db, did).await?,
        totp_enabled: totp::is_enabled(&ctx.db, did).await?,
        recovery_left: totp::recovery_codes_left(&ctx.db, did).await?,
        pending_email: view.pending_email,
        email_code_needed: view.email_code_needed,
        delete_code_sent: view.delete_code_sent,
    };
    let status = if page.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html(&page, status))
}

/// A client id as people read it: a development app, or the metadata document's host.
fn client_label(client_id: &str) -> String {
    if client_id.starts_with("http://localhost") {
        return "An app on your computer (development)".to_owned();
    }
    url::Url::parse(client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| client_id.to_owned())
}

fn when(unix: i64) -> String {
    aurora_atproto::syntax::Datetime::from_unix_micros(unix * 1_000_000).as_str().to_owned()
}

/// `POST /account/sign-in`.
#[handler]
pub async fn sign_in(
    ctx: Data<&Arc<AppContext>>,
    http: &Request,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let ctx: &AppContext = &ctx;
    let now = now();
    if !csrf_ok(ctx, http.headers(), &form) {
        return error_page(ctx, StatusCode::FORBIDDEN, "This form expired", "Reload the page and try again.");
    }
    let device = match device::current(&ctx.db, http.headers()).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return error_page(
                ctx,
                StatusCode::FORBIDDEN,
                "Cookies are needed",
                "Allow cookies for this site and try again.",
            )
        }
        Err(e) => return internal(ctx, e),
    };
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let identifier = form.get("identifier").map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let code = form.get("code").map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    let retry = |error: Option<&str>, notice: Option<&str>, code_hint: &'static str| {
        let page = SignInPage {
            hostname: &ctx.config.hostname,
            csrf: &csrf,
            identifier: identifier.clone(),
            error: error.map(str::to_owned),
            notice: notice.map(str::to_owned),
            code_hint,
        };
        let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        secure(html(&page, status), None, None)
    };
    let password = form.get("password").cloned().unwrap_or_default();
    match check_credentials(ctx, http, &identifier, password, code.as_deref()).await {
        Ok(found) => {
            let remember = form.get("remember").is_some_and(|v| v == "1");
            match device::signed_in(&ctx.db, &device, found.did(), remember, now).await {
                Ok(()) => back("signed-in", Some(found.did())),
                Err(e) => internal(ctx, e),
            }
        }
        Err(SignInError::Wrong) => retry(Some("Invalid identifier or password"), None, ""),
        Err(SignInError::TakenDown) => retry(Some("This account has been taken down"), None, ""),
        Err(SignInError::CodeSent) => retry(None, Some("A sign-in code was sent to your email address."), FROM_EMAIL),
        Err(SignInError::TotpRequired) => {
            retry(None, Some("Enter the code from your authenticator app (or a recovery code)."), FROM_APP)
        }
        Err(SignInError::BadCode(from, message)) => retry(Some(message), None, from),
        Err(SignInError::Busy(message)) => retry(Some(message), None, ""),
        Err(SignInError::Internal(cause)) => internal(ctx, cause),
    }
}

/// A change posted from the dashboard: its form, checked, and the signed-in account it is for.
struct Change {
    form: HashMap<String, String>,
    device: String,
    account: Account,
    csrf: String,
    headers: HeaderMap,
}

impl Change {
    fn did(&self) -> &Did {
        self.account.did()
    }

    fn field(&self, name: &str) -> &str {
        self.form.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The account as a password session: what the XRPC service methods take.
    fn access(&self) -> Access {
        Access { did: self.did().clone(), grant: Grant::Session }
    }

    fn request(&self, nsid: &'static str) -> RequestContext {
        RequestContext::new(nsid, self.headers.clone(), None)
    }
}

async fn change(ctx: &AppContext, http: &Request, form: HashMap<String, String>) -> Result<Change, Response> {
    if !csrf_ok(ctx, http.headers(), &form) {
        return Err(error_page(ctx, StatusCode::FORBIDDEN, "This form expired", "Reload the page and try again."));
    }
    let now = now();
    let device = match device::current(&ctx.db, http.headers()).await {
        Ok(Some(id)) => id,
        Ok(None) => return Err(back("signed-out", None)),
        Err(e) => return Err(internal(ctx, e)),
    };
    let signed_in = device::accounts(&ctx.db, &device, now).await.map_err(|e| internal(ctx, e))?;
    let did = form.get("did").and_then(|d| d.parse::<Did>().ok()).filter(|d| signed_in.contains(d));
    let Some(did) = did else { return Err(back("signed-out", None)) };
    let account = match account::find(&ctx.db, Lookup::Did(&did)).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(back("signed-out", None)),
        Err(e) => return Err(internal(ctx, e)),
    };
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    Ok(Change { form, device, account, csrf, headers: http.headers().clone() })
}

/// The dashboard again, with what went wrong.
async fn failed(ctx: &AppContext, change: &Change, error: &XrpcError, view: View) -> Response {
    let message = error.message.clone().unwrap_or_else(|| error.error.to_string());
    let view = View { error: Some(message), ..view };
    dashboard(ctx, change.did(), &change.csrf, view).await.unwrap_or_else(|e| internal(ctx, e))
}

macro_rules! change_handler {
    ($(#[$doc:meta])* $name:ident, |$ctx:ident, $change:ident, $api:ident| $body:block) => {
        $(#[$doc])*
        #[handler]
        pub async fn $name(ctx: Data<&Arc<AppContext>>, http: &Request, Form(form): Form<HashMap<String, String>>) -> Response {
            let shared: Arc<AppContext> = ctx.0.clone();
            let $ctx: &AppContext = &shared;
            #[allow(unused_variables)]
            let $api = Api::new(shared.clone());
            let $change = match change($ctx, http, form).await {
                Ok(change) => change,
                Err(response) => return response,
            };
            secure($body, None, None)
        }
    };
}

change_handler!(
    /// `POST /account/sign-out`: this browser forgets the account.
    sign_out,
    |ctx, change, api| {
        match device::sign_out(&ctx.db, &change.device, change.did()).await {
            Ok(()) => back("signed-out", None),
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/apps/revoke`: ends the app's sessions and forgets what it was granted.
    revoke_app,
    |ctx, change, api| {
        let client_id = change.field("client_id").to_owned();
        let revoked = async {
            session::delete_for_client(&ctx.db, change.did(), &client_id).await?;
            oauth_authorized_client::Entity::delete_by_id((change.did().clone(), client_id.clone())).exec(&ctx.db).await?;
            Ok::<_, sea_orm::DbErr>(())
        };
        match revoked.await {
            Ok(()) => back("app-revoked", Some(change.did())),
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/sessions/revoke`: one app session, password session, or browser sign-in.
    end_session,
    |ctx, change, api| {
        let id = change.field("id").to_owned();
        let ended = async {
            match change.field("kind") {
                "oauth" => {
                    let owned = session::for_account(&ctx.db, change.did()).await?.into_iter().any(|s| s.id == id);
                    if owned {
                        session::delete(&ctx.db, &id).await?;
                    }
                }
                "password" => {
                    let owned = account::refresh_tokens(&ctx.db, change.did()).await?.into_iter().any(|t| t.id == id);
                    if owned {
                        account::delete_refresh_token(&ctx.db, &id).await?;
                    }
                }
                "device" => device::sign_out(&ctx.db, &id, change.did()).await?,
                _ => {}
            }
            Ok::<_, sea_orm::DbErr>(())
        };
        match ended.await {
            Ok(()) => back("session-ended", Some(change.did())),
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/app-passwords/create`: shows the new password once.
    create_app_password,
    |ctx, change, api| {
        let input = server_lex::create_app_password::Input {
            name: change.field("name").to_owned(),
            privileged: Some(change.field("privileged") == "1"),
            extra: Default::default(),
        };
        match api.create_app_password(change.request(server_lex::create_app_password::NSID), change.access(), input).await {
            Ok(created) => html(
                &SecretPage {
                    hostname: &ctx.config.hostname,
                    title: "Your new app password",
                    explanation: "Enter it in the app in place of your account password. It is shown only this once.",
                    values: vec![created.password],
                },
                StatusCode::OK,
            ),
            Err(e) => failed(ctx, &change, &e, View::default()).await,
        }
    }
);

change_handler!(
    /// `POST /account/app-passwords/revoke`.
    revoke_app_password,
    |ctx, change, api| {
        match account::revoke_app_password(&ctx.db, change.did(), change.field("name")).await {
            Ok(()) => {
                ctx.gate.forget(change.did());
                back("app-password-revoked", Some(change.did()))
            }
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/email`: a confirmed address first proves itself with a mailed code.
    change_email,
    |ctx, change, api| {
        let email = change.field("email").trim().to_owned();
        let code = Some(change.field("code").trim().to_owned()).filter(|c| !c.is_empty());
        if code.is_none() && change.account.email_confirmed() {
            let asked = api.request_email_update(change.request(server_lex::request_email_update::NSID), change.access()).await;
            let view = View { pending_email: email, email_code_needed: true, notice: Some("A code was sent to your current address.".into()), ..View::default() };
            return secure(
                match asked {
                    Ok(_) => dashboard(ctx, change.did(), &change.csrf, view).await.unwrap_or_else(|e| internal(ctx, e)),
                    Err(e) => failed(ctx, &change, &e, View::default()).await,
                },
                None,
                None,
            );
        }
        let input = server_lex::update_email::Input { email: email.clone(), email_auth_factor: None, token: code, extra: Default::default() };
        match api.update_email(change.request(server_lex::update_email::NSID), change.access(), input).await {
            Ok(()) => back("email-changed", Some(change.did())),
            Err(e) => failed(ctx, &change, &e, View { pending_email: email, email_code_needed: change.account.email_confirmed(), ..View::default() }).await,
        }
    }
);

change_handler!(
    /// `POST /account/handle`.
    change_handle,
    |ctx, change, api| {
        let handle = match change.field("handle").trim().to_lowercase().parse() {
            Ok(handle) => handle,
            Err(_) => return secure(failed(ctx, &change, &XrpcError::invalid_request("That is not a valid handle"), View::default()).await, None, None),
        };
        let input = identity_lex::update_handle::Input { handle, extra: Default::default() };
        match api.update_handle(change.request(identity_lex::update_handle::NSID), change.access(), input).await {
            Ok(()) => back("handle-changed", Some(change.did())),
            Err(e) => failed(ctx, &change, &e, View::default()).await,
        }
    }
);

/// Whether `password` is the account's password.
async fn password_ok(change: &Change, password: &str) -> Result<bool, XrpcError> {
    match &change.account.account {
        Some(credentials) => Ok(password::verify(password.to_owned(), credentials.password_hash.clone()).await?),
        None => Ok(false),
    }
}

change_handler!(
    /// `POST /account/password`: the current password, then the new one.
    change_password,
    |ctx, change, api| {
        let new = change.field("new").to_owned();
        match password_ok(&change, change.field("current")).await {
            Ok(true) => {}
            Ok(false) => return secure(failed(ctx, &change, &XrpcError::invalid_request("The current password is not right"), View::default()).await, None, None),
            Err(e) => return secure(failed(ctx, &change, &e, View::default()).await, None, None),
        }
        if new.chars().count() < 8 || new.len() > 256 {
            return secure(failed(ctx, &change, &XrpcError::invalid_request("A password has 8 to 256 characters"), View::default()).await, None, None);
        }
        let hash = match password::hash(new).await {
            Ok(hash) => hash,
            Err(e) => return secure(failed(ctx, &change, &e.into(), View::default()).await, None, None),
        };
        match account::set_password(&ctx.db, change.did(), hash).await {
            Ok(()) => {
                ctx.gate.forget(change.did());
                back("password-changed", Some(change.did()))
            }
            Err(e) => internal(ctx, e),
        }
    }
);

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct Notice<'a> {
    hostname: &'a str,
    title: &'a str,
    message: &'a str,
}

change_handler!(
    /// `POST /account/totp/enroll`: a new secret, shown as a QR code.
    totp_enroll,
    |ctx, change, api| {
        match totp::enroll(ctx, change.did(), change.account.handle().as_str()).await {
            Ok(enrollment) => html(
                &TotpPage {
                    hostname: &ctx.config.hostname,
                    csrf: &change.csrf,
                    did: change.did().to_string(),
                    qr: enrollment.qr_data_url,
                    secret: enrollment.secret,
                    error: None,
                },
                StatusCode::OK,
            ),
            Err(totp::TotpError::NotPending) => back("signed-in", Some(change.did())),
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/totp/confirm`: the first code turns it on; the recovery codes are shown once.
    totp_confirm,
    |ctx, change, api| {
        match totp::confirm(ctx, change.did(), change.account.handle().as_str(), change.field("code")).await {
            Ok(codes) => html(
                &SecretPage {
                    hostname: &ctx.config.hostname,
                    title: "Two-factor sign-in is on",
                    explanation: "Keep these recovery codes somewhere safe: each one signs you in once if you lose your authenticator app. They are shown only this once.",
                    values: codes,
                },
                StatusCode::OK,
            ),
            Err(totp::TotpError::WrongCode) => html(
                &Notice { hostname: &ctx.config.hostname, title: "That code is not valid", message: "Set up the authenticator app again and enter a fresh code." },
                StatusCode::BAD_REQUEST,
            ),
            Err(totp::TotpError::NotPending) => back("signed-in", Some(change.did())),
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/totp/disable`: a current code (or recovery code) turns it off.
    totp_disable,
    |ctx, change, api| {
        match totp::verify(ctx, change.did(), change.account.handle().as_str(), change.field("code")).await {
            Ok(()) => match totp::disable(&ctx.db, change.did()).await {
                Ok(()) => back("totp-off", Some(change.did())),
                Err(e) => internal(ctx, e),
            },
            Err(totp::TotpError::WrongCode) => failed(ctx, &change, &XrpcError::invalid_request("That code is not valid"), View::default()).await,
            Err(e) => internal(ctx, e),
        }
    }
);

change_handler!(
    /// `POST /account/deactivate`: with the password.
    deactivate,
    |ctx, change, api| {
        match password_ok(&change, change.field("password")).await {
            Ok(true) => {}
            Ok(false) => return secure(failed(ctx, &change, &XrpcError::invalid_request("The password is not right"), View::default()).await, None, None),
            Err(e) => return secure(failed(ctx, &change, &e, View::default()).await, None, None),
        }
        let input = server_lex::deactivate_account::Input { delete_after: None, extra: Default::default() };
        match api.deactivate_account(change.request(server_lex::deactivate_account::NSID), change.access(), input).await {
            Ok(()) => back("deactivated", Some(change.did())),
            Err(e) => failed(ctx, &change, &e, View::default()).await,
        }
    }
);

change_handler!(
    /// `POST /account/reactivate`.
    reactivate,
    |ctx, change, api| {
        match api.activate_account(change.request(server_lex::activate_account::NSID), change.access()).await {
            Ok(()) => back("reactivated", Some(change.did())),
            Err(e) => failed(ctx, &change, &e, View::default()).await,
        }
    }
);

change_handler!(
    /// `POST /account/delete`: first mails a code; with the code and the password, deletes.
    delete,
    |ctx, change, api| {
        let code = change.field("code").trim().to_owned();
        if code.is_empty() {
            let asked = api.request_account_delete(change.request(server_lex::request_account_delete::NSID), change.access()).await;
            let view = View { delete_code_sent: true, notice: Some("A code was sent to your email address.".into()), ..View::default() };
            return secure(
                match asked {
                    Ok(()) => dashboard(ctx, change.did(), &change.csrf, view).await.unwrap_or_else(|e| internal(ctx, e)),
                    Err(e) => failed(ctx, &change, &e, View::default()).await,
                },
                None,
                None,
            );
        }
        let input = server_lex::delete_account::Input {
            did: change.did().clone(),
            password: change.field("password").to_owned(),
            token: code,
            extra: Default::default(),
        };
        match api.delete_account(change.request(server_lex::delete_account::NSID), input).await {
            Ok(()) => html(
                &Notice { hostname: &ctx.config.hostname, title: "Your account was deleted", message: "Its data is no longer served." },
                StatusCode::OK,
            ),
            Err(e) => failed(ctx, &change, &e, View { delete_code_sent: true, ..View::default() }).await,
        }
    }
);
