//! `/openapi.json` and the Swagger UI at `/docs`.
//!
//! The document is the one `just gen` writes to `openapi/openapi.json`; the page is
//! poem-openapi's bundled Swagger UI, pointed at that document.

use std::sync::OnceLock;

use poem::web::Html;
use poem::{handler, IntoResponse, Response};

/// The generated OpenAPI document, byte for byte.
pub const OPENAPI_JSON: &str = include_str!("../../openapi/openapi.json");

#[handler]
pub fn openapi_json() -> Response {
    OPENAPI_JSON.with_content_type("application/json; charset=utf-8").into_response()
}

#[handler]
pub fn swagger_ui() -> Html<&'static str> {
    Html(swagger_html())
}

/// poem-openapi renders its Swagger UI around a spec it embeds inline; Aurora's spec is served
/// separately (it is large), so the inline one is swapped for a URL.
pub fn swagger_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let placeholder = poem_openapi::OpenApiService::new((), "Aurora Locus", env!("CARGO_PKG_VERSION"));
        let inline = placeholder.spec();
        placeholder
            .swagger_ui_html()
            .replacen(&format!("let spec = {inline};"), "let spec = undefined;", 1)
            .replacen("spec: spec,", "url: \"/openapi.json\",", 1)
            .replacen("<title>Swagger UI</title>", "<title>Aurora Locus — XRPC API</title>", 1)
    })
}
