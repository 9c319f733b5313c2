//! The landing page at `/`, for a person who opens the server's address in a browser.

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Html};
use poem::{handler, IntoResponse, Response};

use crate::context::AppContext;

#[derive(Template)]
#[template(path = "index.html")]
struct Landing<'a> {
    hostname: &'a str,
    version: &'a str,
    service_did: &'a str,
    methods: usize,
}

#[handler]
pub fn landing(ctx: Data<&Arc<AppContext>>) -> Response {
    let page = Landing {
        hostname: &ctx.config.hostname,
        version: env!("CARGO_PKG_VERSION"),
        service_did: &ctx.config.service_did,
        methods: aurora_generated::routes::SERVED.len(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => aurora_xrpc::XrpcError::internal(e).into_response(),
    }
}

#[handler]
pub fn robots() -> &'static str {
    "# Hello!\n\n# Crawling the public API is allowed\nUser-agent: *\nAllow: /\n"
}
