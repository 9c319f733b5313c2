//! Offline tools for people who test their data against the lexicons this server enforces:
//! `aurora-locus lexicon validate <nsid>[#def] <file.json>` and `aurora-locus repo verify
//! <file.car>`. They use exactly the validator and the repository checks the server runs on
//! writes and imports, and say where a value fails (`Record/embed/images/0/alt: …`).

use std::fmt::Write as _;

use aurora_atproto::car::{read_car, walk_tree, CarLimits, Visit};
use aurora_atproto::commit::Commit;
use aurora_atproto::crypto::PublicKey;
use aurora_atproto::data;
use aurora_atproto::lexicon::{Def, Validator};
use aurora_generated::catalog;

/// A finding the tool reports and exits non-zero for.
#[derive(Debug)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Checks the JSON value in `json` against the lexicon definition `target`: `<nsid>` for a
/// record type (or a procedure's input, a query's output), `<nsid>#<def>` for a named definition,
/// `<nsid>#input`, `#output` or `#params` for a method's bodies and parameters. What it checked.
pub fn validate_lexicon(target: &str, json: &str) -> Result<String, Invalid> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Invalid(format!("not JSON: line {}, column {}: {e}", e.line(), e.column())))?;
    let catalog = catalog::catalog();
    let validator = Validator::new(catalog);
    let (nsid, def) = target.split_once('#').unwrap_or((target, "main"));
    let Some(main) = catalog.main(nsid) else {
        return Err(Invalid(format!("no lexicon {nsid} is known here (lexicons/ holds the ones this server knows)")));
    };
    let fail = |e: aurora_atproto::lexicon::ValidationError| Invalid(e.to_string());
    let described = match (main, def) {
        (Def::Record(_), "main") => {
            validator.record(nsid, &value).map_err(fail)?;
            format!("a valid {nsid} record")
        }
        (Def::Procedure(p), "main" | "input") => {
            let schema = p.input.as_ref().and_then(|b| b.schema.as_ref());
            let schema = schema.ok_or_else(|| Invalid(format!("{nsid} takes no JSON input")))?;
            validator.field(schema, &value, nsid, "Input").map_err(fail)?;
            format!("a valid input of {nsid}")
        }
        (Def::Query(_) | Def::Procedure(_), "output") | (Def::Query(_), "main") => {
            let output = match main {
                Def::Query(q) => q.output.as_ref(),
                Def::Procedure(p) => p.output.as_ref(),
                _ => None,
            };
            let schema = output.and_then(|b| b.schema.as_ref());
            let schema = schema.ok_or_else(|| Invalid(format!("{nsid} has no JSON output")))?;
            validator.field(schema, &value, nsid, "Output").map_err(fail)?;
            format!("a valid output of {nsid}")
        }
        (Def::Query(_) | Def::Procedure(_), "params") => {
            let schema = match main {
                Def::Query(q) => q.parameters.as_ref(),
                Def::Procedure(p) => p.parameters.as_ref(),
                _ => None,
            };
            let schema = schema.ok_or_else(|| Invalid(format!("{nsid} takes no parameters")))?;
            let serde_json::Value::Object(params) = &value else {
                return Err(Invalid("Params: must be an object of parameter names to values".into()));
            };
            validator.params(schema, params, nsid).map_err(fail)?;
            format!("valid parameters of {nsid}")
        }
        (_, name) => {
            validator.def(&format!("{nsid}#{name}"), &value, name).map_err(fail)?;
            format!("a valid {nsid}#{name}")
        }
    };
    Ok(described)
}

/// Checks a repository exported as a CAR: every block against its CID, the commit, the whole
/// tree (node by node, as an import does), every record as data, and every record of a known
/// collection against its lexicon; the signature too when `key` (a `did:key`) is given. A
/// summary, or every problem found.
pub async fn verify_repo(car: &[u8], key: Option<&str>) -> Result<String, Invalid> {
    let limits = CarLimits { max_total_size: car.len() as u64 + 1, ..CarLimits::default() };
    let (root, blocks) = read_car(car, limits).await.map_err(|e| Invalid(format!("not a valid CAR: {e}")))?;
    let commit_bytes = blocks.get(&root).ok_or_else(|| Invalid(format!("the root block {root} is missing")))?;
    let commit = Commit::from_bytes(commit_bytes).map_err(|e| Invalid(format!("commit {root}: {e}")))?;
    let signature = match key {
        Some(key) => {
            let key = PublicKey::from_did_key(key).map_err(|e| Invalid(format!("{key} is not a did:key: {e}")))?;
            commit.verify(&key).map_err(|e| Invalid(format!("commit {root}: {e}")))?;
            "signature verified"
        }
        None => "signature not checked (pass --key <did:key>)",
    };
    let mut problems = Vec::new();
    let (mut nodes, mut records, mut validated) = (0usize, 0usize, 0usize);
    let walked = walk_tree(
        commit.data,
        |cid| Ok(blocks.get(cid).cloned()),
        |visit| {
            match visit {
                Visit::Node { .. } => nodes += 1,
                Visit::Record { key, bytes, .. } => {
                    records += 1;
                    let uri = format!("at://{}/{key}", commit.did);
                    match data::from_dag_cbor(bytes).and_then(|ipld| data::ipld_to_json(&ipld)) {
                        Err(e) => problems.push(format!("{uri}: not valid data: {e}")),
                        Ok(value) => {
                            if let Some(checked) = catalog::validate_record(key.collection(), &value) {
                                validated += 1;
                                if let Err(e) = checked {
                                    problems.push(format!("{uri}: {e}"));
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        },
    );
    if let Err(e) = walked {
        problems.push(format!("tree under {}: {e}", commit.data));
    }
    if !problems.is_empty() {
        let mut report = format!("{} problem(s) in the repository of {}:", problems.len(), commit.did);
        for problem in &problems {
            let _ = write!(report, "\n  {problem}");
        }
        return Err(Invalid(report));
    }
    Ok(format!(
        "valid repository of {} at rev {}: commit {root}, {nodes} tree nodes, {records} records ({validated} checked \
         against known lexicons), {signature}",
        commit.did, commit.rev
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_is_valid_and_a_broken_one_is_refused_with_the_path() {
        let post = r#"{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2024-01-01T00:00:00.000Z"}"#;
        assert_eq!(validate_lexicon("app.bsky.feed.post", post).expect("valid"), "a valid app.bsky.feed.post record");
        let broken = r#"{"$type":"app.bsky.feed.post","text":"hi","createdAt":"yesterday"}"#;
        let error = validate_lexicon("app.bsky.feed.post", broken).expect_err("invalid");
        assert!(error.0.contains("createdAt"), "{error}");
        assert!(validate_lexicon("com.example.nothing", post).is_err());
        assert!(validate_lexicon("app.bsky.feed.post", "{not json").expect_err("json").0.contains("line 1"));
    }

    #[test]
    fn named_definitions_and_method_bodies_are_checked_too() {
        let strong_ref = r#"{"uri":"at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3kaaaaaaaaaa2","cid":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}"#;
        validate_lexicon("com.atproto.repo.strongRef", strong_ref).expect("main object");
        let session = r#"{"identifier":"alice.test","password":"x"}"#;
        validate_lexicon("com.atproto.server.createSession#input", session).expect("input");
        let error = validate_lexicon("com.atproto.server.createSession", "{}").expect_err("missing fields");
        assert!(error.0.contains("identifier"), "{error}");
        validate_lexicon(
            "com.atproto.repo.listRecords#params",
            r#"{"repo":"alice.test","collection":"app.bsky.feed.post"}"#,
        )
        .expect("params");
    }

    async fn exported(records: Vec<(&str, serde_json::Value)>) -> (Vec<u8>, aurora_atproto::crypto::Keypair) {
        use aurora_atproto::blockstore::MemoryBlockStore;
        use aurora_atproto::crypto::{KeyType, Keypair};
        use aurora_atproto::repo::{RecordWrite, Repo};
        let key = Keypair::generate(KeyType::K256);
        let writes = records
            .into_iter()
            .enumerate()
            .map(|(i, (collection, value))| RecordWrite::Create {
                collection: collection.parse().expect("nsid"),
                rkey: format!("3kaaaaaaaaa{}2", (b'a' + i as u8) as char).parse().expect("rkey"),
                record: data::to_dag_cbor(&data::json_to_ipld(&value).expect("ipld")).expect("cbor").into(),
            })
            .collect();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did");
        let (_, commit) = Repo::create(MemoryBlockStore::new(), did, &key, writes).await.expect("repo");
        let store = MemoryBlockStore::from_blocks(commit.new_blocks.clone());
        let (car, _) = aurora_atproto::car::export_repo(&store, commit.cid, Vec::new()).await.expect("export");
        (car, key)
    }

    #[tokio::test]
    async fn a_repository_verifies_and_each_invalid_record_is_named() {
        let post = |text: &str| serde_json::json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z" });
        let (car, key) =
            exported(vec![("app.bsky.feed.post", post("one")), ("com.example.thing", serde_json::json!({ "x": 1 }))])
                .await;
        let did_key = key.did_key();
        let report = verify_repo(&car, Some(&did_key)).await.expect("valid");
        assert!(report.contains("2 records (1 checked against known lexicons), signature verified"), "{report}");
        let other = aurora_atproto::crypto::Keypair::generate(aurora_atproto::crypto::KeyType::K256).did_key();
        assert!(verify_repo(&car, Some(&other)).await.is_err(), "another key does not verify it");

        let bad = serde_json::json!({ "$type": "app.bsky.feed.post", "text": "two", "createdAt": "yesterday" });
        let (car, _) = exported(vec![("app.bsky.feed.post", post("one")), ("app.bsky.feed.post", bad)]).await;
        let problems = verify_repo(&car, None).await.expect_err("an invalid record").0;
        assert!(problems.contains("app.bsky.feed.post/3kaaaaaaaaab2") && problems.contains("createdAt"), "{problems}");
        assert!(!problems.contains("3kaaaaaaaaaa2"), "the valid record is not named: {problems}");
        assert!(verify_repo(b"not a car", None).await.is_err());
    }
}
