//! Incidents and their members: the proposals waiting for cards that grouping may seat, the
//! open incident a later proposal joins, and the rows of one incident card.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::proposals::decode;
use super::{timestamp, Ledger, Result, Tx};
use crate::domain::incident::{IncidentId, ROWS_PER_CARD};
use crate::domain::{Proposal, SlackRef};

/// How many waiting proposals one grouping looks at: more than a burst ever needs at once.
const WAITING_LOOKED_AT: i64 = 2000;

/// The rows of one incident card, in arrival order.
const CARD_MEMBERS: &str =
    "SELECT document FROM proposals WHERE incident_id = $1 AND incident_card = $2 ORDER BY incident_seq";

/// An incident still taking members.
#[derive(Debug, Clone)]
pub struct OpenIncident {
    pub id: IncidentId,
    pub members: u32,
    pub cards: u32,
    /// Members on the newest card.
    pub on_newest_card: u32,
    /// The newest card, once posted.
    pub newest_card: Option<SlackRef>,
}

impl OpenIncident {
    pub fn has_room(&self) -> bool {
        self.on_newest_card < ROWS_PER_CARD
    }
}

/// What every card of an incident says about the whole of it.
#[derive(Debug, Clone)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub alert_id: Option<String>,
    pub members: u32,
    pub cards: u32,
}

fn count(row: &sqlx::any::AnyRow, column: &str) -> u32 {
    u32::try_from(row.get::<i64, _>(column)).unwrap_or(u32::MAX)
}

fn decode_all(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<Proposal>> {
    rows.iter().map(|r| decode(r.get("document"))).collect()
}

impl Tx {
    /// Proposals of pending suspensions whose card job waits (due or waiting to try again)
    /// unclaimed, with no card and no incident yet, oldest first, each with its job's id: what
    /// grouping may seat.
    pub async fn waiting_for_cards(&mut self) -> Result<Vec<(i64, Proposal)>> {
        let now = timestamp(Utc::now());
        let rows = sqlx::query(
            "SELECT o.id AS job_id, p.document FROM outbox o JOIN proposals p ON p.id = o.proposal_id
             WHERE o.lane = 'slack' AND o.kind = 'post_card' AND o.done_at IS NULL
               AND (o.leased_until IS NULL OR o.leased_until <= $1)
               AND p.action = 'suspend' AND p.status = 'pending'
               AND p.slack_ts IS NULL AND p.incident_id IS NULL
             ORDER BY o.id LIMIT $2",
        )
        .bind(now)
        .bind(WAITING_LOOKED_AT)
        .fetch_all(self.read_conn().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.get::<i64, _>("job_id"), decode(r.get("document"))?)))
            .collect()
    }

    /// The newest incident in `channel` for `alert_id` (`None`: grouped by arrival) that a
    /// member joined since `since` and that still has a member pending.
    pub async fn open_incident(
        &mut self,
        channel: &str,
        alert_id: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Option<OpenIncident>> {
        let keyed = if alert_id.is_some() {
            "i.alert_id = $3"
        } else {
            "i.alert_id IS NULL"
        };
        let sql = format!(
            "SELECT i.id, i.members, i.cards FROM incidents i
             WHERE i.channel = $1 AND i.joined_at >= $2 AND {keyed}
               AND EXISTS (SELECT 1 FROM proposals p WHERE p.incident_id = i.id AND p.status = 'pending')
             ORDER BY i.joined_at DESC LIMIT 1"
        );
        let mut query = sqlx::query(&sql).bind(channel).bind(timestamp(since));
        if let Some(alert_id) = alert_id {
            query = query.bind(alert_id);
        }
        let Some(row) = query.fetch_optional(self.read_conn().await?).await? else {
            return Ok(None);
        };
        let id: String = row.get("id");
        let Some(id) = IncidentId::parse(&id) else {
            return Ok(None);
        };
        let cards = count(&row, "cards");
        let newest = sqlx::query(
            "SELECT slack_channel, slack_ts FROM proposals WHERE incident_id = $1 AND incident_card = $2",
        )
        .bind(id.to_string())
        .bind(i64::from(cards))
        .fetch_all(self.read_conn().await?)
        .await?;
        let newest_card = newest.iter().find_map(|r| {
            let channel: Option<String> = r.get("slack_channel");
            let ts: Option<String> = r.get("slack_ts");
            Some(SlackRef {
                channel: channel?,
                ts: ts?,
            })
        });
        Ok(Some(OpenIncident {
            id,
            members: count(&row, "members"),
            cards,
            on_newest_card: u32::try_from(newest.len()).unwrap_or(u32::MAX),
            newest_card,
        }))
    }

    pub async fn insert_incident(
        &mut self,
        id: IncidentId,
        channel: &str,
        alert_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO incidents (id, channel, alert_id, created_at, joined_at, members, cards)
             VALUES ($1, $2, $3, $4, $4, 0, 0)",
        )
        .bind(id.to_string())
        .bind(channel)
        .bind(alert_id)
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Records that the incident now has `members` members on `cards` cards.
    pub async fn incident_grew(
        &mut self,
        id: IncidentId,
        members: u32,
        cards: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("UPDATE incidents SET members = $1, cards = $2, joined_at = $3 WHERE id = $4")
            .bind(i64::from(members))
            .bind(i64::from(cards))
            .bind(timestamp(now))
            .bind(id.to_string())
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Ends an unclaimed job without running it, because another job does its work (a member
    /// whose row another job's card posts); false when it is claimed or already done.
    pub async fn settle_job(&mut self, job_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET done_at = $1 WHERE id = $2 AND done_at IS NULL
               AND (leased_until IS NULL OR leased_until <= $1)",
        )
        .bind(timestamp(now))
        .bind(job_id)
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends the unclaimed card updates of the members of one card filed up to job `upto`:
    /// the render that read the members after they were filed showed their changes.
    pub async fn settle_card_updates(
        &mut self,
        incident: IncidentId,
        card: u32,
        upto: i64,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET done_at = $1 WHERE lane = 'slack' AND kind = 'update_card'
               AND done_at IS NULL AND id <= $2 AND (leased_until IS NULL OR leased_until <= $1)
               AND proposal_id IN (SELECT id FROM proposals WHERE incident_id = $3 AND incident_card = $4)",
        )
        .bind(timestamp(now))
        .bind(upto)
        .bind(incident.to_string())
        .bind(i64::from(card))
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// The rows of one incident card, in arrival order.
    pub async fn card_members(&mut self, incident: IncidentId, card: u32) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(CARD_MEMBERS)
            .bind(incident.to_string())
            .bind(i64::from(card))
            .fetch_all(self.read_conn().await?)
            .await?;
        decode_all(rows)
    }
}

impl Ledger {
    /// The rows of one incident card, in arrival order.
    pub async fn card_members(&self, incident: IncidentId, card: u32) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(CARD_MEMBERS)
            .bind(incident.to_string())
            .bind(i64::from(card))
            .fetch_all(&self.reader)
            .await?;
        decode_all(rows)
    }

    /// The members of an incident up to `seq` in arrival order: what an "Approve all" shown
    /// with them covers.
    pub async fn incident_members(&self, incident: IncidentId, upto: u32) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(
            "SELECT document FROM proposals WHERE incident_id = $1 AND incident_seq <= $2 ORDER BY incident_seq",
        )
        .bind(incident.to_string())
        .bind(i64::from(upto))
        .fetch_all(&self.reader)
        .await?;
        decode_all(rows)
    }

    pub async fn incident(&self, id: IncidentId) -> Result<Option<IncidentSummary>> {
        let row = sqlx::query("SELECT alert_id, members, cards FROM incidents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| IncidentSummary {
            id,
            alert_id: r.get("alert_id"),
            members: count(&r, "members"),
            cards: count(&r, "cards"),
        }))
    }

    /// The newest job filed so far: card updates up to it are shown by a render that reads
    /// after it. Every writer holds the ledger's lock, so ids are filed in commit order.
    pub async fn newest_job(&self) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
            .fetch_one(&self.reader)
            .await?;
        Ok(id.unwrap_or(0))
    }
}
