//! Group commit, on the engine under test (SQLite's writer; a PostgreSQL replica's connection
//! holding the ledger's lock): transactions queued behind one another share one commit, a
//! failing one rolls back alone, and every caller hears only once its work is durable.

mod support;

use countersign::domain::ProposalId;
use countersign::ledger::{EventKind, Ledger};
use serde_json::json;

/// One transaction appending one event; `fail` makes it run a statement the database refuses
/// (an approval for no proposal breaks a foreign key) after its append.
async fn append(ledger: Ledger, n: usize, fail: bool) -> Result<(), sqlx::Error> {
    let mut tx = ledger.begin().await?;
    let now = chrono::Utc::now();
    tx.append(None, EventKind::TokenCreated, "cli", json!({ "n": n }), now)
        .await?;
    if fail {
        let approval = countersign::domain::Approval {
            slack_user_id: countersign::domain::SlackUserId::parse("U0BOB").unwrap(),
            name: "Bob".into(),
            at: now,
            proof: countersign::domain::authority::Proof::Click,
        };
        tx.insert_approval(ProposalId::new(), &approval, None)
            .await?;
    }
    tx.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transaction_in_a_group_rolls_back_alone_and_hears_its_error() {
    let (ledger, _dir) = support::database::fresh_ledger().await;

    let tasks: Vec<_> = (0..40)
        .map(|n| tokio::spawn(append(ledger.clone(), n, n == 17)))
        .collect();
    let mut results = vec![];
    for task in tasks {
        results.push(task.await.unwrap());
    }

    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), n == 17, "transaction {n}: {result:?}");
    }
    let events = ledger.events(0, 1000).await.unwrap();
    assert_eq!(events.len(), 39, "every other transaction committed");
    assert!(events.iter().all(|e| e.payload["n"] != 17));
    assert!(
        ledger.verify(&[]).await.unwrap().is_ok(),
        "the chain is gapless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_queued_behind_one_another_share_commits() {
    let (ledger, _dir) = support::database::fresh_ledger().await;

    let tasks: Vec<_> = (0..50)
        .map(|n| tokio::spawn(append(ledger.clone(), n, false)))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let stats = ledger.group_stats();
    assert_eq!(stats.transactions, 50);
    assert!(stats.commits < 50, "no grouping happened: {stats:?}");
    assert_eq!(ledger.events(0, 1000).await.unwrap().len(), 50);
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_leaves_nothing_and_the_next_one_works() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let mut dropped = ledger.begin().await.unwrap();
    dropped
        .append(
            None,
            EventKind::TokenCreated,
            "cli",
            json!({"n": 0}),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    drop(dropped);

    append(ledger.clone(), 1, false).await.unwrap();

    let events = ledger.events(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["n"], 1);
    assert_eq!(events[0].seq, 1);
}

#[tokio::test]
async fn a_write_run_at_once_rolls_back_with_its_dropped_transaction_though_its_group_commits() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let mut dropped = ledger.begin().await.unwrap();
    // A write whose statement runs at once (not one waiting in a batch), first in its
    // transaction.
    dropped
        .save_audit_cursor("cursor-of-a-dropped-transaction", chrono::Utc::now())
        .await
        .unwrap();

    // The next transaction queues for the writer before the first is dropped (`biased`: polled
    // in this order), so both are in one group, which it commits.
    let (next, ()) = tokio::join!(biased; append(ledger.clone(), 1, false), async move {
        drop(dropped)
    });
    next.unwrap();

    let mut tx = ledger.begin().await.unwrap();
    assert_eq!(tx.audit_cursor().await.unwrap(), None);
    assert_eq!(ledger.events(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn callers_that_give_up_midway_never_jam_the_writer_or_break_the_chain() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    for n in 0..20 {
        // A caller that stops waiting for `begin`, at once or after a little while.
        let _ =
            tokio::time::timeout(std::time::Duration::from_micros(n * 50), ledger.begin()).await;
        // And one that stops waiting for its commit.
        let mut tx = ledger.begin().await.unwrap();
        tx.append(
            None,
            EventKind::TokenCreated,
            "cli",
            json!({"n": n}),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let _ = tokio::time::timeout(std::time::Duration::from_micros(n * 50), tx.commit()).await;
    }

    append(ledger.clone(), 99, false).await.unwrap();

    let events = ledger.events(0, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.payload["n"] == 99));
    assert!(
        ledger.verify(&[]).await.unwrap().is_ok(),
        "the chain is gapless"
    );
}

#[tokio::test]
async fn a_transaction_reads_its_own_writes_before_it_commits() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let mut tx = ledger.begin().await.unwrap();
    tx.append(
        None,
        EventKind::ProposalApproved,
        "U0ALICE",
        json!({}),
        chrono::Utc::now(),
    )
    .await
    .unwrap();

    assert_eq!(tx.approvals_by_since("U0ALICE", since).await.unwrap(), 1);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_refused_write_fails_by_the_next_statement_and_leaves_nothing() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let now = chrono::Utc::now();
    let mut tx = ledger.begin().await.unwrap();
    tx.append(None, EventKind::TokenCreated, "cli", json!({"n": 0}), now)
        .await
        .unwrap();
    let approval = countersign::domain::Approval {
        slack_user_id: countersign::domain::SlackUserId::parse("U0BOB").unwrap(),
        name: "Bob".into(),
        at: now,
        proof: countersign::domain::authority::Proof::Click,
    };
    // An approval for no proposal breaks a foreign key: the database refuses it, at once
    // (PostgreSQL) or when the next statement carries it to the writer (SQLite).
    let written = tx.insert_approval(ProposalId::new(), &approval, None).await;
    let read = tx.approvals_by_since("U0BOB", now).await;

    assert!(written.is_err() || read.is_err());
    drop(tx);
    append(ledger.clone(), 1, false).await.unwrap();
    let events = ledger.events(0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "nothing of the refused transaction stayed");
    assert_eq!((events[0].seq, &events[0].payload["n"]), (1, &json!(1)));
}

#[tokio::test]
async fn a_transaction_of_forty_thousand_writes_commits_whole() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let mut tx = ledger.begin().await.unwrap();
    for n in 0..40_000 {
        tx.append(
            None,
            EventKind::TokenCreated,
            "cli",
            json!({ "n": n }),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let head = ledger.verify(&[]).await.unwrap().expect("the chain holds");
    assert_eq!((head.events, head.seq), (40_000, 40_000));
}
