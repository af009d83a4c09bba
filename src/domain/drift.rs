//! Drift: a 1Password user's state changed and no countersign proposal explains it. Pure:
//! given what countersign last knew and what a listing shows, which users drifted.

use std::collections::{HashMap, HashSet};

use super::UserState;

/// One user as the listing shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub user_id: String,
    pub email: Option<String>,
    pub state: UserState,
}

/// A change no countersign proposal explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub user_id: String,
    pub email: Option<String>,
    pub from: UserState,
    pub to: UserState,
}

impl Drift {
    /// "reactivated", "suspended" or "other", for metrics and exports.
    pub fn direction(&self) -> &'static str {
        direction(self.to)
    }
}

pub fn direction(to: UserState) -> &'static str {
    match to {
        UserState::Active => "reactivated",
        UserState::Suspended => "suspended",
        UserState::StateUnspecified => "other",
    }
}

/// The users whose state differs from what countersign knew. A user countersign is acting on
/// right now (`in_hand`: a proposal approved or executing) is left for a later sweep: the
/// change may be countersign's own, not yet recorded. Users countersign never knew are not
/// drift, and neither is a state 1Password does not name.
pub fn changes(
    known: &HashMap<String, UserState>,
    seen: &[Seen],
    in_hand: &HashSet<String>,
) -> Vec<Drift> {
    seen.iter()
        .filter(|user| user.state != UserState::StateUnspecified)
        .filter(|user| !in_hand.contains(&user.user_id))
        .filter_map(|user| {
            let from = *known.get(&user.user_id)?;
            (from != user.state).then(|| Drift {
                user_id: user.user_id.clone(),
                email: user.email.clone(),
                from,
                to: user.state,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, state: UserState) -> Seen {
        Seen {
            user_id: id.into(),
            email: Some(format!("{id}@example.com")),
            state,
        }
    }

    #[test]
    fn a_state_that_changed_is_drift() {
        let known = HashMap::from([("A".to_owned(), UserState::Suspended)]);
        let drift = changes(&known, &[seen("A", UserState::Active)], &HashSet::new());
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].direction(), "reactivated");
    }

    #[test]
    fn a_state_that_did_not_change_is_not() {
        let known = HashMap::from([("A".to_owned(), UserState::Active)]);
        assert!(changes(&known, &[seen("A", UserState::Active)], &HashSet::new()).is_empty());
    }

    #[test]
    fn a_user_countersign_is_acting_on_is_left_for_later() {
        let known = HashMap::from([("A".to_owned(), UserState::Active)]);
        let in_hand = HashSet::from(["A".to_owned()]);
        assert!(changes(&known, &[seen("A", UserState::Suspended)], &in_hand).is_empty());
    }

    #[test]
    fn a_user_never_known_is_not_drift() {
        assert!(changes(
            &HashMap::new(),
            &[seen("B", UserState::Suspended)],
            &HashSet::new()
        )
        .is_empty());
    }

    #[test]
    fn an_unspecified_state_is_not_drift() {
        let known = HashMap::from([("A".to_owned(), UserState::Active)]);
        let drift = changes(
            &known,
            &[seen("A", UserState::StateUnspecified)],
            &HashSet::new(),
        );
        assert!(drift.is_empty());
    }
}
