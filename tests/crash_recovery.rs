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
