//! `subscribeRepos`: frames as a relay consumes them — gap-free sequence numbers, backfill
//! from a cursor joined seamlessly to live events, commits verifiable from their own blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use aurora_atproto::data::{ipld_to_json, Ipld};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(app: &crate::helpers::TestApp, cursor: Option<i64>) -> Socket {
    let mut url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", app.url.replace("http://", "ws://"));
    if let Some(cursor) = cursor {
        url.push_str(&format!("?cursor={cursor}"));
    }
    tokio_tungstenite::connect_async(url).await.expect("websocket").0
}

/// The next frame's header and body, as JSON.
pub(crate) async fn next_frame(socket: &mut Socket) -> Option<(Value, Value)> {
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

app_test!(two_hundred_consumers_each_receive_every_event_of_a_concurrent_burst, |app| {
    let mut writers = Vec::new();
    for name in ["kyle", "kira", "kent", "kate"] {
        let account = app.create_account(name).await;
        writers.push((
            account["accessJwt"].as_str().expect("access").to_owned(),
            account["did"].as_str().expect("did").to_owned(),
        ));
    }
    let mut sockets = Vec::new();
    for _ in 0..200 {
        sockets.push(connect(&app, None).await);
    }
    // Four writers at once, ten posts each.
    let app = std::sync::Arc::new(app);
    let mut burst = Vec::new();
    for (token, did) in writers {
        let app = app.clone();
        burst.push(tokio::spawn(async move {
            for i in 0..10 {
                post(&app, &token, &did, &format!("burst {i}")).await;
            }
        }));
    }
    for writer in burst {
        writer.await.expect("writer");
    }
    let mut first: Option<Vec<i64>> = None;
    for socket in &mut sockets {
        let mut seen = Vec::new();
        while seen.len() < 40 {
            let (header, body) = next_frame(socket).await.expect("every consumer gets every event");
            assert_eq!(header["t"], "#commit");
            seen.push(body["seq"].as_i64().expect("seq"));
        }
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "gap-free: {seen:?}");
        match &first {
            None => first = Some(seen),
            Some(first) => assert_eq!(first, &seen, "every consumer sees the same sequence"),
        }
    }
});

/// A client whose socket buffer holds almost nothing, so that not reading stalls the server's
/// sends at once rather than after megabytes of kernel buffering.
async fn connect_small_buffer(app: &crate::helpers::TestApp) -> Socket {
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", app.url.replace("http://", "ws://"));
    let addr: std::net::SocketAddr = app.url.trim_start_matches("http://").parse().expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket.connect(addr).await.expect("connect");
    tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.expect("websocket").0
}

app_test!(a_stalled_consumer_is_cut_off_with_consumer_too_slow_and_nobody_else_notices, [
    "AURORA_FIREHOSE_BUFFER" => "16",
], |app| {
    let account = app.create_account("stan").await;
    let token = account["accessJwt"].as_str().expect("access").to_owned();
    let did = account["did"].as_str().expect("did").to_owned();
    let mut stalled = connect_small_buffer(&app).await;
    let mut healthy = Vec::new();
    for _ in 0..3 {
        let mut socket = connect(&app, None).await;
        healthy.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            while seqs.len() < 100 {
                let (header, body) = next_frame(&mut socket).await.expect("a healthy consumer keeps receiving");
                assert_eq!(header["t"], "#commit", "{body}");
                seqs.push(body["seq"].as_i64().expect("seq"));
            }
            seqs
        }));
    }
    // A hundred commits of about 60 kB each: far more than the stalled client's buffers and the
    // sixteen frames it may fall behind by.
    let filler = "x".repeat(60_000);
    for i in 0..100 {
        let body = json!({ "repo": did, "collection": "com.example.filler", "record": {
            "$type": "com.example.filler", "n": i, "text": filler } });
        let (status, answer) =
            app.call(Method::POST, "com.atproto.repo.createRecord", Some(&token), Some(&body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    for consumer in healthy {
        let seqs = consumer.await.expect("healthy consumer");
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap-free: {seqs:?}");
    }
    // Now the stalled consumer reads: what the server had already sent, then the error frame,
    // then the end of the stream.
    let mut received = 0;
    loop {
        let (header, body) = next_frame(&mut stalled).await.expect("frames, then the error frame");
        if header["op"] == -1 {
            assert_eq!(body["error"], "ConsumerTooSlow", "{body}");
            break;
        }
        received += 1;
    }
    assert!(received < 100, "the stalled consumer was cut off early, after {received} frames");
    assert!(next_frame(&mut stalled).await.is_none(), "the stream ends after the error frame");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.lines().any(|l| l == "aurora_firehose_cut_offs_total 1"), "the cut-off is counted: {metrics}");
    // Writers were never held up, and new consumers are served.
    post(&app, &token, &did, "after").await;
});

app_test!(a_commit_too_big_for_one_frame_is_announced_as_a_sync_event, [
    "AURORA_JSON_BODY_LIMIT" => "4000000",
], |app| {
    let account = app.create_account("tobi").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    let mut socket = connect(&app, None).await;
    let filler = "y".repeat(90_000);
    let writes: Vec<Value> = (0..25)
        .map(|i| json!({ "$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.filler",
            "value": { "$type": "com.example.filler", "n": i, "text": filler } }))
        .collect();
    let body = json!({ "repo": did, "writes": writes });
    let (status, answer) = app.call(Method::POST, "com.atproto.repo.applyWrites", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let (header, body) = next_frame(&mut socket).await.expect("an event for the big commit");
    assert_eq!(header["t"], "#sync", "{header}");
    assert_eq!(body["did"], did);
    assert_eq!(body["rev"], answer["commit"]["rev"]);
    // A commit within the limits is a #commit again.
    post(&app, token, did, "small").await;
    let (header, _) = next_frame(&mut socket).await.expect("the next event");
    assert_eq!(header["t"], "#commit");
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

#[tokio::test]
async fn subscribers_are_capped_per_address() {
    let app = crate::helpers::TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("AURORA_FIREHOSE_MAX_PER_IP", "2"), ("AURORA_TRUSTED_PROXIES", "none")],
    )
    .await
    .expect("app");
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", app.url.replace("http://", "ws://"));
    let first = tokio_tungstenite::connect_async(url.as_str()).await.expect("first").0;
    let _second = tokio_tungstenite::connect_async(url.as_str()).await.expect("second").0;
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a third subscription from one address is refused: {:?}", other.map(|_| ())),
    }
    drop(first);
    // The server notices the close and gives the place back.
    let started = std::time::Instant::now();
    loop {
        if tokio_tungstenite::connect_async(url.as_str()).await.is_ok() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the place was given back");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.ctx.firehose.subscriber_count(), 2);
}

app_test!(a_number_is_never_handed_out_twice_even_after_the_newest_event_is_deleted, |app| {
    use aurora_locus::db::entities::repo_seq;
    use sea_orm::{EntityTrait, QueryOrder};
    let account = app.create_account("noor").await;
    let token = account["accessJwt"].as_str().expect("access");
    let did = account["did"].as_str().expect("did");
    post(&app, token, did, "first").await;
    let newest = || async {
        let row = repo_seq::Entity::find().order_by_desc(repo_seq::Column::Seq).one(&app.ctx.db).await;
        row.expect("read the log").expect("an event").seq
    };
    let deleted = newest().await;
    repo_seq::Entity::delete_by_id(deleted).exec(&app.ctx.db).await.expect("delete the newest event");

    // A commit's event and an account's event each take the next number after the deleted one.
    post(&app, token, did, "second").await;
    assert_eq!(newest().await, deleted + 1, "a commit reused or skipped a number");
    let (status, answer) =
        app.call(Method::POST, "com.atproto.server.deactivateAccount", Some(token), Some(&json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(newest().await, deleted + 2, "an account event reused or skipped a number");
});
