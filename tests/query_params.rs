//! The generated query readers (`FromQuery`) against the lexicon interpreter: for thousands of
//! query strings built from each method's own parameter schema, valid and not, the direct reader
//! builds exactly the value the interpreter builds and refuses exactly what it refuses.

use std::fmt::Debug;

use aurora_atproto::lexicon::{Def, Field};
use aurora_generated::catalog::catalog;
use aurora_xrpc::query::FromQuery;
use serde::de::DeserializeOwned;

/// A small deterministic generator: the same queries on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[self.below(values.len())]
    }
}

const LONG: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// Values worth trying for a parameter of schema `field`: valid ones and near misses.
fn candidates(field: &Field) -> Vec<&'static str> {
    let strings = ["", "a", "abc", "héllo wörld", "latest", "top", "desc", "unread", "a&b=c", LONG];
    match field {
        Field::Integer(_) => {
            vec!["0", "1", "2", "25", "50", "100", "101", "1000", "1001", "-1", "x", "1.5", "", "99999999999999999999"]
        }
        Field::Boolean(_) => vec!["true", "false", "TRUE", "1", ""],
        Field::String(s) => match s.format.as_deref() {
            Some("did") => {
                vec!["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:PLC:abc", "did:plc:", "alice.test"]
            }
            Some("handle") => vec!["alice.test", "Alice.Example.COM", "alice", "-a.test", "did:plc:abc"],
            Some("at-identifier") => {
                vec!["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "alice.test", "Bob.Example.com", "did:x", "bob", ""]
            }
            Some("nsid") => vec!["app.bsky.feed.post", "com.example.fooBar", "app..post", "post", "a.b.c1"],
            Some("record-key") => vec!["3jzfcijpj2z2a", "self", "a:b~c", ".", "..", "a/b", ""],
            Some("cid") => vec![
                "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
                "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR",
                "x",
            ],
            Some("tid") => vec!["3jzfcijpj2z2a", "3JZFCIJPJ2Z2A", "123"],
            Some("at-uri") => vec![
                "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3jzfcijpj2z2a",
                "at://alice.test",
                "at://alice.test/app..post",
                "https://example.com",
            ],
            Some("datetime") => vec!["2024-05-01T12:00:00.000Z", "2024-02-30T00:00:00Z", "2024-05-01", "yesterday"],
            Some("uri") => vec!["https://example.com/a", "example", "at://x"],
            Some("language") => vec!["en", "pt-BR", "english", "x-klingon"],
            _ => strings.to_vec(),
        },
        _ => strings.to_vec(),
    }
}

/// Builds `rounds` queries from the method's parameter schema and checks both readers on each.
/// Returns how many queries the interpreter accepted, so a caller sees both outcomes tried.
fn agree<P: DeserializeOwned + FromQuery + PartialEq + Debug>(nsid: &str, rounds: usize) -> (usize, usize) {
    let Some(Def::Query(query)) = catalog().main(nsid) else { panic!("{nsid} is a query") };
    let schema = query.parameters.as_ref().expect("the method has parameters");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ nsid.len() as u64);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..rounds {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, field) in &schema.properties {
            let (item, times) = match field {
                Field::Array(array) => {
                    // Mostly a few items, sometimes past the largest count any lexicon allows.
                    let times = if rng.below(8) == 0 { 20 + rng.below(90) } else { rng.below(4) };
                    (array.items.as_ref(), times)
                }
                scalar => (scalar, [0, 1, 1, 1, 1, 1, 1, 2][rng.below(8)]),
            };
            let values = candidates(item);
            for _ in 0..times {
                pairs.append_pair(name, rng.pick(&values));
            }
        }
        if rng.below(4) == 0 {
            pairs.append_pair("undeclared", "anything");
        }
        let query = pairs.finish();
        let fast = P::from_query(&query);
        let slow = aurora_xrpc::validated_params::<P>(&query, catalog(), nsid);
        match slow {
            Ok(value) => {
                assert_eq!(
                    fast.as_ref(),
                    Some(&value),
                    "{nsid}?{query}: the direct reader must build what the interpreter builds"
                );
                accepted += 1;
            }
            Err(e) => {
                assert_eq!(
                    fast, None,
                    "{nsid}?{query}: the interpreter refused it ({e:?}), the direct reader must too"
                );
                refused += 1;
            }
        }
    }
    (accepted, refused)
}

macro_rules! methods_agree {
    ($($test:ident: $module:path;)*) => {$(
        #[test]
        fn $test() {
            use $module as method;
            let (accepted, refused) = agree::<method::Params>(method::NSID, 4000);
            assert!(accepted > 20 && refused > 20, "both outcomes tried: {accepted} accepted, {refused} refused");
        }
    )*};
}

methods_agree! {
    get_record_formats: aurora_generated::com::atproto::repo::get_record;
    list_records_bounds_and_defaults: aurora_generated::com::atproto::repo::list_records;
    list_repos_limit: aurora_generated::com::atproto::sync::list_repos;
    get_blob_did_and_cid: aurora_generated::com::atproto::sync::get_blob;
    service_auth_lengths_and_nsid: aurora_generated::com::atproto::server::get_service_auth;
    invite_codes_boolean_defaults: aurora_generated::com::atproto::server::get_account_invite_codes;
    profiles_array_bound: aurora_generated::app::bsky::actor::get_profiles;
    members_array_bounds: aurora_generated::chat::bsky::convo::get_convo_for_members;
    known_values: aurora_generated::chat::bsky::convo::list_convos;
    integer_arrays: aurora_generated::tools::ozone::report::get_assignments;
    string_lengths: aurora_generated::app::bsky::video::get_upload_status;
    search_accounts: aurora_generated::org::auroralocus::admin::search_accounts;
}

/// A string parameter with a default is left to the interpreter, which fills the default in.
#[test]
fn a_string_default_is_left_to_the_interpreter() {
    use aurora_generated::tools::ozone::set::query_sets as method;
    assert_eq!(method::Params::from_query("limit=5"), None);
    let params: method::Params = aurora_xrpc::validated_params("limit=5", catalog(), method::NSID).expect("valid");
    assert_eq!(params.limit, 5);
}

/// Both readers on one query: they agree, and the value (if any) is returned.
fn same<P: DeserializeOwned + FromQuery + PartialEq + Debug>(nsid: &str, query: &str) -> Option<P> {
    let slow = aurora_xrpc::validated_params::<P>(query, catalog(), nsid).ok();
    let fast = P::from_query(query);
    assert_eq!(fast, slow, "{nsid}?{query}");
    fast
}

/// Query strings as clients write them by hand: unescaped colons, `+` for spaces, escaped keys,
/// empty pairs, a key without `=`, bytes that are not UTF-8.
#[test]
fn hand_written_queries_decode_as_the_interpreter_decodes_them() {
    use aurora_generated::com::atproto::repo::{get_record, list_records};
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let record = |query: &str| same::<get_record::Params>(get_record::NSID, query);
    let found = record(&format!("repo={did}&collection=app.bsky.feed.post&rkey=self")).expect("valid");
    assert_eq!(found.repo.as_str(), did);
    assert!(record("re%70o=Alice.Test&collection=app.bsky.feed.post&rkey=self").is_some());
    assert!(record("&&repo=alice.test&&collection=app.bsky.feed.post&rkey=self&").is_some());
    assert_eq!(record("repo=alice.test&collection=app.bsky.feed.post&rkey=a+b"), None);
    assert_eq!(record("repo&collection=app.bsky.feed.post&rkey=self"), None);
    let page = |query: &str| same::<list_records::Params>(list_records::NSID, query);
    let base = "repo=alice.test&collection=app.bsky.feed.post";
    assert_eq!(page(&format!("{base}&cursor=a+b%2Bc")).expect("valid").cursor.as_deref(), Some("a b+c"));
    assert_eq!(page(&format!("{base}&cursor=%FF")).expect("valid").cursor.as_deref(), Some("\u{FFFD}"));
    assert_eq!(page(&format!("{base}&cursor==x")).expect("valid").cursor.as_deref(), Some("=x"));
    assert_eq!(page(&format!("{base}&limit=10&limit=10")), None);
}
