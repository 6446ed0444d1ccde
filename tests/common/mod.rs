//! Integration-test harness: starts a Warren broker process per test (or points
//! at an external broker named by `WARREN_TEST_EXTERNAL_URI`, to check the
//! tests themselves against real RabbitMQ), connects lapin and amqprs clients,
//! and offers small helpers (unique names, timeouts, error inspection,
//! queue-placement arguments, `warren ctl` listings, and the lapin helpers
//! several test files share: confirm channels, confirmed publishes, drains,
//! ready counts). `raw` is a minimal hand-rolled AMQP client for tests that
//! need byte-level control of the socket.
//!
//! A test (or a part of one) that cannot run against an external broker
//! starts with `if skip_if_external("why") { return; }`, which says so.

#![allow(dead_code)]

pub mod raw;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shard counts every behaviour test runs with.
pub const SHARD_COUNTS: [usize; 2] = [1, 2];

/// How long a broker may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `stop`/`kill` wait for the process to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default per-test time limit used by [`within`].
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable naming an external broker to test instead of Warren.
pub const EXTERNAL_ENV: &str = "WARREN_TEST_EXTERNAL_URI";

/// Most stderr lines kept per broker (older ones are dropped).
const MAX_LOG_LINES: usize = 10_000;

/// A running broker for one test.
pub struct Broker {
    child: Option<Child>,
    external_uri: Option<String>,
    host: String,
    port: u16,
    shards: usize,
    log: Arc<Mutex<Vec<String>>>,
    _data_dir: Option<tempfile::TempDir>,
    data_path: Option<PathBuf>,
}

impl Broker {
    /// Starts a broker with `shards` shards on a fresh temporary data dir.
    pub fn start(shards: usize) -> Broker {
        if let Some(b) = Broker::external(shards) {
            return b;
        }
        let dir = temp_dir("warren-test-");
        let path = dir.path().to_path_buf();
        let mut b = Broker::spawn(shards, &path);
        b._data_dir = Some(dir);
        b
    }

    /// Starts a broker with extra command-line flags (alarms, admin port…).
    #[allow(dead_code)]
    pub fn start_with_args(shards: usize, extra: &[&str]) -> Broker {
        if let Some(b) = Broker::external(shards) {
            return b;
        }
        let dir = temp_dir("warren-test-");
        let path = dir.path().to_path_buf();
        let mut b = Broker::spawn_with(shards, &path, extra);
        b._data_dir = Some(dir);
        b
    }

    /// Starts a broker on the given data dir (for restart tests).
    pub fn start_in(shards: usize, data_dir: &Path) -> Broker {
        if let Some(b) = Broker::external(shards) {
            return b;
        }
        Broker::spawn(shards, data_dir)
    }

    /// Starts a broker on the given data dir with extra flags.
    #[allow(dead_code)]
    pub fn start_in_with(shards: usize, data_dir: &Path, extra: &[&str]) -> Broker {
        if let Some(b) = Broker::external(shards) {
            return b;
        }
        Broker::spawn_with(shards, data_dir, extra)
    }

    /// Starts a Warren broker on the given data dir with extra flags and
    /// environment variables (test-only fault injection). Never external:
    /// callers skip first when `EXTERNAL_ENV` is set.
    #[allow(dead_code)]
    pub fn start_in_with_env(
        shards: usize,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Broker {
        Broker::spawn_with_env(shards, data_dir, extra, env)
    }

    fn external(shards: usize) -> Option<Broker> {
        let uri = std::env::var(EXTERNAL_ENV).ok().filter(|s| !s.is_empty())?;
        let (host, port) = parse_host_port(&uri);
        Some(Broker {
            child: None,
            external_uri: Some(uri),
            host,
            port,
            shards,
            log: Arc::new(Mutex::new(Vec::new())),
            _data_dir: None,
            data_path: None,
        })
    }

    fn spawn(shards: usize, data_dir: &Path) -> Broker {
        Broker::spawn_with(shards, data_dir, &[])
    }

    fn spawn_with(shards: usize, data_dir: &Path, extra: &[&str]) -> Broker {
        Broker::spawn_with_env(shards, data_dir, extra, &[])
    }

    /// The broker command line every test start uses: loopback, a free
    /// port (and so a free admin port), `data_dir`, `shards`, then `extra`;
    /// `env` added to the environment; stdin and stdout closed, stderr piped.
    fn command(shards: usize, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
        assert!(shards >= 1, "a broker needs at least one shard");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(["--bind", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(["--shards", &shards.to_string()])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the broker as [`Broker::start_in_with`] would, for a start that
    /// must fail: waits up to `secs` for the process to exit on its own
    /// (panics, after SIGKILL, if it keeps running) and returns its exit
    /// status and everything it wrote to stderr. Never external.
    pub fn run_to_exit(
        shards: usize,
        data_dir: &Path,
        extra: &[&str],
        secs: u64,
    ) -> (ExitStatus, String) {
        let mut child = Broker::command(shards, data_dir, extra, &[])
            .spawn()
            .expect("spawn the warren binary");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for warren") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "warren (--shards {shards} {extra:?} on {}) kept running for {secs} s; \
                     it was expected to refuse to start",
                    data_dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr)
            .expect("read stderr");
        (status, stderr)
    }

    fn spawn_with_env(
        shards: usize,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Broker {
        let mut child = Broker::command(shards, data_dir, extra, env)
            .spawn()
            .expect("spawn the warren binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let echo = std::env::var("WARREN_TEST_LOG").is_ok_and(|v| v == "1");
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("[warren] {line}");
                    }
                    {
                        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                        if l.len() >= MAX_LOG_LINES {
                            l.remove(0);
                        }
                        l.push(line.clone());
                    }
                    // The receiver goes away once the broker is up; keep draining.
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let prefix = "warren: listening on ";
        let suffix = format!(" (shards: {shards})");
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        let addr = rest.strip_suffix(&suffix).unwrap_or_else(|| {
                            panic!("unexpected listening line {line:?} (wanted shards: {shards})")
                        });
                        let port = addr
                            .rsplit_once(':')
                            .and_then(|(_, p)| p.parse::<u16>().ok())
                            .unwrap_or_else(|| panic!("no port in listening line {line:?}"));
                        break port;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let captured = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                    panic!(
                        "warren did not print its listening line within {START_TIMEOUT:?} \
                         (exit: {status:?}); stderr:\n{captured}"
                    );
                }
            }
        };
        assert_ne!(port, 0, "broker reported port 0");
        Broker {
            child: Some(child),
            external_uri: None,
            host: "127.0.0.1".to_string(),
            port,
            shards,
            log,
            _data_dir: None,
            data_path: Some(data_dir.to_path_buf()),
        }
    }

    /// The broker process's id (None for an external broker).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (or the external URI).
    pub fn uri(&self) -> String {
        match &self.external_uri {
            Some(u) => u.clone(),
            None => format!("amqp://guest:guest@{}:{}/%2f", self.host, self.port),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, for raw sockets.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn is_external(&self) -> bool {
        self.external_uri.is_some()
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The data dir the broker was started on (None for an external broker).
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_path.as_deref()
    }

    /// The stderr lines captured so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGTERM, wait, and assert the process exited with code 0.
    /// No-op for an external broker.
    pub fn stop(&mut self) {
        let Some(status) = self.signal_and_wait(libc::SIGTERM) else {
            return;
        };
        assert!(
            status.success(),
            "warren exited with {status:?} after SIGTERM; stderr:\n{}",
            self.log().join("\n")
        );
    }

    /// SIGKILL and wait. No-op for an external broker.
    pub fn kill(&mut self) {
        let _ = self.signal_and_wait(libc::SIGKILL);
    }

    /// Waits up to `secs` for the process to exit on its own (a test crash
    /// point, say) and returns its status; None if it is still running then
    /// (or there is no process: external, or already stopped).
    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` and waits for exit; returns None if there is no child.
    /// Panics (after SIGKILL) if it does not exit in time.
    fn signal_and_wait(&mut self, sig: libc::c_int) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            return Some(status);
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child's pid, which has not been reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    panic!(
                        "warren did not exit within {EXIT_TIMEOUT:?} of signal {sig}; stderr:\n{}",
                        self.log().join("\n")
                    );
                }
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let echo_all = std::env::var("WARREN_TEST_LOG").is_ok_and(|v| v == "1");
        if std::thread::panicking() && !echo_all && !self.is_external() {
            let log = self.log();
            eprintln!(
                "---- warren stderr ({} shards, port {}) ----\n{}\n---- end warren stderr ----",
                self.shards,
                self.port,
                log.join("\n")
            );
        }
    }
}

/// Extracts `(host, port)` from `amqp://user:pass@host:port/vhost`.
fn parse_host_port(uri: &str) -> (String, u16) {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse().unwrap_or_else(|_| panic!("bad port in {uri}")),
        ),
        None => (hostport.to_string(), 5672),
    }
}

/// Whether the tests run against an external broker ([`EXTERNAL_ENV`]).
pub fn external() -> bool {
    std::env::var(EXTERNAL_ENV).is_ok_and(|v| !v.is_empty())
}

/// True against an external broker, after saying on stderr that (and why)
/// the test, or the part of it the caller guards, is skipped:
/// `<test>: skipped against an external broker: <why>`. Use it as
/// `if skip_if_external("why") { return; }` (or `continue`).
pub fn skip_if_external(why: &str) -> bool {
    if !external() {
        return false;
    }
    // libtest runs each test on a thread named after it.
    match std::thread::current().name() {
        Some(test) if test != "main" => {
            eprintln!("{test}: skipped against an external broker: {why}")
        }
        _ => eprintln!("skipped against an external broker: {why}"),
    }
    true
}

/// A fresh temporary directory named `<prefix>…`, removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}

/// A name no other test (or earlier run against an external broker) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Runs `fut` under [`TEST_TIMEOUT`]; panics if it takes longer.
pub async fn within<F: Future>(fut: F) -> F::Output {
    within_secs(TEST_TIMEOUT.as_secs(), fut).await
}

/// Runs `fut` under a limit of `secs` seconds; panics if it takes longer.
pub async fn within_secs<F: Future>(secs: u64, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("test step timed out after {secs} s"),
    }
}

// ---------------------------------------------------------------- lapin ----

/// Connects lapin to the broker (guest/guest, vhost `/`).
pub async fn lapin_connect(b: &Broker) -> lapin::Connection {
    within_secs(
        20,
        lapin::Connection::connect(&b.uri(), lapin::ConnectionProperties::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("lapin connect to {}: {e}", b.uri()))
}

/// The AMQP reply code and text carried by a lapin error, if it is one.
pub fn lapin_amqp_error(e: &lapin::Error) -> Option<(u16, String)> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => Some((err.get_id(), err.get_message().to_string())),
        _ => None,
    }
}

/// Asserts that a lapin result failed with AMQP reply `code` and exact `text`.
#[track_caller]
pub fn assert_lapin_error<T: std::fmt::Debug>(r: Result<T, lapin::Error>, code: u16, text: &str) {
    match r {
        Ok(v) => panic!("expected AMQP error {code} {text:?}, got Ok({v:?})"),
        Err(e) => match lapin_amqp_error(&e) {
            Some((c, t)) => {
                assert_eq!(c, code, "reply code (text {t:?})");
                assert_eq!(t, text, "reply text");
            }
            None => panic!("expected AMQP error {code} {text:?}, got {e:?}"),
        },
    }
}

/// Asserts that a lapin result failed with AMQP reply `code` (any text);
/// returns the text.
#[track_caller]
pub fn assert_lapin_code<T: std::fmt::Debug>(r: Result<T, lapin::Error>, code: u16) -> String {
    match r {
        Ok(v) => panic!("expected AMQP error {code}, got Ok({v:?})"),
        Err(e) => match lapin_amqp_error(&e) {
            Some((c, t)) => {
                assert_eq!(c, code, "reply code (text {t:?})");
                t
            }
            None => panic!("expected AMQP error {code}, got {e:?}"),
        },
    }
}

/// Queue-declare arguments pinning the queue to `shard` (`x-warren-shard`),
/// or empty arguments for `None`.
pub fn lapin_placement_args(shard: Option<usize>) -> lapin::types::FieldTable {
    let mut t = lapin::types::FieldTable::default();
    if let Some(s) = shard {
        let s = i32::try_from(s).expect("shard index fits i32");
        t.insert("x-warren-shard".into(), lapin::types::AMQPValue::LongInt(s));
    }
    t
}

/// The placements a core test runs with on `b`: unpinned with one shard;
/// pinned to each shard in turn with several (one of them crosses shards
/// whichever shard the connection lands on).
pub fn placements(b: &Broker) -> Vec<Option<usize>> {
    if b.shards() <= 1 {
        vec![None]
    } else {
        (0..b.shards()).map(Some).collect()
    }
}

/// The last shard (None with one): with several shards, a queue placed
/// there is not on the shard of the leader, and usually not on the one a
/// connection lands on, so its traffic crosses shards.
pub fn last_shard(shards: usize) -> Option<usize> {
    (shards > 1).then_some(shards - 1)
}

/// Owned copies of `v`.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Delivery mode 2.
pub fn persistent() -> lapin::BasicProperties {
    lapin::BasicProperties::default().with_delivery_mode(2)
}

/// queue.declare options with `durable` set.
pub fn durable() -> lapin::options::QueueDeclareOptions {
    lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// queue.declare options with `passive` set.
pub fn passive() -> lapin::options::QueueDeclareOptions {
    lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

/// Message `i` of a numbered series: `<prefix>-<i, six digits>-` and 90
/// `x`, about 100 bytes (a few hundred fill a 64 KiB memory budget).
pub fn padded_body(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}-{}", "x".repeat(90))
}

/// Messages `0..n` of the [`padded_body`] series.
pub fn padded_bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| padded_body(prefix, i)).collect()
}

/// `(body, false)` for each body: never delivered before.
pub fn fresh(bodies: &[String]) -> Vec<(String, bool)> {
    bodies.iter().map(|b| (b.clone(), false)).collect()
}

/// The bodies of `(body, redelivered)` pairs.
pub fn bodies_only(got: Vec<(String, bool)>) -> Vec<String> {
    got.into_iter().map(|(body, _)| body).collect()
}

/// A new channel in confirm mode.
pub async fn confirm_channel(conn: &lapin::Connection) -> lapin::Channel {
    let ch = conn.create_channel().await.expect("channel.open");
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    ch
}

/// Declares queue `name` (durable or not) with the placement argument.
pub async fn declare_queue(
    ch: &lapin::Channel,
    name: &str,
    durable: bool,
    placement: Option<usize>,
) {
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        lapin_placement_args(placement),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes every body to `queue` through the default exchange on `ch` (a
/// confirm channel), pipelined, and asserts each was acked (and not
/// returned).
pub async fn publish_confirmed(
    ch: &lapin::Channel,
    queue: &str,
    bodies: &[String],
    props: lapin::BasicProperties,
) {
    let mut confirms = Vec::with_capacity(bodies.len());
    for b in bodies {
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                lapin::options::BasicPublishOptions::default(),
                b.as_bytes(),
                props.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("publish {b}: {e}"));
        confirms.push(c);
    }
    for c in confirms {
        match c.await.expect("confirm") {
            lapin::Confirmation::Ack(None) => {}
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// Takes every ready message of `queue` with basic.get (no-ack) on a fresh
/// channel: `(body, redelivered)` in queue order.
pub async fn drain(conn: &lapin::Connection, queue: &str) -> Vec<(String, bool)> {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap_or_else(|e| panic!("basic.get {queue}: {e}"))
    {
        let body = String::from_utf8(m.delivery.data).expect("utf-8 body");
        out.push((body, m.delivery.redelivered));
        assert!(out.len() <= 1_000_000, "runaway drain of {queue}");
    }
    let _ = ch.close(200, "".into()).await;
    out
}

/// Consumes `n` messages of `queue` on a fresh channel with manual acks
/// (prefetch 50), acking each: `(body, redelivered)` in arrival order.
pub async fn consume_acked(conn: &lapin::Connection, queue: &str, n: usize) -> Vec<(String, bool)> {
    use futures_lite::StreamExt;
    let ch = conn.create_channel().await.expect("channel.open");
    ch.basic_qos(50, lapin::options::BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "consume-acked".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = consumer
            .next()
            .await
            .expect("consumer stream ended")
            .expect("delivery");
        out.push((
            String::from_utf8(d.data.clone()).expect("utf-8"),
            d.redelivered,
        ));
        d.ack(lapin::options::BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = ch.close(200, "".into()).await;
    out
}

/// Ready-message count of `queue` via a passive declare on a fresh channel.
pub async fn ready_count(conn: &lapin::Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel.open");
    let q = ch
        .queue_declare(queue.into(), passive(), lapin::types::FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
    let _ = ch.close(200, "".into()).await;
    q.message_count()
}

/// Waits (about 5 s at most) until `queue` holds exactly `n` ready messages.
pub async fn wait_ready(conn: &lapin::Connection, queue: &str, n: u32) {
    let mut last = u32::MAX;
    for _ in 0..250 {
        last = ready_count(conn, queue).await;
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("queue {queue} holds {last} ready messages, wanted {n}");
}

// --------------------------------------------------------------- amqprs ----

/// Connects amqprs to the broker (guest/guest, vhost `/`).
pub async fn amqprs_connect(b: &Broker) -> amqprs::connection::Connection {
    amqprs_connect_as(b, "guest", "guest")
        .await
        .unwrap_or_else(|e| panic!("amqprs connect to {}: {e}", b.addr()))
}

/// Connects amqprs with the given credentials; returns the client's error.
pub async fn amqprs_connect_as(
    b: &Broker,
    user: &str,
    password: &str,
) -> Result<amqprs::connection::Connection, amqprs::error::Error> {
    let args = amqprs::connection::OpenConnectionArguments::new(b.host(), b.port(), user, password);
    within_secs(20, amqprs::connection::Connection::open(&args)).await
}

/// The `(reply_code, reply_text)` of every channel.close amqprs received on a
/// channel with an [`AmqprsCloseRecorder`] callback.
pub type CloseLog = Arc<Mutex<Vec<(u16, String)>>>;

/// `(reply_code, reply_text, body)` of every basic.return received.
pub type ReturnLog = Arc<Mutex<Vec<(u16, String, Vec<u8>)>>>;

/// An amqprs channel callback that records server-sent channel.close and
/// basic.return, and counts publisher acks.
#[derive(Clone, Default)]
pub struct AmqprsCloseRecorder {
    pub closes: CloseLog,
    pub returns: ReturnLog,
    pub acks: Arc<Mutex<Vec<(u64, bool)>>>,
}

#[async_trait::async_trait]
impl amqprs::callbacks::ChannelCallback for AmqprsCloseRecorder {
    async fn close(
        &mut self,
        _channel: &amqprs::channel::Channel,
        close: amqprs::CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        self.closes
            .lock()
            .unwrap()
            .push((close.reply_code(), close.reply_text().to_string()));
        Ok(())
    }
    async fn cancel(
        &mut self,
        _channel: &amqprs::channel::Channel,
        _cancel: amqprs::Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(
        &mut self,
        _channel: &amqprs::channel::Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _channel: &amqprs::channel::Channel, ack: amqprs::Ack) {
        self.acks
            .lock()
            .unwrap()
            .push((ack.delivery_tag(), ack.mutiple()));
    }
    async fn publish_nack(&mut self, _channel: &amqprs::channel::Channel, _nack: amqprs::Nack) {}
    async fn publish_return(
        &mut self,
        _channel: &amqprs::channel::Channel,
        ret: amqprs::Return,
        _basic_properties: amqprs::BasicProperties,
        content: Vec<u8>,
    ) {
        self.returns.lock().unwrap().push((
            ret.reply_code(),
            ret.reply_text().to_string(),
            content,
        ));
    }
}

/// Polls `cond` every 20 ms until it holds or `secs` pass; returns whether it held.
pub async fn eventually<F: FnMut() -> bool>(secs: u64, mut cond: F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------- admin ----

/// The admin address the broker printed at start.
#[allow(dead_code)]
pub fn admin_addr(b: &Broker) -> String {
    b.log()
        .iter()
        .find_map(|l| {
            l.split("admin endpoint on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("the broker prints its admin endpoint")
}

#[allow(dead_code)]
pub fn ctl(b: &Broker, command: &str) -> String {
    ctl_with(b, &[command])
}

/// Runs the real `warren ctl <words…>` against the broker; panics unless it
/// succeeds, returns what it printed.
#[allow(dead_code)]
pub fn ctl_with(b: &Broker, words: &[&str]) -> String {
    let out = ctl_output(b, words);
    assert!(
        out.status.success(),
        "warren ctl {words:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs the real `warren ctl <words…>` against the broker, whatever its
/// exit status (for usage errors).
pub fn ctl_output(b: &Broker, words: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ctl", "--admin", &admin_addr(b)])
        .args(words)
        .output()
        .expect("run warren ctl")
}

/// The value in column `column` (named in the header, the first
/// tab-separated line) of the row `row_name` of a `warren ctl` listing.
pub fn cell(listing: &str, row_name: &str, column: &str) -> String {
    let header: Vec<&str> = listing
        .lines()
        .find(|l| l.contains('\t'))
        .unwrap_or_else(|| panic!("no header line in:\n{listing}"))
        .split('\t')
        .collect();
    let i = header
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    row(listing, row_name)[i].clone()
}

/// [`cell`] as a number.
pub fn cell_num(listing: &str, row_name: &str, column: &str) -> u64 {
    let v = cell(listing, row_name, column);
    v.parse()
        .unwrap_or_else(|_| panic!("column {column} of {row_name} is not a number: {v:?}"))
}

/// Column `column` of row `row_name` of `warren ctl <command>` now.
pub fn ctl_cell(b: &Broker, command: &str, row_name: &str, column: &str) -> String {
    cell(&ctl(b, command), row_name, column)
}

/// [`ctl_cell`] as a number.
pub fn ctl_num(b: &Broker, command: &str, row_name: &str, column: &str) -> u64 {
    cell_num(&ctl(b, command), row_name, column)
}

/// Sends one plain HTTP/1.0 `request` to the admin endpoint at `admin`
/// (`host:port`) and returns the whole response (reads time out after 20 s).
pub fn admin_request(admin: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).expect("connect to the admin endpoint");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read response");
    response
}

/// The row of a tab-separated listing whose first column is `name`.
#[allow(dead_code)]
pub fn row(listing: &str, name: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row '{name}' in:\n{listing}"))
}

// --------------------------------------------------- channel-close probes ----

/// A basic.publish that the broker answers by closing the channel, sent on
/// a raw connection so that the exact close the broker sends can be checked
/// (lapin reports only "channel closing" when the close beats its probe).
pub struct RefusedPublish<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// The `reply-to` property (the only property sent), if any.
    pub reply_to: Option<&'a str>,
    pub body: &'a [u8],
}

/// Publishes `publish` on channel 1 of a fresh raw connection to `b`, then
/// sends basic.qos on the same channel as a synchronous probe. The broker
/// must answer with a channel.close on channel 1 carrying reply `code` and
/// exactly `text` (the probe, sent after the publish, is discarded and never
/// answered; a connection.close or any other method fails the assertion).
/// Then only the channel must be closed: after channel.close-ok, channel 2
/// opens and answers basic.qos, and the connection closes cleanly.
///
/// Runs the blocking raw client on a blocking thread; its reads time out
/// after 10 s, so a broker that never answers fails instead of hanging.
pub async fn assert_publish_closes_channel(
    b: &Broker,
    publish: RefusedPublish<'_>,
    code: u16,
    text: &str,
) {
    let addr = b.addr();
    let exchange = publish.exchange.to_string();
    let routing_key = publish.routing_key.to_string();
    let reply_to = publish.reply_to.map(str::to_string);
    let body = publish.body.to_vec();
    let expected = (code, text.to_string());
    let probe = tokio::task::spawn_blocking(move || {
        let (mut c, tune) = raw::RawConn::open(&addr);
        c.channel_open(1);
        raw_publish(
            &mut c,
            1,
            &exchange,
            &routing_key,
            reply_to.as_deref(),
            &body,
            tune.frame_max,
        );
        let qos = raw::Args::new().long(0).short(1).bits(&[false]).done();
        c.send_method(1, 60, 10, &qos);
        let m = c.expect_method();
        assert!(
            (m.channel, m.class, m.method) != (0, 10, 50),
            "expected channel.close {expected:?} on channel 1, got connection.close {:?}",
            m.close_reason()
        );
        assert_eq!(
            (m.channel, m.class, m.method),
            (1, 20, 40),
            "expected channel.close {expected:?} on channel 1 in answer to the \
             publish and the probe, got {m:?}"
        );
        assert_eq!(
            m.close_reason(),
            expected,
            "channel.close reply code and text"
        );
        // channel.close-ok; the connection and other channels are unaffected.
        c.send_method(1, 20, 41, &[]);
        c.channel_open(2);
        c.basic_qos(2, 1);
        let close = raw::Args::new()
            .short(200)
            .shortstr("OK")
            .short(0)
            .short(0)
            .done();
        c.send_method(0, 10, 50, &close);
        let ok = c.expect_method();
        assert_eq!(
            (ok.channel, ok.class, ok.method),
            (0, 10, 51),
            "connection.close-ok: {ok:?}"
        );
    });
    if let Err(e) = probe.await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// basic.publish of `body` in body frames of at most `frame_max` bytes,
/// with no properties but `reply-to` when given.
pub fn raw_publish(
    c: &mut raw::RawConn,
    channel: u16,
    exchange: &str,
    routing_key: &str,
    reply_to: Option<&str>,
    body: &[u8],
    frame_max: u32,
) {
    let Some(reply_to) = reply_to else {
        c.basic_publish(channel, exchange, routing_key, body, frame_max);
        return;
    };
    let args = raw::Args::new()
        .short(0)
        .shortstr(exchange)
        .shortstr(routing_key)
        .bits(&[false, false])
        .done();
    c.send_method(channel, 60, 40, &args);
    // Property flags: reply-to is bit 9 (content-type is bit 15).
    let header = raw::Args::new()
        .short(60)
        .short(0)
        .longlong(body.len() as u64)
        .short(1 << 9)
        .shortstr(reply_to)
        .done();
    c.send_frame(raw::FRAME_HEADER, channel, &header);
    let chunk = (frame_max as usize).saturating_sub(8).max(1);
    for part in body.chunks(chunk) {
        c.send_frame(raw::FRAME_BODY, channel, part);
    }
}
