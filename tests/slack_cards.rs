//! One card per proposal, never two: through rate limits and lost answers.

mod support;

use std::time::Duration;

use support::app::*;

#[tokio::test]
async fn a_rate_limited_card_post_leads_to_exactly_one_card() {
    let app = spawn_app().await;
    app.slack.rate_limit_next("chat.postMessage", 2, 1);

    let id = app.propose_id(&suspend_alice()).await;

    app.card_ts(&id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.slack.top_level_messages().len(), 1);
    assert_eq!(
        app.slack.calls_to("chat.postMessage").len(),
        3,
        "two refused, one posted"
    );
}

#[tokio::test]
async fn a_card_whose_post_answer_was_lost_is_found_again_not_posted_twice() {
    let app = spawn_app().await;
    app.slack.lose_answer_next("chat.postMessage", 1);

    let id = app.propose_id(&suspend_alice()).await;

    let ts = app.card_ts(&id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.slack.top_level_messages().len(), 1, "exactly one card");
    assert_eq!(
        app.slack.top_level_messages()[0].ts,
        ts,
        "the lost card is the one recorded"
    );
    assert_eq!(app.slack.calls_to("conversations.history").len(), 1);
}
