//! Who a Slack user is and whether the policy lets them decide, read from Slack at click time
//! and cached briefly (group membership at most 60 s, as DESIGN §4 allows).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{SlackError, SlackPerson, SlackWeb};
use crate::domain::{Decider, Members, Policy, SlackUserId};

struct Cache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key, (Instant::now(), value));
    }
}

pub struct Directory {
    slack: Arc<SlackWeb>,
    /// countersign's workspace as configured (`SLACK_TEAM_ID`); without it, the bot's own
    /// (`auth.test`). Members of any other workspace are not colleagues either way.
    home_team: Option<String>,
    people: Cache<SlackUserId, SlackPerson>,
    groups: Cache<String, Vec<SlackUserId>>,
}

impl Directory {
    pub fn with_cache_ttl(slack: Arc<SlackWeb>, ttl: Duration, home_team: Option<String>) -> Self {
        Self {
            slack,
            home_team,
            people: Cache::new(ttl),
            groups: Cache::new(ttl),
        }
    }

    pub async fn person(&self, user: &SlackUserId) -> Result<SlackPerson, SlackError> {
        if let Some(person) = self.people.get(user) {
            return Ok(person);
        }
        let person = self.slack.person(user).await?;
        self.people.put(user.clone(), person.clone());
        Ok(person)
    }

    /// Whether `user` is one of `members`, directly or through a user group.
    pub async fn is_member(
        &self,
        members: &Members,
        user: &SlackUserId,
    ) -> Result<bool, SlackError> {
        if members.users.contains(user) {
            return Ok(true);
        }
        for group in &members.groups {
            let in_group = match self.groups.get(group) {
                Some(ids) => ids.contains(user),
                None => {
                    let ids = self.slack.usergroup_members(group).await?;
                    let found = ids.contains(user);
                    self.groups.put(group.clone(), ids);
                    found
                }
            };
            if in_group {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The user as a decider: name, email and standing from Slack's directory, and the
    /// policy's answer.
    pub async fn decider(
        &self,
        policy: &Policy,
        user: &SlackUserId,
    ) -> Result<Decider, SlackError> {
        let person = self.person(user).await?;
        let is_approver = self.is_member(&policy.approvers, user).await?;
        let home_team = match &self.home_team {
            Some(team) => team.as_str(),
            None => self.slack.own_team_id().await?,
        };
        let standing = person.standing(home_team);
        Ok(Decider {
            slack_user_id: user.clone(),
            name: person.name,
            email: person.email,
            is_approver,
            standing,
        })
    }
}
