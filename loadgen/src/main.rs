//! loadgen: Warren's benchmark harness (think RabbitMQ PerfTest). Drives
//! any AMQP 0-9-1 broker by URI with its own small client built on Warren's
//! codec. This file owns the command line dispatch: `run` (the default),
//! `scenarios`, `compare`.

mod cli;
mod client;
mod compare;
mod datafs;
mod ids;
mod memory;
mod report;
mod run;
mod saved;
mod stream;
mod sys;
mod targets;
mod topology;
mod uri;

use std::io::Write as _;
use std::process::ExitCode;

use cli::{Config, Mode};
use report::Report;

const HELP: &str = "\
loadgen — AMQP 0-9-1 load generator (PerfTest-style)

USAGE:
  loadgen [run] [FLAGS]                 one run, summary at the end
  loadgen scenarios                     list the named scenarios
  loadgen compare --a URI --b URI [--a-name N] [--b-name N] [--a-pid PID] [--b-pid PID]
                  [--rounds N] [--markdown FILE] [--targets FILE] [FLAGS | --scenario NAME]
                                        alternate A and B runs, print A/B ratios of the
                                        medians over the rounds; --targets appends the
                                        scenario's issue-15 target rows (A = Warren)
  loadgen merge --title T [--intro TEXT] [--a-name N] [--b-name N] --a FILE… --b FILE…
                [--markdown FILE] [--keep-failed]
                                        compare reports saved by separate runs (--save);
                                        --keep-failed also shows the figures of failed runs

FLAGS:
  --uri URI                  amqp://user:pass@host:port/vhost (default amqp://guest:guest@127.0.0.1:5672/%2f);
                             amqps://… for TLS, trusting the CA certificates in the PEM file $LOADGEN_TLS_CA
  --scenario NAME            start from a named scenario's flags (later flags override)
  -x, --producers N          producer channels (default 1)
  -y, --consumers N          consumer channels (default 1)
  -s, --size BYTES           body size, >= 8: the first 8 bytes carry the timestamp (default 16)
  -r, --rate N               msg/s per producer, 0 = unlimited (default 0)
  -z, --time SECONDS         run length (default 10 unless -C is given)
  -C, --pmessages N          messages per producer (0 = no limit)
  -c, --confirm N            publisher confirms, N unconfirmed per channel at most (0 = off)
  -f, --flag persistent      delivery_mode 2 and durable queues (also --persistent)
  -q, --qos N                consumer prefetch (0 = unlimited)
  -A, --multi-ack-every N    ack every N deliveries with multiple=true
  -a, --autoack              consume with no_ack
  --queues N                 queues (producer i -> queue i mod N, consumer j -> queue j mod N)
  --exchange-type T          direct | fanout | topic (default: the default exchange)
  --routing-key K            publish with K and bind every queue with K
  --fanout N                 N queues bound to one fanout exchange
  --channels-per-connection K  producers/consumers share connections, K channels each
  --connections N            idle connections to open (mode idle-connections)
  --backlog N                messages to publish then drain (mode backlog, default 1000000)
  --mode M                   throughput | backlog | idle-connections | queues | fill | recover-wait
                             | ttl-expiry | nack-requeue | dlx-fan-in | delayed | ttl-memory
  --recovery N               fill: publish N; recover-wait: expect N (scenario recovery-1m)
  --expect N                 recover-wait: wait until the queue reports N ready messages
  --since-unix-ns T          recover-wait: time from T (ns since the epoch: when the broker
                             process started; default: when loadgen started)
  --ttl MS                   x-message-ttl of the queues that expire (ttl-expiry, ttl-memory,
                             dlx-fan-in --dlx-via ttl)
  --dead-letter              ttl-expiry: dead-letter expired messages to a consumed queue
  --requeues N               nack-requeue: requeue each message N times, then ack (default 3)
  --requeue-with nack|reject nack-requeue: how to requeue (default nack)
  --dlx-via reject|ttl       dlx-fan-in: how the --queues source queues dead-letter (default reject)
  --delay-min MS, --delay-max MS
                             delayed: x-delay spread by message id (default 0..2000)
  --rss-bound-mib M          ttl-memory: fail if the broker's RSS grows more than M MiB
  --save FILE                write the report for `loadgen merge`
  --queue-prefix P           queue/exchange name prefix (default loadgen)
  --broker-pid PID           also report the broker's CPU and RSS from /proc/PID
  --json FILE                write the summary as JSON
  --quiet                    no per-second progress lines
  --producer-sndbuf BYTES    SO_SNDBUF of producer sockets (default: the kernel's,
                             autotuned to megabytes; what waits there counts in e2e)
  --write-per-publish        one write syscall per publish (method + header + body) and per
                             ack, instead of batching up to 64 KiB per write
  --read-size BYTES          ask the kernel for at most BYTES per read (64..=1048576,
                             default 65536); applies to consumers and confirm readers
  --client-like              traffic like pika, amqprs or the Java client: --write-per-publish
                             and --read-size 4096 (unless given); acks as -A says (-A 1: one
                             basic.ack per delivery, each on its own write)
  --data-dir PATH            the broker's data directory, to report (and, for persistent runs,
                             check) its filesystem; without it, found from the regular files
                             --broker-pid has open. Persistent runs refuse a broker on tmpfs
";

fn run_config(cfg: &Config) -> Report {
    // A persistent run says which filesystem the broker's data is on and
    // refuses tmpfs before it starts.
    let fs_note = match datafs::check(cfg) {
        Ok(n) => n,
        Err(e) => {
            let name = cfg.scenario.as_deref().unwrap_or("custom");
            let mut r = Report::new(name, &cfg.uri.to_string(), "");
            r.error = Some(e);
            return r;
        }
    };
    let mut report = run_mode(cfg);
    report.notes.extend(fs_note);
    report
}

fn run_mode(cfg: &Config) -> Report {
    match cfg.mode {
        Mode::Throughput => run::run_throughput(cfg),
        Mode::Backlog => run::run_backlog(cfg),
        Mode::IdleConnections => memory::run_idle_connections(cfg),
        Mode::Queues => memory::run_queues(cfg),
        Mode::Fill => run::run_fill(cfg),
        Mode::RecoverWait => run::run_recover_wait(cfg),
        Mode::TtlExpiry => run::run_ttl_expiry(cfg),
        Mode::NackRequeue => run::run_nack_requeue(cfg),
        Mode::DlxFanIn => run::run_dlx_fan_in(cfg),
        Mode::Delayed => run::run_delayed(cfg),
        Mode::TtlMemory => run::run_ttl_memory(cfg),
    }
}

fn write_file(path: &std::path::Path, text: &str, append: bool) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads one side's saved reports and joins them.
fn read_side(files: &[std::path::PathBuf]) -> Result<Report, String> {
    let mut reports = Vec::with_capacity(files.len());
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if meta.len() > saved::MAX_SAVED_BYTES as u64 {
            return Err(format!("{}: too large for a saved report", f.display()));
        }
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        reports.push(saved::parse_lines(&text).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(saved::join(reports))
}

/// `loadgen merge`: one comparison table from reports saved by separate
/// runs. Fails (after printing) when either side's run failed.
fn merge(args: &[String]) -> Result<(), String> {
    let mc = cli::parse_merge(args)?;
    let a = vec![read_side(&mc.a_files)?];
    let b = vec![read_side(&mc.b_files)?];
    // --keep-failed: the medians include failed runs (listed under the table).
    let counted = |side: &[Report]| -> Vec<Report> {
        side.iter()
            .cloned()
            .map(|mut r| {
                if mc.keep_failed {
                    r.error = None;
                }
                r
            })
            .collect()
    };
    let rows = compare::summarize(&counted(&a), &counted(&b));
    let md = compare::markdown_section(
        &mc.title,
        &mc.intro,
        (&mc.a_name, &mc.b_name),
        &rows,
        &a,
        &b,
    );
    print!("{md}");
    if let Some(path) = &mc.markdown {
        write_file(path, &md, true)?;
    }
    match (compare::failures(&a), compare::failures(&b)) {
        (None, None) => Ok(()),
        _ => Err("a merged run failed".to_string()),
    }
}

fn main() -> ExitCode {
    sys::now_ns(); // pin the clock epoch before any thread starts
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.first().map(|s| s.as_str()) {
        Some("run") => ("run", &args[1..]),
        Some("scenarios") => ("scenarios", &args[1..]),
        Some("compare") => ("compare", &args[1..]),
        Some("merge") => ("merge", &args[1..]),
        Some("help" | "--help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        _ => ("run", &args[..]),
    };
    match cmd {
        "scenarios" => {
            for s in cli::SCENARIOS {
                println!("{:<24} {}", s.name, s.description);
                println!("{:<24} flags: {}", "", s.args.join(" "));
            }
            ExitCode::SUCCESS
        }
        "compare" => {
            let cc = match cli::parse_compare(rest) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    return ExitCode::from(2);
                }
            };
            let (a, b) = compare::run_compare(&cc, &run_config);
            let rows = compare::summarize(&a, &b);
            print!("{}", compare::table(&cc, &rows, &a, &b));
            let mut status = ExitCode::SUCCESS;
            if let Some(path) = &cc.markdown {
                if let Err(e) = write_file(path, &compare::markdown(&cc, &rows, &a, &b), true) {
                    eprintln!("loadgen: {e}");
                    status = ExitCode::FAILURE;
                }
            }
            if let Some(path) = &cc.targets {
                let scenario = cc.run.scenario.as_deref().unwrap_or("custom");
                let md = targets::rows_markdown(scenario, &rows, (&cc.a_name, &cc.b_name));
                if let Err(e) = write_file(path, &md, true) {
                    eprintln!("loadgen: {e}");
                    status = ExitCode::FAILURE;
                }
            }
            if let Some(path) = &cc.run.json {
                if let Err(e) = write_file(path, &compare::to_json(&cc, &rows, &a, &b), false) {
                    eprintln!("loadgen: {e}");
                    status = ExitCode::FAILURE;
                }
            }
            if compare::failures(&a).is_some() || compare::failures(&b).is_some() {
                status = ExitCode::FAILURE;
            }
            status
        }
        "merge" => match merge(rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            let cfg = match cli::parse_run(rest) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    return ExitCode::from(2);
                }
            };
            let report = run_config(&cfg);
            print!("{}", report.table());
            if let Some(path) = &cfg.json {
                if let Err(e) = write_file(path, &report.to_json(), false) {
                    eprintln!("loadgen: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if let Some(path) = &cfg.save {
                if let Err(e) = write_file(path, &saved::to_lines(&report), false) {
                    eprintln!("loadgen: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if report.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
