//! How jobs are claimed, on the engine under test: a commit rings only the bells of the lanes
//! it filed jobs for; a job's completion can claim its lane's next job in the same
//! transaction; a claim that shares its transaction with other work commits or rolls back
//! with it; and a job whose claim may have rolled back is held for a lease all the same.

mod support;

use chrono::{Duration, Utc};
use countersign::domain::{
    Action, Email, Execution, OnePasswordUserId, Proposal, ProposalId, Reason, Requester,
    SlackUserId, Source, Status, Target, UserState,
};
use countersign::ledger::{ClaimedJob, EventKind, Job, Lane, Ledger, Tx};
use futures_util::FutureExt;
use serde_json::json;
use sqlx::Connection;

fn lease() -> Duration {
    Duration::seconds(30)
}

/// A pending suspension, about a user of its own.
fn proposal(n: usize) -> Proposal {
    let now = Utc::now();
    Proposal {
        id: ProposalId::new(),
        action: Action::Suspend,
        status: Status::Pending,
        target: Target {
            id: OnePasswordUserId::parse(&format!("USER{n:022}")).unwrap(),
            email: Email::parse(&format!("user{n}@example.com")).unwrap(),
            display_name: format!("User {n}"),
            state: UserState::Active,
        },
        reason: Reason::parse("impossible travel").unwrap(),
        requester: Requester::SlackUser {
            slack_user_id: SlackUserId::parse("U0REQ").unwrap(),
            name: "Rita".into(),
        },
        also_requested_by: vec![],
        withdrawn: vec![],
        source: Source {
            platform: "tines".into(),
            ..Source::default()
        },
        evidence: vec![],
        evidence_not_kept: 0,
        approvals_required: 1,
        approvals: vec![],
        denial: None,
        created_at: now,
        expires_at: now + Duration::minutes(30),
        callback_url: None,
        execution: Execution::default(),
        slack: None,
        auto_approved_by: None,
        superseded_by: None,
        incident: None,
    }
}

/// Files `jobs` for a new proposal each, in one committed transaction.
async fn file(ledger: &Ledger, jobs: Vec<Job>) {
    let now = Utc::now();
    let mut tx = ledger.begin().await.unwrap();
    for (n, job) in jobs.into_iter().enumerate() {
        let proposal = proposal(n);
        tx.insert_proposal(&proposal, now).await.unwrap();
        tx.enqueue(proposal.id, job, now).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Drops a transaction without committing it, and waits until the writer has rolled it
/// back: it does so before its next transaction begins. (On PostgreSQL a claim on another
/// connection skips rows a transaction not yet rolled back still locks.)
async fn roll_back(ledger: &Ledger, tx: Tx) {
    drop(tx);
    ledger.begin().await.unwrap().commit().await.unwrap();
}

async fn claim(ledger: &Ledger, lane: Lane) -> Option<ClaimedJob> {
    ledger.claim_job(lane, lease(), Utc::now()).await.unwrap()
}

/// Two card jobs filed, and the first claimed as the Slack lane claims: its completion is to
/// hand on the next.
async fn first_of_two_cards(ledger: &Ledger) -> ClaimedJob {
    file(ledger, vec![Job::PostCard, Job::PostCard]).await;
    claim(ledger, Lane::Slack)
        .await
        .unwrap()
        .handing_on(lease())
}

/// A 1Password job filed and claimed in a transaction that then rolled back.
async fn claim_rolled_back(ledger: &Ledger) -> ClaimedJob {
    file(ledger, vec![Job::Execute]).await;
    let mut tx = ledger.begin().await.unwrap();
    let claimed = tx
        .claim_job(Lane::OnePassword, lease(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    roll_back(ledger, tx).await;
    claimed
}

#[tokio::test]
async fn a_commit_rings_the_bells_of_the_lanes_it_filed_jobs_for_and_no_other() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let slack = ledger.bell(Lane::Slack).notified();
    let onepassword = ledger.bell(Lane::OnePassword).notified();
    let callback = ledger.bell(Lane::Callback).notified();
    tokio::pin!(slack, onepassword, callback);
    for bell in [slack.as_mut(), onepassword.as_mut(), callback.as_mut()] {
        bell.enable();
    }

    file(&ledger, vec![Job::PostCard, Job::Execute]).await;

    assert!(slack.now_or_never().is_some(), "the Slack lane's bell rang");
    assert!(
        onepassword.now_or_never().is_some(),
        "the 1Password lane's bell rang"
    );
    assert!(
        callback.now_or_never().is_none(),
        "the callback lane's bell stayed silent"
    );
}

#[tokio::test]
async fn a_transaction_that_files_nothing_rings_no_bell() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let slack = ledger.bell(Lane::Slack).notified();
    tokio::pin!(slack);
    slack.as_mut().enable();

    let mut tx = ledger.begin().await.unwrap();
    tx.append(None, EventKind::TokenCreated, "cli", json!({}), Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert!(slack.now_or_never().is_none());
}

#[tokio::test]
async fn on_sqlite_a_completion_hands_on_the_lanes_next_job_claimed_in_its_own_transaction() {
    if support::database::engine() != support::database::Engine::Sqlite {
        return;
    }
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let first = first_of_two_cards(&ledger).await;

    ledger.complete_job(&first, Utc::now()).await.unwrap();

    let next = first
        .handed_on()
        .expect("the completion claimed the next job");
    assert_ne!(next.id, first.id);
    assert!(
        claim(&ledger, Lane::Slack).await.is_none(),
        "the job handed on is leased"
    );
    assert!(
        next.handed_on().is_none(),
        "nothing handed on yet by the next one"
    );
}

#[tokio::test]
async fn on_postgresql_a_completion_leaves_the_next_claim_to_the_lane_outside_the_ledgers_lock() {
    if support::database::engine() != support::database::Engine::Postgres {
        return;
    }
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let first = first_of_two_cards(&ledger).await;

    ledger.complete_job(&first, Utc::now()).await.unwrap();

    assert!(first.handed_on().is_none());
    let next = claim(&ledger, Lane::Slack)
        .await
        .expect("the next job is due");
    assert_ne!(next.id, first.id);
}

#[tokio::test]
async fn on_postgresql_a_1password_claim_commits_alone_and_the_executor_opens_its_own() {
    if support::database::engine() != support::database::Engine::Postgres {
        return;
    }
    let (ledger, _dir) = support::database::fresh_ledger().await;
    file(&ledger, vec![Job::Execute]).await;

    let (claimed, open) = ledger
        .claim_job_to_go_on(Lane::OnePassword, lease(), Utc::now())
        .await
        .unwrap()
        .unwrap();

    assert!(open.is_none());
    let mut tx = ledger.begin().await.unwrap();
    assert!(
        tx.holds_lease(&claimed).await.unwrap(),
        "the claim is durable"
    );
}

#[tokio::test]
async fn on_sqlite_a_1password_claim_leaves_its_transaction_open_to_go_on_in() {
    if support::database::engine() != support::database::Engine::Sqlite {
        return;
    }
    let (ledger, _dir) = support::database::fresh_ledger().await;
    file(&ledger, vec![Job::Execute]).await;

    let (claimed, open) = ledger
        .claim_job_to_go_on(Lane::OnePassword, lease(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    let mut tx = open.expect("the claim's transaction");
    assert!(tx.holds_lease(&claimed).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = ledger.begin().await.unwrap();
    assert!(tx.holds_lease(&claimed).await.unwrap(), "committed with it");
}

#[tokio::test]
async fn a_completion_that_rolls_back_hands_nothing_on_and_the_next_job_stays_due() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let first = first_of_two_cards(&ledger).await;

    let mut tx = ledger.begin().await.unwrap();
    tx.complete_job(&first, Utc::now()).await.unwrap();
    roll_back(&ledger, tx).await;

    assert!(first.handed_on().is_none());
    let second = claim(&ledger, Lane::Slack)
        .await
        .expect("the next job is due");
    assert_ne!(second.id, first.id);
}

#[tokio::test]
async fn a_claim_rolls_back_with_the_transaction_it_shares() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    file(&ledger, vec![Job::Execute]).await;

    let mut tx = ledger.begin().await.unwrap();
    let claimed = tx
        .claim_job(Lane::OnePassword, lease(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    tx.append(None, EventKind::TokenCreated, "cli", json!({}), Utc::now())
        .await
        .unwrap();
    roll_back(&ledger, tx).await;

    let again = claim(&ledger, Lane::OnePassword).await.expect("due again");
    assert_eq!(again.id, claimed.id);
    assert_eq!(again.attempts, 1, "the rolled-back claim is not counted");
    assert!(ledger.events(0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_whose_claim_rolled_back_is_held_for_a_lease_and_counted() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let claimed = claim_rolled_back(&ledger).await;

    let held = ledger
        .hold_job(&claimed, Utc::now() + lease())
        .await
        .unwrap();

    assert!(held);
    assert!(claim(&ledger, Lane::OnePassword).await.is_none(), "held");
    let later = ledger
        .claim_job(Lane::OnePassword, lease(), Utc::now() + lease() * 2)
        .await
        .unwrap()
        .expect("due once the lease has run out");
    assert_eq!(later.attempts, 2, "the failed attempt counts");
}

#[tokio::test]
async fn a_job_another_claim_holds_is_not_taken_by_holding() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    let rolled_back = claim_rolled_back(&ledger).await;
    let holder = claim(&ledger, Lane::OnePassword).await.unwrap();

    let held = ledger
        .hold_job(&rolled_back, Utc::now() + lease())
        .await
        .unwrap();

    assert!(!held);
    let mut tx = ledger.begin().await.unwrap();
    assert!(tx.holds_lease(&holder).await.unwrap(), "still the holder's");
}

#[tokio::test]
async fn a_job_given_back_is_due_at_once_and_its_claim_not_counted() {
    let (ledger, _dir) = support::database::fresh_ledger().await;
    file(&ledger, vec![Job::PostCard]).await;
    let claimed = claim(&ledger, Lane::Slack).await.unwrap();

    assert!(ledger.release_job(&claimed).await.unwrap());

    let again = claim(&ledger, Lane::Slack).await.expect("due at once");
    assert_eq!(again.id, claimed.id);
    assert_eq!(again.attempts, 1);
}

#[tokio::test]
async fn a_burst_of_jobs_has_postgresql_analyze_the_outbox_at_once() {
    let Some(server) = support::database::postgres_server() else {
        return;
    };
    let url = support::database::fresh_postgres(&server).await;
    let ledger = Ledger::connect(&url).await.unwrap();
    ledger.migrate().await.unwrap();
    let mut catalog = sqlx::PgConnection::connect(&url).await.unwrap();
    // Only countersign may analyze here: autovacuum would, a minute later.
    for table in ["outbox", "proposals"] {
        sqlx::query(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(&mut catalog)
        .await
        .unwrap();
    }

    file(&ledger, vec![Job::PostCard; 250]).await;

    // PostgreSQL's estimate of the outbox's rows, which only an analyze (or a vacuum) moves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rows: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'outbox'")
                .fetch_one(&mut catalog)
                .await
                .unwrap();
        if rows >= 250.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the planner still sees the outbox as it was before the burst ({rows} rows)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn on_postgresql_another_replica_hears_which_lanes_got_jobs() {
    let Some(server) = support::database::postgres_server() else {
        return;
    };
    let url = support::database::fresh_postgres(&server).await;
    let filing = Ledger::connect(&url).await.unwrap();
    filing.migrate().await.unwrap();
    let hearing = Ledger::connect(&url).await.unwrap();
    let any_commit = std::sync::Arc::new(tokio::sync::Notify::new());
    // The listener rings every bell once it listens (it may have missed something): wait
    // for that first, so what follows is the filing replica's news.
    let listens = any_commit.notified();
    tokio::pin!(listens);
    listens.as_mut().enable();
    let listening = hearing.wake_on_commits(any_commit.clone()).unwrap();
    listens.await;
    let slack = hearing.bell(Lane::Slack).notified();
    let callback = hearing.bell(Lane::Callback).notified();
    tokio::pin!(slack, callback);
    slack.as_mut().enable();
    callback.as_mut().enable();

    file(&filing, vec![Job::PostCard]).await;

    tokio::time::timeout(std::time::Duration::from_secs(10), slack)
        .await
        .expect("the Slack lane's bell rang on the other replica");
    assert!(
        callback.now_or_never().is_none(),
        "the callback lane's stayed silent"
    );
    listening.abort();
}
