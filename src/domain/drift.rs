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

/// The users whose state differs from what countersign knew.
///
/// `in_hand` maps users countersign is acting on (a proposal approved, executing, or failed
/// after a call that may have gone through) to the state that action leads to: a user found
/// in that state is left for a later sweep, since the change may be countersign's own and not
/// yet recorded; a user found in any other state changed outside countersign all the same.
/// `recorded_since` are users whose record countersign wrote after the listing was taken: the
/// listing is older than the record, so it says nothing. Users countersign never knew are
/// not drift, and neither is a state 1Password does not name.
pub fn changes(
    known: &HashMap<String, UserState>,
    seen: &[Seen],
    in_hand: &HashMap<String, UserState>,
    recorded_since: &HashSet<String>,
) -> Vec<Drift> {
    seen.iter()
        .filter(|user| user.state != UserState::StateUnspecified)
        .filter(|user| in_hand.get(&user.user_id) != Some(&user.state))
        .filter(|user| !recorded_since.contains(&user.user_id))
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

    fn known(state: UserState) -> HashMap<String, UserState> {
        HashMap::from([("A".to_owned(), state)])
    }

    fn none() -> HashMap<String, UserState> {
        HashMap::new()
    }

    fn listed(state: UserState) -> Vec<Seen> {
        vec![seen("A", state)]
    }

    #[test]
    fn a_state_that_changed_is_drift() {
        let found = changes(
            &known(UserState::Suspended),
            &listed(UserState::Active),
            &none(),
            &HashSet::new(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].direction(), "reactivated");
    }

    #[test]
    fn a_state_that_did_not_change_is_not() {
        let found = changes(
            &known(UserState::Active),
            &listed(UserState::Active),
            &none(),
            &HashSet::new(),
        );
        assert!(found.is_empty());
    }

    #[test]
    fn a_user_countersign_is_acting_on_found_where_the_action_leads_is_left_for_later() {
        let in_hand = HashMap::from([("A".to_owned(), UserState::Suspended)]);
        let found = changes(
            &known(UserState::Active),
            &listed(UserState::Suspended),
            &in_hand,
            &HashSet::new(),
        );
        assert!(found.is_empty());
    }

    #[test]
    fn a_user_in_hand_found_in_another_state_than_the_action_leads_to_drifted() {
        // countersign suspended A; a new suspend is pending; someone reactivated A meanwhile.
        let in_hand = HashMap::from([("A".to_owned(), UserState::Suspended)]);
        let found = changes(
            &known(UserState::Suspended),
            &listed(UserState::Active),
            &in_hand,
            &HashSet::new(),
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_listing_older_than_countersigns_record_says_nothing() {
        let recorded = HashSet::from(["A".to_owned()]);
        let found = changes(
            &known(UserState::Suspended),
            &listed(UserState::Active),
            &none(),
            &recorded,
        );
        assert!(found.is_empty());
    }

    #[test]
    fn a_user_never_known_is_not_drift() {
        let found = changes(
            &HashMap::new(),
            &[seen("B", UserState::Suspended)],
            &none(),
            &HashSet::new(),
        );
        assert!(found.is_empty());
    }

    #[test]
    fn an_unspecified_state_is_not_drift() {
        let found = changes(
            &known(UserState::Active),
            &listed(UserState::StateUnspecified),
            &none(),
            &HashSet::new(),
        );
        assert!(found.is_empty());
    }
}
