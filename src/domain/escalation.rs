//! Escalation (policy `escalate_after`, `escalate_to`): a proposal still pending that long
//! after its card is brought to more people — posted once in each escalation channel
//! (mentioning the user groups) and sent to each named user.

use chrono::{DateTime, Duration, Utc};

use super::SlackUserId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub after: Duration,
    /// Channel ids (`C…`, `G…`) to post in.
    pub channels: Vec<String>,
    /// User-group ids (`S…`) to mention in each post.
    pub groups: Vec<String>,
    /// People to send it to directly.
    pub users: Vec<SlackUserId>,
}

impl Escalation {
    /// From the policy's `escalate_after` and `escalate_to` (ids: `C…`/`G…` channels, `S…`
    /// user groups, `U…`/`W…` users).
    pub fn parse(after: &str, to: &[String]) -> Result<Self, String> {
        let after = super::parse_duration(after)?;
        let mut escalation = Escalation {
            after,
            channels: vec![],
            groups: vec![],
            users: vec![],
        };
        for raw in to {
            let id = raw.trim();
            let well_formed = id.len() >= 2 && id.chars().all(|c| c.is_ascii_alphanumeric());
            match id.chars().next() {
                Some('C' | 'G') if well_formed => escalation.channels.push(id.to_owned()),
                Some('S') if well_formed => escalation.groups.push(id.to_owned()),
                Some('U' | 'W') => escalation.users.push(SlackUserId::parse(id)?),
                _ => {
                    return Err(format!(
                        "escalate_to takes channel ids (C…), user-group ids (S…) and user ids (U…), not {raw:?}"
                    ))
                }
            }
        }
        if to.is_empty() {
            return Err("escalate_to must name at least one channel, user group or user".into());
        }
        Ok(escalation)
    }

    /// Where posts go: the escalation channels, or (groups only) the approvals channel, where
    /// the groups are mentioned.
    pub fn post_in<'a>(&'a self, approvals_channel: &'a str) -> Vec<&'a str> {
        if self.channels.is_empty() && !self.groups.is_empty() {
            vec![approvals_channel]
        } else {
            self.channels.iter().map(String::as_str).collect()
        }
    }
}

/// When a card was posted, from its Slack `ts` (seconds since the epoch, with micros).
pub fn card_posted_at(ts: &str) -> Option<DateTime<Utc>> {
    let seconds: f64 = ts.parse().ok()?;
    DateTime::from_timestamp_millis((seconds * 1000.0) as i64)
}

/// Whether a pending proposal whose card was posted at `posted` is due its escalation now.
pub fn due(posted: DateTime<Utc>, escalation: &Escalation, now: DateTime<Utc>) -> bool {
    now >= posted + escalation.after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalate_to_sorts_ids_into_channels_groups_and_users() {
        let to = ["C0ONCALL", "S0SECOPS", "U0BOB"].map(String::from);
        let escalation = Escalation::parse("5m", &to).unwrap();
        assert_eq!(escalation.after, Duration::minutes(5));
        assert_eq!(escalation.channels, ["C0ONCALL"]);
        assert_eq!(escalation.groups, ["S0SECOPS"]);
        assert_eq!(escalation.users[0].as_str(), "U0BOB");
    }

    #[test]
    fn a_name_instead_of_an_id_is_refused() {
        let error = Escalation::parse("5m", &["#oncall".to_owned()]).unwrap_err();
        assert!(error.contains("channel ids"), "{error}");
    }

    #[test]
    fn groups_alone_are_mentioned_in_the_approvals_channel() {
        let escalation = Escalation::parse("5m", &["S0SECOPS".to_owned()]).unwrap();
        assert_eq!(escalation.post_in("C0APPROVALS"), ["C0APPROVALS"]);
    }

    #[test]
    fn a_card_ts_reads_as_its_posting_time() {
        let at = card_posted_at("1700000000.000100").unwrap();
        assert_eq!(at.timestamp(), 1_700_000_000);
        assert!(card_posted_at("not a ts").is_none());
    }
}
