//! The Block Kit limits Slack enforces on a message, as its reference pages state them ("Block
//! Kit → Blocks", "Composition objects", "Block elements"): a message holds at most 50 blocks;
//! a section's text is at most 3000 characters; a header's 150; a button's text 75 and its
//! value 2000; an overflow menu has 1–5 options; a confirm dialog's title 100, text 300 and
//! buttons 30; block ids are unique in a message; `text` is at most 40,000 characters
//! (chat.postMessage: "truncated" past it; we refuse, as `msg_too_long` does for longer ones).
//! A message breaking one is refused with `invalid_blocks` / `msg_too_long`, as Slack does.

use serde_json::Value;

const MAX_BLOCKS: usize = 50;

fn chars(text: &Value) -> usize {
    text.get("text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.chars().count())
}

fn too_long(value: Option<&Value>, max: usize) -> bool {
    value.is_some_and(|v| chars(v) > max)
}

fn bad_confirm(confirm: Option<&Value>) -> bool {
    confirm.is_some_and(|c| {
        too_long(c.get("title"), 100)
            || too_long(c.get("text"), 300)
            || too_long(c.get("confirm"), 30)
            || too_long(c.get("deny"), 30)
    })
}

fn bad_element(element: &Value) -> bool {
    match element.get("type").and_then(Value::as_str) {
        Some("button") => {
            too_long(element.get("text"), 75)
                || element
                    .get("value")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.chars().count() > 2000)
                || bad_confirm(element.get("confirm"))
        }
        Some("overflow") => {
            let options = element.get("options").and_then(Value::as_array);
            options.is_none_or(|o| o.is_empty() || o.len() > 5)
                || bad_confirm(element.get("confirm"))
        }
        _ => false,
    }
}

/// Why Slack would refuse a message with this `text` and these `blocks`, if it would.
pub(super) fn refusal(text: Option<&str>, blocks: Option<&Value>) -> Option<&'static str> {
    if text.is_some_and(|t| t.chars().count() > 40_000) {
        return Some("msg_too_long");
    }
    let blocks = blocks.filter(|b| !b.is_null())?;
    let Some(blocks) = blocks.as_array() else {
        return Some("invalid_blocks");
    };
    if blocks.len() > MAX_BLOCKS {
        return Some("invalid_blocks");
    }
    let mut ids = std::collections::HashSet::new();
    for block in blocks {
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            if !ids.insert(id) {
                return Some("invalid_blocks");
            }
        }
        let bad = match block.get("type").and_then(Value::as_str) {
            Some("section") => {
                too_long(block.get("text"), 3000) || block.get("accessory").is_some_and(bad_element)
            }
            Some("header") => too_long(block.get("text"), 150),
            Some("actions") => block
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(|e| e.len() > 25 || e.iter().any(bad_element)),
            _ => false,
        };
        if bad {
            return Some("invalid_blocks");
        }
    }
    None
}
