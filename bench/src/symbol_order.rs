//! `--symbol-order FILE`: the functions the server runs under the suite, hottest first, for the
//! linker to lay out together (`dist/symbol-order.txt`, read by the top-level build.rs).
//!
//! The suite runs once (SQLite) with the server under callgrind, which counts every function
//! that executes, however rarely; a sampling profiler would miss the rare ones, and each one
//! missed costs a 64 KiB run of mapped code where it lies. Names are the mangled symbols the
//! linker sees, without the `.llvm.N` suffix thin LTO adds (its number changes with the code
//! around it; the packaged `dist` build has none).

use std::collections::HashMap;
use std::path::Path;

use crate::Env;

type Error = Box<dyn std::error::Error>;

pub async fn run(env: &Env, args: &[String], accounts: usize, file: &str) -> Result<(), Error> {
    let dumps = tempfile::tempdir()?;
    let wrapper = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--dump-instr=no".into(),
        "--demangle=no".into(),
        format!("--callgrind-out-file={}/callgrind.%p", dumps.path().display()),
    ];
    let env = Env { wrapper, ..env.clone() };
    crate::suite(&env, args, accounts, None).await?;
    let binary = std::fs::canonicalize(&env.binary)?;
    let mut cost: HashMap<String, u64> = HashMap::new();
    for entry in std::fs::read_dir(dumps.path())? {
        let text = std::fs::read_to_string(entry?.path())?;
        for (name, instructions) in self_costs(&text, &binary) {
            *cost.entry(name).or_default() += instructions;
        }
    }
    if cost.is_empty() {
        return Err("callgrind counted no function of the server (did it exit cleanly?)".into());
    }
    let mut names: Vec<(String, u64)> = cost.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut text = String::from(
        "# The server's functions that ran under `aurora-bench --symbol-order` (the suite on SQLite,\n\
         # under callgrind), hottest first; build.rs has the linker place them together.\n\
         # Regenerate after large changes: `just symbol-order`.\n",
    );
    for (name, _) in &names {
        text.push_str(name);
        text.push('\n');
    }
    std::fs::write(file, text)?;
    println!("{} functions written to {file}", names.len());
    Ok(())
}

/// Each function of `binary` with the instructions it executed itself, from one callgrind
/// dump (`--dump-instr=no`: cost lines are a line number and a count). Callgrind names an
/// object or function in full the first time and by its `(id)` after.
fn self_costs(dump: &str, binary: &Path) -> Vec<(String, u64)> {
    let mut objects: HashMap<&str, bool> = HashMap::new();
    let mut functions: HashMap<&str, &str> = HashMap::new();
    let (mut ours, mut function, mut after_call) = (false, None, false);
    let mut costs = Vec::new();
    for line in dump.lines() {
        if let Some((id, name)) = id_and_name(line, "ob=") {
            if let Some(name) = name {
                objects.insert(id, Path::new(name) == binary);
            }
            ours = objects.get(id).copied().unwrap_or(false);
        } else if let Some((id, name)) = id_and_name(line, "fn=") {
            if let Some(name) = name {
                functions.insert(id, name);
            }
            function = functions.get(id).copied();
            after_call = false;
        } else if let Some((id, Some(name))) = id_and_name(line, "cob=") {
            // An object can be named first as a callee's, the binary as the dynamic loader's
            // callee when nothing of it ran before.
            objects.insert(id, Path::new(name) == binary);
        } else if let Some((id, Some(name))) = id_and_name(line, "cfn=") {
            functions.insert(id, name);
        } else if line.starts_with("calls=") {
            // The cost line after `calls=` is the call's inclusive cost, not the caller's own.
            after_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '*')) {
            if std::mem::take(&mut after_call) {
                continue;
            }
            let count = line.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok());
            if let (true, Some(name), Some(count)) = (ours, function, count) {
                if count > 0 && !name.starts_with("0x") {
                    costs.push((strip_lto_suffix(name).to_owned(), count));
                }
            }
        }
    }
    costs
}

/// `ob=(3) /path` → ("3", Some("/path")); `fn=(12)` → ("12", None).
fn id_and_name<'a>(line: &'a str, spec: &str) -> Option<(&'a str, Option<&'a str>)> {
    let (id, name) = line.strip_prefix(spec)?.strip_prefix('(')?.split_once(')')?;
    Some((id, Some(name.trim()).filter(|n| !n.is_empty())))
}

/// `name.llvm.123` → `name`.
fn strip_lto_suffix(name: &str) -> &str {
    match name.rsplit_once(".llvm.") {
        Some((base, number)) if number.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_costs_count_only_the_binarys_functions_and_not_their_calls() {
        let dump = "\
ob=(1) /srv/aurora-locus
fl=(1) ???
fn=(1) _ZN4main17h0123456789abcdefE
0 100
cfn=(2) _ZN3lib3get17hfedcba9876543210E.llvm.4242
calls=3 0
0 900
fn=(2)
0 40
+2 2
ob=(2) /usr/lib/libc.so.6
fn=(3) memcpy
0 500
fn=(4) 0x000000000001ab70
0 7
";
        let mut costs = self_costs(dump, Path::new("/srv/aurora-locus"));
        costs.sort();
        assert_eq!(
            costs,
            vec![
                ("_ZN3lib3get17hfedcba9876543210E".to_owned(), 2),
                ("_ZN3lib3get17hfedcba9876543210E".to_owned(), 40),
                ("_ZN4main17h0123456789abcdefE".to_owned(), 100),
            ]
        );
    }

    #[test]
    fn an_object_first_named_as_a_callees_is_known_by_its_id_after() {
        let dump = "\
ob=(1) /usr/lib/ld-linux-x86-64.so.2
fn=(1) _dl_start
0 10
cob=(2) /srv/aurora-locus
cfn=(2) _ZN4main17h0123456789abcdefE
calls=1 0
0 70
ob=(2)
fn=(2)
0 70
";
        let costs = self_costs(dump, Path::new("/srv/aurora-locus"));
        assert_eq!(costs, vec![("_ZN4main17h0123456789abcdefE".to_owned(), 70)]);
    }

    #[test]
    fn only_a_numeric_lto_suffix_is_stripped() {
        assert_eq!(strip_lto_suffix("f.llvm.8812"), "f");
        assert_eq!(strip_lto_suffix("f.llvm.x"), "f.llvm.x");
        assert_eq!(strip_lto_suffix("f"), "f");
    }
}
