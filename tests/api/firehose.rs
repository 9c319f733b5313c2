//! `subscribeRepos`: frames as a relay consumes them — gap-free sequence numbers, backfill
//! from a cursor joined seamlessly to live events, commits verifiable from their own blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use aurora_atproto::data::{ipld_to_json, Ipld};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &crate::helpers::TestApp, cursor: Option<i64>) -> Socket {
    let mut url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", app.url.replace("http://", "ws://"));
    if let Some(cursor) = cursor {
        url.push_str(&format!("?cursor={cursor}"));
    }
    tokio_tungstenite::connect_async(url).await.expect("websocket").0
}

/// The next frame's header and body, as JSON.
async fn next_frame(socket: &mut Socket) -> Option<(Value, Value)> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.ok()??.ok()?;
        let Message::Binary(bytes) = message else { continue };
        let mut reader = &bytes[..];
        let header: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader).expect("header");
        let body: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader).expect("body");
        assert!(reader.is_empty(), "nothing after the body");
        return Some((ipld_to_json(&header).expect("json"), ipld_to_json(&body).expect("json")));
    }
}

async fn post(app: &crate::helpers::TestApp, token: &str, did: &str, text: &str) {
    let body = json!({ "repo": did, "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z" } });
    let (status, answer) = app.call(Method::POST, "com.atproto.repo.createRecord", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
}

app_test!(a_consumer_backfills_from_its_cursor_and_then_follows_live, |app| {
    let account = app.create_account("iris").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    for i in 0..3 {
        post(&app, token, did, &format!("before {i}")).await;
    }
    let mut socket = connect(&app, Some(0)).await;
    let mut seqs = Vec::new();
    let mut types = BTreeMap::new();
    // identity, account, commit, sync from sign-up, then three commits.
    while seqs.len() < 7 {
        let (header, body) = next_frame(&mut socket).await.expect("a backfilled frame");
        assert_eq!(header["op"], 1, "{header}");
        *types.entry(header["t"].as_str().expect("type").to_owned()).or_insert(0) += 1;
        seqs.push(body["seq"].as_i64().expect("seq"));
        if header["t"] == "#commit" {
            assert_eq!(body["repo"], did);
            assert!(body["blocks"].is_object(), "blocks are bytes");
        }
    }
    assert_eq!(seqs, (seqs[0]..seqs[0] + 7).collect::<Vec<_>>(), "gap-free and in order");
    assert_eq!(types.get("#commit"), Some(&4));
    assert_eq!((types.get("#identity"), types.get("#account"), types.get("#sync")), (Some(&1), Some(&1), Some(&1)));

    // Live: a new write arrives as the next sequence number.
    post(&app, token, did, "live").await;
    let (header, body) = next_frame(&mut socket).await.expect("the live frame");
    assert_eq!(header["t"], "#commit");
    assert_eq!(body["seq"].as_i64(), Some(seqs[6] + 1));
    assert_eq!(body["ops"][0]["action"], "create");

    // Resuming from the middle yields exactly the missing events.
    let mut resumed = connect(&app, Some(seqs[3])).await;
    let (_, first) = next_frame(&mut resumed).await.expect("frame");
    assert_eq!(first["seq"].as_i64(), Some(seqs[4]));
});

app_test!(a_cursor_from_the_future_is_an_error_frame, |app| {
    app.create_account("jade").await;
    let mut socket = connect(&app, Some(1_000_000)).await;
    let (header, body) = next_frame(&mut socket).await.expect("error frame");
    assert_eq!(header["op"], -1);
    assert_eq!(body["error"], "FutureCursor");
});

app_test!(many_consumers_each_receive_every_live_event, |app| {
    let account = app.create_account("kyle").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let mut sockets = Vec::new();
    for _ in 0..50 {
        sockets.push(connect(&app, None).await);
    }
    for i in 0..5 {
        post(&app, token, did, &format!("burst {i}")).await;
    }
    for socket in &mut sockets {
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let (header, body) = next_frame(socket).await.expect("every consumer gets every event");
            assert_eq!(header["t"], "#commit");
            seen.push(body["seq"].as_i64().expect("seq"));
        }
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    }
});

app_test!(events_past_the_retention_window_are_trimmed_and_old_cursors_told_so, |app| {
    use aurora_locus::db::entities::repo_seq;
    use sea_orm::{EntityTrait, QueryOrder};
    let account = app.create_account("lena").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    // The sign-up events are made to look a week old; the retention window is a day.
    repo_seq::Entity::update_many()
        .col_expr(repo_seq::Column::SequencedAt, sea_orm::sea_query::Expr::value("2000-01-01T00:00:00.000Z"))
        .exec(&app.ctx.db)
        .await
        .expect("age events");
    post(&app, token, did, "recent").await;
    let trimmed = aurora_locus::sequencer::trim(&app.ctx.db, 24 * 60 * 60 * 1000).await.expect("trim");
    assert_eq!(trimmed, 4);
    let oldest =
        repo_seq::Entity::find().order_by_asc(repo_seq::Column::Seq).one(&app.ctx.db).await.expect("q").expect("kept");
    let mut socket = connect(&app, Some(0)).await;
    let (header, body) = next_frame(&mut socket).await.expect("info frame");
    assert_eq!((header["t"].as_str(), body["name"].as_str()), (Some("#info"), Some("OutdatedCursor")));
    let (_, body) = next_frame(&mut socket).await.expect("the oldest kept event");
    assert_eq!(body["seq"].as_i64(), Some(oldest.seq));
});
