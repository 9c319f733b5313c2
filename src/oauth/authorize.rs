//! The authorization endpoint: the pages a person signs in and consents on, and the redirect
//! back to the app with a code (or the reason there is none).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use poem::http::{header, HeaderMap, HeaderValue, StatusCode};
use poem::web::{Data, Form, Html, Query};
use poem::{handler, IntoResponse, Request as HttpRequest, Response};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use aurora_atproto::syntax::{AtIdentifier, Did};

use super::client::{self, Client};
use super::describe::{self, EMAIL_FIELD};
use super::device::{self, CSRF_COOKIE};
use super::request::{self, Parameters, Request, ResponseMode};
use super::{issuer, now, CODE_SECS, REQUEST_SECS};
use crate::account::{self, email_token, password, Account, Lookup};
use crate::context::AppContext;
use crate::db::entities::oauth_authorized_client;
use crate::mail::Purpose;

/// The stylesheet the pages share (served, so the pages' CSP needs no inline styles).
#[handler]
pub fn stylesheet() -> Response {
    let mut response = include_str!("../../templates/oauth/style.css").into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

#[derive(Template)]
#[template(path = "oauth/sign_in.html")]
struct SignInPage<'a> {
    hostname: &'a str,
    client_name: String,
    client_id: &'a str,
    request_uri: &'a str,
    csrf: &'a str,
    identifier: String,
    error: Option<String>,
    notice: Option<String>,
    needs_code: bool,
    code_hint: String,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentPage<'a> {
    hostname: &'a str,
    client_name: String,
    client_id: &'a str,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    trusted: bool,
    request_uri: &'a str,
    csrf: &'a str,
    did: String,
    handle: String,
    permissions: Vec<describe::Item>,
    scope: String,
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct ErrorPage<'a> {
    hostname: &'a str,
    title: &'a str,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "oauth/form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(String, String)>,
    nonce: String,
}

/// How a request that cannot go on ends: on an error page of ours (when the app's redirect is
/// not known to be safe), or back at the app with an error.
enum Failure {
    Page(StatusCode, &'static str, String),
    Redirect(Box<Parameters>, &'static str, String),
    Internal(String),
}

impl From<sea_orm::DbErr> for Failure {
    fn from(error: sea_orm::DbErr) -> Self {
        Failure::Internal(error.to_string())
    }
}

/// A page's security headers: nothing but this server's styles and images, forms posting here
/// (and, after consent, redirecting to the app), never framed, never cached.
pub(crate) fn secure(mut response: Response, form_target: Option<&str>, script_nonce: Option<&str>) -> Response {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let script = script_nonce.map_or_else(|| "'none'".to_owned(), |n| format!("'nonce-{n}'"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src {script}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert("content-security-policy", value);
    }
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // `no-referrer` would make browsers send `Origin: null` on our own form posts.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn html<T: Template>(page: &T, status: StatusCode) -> Response {
    match page.render() {
        Ok(text) => Html(text).with_status(status).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    }
}

pub(crate) fn error_page(ctx: &AppContext, status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { hostname: &ctx.config.hostname, title, message };
    secure(html(&page, status), None, None)
}

/// The origin of a redirect URI, for the pages' `form-action`.
fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        // Private-use schemes have no origin; allow the scheme.
        url::Origin::Opaque(_) => Some(format!("{}:", url.scheme())),
    }
}

/// The answer that takes the browser back to the app with `fields` (and `iss`, `state`).
fn redirect_back(ctx: &AppContext, parameters: &Parameters, fields: &[(&str, &str)]) -> Response {
    let mut all: Vec<(String, String)> = Vec::new();
    if let Some(state) = &parameters.state {
        all.push(("state".into(), state.clone()));
    }
    all.push(("iss".into(), issuer(&ctx.config)));
    all.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&all).finish();
    let target = match parameters.response_mode {
        ResponseMode::FormPost => {
            let nonce = super::random_id("", 16);
            let page = FormPostPage { action: parameters.redirect_uri.clone(), fields: all, nonce: nonce.clone() };
            let origin = origin_of(&parameters.redirect_uri);
            return secure(html(&page, StatusCode::OK), origin.as_deref(), Some(&nonce));
        }
        ResponseMode::Query => {
            let separator = if parameters.redirect_uri.contains('?') { '&' } else { '?' };
            format!("{}{separator}{encoded}", parameters.redirect_uri)
        }
        ResponseMode::Fragment => format!("{}#{encoded}", parameters.redirect_uri),
    };
    let mut response = Response::builder().status(StatusCode::SEE_OTHER).body(());
    if let Ok(location) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn finish_failure(ctx: &AppContext, failure: Failure) -> Response {
    match failure {
        Failure::Page(status, title, message) => error_page(ctx, status, title, &message),
        Failure::Redirect(parameters, error, description) => {
            redirect_back(ctx, &parameters, &[("error", error), ("error_description", &description)])
        }
        Failure::Internal(cause) => {
            tracing::error!(error = %cause, "authorization page failed");
            error_page(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete this request.",
            )
        }
    }
}

/// The stored request a browser is working on, checked: ours, for this client, not yet
/// authorized, not expired, and opened on this browser only.
async fn load(
    ctx: &AppContext,
    client_id: Option<&str>,
    request_uri: Option<&str>,
    device_id: &str,
    now: i64,
) -> Result<(Request, Arc<Client>), Failure> {
    let bad =
        |message: &str| Failure::Page(StatusCode::BAD_REQUEST, "This sign-in link does not work", message.to_owned());
    let (Some(client_id), Some(request_uri)) = (client_id, request_uri) else {
        return Err(bad(
            "The link is missing its client_id or request_uri. Authorization requests must be pushed (PAR) first.",
        ));
    };
    let id = request::id_of(request_uri).ok_or_else(|| bad("Invalid request_uri"))?;
    let Some(stored) = request::find(&ctx.db, id).await? else { return Err(bad("Unknown request_uri")) };
    let to_app = |description: &str| {
        Failure::Redirect(Box::new(stored.parameters.clone()), "access_denied", description.to_owned())
    };
    if stored.row.client_id != client_id {
        request::delete(&ctx.db, id).await?;
        return Err(to_app("This request was initiated for another client"));
    }
    if stored.row.code.is_some() {
        return Err(to_app("This request was already authorized"));
    }
    if stored.row.expires_at < now {
        request::delete(&ctx.db, id).await?;
        return Err(to_app("This request has expired"));
    }
    if stored.row.device_id.as_deref().is_some_and(|d| d != device_id) {
        return Err(to_app("This request was initiated from another device"));
    }
    let client = client::load(ctx, client_id, now)
        .await
        .map_err(|e| Failure::Redirect(Box::new(stored.parameters.clone()), "invalid_request", e.description))?;
    request::open(&ctx.db, id, device_id, now + REQUEST_SECS).await?;
    Ok((stored, client))
}

/// The CSRF token of this browser, and whether its cookie must be set.
pub(crate) fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match device::cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(token) => (token.to_owned(), false),
        None => (super::random_id("", 16), true),
    }
}

/// Whether a form post comes from our own page: same origin, and the token of its cookie.
pub(crate) fn csrf_ok(ctx: &AppContext, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let origin_ok = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_none_or(|o| o == issuer(&ctx.config));
    let cookie = device::cookie(headers, CSRF_COOKIE);
    origin_ok && cookie.is_some() && cookie == form.get("csrf").map(String::as_str)
}

pub(crate) fn with_cookies(
    mut response: Response,
    ctx: &AppContext,
    device: &device::Device,
    csrf: Option<&str>,
) -> Response {
    let secure = ctx.config.public_url.starts_with("https://");
    if let Some(value) = &device.new_cookie {
        response.headers_mut().append(header::SET_COOKIE, device::device_cookie(value, secure));
    }
    if let Some(token) = csrf {
        response.headers_mut().append(header::SET_COOKIE, device::set_cookie(CSRF_COOKIE, token, 86_400, secure, "/"));
    }
    response
}

/// `GET /oauth/authorize?client_id=…&request_uri=…`.
#[handler]
pub async fn authorize_page(
    ctx: Data<&Arc<AppContext>>,
    http: &HttpRequest,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx: &AppContext = &ctx;
    let now = now();
    let device = match device::current_or_new(
        &ctx.db,
        http.headers(),
        http.remote_addr().as_socket_addr().map(|a| a.ip().to_string()),
        now,
    )
    .await
    {
        Ok(device) => device,
        Err(e) => return finish_failure(ctx, Failure::Internal(e.to_string())),
    };
    let (csrf, new_csrf) = csrf_token(http.headers());
    let response = match load(
        ctx,
        query.get("client_id").map(String::as_str),
        query.get("request_uri").map(String::as_str),
        &device.id,
        now,
    )
    .await
    {
        Err(failure) => finish_failure(ctx, failure),
        Ok((stored, client)) => match automatic(ctx, &stored, &client, &device.id, now).await {
            Ok(Some(response)) => response,
            Ok(None) => {
                let signed_in = device::accounts(&ctx.db, &device.id, now).await.unwrap_or_default();
                let chosen = choose_account(ctx, &stored.parameters, &signed_in).await;
                match chosen {
                    Some(account) => consent_page(ctx, &stored, &client, &csrf, &account).await,
                    None => sign_in_page(ctx, &stored, &client, &csrf, SignInState::default()),
                }
            }
            Err(failure) => finish_failure(ctx, failure),
        },
    };
    with_cookies(response, ctx, &device, new_csrf.then_some(csrf.as_str()))
}

/// The signed-in account to offer consent for: the one the app hinted at, else the only one
/// signed in; none when the person must sign in (or asked to).
async fn choose_account(ctx: &AppContext, parameters: &Parameters, signed_in: &[Did]) -> Option<Account> {
    if parameters.prompt.as_deref() == Some("login") {
        return None;
    }
    let mut candidates = Vec::new();
    for did in signed_in {
        if let Ok(Some(found)) = account::find(&ctx.db, Lookup::Did(did)).await {
            if !found.status().is_taken_down() {
                candidates.push(found);
            }
        }
    }
    match &parameters.login_hint {
        Some(hint) => candidates.into_iter().find(|a| a.did().as_str() == hint || a.handle().as_str() == hint),
        None if candidates.len() == 1 => candidates.pop(),
        None => None,
    }
}

/// Completes a request without a page when nothing needs asking: `prompt=none`, or a
/// confidential client already authorized for all it asks, with one signed-in account.
async fn automatic(
    ctx: &AppContext,
    stored: &Request,
    client: &Client,
    device_id: &str,
    now: i64,
) -> Result<Option<Response>, Failure> {
    let prompt = stored.parameters.prompt.as_deref();
    if prompt.is_some() && prompt != Some("none") {
        return Ok(None);
    }
    let signed_in = device::accounts(&ctx.db, device_id, now).await?;
    let account = choose_account(ctx, &stored.parameters, &signed_in).await;
    let silent = prompt == Some("none");
    let fail = |error: &'static str, description: &str| {
        Err(Failure::Redirect(Box::new(stored.parameters.clone()), error, description.to_owned()))
    };
    let Some(account) = account else {
        return if silent { fail("login_required", "Login is required") } else { Ok(None) };
    };
    let authorized =
        oauth_authorized_client::Entity::find_by_id((account.did().clone(), client.id.clone())).one(&ctx.db).await?;
    let covered = authorized.is_some_and(|a| {
        let granted: Vec<&str> = a.scope.split(' ').collect();
        stored.parameters.scope.split(' ').all(|token| granted.contains(&token))
    });
    if !covered || !client.is_confidential() {
        return if silent { fail("consent_required", "Consent is required") } else { Ok(None) };
    }
    grant(ctx, stored, account.did(), stored.parameters.scope.clone(), now).await.map(Some)
}

#[derive(Default)]
struct SignInState {
    identifier: String,
    error: Option<String>,
    notice: Option<String>,
    /// Where the code asked for comes from, when one is.
    code_from: Option<&'static str>,
}

pub(crate) const FROM_EMAIL: &str = "sent to your email";
pub(crate) const FROM_APP: &str = "from your authenticator app";

fn sign_in_page(ctx: &AppContext, stored: &Request, client: &Client, csrf: &str, state: SignInState) -> Response {
    let identifier = if state.identifier.is_empty() {
        stored.parameters.login_hint.clone().unwrap_or_default()
    } else {
        state.identifier
    };
    let status = if state.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = SignInPage {
        hostname: &ctx.config.hostname,
        client_name: client.display_name(),
        client_id: &client.id,
        request_uri: &format!("{}{}", request::REQUEST_URI_PREFIX, stored.row.id),
        csrf,
        identifier,
        error: state.error,
        notice: state.notice,
        needs_code: state.code_from.is_some(),
        code_hint: state.code_from.unwrap_or_default().to_owned(),
    };
    let origin = origin_of(&stored.parameters.redirect_uri);
    secure(html(&page, status), origin.as_deref(), None)
}

async fn consent_page(ctx: &AppContext, stored: &Request, client: &Client, csrf: &str, account: &Account) -> Response {
    let mut sets = Vec::new();
    for token in stored.parameters.scope.split(' ') {
        if let Some(aurora_atproto::permission::Scope::Include(include)) =
            aurora_atproto::permission::Scope::parse(token)
        {
            if let Ok(set) = super::permission_sets::resolve(ctx, include.nsid()).await {
                sets.push((set, include.aud().map(str::to_owned)));
            }
        }
    }
    let https = |uri: &Option<String>| uri.clone().filter(|u| u.starts_with("https://"));
    let page = ConsentPage {
        hostname: &ctx.config.hostname,
        client_name: client.display_name(),
        client_id: &client.id,
        client_uri: https(&client.metadata.client_uri),
        logo_uri: https(&client.metadata.logo_uri),
        trusted: client.is_confidential(),
        request_uri: &format!("{}{}", request::REQUEST_URI_PREFIX, stored.row.id),
        csrf,
        did: account.did().to_string(),
        handle: account.handle().to_string(),
        permissions: describe::describe(&stored.parameters.scope, &sets),
        scope: stored.parameters.scope.clone(),
    };
    let origin = origin_of(&stored.parameters.redirect_uri);
    secure(html(&page, StatusCode::OK), origin.as_deref(), None)
}

/// `POST /oauth/authorize/sign-in`: the password (and the mailed code, when the account asks
/// for one); on success the consent page. `switch=1` shows the sign-in form again.
#[handler]
pub async fn sign_in(
    ctx: Data<&Arc<AppContext>>,
    http: &HttpRequest,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let ctx: &AppContext = &ctx;
    let now = now();
    if !csrf_ok(ctx, http.headers(), &form) {
        return error_page(ctx, StatusCode::FORBIDDEN, "This form expired", "Reload the sign-in page and try again.");
    }
    let device = match device::current(&ctx.db, http.headers()).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return error_page(
                ctx,
                StatusCode::FORBIDDEN,
                "Cookies are needed",
                "Allow cookies for this site and start again.",
            )
        }
        Err(e) => return finish_failure(ctx, Failure::Internal(e.to_string())),
    };
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let (stored, client) = match load(
        ctx,
        form.get("client_id").map(String::as_str),
        form.get("request_uri").map(String::as_str),
        &device,
        now,
    )
    .await
    {
        Ok(loaded) => loaded,
        Err(failure) => return finish_failure(ctx, failure),
    };
    if form.contains_key("switch") {
        return sign_in_page(ctx, &stored, &client, &csrf, SignInState::default());
    }
    let identifier = form.get("identifier").map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let code = form.get("code").map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    let retry = |error: Option<&str>, notice: Option<&str>, code_from: Option<&'static str>| {
        let state = SignInState {
            identifier: identifier.clone(),
            error: error.map(str::to_owned),
            notice: notice.map(str::to_owned),
            code_from,
        };
        sign_in_page(ctx, &stored, &client, &csrf, state)
    };
    match check_credentials(ctx, http, &identifier, password, code.as_deref()).await {
        Ok(found) => {
            let remember = form.get("remember").is_some_and(|v| v == "1");
            if let Err(e) = device::signed_in(&ctx.db, &device, found.did(), remember, now).await {
                return finish_failure(ctx, Failure::Internal(e.to_string()));
            }
            consent_page(ctx, &stored, &client, &csrf, &found).await
        }
        Err(SignInError::Wrong) => retry(Some("Invalid identifier or password"), None, None),
        Err(SignInError::TakenDown) => retry(Some("This account has been taken down"), None, None),
        Err(SignInError::CodeSent) => {
            retry(None, Some("A sign-in code was sent to your email address."), Some(FROM_EMAIL))
        }
        Err(SignInError::TotpRequired) => {
            retry(None, Some("Enter the code from your authenticator app (or a recovery code)."), Some(FROM_APP))
        }
        Err(SignInError::BadCode(from, message)) => retry(Some(message), None, Some(from)),
        Err(SignInError::Busy(message)) => retry(Some(message), None, None),
        Err(SignInError::Internal(cause)) => finish_failure(ctx, Failure::Internal(cause)),
    }
}

/// What a sign-in page says when the password-hashing pool is full.
pub(crate) const BUSY: &str = "The server is busy; try again in a moment";
/// What a sign-in page says past the sign-in rate limit.
pub(crate) const TOO_MANY_ATTEMPTS: &str = "Too many sign-in attempts; try again later";

pub(crate) enum SignInError {
    Wrong,
    TakenDown,
    CodeSent,
    TotpRequired,
    BadCode(&'static str, &'static str),
    /// Too many sign-ins at once, or too many attempts for this account from here.
    Busy(&'static str),
    Internal(String),
}

/// The account an identifier and password sign in to: the account password only (app
/// passwords are for apps that cannot do this), plus the mailed code when the account asks.
pub(crate) async fn check_credentials(
    ctx: &AppContext,
    request: &poem::Request,
    identifier: &str,
    password: String,
    code: Option<&str>,
) -> Result<Account, SignInError> {
    let internal = |e: sea_orm::DbErr| SignInError::Internal(e.to_string());
    // The pages count against createSession's limits, so they are no way around them.
    if ctx.rate_limits.sign_in(request.headers(), aurora_xrpc::client_ip(request), identifier).await.is_err() {
        return Err(SignInError::Busy(TOO_MANY_ATTEMPTS));
    }
    let found = if identifier.contains('@') {
        account::find(&ctx.db, Lookup::Email(identifier)).await.map_err(internal)?
    } else {
        match identifier.parse::<AtIdentifier>() {
            Ok(parsed) => account::find_by_identifier(&ctx.db, &parsed).await.map_err(internal)?,
            Err(_) => None,
        }
    };
    let Some(credentials) = found.as_ref().and_then(|f| f.account.clone()) else {
        password::verify_nothing(password).await.map_err(|_| SignInError::Busy(BUSY))?;
        return Err(SignInError::Wrong);
    };
    let found = found.expect("credentials come from an account");
    if !password::verify(password, credentials.password_hash).await.map_err(|_| SignInError::Busy(BUSY))? {
        return Err(SignInError::Wrong);
    }
    if found.status().is_taken_down() {
        return Err(SignInError::TakenDown);
    }
    if account::totp::is_enabled(&ctx.db, found.did()).await.map_err(internal)? {
        let Some(code) = code else { return Err(SignInError::TotpRequired) };
        return match account::totp::verify(ctx, found.did(), found.handle().as_str(), code).await {
            Ok(()) => Ok(found),
            Err(account::totp::TotpError::WrongCode) => Err(SignInError::BadCode(FROM_APP, "That code is not valid")),
            Err(other) => Err(SignInError::Internal(other.to_string())),
        };
    }
    if found.email_auth_factor() {
        let Some(code) = code else {
            return match crate::api::codes::send_code(ctx, found.did(), Purpose::SignIn).await {
                Ok(()) => Err(SignInError::CodeSent),
                // A code went out moments ago: the one in the inbox is still good.
                Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(SignInError::CodeSent),
                Err(e) => Err(SignInError::Internal(e.to_string())),
            };
        };
        match email_token::verify(&ctx.db, &ctx.db, found.did(), Purpose::SignIn, code).await.map_err(internal)? {
            Ok(()) => email_token::consume(&ctx.db, found.did(), Purpose::SignIn).await.map_err(internal)?,
            Err(_) => return Err(SignInError::BadCode(FROM_EMAIL, "That code is not valid or has expired")),
        }
    }
    Ok(found)
}

/// `POST /oauth/authorize/consent`: `decision=allow` (for a signed-in account) issues the code
/// and returns to the app; `decision=deny` returns with `access_denied`.
#[handler]
pub async fn consent(
    ctx: Data<&Arc<AppContext>>,
    http: &HttpRequest,
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
                "Allow cookies for this site and start again.",
            )
        }
        Err(e) => return finish_failure(ctx, Failure::Internal(e.to_string())),
    };
    let (stored, client) = match load(
        ctx,
        form.get("client_id").map(String::as_str),
        form.get("request_uri").map(String::as_str),
        &device,
        now,
    )
    .await
    {
        Ok(loaded) => loaded,
        Err(failure) => return finish_failure(ctx, failure),
    };
    if form.get("decision").map(String::as_str) != Some("allow") {
        let _ = request::delete(&ctx.db, &stored.row.id).await;
        return redirect_back(
            ctx,
            &stored.parameters,
            &[("error", "access_denied"), ("error_description", "The user rejected the request")],
        );
    }
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let did = form.get("did").and_then(|d| d.parse::<Did>().ok());
    let signed_in = device::accounts(&ctx.db, &device, now).await.unwrap_or_default();
    let Some(did) = did.filter(|d| signed_in.contains(d)) else {
        let state = SignInState { error: Some("Sign in to continue".to_owned()), ..SignInState::default() };
        return sign_in_page(ctx, &stored, &client, &csrf, state);
    };
    let mut granted: Vec<&str> = stored.parameters.scope.split(' ').collect();
    let email_optional =
        describe::describe(&stored.parameters.scope, &[]).iter().any(|i| i.optional == Some(EMAIL_FIELD));
    if email_optional && !form.contains_key(EMAIL_FIELD) {
        granted.retain(|token| !matches!(
            aurora_atproto::permission::Scope::parse(token),
            Some(aurora_atproto::permission::Scope::Account(a)) if a.attr() == aurora_atproto::permission::AccountAttr::Email && !a.manages()
        ));
    }
    match grant(ctx, &stored, &did, granted.join(" "), now).await {
        Ok(response) => response,
        Err(failure) => finish_failure(ctx, failure),
    }
}

/// Issues the code for `did`'s consent to `scope` (the request's, maybe narrowed), remembers
/// what the client was granted, and returns to the app.
async fn grant(ctx: &AppContext, stored: &Request, did: &Did, scope: String, now: i64) -> Result<Response, Failure> {
    let code = super::random_id("cod-", 32);
    let mut parameters = stored.parameters.clone();
    parameters.scope = scope;
    if !parameters.scope.split(' ').any(|t| t == "atproto") {
        return Err(Failure::Redirect(
            Box::new(parameters),
            "access_denied",
            "The atproto scope is required".to_owned(),
        ));
    }
    if !request::authorize(&ctx.db, &stored.row.id, did, &code, &parameters, now + CODE_SECS).await? {
        return Err(Failure::Redirect(
            Box::new(parameters),
            "access_denied",
            "This request was already authorized".to_owned(),
        ));
    }
    let previous =
        oauth_authorized_client::Entity::find_by_id((did.clone(), parameters.client_id.clone())).one(&ctx.db).await?;
    let mut all: Vec<String> = previous.map(|p| p.scope.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    for token in parameters.scope.split(' ') {
        if !all.iter().any(|t| t == token) {
            all.push(token.to_owned());
        }
    }
    let row = oauth_authorized_client::ActiveModel {
        did: Set(did.clone()),
        client_id: Set(parameters.client_id.clone()),
        scope: Set(all.join(" ")),
        updated_at: Set(now),
    };
    oauth_authorized_client::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([oauth_authorized_client::Column::Did, oauth_authorized_client::Column::ClientId])
                .update_columns([oauth_authorized_client::Column::Scope, oauth_authorized_client::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&ctx.db)
        .await?;
    Ok(redirect_back(ctx, &parameters, &[("code", &code)]))
}
