//! Runs RabbitMQ's seven tutorials (the pika programs in `examples/tutorials/`)
//! against the broker, for every shard count, as subprocesses of `python3`
//! (or `$WARREN_TEST_PYTHON`), and checks what they print: hello world, work
//! queues (round-robin, fair dispatch with prefetch 1, redelivery when a worker
//! dies), publish/subscribe, routing, topics, RPC and publisher confirms.
//! Needs python3 with pika: without it every test fails with a clear message.

mod common;

use common::{strings, Broker, SHARD_COUNTS};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a tutorial program may take to print a line we wait for.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a program that runs to completion (a producer) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long after the last expected line we keep listening for extra ones.
const QUIET_PERIOD: Duration = Duration::from_millis(400);

/// Most output lines kept per program (the tutorials print a few dozen).
const MAX_LINES: usize = 10_000;

fn python() -> String {
    std::env::var("WARREN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn tutorial_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/tutorials")
}

/// Fails the test (never skips it) when python3 or pika is missing.
fn require_pika() {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import pika; print(pika.__version__)"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the tutorial tests need `{py}` with pika installed (pip install pika), \
                 but `{py}` could not be run: {e}"
            )
        });
    assert!(
        out.status.success(),
        "the tutorial tests need `{py}` with pika installed (pip install pika), \
         but `import pika` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Default)]
struct Output {
    lines: Vec<String>,
    /// stdout reached end of file (the program exited or closed it).
    eof: bool,
}

/// One running tutorial program whose stdout is collected line by line.
struct Script {
    label: String,
    child: Child,
    out: Arc<(Mutex<Output>, Condvar)>,
    err: Arc<Mutex<String>>,
}

impl Script {
    fn spawn(b: &Broker, script: &str, args: &[&str]) -> Script {
        let path = tutorial_dir().join(script);
        assert!(
            path.is_file(),
            "missing tutorial program {}",
            path.display()
        );
        let mut child = Command::new(python())
            .arg(&path)
            .args(args)
            .env("AMQP_URL", b.uri())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {script}: {e}", python()));
        let out = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let (m, cv) = &*out;
                    let mut o = m.lock().unwrap_or_else(|e| e.into_inner());
                    if o.lines.len() < MAX_LINES {
                        o.lines.push(line);
                    }
                    cv.notify_all();
                }
                let (m, cv) = &*out;
                m.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
                cv.notify_all();
            });
        }
        {
            let err = Arc::clone(&err);
            std::thread::spawn(move || {
                // Keep the first MAX_LINES lines, but drain it all so the
                // program never blocks on a full pipe.
                for (i, line) in BufReader::new(stderr).lines().enumerate() {
                    let Ok(line) = line else { break };
                    if i < MAX_LINES {
                        let mut e = err.lock().unwrap_or_else(|e| e.into_inner());
                        e.push_str(&line);
                        e.push('\n');
                    }
                }
            });
        }
        let label = if args.is_empty() {
            script.to_string()
        } else {
            format!("{script} {}", args.join(" "))
        };
        Script {
            label,
            child,
            out,
            err,
        }
    }

    fn lines(&self) -> Vec<String> {
        let (m, _) = &*self.out;
        m.lock().unwrap_or_else(|e| e.into_inner()).lines.clone()
    }

    fn describe(&self) -> String {
        format!(
            "`{}` printed:\n{}\nstderr:\n{}",
            self.label,
            self.lines().join("\n"),
            self.err.lock().unwrap_or_else(|e| e.into_inner())
        )
    }

    /// Waits until at least `n` stdout lines satisfy `pred`; panics with the
    /// program's output if that takes longer than `timeout` or it exits first.
    #[track_caller]
    fn wait_for<F: Fn(&str) -> bool>(&self, what: &str, n: usize, timeout: Duration, pred: F) {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.out;
        let mut o = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if o.lines.iter().filter(|l| pred(l)).count() >= n {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if o.eof || left.is_zero() {
                let why = if o.eof { "it exited" } else { "timed out" };
                drop(o);
                // Give the stderr reader a moment to collect a traceback.
                std::thread::sleep(Duration::from_millis(200));
                panic!("waiting for {n} x {what:?}: {why}; {}", self.describe());
            }
            o = cv
                .wait_timeout(o, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for a line equal to `line`.
    #[track_caller]
    fn wait_line(&self, line: &str) {
        self.wait_for(line, 1, LINE_TIMEOUT, |l| l == line);
    }

    /// Waits until `n` lines start with `prefix`.
    #[track_caller]
    fn wait_prefixed(&self, prefix: &str, n: usize) {
        self.wait_for(prefix, n, LINE_TIMEOUT, |l| l.starts_with(prefix));
    }

    fn count_prefixed(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// The lines that start with `prefix`, in order.
    fn prefixed(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// Waits (a bounded time) until the reader thread has seen end of file,
    /// so no line of an exited program is missed.
    fn wait_eof(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (m, cv) = &*self.out;
        let mut o = m.lock().unwrap_or_else(|e| e.into_inner());
        while !o.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "`{}` exited but its stdout stayed open",
                self.label
            );
            o = cv
                .wait_timeout(o, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} ----", self.describe());
        }
    }
}

/// Runs a program to completion (panics after `timeout`), asserts it exited
/// with status 0, and returns its stdout lines.
#[track_caller]
fn run(b: &Broker, script: &str, args: &[&str], timeout: Duration) -> Vec<String> {
    let mut s = Script::spawn(b, script, args);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match s.child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => panic!(
                "`{}` did not finish within {timeout:?}; {}",
                s.label,
                s.describe()
            ),
            Err(e) => panic!("waiting for `{}`: {e}", s.label),
        }
    };
    s.wait_eof();
    assert!(
        status.success(),
        "`{}` exited with {status}; {}",
        s.label,
        s.describe()
    );
    s.lines()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Against an external broker, deletes the tutorials' fixed-name queues left
/// over from earlier runs (a fresh Warren has none).
fn reset_queues(b: &Broker, queues: &[&str]) {
    if !b.is_external() {
        return;
    }
    rt().block_on(async {
        let conn = common::lapin_connect(b).await;
        let ch = conn.create_channel().await.expect("channel");
        for q in queues {
            ch.queue_delete((*q).into(), QueueDeleteOptions::default())
                .await
                .unwrap_or_else(|e| panic!("delete leftover queue {q}: {e}"));
        }
        let _ = conn.close(200, "OK".into()).await;
    });
}

/// Polls the queue's consumer count (passive queue.declare) until it is `n`.
fn wait_consumers(b: &Broker, queue: &str, n: u32) {
    rt().block_on(async {
        let conn = common::lapin_connect(b).await;
        let ch = conn.create_channel().await.expect("channel");
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let opts = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let q = ch
                .queue_declare(queue.into(), opts, FieldTable::default())
                .await
                .unwrap_or_else(|e| panic!("passive declare {queue}: {e}"));
            if q.consumer_count() == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "queue {queue} has {} consumers, wanted {n}",
                q.consumer_count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = conn.close(200, "OK".into()).await;
    });
}

/// Waits for each subscriber to print `expected.len()` lines with `prefix`,
/// then a little longer, and asserts it printed exactly `expected`.
#[track_caller]
fn assert_received(subscribers: &[(&Script, Vec<String>)], prefix: &str) {
    for (s, expected) in subscribers {
        if !expected.is_empty() {
            s.wait_prefixed(prefix, expected.len());
        }
    }
    std::thread::sleep(QUIET_PERIOD);
    for (s, expected) in subscribers {
        assert_eq!(&s.prefixed(prefix), expected, "`{}` received", s.label);
    }
}

// ------------------------------------------------------------ tutorial 1 ----

fn hello_world(b: &Broker) {
    reset_queues(b, &["hello"]);
    // The producer may run first: the durable queue keeps the message.
    let sent = run(b, "send.py", &[], RUN_TIMEOUT);
    assert_eq!(sent, strings(&[" [x] Sent 'Hello World!'"]));

    let receiver = Script::spawn(b, "receive.py", &[]);
    receiver.wait_line(" [*] Waiting for messages. To exit press CTRL+C");
    receiver.wait_line(" [x] Received Hello World!");

    // And while the consumer is running.
    let sent = run(b, "send.py", &[], RUN_TIMEOUT);
    assert_eq!(sent, strings(&[" [x] Sent 'Hello World!'"]));
    assert_received(
        &[(
            &receiver,
            strings(&[" [x] Received Hello World!", " [x] Received Hello World!"]),
        )],
        " [x] Received",
    );
}

#[test]
fn tutorial_1_hello_world() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        hello_world(&b);
    }
}

// ------------------------------------------------------------ tutorial 2 ----

const RECEIVED: &str = " [x] Received ";
const DONE: &str = " [x] Done";

fn work_queues(b: &Broker) {
    reset_queues(b, &["task_queue"]);
    let mut workers = [
        Script::spawn(b, "worker.py", &[]),
        Script::spawn(b, "worker.py", &[]),
    ];
    for w in &workers {
        w.wait_line(" [*] Waiting for messages. To exit press CTRL+C");
    }
    // worker.py prints its banner before basic.consume: wait for both.
    wait_consumers(b, "task_queue", 2);

    // Round-robin: idle consumers take turns.
    for i in 1..=4 {
        let task = format!("Task {i}");
        let sent = run(b, "new_task.py", &[&task], RUN_TIMEOUT);
        assert_eq!(sent, vec![format!(" [x] Sent {task}")]);
        // Each task is done before the next is sent.
        let total = |w: &[Script; 2]| w[0].count_prefixed(DONE) + w[1].count_prefixed(DONE);
        let deadline = Instant::now() + LINE_TIMEOUT;
        while total(&workers) < i {
            assert!(
                Instant::now() < deadline,
                "task {i} was not done; {} {}",
                workers[0].describe(),
                workers[1].describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let got: Vec<Vec<String>> = workers.iter().map(|w| w.prefixed(RECEIVED)).collect();
    let odd = strings(&[" [x] Received Task 1", " [x] Received Task 3"]);
    let even = strings(&[" [x] Received Task 2", " [x] Received Task 4"]);
    assert!(
        (got[0] == odd && got[1] == even) || (got[0] == even && got[1] == odd),
        "tasks were not distributed round-robin: {got:?}"
    );

    // Fair dispatch (prefetch 1): while one worker is busy with a slow task,
    // the quick ones all go to the other.
    let slow = "Slow task..........";
    run(b, "new_task.py", &[slow], RUN_TIMEOUT);
    let slow_line = format!("{RECEIVED}{slow}");
    let deadline = Instant::now() + LINE_TIMEOUT;
    let busy = loop {
        if let Some(i) = workers.iter().position(|w| w.lines().contains(&slow_line)) {
            break i;
        }
        assert!(Instant::now() < deadline, "nobody received the slow task");
        std::thread::sleep(Duration::from_millis(20));
    };
    let idle = 1 - busy;
    let busy_done = workers[busy].count_prefixed(DONE);
    let idle_done = workers[idle].count_prefixed(DONE);
    for i in 1..=3 {
        run(b, "new_task.py", &[&format!("Quick {i}")], RUN_TIMEOUT);
    }
    workers[idle].wait_prefixed(DONE, idle_done + 3);
    assert!(
        !workers[busy]
            .lines()
            .iter()
            .any(|l| l.starts_with(" [x] Received Quick")),
        "a busy worker (prefetch 1) got a quick task; {}",
        workers[busy].describe()
    );
    assert_eq!(
        &workers[idle].prefixed(RECEIVED)[2..],
        &strings(&[
            " [x] Received Quick 1",
            " [x] Received Quick 2",
            " [x] Received Quick 3"
        ])[..]
    );
    assert_eq!(
        workers[busy].count_prefixed(DONE),
        busy_done,
        "the 10 s slow task finished before the check (machine too slow for this test)"
    );

    // A worker that dies without acking: its task goes to the other worker.
    workers[busy].kill();
    workers[idle].wait_line(&slow_line);
}

#[test]
fn tutorial_2_work_queues() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        work_queues(&b);
    }
}

// ------------------------------------------------------------ tutorial 3 ----

fn publish_subscribe(b: &Broker) {
    let subscribers = [
        Script::spawn(b, "receive_logs.py", &[]),
        Script::spawn(b, "receive_logs.py", &[]),
    ];
    for s in &subscribers {
        s.wait_line(" [*] Waiting for logs. To exit press CTRL+C");
    }
    let sent = run(b, "emit_log.py", &[], RUN_TIMEOUT);
    assert_eq!(sent, strings(&[" [x] Sent info: Hello World!"]));
    let sent = run(
        b,
        "emit_log.py",
        &["warning:", "disk", "almost", "full"],
        RUN_TIMEOUT,
    );
    assert_eq!(sent, strings(&[" [x] Sent warning: disk almost full"]));
    let both = strings(&[" [x] info: Hello World!", " [x] warning: disk almost full"]);
    assert_received(
        &[(&subscribers[0], both.clone()), (&subscribers[1], both)],
        " [x] ",
    );
}

#[test]
fn tutorial_3_publish_subscribe() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        publish_subscribe(&b);
    }
}

// ------------------------------------------------------------ tutorial 4 ----

fn routing(b: &Broker) {
    let to_disk = Script::spawn(b, "receive_logs_direct.py", &["warning", "error"]);
    let to_screen = Script::spawn(b, "receive_logs_direct.py", &["info", "warning", "error"]);
    for s in [&to_disk, &to_screen] {
        s.wait_line(" [*] Waiting for logs. To exit press CTRL+C");
    }
    let logs = [
        ("error", "Run. Run. Or it will explode."),
        ("info", "All good"),
        ("warning", "Disk almost full"),
        ("debug", "Nobody listens to this"),
        ("error", "Out of memory"),
    ];
    for (severity, message) in logs {
        let sent = run(b, "emit_log_direct.py", &[severity, message], RUN_TIMEOUT);
        assert_eq!(sent, vec![format!(" [x] Sent {severity}:{message}")]);
    }
    let expect = |severities: &[&str]| -> Vec<String> {
        logs.iter()
            .filter(|(s, _)| severities.contains(s))
            .map(|(s, m)| format!(" [x] {s}:{m}"))
            .collect()
    };
    assert_received(
        &[
            (&to_disk, expect(&["warning", "error"])),
            (&to_screen, expect(&["info", "warning", "error"])),
        ],
        " [x] ",
    );
}

#[test]
fn tutorial_4_routing() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        routing(&b);
    }
}

// ------------------------------------------------------------ tutorial 5 ----

fn topics(b: &Broker) {
    let all = Script::spawn(b, "receive_logs_topic.py", &["#"]);
    let kern = Script::spawn(b, "receive_logs_topic.py", &["kern.*"]);
    let critical = Script::spawn(b, "receive_logs_topic.py", &["*.critical"]);
    let kern_or_critical = Script::spawn(b, "receive_logs_topic.py", &["kern.*", "*.critical"]);
    let animals = Script::spawn(
        b,
        "receive_logs_topic.py",
        &["*.orange.*", "*.*.rabbit", "lazy.#"],
    );
    let subscribers = [&all, &kern, &critical, &kern_or_critical, &animals];
    for s in subscribers {
        s.wait_line(" [*] Waiting for logs. To exit press CTRL+C");
    }
    // (routing key, which subscribers get it: all, kern, critical, both, animals)
    let logs: [(&str, [bool; 5]); 13] = [
        ("kern.critical", [true, true, true, true, false]),
        ("kern.info", [true, true, false, true, false]),
        ("cron.critical", [true, false, true, true, false]),
        ("quick.orange.rabbit", [true, false, false, false, true]),
        ("lazy.orange.elephant", [true, false, false, false, true]),
        ("quick.orange.fox", [true, false, false, false, true]),
        ("lazy.brown.fox", [true, false, false, false, true]),
        ("lazy.pink.rabbit", [true, false, false, false, true]),
        ("quick.brown.fox", [true, false, false, false, false]),
        ("orange", [true, false, false, false, false]),
        (
            "quick.orange.new.rabbit",
            [true, false, false, false, false],
        ),
        ("lazy.orange.new.rabbit", [true, false, false, false, true]),
        ("kern.critical.extra", [true, false, false, false, false]),
    ];
    for (i, (key, _)) in logs.iter().enumerate() {
        let message = format!("message {i}");
        let sent = run(b, "emit_log_topic.py", &[key, &message], RUN_TIMEOUT);
        assert_eq!(sent, vec![format!(" [x] Sent {key}:{message}")]);
    }
    let expected: Vec<(&Script, Vec<String>)> = subscribers
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let lines = logs
                .iter()
                .enumerate()
                .filter(|(_, (_, to))| to[j])
                .map(|(i, (key, _))| format!(" [x] {key}:message {i}"))
                .collect();
            (*s, lines)
        })
        .collect();
    assert_received(&expected, " [x] ");
}

#[test]
fn tutorial_5_topics() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        topics(&b);
    }
}

// ------------------------------------------------------------ tutorial 6 ----

fn rpc(b: &Broker) {
    reset_queues(b, &["rpc_queue"]);
    let server = Script::spawn(b, "rpc_server.py", &[]);
    server.wait_line(" [x] Awaiting RPC requests");
    let got = run(b, "rpc_client.py", &[], RUN_TIMEOUT);
    assert_eq!(
        got,
        strings(&[" [x] Requesting fib(30)", " [.] Got 832040"])
    );
    assert_eq!(server.prefixed(" [.] "), strings(&[" [.] fib(30)"]));
}

#[test]
fn tutorial_6_rpc() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        rpc(&b);
    }
}

// ------------------------------------------------------------ tutorial 7 ----

fn publisher_confirms(b: &Broker) {
    let got = run(b, "publisher_confirms.py", &[], Duration::from_secs(240));
    let strategies = [
        "Published 50,000 messages individually in ",
        "Published 50,000 messages in batch in ",
        "Published 50,000 messages and handled confirms asynchronously in ",
    ];
    assert_eq!(got.len(), strategies.len(), "output: {got:?}");
    for (line, prefix) in got.iter().zip(strategies) {
        let ms = line
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("unexpected line {line:?}, wanted {prefix:?}<n> ms"));
        assert!(
            !ms.is_empty() && ms.chars().all(|c| c.is_ascii_digit() || c == ','),
            "bad duration in {line:?}"
        );
    }
}

#[test]
fn tutorial_7_publisher_confirms() {
    require_pika();
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        publisher_confirms(&b);
    }
}
