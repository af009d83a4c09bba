//! What one automation token may see of a proposal. Several tokens may ask for the same
//! action about one user; each sees the decision (status, approvals, execution) but not what
//! another token sent: its token id, its source and its callback URL (a secret: others see only
//! its host). A token that reads every proposal (`read`) sees sources and token ids, never
//! another token's callback URL.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::callback::CallbackUrl;
use super::lifecycle::{Action, Status};
use super::proposal::{
    Approval, Denial, Evidence, Execution, Proposal, Requester, SlackRef, Source, Target,
};
use super::{ProposalId, Reason};

/// Who is looking: a token (by its public id), and whether it reads every proposal.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub token_id: &'a str,
    pub reads_all: bool,
}

impl Viewer<'_> {
    fn is(&self, requester: &Requester) -> bool {
        matches!(requester, Requester::Integration { token_id, .. } if token_id == self.token_id)
    }

    /// What another requester sent is shown to readers and to its own token.
    fn sees_what(&self, requester: &Requester) -> bool {
        self.reads_all || self.is(requester)
    }
}

/// A proposal as one token sees it: what the API answers and callbacks carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Proposal)]
pub struct ProposalView {
    pub id: ProposalId,
    pub action: Action,
    pub status: Status,
    pub target: Target,
    pub reason: Reason,
    pub requester: RequesterView,
    /// Everyone else who asked for it while it was pending.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_requested_by: Vec<RequesterView>,
    /// The first requester's source; shown to that token and to readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub evidence: Vec<EvidenceView>,
    /// Reports beyond the evidence kept, counted but not stored.
    #[serde(skip_serializing_if = "is_zero")]
    pub evidence_not_kept: u32,
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub denial: Option<Denial>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The first requester's callback URL, to that token only.
    pub callback_url: Option<String>,
    /// Its host, to everyone else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_host: Option<String>,
    pub execution: Execution,
    pub slack: Option<SlackRef>,
    pub auto_approved_by: Option<String>,
    pub superseded_by: Option<ProposalId>,
}

/// A requester as one token sees it: another token's id is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(as = Requester)]
pub enum RequesterView {
    Integration {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_id: Option<String>,
        /// This requester's callback URL, to its own token only.
        #[serde(skip_serializing_if = "Option::is_none")]
        callback_url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        callback_host: Option<String>,
        /// It took its request back while others still asked.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        withdrawn: bool,
    },
    SlackUser {
        slack_user_id: String,
        name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        withdrawn: bool,
    },
}

/// A further report: its source only to the token that sent it and to readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Evidence)]
pub struct EvidenceView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The URL to its own token, the host to everyone else.
fn callback(
    viewer: Viewer,
    owner: &Requester,
    url: Option<&CallbackUrl>,
) -> (Option<String>, Option<String>) {
    match url {
        Some(url) if viewer.is(owner) => (Some(url.expose().to_owned()), None),
        Some(url) => (None, Some(url.host().to_owned())),
        None => (None, None),
    }
}

fn requester(
    viewer: Viewer,
    proposal: &Proposal,
    who: &Requester,
    url: Option<&CallbackUrl>,
) -> RequesterView {
    let withdrawn = proposal.withdrawn.contains(&who.actor());
    match who {
        Requester::Integration { name, token_id } => {
            let (callback_url, callback_host) = callback(viewer, who, url);
            RequesterView::Integration {
                name: name.clone(),
                token_id: viewer.sees_what(who).then(|| token_id.clone()),
                callback_url,
                callback_host,
                withdrawn,
            }
        }
        Requester::SlackUser {
            slack_user_id,
            name,
        } => RequesterView::SlackUser {
            slack_user_id: slack_user_id.to_string(),
            name: name.clone(),
            withdrawn,
        },
    }
}

fn evidence(viewer: Viewer, proposal: &Proposal, item: &Evidence) -> EvidenceView {
    // Evidence from before reporters were kept is taken to be the first requester's.
    let by = item.by.as_ref().unwrap_or(&proposal.requester);
    EvidenceView {
        source: viewer.sees_what(by).then(|| item.source.clone()),
        reason: item.reason.clone(),
        at: item.at,
    }
}

impl Proposal {
    /// This proposal as `viewer` may see it.
    pub fn seen_by(&self, viewer: Viewer) -> ProposalView {
        let (callback_url, callback_host) =
            callback(viewer, &self.requester, self.callback_url.as_ref());
        // The first requester's own callback is shown at the top level, not again inside.
        let first = requester(viewer, self, &self.requester, None);
        ProposalView {
            id: self.id,
            action: self.action,
            status: self.status,
            target: self.target.clone(),
            reason: self.reason.clone(),
            requester: first,
            also_requested_by: self
                .also_requested_by
                .iter()
                .map(|f| requester(viewer, self, &f.requester, f.callback_url.as_ref()))
                .collect(),
            source: viewer
                .sees_what(&self.requester)
                .then(|| self.source.clone()),
            evidence: self
                .evidence
                .iter()
                .map(|item| evidence(viewer, self, item))
                .collect(),
            evidence_not_kept: self.evidence_not_kept,
            approvals_required: self.approvals_required,
            approvals: self.approvals.clone(),
            denial: self.denial.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            callback_url,
            callback_host,
            execution: self.execution.clone(),
            slack: self.slack.clone(),
            auto_approved_by: self.auto_approved_by.clone(),
            superseded_by: self.superseded_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{at, proposal};
    use crate::domain::FurtherRequest;

    fn token(name: &str) -> Requester {
        Requester::Integration {
            name: name.into(),
            token_id: format!("id-{name}"),
        }
    }

    /// A's proposal with A's callback, and B's report folded in with B's callback.
    fn asked_by_a_and_b() -> Proposal {
        let mut p = proposal(Action::Suspend, 1);
        p.requester = token("a");
        p.source.alert_id = Some("A-1".into());
        p.callback_url = Some(CallbackUrl::parse("https://a.example.com/hook/secret-a").unwrap());
        p.also_requested_by.push(FurtherRequest {
            requester: token("b"),
            callback_url: Some(CallbackUrl::parse("https://b.example.com/hook/secret-b").unwrap()),
        });
        p.evidence.push(Evidence {
            source: Source {
                platform: "torq".into(),
                alert_id: Some("B-1".into()),
                ..Source::default()
            },
            reason: Reason::parse("credential stuffing from a new ASN").unwrap(),
            at: at(1),
            by: Some(token("b")),
        });
        p
    }

    fn as_token(p: &Proposal, id: &str) -> String {
        let viewer = Viewer {
            token_id: id,
            reads_all: false,
        };
        serde_json::to_string(&p.seen_by(viewer)).unwrap()
    }

    #[test]
    fn another_requester_sees_neither_the_first_ones_token_source_nor_callback() {
        let seen = as_token(&asked_by_a_and_b(), "id-b");
        assert!(!seen.contains("id-a"), "{seen}");
        assert!(!seen.contains("A-1"), "{seen}");
        assert!(!seen.contains("secret-a"), "{seen}");
        assert!(seen.contains("a.example.com"), "{seen}");
        assert!(seen.contains("secret-b"), "its own callback: {seen}");
        assert!(seen.contains("B-1"), "its own source: {seen}");
    }

    #[test]
    fn the_first_requester_sees_its_own_and_only_the_host_of_anothers_callback() {
        let seen = as_token(&asked_by_a_and_b(), "id-a");
        assert!(seen.contains("secret-a"), "{seen}");
        assert!(!seen.contains("secret-b"), "{seen}");
        assert!(!seen.contains("B-1"), "{seen}");
    }

    #[test]
    fn a_reader_sees_sources_but_no_callback_url() {
        let viewer = Viewer {
            token_id: "id-auditor",
            reads_all: true,
        };
        let seen = serde_json::to_string(&asked_by_a_and_b().seen_by(viewer)).unwrap();
        assert!(seen.contains("A-1") && seen.contains("B-1"), "{seen}");
        assert!(
            !seen.contains("secret-a") && !seen.contains("secret-b"),
            "{seen}"
        );
    }
}
