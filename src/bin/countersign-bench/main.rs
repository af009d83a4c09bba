//! countersign-bench: measures countersign against the local stand-ins for Slack and
//! 1Password on loopback, and prints a Markdown table (BENCHMARKS.md records the figures).
//!
//! ```sh
//! cargo run --release --bin countersign-bench            # the full run, a few minutes
//! cargo run --release --bin countersign-bench -- --quick # smaller counts, to try it out
//! cargo run --release --bin countersign-bench -- --wave-only # (g) alone
//! # on PostgreSQL (a fresh database is created on that server), one or two replicas:
//! cargo run --release --bin countersign-bench -- --database postgres://… [--replicas 2]
//! ```
//!
//! A benchmark for people, never a timed test: CI builds it but does not run it.
//!
//! The server is countersign's real `serve`, in a child process (this binary re-executed as
//! `countersign`), so its RSS is its own; the stand-ins and the load generator run in this
//! process. Both share the machine's cores, which the figures say beside them.

mod actionable;
mod clicks;
mod harness;
mod intake;
mod ledger;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use harness::{Database, Fixture, Server, AS_COUNTERSIGN};
use stats::ms;

/// The burst (f)'s 1Password: every call answered after this long, as a real API might.
const OP_LATENCY: Duration = Duration::from_millis(100);
/// `OP_CONCURRENCY`'s default, which the bench's server runs with.
const OP_CONCURRENCY: usize = 8;
/// 1Password calls one approved action makes: the read-first GET and the mutation.
const CALLS_PER_ACTION: usize = 2;

/// How much work each benchmark does.
struct Sizes {
    click_rounds: usize,
    burst: usize,
    intake_clients: usize,
    intake_for: Duration,
    raw_for: Duration,
    ledger_events: u64,
    ledger_batch: u64,
    single_appends_for: Duration,
    wave: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            click_rounds: 200,
            burst: 500,
            intake_clients: 16,
            intake_for: Duration::from_secs(10),
            raw_for: Duration::from_secs(5),
            ledger_events: 1_000_000,
            ledger_batch: 10_000,
            single_appends_for: Duration::from_secs(5),
            wave: 500,
        }
    }

    fn quick() -> Self {
        Self {
            click_rounds: 30,
            burst: 100,
            intake_clients: 16,
            intake_for: Duration::from_secs(3),
            raw_for: Duration::from_secs(2),
            ledger_events: 100_000,
            ledger_batch: 10_000,
            single_appends_for: Duration::from_secs(2),
            wave: 100,
        }
    }

    /// Approvers: (a) uses one, (b) needs one per click.
    fn approvers(&self) -> usize {
        self.burst.max(1)
    }

    /// 1Password users: one per proposal, with room for (c) at several hundred per second.
    fn targets(&self) -> usize {
        self.click_rounds
            + 10
            + 3 * self.burst
            + 4_000 * self.intake_for.as_secs() as usize
            + self.wave
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    // Install one rustls provider process-wide, as countersign's main does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.get(1).map(String::as_str) == Some(AS_COUNTERSIGN) {
        std::process::exit(runtime.block_on(run_as_countersign(&args[2..])));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let database = match value_of("--database") {
        Some(url) if url.starts_with("postgres") => Database::Postgres(url),
        Some(url) if url.starts_with("sqlite") => Database::Sqlite,
        Some(other) => anyhow::bail!("--database {other:?}: give a postgres:// server URL"),
        None => Database::Sqlite,
    };
    let replicas = match value_of("--replicas").map(|n| n.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 && (n == 1 || matches!(database, Database::Postgres(_))) => n,
        Some(_) => anyhow::bail!("--replicas: 1, or more on --database postgres://…"),
    };
    if args.iter().any(|a| a == "--wave-only") {
        return runtime.block_on(wave_only(sizes, quick, database, replicas));
    }
    runtime.block_on(run(sizes, quick, database, replicas))
}

/// `--wave-only`: (g) alone, for work on incident cards.
async fn wave_only(
    sizes: Sizes,
    quick: bool,
    database: Database,
    replicas: usize,
) -> anyhow::Result<()> {
    let dir = harness::scratch_dir();
    eprintln!("scratch directory: {}", dir.display());
    let fixture = Arc::new(Fixture::start(dir.clone(), sizes.approvers(), sizes.targets()).await?);
    eprintln!(
        "(g) a wave of {} suspensions against Slack's posting limit",
        sizes.wave
    );
    let rows = vec![wave(&fixture, &database, replicas, &sizes).await?];
    print_report(&rows, quick, &dir, &database, replicas);
    Ok(())
}

/// Behaves exactly as the `countersign` binary given these arguments.
async fn run_as_countersign(args: &[String]) -> i32 {
    let cli = countersign::cli::Cli::parse_from(
        std::iter::once("countersign").chain(args.iter().map(String::as_str)),
    );
    countersign::telemetry::init(&cli.log_format);
    match countersign::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("countersign: {error:#}");
            1
        }
    }
}

async fn run(sizes: Sizes, quick: bool, database: Database, replicas: usize) -> anyhow::Result<()> {
    let dir = harness::scratch_dir();
    eprintln!("scratch directory: {}", dir.display());
    let fixture = Arc::new(Fixture::start(dir.clone(), sizes.approvers(), sizes.targets()).await?);
    let server = Arc::new(Server::start(&fixture, &database, replicas).await?);
    let on_postgres = matches!(database, Database::Postgres(_));
    let mut rows = Vec::new();

    // (e) idle: after start-up has settled, before any request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = server.rss_mib()?;
    eprintln!("(e) idle RSS {idle_rss:.1} MiB");

    eprintln!("(a) {} click → suspend rounds", sizes.click_rounds);
    let a = clicks::click_to_suspend(&fixture, &server, sizes.click_rounds).await?;
    rows.push(row(
        "(a) approve click → 1Password `:suspend` received",
        a.to_suspend.line(),
        "p50 < 5 ms, p99 < 15 ms",
        a.to_suspend.p50 < Duration::from_millis(5) && a.to_suspend.p99 < Duration::from_millis(15),
    ));
    rows.push(
        row(
            "(a′) Slack's answer to those clicks",
            a.answer.line(),
            "",
            true,
        )
        .untargeted(),
    );

    eprintln!("(b) burst of {} clicks, directory cold", sizes.burst);
    let approvers = &fixture.approvers[..sizes.burst];
    let cold = clicks::burst(&fixture, &server, approvers).await?;
    eprintln!("(b) burst of {} clicks, directory warm", sizes.burst);
    let warm = clicks::burst(&fixture, &server, approvers).await?;
    for (label, b) in [
        (
            "cold: each approver's first click, a `users.info` each",
            &cold,
        ),
        ("warm: the same approvers again, profiles cached", &warm),
    ] {
        rows.push(row(
            &format!(
                "(b) answer to {} concurrent approve clicks, {label}",
                sizes.burst
            ),
            format!(
                "{}; {} not 200; every suspend received after {}",
                b.answer.line(),
                b.not_ok,
                ms(b.drained)
            ),
            "p99 < 100 ms (goal 50)",
            b.answer.p99 < Duration::from_millis(100) && b.not_ok == 0,
        ));
    }

    eprintln!(
        "(f) burst of {} approved suspensions, 1Password at {:?} a call",
        sizes.burst, OP_LATENCY
    );
    let f = clicks::execution_burst(&fixture, &server, approvers, OP_LATENCY).await?;
    // Two calls an action: the read-first GET and the :suspend, whose answer is the outcome.
    let floor = OP_LATENCY.mul_f64((f.actions * CALLS_PER_ACTION) as f64 / OP_CONCURRENCY as f64);
    rows.push(row(
        &format!(
            "(f) {} approved suspensions, 1Password {} ms a call, concurrency {OP_CONCURRENCY}: last click → last `:suspend`",
            f.actions,
            f.latency.as_millis()
        ),
        format!(
            "{:.1} s = {:.2}× the floor of {:.1} s ({} × {CALLS_PER_ACTION} calls × {} ms ÷ {OP_CONCURRENCY}); {} not 200",
            f.took.as_secs_f64(),
            f.took.as_secs_f64() / floor.as_secs_f64(),
            floor.as_secs_f64(),
            f.actions,
            f.latency.as_millis(),
            f.not_ok
        ),
        "≤ 1.25× floor",
        f.took.as_secs_f64() <= 1.25 * floor.as_secs_f64() && f.not_ok == 0,
    ));

    eprintln!(
        "(c) raw {} commits for {:?}",
        database.name(),
        sizes.raw_for
    );
    let raw = if on_postgres {
        intake::raw_postgres_commit_rate(&server.database_url, sizes.raw_for).await?
    } else {
        intake::raw_commit_rate(&dir, sizes.raw_for).await?
    };
    eprintln!(
        "(c) {} proposers for {:?}",
        sizes.intake_clients, sizes.intake_for
    );
    let c = intake::sustained_proposals(&fixture, &server, sizes.intake_clients, sizes.intake_for)
        .await?;
    let raw_what = if on_postgres {
        "(c′) raw PostgreSQL: single-row INSERT transactions, synchronous_commit=on, one connection"
    } else {
        "(c′) raw SQLite: single-row INSERT transactions, WAL, synchronous=FULL, one connection"
    };
    rows.push(row(raw_what, format!("{raw:.0} commits/s"), "", true).untargeted());
    rows.push(row(
        &format!(
            "(c) sustained proposals, {} concurrent clients, by 1Password id",
            c.clients
        ),
        format!(
            "{:.0} proposals/s = {:.2}× raw; {} created, {} in the ledger; latency {}",
            c.per_second,
            c.per_second / raw,
            c.created,
            c.in_ledger,
            c.latency.line()
        ),
        "≥ 1.0× raw",
        c.per_second >= raw && c.in_ledger == c.created as i64,
    ));

    // (e) loaded: everything above has run against the same process.
    let (loaded_rss, peak_rss) = server.rss_mib()?;
    rows.push(row(
        "(e) RSS of `countersign serve`, idle after start",
        format!("{idle_rss:.1} MiB"),
        "< 40 MB",
        // The target is in MB; /proc reports KiB, shown as MiB.
        idle_rss * 1.048_576 < 40.0,
    ));
    rows.push(row(
        "(e) RSS after (a)–(c) and (f), and its peak (VmHWM)",
        format!("{loaded_rss:.1} MiB now, {peak_rss:.1} MiB peak"),
        "< 64 MB",
        loaded_rss * 1.048_576 < 64.0,
    ));
    drop(server);

    eprintln!(
        "(g) a wave of {} suspensions against Slack's posting limit",
        sizes.wave
    );
    rows.push(wave(&fixture, &database, replicas, &sizes).await?);
    if on_postgres {
        // (d) measures the SQLite ledger file itself.
        print_report(&rows, quick, &dir, &database, replicas);
        return Ok(());
    }

    eprintln!("(d) ledger: {} events", sizes.ledger_events);
    let d = ledger::throughput(
        &dir,
        sizes.ledger_events,
        sizes.ledger_batch,
        sizes.single_appends_for,
    )
    .await?;
    rows.push(
        row(
            "(d) ledger append, one event per transaction",
            format!(
                "{:.0} events/s ({} events)",
                d.single_per_second, d.single_events
            ),
            "",
            true,
        )
        .untargeted(),
    );
    rows.push(
        row(
            &format!("(d) ledger append, {} events per transaction", d.batch),
            format!(
                "{:.0} events/s ({} events)",
                d.batched_per_second, d.batched_events
            ),
            "",
            true,
        )
        .untargeted(),
    );
    rows.push(
        row(
            "(d) `Ledger::verify` over the whole chain",
            format!(
                "{:.0} events/s ({} events)",
                d.verify_per_second, d.verify_events
            ),
            "",
            true,
        )
        .untargeted(),
    );
    rows.push(
        row(
            "(d′) beside it: the rows streamed one at a time through sqlx (native SQLite) and dropped, as verify read them before it read pages · one core hashing them",
            format!(
                "{:.0} rows/s · {:.0} events/s",
                d.read_per_second, d.hash_per_second_one_core
            ),
            "",
            true,
        )
        .untargeted(),
    );
    rows.push(
        row(
            "(d) `countersign ledger verify` (process start included)",
            format!(
                "{:.1} s ({:.0} events/s)",
                d.cli_verify.as_secs_f64(),
                d.verify_events as f64 / d.cli_verify.as_secs_f64()
            ),
            "",
            true,
        )
        .untargeted(),
    );

    print_report(&rows, quick, &dir, &database, replicas);
    Ok(())
}

/// (g): a server pacing posts at Slack's limit and grouping bursts (the defaults), against a
/// stand-in enforcing that limit.
async fn wave(
    fixture: &Arc<Fixture>,
    database: &Database,
    replicas: usize,
    sizes: &Sizes,
) -> anyhow::Result<Row> {
    let every = actionable::POST_EVERY;
    fixture.slack.limit_posts(every, actionable::POST_BURST);
    let paced = (every.as_millis() + 50).to_string();
    let env = [("SLACK_POST_INTERVAL_MS", paced.as_str())];
    let server = Arc::new(Server::start_with(fixture, database, replicas, "_wave", &env).await?);
    let g =
        actionable::time_to_actionable(fixture, &server, sizes.wave, sizes.intake_clients).await?;
    // A card each, paced at Slack's limit after its burst: what the wave would take ungrouped.
    let ungrouped = every.mul_f64(g.proposals.saturating_sub(actionable::POST_BURST) as f64);
    Ok(row(
        &format!(
            "(g) {} suspensions submitted at once, Slack at 1 post/s a channel: until every one has an Approve a responder can press; clicks to approve them all",
            g.proposals
        ),
        format!(
            "actionable in {:.1} s (submitted in {:.1} s) on {} messages; {} clicks ({} presses with confirm dialogs), all suspended {:.1} s after the first; {} posts refused. A card each would take {:.0} s and {} clicks",
            g.actionable_in.as_secs_f64(),
            g.submitted_in.as_secs_f64(),
            g.cards,
            g.clicks,
            g.presses,
            g.approved_in.as_secs_f64(),
            g.posts_refused,
            ungrouped.as_secs_f64(),
            g.proposals
        ),
        "≤ 20 s, ≤ 15 clicks, no 429",
        g.actionable_in <= Duration::from_secs(20) && g.presses <= 15 && g.posts_refused == 0,
    ))
}

struct Row {
    what: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn untargeted(mut self) -> Self {
        self.met = None;
        self
    }
}

fn row(what: &str, figure: String, target: &str, met: bool) -> Row {
    Row {
        what: what.to_owned(),
        figure,
        target: target.to_owned(),
        met: Some(met),
    }
}

fn print_report(
    rows: &[Row],
    quick: bool,
    dir: &std::path::Path,
    database: &Database,
    replicas: usize,
) {
    println!(
        "## countersign-bench {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!();
    println!(
        "- machine: {} cores ({}), {} memory; scratch disk {}",
        cores(),
        cpu_model(),
        memory(),
        harness::describe_disk(dir)
    );
    println!("- the stand-ins and the load generator share these cores with the server");
    println!(
        "- ledger on {}, {replicas} replica{} of `countersign serve`{}",
        database.name(),
        if replicas == 1 { "" } else { "s" },
        if replicas > 1 {
            " (requests round-robin between them; RSS is the first's)"
        } else {
            ""
        }
    );
    if quick {
        println!("- **--quick run: smaller counts, not the recorded figures**");
    }
    println!();
    println!("| benchmark | figure | target | met |");
    println!("|---|---|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        println!("| {} | {} | {} | {met} |", r.what, r.figure, r.target);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .map(|m| m.trim().trim_end_matches(" kB").parse::<f64>().ok())
            })
        })
        .flatten()
        .map_or_else(
            || "unknown".into(),
            |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
        )
}
