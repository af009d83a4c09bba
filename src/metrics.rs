//! Prometheus metrics, kept per application (not in a global registry) so every test's app
//! counts only its own work. Labels carry action, status, service and endpoint: never a user.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Upper bounds of the latency buckets, in seconds: from a fast API call to a slow decision.
const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// The last call to an outside service, for `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct LastCall {
    pub endpoint: String,
    pub ok: bool,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

type Key = (&'static str, String);

/// A gauge read at scrape time: its name, help text, and samples (labels and value).
pub struct Gauge<'a> {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'a str, &'a str)>, f64)>,
}

#[derive(Default)]
struct Registry {
    histograms: BTreeMap<Key, Histogram>,
    counters: BTreeMap<Key, u64>,
    last: BTreeMap<&'static str, LastCall>,
}

#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

/// `{a="x",b="y"}` with values escaped as the text format wants.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if inner.is_empty() {
        return String::new();
    }
    format!("{{{}}}", inner.join(","))
}

fn with_le(labels: &str, le: &str) -> String {
    match labels.strip_suffix('}') {
        Some(open) if open.len() > 1 => format!("{open},le=\"{le}\"}}"),
        _ => format!("{{le=\"{le}\"}}"),
    }
}

impl Metrics {
    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut registry = self.registry.lock().expect("metrics lock");
        registry
            .histograms
            .entry((name, labels(pairs)))
            .or_default()
            .observe(seconds.max(0.0));
    }

    pub fn increment(&self, name: &'static str, pairs: &[(&str, &str)]) {
        let mut registry = self.registry.lock().expect("metrics lock");
        *registry.counters.entry((name, labels(pairs))).or_default() += 1;
    }

    /// Records one call to Slack or 1Password: its latency, an error if it failed, and the
    /// last result for readiness. `detail` must never hold a secret.
    pub fn call(
        &self,
        service: &'static str,
        endpoint: &str,
        took: Duration,
        error: Option<String>,
    ) {
        let pairs = [("service", service), ("endpoint", endpoint)];
        self.observe(
            "countersign_external_call_seconds",
            &pairs,
            took.as_secs_f64(),
        );
        if error.is_some() {
            self.increment("countersign_external_call_errors_total", &pairs);
        }
        let last = LastCall {
            endpoint: endpoint.to_owned(),
            ok: error.is_none(),
            at: Utc::now(),
            detail: error,
        };
        self.registry
            .lock()
            .expect("metrics lock")
            .last
            .insert(service, last);
    }

    /// Time from proposal to a decision (`approved`, `denied`).
    pub fn decided(&self, action: &str, decision: &str, since: DateTime<Utc>) {
        let seconds = (Utc::now() - since).num_milliseconds() as f64 / 1000.0;
        self.observe(
            "countersign_decision_seconds",
            &[("action", action), ("decision", decision)],
            seconds,
        );
    }

    /// Time from approval to the end of execution (`executed`, `failed`).
    pub fn executed(&self, action: &str, status: &str, approved_at: DateTime<Utc>) {
        let seconds = (Utc::now() - approved_at).num_milliseconds() as f64 / 1000.0;
        self.observe(
            "countersign_execution_seconds",
            &[("action", action), ("status", status)],
            seconds,
        );
    }

    pub fn last_call(&self, service: &str) -> Option<LastCall> {
        self.registry
            .lock()
            .expect("metrics lock")
            .last
            .get(service)
            .cloned()
    }

    /// The text exposition format, with `gauges` (read from the database at scrape time)
    /// written first.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        for Gauge {
            name,
            help,
            samples,
        } in gauges
        {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (pairs, value) in samples {
                let _ = writeln!(out, "{name}{} {value}", labels(pairs));
            }
        }
        let registry = self.registry.lock().expect("metrics lock");
        let mut last_name = "";
        for ((name, label), value) in &registry.counters {
            if *name != last_name {
                let _ = writeln!(out, "# TYPE {name} counter");
                last_name = name;
            }
            let _ = writeln!(out, "{name}{label} {value}");
        }
        last_name = "";
        for ((name, label), histogram) in &registry.histograms {
            if *name != last_name {
                let _ = writeln!(out, "# TYPE {name} histogram");
                last_name = name;
            }
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {count}",
                    with_le(label, &bound.to_string())
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                with_le(label, "+Inf"),
                histogram.count
            );
            let _ = writeln!(out, "{name}_sum{label} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{label} {}", histogram.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("latency_seconds", &[("action", "suspend")], 0.02);
        metrics.observe("latency_seconds", &[("action", "suspend")], 2.0);
        let text = metrics.render(&[]);
        assert!(
            text.contains("latency_seconds_bucket{action=\"suspend\",le=\"0.01\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{action=\"suspend\",le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{action=\"suspend\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_count{action=\"suspend\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("endpoint", "a\"b")]), "{endpoint=\"a\\\"b\"}");
    }
}
