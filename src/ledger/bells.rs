//! A bell per outbox lane, rung when a transaction that filed jobs for the lane commits (on
//! PostgreSQL, any replica's: its `LISTEN` rings them). A lane's worker looks for work when
//! its own bell rings, not after every commit: during an incident most commits file nothing
//! for most lanes, and each needless look was a read handed to a reader thread.

use tokio::sync::Notify;

use super::Lane;

#[derive(Default)]
pub(super) struct Bells {
    onepassword: Notify,
    slack: Notify,
    callback: Notify,
}

impl Bells {
    /// The bell of `lane`: register with `notified()` before looking for work, so a commit
    /// in between is not missed.
    pub fn of(&self, lane: Lane) -> &Notify {
        match lane {
            Lane::OnePassword => &self.onepassword,
            Lane::Slack => &self.slack,
            Lane::Callback => &self.callback,
        }
    }

    pub(super) fn ring(&self, lane: Lane) {
        self.of(lane).notify_waiters();
    }

    pub(super) fn ring_all(&self) {
        for lane in Lane::ALL {
            self.ring(lane);
        }
    }
}

/// The lanes a set of filed jobs wakes, each once, as PostgreSQL's `NOTIFY` payload spells
/// them: `slack,onepassword`.
pub(super) fn spell(lanes: &[Lane]) -> String {
    let spelled: Vec<&str> = Lane::ALL
        .into_iter()
        .filter(|lane| lanes.contains(lane))
        .map(Lane::as_str)
        .collect();
    spelled.join(",")
}

/// The lanes a `NOTIFY` payload names; every lane for a payload this release does not read
/// (an empty one, from an older replica), since ringing too many is only a wasted look.
pub(super) fn read(payload: &str) -> Vec<Lane> {
    let named: Option<Vec<Lane>> = payload.split(',').map(Lane::parse).collect();
    match named {
        Some(lanes) if !lanes.is_empty() => lanes,
        _ => Lane::ALL.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_each_lane_once_and_reads_back() {
        let spelled = spell(&[Lane::Slack, Lane::OnePassword, Lane::Slack]);

        assert_eq!(spelled, "onepassword,slack");
        assert_eq!(read(&spelled), vec![Lane::OnePassword, Lane::Slack]);
    }

    #[test]
    fn a_payload_this_release_cannot_read_rings_every_lane() {
        assert_eq!(read(""), Lane::ALL.to_vec());
        assert_eq!(read("slack,fax"), Lane::ALL.to_vec());
    }
}
