//! Crash recovery: the real `countersign` binary, killed with SIGKILL at the worst moments of an
//! execution and started again on the same database, changes 1Password exactly once and records
//! the outcome. The lease is 2 s, so the restarted worker takes the dead one's job over quickly.

mod support;

use std::time::Duration;

use countersign::ledger::Ledger;
use support::process::{eventually, World, ALICE};

#[tokio::test]
async fn killed_while_1password_holds_the_call_then_restarted_suspends_exactly_once() {
    // Given a pending suspension of Alice, and a 1Password that takes 3 s to answer
    let world = World::start().await;
    let mut first = world.serve("first").await;
    let token = world.create_token().await;
    let id = first.propose_suspend_alice(&token).await;
    let card = world.card_ts().await;
    world.op.set_delay(Duration::from_secs(3));
    let reads_before = world.reads_of_alice();

    // When Bob approves, and the process dies while 1Password holds the read-first call
    world.approve(&first, &id, &card).await;
    eventually("the executor's first read of Alice", || {
        world.reads_of_alice() > reads_before
    })
    .await;
    first.kill();
    world.op.set_delay(Duration::ZERO);
    // …and it is started again on the same database
    let second = world.serve("second").await;

    // Then the new process resumes the execution and suspends Alice, with one suspend call
    let proposal = second.wait_for_status(&token, &id, "executed").await;
    assert_eq!(
        proposal["execution"]["outcome"], "suspended",
        "{proposal:#}"
    );
    assert_eq!(world.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert_eq!(
        world.op.mutation_count("suspend"),
        1,
        "{:#?}",
        world.op.requests()
    );
    // …and the ledger records one success and still verifies
    assert_eq!(world.events_of_kind("execution.succeeded").await, 1);
    world.assert_ledger_verifies().await;
}

#[tokio::test]
async fn killed_after_1password_acted_but_before_recording_then_restarted_makes_no_second_call() {
    // Given a pending suspension of Alice, and a 1Password that answers a suspend 3 s after it acts
    let world = World::start().await;
    let mut first = world.serve("first").await;
    let token = world.create_token().await;
    let id = first.propose_suspend_alice(&token).await;
    let card = world.card_ts().await;
    world.op.answer_mutations_after(Duration::from_secs(3));

    // When Bob approves, and the process dies after 1Password suspended Alice but before
    // its answer arrived, so nothing about it is recorded yet
    world.approve(&first, &id, &card).await;
    eventually("1Password to suspend Alice", || {
        world.op.user_state(ALICE).as_deref() == Some("SUSPENDED")
    })
    .await;
    first.kill();
    world.op.answer_mutations_after(Duration::ZERO);
    // …and it is started again on the same database
    let second = world.serve("second").await;

    // Then the new process reads first, sees Alice already suspended and does not call again
    let proposal = second.wait_for_status(&token, &id, "executed").await;
    // …and records that countersign's own call did it: Alice was active before it acted
    assert_eq!(
        proposal["execution"]["outcome"], "suspended",
        "{proposal:#}"
    );
    assert_eq!(world.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert_eq!(
        world.op.mutation_count("suspend"),
        1,
        "{:#?}",
        world.op.requests()
    );
    // …and the ledger records the outcome once and still verifies
    assert_eq!(world.events_of_kind("execution.succeeded").await, 1);
    world.assert_ledger_verifies().await;
}

// ---------------------------------------------------------------------------------------------

// Helpers particular to crashes

impl World {
    /// GETs of Alice's user received by the fake 1Password (the executor's read-first and
    /// read-back calls).
    fn reads_of_alice(&self) -> usize {
        self.op
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(ALICE))
            .count()
    }

    async fn events_of_kind(&self, kind: &str) -> usize {
        let ledger = Ledger::connect(&self.database_url)
            .await
            .expect("open the ledger");
        let events = ledger.events(0, 100_000).await.expect("read the ledger");
        events.iter().filter(|e| e.kind == kind).count()
    }
}

#[tokio::test]
async fn killed_in_a_burst_of_proposals_keeps_every_acknowledged_one_and_nothing_half_written() {
    // Given sixty users, and a server taking a burst of proposals about them
    let world = World::start().await;
    for n in 0..60 {
        world.op.add_user(
            &format!("BURST{n:021}"),
            &format!("burst{n}@example.com"),
            "Burst",
            "ACTIVE",
        );
    }
    let mut server = world.serve("burst").await;
    let token = world.create_token().await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..60 {
        let (http, address, token) = (world.http.clone(), server.address.clone(), token.clone());
        let acknowledged = acknowledged.clone();
        requests.spawn(async move {
            let body = serde_json::json!({
                "action": "suspend",
                "user": {"email": format!("burst{n}@example.com")},
                "reason": "Credential stuffing wave, account reused a leaked password",
                "source": {"platform": "crowdstrike"}
            });
            let sent = http
                .post(format!("{address}/v1/proposals"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            if let Ok(response) = sent {
                if response.status() == 201 {
                    if let Ok(proposal) = response.json::<serde_json::Value>().await {
                        let id = proposal["id"].as_str().unwrap_or_default().to_owned();
                        acknowledged.lock().unwrap().push(id);
                    }
                }
            }
        });
    }

    // When the process is killed in the middle of it
    eventually("some proposals acknowledged", || {
        acknowledged.lock().unwrap().len() >= 15
    })
    .await;
    server.kill();
    while requests.join_next().await.is_some() {}
    // …and started again on the same database
    let _again = world.serve("again").await;

    // Then every acknowledged proposal is in the ledger with its event
    let ledger = Ledger::connect(&world.database_url).await.unwrap();
    let events = ledger.events(0, 100_000).await.unwrap();
    let created: std::collections::HashSet<String> = events
        .iter()
        .filter(|e| e.kind == "proposal.created")
        .filter_map(|e| e.proposal_id.clone())
        .collect();
    let acknowledged = acknowledged.lock().unwrap().clone();
    for id in &acknowledged {
        assert!(
            created.contains(id),
            "acknowledged {id} is not in the ledger"
        );
        let parsed = countersign::domain::ProposalId::parse(id).unwrap();
        assert!(ledger.proposal(parsed).await.unwrap().is_some());
    }
    // …nothing is half-written: each proposal row has its created event and each event its row
    let rows = ledger
        .proposals(&countersign::ledger::ProposalQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), created.len());
    assert!(rows.iter().all(|p| created.contains(&p.id.to_string())));
    // …and the chain still verifies
    world.assert_ledger_verifies().await;
}
