//! Locates the public atproto interop test vectors, which tests read but the repository never copies.

use std::path::PathBuf;

/// The interop vector directory: `ATPROTO_INTEROP_DIR`, else `../shared/atproto-interop-tests`
/// beside the workspace. `None` (after printing a notice) when it is absent, so that tests
/// can skip on a machine that lacks it.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ATPROTO_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/atproto-interop-tests"),
    };
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("AURORA_REQUIRE_INTEROP").is_some() {
        // CI sets this so that a missing vector directory fails loudly instead of passing quietly.
        panic!("atproto interop vectors not found at {}", dir.display());
    } else {
        println!("SKIPPED: atproto interop vectors not found at {} (set ATPROTO_INTEROP_DIR)", dir.display());
        None
    }
}
