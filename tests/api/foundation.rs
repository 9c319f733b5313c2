//! The service's own endpoints and cross-cutting HTTP behaviour.

use serde_json::Value;

app_test!(health_reports_the_version_after_pinging_the_database, |app| {
    let (status, body) = app.get_json("/xrpc/_health").await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
});

app_test!(the_served_openapi_document_is_the_generated_file, |app| {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let served = response.text().await.expect("body");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).expect("openapi file");
    assert!(served == committed, "served /openapi.json differs from openapi/openapi.json");
    let spec: Value = serde_json::from_str(&served).expect("JSON");
    let catalog = aurora_generated::catalog::catalog();
    let mut documented = 0;
    for doc in catalog.docs() {
        let verb = match doc.defs.get("main") {
            Some(aurora_atproto::lexicon::Def::Query(_)) => "get",
            Some(aurora_atproto::lexicon::Def::Procedure(_)) => "post",
            _ => continue,
        };
        let path = format!("/xrpc/{}", doc.id);
        assert!(spec["paths"][&path][verb].is_object(), "{path} is missing from the OpenAPI document");
        documented += 1;
    }
    assert!(documented > 300, "documented {documented}");
});

app_test!(swagger_ui_is_served_at_docs_and_loads_the_spec, |app| {
    let response = app.get("/docs").await;
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("SwaggerUIBundle"));
    assert!(html.contains("url: \"/openapi.json\""), "the page must point at the served spec");
});

app_test!(the_landing_page_names_the_host, |app| {
    let response = app.get("/").await;
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("localhost") && html.contains("Aurora Locus"));
});

app_test!(browsers_from_any_origin_may_call_the_api, |app| {
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.xrpc("com.atproto.server.describeServer"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    let allowed = response.headers().get("access-control-allow-origin").expect("allow-origin header");
    assert!(allowed == "https://app.example" || allowed == "*");
});

app_test!(responses_are_gzipped_when_the_client_asks, |app| {
    let response = app
        .client
        .get(format!("{}/openapi.json", app.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers().get("content-encoding").map(|v| v.to_str().unwrap_or_default()), Some("gzip"));
});

app_test!(every_response_carries_a_request_id, |app| {
    let response = app.get("/xrpc/_health").await;
    assert!(response.headers().get("x-request-id").is_some());
    let response = app.client.get(app.xrpc("_health")).header("x-request-id", "trace-me-42").send().await.expect("get");
    assert_eq!(response.headers().get("x-request-id").map(|v| v.as_bytes()), Some(&b"trace-me-42"[..]));
});

app_test!(sqlite_runs_in_wal_mode, |app| {
    let mode = aurora_locus::db::sqlite_journal_mode(&app.ctx.db).await.expect("query journal mode");
    match app.backend {
        crate::helpers::Backend::Sqlite => assert_eq!(mode.as_deref(), Some("wal")),
        crate::helpers::Backend::Postgres => assert_eq!(mode, None),
    }
});
