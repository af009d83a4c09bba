//! Free text from callers (reasons, an alert's platform, id, URL, rule and severity): any
//! characters but control characters, newline and tab excepted. The rule is the same whichever
//! engine holds the ledger (PostgreSQL's TEXT cannot hold NUL, SQLite's can), and it keeps
//! terminal escapes and carriage returns from rewriting what a reader of the ledger sees.

/// Refuses a control character other than newline and tab in `text`, saying which and where
/// (`what` names the text: "reason", "alert_id").
pub fn check_free_text(what: &str, text: &str) -> Result<(), String> {
    let refused = text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\t'));
    match refused {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "{what} has a control character (U+{:04X}, character {}); only newline and tab are allowed",
            u32::from(c),
            at + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_free_text;

    #[test]
    fn newline_and_tab_are_free_text() {
        assert!(check_free_text("note", "two lines\nand\ta tab, ünïcödé and emoji 🚨").is_ok());
    }

    #[test]
    fn nul_escape_carriage_return_and_c1_controls_are_refused() {
        for text in ["a\u{0}b", "a\u{1b}[31mb", "a\rb", "a\u{7f}b", "a\u{85}b"] {
            assert!(check_free_text("note", text).is_err(), "{text:?}");
        }
        assert_eq!(
            check_free_text("alert_id", "ab\u{0}").unwrap_err(),
            "alert_id has a control character (U+0000, character 3); only newline and tab are allowed"
        );
    }
}
