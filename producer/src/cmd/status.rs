//! `producer status`: queue depths, planned versus committed groups, recent commits.

use std::time::Duration;

use anyhow::Result;
use floe_fleet::records::Records;
use floe_fleet::sqs::{Queue, QueueDepth};
use floe_fleet::{FleetArgs, FleetConfig};
use floe_store::{CloudSettings, LogEntry, StoreLocation};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

/// Options of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Where the fleet is (config file, stack, environment, flags).
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Refresh until every planned group is committed and the queues are empty (or Ctrl-C).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
    /// Print JSON (once, or one line per refresh with --watch).
    #[arg(long)]
    pub json: bool,
    /// Recent commits to show.
    #[arg(long, default_value_t = 5)]
    pub commits: usize,
}

/// One queue's depth.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// work, work-dlq, results, results-dlq.
    pub name: &'static str,
    /// URL.
    pub url: String,
    /// Depth.
    pub depth: QueueDepth,
}

/// A group written without some of its variables.
#[derive(Debug, Clone, Serialize)]
pub struct PartialGroup {
    /// The group.
    pub group: String,
    /// What was left out, from which file, and why.
    pub left_out: Vec<floe_wire::VariableWarning>,
}

impl PartialGroup {
    /// The partial groups among committed ones.
    pub fn among(
        committed: &std::collections::BTreeMap<String, floe_store::commit::CommittedGroup>,
    ) -> Vec<PartialGroup> {
        committed
            .iter()
            .filter(|(_, c)| !c.left_out.is_empty())
            .map(|(g, c)| PartialGroup {
                group: g.clone(),
                left_out: c.left_out.clone(),
            })
            .collect()
    }

    /// One line per variable left out: `GROUP: VARIABLE left out (FILE): REASON`.
    pub fn lines(partial: &[PartialGroup]) -> Vec<String> {
        partial
            .iter()
            .flat_map(|p| {
                p.left_out.iter().map(move |w| {
                    format!(
                        "{}: {} left out ({}): {}",
                        p.group, w.variable, w.file, w.reason
                    )
                })
            })
            .collect()
    }
}

/// A snapshot of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Queues configured.
    pub queues: Vec<QueueStatus>,
    /// Groups planned by the last enqueue.
    pub planned: usize,
    /// Of those, present in the store (a group fixed and redriven after planning
    /// carries the batch id of its current inputs, not the planned one).
    pub committed: usize,
    /// Planned groups not yet committed (first 50).
    pub pending: Vec<String>,
    /// Committed groups written without some of their variables, each with
    /// the variables left out, the file at fault and why.
    pub partial: Vec<PartialGroup>,
    /// Recent commits, newest first.
    pub recent_commits: Vec<LogEntry>,
    /// The planner (`producer watch`), when the fleet has an events queue.
    pub watch: Option<WatchStatus>,
}

/// A batch the planner sent that the store does not hold yet.
#[derive(Debug, Clone, Serialize)]
pub struct InFlight {
    /// The group.
    pub group: String,
    /// `append`, `rebuild` or `build`.
    pub kind: String,
    /// Files it reads.
    pub files: usize,
    /// Seconds since it was sent.
    pub seconds: i64,
}

/// What `producer watch` saw and how far behind the store is.
#[derive(Debug, Clone, Serialize)]
pub struct WatchStatus {
    /// The events queue.
    pub events_queue: QueueStatus,
    /// The newest notification read.
    pub last_event: Option<floe_fleet::records::SeenEvent>,
    /// Seconds since the planner read it.
    pub seconds_since_last_event: Option<i64>,
    /// Notifications read.
    pub events: u64,
    /// Notifications ignored, by reason.
    pub ignored: std::collections::BTreeMap<String, u64>,
    /// Batches sent and not in the store yet, oldest first.
    pub in_flight: Vec<InFlight>,
    /// How far behind the store is: the age of the oldest batch in flight, in seconds (0:
    /// the store holds everything the planner sent; notifications still waiting in the
    /// events queue are on top of this).
    pub behind_seconds: i64,
}

fn seconds_since(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
}

async fn watch_status(
    records: &Records,
    repo: Option<&floe_store::Repository>,
    events_queue: QueueStatus,
) -> Result<WatchStatus> {
    let state = records.watch().await?.unwrap_or_default();
    let groups: Vec<String> = state.in_flight.keys().cloned().collect();
    let committed = match repo {
        Some(repo) => floe_store::commit::committed_batches(repo, &groups).await?,
        None => Default::default(),
    };
    let mut in_flight: Vec<InFlight> = state
        .in_flight
        .iter()
        .filter(|(g, sent)| committed.get(*g) != Some(&sent.batch_id))
        .map(|(g, sent)| InFlight {
            group: g.clone(),
            kind: sent.kind.clone(),
            files: sent.files,
            seconds: seconds_since(&sent.sent_at).unwrap_or(0),
        })
        .collect();
    in_flight.sort_by_key(|f| std::cmp::Reverse(f.seconds));
    Ok(WatchStatus {
        events_queue,
        seconds_since_last_event: state
            .last_event
            .as_ref()
            .and_then(|e| seconds_since(&e.seen_at)),
        last_event: state.last_event,
        events: state.events,
        ignored: state.ignored,
        behind_seconds: in_flight.first().map_or(0, |f| f.seconds),
        in_flight,
    })
}

impl Status {
    /// Every planned group is committed and the work and results queues are empty.
    pub fn finished(&self) -> bool {
        self.planned == self.committed
            && self
                .queues
                .iter()
                .filter(|q| !q.name.ends_with("dlq"))
                .all(|q| q.depth.total() == 0)
    }

    fn dead_letters(&self) -> u64 {
        self.queues
            .iter()
            .filter(|q| q.name.ends_with("dlq"))
            .map(|q| q.depth.total())
            .sum()
    }

    /// Nothing can move any more: only dead letters are left.
    pub fn stuck(&self) -> bool {
        !self.finished()
            && self
                .queues
                .iter()
                .filter(|q| !q.name.ends_with("dlq"))
                .all(|q| q.depth.total() == 0)
            && self.dead_letters() > 0
    }
}

/// Reads the fleet's state once.
pub async fn snapshot(config: &FleetConfig, commits: usize) -> Result<Status> {
    let client = floe_fleet::sqs::client().await;
    let mut queues = Vec::new();
    for (name, url) in [
        ("work", &config.work_queue_url),
        ("work-dlq", &config.work_dlq_url),
        ("results", &config.results_queue_url),
        ("results-dlq", &config.results_dlq_url),
        ("events", &config.events_queue_url),
        ("events-dlq", &config.events_dlq_url),
    ] {
        if let Some(url) = url {
            let depth = Queue::new(client.clone(), url.clone()).depth().await?;
            queues.push(QueueStatus {
                name,
                url: url.clone(),
                depth,
            });
        }
    }
    let options = config.source_options()?;
    let records = Records::new(config.require_fragments()?, options.clone());
    let plan = records.plan().await?.unwrap_or_default();
    let location = StoreLocation::parse(config.require_store()?)?;
    let repo = floe_store::open_existing(&location, &CloudSettings::for_source(&options)).await?;
    let groups: Vec<String> = plan.groups.keys().cloned().collect();
    let committed = match &repo {
        Some(repo) => floe_store::commit::committed(repo, &groups).await?,
        None => Default::default(),
    };
    let pending: Vec<String> = plan
        .groups
        .keys()
        .filter(|g| !committed.contains_key(*g))
        .cloned()
        .collect();
    let watch = match queues.iter().find(|q| q.name == "events") {
        Some(events) => Some(watch_status(&records, repo.as_ref(), events.clone()).await?),
        None => None,
    };
    Ok(Status {
        watch,
        queues,
        planned: plan.groups.len(),
        committed: plan.groups.len() - pending.len(),
        pending: pending.into_iter().take(50).collect(),
        partial: PartialGroup::among(&committed),
        recent_commits: match &repo {
            Some(repo) => floe_store::commit::log(repo, commits).await?,
            None => Vec::new(),
        },
    })
}

/// The readable form.
pub fn render(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "groups committed: {}/{}", s.committed, s.planned);
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>9} {:>8}",
        "queue", "waiting", "in flight", "delayed"
    );
    for q in &s.queues {
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>9} {:>8}",
            q.name, q.depth.visible, q.depth.in_flight, q.depth.delayed
        );
    }
    if !s.recent_commits.is_empty() {
        let _ = writeln!(out, "recent commits:");
        for c in &s.recent_commits {
            let _ = writeln!(
                out,
                "  {}  {}  {} group(s)  {}",
                &c.id,
                c.at,
                c.groups.len(),
                c.message
            );
        }
    }
    if let Some(w) = &s.watch {
        let _ = match (&w.last_event, w.seconds_since_last_event) {
            (Some(e), Some(ago)) => writeln!(
                out,
                "watch: {} notification(s) read; last {ago} s ago: {} {} (at {})",
                w.events, e.event, e.url, e.event_time
            ),
            _ => writeln!(out, "watch: no notification read yet"),
        };
        let _ = writeln!(
            out,
            "  store behind by {} s: {} batch(es) in flight, {} notification(s) waiting",
            w.behind_seconds,
            w.in_flight.len(),
            w.events_queue.depth.visible + w.events_queue.depth.delayed
        );
        for f in w.in_flight.iter().take(10) {
            let _ = writeln!(
                out,
                "    {} {} of {} file(s), sent {} s ago",
                f.group, f.kind, f.files, f.seconds
            );
        }
        for (reason, n) in &w.ignored {
            let _ = writeln!(out, "  ignored {n}: {reason}");
        }
    }
    if !s.partial.is_empty() {
        let _ = writeln!(
            out,
            "partial groups (written without the variables below; fix the file and enqueue again to add them): {}",
            s.partial.len()
        );
        for line in PartialGroup::lines(&s.partial) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if s.stuck() {
        let _ = writeln!(
            out,
            "{} message(s) in dead-letter queues: see `producer dlq list`, fix, then `producer dlq redrive`",
            s.dead_letters()
        );
    }
    out
}

/// Runs `status`.
pub async fn run(args: &StatusArgs) -> Result<Status> {
    let config = args.fleet.resolve().await?;
    if !args.watch {
        return snapshot(&config, args.commits).await;
    }
    let multi = MultiProgress::new();
    let groups = multi.add(ProgressBar::new(0));
    groups.set_style(
        ProgressStyle::with_template(
            "{prefix:<12} [{elapsed_precise}] {bar:40} {pos}/{len} groups committed",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    groups.set_prefix("store");
    let mut bars: Vec<ProgressBar> = Vec::new();
    loop {
        let s = snapshot(&config, args.commits).await?;
        if args.json {
            println!("{}", serde_json::to_string(&s)?);
        } else {
            groups.set_length(s.planned as u64);
            groups.set_position(s.committed as u64);
            while bars.len() < s.queues.len() {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{prefix:<12} {spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bars.push(bar);
            }
            for (bar, q) in bars.iter().zip(&s.queues) {
                bar.set_prefix(q.name);
                bar.set_message(format!(
                    "{} waiting, {} in flight, {} delayed",
                    q.depth.visible, q.depth.in_flight, q.depth.delayed
                ));
                bar.tick();
            }
        }
        if s.finished() || s.stuck() {
            groups.finish();
            for b in &bars {
                b.finish();
            }
            return Ok(s);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(s),
        }
    }
}
