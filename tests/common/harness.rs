//! The broker process a test runs against (or the external broker it is pointed at), and the test-wide basics: unique names, time limits, skipping.

use super::watchdog_record::{self, RunEnd};
use super::*;
use std::sync::atomic::AtomicBool;

/// How long dropping a broker waits for it to stop after SIGTERM (so that
/// it reports its watchdog firings) before it is killed.
const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the harness waits for a stopped broker's last stderr lines.
const STDERR_EOF_TIMEOUT: Duration = Duration::from_secs(2);

/// A running broker for one test.
pub struct Broker {
    child: Option<Child>,
    external_uri: Option<String>,
    host: String,
    port: u16,
    shards: usize,
    log: Arc<Mutex<Vec<String>>>,
    /// Set once the broker's stderr is closed (every line is in `log`).
    stderr_eof: Arc<AtomicBool>,
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

    /// Starts a broker with extra command-line flags (alarms, management port…).
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
            stderr_eof: Arc::new(AtomicBool::new(true)),
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
    /// port (and so a free management port), `data_dir`, `shards`, then `extra`;
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
        let stderr_eof = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<String>();
        let echo = std::env::var("WARREN_TEST_LOG").is_ok_and(|v| v == "1");
        {
            let log = Arc::clone(&log);
            let stderr_eof = Arc::clone(&stderr_eof);
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
                stderr_eof.store(true, Ordering::SeqCst);
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
            stderr_eof,
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

    /// Whether a stderr line containing `needle` shows up within 5 s.
    /// stderr is read by a thread of its own, so a line the broker wrote
    /// before answering a request may reach `log()` after the answer.
    #[allow(dead_code)]
    pub fn logs_within(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if self.log().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                self.ended(pid, exited(&status));
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
        let pid = child.id();
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            self.ended(pid, exited(&status));
            return Some(status);
        }
        match self.signal_and_wait_for(sig, EXIT_TIMEOUT) {
            Some(status) => {
                let end = if sig == libc::SIGKILL {
                    RunEnd::Killed { why: "sigkill" }
                } else {
                    exited(&status)
                };
                self.ended(pid, end);
                Some(status)
            }
            None => {
                self.ended(
                    pid,
                    RunEnd::Killed {
                        why: "no-exit-in-time",
                    },
                );
                panic!(
                    "warren did not exit within {EXIT_TIMEOUT:?} of signal {sig}; stderr:\n{}",
                    self.log().join("\n")
                );
            }
        }
    }

    /// Sends `sig` to the running child and waits up to `wait` for it to
    /// exit: its status, or None after killing it (SIGKILL) at the
    /// deadline. The child is gone either way.
    fn signal_and_wait_for(&mut self, sig: libc::c_int, wait: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child's pid, which has not been reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
        let deadline = Instant::now() + wait;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// Records how the broker's run ended (`watchdog_record`), once its
    /// stderr is read to the end.
    fn ended(&self, pid: u32, end: RunEnd<'_>) {
        let deadline = Instant::now() + STDERR_EOF_TIMEOUT;
        while !self.stderr_eof.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        watchdog_record::record(&self.log(), pid, self.shards, end);
    }
}

/// The end of a run whose process exited with `status`.
fn exited(status: &ExitStatus) -> RunEnd<'static> {
    RunEnd::Exited {
        success: status.success(),
    }
}

impl Drop for Broker {
    /// Stops a broker still running with SIGTERM, so that it reports its
    /// watchdog firings, and kills it if it does not stop in time.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let pid = child.id();
            let end = match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    exited(&status)
                }
                _ => match self.signal_and_wait_for(libc::SIGTERM, DROP_STOP_TIMEOUT) {
                    Some(status) => exited(&status),
                    None => RunEnd::Killed {
                        why: "drop-stop-timeout",
                    },
                },
            };
            self.ended(pid, end);
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

/// VmRSS of a process (/proc/PID/status), in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Samples a process's RSS every 10 ms on a thread until dropped; `peak`
/// is the highest seen so far.
pub struct RssSampler {
    peak: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let peak = std::sync::Arc::new(AtomicU64::new(rss_bytes(pid)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
