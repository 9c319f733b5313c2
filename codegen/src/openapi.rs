//! The OpenAPI 3.1 document of every query and procedure, built from the same catalog as the code.

use serde_json::{json, Map, Value};

use aurora_atproto::lexicon::{self as lex, Catalog, Def, Field};

use std::collections::BTreeMap;

use crate::ir::{BodyIr, Ir, MethodKind};
use crate::server_rules::ServerRules;

/// The OpenAPI document as pretty-printed JSON with a trailing newline; what `server_rules`
/// says each method enforces beyond its lexicon is merged in. An error names a rule that does
/// not fit the method it is written for.
pub fn document(ir: &Ir, catalog: &Catalog, server_rules: &ServerRules, version: &str) -> Result<String, String> {
    let mut paths = Map::new();
    let mut tags = std::collections::BTreeSet::new();
    for module in ir.modules.values() {
        let Some(method) = &module.method else { continue };
        if method.kind == MethodKind::Subscription {
            continue; // websockets have no OpenAPI form
        }
        let Some(def) = catalog.main(&module.nsid) else { continue };
        let (description, params, errors) = match def {
            Def::Query(q) => (q.description.clone(), q.parameters.as_ref(), &q.errors),
            Def::Procedure(p) => (p.description.clone(), p.parameters.as_ref(), &p.errors),
            _ => continue,
        };
        let rules = server_rules.method(&module.nsid);
        let misfit = |e: String| format!("server rules of {}: {e}", module.nsid);
        let tag = method.namespace.clone();
        tags.insert(tag.clone());
        let mut op = Map::new();
        op.insert("operationId".into(), json!(module.nsid));
        op.insert("tags".into(), json!([tag]));
        // Swagger lists operations by summary: the lexicon's first sentence says what each does.
        op.insert("summary".into(), json!(summary(description.as_deref()).unwrap_or(&module.nsid)));
        let mut text = description.clone().unwrap_or_default();
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&format!("**Auth:** {}.", method.describe_auth()));
        if !method.served {
            text.push_str(FORWARDED);
        }
        if let Some(rules) = rules.filter(|r| !r.rules.is_empty()) {
            text.push_str("\n\n**Also checked:**");
            for rule in &rules.rules {
                text.push_str(&format!("\n- {rule}"));
            }
            op.insert("x-server-rules".into(), json!(rules.rules));
        }
        op.insert("description".into(), json!(text));
        if let Some(params) = params {
            let mut parameters = parameters(params, &module.nsid);
            if let Some(rules) = rules {
                rules.apply_params(server_rules, &mut parameters).map_err(misfit)?;
            }
            op.insert("parameters".into(), Value::Array(parameters));
        }
        let mut has_input = false;
        if let (Def::Procedure(p), input) = (def, &method.input) {
            if let Some(body) = &p.input {
                has_input = true;
                let mut schema = body_schema(body, &module.nsid);
                if let Some(rules) = rules {
                    rules.apply_input(server_rules, &mut schema).map_err(misfit)?;
                }
                op.insert(
                    "requestBody".into(),
                    json!({ "required": true, "content": { content_type(input): { "schema": schema } } }),
                );
            }
        }
        let output_def = match def {
            Def::Query(q) => q.output.as_ref(),
            Def::Procedure(p) => p.output.as_ref(),
            _ => None,
        };
        let ok = match output_def {
            Some(body) => json!({
                "description": "OK",
                "content": { content_type(&method.output): { "schema": body_schema(body, &module.nsid) } }
            }),
            None => json!({ "description": "OK" }),
        };
        // Every error the method can answer, by status: the request's own, the lexicon's, its
        // authentication's, a body over the limit, and what the server rules add.
        let mut answers: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        answers.entry(400).or_default().extend(["InvalidRequest", "ExpiredToken", "InvalidToken"]);
        answers.entry(400).or_default().extend(errors.iter().map(|e| e.name.as_str()));
        for (status, names) in method.auth.errors() {
            answers.entry(status).or_default().extend(names);
        }
        if has_input {
            answers.entry(413).or_default().push("PayloadTooLarge");
        }
        let takes_oauth = !method.served
            || (method.auth.takes_session() && !matches!(method.oauth, crate::auth::OAuthRule::Refused(_)));
        if takes_oauth && method.auth != crate::auth::AuthKind::None {
            answers.entry(401).or_default().extend(["invalid_token", "invalid_dpop_proof", "use_dpop_nonce"]);
            answers.entry(403).or_default().push("ScopeMissingError");
        }
        if method.auth.takes_session() && matches!(method.oauth, crate::auth::OAuthRule::Refused(_)) {
            answers.entry(403).or_default().push("Forbidden");
        }
        // Every request counts against the server's per-address limit.
        answers.entry(429).or_default().push("RateLimitExceeded");
        answers.entry(500).or_default().push("InternalServerError");
        answers.entry(501).or_default().push("MethodNotImplemented");
        if BOUNDED.contains(&module.nsid.as_str()) {
            answers.entry(503).or_default().push("NotEnoughResources");
        }
        for (status, names) in rules.map(|r| &r.errors).into_iter().flatten() {
            answers.entry(*status).or_default().extend(names.iter().map(String::as_str));
        }
        if !method.served {
            answers.entry(401).or_default().extend(["AuthMissing", "AuthenticationRequired"]);
            answers.entry(502).or_default().push("UpstreamFailure");
        }
        let mut responses = Map::new();
        responses.insert("200".into(), ok);
        if !method.served {
            responses.insert(
                "default".into(),
                json!({ "description": "The answer of the service the call was forwarded to, passed through." }),
            );
        }
        for (status, mut names) in answers {
            let mut seen = std::collections::BTreeSet::new();
            names.retain(|name| seen.insert(*name));
            responses.insert(status.to_string(), error_response(status_text(status), &names));
        }
        op.insert("responses".into(), Value::Object(responses));
        let mut security = method.auth.security();
        // Methods that take a session take an OAuth token too, unless they refuse them;
        // forwarded ones always do (with rpc: for the method).
        let oauth = !method.served
            || (method.auth.takes_session() && !matches!(method.oauth, crate::auth::OAuthRule::Refused(_)));
        if oauth && method.auth != crate::auth::AuthKind::None {
            if let Some(alternatives) = security.as_array_mut() {
                alternatives.push(json!({ "OAuth": [] }));
            }
        }
        op.insert("security".into(), security);
        op.insert("x-atproto-auth".into(), json!(method.describe_auth()));
        let verb = if method.kind == MethodKind::Query { "get" } else { "post" };
        paths.insert(format!("/xrpc/{}", module.nsid), json!({ verb: op }));
    }
    if let Some(unknown) = server_rules.methods().find(|nsid| !paths.contains_key(&format!("/xrpc/{nsid}"))) {
        return Err(format!("server rules name {unknown}, which is not a query or procedure"));
    }

    let mut schemas = Map::new();
    for doc in catalog.docs() {
        for (name, def) in &doc.defs {
            let schema = match def {
                Def::Record(r) => {
                    let mut schema = object_schema(r.record.object(), &doc.id);
                    schema["properties"]["$type"] = json!({ "type": "string", "const": doc.id });
                    schema
                }
                Def::Token(t) => {
                    json!({ "type": "string", "const": lex::DefRef { nsid: &doc.id, name, def }.type_name(), "description": t.description })
                }
                other => match other.as_field() {
                    Some(field) => field_schema(&field, &doc.id),
                    None => continue,
                },
            };
            let mut schema = schema;
            if let (Some(d), Value::Object(map)) = (def.description(), &mut schema) {
                map.entry("description").or_insert(json!(d));
            }
            schemas.insert(schema_name(&doc.id, name), schema);
        }
    }
    let mut cid = json!({ "type": "string", "format": "cid" });
    crate::formats::apply("cid", &mut cid);
    schemas.insert(
        "Blob".into(),
        json!({
            "description": "A reference to a blob: its CID, MIME type and size; or, in old repositories, the legacy form with a CID string and a MIME type.",
            "anyOf": [
                {
                    "type": "object",
                    "required": ["$type", "ref", "mimeType", "size"],
                    "properties": {
                        "$type": { "type": "string", "const": "blob" },
                        "ref": { "$ref": "#/components/schemas/CidLink" },
                        "mimeType": { "type": "string" },
                        "size": { "type": "integer", "minimum": 0 }
                    }
                },
                {
                    "type": "object",
                    "required": ["cid", "mimeType"],
                    "properties": { "cid": cid, "mimeType": { "type": "string" } }
                }
            ]
        }),
    );
    schemas.insert(
        "CidLink".into(),
        json!({
            "type": "object", "required": ["$link"], "additionalProperties": false,
            "properties": { "$link": cid }
        }),
    );
    schemas.insert(
        "Bytes".into(),
        json!({
            "type": "object", "required": ["$bytes"], "additionalProperties": false,
            "properties": { "$bytes": { "type": "string", "contentEncoding": "base64", "pattern": "^[A-Za-z0-9+/]*={0,2}$" } }
        }),
    );
    schemas.insert(
        "XrpcError".into(),
        json!({
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
        }),
    );

    let tags: Vec<Value> = tags.into_iter().map(|t| json!({ "name": t })).collect();
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Aurora Locus XRPC API",
            "description": "The atproto XRPC methods, generated from the lexicons. Methods outside com.atproto are forwarded to the AppView or the service named by the atproto-proxy header.",
            "version": version,
            "license": { "name": "MIT OR Apache-2.0" }
        },
        "tags": tags,
        "x-lexicon-rules-beyond-json-schema": crate::formats::LIMITS
            .iter()
            .map(|(rule, why)| json!({ "rule": rule, "why": why }))
            .collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "Session": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token from com.atproto.server.createSession or refreshSession, opened with the account password or an app password; each method says which it accepts." },
                "Refresh": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A refresh token from com.atproto.server.createSession or refreshSession." },
                "ServiceAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A service-auth token: a JWT signed with the issuer's atproto key, for this server (aud) and this method (lxm)." },
                "Admin": { "type": "http", "scheme": "basic", "description": "User admin, password PDS_ADMIN_PASSWORD: every admin method." },
                "Moderator": { "type": "http", "scheme": "basic", "description": "User moderator, password AURORA_MODERATOR_PASSWORD: reads accounts and applies or lifts takedowns; refused (401) where the administrator is needed." },
                "ModService": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A service-auth token signed by the moderation service PDS_MOD_SERVICE_DID (or its #atproto_labeler key), for this server and method: the moderator's methods." },
                "OAuth": { "type": "http", "scheme": "DPoP", "description": "An atproto OAuth access token (Authorization: DPoP <token>) with a DPoP proof (RFC 9449) in the DPoP header, from this server's authorization server (/.well-known/oauth-authorization-server); each method says which permission it needs." }
            }
        }
    });
    let mut text = serde_json::to_string_pretty(&document).expect("a JSON value always serialises");
    text.push('\n');
    Ok(text)
}

/// What a method Aurora forwards says about itself.
const FORWARDED: &str = "\n\n**Forwarded** to the AppView, or to the service the `atproto-proxy` header names, with a service-auth token for the caller; the answer is passed through.";

/// Methods that answer 503 NotEnoughResources when a bounded resource is full: the password
/// hashing pool, the repository export slots, the disk's free-space floor, the firehose's
/// subscriber cap.
const BOUNDED: &[&str] = &[
    "com.atproto.server.createAccount",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.createSession",
    "com.atproto.server.deleteAccount",
    "com.atproto.server.resetPassword",
    "com.atproto.repo.importRepo",
    "com.atproto.repo.uploadBlob",
    "com.atproto.sync.getCheckout",
    "com.atproto.sync.getRepo",
    "com.atproto.sync.subscribeRepos",
];

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        413 => "Payload too large",
        429 => "Too many requests",
        500 => "Internal server error",
        501 => "Not implemented",
        502 => "Bad gateway",
        503 => "Service unavailable",
        _ => "Error",
    }
}

/// The first sentence of a description, for a one-line summary.
fn summary(description: Option<&str>) -> Option<&str> {
    let text = description?.trim();
    let end = text.find(". ").map_or(text.len(), |i| i + 1);
    let first = text[..end].trim();
    (!first.is_empty()).then_some(first)
}

fn content_type(body: &BodyIr) -> String {
    match body {
        BodyIr::Raw(encoding) => encoding.clone(),
        _ => "application/json".into(),
    }
}

fn error_response(description: &str, names: &[&str]) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": { "type": "string", "enum": names },
                "message": { "type": "string" }
            }
        } } }
    })
}

/// The `$type` a union member carries: `nsid` for a main definition, `nsid#name` otherwise.
fn union_type(reference: &str, context: &str) -> String {
    let (nsid, name) = lex::catalog_split_ref(reference, context);
    if name == "main" {
        nsid.to_owned()
    } else {
        format!("{nsid}#{name}")
    }
}

/// OpenAPI component names may not contain `#`.
fn schema_name(nsid: &str, def: &str) -> String {
    if def == "main" {
        nsid.to_owned()
    } else {
        format!("{nsid}.{def}")
    }
}

fn ref_schema(reference: &str, context: &str) -> Value {
    let (nsid, name) = lex::catalog_split_ref(reference, context);
    json!({ "$ref": format!("#/components/schemas/{}", schema_name(nsid, name)) })
}

fn body_schema(body: &lex::Body, context: &str) -> Value {
    match &body.schema {
        Some(field) if body.is_json() => field_schema(field, context),
        Some(_) | None if !body.is_json() => json!({ "type": "string", "format": "binary" }),
        _ => json!({}),
    }
}

fn parameters(params: &lex::ParamsSchema, context: &str) -> Vec<Value> {
    params
        .properties
        .iter()
        .map(|(name, field)| {
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": params.required.contains(name),
                "schema": field_schema(field, context),
            });
            if let Some(d) = field.description() {
                p["description"] = json!(d);
            }
            if matches!(field, Field::Array(_)) {
                p["style"] = json!("form");
                p["explode"] = json!(true);
            }
            p
        })
        .collect()
}

fn object_schema(o: &lex::ObjectSchema, context: &str) -> Value {
    let properties: Map<String, Value> = o
        .properties
        .iter()
        .map(|(name, field)| {
            let mut schema = field_schema(field, context);
            if o.nullable.contains(name) {
                schema = json!({ "oneOf": [schema, { "type": "null" }] });
            }
            (name.clone(), schema)
        })
        .collect();
    let mut schema = json!({ "type": "object", "properties": properties });
    if !o.required.is_empty() {
        schema["required"] = json!(o.required);
    }
    if let Some(d) = &o.description {
        schema["description"] = json!(d);
    }
    schema
}

fn field_schema(field: &Field, context: &str) -> Value {
    let mut schema = match field {
        Field::Boolean(b) => {
            let mut s = json!({ "type": "boolean" });
            if let Some(d) = b.default {
                s["default"] = json!(d);
            }
            if let Some(c) = b.const_ {
                s["const"] = json!(c);
            }
            s
        }
        Field::Integer(i) => {
            // Lexicon integers are 64-bit: the width bounds whatever the lexicon leaves open.
            let mut s = json!({ "type": "integer", "format": "int64" });
            let minimum = Some(i.minimum.unwrap_or(i64::MIN));
            let maximum = Some(i.maximum.unwrap_or(i64::MAX));
            for (key, value) in
                [("minimum", minimum), ("maximum", maximum), ("default", i.default), ("const", i.const_)]
            {
                if let Some(v) = value {
                    s[key] = json!(v);
                }
            }
            if let Some(e) = &i.enum_ {
                s["enum"] = json!(e);
            }
            s
        }
        Field::String(st) => {
            let mut s = json!({ "type": "string" });
            // Lexicon lengths count UTF-8 bytes, JSON Schema's characters (1 to 4 bytes each):
            // the character bounds that hold whatever the characters are, and the exact ones.
            if let Some(max) = st.max_length {
                s["maxLength"] = json!(max);
                s["x-maxBytes"] = json!(max);
            }
            if let Some(min) = st.min_length {
                s["minLength"] = json!(min.div_ceil(4));
                s["x-minBytes"] = json!(min);
            }
            if let Some(f) = &st.format {
                // The lexicon's own format names: JSON Schema knows none of them (not even
                // datetime, whose RFC 3339 is laxer), so the pattern carries the rule.
                s["format"] = json!(f);
                crate::formats::apply(f, &mut s);
            }
            for (key, value) in [("x-minGraphemes", st.min_graphemes), ("x-maxGraphemes", st.max_graphemes)] {
                if let Some(v) = value {
                    s[key] = json!(v);
                }
            }
            if let Some(e) = &st.enum_ {
                s["enum"] = json!(e);
            }
            if !st.known_values.is_empty() {
                s["examples"] = json!(st.known_values);
                s["x-knownValues"] = json!(st.known_values);
            }
            if let Some(c) = &st.const_ {
                s["const"] = json!(c);
            }
            if let Some(d) = &st.default {
                s["default"] = json!(d);
            }
            s
        }
        Field::Bytes(b) => {
            let mut s = json!({ "$ref": "#/components/schemas/Bytes" });
            for (key, value) in [("x-minLength", b.min_length), ("x-maxLength", b.max_length)] {
                if let Some(v) = value {
                    s[key] = json!(v);
                }
            }
            s
        }
        Field::CidLink(_) => json!({ "$ref": "#/components/schemas/CidLink" }),
        Field::Blob(b) => {
            let mut s = json!({ "$ref": "#/components/schemas/Blob" });
            if let Some(a) = &b.accept {
                s["x-accept"] = json!(a);
            }
            if let Some(m) = b.max_size {
                s["x-maxSize"] = json!(m);
            }
            s
        }
        // Any object but the data model's own: bytes, a link or a blob.
        Field::Unknown(_) => json!({
            "type": "object",
            "not": { "anyOf": [
                { "required": ["$bytes"] },
                { "required": ["$link"] },
                { "required": ["$type"], "properties": { "$type": { "const": "blob" } } }
            ] }
        }),
        Field::Array(a) => {
            let mut s = json!({ "type": "array", "items": field_schema(&a.items, context) });
            for (key, value) in [("minItems", a.min_length), ("maxItems", a.max_length)] {
                if let Some(v) = value {
                    s[key] = json!(v);
                }
            }
            s
        }
        Field::Object(o) => object_schema(o, context),
        Field::Ref(r) => ref_schema(&r.target, context),
        Field::Union(u) => {
            // Each member is told apart by its `$type`, which the value must carry.
            let types: Vec<String> = u.refs.iter().map(|r| union_type(r, context)).collect();
            let mut members: Vec<Value> = u
                .refs
                .iter()
                .zip(&types)
                .map(|(r, t)| {
                    json!({ "allOf": [
                        ref_schema(r, context),
                        { "type": "object", "required": ["$type"], "properties": { "$type": { "const": t } } }
                    ] })
                })
                .collect();
            if !u.closed {
                // An open union also takes objects of types this lexicon version does not list.
                members.push(json!({
                    "type": "object",
                    "required": ["$type"],
                    "properties": { "$type": { "type": "string", "minLength": 1, "not": { "enum": types } } }
                }));
            }
            let mut s = json!({ "oneOf": members });
            if !u.closed {
                s["x-open-union"] = json!(true);
            }
            s
        }
    };
    if let (Some(d), Value::Object(map)) = (field.description(), &mut schema) {
        if !map.contains_key("$ref") {
            map.entry("description").or_insert(json!(d));
        }
    }
    schema
}
