//! Fenced leases, between two real `countersign` processes on one database: a worker that
//! stalled past its lease (frozen with SIGSTOP while 1Password held its call) cannot record an
//! outcome over the worker that took the job over, and its calls are still in the ledger.

mod support;

use std::time::Duration;

use countersign::ledger::Ledger;
use serde_json::Value;
use support::process::{eventually, Server, World, ALICE};

fn signal(server: &Server, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

async fn payloads_of(world: &World, kind: &str) -> Vec<Value> {
    let ledger = Ledger::connect(&world.database_url).await.unwrap();
    let events = ledger.events(0, 100_000).await.unwrap();
    ledger.close().await;
    events
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload)
        .collect()
}

/// Waits until no Slack job is left undone (the approval's card update and reply).
async fn slack_work_done(world: &World) {
    let ledger = Ledger::connect(&world.database_url).await.unwrap();
    for _ in 0..200 {
        let depth = ledger.outbox_depth().await.unwrap();
        if !depth.iter().any(|(lane, n)| lane == "slack" && *n > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ledger.close().await;
}

fn has_suspend_call(payload: &Value) -> bool {
    payload["calls"].as_array().is_some_and(|calls| {
        calls
            .iter()
            .any(|c| c["request"] == format!("POST users/{ALICE}:suspend"))
    })
}

#[tokio::test]
async fn a_worker_that_stalled_past_its_lease_cannot_record_over_the_one_that_took_over() {
    // Given a pending suspension of Alice, and a 1Password that holds the next suspend for 5 s
    let world = World::start().await;
    let stalled = world.serve("stalled").await;
    let token = world.create_token().await;
    let id = stalled.propose_suspend_alice(&token).await;
    let card = world.card_ts().await;
    world.op.hold_next_mutation(Duration::from_secs(5));

    // When the first worker's suspend is held and the worker freezes past its 2 s lease
    world.approve(&stalled, &id, &card).await;
    eventually("the first worker's suspend", || {
        world.op.mutation_count("suspend") == 1
    })
    .await;
    // Freeze it between transactions, not inside one: a process frozen while it holds the
    // database's write lock would stop every other writer, which is not what this tests.
    slack_work_done(&world).await;
    signal(&stalled, "STOP");
    // …a second worker takes the job over and executes it
    let second = world.serve("second").await;
    let executed = second.wait_for_status(&token, &id, "executed").await;
    // …and then the first wakes up with 1Password's late answer
    eventually("the held suspend to be answered", || {
        world
            .op
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(":suspend"))
            .count()
            == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&stalled, "CONT");

    // Then the stale worker records its calls, and nothing else
    let mut stale = vec![];
    for _ in 0..200 {
        stale = payloads_of(&world, "execution.attempt_failed")
            .await
            .into_iter()
            .filter(|p| p["stale"] == true)
            .collect();
        if !stale.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stale.len(), 1, "the stale worker recorded its attempt");
    assert!(has_suspend_call(&stale[0]), "{:#}", stale[0]);
    // …the one effective change is the second worker's, recorded once
    let succeeded = payloads_of(&world, "execution.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    assert!(has_suspend_call(&succeeded[0]), "{:#}", succeeded[0]);
    assert_eq!(executed["execution"]["outcome"], "suspended");
    assert_eq!(executed["execution"]["attempts"], 2);
    let still = second.wait_for_status(&token, &id, "executed").await;
    assert_eq!(still["execution"], executed["execution"]);
    assert_eq!(world.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    // …and the resumed attempt said plainly that the first was interrupted
    let started = payloads_of(&world, "execution.started").await;
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["resumed"], true);
    assert!(started[1]["interrupted"].is_string(), "{:#}", started[1]);
    world.assert_ledger_verifies().await;
}
