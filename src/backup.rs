//! Backup, restore and verification of a server on the embedded default (SQLite and disk
//! blobs). A backup is taken while the server runs: `VACUUM INTO` writes a consistent copy of
//! the database, then the blob files are copied (a later backup into the same directory copies
//! only the files it lacks), with the development secrets and a manifest of counts, sizes and
//! the database's checksum. `restore` puts a backup into an empty data directory; `verify`
//! checks what a data directory holds: every repository's commit signature and tree, every
//! blob's bytes against its CID, and the firehose log's order. On PostgreSQL the database part
//! is `pg_dump` (custom format) of the very snapshot the manifest's counts were read in, and
//! `pg_restore` in one transaction into an empty database.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::context::AppContext;
use crate::db::entities::{blob, repo_root, repo_seq};

const DATABASE_FILE: &str = "aurora.sqlite";
const PG_DUMP_FILE: &str = "aurora.pgdump";
const BLOBS_DIR: &str = "blobs";
const SECRETS_FILE: &str = "dev-secrets.env";
const MANIFEST_FILE: &str = "manifest.json";

/// What a backup holds, written beside it as `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub created_at: String,
    pub aurora_version: String,
    pub database_bytes: u64,
    pub database_sha256: String,
    pub repositories: u64,
    pub blob_files: u64,
    pub blob_bytes: u64,
    /// Blob files this run copied (the rest were there from an earlier backup).
    pub blob_files_copied: u64,
    pub head_seq: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io(path.to_owned(), e)
}

/// The SQLite file, or `None` for a PostgreSQL server.
fn sqlite_path(config: &Config) -> Option<PathBuf> {
    let url = &config.database_url;
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

/// Runs one of PostgreSQL's client programs; its error output when it fails.
fn pg_tool(program: &str, args: &[&str]) -> Result<(), BackupError> {
    let output = std::process::Command::new(program).args(args).output().map_err(|e| {
        BackupError::Refused(format!("cannot run {program} (install PostgreSQL's client programs): {e}"))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::Refused(format!("{program} failed: {}", String::from_utf8_lossy(&output.stderr).trim())))
    }
}

/// Dumps the PostgreSQL database to `target` from one snapshot, shared with the counts read
/// here; (repositories, newest event).
async fn dump_postgres(config: &Config, target: &Path) -> Result<(u64, i64), BackupError> {
    use sea_orm::{AccessMode, IsolationLevel, TransactionTrait};
    let db = crate::db::connect(&config.database_url).await?;
    let txn = db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?;
    let backend = sea_orm::DbBackend::Postgres;
    let one = |sql: &str| sea_orm::Statement::from_string(backend, sql.to_owned());
    let row = txn.query_one(one("SELECT pg_export_snapshot() AS snapshot")).await?;
    let snapshot: String = row.ok_or_else(|| BackupError::Refused("no snapshot".into()))?.try_get("", "snapshot")?;
    let counts = txn
        .query_one(one(
            "SELECT (SELECT count(*) FROM repo_root) AS repos, (SELECT coalesce(max(seq), 0) FROM repo_seq) AS head",
        ))
        .await?
        .ok_or_else(|| BackupError::Refused("no counts".into()))?;
    let (repos, head): (i64, i64) = (counts.try_get("", "repos")?, counts.try_get("", "head")?);
    let (url, file) = (config.database_url.clone(), target.display().to_string());
    let dumped = tokio::task::spawn_blocking(move || {
        let snapshot_arg = format!("--snapshot={snapshot}");
        let file_arg = format!("--file={file}");
        pg_tool(
            "pg_dump",
            &["--format=custom", "--no-owner", "--no-privileges", &snapshot_arg, &file_arg, "--dbname", &url],
        )
    })
    .await
    .map_err(|e| BackupError::Refused(e.to_string()))?;
    txn.commit().await?;
    dumped?;
    Ok((repos.max(0) as u64, head))
}

fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Every file below `root` (relative paths), leaving out temporary uploads.
fn files_below(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let dir = root.join(&relative);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::Io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let name = relative.join(entry.file_name());
            if name == Path::new("tmp") {
                continue;
            }
            if entry.file_type().map_err(io(&dir))?.is_dir() {
                stack.push(name);
            } else {
                found.push(name);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Copies the files of `from` missing in `to` (same relative path and size); how many, and the
/// bytes of all. `tick` is called after each file.
fn copy_tree(from: &Path, to: &Path, tick: &dyn Fn(u64)) -> Result<(u64, u64, u64), BackupError> {
    let (mut files, mut bytes, mut copied) = (0, 0, 0);
    for relative in files_below(from)? {
        let (source, target) = (from.join(&relative), to.join(&relative));
        let size = std::fs::metadata(&source).map_err(io(&source))?.len();
        let present = std::fs::metadata(&target).is_ok_and(|m| m.len() == size);
        if !present {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let partial = target.with_extension("partial");
            std::fs::copy(&source, &partial).map_err(io(&source))?;
            std::fs::rename(&partial, &target).map_err(io(&target))?;
            copied += 1;
        }
        files += 1;
        bytes += size;
        tick(1);
    }
    Ok((files, bytes, copied))
}

fn progress_bar(len: u64, what: &'static str) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

/// Copies the SQLite database to `target` (through `partial`); (repositories, newest event).
async fn copy_sqlite(config: &Config, partial: &Path, target: &Path) -> Result<(u64, i64), BackupError> {
    let db = crate::db::connect(&config.database_url).await?;
    // One consistent copy, taken inside a read transaction while writers go on.
    let quoted = partial.display().to_string().replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{quoted}'")).await?;
    std::fs::rename(partial, target).map_err(io(target))?;
    // Read straight from the copy, read-only: opening it through the pool would change it.
    let counts = {
        let copy = rusqlite::Connection::open_with_flags(target, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| BackupError::Refused(format!("cannot open the copy: {e}")))?;
        let count = |sql: &str| copy.query_row(sql, [], |row| row.get::<_, i64>(0));
        let read = count("SELECT count(*) FROM repo_root")
            .and_then(|n| Ok((n.max(0) as u64, count("SELECT coalesce(max(seq), 0) FROM repo_seq")?)));
        read.map_err(|e| BackupError::Refused(format!("cannot read the copy: {e}")))?
    };
    Ok(counts)
}

/// Backs up the server `config` describes into `dest` while it may be running.
pub async fn backup(config: &Config, dest: &Path) -> Result<Manifest, BackupError> {
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let on_sqlite = sqlite_path(config).is_some();
    let target = dest.join(if on_sqlite { DATABASE_FILE } else { PG_DUMP_FILE });
    let partial = target.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let (repositories, head_seq) = if on_sqlite {
        copy_sqlite(config, &partial, &target).await?
    } else {
        let counts = dump_postgres(config, &partial).await?;
        std::fs::rename(&partial, &target).map_err(io(&target))?;
        counts
    };
    // Blobs in a bucket stay there: the object store's own versioning or replication keeps
    // them (docs/scaling.md); the backup is the database's.
    let (blob_files, blob_bytes, blob_files_copied) = if config.blobstore_s3.is_some() {
        (0, 0, 0)
    } else {
        let (blob_dir, backup_blobs) = (config.blobstore_dir.clone(), dest.join(BLOBS_DIR));
        let files = files_below(&blob_dir)?.len() as u64;
        tokio::task::spawn_blocking(move || {
            let bar = progress_bar(files, "blobs");
            let done = copy_tree(&blob_dir, &backup_blobs, &|n| bar.inc(n));
            bar.finish_and_clear();
            done
        })
        .await
        .map_err(|e| BackupError::Refused(e.to_string()))??
    };
    let secrets = config.data_dir.join(SECRETS_FILE);
    if secrets.exists() {
        std::fs::copy(&secrets, dest.join(SECRETS_FILE)).map_err(io(&secrets))?;
    }
    let manifest = Manifest {
        created_at: crate::account::now(),
        aurora_version: env!("CARGO_PKG_VERSION").to_owned(),
        database_bytes: std::fs::metadata(&target).map_err(io(&target))?.len(),
        database_sha256: sha256_file(&target)?,
        repositories,
        blob_files,
        blob_bytes,
        blob_files_copied,
        head_seq,
    };
    let path = dest.join(MANIFEST_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?).map_err(io(&path))?;
    Ok(manifest)
}

/// Puts the backup in `src` into the data directory `config` names, which must hold no
/// database yet; checks the database against the manifest first.
pub fn restore(config: &Config, src: &Path) -> Result<Manifest, BackupError> {
    let manifest_path = src.join(MANIFEST_FILE);
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(&manifest_path).map_err(io(&manifest_path))?)?;
    let target = sqlite_path(config);
    let database = src.join(if target.is_some() { DATABASE_FILE } else { PG_DUMP_FILE });
    if sha256_file(&database)? != manifest.database_sha256 {
        return Err(BackupError::Refused(format!("{} does not match its manifest's checksum", database.display())));
    }
    match target {
        Some(target) => {
            if target.exists() {
                return Err(BackupError::Refused(format!(
                    "{} exists: restore only into an empty data directory",
                    target.display()
                )));
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(&database, &target).map_err(io(&database))?;
        }
        // In one transaction: into a database that already has the tables, nothing is changed.
        None => pg_tool(
            "pg_restore",
            &[
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
                &config.database_url,
                &database.display().to_string(),
            ],
        )
        .map_err(|e| BackupError::Refused(format!("{e} (restore only into an empty database)")))?,
    }
    if config.blobstore_s3.is_none() {
        copy_tree(&src.join(BLOBS_DIR), &config.blobstore_dir, &|_| {})?;
    }
    // The backup's secrets replace any the empty directory got when this command read its
    // configuration: the repository keys are sealed under them.
    let secrets = src.join(SECRETS_FILE);
    if secrets.exists() {
        std::fs::copy(&secrets, config.data_dir.join(SECRETS_FILE)).map_err(io(&secrets))?;
    }
    Ok(manifest)
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub repositories: u64,
    pub blobs: u64,
    pub events: u64,
    pub problems: Vec<String>,
}

/// Checks every repository (commit signature with the account's key, blocks, tree, records),
/// every stored blob (its file's bytes against its CID) and the firehose log's order.
pub async fn verify(ctx: &AppContext) -> Result<Report, BackupError> {
    use crate::blobs::BlobStore;
    let mut report = Report::default();
    let roots: Vec<aurora_atproto::syntax::Did> =
        repo_root::Entity::find().select_only().column(repo_root::Column::Did).into_tuple().all(&ctx.db).await?;
    for did in roots {
        report.repositories += 1;
        let Some(snapshot) = crate::repo::export::snapshot(&ctx.db, &did).await? else { continue };
        let car = match snapshot.write_car(None, Vec::new()).await {
            Ok(car) => car,
            Err(e) => {
                report.problems.push(format!("{did}: cannot export the repository: {e}"));
                continue;
            }
        };
        let key = match crate::keys::signing_key(ctx, &did).await {
            Ok(key) => key.did_key(),
            Err(e) => {
                report.problems.push(format!("{did}: no signing key: {e}"));
                continue;
            }
        };
        if let Err(problem) = crate::conformance::verify_repo(&car, Some(&key)).await {
            report.problems.push(format!("{did}: {problem}"));
        }
    }
    let blobs = blob::Entity::find().all(&ctx.db).await?;
    for row in blobs.into_iter().filter(|b| b.temp_key.is_none()) {
        report.blobs += 1;
        let Ok(cid) = row.cid.to_cid() else {
            report.problems.push(format!("blob {} of {}: not a CID", row.cid, row.did));
            continue;
        };
        let bytes = match ctx.blobs.get(&row.did, &cid, None).await {
            Ok(Some(bytes)) => bytes,
            _ if row.takedown_ref.is_some() => continue,
            _ => {
                report.problems.push(format!("blob {cid} of {}: its file is missing", row.did));
                continue;
            }
        };
        match crate::blobs::migrate::hash_of(bytes).await {
            Ok(found) if found == cid => {}
            Ok(_) => report.problems.push(format!("blob {cid} of {}: its bytes do not match its CID", row.did)),
            Err(e) => report.problems.push(format!("blob {cid} of {}: cannot read it: {e}", row.did)),
        }
    }
    let events: Vec<(i64, String)> = repo_seq::Entity::find()
        .select_only()
        .column(repo_seq::Column::Seq)
        .column(repo_seq::Column::SequencedAt)
        .order_by_asc(repo_seq::Column::Seq)
        .into_tuple()
        .all(&ctx.db)
        .await?;
    for pair in events.windows(2) {
        if pair[1].1 < pair[0].1 {
            report.problems.push(format!("firehose event {} is dated before event {}", pair[1].0, pair[0].0));
        }
    }
    report.events = events.len() as u64;
    Ok(report)
}
