//! High availability: two real `countersign serve` replicas on one PostgreSQL database. They
//! share one chain, one outbox and one set of decisions: nothing acknowledged is lost, nothing
//! is done twice, whichever replica a request reaches and whichever one dies.
//!
//! Needs `COUNTERSIGN_TEST_POSTGRES` (`.ci/postgres start`); skipped with a message without
//! it, required under `CI=true`.

mod support;

use std::time::Duration;

use countersign::ledger::Ledger;
use support::database;
use support::fake_slack::FakeSlack;
use support::process::{eventually, Server, World, ALICE, BOB, CHANNEL, TEAM};
use support::slack_signing;
use support::soar::Soar;

/// Two replicas of one deployment on a fresh PostgreSQL database, or `None` to skip.
async fn two_replicas() -> Option<(World, Server, Server)> {
    let server = database::postgres_server()?;
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    let a = world.serve("replica-a").await;
    let b = world.serve("replica-b").await;
    Some((world, a, b))
}

/// Every event's seq, in order, and how many of each kind.
async fn chain(world: &World) -> (Vec<i64>, std::collections::HashMap<String, usize>) {
    let ledger = Ledger::connect(&world.database_url).await.unwrap();
    let events = ledger.events(0, 100_000).await.unwrap();
    ledger.close().await;
    let mut kinds = std::collections::HashMap::new();
    for event in &events {
        *kinds.entry(event.kind.clone()).or_insert(0) += 1;
    }
    (events.iter().map(|e| e.seq).collect(), kinds)
}

fn assert_gapless(seqs: &[i64]) {
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the chain's seq has a gap or a repeat");
}

#[tokio::test]
async fn proposals_through_either_replica_extend_one_gapless_chain() {
    let Some((world, a, b)) = two_replicas().await else {
        return;
    };
    world.op.add_user(
        "BOBBYAAAAAAAAAAAAAAAAAAAAA",
        "bobby@example.com",
        "Bobby",
        "ACTIVE",
    );
    let token = world.create_token().await;

    let first = a.propose_suspend_alice(&token).await;
    let second = b.propose_suspend(&token, "bobby@example.com").await;

    world.card_ts_of(&first).await;
    world.card_ts_of(&second).await;
    // Each replica reads what the other wrote.
    b.wait_for_status(&token, &first, "pending").await;
    a.wait_for_status(&token, &second, "pending").await;
    let (seqs, kinds) = chain(&world).await;
    assert_gapless(&seqs);
    assert_eq!(kinds["proposal.created"], 2);
    assert_eq!(kinds["slack.card_posted"], 2);
    assert_eq!(world.slack.top_level_messages().len(), 2, "one card each");
    world.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_same_approve_click_reaching_both_replicas_at_once_is_one_approval() {
    let Some((world, a, b)) = two_replicas().await else {
        return;
    };
    let token = world.create_token().await;
    let id = a.propose_suspend_alice(&token).await;
    let card = world.card_ts_of(&id).await;

    // Slack retried the click, and a load balancer sent each copy to another replica.
    tokio::join!(world.approve(&a, &id, &card), world.approve(&b, &id, &card));

    b.wait_for_status(&token, &id, "executed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (seqs, kinds) = chain(&world).await;
    assert_gapless(&seqs);
    assert_eq!(kinds["approval.recorded"], 1);
    assert_eq!(kinds["proposal.approved"], 1);
    assert_eq!(kinds["execution.succeeded"], 1);
    assert_eq!(world.op.mutation_count("suspend"), 1);
    world.assert_ledger_verifies().await;
}

#[tokio::test]
async fn fifty_approvals_split_across_two_replicas_make_fifty_changes_and_no_more() {
    let Some((world, a, b)) = two_replicas().await else {
        return;
    };
    let users: Vec<(String, String)> = (0..50)
        .map(|i| (format!("USER{i:022}"), format!("user{i}@example.com")))
        .collect();
    for (id, email) in &users {
        world.op.add_user(id, email, "Someone", "ACTIVE");
    }
    let token = world.create_token().await;
    let replicas = [&a, &b];
    let mut proposals = Vec::new();
    for (i, (_, email)) in users.iter().enumerate() {
        proposals.push(replicas[i % 2].propose_suspend(&token, email).await);
    }

    // Each approval goes to one replica, alternating, as a load balancer would send them.
    let clicks = proposals.iter().enumerate().map(|(i, id)| {
        let world = &world;
        let replica = replicas[i % 2];
        async move {
            let card = world.card_ts_of(id).await;
            world.approve(replica, id, &card).await;
        }
    });
    futures_util::future::join_all(clicks).await;

    for id in &proposals {
        a.wait_for_status(&token, id, "executed").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.op.mutation_count("suspend"), 50, "one call each");
    for (id, _) in &users {
        assert_eq!(world.op.user_state(id).as_deref(), Some("SUSPENDED"));
    }
    let (seqs, kinds) = chain(&world).await;
    assert_gapless(&seqs);
    assert_eq!(kinds["execution.succeeded"], 50);
    assert_eq!(kinds["approval.recorded"], 50);
    world.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_replica_killed_while_holding_an_execution_is_finished_by_the_other_once() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    let mut a = world.serve("replica-a").await;
    let token = world.create_token().await;
    let id = a.propose_suspend_alice(&token).await;
    let card = world.card_ts_of(&id).await;
    // 1Password holds the suspend, so replica a is mid-call when it dies.
    world.op.hold_next_mutation(Duration::from_secs(3));
    world.approve(&a, &id, &card).await;
    eventually("replica a's suspend call", || {
        world.op.mutation_count("suspend") == 1
    })
    .await;
    let b = world.serve("replica-b").await;

    a.kill();

    // b takes the job over once a's lease (2 s here) has passed.
    let executed = b.wait_for_status(&token, &id, "executed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(executed["execution"]["outcome"], "suspended");
    assert_eq!(world.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    let (seqs, kinds) = chain(&world).await;
    assert_gapless(&seqs);
    assert_eq!(
        kinds["execution.started"], 2,
        "a's attempt, and b's that resumed it"
    );
    assert_eq!(
        kinds["execution.succeeded"], 1,
        "one outcome, recorded once"
    );
    assert_eq!(kinds.get("execution.failed"), None);
    world.assert_ledger_verifies().await;
}

#[tokio::test]
async fn replicas_that_find_a_checkpoint_due_together_write_it_once() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    let every = [("CHECKPOINT_INTERVAL_SECS", "1")];
    let a = world.serve_with("replica-a", &every).await;
    let _b = world.serve_with("replica-b", &every).await;
    let token = world.create_token().await;
    a.propose_suspend_alice(&token).await;

    tokio::time::sleep(Duration::from_millis(3500)).await;

    let ledger = Ledger::connect(&world.database_url).await.unwrap();
    let times: Vec<chrono::DateTime<chrono::Utc>> = ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "ledger.checkpoint")
        .map(|e| e.at.parse().unwrap())
        .collect();
    ledger.close().await;
    assert!(times.len() >= 2, "checkpoints were written: {times:?}");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::seconds(1),
            "two checkpoints within one interval: {times:?}"
        );
    }
}

#[tokio::test]
async fn a_stray_session_holding_the_write_lock_fails_writes_after_the_timeout_not_never() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let url = database::fresh_postgres(&server).await;
    let ledger = Ledger::connect(&url).await.unwrap();
    ledger.migrate().await.unwrap();
    let _stray = database::hold_write_lock(&url).await;

    let began = std::time::Instant::now();
    let write = tokio::time::timeout(Duration::from_secs(30), ledger.begin()).await;

    let error = write
        .expect("a write waiting on the lock gives up by itself")
        .err()
        .expect("the write fails while the lock is held");
    assert!(error.to_string().contains("lock timeout"), "{error}");
    assert!(
        began.elapsed() >= Duration::from_secs(9),
        "it waited its turn first"
    );
}

#[tokio::test]
async fn a_gateway_call_retried_on_the_other_replica_finds_the_same_proposal() {
    let Some((world, a, b)) = two_replicas().await else {
        return;
    };
    let (id, secret) = world
        .create_gateway_client("sumo-cloud-soar", "suspend-users")
        .await;
    let (id, secret) = (id.as_str(), secret.as_str());
    let via_a = Soar::new(&a.address, &world.op.version, id, secret);
    let via_b = Soar::new(&b.address, &world.op.version, id, secret);

    let first = via_a.post_once(ALICE, "suspend").await;
    assert_eq!(first.status, 503, "{:?}", first.body);
    let message = first.body["message"].as_str().unwrap();
    let proposal = message.rsplit(' ').next().unwrap().to_owned();
    let card = world.card_ts_of(&proposal).await;
    let retried = via_b.post_once(ALICE, "suspend").await;
    world.approve(&b, &proposal, &card).await;
    let answer = via_b.suspend(ALICE).await;

    assert_eq!(
        retried.body["message"], first.body["message"],
        "the same proposal"
    );
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["state"], "SUSPENDED");
    assert_eq!(world.slack.top_level_messages().len(), 1, "one card");
    assert_eq!(world.op.mutation_count("suspend"), 1);
}

#[tokio::test]
async fn two_replicas_sharing_slacks_socket_connections_record_a_redelivered_command_once() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    let socket = [
        ("SLACK_APP_TOKEN", FakeSlack::APP_TOKEN),
        ("SLACK_SOCKET_CONNECTIONS", "2"),
    ];
    let _a = world.serve_with("replica-a", &socket).await;
    let _b = world.serve_with("replica-b", &socket).await;
    eventually("four connections", || world.slack.open_connections() == 4).await;
    world.slack.deliver_again_after(Duration::from_millis(300));
    world.slack.lose_next_acks(1);
    let form = slack_signing::slash_command_body(
        TEAM,
        BOB,
        "/suspend",
        "alice@example.com Phished credentials used from a new country",
        CHANNEL,
        &world.slack.response_url("socket"),
    );
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
    let command: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();

    let delivery = world
        .slack
        .deliver("slash_commands", serde_json::Value::Object(command))
        .await;

    assert_eq!(delivery.attempts, 2, "delivered again after the lost ack");
    world.card_ts().await;
    eventually("the command's answer", || {
        !world.slack.responses("socket").is_empty()
    })
    .await;
    // Handled twice, the command would answer twice; nothing more may come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.slack.responses("socket").len(), 1);
    let (_, kinds) = chain(&world).await;
    assert_eq!(kinds.get("proposal.created"), Some(&1), "{kinds:?}");
}

#[tokio::test]
async fn two_replicas_escalate_a_proposal_once() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    std::fs::write(
        &world.policy,
        "[approvers]\nusers = [\"U0BOB\"]\n[suspend]\nescalate_after = \"1s\"\nescalate_to = [\"C0ONCALL\"]\n",
    )
    .unwrap();
    let fast_sweeps = [("SWEEP_INTERVAL_MS", "50")];
    let a = world.serve_with("replica-a", &fast_sweeps).await;
    let _b = world.serve_with("replica-b", &fast_sweeps).await;
    let token = world.create_token().await;

    a.propose_suspend_alice(&token).await;
    let escalations = || {
        world
            .slack
            .top_level_messages()
            .iter()
            .filter(|m| m.channel == "C0ONCALL")
            .count()
    };
    eventually("the escalation", || escalations() == 1).await;
    // Both replicas keep sweeping; neither escalates it again.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(escalations(), 1);
    let (_, kinds) = chain(&world).await;
    assert_eq!(kinds.get("proposal.escalated"), Some(&1));
}

#[tokio::test]
async fn two_replicas_share_the_events_cursor_and_read_each_audit_event_once() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    let events = [
        (
            "OP_EVENTS_TOKEN",
            support::fake_onepassword::FakeOnePassword::EVENTS_TOKEN,
        ),
        ("OP_EVENTS_URL", world.op.base_url.as_str()),
        ("EVENTS_INTERVAL", "1s"),
    ];
    let a = world.serve_with("replica-a", &events).await;
    let _b = world.serve_with("replica-b", &events).await;
    let token = world.create_token().await;
    let id = a.propose_suspend_alice(&token).await;
    let card = world.card_ts_of(&id).await;
    world.approve(&a, &id, &card).await;
    a.wait_for_status(&token, &id, "executed").await;

    let dana = support::fake_onepassword::ConsoleActor {
        name: "Dana".into(),
        email: "dana@example.com".into(),
        ..Default::default()
    };
    world.op.console_set_state(ALICE, "ACTIVE", dana);
    for _ in 0..200 {
        if chain(&world).await.1.get("drift.detected") == Some(&1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both replicas go on polling; neither reads an event again.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (seqs, kinds) = chain(&world).await;
    assert_gapless(&seqs);
    assert_eq!(kinds.get("execution.confirmed"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("drift.detected"), Some(&1), "{kinds:?}");
}

#[tokio::test]
async fn two_replicas_posting_cards_together_stay_within_slacks_posting_limit() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let world = World::start_on(database::fresh_postgres(&server).await).await;
    world.slack.limit_posts(Duration::from_millis(100), 3);
    for n in 0..12 {
        let email = format!("wave{n}@example.com");
        world
            .op
            .add_user(&format!("WAVE{n:022}"), &email, "Wave", "ACTIVE");
    }
    // Each replica takes its share of the channel's limit (and of its burst).
    let sharing = [
        ("REPLICAS", "2"),
        ("SLACK_POST_INTERVAL_MS", "110"),
        ("INCIDENT_THRESHOLD", "0"),
    ];
    let a = world.serve_with("replica-a", &sharing).await;
    let b = world.serve_with("replica-b", &sharing).await;
    let token = world.create_token().await;
    let mut ids = vec![];
    for n in 0..12 {
        let email = format!("wave{n}@example.com");
        world
            .op
            .add_user(&format!("WAVE{n:022}"), &email, "Wave", "ACTIVE");
        let replica = if n % 2 == 0 { &a } else { &b };
        ids.push(replica.propose_suspend(&token, &email).await);
    }

    for id in &ids {
        world.card_ts_of(id).await;
    }
    assert_eq!(world.slack.posts_refused(), 0, "no 429 from Slack");
}
