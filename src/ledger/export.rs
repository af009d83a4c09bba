//! `ledger export`: the history for auditors, as JSON lines (every column, so the chain can be
//! recomputed from the file) or CSV with the correlation fields as columns.

use std::collections::HashMap;
use std::io::Write;

use serde_json::{json, Value};
use sqlx::Row;

use crate::domain::drift::direction;
use crate::domain::UserState;

use super::chain::StoredEvent;
use super::{storable, EventQuery, Ledger};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

const CSV_HEADER: &str =
    "seq,at,kind,actor,proposal_id,alert_id,platform,outcome,drift,payload,prev_hash,hash";

/// Where an event came from, by its proposal: the alert id and the automation platform.
struct Correlation {
    alert_id: String,
    platform: String,
}

async fn correlations(ledger: &Ledger) -> Result<HashMap<String, Correlation>, sqlx::Error> {
    let sql = format!(
        "SELECT id, {} AS alert_id, {} AS platform FROM proposals",
        ledger.engine.json_text("document", &["source", "alert_id"]),
        ledger.engine.json_text("document", &["source", "platform"])
    );
    let rows = sqlx::query(&sql).fetch_all(&ledger.reader).await?;
    Ok(rows
        .iter()
        .map(|r| {
            // NUL (recorded before free text was checked) reads as U+FFFD, as PostgreSQL
            // extracts it: the same cell on either engine.
            let text = |name: &str| storable(&r.get::<Option<String>, _>(name).unwrap_or_default());
            (
                r.get("id"),
                Correlation {
                    alert_id: text("alert_id"),
                    platform: text("platform"),
                },
            )
        })
        .collect())
}

/// What a spreadsheet takes a cell starting with to be a formula (or, for tab and CR, may
/// strip before looking again).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV field as a spreadsheet can open it safely: a cell that would start a formula gets a
/// leading `'` (OWASP's advice against CSV injection: callers choose alert ids, platforms and
/// names), then it is quoted when it needs it (RFC 4180). JSONL stays the faithful copy.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(FORMULA_STARTS) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The `drift` column: which way a user changed outside countersign, or the baseline.
fn drift_mark(event: &StoredEvent) -> &'static str {
    match event.kind.as_str() {
        "drift.detected" => direction(UserState::parse(
            event.payload["to"].as_str().unwrap_or_default(),
        )),
        "drift.baseline" => "baseline",
        // An audit event named who made a drift recorded earlier (the `actor` column).
        "drift.attributed" => "attributed",
        _ => "",
    }
}

fn csv_row(event: &StoredEvent, correlation: Option<&Correlation>) -> String {
    let outcome = event
        .payload
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let fields = [
        event.seq.to_string(),
        event.at.clone(),
        event.kind.clone(),
        event.actor.clone(),
        event.proposal_id.clone().unwrap_or_default(),
        correlation.map(|c| c.alert_id.clone()).unwrap_or_default(),
        correlation.map(|c| c.platform.clone()).unwrap_or_default(),
        outcome.to_owned(),
        drift_mark(event).to_owned(),
        event.payload.to_string(),
        event.prev_hash.clone(),
        event.hash.clone(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes every event matching `query` (its `after_seq` and `limit` are paging state) to `out`;
/// returns how many.
pub async fn export(
    ledger: &Ledger,
    format: ExportFormat,
    mut query: EventQuery,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    const PAGE: i64 = 10_000;
    let correlations = correlations(ledger).await?;
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    query.limit = PAGE;
    let mut written = 0;
    loop {
        let page = ledger.events_where(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = last.seq;
        for event in &page {
            match format {
                ExportFormat::Jsonl => writeln!(out, "{}", json!(event))?,
                ExportFormat::Csv => {
                    let correlation = event
                        .proposal_id
                        .as_ref()
                        .and_then(|id| correlations.get(id));
                    writeln!(out, "{}", csv_row(event, correlation))?
                }
            }
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_cell_a_spreadsheet_would_run_starts_with_an_apostrophe() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"https://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"https://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_field("a=b"), "a=b");
    }
}
