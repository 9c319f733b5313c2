//! The source layout mirrors the NSIDs: every method the server implements has its body in
//! `src/api/<namespace path>/<method>.rs`, next to its generated types in
//! `generated/src/<namespace path>/<method>.rs`, so anyone finds both from the NSID alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated method module, by NSID: its path below `generated/src`.
fn generated_methods() -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let base = root().join("generated/src");
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read generated dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read generated file");
            if !text.contains("impl rt::Method for Endpoint") {
                continue;
            }
            let nsid = text
                .lines()
                .find_map(|l| l.strip_prefix("pub const NSID: &str = \"")?.strip_suffix("\";"))
                .expect("a method module names its NSID");
            found.insert(nsid.to_owned(), path.strip_prefix(&base).expect("below base").to_owned());
        }
    }
    found
}

/// The trait methods `impl Service for Api` overrides in a namespace's `mod.rs`.
fn overridden(namespace_mod: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(namespace_mod) else { return Vec::new() };
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("async fn "))
        .filter_map(|rest| rest.split('(').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_implemented_method_lives_in_the_file_its_nsid_names() {
    let generated = generated_methods();
    let served: Vec<&str> = aurora_generated::routes::SERVED.to_vec();
    let api = root().join("src/api");
    let mut implemented = 0;
    for nsid in &served {
        let relative = generated.get(*nsid).unwrap_or_else(|| panic!("{nsid} is routed but not generated"));
        let file = api.join(relative);
        let method = relative.file_stem().and_then(|s| s.to_str()).expect("module name");
        let namespace_mod = file.parent().expect("namespace dir").join("mod.rs");
        let is_overridden = overridden(&namespace_mod).iter().any(|f| f == method);
        assert_eq!(
            file.exists(),
            is_overridden,
            "{nsid}: its implementation must be in {} and override `{method}` in {}",
            file.display(),
            namespace_mod.display()
        );
        implemented += usize::from(is_overridden);
        // A routed method nobody implemented would answer 501 where the proxy could forward it:
        // either implement it or leave it to the proxy (`!<nsid>` in `aurora_codegen::SERVED`).
        assert!(is_overridden, "{nsid} is routed but not implemented");
    }
    // And nothing else: every other file under src/api is a namespace's mod.rs.
    let by_path: BTreeMap<&PathBuf, &String> = generated.iter().map(|(nsid, path)| (path, nsid)).collect();
    let mut stack = vec![api.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/api") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(&api).expect("below src/api").to_owned();
            // Namespaces keep their shared helpers in mod.rs; src/api itself holds the helpers
            // several namespaces share (such as mailed codes).
            if path.file_name().is_some_and(|n| n == "mod.rs") || relative.parent() == Some(Path::new("")) {
                continue;
            }
            let nsid = by_path.get(&relative).unwrap_or_else(|| panic!("{} names no method", path.display()));
            assert!(served.contains(&nsid.as_str()), "{} implements {nsid}, which is not served", path.display());
        }
    }
    assert!(
        implemented > 50,
        "only {implemented} implemented methods found: is the layout test looking in the right place?"
    );
}

/// Error names a lexicon declares are written only by generated code (each method's `Error`
/// enum); hand-written code uses those enums, so a renamed error cannot drift.
#[test]
fn only_generated_code_names_declared_errors() {
    let mut stack = vec![root().join("src")];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read_to_string(&path).expect("read source").contains("XrpcError::declared(") {
                offenders.push(path);
            }
        }
    }
    assert!(offenders.is_empty(), "use the generated Error enum instead of XrpcError::declared in {offenders:?}");
}
