//! Rust names for lexicon things: modules from NSID segments, types from definition names,
//! fields from JSON property names.

use heck::{ToSnakeCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract",
    "become", "box", "do", "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot even be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super"];

/// A snake_case identifier, escaped when it collides with a keyword.
pub fn snake(name: &str) -> String {
    escape(name.trim_start_matches('$').to_snake_case())
}

/// An UpperCamelCase type name.
pub fn camel(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{camel}")
    } else {
        camel
    }
}

/// A SCREAMING_SNAKE_CASE constant name.
pub fn constant(name: &str) -> String {
    name.to_snake_case().to_uppercase()
}

fn escape(ident: String) -> String {
    if NOT_RAW.contains(&ident.as_str()) {
        format!("{ident}_")
    } else if KEYWORDS.contains(&ident.as_str()) {
        format!("r#{ident}")
    } else {
        ident
    }
}

/// The module path of a lexicon document: `com.atproto.repo.createRecord` → `com::atproto::repo::create_record`.
pub fn module_path(nsid: &str) -> Vec<String> {
    nsid.split('.').map(snake).collect()
}

/// The file of a document's module, relative to `generated/src`.
pub fn module_file(nsid: &str) -> std::path::PathBuf {
    let segments: Vec<String> = nsid.split('.').map(|s| s.to_snake_case()).collect();
    let mut path: std::path::PathBuf = segments.iter().collect();
    path.set_extension("rs");
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_raw_identifiers() {
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("self"), "self_");
        assert_eq!(snake("createdAt"), "created_at");
    }

    #[test]
    fn nsids_map_to_snake_case_module_files() {
        assert_eq!(
            module_file("com.atproto.repo.createRecord"),
            std::path::PathBuf::from("com/atproto/repo/create_record.rs")
        );
        assert_eq!(module_path("app.bsky.feed.post"), ["app", "bsky", "feed", "post"]);
    }
}
