//! The whole XRPC surface: every lexicon method answers in XRPC shape, never a 404 or a 500.

use aurora_atproto::lexicon::Def;
use serde_json::Value;

use crate::samples;

/// What a method answered, for the failure message.
struct Answer {
    nsid: String,
    status: u16,
    body: Value,
}

impl Answer {
    fn is_acceptable(&self) -> bool {
        let named_error = self.body.get("error").and_then(Value::as_str).is_some();
        match self.status {
            501 => self.body["error"] == "MethodNotImplemented",
            200..=299 => true,
            400..=499 => named_error,
            _ => false,
        }
    }
}

async fn call_every_method(app: &crate::helpers::TestApp, served: bool) -> Vec<Answer> {
    let catalog = aurora_generated::catalog::catalog();
    let mut answers = Vec::new();
    for doc in catalog.docs() {
        if aurora_generated::routes::SERVED.contains(&doc.id.as_str()) != served {
            continue;
        }
        let request = match doc.defs.get("main") {
            Some(Def::Query(q)) => {
                let query = samples::query_string(catalog, q.parameters.as_ref(), &doc.id);
                app.client.get(format!("{}?{query}", app.xrpc(&doc.id)))
            }
            Some(Def::Procedure(p)) => {
                let query = samples::query_string(catalog, p.parameters.as_ref(), &doc.id);
                let request = app.client.post(format!("{}?{query}", app.xrpc(&doc.id)));
                match &p.input {
                    Some(body) if body.is_json() => {
                        let value = match &body.schema {
                            Some(schema) => samples::field(catalog, schema, &doc.id, 0),
                            None => serde_json::json!({}),
                        };
                        request.json(&value)
                    }
                    Some(body) => {
                        let content_type =
                            if body.encoding.contains('*') { "image/png" } else { body.encoding.as_str() };
                        request.header("content-type", content_type).body(vec![0u8; 16])
                    }
                    None => request,
                }
            }
            Some(Def::Subscription(s)) => {
                let query = samples::query_string(catalog, s.parameters.as_ref(), &doc.id);
                app.client.get(format!("{}?{query}", app.xrpc(&doc.id)))
            }
            _ => continue,
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        answers.push(Answer { nsid: doc.id.clone(), status, body });
    }
    answers
}

app_test!(every_served_method_answers_real_data_or_method_not_implemented, |app| {
    let answers = call_every_method(&app, true).await;
    assert_eq!(answers.len(), aurora_generated::routes::SERVED.len(), "every served method is walked");
    let bad: Vec<String> = answers
        .iter()
        .filter(|a| !a.is_acceptable())
        .map(|a| format!("{} -> {} {}", a.nsid, a.status, a.body))
        .collect();
    assert!(bad.is_empty(), "methods answering outside XRPC shape:\n{}", bad.join("\n"));
    // Well-formed requests reach the method itself: none is refused by lexicon validation
    // (whose messages name the `Params` or `Input` path).
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| {
            let message = a.body["message"].as_str().unwrap_or_default();
            a.body["error"] == "InvalidRequest" && (message.starts_with("Params") || message.starts_with("Input"))
        })
        .map(|a| format!("{} -> {}", a.nsid, a.body))
        .collect();
    assert!(refused.is_empty(), "valid sample requests were refused:\n{}", refused.join("\n"));
    println!("walked {} served methods", answers.len());
});

app_test!(methods_aurora_does_not_serve_answer_method_not_implemented, |app| {
    let answers = call_every_method(&app, false).await;
    assert!(answers.len() > 200, "walked {}", answers.len());
    for answer in &answers {
        assert_eq!(answer.status, 501, "{}: {}", answer.nsid, answer.body);
        assert_eq!(answer.body["error"], "MethodNotImplemented", "{}", answer.nsid);
    }
});

app_test!(an_unknown_nsid_is_method_not_implemented, |app| {
    let (status, body) = app.get_json("/xrpc/com.example.doesNotExist").await;
    assert_eq!(status, 501);
    assert_eq!(body["error"], "MethodNotImplemented");
});

app_test!(parameters_are_validated_against_the_lexicon, |app| {
    let (status, body) = app
        .get_json("/xrpc/com.atproto.repo.listRecords?repo=alice.test&collection=app.bsky.feed.post&limit=500")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "InvalidRequest");
    assert!(body["message"].as_str().unwrap_or_default().contains("limit"), "{body}");

    let (status, body) = app.get_json("/xrpc/com.atproto.repo.listRecords?collection=app.bsky.feed.post").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap_or_default().contains("repo"), "{body}");

    let (status, body) =
        app.get_json("/xrpc/com.atproto.repo.listRecords?repo=not%20a%20handle&collection=app.bsky.feed.post").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .get_json("/xrpc/com.atproto.repo.listRecords?repo=alice.test&collection=app.bsky.feed.post&limit=ten")
        .await;
    assert_eq!(status, 400);
});

app_test!(bodies_are_validated_and_malformed_ones_get_xrpc_errors, |app| {
    let url = app.xrpc("com.atproto.repo.createRecord");
    // Credentials are checked before the body, as the reference's XRPC server does.
    let (status, body) =
        app.post_json("/xrpc/com.atproto.repo.createRecord", &serde_json::json!({"repo": "alice.test"})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AuthMissing")), "{body}");
    let account = app.create_account("alice").await;
    let token = account["accessJwt"].as_str().expect("access");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "com.atproto.repo.createRecord",
            Some(token),
            Some(&serde_json::json!({"repo": "alice.test"})),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "{body}");

    let response = app
        .client
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("XRPC error body");
    assert_eq!(body["error"], "InvalidRequest");

    let response = app
        .client
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("XRPC error body");
    assert!(body["message"].as_str().unwrap_or_default().contains("Content-Type"), "{body}");

    let response = app.client.post(&url).bearer_auth(token).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 400);

    // Record writes take bodies up to 1,000,000 bytes (the reference's limit for them); other
    // methods 150 KiB.
    let record = |size: usize| serde_json::json!({ "repo": "alice.test", "collection": "com.example.blob", "record": { "$type": "com.example.blob", "text": "x".repeat(size) } });
    let response = app.client.post(&url).bearer_auth(token).json(&record(900 * 1024)).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap_or_default());
    let response = app.client.post(&url).bearer_auth(token).json(&record(1_000_000)).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 413);
    let huge = serde_json::json!({ "email": "x".repeat(200 * 1024) });
    let response =
        app.client.post(app.xrpc("com.atproto.server.requestPasswordReset")).json(&huge).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("XRPC error body");
    assert_eq!(body["error"], "PayloadTooLarge");
});

app_test!(the_wrong_http_method_is_an_invalid_request, |app| {
    let (status, body) = app.get_json("/xrpc/com.atproto.repo.createRecord").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap_or_default().contains("expected POST"), "{body}");
    let (status, _) = app.post_json("/xrpc/com.atproto.repo.listRecords", &serde_json::json!({})).await;
    assert_eq!(status, 400);
});
