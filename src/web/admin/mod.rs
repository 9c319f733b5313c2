//! The operators' dashboard (`/admin`): server-rendered pages, no scripts. An operator signs in
//! with the administrator's or the moderators' password (`session`); the pages read through
//! `crate::admin` (`pages`), and every change goes through the same admin XRPC methods the API
//! serves (`actions`), so each is checked, applied and audited once.

mod actions;
mod pages;
pub mod session;

use std::sync::Arc;

use askama::Template;
use poem::http::{header, HeaderValue, StatusCode};
use poem::web::Data;
use poem::{get, handler, post, IntoResponse, Request, Response, Route};

use crate::context::AppContext;
use crate::oauth::authorize::{html, secure};

/// The dashboard's routes, below `/admin`.
pub fn routes(route: Route) -> Route {
    route
        .at("/admin", get(pages::overview_page))
        .at("/admin/style.css", get(stylesheet))
        .at("/admin/sign-in", post(actions::sign_in))
        .at("/admin/sign-out", post(actions::sign_out))
        .at("/admin/accounts", get(pages::accounts_page))
        .at("/admin/accounts/:did", get(pages::account_detail))
        .at("/admin/accounts/:did/:action", post(actions::account_action))
        .at("/admin/invites", get(pages::invites_list))
        .at("/admin/invites/:action", post(actions::invite_action))
        .at("/admin/jobs/:name/run", post(actions::job_action))
        .at("/admin/audit", get(pages::audit_page))
}

#[handler]
fn stylesheet() -> Response {
    let mut response = include_str!("../../../templates/admin/style.css").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignInPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
}

/// A page with the dashboard's headers: no framing, no caching, forms posting here only.
fn page<T: Template>(template: &T, status: StatusCode) -> Response {
    secure(html(template, status), None, None)
}

/// The sign-in page; its form's CSRF token is the browser's `aurora-csrf` cookie.
fn sign_in_page(ctx: &AppContext, request: &Request, error: Option<&str>, status: StatusCode) -> Response {
    let (csrf, new) = crate::oauth::authorize::csrf_token(request.headers());
    let template = SignInPage {
        hostname: &ctx.config.hostname,
        who: None,
        csrf: &csrf,
        notice: None,
        error: error.map(str::to_owned),
    };
    let mut response = page(&template, status);
    if new {
        let secure = ctx.config.public_url.starts_with("https://");
        let cookie = crate::oauth::device::set_cookie(crate::oauth::device::CSRF_COOKIE, &csrf, 86_400, secure, "/");
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The signed-in operator, or the sign-in page to answer with.
fn signed_in(ctx: &AppContext, request: &Request) -> Result<session::Session, Box<Response>> {
    session::current(ctx, request.headers()).ok_or_else(|| Box::new(sign_in_page(ctx, request, None, StatusCode::OK)))
}

fn redirect(location: &str) -> Response {
    let mut response = Response::builder().status(StatusCode::SEE_OTHER).body(());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "an admin page failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

/// Who is signed in, for the header.
fn who(session: &session::Session) -> Option<String> {
    Some(match session.admin.role {
        aurora_xrpc::auth::Role::Admin => "administrator".to_owned(),
        aurora_xrpc::auth::Role::Moderator => "moderator".to_owned(),
    })
}

/// Byte counts for people.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

type Ctx<'a> = Data<&'a Arc<AppContext>>;

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(super::size(512), "512 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
