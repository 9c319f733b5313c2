//! Links the server with the code it runs while serving laid out together (see
//! `dist/symbol-order.txt` and docs/performance.md).
//!
//! The kernel maps an executable's code in runs of 64 KiB around each page first used, so code
//! spread over the whole binary costs resident memory for every run it touches: serving mapped
//! 17–19 MiB of a 27 MiB text section to run some 7 MiB of functions. The order file names
//! those functions (from `aurora-bench --symbol-order`, hottest first); the linker places them
//! first and the rest after, so serving touches far fewer runs.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=dist/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=AURORA_SYMBOL_ORDER");
    // rust-lld links this target by default (Rust 1.90 on), and it takes the option; other
    // targets and linkers go without. `AURORA_SYMBOL_ORDER=off` opts out (a linker without
    // `--symbol-ordering-file`, such as GNU ld configured by hand).
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || std::env::var("AURORA_SYMBOL_ORDER").is_ok_and(|v| v == "off") {
        return;
    }
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("dist/symbol-order.txt");
    if order.is_file() {
        println!("cargo:rustc-link-arg-bin=aurora-locus=-Wl,--symbol-ordering-file={}", order.display());
        // Functions named there that a build does not have (inlined, renamed by a change) are
        // simply not placed; that is expected, not worth a warning per symbol.
        println!("cargo:rustc-link-arg-bin=aurora-locus=-Wl,--no-warn-symbol-ordering");
    }
}
