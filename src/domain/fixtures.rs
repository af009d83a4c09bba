//! Sample domain values for unit tests across the crate.

use chrono::{DateTime, Duration, Utc};

use super::{
    Action, Decider, Email, Execution, OnePasswordUserId, Proposal, ProposalId, Reason, Requester,
    SlackUserId, Source, Standing, Status, Target, UserState,
};

/// A colleague the policy lists as an approver.
pub fn approver(id: &str, email: &str) -> Decider {
    Decider {
        slack_user_id: SlackUserId::parse(id).unwrap(),
        name: id.into(),
        email: Some(Email::parse(email).unwrap()),
        is_approver: true,
        standing: Standing::Colleague,
    }
}

/// 2026-11-25 12:00 UTC plus `minutes`: a fixed clock so expiry is deterministic.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

/// A pending proposal about Alice, requested in Slack by Rita (U0REQ), created at `at(0)` and
/// expiring at `at(30)`.
pub fn proposal(action: Action, required: u32) -> Proposal {
    Proposal {
        id: ProposalId::new(),
        action,
        status: Status::Pending,
        target: Target {
            id: OnePasswordUserId::parse("IR7VJHJ36JHINBEFLLQ4FJOAHE").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            display_name: "Alice".into(),
            state: UserState::Active,
        },
        reason: Reason::parse("impossible travel then vault export").unwrap(),
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
        approvals_required: required,
        approvals: vec![],
        denial: None,
        created_at: at(0),
        expires_at: at(30),
        callback_url: None,
        execution: Execution::default(),
        slack: None,
        auto_approved_by: None,
        superseded_by: None,
        incident: None,
    }
}
