//! aurora-codegen: lexicons → IR → Rust (`generated/`) and OpenAPI (`openapi/`).
//!
//! Parse every lexicon into a [`Catalog`], resolve it into an [`ir::Ir`], then emit. The output
//! depends only on the lexicon files and this crate, so every run is byte-identical.

pub mod auth;
pub mod emit;
pub mod formats;
pub mod ir;
pub mod names;
pub mod openapi;
pub mod query_reader;
pub mod server_rules;

use std::path::{Path, PathBuf};

use aurora_atproto::lexicon::Catalog;

#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Lexicon { path: PathBuf, message: String },
    #[error(transparent)]
    Ir(#[from] ir::IrError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodegenError + '_ {
    move |source| CodegenError::Io { path: path.to_owned(), source }
}

/// Reads every `*.json` lexicon below `dir` (files named `README*` and non-JSON files are ignored).
pub fn load_catalog(dir: &Path) -> Result<Catalog, CodegenError> {
    let mut files = Vec::new();
    collect_json(dir, &mut files)?;
    files.sort();
    let mut catalog = Catalog::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let doc = Catalog::parse_doc(&text)
            .map_err(|e| CodegenError::Lexicon { path: file.clone(), message: e.to_string() })?;
        let expected = file.strip_prefix(dir).ok().map(|p| p.with_extension("").to_string_lossy().replace('/', "."));
        if expected.as_deref() != Some(doc.id.as_str()) {
            return Err(CodegenError::Lexicon {
                path: file,
                message: format!("holds {} but its path says otherwise", doc.id),
            });
        }
        catalog.add(doc).map_err(|e| CodegenError::Lexicon { path: file.clone(), message: e.to_string() })?;
    }
    catalog.check_refs().map_err(|e| CodegenError::Lexicon { path: dir.to_owned(), message: e.to_string() })?;
    Ok(catalog)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CodegenError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// What one run produced.
pub struct Output {
    pub rust: emit::Files,
    pub openapi: String,
}

/// The NSID prefixes (or whole NSIDs) whose methods Aurora serves itself; the rest are proxied.
/// An entry `!<nsid>` leaves that method to the proxy although a prefix names it: the reference
/// PDS forwards these (to the AppView, or the service `atproto-proxy` names) rather than serving
/// them. Every served method is implemented (`tests/layout.rs`), so a method is either answered
/// here or forwarded, never refused as unimplemented while a service could answer it.
pub const SERVED: &[&str] = &[
    "com.atproto.",
    "app.bsky.actor.getPreferences",
    "app.bsky.actor.putPreferences",
    "org.auroralocus.",
    "!com.atproto.admin.updateAccountSigningKey",
    "!com.atproto.label.queryLabels",
    "!com.atproto.label.subscribeLabels",
    "!com.atproto.sync.getHostStatus",
    "!com.atproto.sync.listHosts",
    "!com.atproto.sync.listReposByCollection",
    "!com.atproto.sync.notifyOfUpdate",
    "!com.atproto.sync.requestCrawl",
    "!com.atproto.temp.addReservedHandle",
    "!com.atproto.temp.checkHandleAvailability",
    "!com.atproto.temp.dereferenceScope",
    "!com.atproto.temp.fetchLabels",
    "!com.atproto.temp.requestPhoneVerification",
    "!com.atproto.temp.revokeAccountCredentials",
];

/// Generates everything from the lexicons and the auth table. Methods whose NSID starts with
/// one of `served` get service traits and routes.
/// What each method enforces beyond its lexicon is read from `server_rules`, when given, into
/// the OpenAPI document.
pub fn generate(
    lexicons: &Path,
    auth_table: &Path,
    server_rules: Option<&Path>,
    served: &[&str],
    version: &str,
) -> Result<Output, CodegenError> {
    let catalog = load_catalog(lexicons)?;
    let auth_text = std::fs::read_to_string(auth_table).map_err(io(auth_table))?;
    let auth = auth::AuthTable::parse(&auth_text)
        .map_err(|message| CodegenError::Lexicon { path: auth_table.to_owned(), message })?;
    let rules = match server_rules {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            server_rules::ServerRules::parse(&text)
                .map_err(|message| CodegenError::Lexicon { path: path.to_owned(), message })?
        }
        None => server_rules::ServerRules::default(),
    };
    let ir = ir::build(&catalog, &auth, served)?;
    let openapi = openapi::document(&ir, &catalog, &rules, version).map_err(|message| CodegenError::Lexicon {
        path: server_rules.map_or_else(|| lexicons.to_owned(), Path::to_owned),
        message,
    })?;
    Ok(Output { rust: emit::emit(&ir), openapi })
}

/// Writes the output, first deleting everything previously generated so no stale file survives.
pub fn write(output: &Output, generated_src: &Path, openapi_dir: &Path) -> Result<(), CodegenError> {
    if generated_src.exists() {
        std::fs::remove_dir_all(generated_src).map_err(io(generated_src))?;
    }
    for (relative, text) in &output.rust {
        let path = generated_src.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    std::fs::create_dir_all(openapi_dir).map_err(io(openapi_dir))?;
    let spec = openapi_dir.join("openapi.json");
    std::fs::write(&spec, &output.openapi).map_err(io(&spec))?;
    Ok(())
}
