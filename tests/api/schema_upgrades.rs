//! Schema migrations that rebuild a table keep every row of a database written before them.

use aurora_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

/// Every row of `query` as text, in order.
async fn rows(db: &DatabaseConnection, query: &str) -> Vec<Vec<Option<String>>> {
    let found = db.query_all(Statement::from_string(db.get_database_backend(), query)).await.expect("query");
    found.iter().map(|row| (0..8).map_while(|i| row.try_get_by_index::<Option<String>>(i).ok()).collect()).collect()
}

#[tokio::test]
async fn records_written_before_the_clustered_table_are_all_there_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("upgrade.sqlite").display());
    let db = Database::connect(ConnectOptions::new(url)).await.expect("connect");
    // The schema as it was before m0018 (the seventeen migrations before it), with records in it.
    Migrator::up(&db, Some(17)).await.expect("migrate to m0017");
    db.execute_unprepared(
        "INSERT INTO actor (did, handle, created_at) VALUES ('did:plc:aaaa', 'a.test', '2024-01-01T00:00:00Z');
         INSERT INTO record (uri, cid, did, collection, rkey, rev, indexed_at, takedown_ref) VALUES
           ('at://did:plc:aaaa/app.bsky.feed.post/3k2', 'bafyone', 'did:plc:aaaa', 'app.bsky.feed.post', '3k2', 'r1', 't1', NULL),
           ('at://did:plc:aaaa/app.bsky.feed.post/3k1', 'bafytwo', 'did:plc:aaaa', 'app.bsky.feed.post', '3k1', 'r2', 't2', 'taken'),
           ('at://did:plc:aaaa/app.bsky.feed.like/3k1', 'bafythree', 'did:plc:aaaa', 'app.bsky.feed.like', '3k1', 'r3', 't3', NULL);",
    )
    .await
    .expect("records before the upgrade");
    let everything = "SELECT uri, cid, did, collection, rkey, rev, indexed_at, takedown_ref FROM record ORDER BY uri";
    let before = rows(&db, everything).await;
    assert_eq!(before.len(), 3);

    Migrator::up(&db, None).await.expect("migrate to the newest schema");
    assert_eq!(rows(&db, everything).await, before, "every row, every column");
    let schema = rows(&db, "SELECT sql FROM sqlite_schema WHERE name = 'record'").await;
    let schema = schema[0][0].as_deref().expect("the table's SQL");
    assert!(schema.ends_with("WITHOUT ROWID"), "{schema}");
    assert!(schema.contains(r#"PRIMARY KEY ("did", "collection", "rkey")"#), "{schema}");
    // The blocks' table, rebuilt the same way by m0008, with its index.
    let blocks = rows(&db, "SELECT sql FROM sqlite_schema WHERE tbl_name = 'repo_block' ORDER BY type DESC").await;
    let blocks: Vec<&str> = blocks.iter().filter_map(|row| row[0].as_deref()).collect();
    assert!(blocks[0].ends_with("WITHOUT ROWID") && blocks[0].contains(r#"PRIMARY KEY ("did", "cid")"#), "{blocks:?}");
    assert!(blocks.iter().any(|sql| sql.contains("idx_repo_block_did_rev")), "{blocks:?}");
    // A URI still names one record: the upsert writes rely on it being unique.
    let twice = db
        .execute_unprepared(
            "INSERT INTO record (uri, cid, did, collection, rkey, rev, indexed_at) VALUES
               ('at://did:plc:aaaa/app.bsky.feed.post/3k2', 'bafyfour', 'did:plc:aaaa', 'app.bsky.feed.post', '3k9', 'r4', 't4')",
        )
        .await;
    assert!(twice.is_err(), "a second row with the same URI");
    // And records still go with their account.
    db.execute_unprepared("DELETE FROM actor WHERE did = 'did:plc:aaaa'").await.expect("delete the account");
    assert_eq!(rows(&db, everything).await, Vec::<Vec<Option<String>>>::new());
}
