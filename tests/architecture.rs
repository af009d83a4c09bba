//! The layering ARCHITECTURE.md promises, read from the source: which file may name which.
//! A file's imports are its `crate::…` and `super::…` paths outside `#[cfg(test)]` modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path such as `["slack", "card"]`; `mod.rs` and `lib.rs` name their folder.
type Module = Vec<String>;

struct Crate {
    /// Every file's module and its source without comments or test modules.
    files: BTreeMap<Module, (PathBuf, String)>,
}

impl Crate {
    fn read() -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(&src).unwrap().to_path_buf();
                if relative.starts_with("bin") {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.insert(module_of(&relative), (relative, without_tests(&text)));
                }
            }
        }
        Self { files }
    }

    /// The files each file imports (not its own ancestors: a file may use its parent's items).
    fn imports(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        self.files
            .iter()
            .map(|(module, (_, text))| {
                let targets = paths(text)
                    .into_iter()
                    .filter_map(|(root, segments)| {
                        let full = if root == "crate" {
                            segments
                        } else {
                            let mut parent = module[..module.len().saturating_sub(1)].to_vec();
                            parent.extend(segments);
                            parent
                        };
                        self.resolve(&full)
                    })
                    .filter(|target| target != module && !module.starts_with(target))
                    .collect();
                (module.clone(), targets)
            })
            .collect()
    }

    /// The longest prefix of `path` that is a file.
    fn resolve(&self, path: &[String]) -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| self.files.contains_key(prefix))
    }

    fn under<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = (&'a PathBuf, &'a String)> {
        self.files
            .values()
            .filter(move |(path, _)| path.starts_with(folder))
            .map(|(path, text)| (path, text))
    }
}

fn module_of(relative: &Path) -> Module {
    let mut parts: Module = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source up to its first `#[cfg(test)] mod`, without line comments: tests may import
/// anything, and a comment is not an import.
fn without_tests(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let end = code
        .match_indices("#[cfg(test)]")
        .find(|(at, _)| code[at + 12..].trim_start().starts_with("mod "))
        .map_or(code.len(), |(at, _)| at);
    code[..end].to_owned()
}

/// Every `crate::a::b…` and `super::a…` path, as its root and segments. A `use` group
/// (`crate::a::{b, c::d}`) yields each member.
fn paths(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = vec![];
    for root in ["crate", "super"] {
        let needle = format!("{root}::");
        for (at, _) in text.match_indices(&needle) {
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &text[at + needle.len()..];
            let prefix: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut base: Vec<String> = prefix
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let after = &rest[prefix.len()..];
            if prefix.ends_with("::") && after.starts_with('{') {
                let group = &after[1..after.find('}').unwrap_or(after.len() - 1).max(1)];
                for member in group.split(',') {
                    let mut full = base.clone();
                    full.extend(
                        member
                            .trim()
                            .split("::")
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty() && s != "self" && s != "{"),
                    );
                    found.push((root.to_owned(), full));
                }
            } else {
                base.retain(|s| s != "self");
                found.push((root.to_owned(), base));
            }
        }
    }
    found
}

/// Groups of two or more files that reach each other (Tarjan's strongly connected components).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        groups: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a Module) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in &self.graph[node] {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = vec![];
                while let Some(member) = self.stack.pop() {
                    group.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.groups.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        groups: vec![],
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.groups
}

/// The files under `folder` whose code mentions any of `names`, with the name found.
fn mentions(krate: &Crate, folder: &str, names: &[&str]) -> Vec<String> {
    krate
        .under(folder)
        .flat_map(|(path, text)| {
            names
                .iter()
                .filter(|name| text.contains(*name))
                .map(move |name| format!("{} names {name}", path.display()))
        })
        .collect()
}

#[test]
fn no_two_files_import_each_other_in_a_circle() {
    let krate = Crate::read();

    let found = circles(&krate.imports());

    assert!(found.is_empty(), "files that import each other: {found:?}");
}

#[test]
fn the_circle_check_finds_a_circle_when_there_is_one() {
    let graph: BTreeMap<Module, BTreeSet<Module>> = [
        (vec!["a".into()], BTreeSet::from([vec!["b".into()]])),
        (vec!["b".into()], BTreeSet::from([vec!["a".into()]])),
        (vec!["c".into()], BTreeSet::from([vec!["a".into()]])),
    ]
    .into();

    assert_eq!(circles(&graph).len(), 1);
}

#[test]
fn the_domain_does_no_io() {
    let krate = Crate::read();

    let found = mentions(
        &krate,
        "domain",
        &[
            "tokio",
            "sqlx",
            "reqwest",
            "axum",
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "crate::ledger",
            "crate::api",
            "crate::app",
            "crate::slack",
            "crate::onepassword",
            "crate::worker",
            "crate::config",
            "crate::metrics",
            "tracing::",
        ],
    );

    assert!(found.is_empty(), "the domain reaches out: {found:?}");
}

#[test]
fn only_the_ledger_knows_the_database_engine() {
    let krate = Crate::read();
    let engine_words = [
        "sqlx::Sqlite",
        "sqlx::Postgres",
        "sqlx::sqlite",
        "sqlx::postgres",
        "SqlitePool",
        "PgPool",
        "sqlx::Any",
        "sqlx::any",
        "BEGIN IMMEDIATE",
        "pg_advisory",
    ];

    let found: Vec<String> = krate
        .files
        .values()
        .filter(|(path, _)| !path.starts_with("ledger"))
        .flat_map(|(path, text)| {
            engine_words
                .iter()
                .filter(|word| text.contains(*word))
                .map(move |word| format!("{} names {word}", path.display()))
        })
        .collect();

    assert!(
        found.is_empty(),
        "engine knowledge outside the ledger: {found:?}"
    );
}

#[test]
fn application_services_emit_facts_and_leave_the_wording_to_slack() {
    let krate = Crate::read();

    let found = mentions(
        &krate,
        "app",
        &[
            "slack::card",
            "slack::announce",
            "slack::drift",
            "slack::modal",
            "slack::mrkdwn",
            "slack::commands",
            "slack::interactions",
            "post_message",
            "post_ephemeral",
            "api::problem",
        ],
    );

    assert!(
        found.is_empty(),
        "a service words or posts for an adapter: {found:?}"
    );
}
