//! The policy file, specified: what parses, what is refused (with its line), and what each
//! rule decides.

use super::*;

const EXAMPLE: &str = r#"
protected = ["Owner@example.com"]
[approvers]
users  = ["U0AAA", "U0BBB"]
groups = ["S0SECOPS"]
[suspend]
approvals = 1
ttl = "30m"
requester_counts = true
[restore]
approvals = 2
ttl = "24h"
"#;

#[test]
fn the_design_example_parses() {
    let policy = Policy::parse(EXAMPLE).unwrap();
    assert_eq!(policy.approvers.users.len(), 2);
    assert_eq!(policy.approvers.groups, vec!["S0SECOPS".to_string()]);
    assert_eq!(policy.suspend_ttl, Duration::minutes(30));
    assert_eq!(policy.restore_ttl, Duration::hours(24));
}

#[test]
fn a_restore_below_two_approvals_is_refused_with_its_line() {
    let err = Policy::parse("[restore]\napprovals = 1\n").unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("at least 2"), "{err}");
}

#[test]
fn a_protected_user_needs_two_approvals_even_to_suspend() {
    let policy = Policy::parse(EXAMPLE).unwrap();
    let owner = Email::parse("owner@example.com").unwrap();
    let alice = Email::parse("alice@example.com").unwrap();
    assert_eq!(policy.approvals_required(Action::Suspend, &owner), 2);
    assert_eq!(policy.approvals_required(Action::Suspend, &alice), 1);
    assert_eq!(policy.approvals_required(Action::Restore, &alice), 2);
}

#[test]
fn an_unknown_key_names_its_line() {
    let err = Policy::parse("[suspend]\napprovals = 1\napprovers = 3\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn a_bad_slack_id_names_its_line() {
    let err = Policy::parse("[approvers]\nusers = [\"bob\"]\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn durations_take_one_unit() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
    assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
    assert!(parse_duration("30").is_err());
    assert!(parse_duration("0m").is_err());
    assert!(parse_duration("m").is_err());
}

#[test]
fn a_requesters_own_command_counts_only_for_an_unprotected_suspend() {
    let policy = Policy::parse(EXAMPLE).unwrap();
    let alice = Email::parse("alice@example.com").unwrap();
    let owner = Email::parse("owner@example.com").unwrap();
    assert!(policy.requester_counts(Action::Suspend, &alice, true));
    assert!(!policy.requester_counts(Action::Suspend, &alice, false));
    assert!(!policy.requester_counts(Action::Suspend, &owner, true));
    assert!(!policy.requester_counts(Action::Restore, &alice, true));
    let off = Policy::parse("[suspend]\nrequester_counts = false\n").unwrap();
    assert!(!off.requester_counts(Action::Suspend, &alice, true));
}

const RULES: &str = r#"
protected = ["owner@example.com"]
[[auto_approve]]
name = "crowdstrike-high"
integration = "crowdstrike"
min_confidence = "high"
max_per_hour = 5
"#;

#[test]
fn an_auto_approve_rule_matches_the_tokens_name_and_confidence() {
    let policy = Policy::parse(RULES).unwrap();
    let alice = Email::parse("alice@example.com").unwrap();
    let rule = policy.auto_approve_rule(
        Action::Suspend,
        &alice,
        "crowdstrike",
        Some(Confidence::High),
    );
    assert_eq!(rule.map(|r| r.name.as_str()), Some("crowdstrike-high"));
    assert!(policy
        .auto_approve_rule(Action::Suspend, &alice, "tines", Some(Confidence::High))
        .is_none());
    assert!(policy
        .auto_approve_rule(
            Action::Suspend,
            &alice,
            "crowdstrike",
            Some(Confidence::Medium)
        )
        .is_none());
    assert!(policy
        .auto_approve_rule(Action::Suspend, &alice, "crowdstrike", None)
        .is_none());
}

#[test]
fn a_rule_without_min_confidence_matches_every_report_of_its_integration_and_is_warned_of() {
    let rule = "[[auto_approve]]\nname = \"gateway\"\nintegration = \"sumo-cloud-soar\"\nmax_per_hour = 3\n";
    let policy = Policy::parse(rule).unwrap();
    let alice = Email::parse("alice@example.com").unwrap();
    for confidence in [None, Some(Confidence::Low)] {
        let found =
            policy.auto_approve_rule(Action::Suspend, &alice, "sumo-cloud-soar", confidence);
        assert_eq!(found.map(|r| r.name.as_str()), Some("gateway"));
    }
    assert!(policy
        .auto_approve_rule(Action::Suspend, &alice, "tines", None)
        .is_none());
    let warnings = policy.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("has no min_confidence")),
        "{warnings:?}"
    );
}

#[test]
fn escalate_after_and_escalate_to_come_together() {
    let alone = Policy::parse("[suspend]\nescalate_after = \"5m\"\n").unwrap_err();
    let both = Policy::parse("[restore]\nescalate_after = \"10m\"\nescalate_to = [\"C0ONCALL\"]\n")
        .unwrap();
    assert!(alone.message.contains("escalate_to"), "{}", alone.message);
    assert!(both.escalation(Action::Suspend).is_none());
    assert_eq!(
        both.escalation(Action::Restore).unwrap().channels,
        ["C0ONCALL"]
    );
}

#[test]
fn auto_approve_never_applies_to_restores_or_protected_users() {
    let policy = Policy::parse(RULES).unwrap();
    let alice = Email::parse("alice@example.com").unwrap();
    let owner = Email::parse("owner@example.com").unwrap();
    assert!(policy
        .auto_approve_rule(
            Action::Restore,
            &alice,
            "crowdstrike",
            Some(Confidence::High)
        )
        .is_none());
    assert!(policy
        .auto_approve_rule(
            Action::Suspend,
            &owner,
            "crowdstrike",
            Some(Confidence::High)
        )
        .is_none());
}

#[test]
fn an_invalid_auto_approve_rule_names_its_line() {
    let err = Policy::parse("[[auto_approve]]\nname = \"x\"\nintegration = \"c\"\nmin_confidence = \"high\"\nmax_per_hour = 0\n").unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    let err = Policy::parse("[[auto_approve]]\nname = \"x\"\nintegration = \"c\"\nmin_confidence = \"certain\"\nmax_per_hour = 1\n").unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
}

#[test]
fn requesters_default_to_the_approvers() {
    let policy = Policy::parse(EXAMPLE).unwrap();
    assert_eq!(policy.requesters(), &policy.approvers);
}
