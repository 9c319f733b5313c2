//! `just gen`: regenerates `generated/src` and `openapi/` from `lexicons/`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let version = env!("CARGO_PKG_VERSION");
    let result = aurora_codegen::generate(
        &root.join("lexicons"),
        &root.join("codegen/method-auth.json"),
        Some(&root.join("codegen/server-rules.json")),
        aurora_codegen::SERVED,
        version,
    )
    .and_then(|output| {
        aurora_codegen::write(&output, &root.join("generated/src"), &root.join("openapi"))?;
        Ok(output.rust.len())
    });
    match result {
        Ok(files) => {
            println!("aurora-codegen: wrote {files} Rust files and openapi/openapi.json");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aurora-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
