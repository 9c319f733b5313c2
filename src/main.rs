//! `aurora-locus`: runs the PDS. Configuration comes from the environment (see README.md);
//! `AURORA_ENV_FILE=/pds/pds.env` reads a reference PDS's env file first.

use std::process::ExitCode;
use std::time::Instant;

use aurora_locus::{config, context::AppContext, server, telemetry};

/// Rust's allocations and SQLite's go through glibc's malloc, whose defaults cost a
/// long-running server much of its memory: up to eight arenas per core, each keeping what its
/// threads freed, and an mmap threshold that rises after the first large free so later large
/// blocks stay on the heap. Two arenas and a fixed threshold keep it small. The threshold sits
/// at 4 MiB, above the buffers an upload or an export fills and frees on every request (below
/// it each of them was mapped, faulted in page by page and unmapped again) and below a password
/// hash's 16 MiB, which is returned to the system the moment the hash ends. The trim threshold
/// sits there too: at its default of 128 KiB, freeing such a buffer at the top of the heap gave
/// its pages back, and the next request faulted them in again (an upload's CPU 12 % lower
/// without that). Settings in the environment (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_,
/// MALLOC_TRIM_THRESHOLD_) win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024) };
    }
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Start-up runs much code once (configuration, migrations, the route table of every method),
/// and the kernel maps the executable around each page first used, in runs of 64 KiB or a
/// whole large folio of the page cache: the server was ready holding some 21 MiB of the
/// executable, most of which it never reads again. Once it is built, the executable's
/// read-only pages are let go from this process (they stay in the page cache); what serving
/// runs is mapped again at its first use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_start_up_code() {
    use std::io::{Read, Seek, SeekFrom};
    // SAFETY: sysconf only reads a system constant.
    let Ok(page) = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) else { return };
    let (Ok(exe), Ok(maps)) = (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/maps")) else {
        return;
    };
    let Ok(mut pagemap) = std::fs::File::open("/proc/self/pagemap") else { return };
    for line in maps.lines() {
        // address perms offset dev inode path
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, "r--p" | "r-xp", _, _, _, path] = fields[..] else { continue };
        if std::path::Path::new(path) != exe {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        // Only a mapping whose every present page is still the file's: the relocated read-only
        // data (RELRO) was written before it was made read-only, and those pages are the
        // process's own copies, which dropping would lose. Bit 63 of a page's entry says it
        // is present, bit 61 that it is a page of the file.
        let mut entries = vec![0u8; (end - start) / page * 8];
        let read =
            pagemap.seek(SeekFrom::Start((start / page * 8) as u64)).and_then(|_| pagemap.read_exact(&mut entries));
        let own_copy = entries.chunks_exact(8).any(|entry| {
            let entry = u64::from_le_bytes(entry.try_into().unwrap_or_default());
            entry >> 63 == 1 && (entry >> 61) & 1 == 0
        });
        if read.is_err() || own_copy {
            continue;
        }
        // SAFETY: the range is mapped read-only and privately from the executable,
        // which is never written while it runs (the kernel refuses writes to a running
        // executable), and no page of it is the process's own copy (checked above): dropping
        // the pages loses nothing, and the next use of any of them maps it again from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_start_up_code() {}

fn main() -> ExitCode {
    let started = Instant::now();
    tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The conformance tools need no configuration: they read files and the built-in lexicons.
    if let Some(code) = conformance(&args) {
        return code;
    }
    if let Some(path) = std::env::var_os("AURORA_ENV_FILE") {
        if let Err(e) = config::load_env_file(std::path::Path::new(&path)) {
            eprintln!("aurora-locus: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The admin CLI talks to a running server; it needs only its URL and password.
    if args.first().map(String::as_str) == Some("admin") {
        return admin(&args[1..]);
    }
    let config = match config::Config::from_source(&config::Env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aurora-locus: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aurora-locus: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.first().map(String::as_str) {
        None | Some("serve") => runtime.block_on(run(config, started)),
        Some("send-test-mail") => match args.get(1) {
            Some(to) => runtime.block_on(send_test_mail(config, to)),
            None => Err("usage: aurora-locus send-test-mail <address>".into()),
        },
        Some("relays") => runtime.block_on(relays(config)),
        Some("backup") => match args.get(1) {
            Some(dir) => runtime.block_on(backup(config, dir)),
            None => Err("usage: aurora-locus backup <dir>".into()),
        },
        Some("restore") => match args.get(1) {
            Some(dir) => restore(config, dir),
            None => Err("usage: aurora-locus restore <dir>".into()),
        },
        Some("verify") => runtime.block_on(verify(config)),
        Some("migrate-db") => match args.get(1) {
            Some(url) => runtime.block_on(migrate_db(config, url)),
            None => Err("usage: aurora-locus migrate-db <postgres-url>".into()),
        },
        Some("blobs") => match (args.get(1).map(String::as_str), args.get(2).map(String::as_str), args.get(3)) {
            (Some("migrate"), Some("--to"), Some(to)) => runtime.block_on(migrate_blobs(config, to)),
            _ => Err("usage: aurora-locus blobs migrate --to s3|disk".into()),
        },
        Some("deleted-accounts") => runtime.block_on(deleted_accounts(config)),
        Some("restore-account") => match args.get(1) {
            Some(did) => runtime.block_on(restore_account(config, did)),
            None => Err("usage: aurora-locus restore-account <did>".into()),
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}").into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("aurora-locus: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `aurora-locus admin …` (see `aurora_locus::cli::admin`).
fn admin(args: &[String]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aurora-locus admin: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(aurora_locus::cli::admin::run(args)) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(aurora_locus::cli::admin::CliError::Help(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aurora-locus admin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `lexicon validate` and `repo verify`, if that is what was asked for.
fn conformance(args: &[String]) -> Option<ExitCode> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        ["lexicon", "validate", target, file] => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {file}: {e}"))
            .and_then(|json| aurora_locus::conformance::validate_lexicon(target, &json).map_err(|e| e.to_string()))
            .map(|what| format!("{file}: {what}")),
        ["lexicon", "validate", ..] => Err("usage: aurora-locus lexicon validate <nsid>[#def] <file.json>".into()),
        ["repo", "verify", file, rest @ ..] => {
            let key = match rest {
                [] => Ok(None),
                ["--key", key] => Ok(Some(*key)),
                _ => Err("usage: aurora-locus repo verify <file.car> [--key <did:key>]".to_owned()),
            };
            key.and_then(|key| {
                let car = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
                let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| e.to_string())?;
                runtime.block_on(aurora_locus::conformance::verify_repo(&car, key)).map_err(|e| e.to_string())
            })
        }
        ["repo", ..] => Err("usage: aurora-locus repo verify <file.car> [--key <did:key>]".into()),
        _ => return None,
    };
    Some(match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("{problem}");
            ExitCode::FAILURE
        }
    })
}

const USAGE: &str = "usage: aurora-locus [serve]                 run the server (the default)
       aurora-locus send-test-mail <address>  send a test mail and print the mail server's answer
       aurora-locus relays                    each configured relay's last answer to requestCrawl, and the head seq
       aurora-locus deleted-accounts          deleted accounts still restorable, and when each will be purged
       aurora-locus restore-account <did>     bring back a deleted account before it is purged
       aurora-locus lexicon validate <nsid>[#def] <file.json>
                                              check a record (or #input, #output, #params, a named def) against its lexicon
       aurora-locus repo verify <file.car> [--key <did:key>]
                                              check an exported repository: blocks, tree, records, signature
       aurora-locus backup <dir>              back up the database, blobs and secrets while the server runs
       aurora-locus restore <dir>             restore a backup into an empty data directory
       aurora-locus verify                    check every repository, blob and the firehose log; non-zero on a problem
       aurora-locus migrate-db <postgres-url> copy this SQLite server's database into a new PostgreSQL database (server stopped)
       aurora-locus blobs migrate --to s3|disk
                                              copy the blobs between the data directory and the PDS_BLOBSTORE_S3_* bucket,
                                              checked against their CIDs; resumable
       aurora-locus admin <command>           manage accounts, invites and takedowns on a running server
                                              (aurora-locus admin --help lists the commands)";

/// Sends one mail through the configured transport and prints the server's exact answer, so an
/// operator can check PDS_EMAIL_SMTP_URL without signing anyone up.
async fn send_test_mail(config: config::Config, to: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mailer = aurora_locus::mail::Mailer::from_config(&config)?;
    let text = format!("This is a test message from the Aurora Locus server at {}.", config.public_url);
    let answer = mailer.send(to, "Aurora Locus test mail", text, None).await?;
    println!("{answer}");
    Ok(())
}

/// `aurora-locus backup <dir>`.
async fn backup(config: config::Config, dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let manifest = aurora_locus::backup::backup(&config, std::path::Path::new(dir)).await?;
    println!(
        "backed up {} repositories ({} bytes of database, firehose at {}) and {} blob files ({} bytes, {} copied now) to {dir}",
        manifest.repositories,
        manifest.database_bytes,
        manifest.head_seq,
        manifest.blob_files,
        manifest.blob_bytes,
        manifest.blob_files_copied
    );
    Ok(())
}

/// `aurora-locus restore <dir>`.
fn restore(config: config::Config, dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let manifest = aurora_locus::backup::restore(&config, std::path::Path::new(dir))?;
    println!(
        "restored the backup of {} ({} repositories, {} blob files) into {}; run `aurora-locus verify` next",
        manifest.created_at,
        manifest.repositories,
        manifest.blob_files,
        config.data_dir.display()
    );
    Ok(())
}

/// `aurora-locus migrate-db <postgres-url>`: the database only; blobs and secrets stay in the
/// data directory, which the server on PostgreSQL goes on using.
async fn migrate_db(config: config::Config, target: &str) -> Result<(), Box<dyn std::error::Error>> {
    let source = aurora_locus::db::connect(&config.database_url).await?;
    let started = Instant::now();
    let copied = aurora_locus::migrate_db::migrate(&source, target).await?;
    for table in &copied {
        println!("{:<28} {:>10} rows", table.table, table.rows);
    }
    let total: u64 = copied.iter().map(|t| t.rows).sum();
    println!(
        "copied {total} rows in {:.1} s and checked every table's count. Next: set AURORA_DATABASE_URL to the PostgreSQL URL, start the server, and run `aurora-locus verify`.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `aurora-locus blobs migrate --to s3|disk`: copies the blobs between the data directory and
/// the bucket the `PDS_BLOBSTORE_S3_*` variables name; run it again to resume or catch up.
async fn migrate_blobs(config: config::Config, to: &str) -> Result<(), Box<dyn std::error::Error>> {
    use aurora_locus::blobs::{self, Blobs};
    let Some(s3) = &config.blobstore_s3 else {
        return Err(
            "set PDS_BLOBSTORE_S3_BUCKET (and the other PDS_BLOBSTORE_S3_* variables) to name the bucket".into()
        );
    };
    std::fs::create_dir_all(&config.blobstore_dir)?;
    let disk = Blobs::Disk(blobs::DiskBlobStore::new(&config.blobstore_dir));
    let bucket = Blobs::S3(blobs::S3BlobStore::new(s3)?);
    let (from, into) = match to {
        "s3" => (disk, bucket),
        "disk" => (bucket, disk),
        other => return Err(format!("--to takes s3 or disk, not {other:?}").into()),
    };
    let db = aurora_locus::db::connect(&config.database_url).await?;
    let total = blobs::migrate::count(&db).await?;
    println!("copying {total} blobs from {} to {}", from.describe(), into.describe());
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} blobs, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = blobs::migrate::migrate(&db, &from, &into, &|| bar.inc(1)).await?;
    bar.finish_and_clear();
    for problem in &report.problems {
        println!("PROBLEM {problem}");
    }
    println!(
        "{} blobs: {} copied ({} bytes), {} already there and checked, {} problem(s), in {:.1} s",
        report.blobs,
        report.copied,
        report.bytes_copied,
        report.present,
        report.problems.len(),
        started.elapsed().as_secs_f64()
    );
    if !report.problems.is_empty() {
        return Err(format!("{} problem(s); run the command again once they are fixed", report.problems.len()).into());
    }
    let next = match to {
        "s3" => "start the server with the PDS_BLOBSTORE_S3_* variables set",
        _ => "unset PDS_BLOBSTORE_S3_BUCKET and start the server",
    };
    println!("every blob is in place and matches its CID. Next: stop the server, run this once more, then {next}.");
    Ok(())
}

/// `aurora-locus verify`: exits non-zero unless everything holds.
async fn verify(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = AppContext::build(config).await?;
    let report = aurora_locus::backup::verify(&ctx).await?;
    for problem in &report.problems {
        println!("PROBLEM {problem}");
    }
    println!(
        "{} repositories, {} blobs, {} firehose events checked: {} problem(s)",
        report.repositories,
        report.blobs,
        report.events,
        report.problems.len()
    );
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} problem(s) found", report.problems.len()).into())
    }
}

/// Deleted accounts inside their grace period (AURORA_ACCOUNT_DELETION_GRACE_SECS).
async fn deleted_accounts(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    let grace = config.account_deletion_grace_secs;
    let ctx = AppContext::build(config).await?;
    let pending = aurora_locus::account::deletion::pending(&ctx).await?;
    if pending.is_empty() {
        println!("no deleted accounts awaiting purge (grace period {grace} s)");
    }
    for account in pending {
        let purge_at = (account.deleted_at.parse::<aurora_atproto::syntax::Datetime>())
            .map(|d| aurora_atproto::syntax::Datetime::from_unix_micros(d.unix_micros() + grace as i64 * 1_000_000))
            .map(|d| d.as_str().to_owned())
            .unwrap_or_default();
        println!(
            "{}  {}  deleted {}  purged after {}",
            account.did,
            account.handle.as_ref().map_or(aurora_atproto::syntax::Handle::INVALID, |h| h.as_str()),
            account.deleted_at,
            purge_at
        );
    }
    Ok(())
}

/// Brings a deleted account back before its purge.
async fn restore_account(config: config::Config, did: &str) -> Result<(), Box<dyn std::error::Error>> {
    let did: aurora_atproto::syntax::Did = did.parse()?;
    let ctx = AppContext::build(config).await?;
    aurora_locus::account::deletion::restore(&ctx, &did).await?;
    println!("restored {did}");
    Ok(())
}

/// What each relay in PDS_CRAWLERS last answered, and how far the firehose has got.
async fn relays(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    use sea_orm::{EntityTrait, QueryOrder};
    let db = aurora_locus::db::connect(&config.database_url).await?;
    let head = aurora_locus::db::entities::repo_seq::Entity::find()
        .order_by_desc(aurora_locus::db::entities::repo_seq::Column::Seq)
        .one(&db)
        .await?
        .map_or(0, |e| e.seq);
    println!("firehose head seq: {head}");
    if config.crawlers.is_empty() {
        println!("no relays configured (PDS_CRAWLERS is empty): no relay is told about this server");
    }
    for (relay, report) in aurora_locus::crawl::reports(&db, &config.crawlers).await? {
        match report {
            Some(r) => println!(
                "{relay}: {} at {} — {}",
                r.status.map_or("no answer".to_owned(), |s| format!("HTTP {s}")),
                r.at,
                r.answer.trim()
            ),
            None => println!("{relay}: never asked yet"),
        }
    }
    Ok(())
}

async fn run(config: config::Config, started: Instant) -> Result<(), Box<dyn std::error::Error>> {
    if !config.dev_secrets.is_empty() {
        tracing::warn!(
            "USING GENERATED DEVELOPMENT SECRETS for {} (kept in {}). Set them in the environment before serving real users.",
            config.dev_secrets.join(", "),
            config.data_dir.join("dev-secrets.env").display()
        );
    }
    let bind = config.bind;
    let public_url = config.public_url.clone();
    let ctx = AppContext::build(config).await?;
    let bound = server::Bound::bind(bind).await.map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    tracing::info!(
        addr = %bound.addr,
        public_url,
        startup_ms = started.elapsed().as_millis() as u64,
        "Aurora Locus {} listening",
        env!("CARGO_PKG_VERSION")
    );
    aurora_locus::crawl::notify(&ctx);
    aurora_locus::jobs::spawn(ctx.clone());
    bound.serve_when_built(ctx, server::shutdown_signal(), release_start_up_code).await?;
    Ok(())
}
