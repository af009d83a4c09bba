//! Incidents: many suspend proposals waiting for cards at once share incident cards, since
//! Slack posts one message a second per channel. Which proposals may be grouped, and which
//! of the waiting ones form a group, are decided here; where they sit is kept on each one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Action, Policy, Proposal, ProposalId, Status};

/// The rows one incident card holds. A row is one Block Kit block; with the header, the
/// summary, the Approve all button and the closing line a card stays under Slack's 50.
pub const ROWS_PER_CARD: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(Uuid);

impl IncidentId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl Default for IncidentId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a proposal sits in an incident: on which of its cards, and its place in arrival
/// order (1 for the first member), which "Approve all" uses to name what was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub incident: IncidentId,
    pub card: u32,
    pub seq: u32,
}

/// Whether a proposal may share an incident card. Restores and protected users never do:
/// each of those is decided with its own card in front of the approver.
pub fn groupable(proposal: &Proposal, policy: &Policy) -> bool {
    proposal.action == Action::Suspend
        && proposal.status == Status::Pending
        && !policy.is_protected(&proposal.target.email)
        && proposal.incident.is_none()
        && proposal.slack.is_none()
}

/// A proposal waiting for its card, as grouping sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub id: ProposalId,
    pub alert_id: Option<String>,
}

/// What the incident a group forms is keyed by: the alert its members share, or their
/// arrival together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Alert(String),
    Arrival,
}

impl Key {
    /// The key a proposal joins by: its alert's incident, else an arrival incident.
    pub fn alert_id(&self) -> Option<&str> {
        match self {
            Key::Alert(id) => Some(id),
            Key::Arrival => None,
        }
    }
}

/// Of the proposals waiting for cards (`me` among them), the group `me` belongs to: those
/// sharing `me`'s alert id when another shares it, otherwise those whose alert id no other
/// waiting proposal shares (grouped by arrival). `None` below `threshold`: one card each.
pub fn group_of(
    me: &Waiting,
    waiting: &[Waiting],
    threshold: usize,
) -> Option<(Key, Vec<ProposalId>)> {
    let sharing = |alert: &str| {
        waiting
            .iter()
            .filter(|w| w.alert_id.as_deref() == Some(alert))
            .count()
    };
    let key = match me.alert_id.as_deref() {
        Some(alert) if sharing(alert) >= 2 => Key::Alert(alert.to_owned()),
        _ => Key::Arrival,
    };
    let mut members: Vec<ProposalId> = waiting
        .iter()
        .filter(|w| match &key {
            Key::Alert(alert) => w.alert_id.as_deref() == Some(alert),
            Key::Arrival => w.alert_id.as_deref().is_none_or(|a| sharing(a) < 2),
        })
        .map(|w| w.id)
        .collect();
    if !members.contains(&me.id) {
        members.insert(0, me.id);
    }
    (threshold > 0 && members.len() >= threshold).then_some((key, members))
}

/// The key a lone proposal would join an open incident by.
pub fn key_of(proposal: &Proposal) -> Option<&str> {
    proposal.source.alert_id.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(n: usize, alert: Option<&str>) -> Vec<Waiting> {
        (0..n)
            .map(|_| Waiting {
                id: ProposalId::new(),
                alert_id: alert.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn fewer_waiting_than_the_threshold_get_a_card_each() {
        let all = waiting(3, None);
        assert_eq!(group_of(&all[0], &all, 4), None);
    }

    #[test]
    fn proposals_sharing_an_alert_id_form_that_alerts_incident() {
        let mut all = waiting(4, Some("ALERT-1"));
        all.extend(waiting(5, None));
        let (key, members) = group_of(&all[0], &all, 4).unwrap();
        assert_eq!(key, Key::Alert("ALERT-1".into()));
        assert_eq!(members, all[..4].iter().map(|w| w.id).collect::<Vec<_>>());
    }

    #[test]
    fn proposals_with_alerts_of_their_own_are_grouped_by_arrival() {
        let mut all: Vec<Waiting> = (0..3)
            .flat_map(|n| waiting(1, Some(&format!("ALERT-{n}"))))
            .collect();
        all.extend(waiting(2, None));
        all.extend(waiting(2, Some("SHARED")));
        let (key, members) = group_of(&all[0], &all, 4).unwrap();
        assert_eq!(key, Key::Arrival);
        assert_eq!(
            members.len(),
            5,
            "the two sharing SHARED form their own group"
        );
    }

    #[test]
    fn a_threshold_of_zero_never_groups() {
        let all = waiting(100, None);
        assert_eq!(group_of(&all[0], &all, 0), None);
    }
}
