//! JSON Schema for the lexicon string formats. JSON Schema's own `format` keywords do not name
//! atproto's formats (and validators treat unknown formats as annotations), so each format is
//! also spelled out as a `pattern` (ECMA-262 regular expression) and a length bound, written to
//! accept exactly what the server's validator (`aurora_atproto::syntax`) accepts. Where a rule
//! is beyond a regular expression, the pattern accepts more than the validator, never less:
//! [`LIMITS`] lists each such rule, and the conformance test checks the list against the
//! atproto interop vectors.

use serde_json::{json, Value};

/// A DID: lowercase method, identifier of `[A-Za-z0-9._:-]` and `%XX`, not ending in `:`.
const DID: &str = r"^did:[a-z]+:(?:[a-zA-Z0-9._:-]|%[0-9A-Fa-f]{2})*(?:[a-zA-Z0-9._-]|%[0-9A-Fa-f]{2})$";
/// A handle: two or more DNS labels, the last starting with a letter.
const HANDLE: &str =
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$";
/// An NSID: a reversed domain (first segment not starting with a digit) and a name.
const NSID: &str = r"^[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$";
const TID: &str = r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$";
/// A record key: 1 to 512 of `[A-Za-z0-9._:~-]`, but not `.` or `..`.
const RECORD_KEY: &str = r"^(?!\.{1,2}$)[a-zA-Z0-9._:~-]{1,512}$";
/// A CID's text: 8 to 256 letters, digits, `+` and `=`, not a legacy CIDv0.
const CID: &str = r"^(?!Qmb)[a-zA-Z0-9+=]{8,256}$";
/// A datetime: RFC 3339 with an uppercase `T`, months 01-12, days 01-31, hours 00-23, minutes
/// and seconds 00-59 (no leap second), and a `Z` or `±hh:mm` offset up to 23:59 other than
/// `-00:00`.
const DATETIME: &str = concat!(
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])",
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?",
    r"(?:Z|\+(?:[01][0-9]|2[0-3]):[0-5][0-9]|-(?!00:00)(?:[01][0-9]|2[0-3]):[0-5][0-9])$"
);
/// A URI: a scheme, then something that is not whitespace or a control character.
const URI: &str = r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?://)?[^\s/\x00-\x1f\x7f][^\s\x00-\x1f\x7f]*$";
/// A BCP 47 language tag (RFC 5646 `Language-Tag`), lowercase primary subtag.
const LANGUAGE: &str = concat!(
    r"^(?:",
    // langtag
    r"(?:[a-z]{2,3}(?:-[a-zA-Z]{3}){0,3}|[a-z]{5,8})",
    r"(?:-[a-zA-Z]{4})?",
    r"(?:-(?:[a-zA-Z]{2}|[0-9]{3}))?",
    r"(?:-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*",
    r"(?:-[0-9a-wyzA-WYZ](?:-[a-zA-Z0-9]{2,8})+)*",
    r"(?:-[xX](?:-[a-zA-Z0-9]{1,8})+)?",
    // private use
    r"|[xX](?:-[a-zA-Z0-9]{1,8})+",
    // grandfathered
    r"|(?i:en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|i-tao|i-tay|i-tsu",
    r"|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang)",
    r")$"
);

/// Rules of the lexicon formats that the JSON Schema above cannot express; a value breaking one
/// of them passes the schema and is refused by the server.
pub const LIMITS: &[(&str, &str)] = &[
    ("datetime", "the day must exist in its month (no 30 February; 29 February only in a leap year) and the instant, offset applied, fall in year 0 or later; a pattern does no calendar arithmetic"),
    ("language", "variant and extension subtags may not repeat; a regular expression cannot remember them"),
    ("at-uri", "each part is checked as its own format (DID or handle, NSID, record key); the pattern checks their shape only"),
    ("string length", "lexicon maxLength and minLength count UTF-8 bytes, JSON Schema's count characters: the schema bounds a value by characters between a quarter of the byte minimum and the byte maximum"),
    ("graphemes", "maxGraphemes and minGraphemes count grapheme clusters, which JSON Schema cannot; they are given as x-maxGraphemes and x-minGraphemes"),
    ("blob", "a blob's accepted MIME types and maximum size concern the uploaded file, not the JSON; they are given as x-accept and x-maxSize"),
    ("bytes length", "bytes fields are base64 in JSON; their length bounds are given as x-minLength and x-maxLength"),
    ("server rules", "rules a method enforces beyond its lexicon (codegen/server-rules.json) are merged into its schemas; those a pattern cannot state are listed there as x-server-rules"),
];

fn at_uri() -> String {
    // The authority is a DID or a handle, then an NSID and a record key, each optional in turn.
    let strip = |pattern: &str| pattern.trim_start_matches('^').trim_end_matches('$').to_owned();
    format!("^at://(?:{}|{})(?:/{}(?:/{})?)?$", strip(DID), strip(HANDLE), strip(NSID), strip(RECORD_KEY))
}

/// The JSON Schema keywords for a string of lexicon `format`, merged into `schema`.
pub fn apply(format: &str, schema: &mut Value) {
    if format == "at-identifier" {
        // Either format with its own length bound: a handle longer than 253 characters is not
        // one, whatever a DID may be.
        let mut did = json!({});
        apply("did", &mut did);
        let mut handle = json!({});
        apply("handle", &mut handle);
        schema["anyOf"] = json!([did, handle]);
        return;
    }
    let (pattern, max_length) = match format {
        "did" => (DID.to_owned(), Some(2048)),
        "handle" => (HANDLE.to_owned(), Some(253)),
        "nsid" => (NSID.to_owned(), Some(317)),
        "tid" => (TID.to_owned(), None),
        "record-key" => (RECORD_KEY.to_owned(), None),
        "cid" => (CID.to_owned(), None),
        "datetime" => (DATETIME.to_owned(), Some(64)),
        "uri" => (URI.to_owned(), Some(8192)),
        "language" => (LANGUAGE.to_owned(), Some(128)),
        "at-uri" => (at_uri(), Some(8192)),
        _ => return,
    };
    schema["pattern"] = json!(pattern);
    if let Some(max) = max_length {
        let tighter = schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| m <= max);
        if !tighter {
            schema["maxLength"] = json!(max);
        }
    }
}
