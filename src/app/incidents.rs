//! Incidents: when suspensions wait for cards faster than Slack lets us post, they are seated
//! on shared incident cards instead of a card each, and "Approve all" approves every row shown
//! with one click, each under every rule a single click obeys. Facts and jobs only; `slack/`
//! renders the cards.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::decisions::{self, DecisionError};
use crate::app::state::AppState;
use crate::domain::incident::{group_of, groupable, IncidentId, Key, Seat, Waiting, ROWS_PER_CARD};
use crate::domain::{Decider, Proposal, ProposalId, SlackRef, Status};
use crate::ledger::{ClaimedJob, EventKind, Job, OpenIncident, Tx};

/// Where a proposal whose card job runs now is shown.
#[derive(Debug)]
pub enum Placement {
    /// A card of its own, as below the threshold.
    Own,
    /// It is the first row of an incident card not yet posted: this job posts it.
    Lead(Seat),
    /// It is a row of a card another job posts or posted; its own job is done.
    Seated,
}

/// Seats `proposal` (whose card job `claimed` runs now) on an incident card when a burst calls
/// for one: the open incident of its alert (or of its arrival) if one has room, else a new
/// incident of the proposals waiting with it, once they reach the threshold.
pub async fn place(
    state: &AppState,
    claimed: &ClaimedJob,
    proposal: &Proposal,
) -> Result<Placement, sqlx::Error> {
    if let Some(seat) = proposal.incident {
        return Ok(Placement::Lead(seat));
    }
    let threshold = state.timing.incident_threshold;
    if threshold == 0 || !groupable(proposal, &state.policy) {
        return Ok(Placement::Own);
    }
    let channel = state.slack_settings.channel.clone();
    let mut tx = state.ledger.begin().await?;
    let now = Utc::now();
    let Some(mut current) = tx.proposal(proposal.id).await? else {
        return Ok(Placement::Own);
    };
    if !groupable(&current, &state.policy) {
        return Ok(Placement::Own);
    }
    let since = now - chrono::Duration::from_std(state.timing.incident_window).unwrap_or_default();
    let alert = current.source.alert_id.clone();
    if let Some(alert) = alert.as_deref() {
        if let Some(open) = tx.open_incident(&channel, Some(alert), since).await? {
            return joined(state, tx, claimed, &mut current, &open, now).await;
        }
    }
    let waiting: Vec<(i64, Proposal)> = tx
        .waiting_for_cards()
        .await?
        .into_iter()
        .filter(|(_, p)| p.id != current.id && groupable(p, &state.policy))
        .collect();
    let me = Waiting {
        id: current.id,
        alert_id: alert,
    };
    let mut all = vec![me.clone()];
    all.extend(waiting.iter().map(|(_, p)| Waiting {
        id: p.id,
        alert_id: p.source.alert_id.clone(),
    }));
    let group = group_of(&me, &all, threshold);
    // Those sharing an alert form its incident; the rest join the open arrival incident.
    if !matches!(group, Some((Key::Alert(_), _))) {
        if let Some(open) = tx.open_incident(&channel, None, since).await? {
            return joined(state, tx, claimed, &mut current, &open, now).await;
        }
    }
    let Some((key, members)) = group else {
        return Ok(Placement::Own);
    };
    let incident = IncidentId::new();
    tx.insert_incident(incident, &channel, key.alert_id(), now)
        .await?;
    let mut seats = 0u32;
    let mut lead = None;
    for id in members {
        let (job, mut member) = if id == current.id {
            (None, current.clone())
        } else {
            match waiting.iter().find(|(_, p)| p.id == id) {
                Some((job, p)) => (Some(*job), p.clone()),
                None => continue,
            }
        };
        let seq = seats + 1;
        let card = seats / ROWS_PER_CARD + 1;
        let first_of_card = seats.is_multiple_of(ROWS_PER_CARD);
        // A card's first row posts it with its own job; the others' jobs are settled here. A
        // job another replica claimed meanwhile keeps its proposal out of the incident.
        if let (Some(job), false) = (job, first_of_card) {
            if !tx.settle_job(job, now).await? {
                continue;
            }
        }
        let seat = Seat {
            incident,
            card,
            seq,
        };
        member.incident = Some(seat);
        tx.save_proposal(&member, now).await?;
        if id == current.id {
            lead = Some(seat);
        }
        seats += 1;
    }
    let cards = seats.div_ceil(ROWS_PER_CARD);
    tx.incident_grew(incident, seats, cards, now).await?;
    tx.append(
        None,
        EventKind::IncidentOpened,
        "system",
        json!({
            "incident": incident.to_string(), "channel": channel, "members": seats, "cards": cards,
            "grouped_by": match &key { Key::Alert(_) => "alert", Key::Arrival => "arrival" },
            "alert_id": key.alert_id(),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    state.wake_worker();
    tracing::info!(%incident, members = seats, cards, "incident opened for a burst of suspensions");
    Ok(lead.map_or(Placement::Own, Placement::Lead))
}

/// Seats `proposal` on `open` and commits.
async fn joined(
    state: &AppState,
    mut tx: Tx,
    claimed: &ClaimedJob,
    proposal: &mut Proposal,
    open: &OpenIncident,
    now: DateTime<Utc>,
) -> Result<Placement, sqlx::Error> {
    let placement = join(&mut tx, claimed, proposal, open, now).await?;
    tx.commit().await?;
    state.wake_worker();
    Ok(placement)
}

/// Seats `proposal` on the open incident's newest card, or starts its next card.
async fn join(
    tx: &mut Tx,
    claimed: &ClaimedJob,
    proposal: &mut Proposal,
    open: &OpenIncident,
    now: DateTime<Utc>,
) -> Result<Placement, sqlx::Error> {
    let card = if open.has_room() {
        open.cards
    } else {
        open.cards + 1
    };
    let seat = Seat {
        incident: open.id,
        card,
        seq: open.members + 1,
    };
    proposal.incident = Some(seat);
    tx.incident_grew(open.id, seat.seq, card, now).await?;
    if card > open.cards {
        tx.save_proposal(proposal, now).await?;
        return Ok(Placement::Lead(seat));
    }
    if let Some(posted) = &open.newest_card {
        // The card is there: this row appears by an update of it.
        proposal.slack = Some(posted.clone());
        tx.append(
            Some(proposal.id),
            EventKind::SlackCardPosted,
            "system",
            card_posted(posted, seat),
            now,
        )
        .await?;
        tx.enqueue(proposal.id, Job::UpdateCard, now).await?;
    }
    tx.save_proposal(proposal, now).await?;
    tx.complete_job(claimed, now).await?;
    Ok(Placement::Seated)
}

/// The `slack.card_posted` payload of a row of an incident card.
pub fn card_posted(card: &SlackRef, seat: Seat) -> serde_json::Value {
    json!({
        "channel": card.channel, "ts": card.ts,
        "incident": seat.incident.to_string(), "incident_card": seat.card,
    })
}

/// What "Approve all" did with one row.
#[derive(Debug)]
pub struct RowOutcome {
    pub proposal: Proposal,
    /// `Ok` when the clicker's approval was recorded; else why not.
    pub result: Result<(), DecisionError>,
}

/// Approves, as `decider`, every pending member of `incident` up to `upto` (what the clicked
/// card showed), one approval per row, each through `decisions::approve` with every rule of a
/// single click; a row refused is left as it is. Each recorded approval names the card.
pub async fn approve_all(
    state: &AppState,
    incident: IncidentId,
    upto: u32,
    card: Option<&SlackRef>,
    decider: &Decider,
) -> Result<Vec<RowOutcome>, sqlx::Error> {
    let members = state.ledger.incident_members(incident, upto).await?;
    let via = json!({
        "incident": incident.to_string(),
        "channel": card.map(|c| c.channel.clone()),
        "ts": card.map(|c| c.ts.clone()),
    });
    let mut outcomes = Vec::with_capacity(members.len());
    for proposal in members {
        if proposal.status != Status::Pending {
            continue;
        }
        let result = decisions::approve_via(state, proposal.id, decider, Some(&via))
            .await
            .map(|_| ());
        outcomes.push(RowOutcome { proposal, result });
    }
    Ok(outcomes)
}

/// Which proposals speak for their incident card in the sweeps' reminders and escalations:
/// one row per card, its first still pending, so a wave of 500 is not 500 posts at Slack's
/// one a second. Remembers each card's answer for one sweep.
#[derive(Default)]
pub struct CardVoices {
    first_pending: std::collections::HashMap<(IncidentId, u32), Option<ProposalId>>,
}

impl CardVoices {
    /// Whether `proposal` speaks for itself (no incident) or for its card.
    pub async fn speaks(
        &mut self,
        state: &AppState,
        proposal: &Proposal,
    ) -> Result<bool, sqlx::Error> {
        let Some(seat) = proposal.incident else {
            return Ok(true);
        };
        let key = (seat.incident, seat.card);
        let first = match self.first_pending.get(&key) {
            Some(first) => *first,
            None => {
                let rows = state.ledger.card_members(seat.incident, seat.card).await?;
                let first = rows
                    .iter()
                    .find(|p| p.status == Status::Pending)
                    .map(|p| p.id);
                self.first_pending.insert(key, first);
                first
            }
        };
        Ok(first == Some(proposal.id))
    }
}
