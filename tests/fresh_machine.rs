//! The README's promise on a fresh machine: its first command, read from
//! README.md and run exactly as written (`sh -c`) in a new empty directory
//! inside the checkout, starts a broker on port 5672 with the default
//! (relative) data dir; a persistent message confirmed before SIGTERM is
//! there after the same command runs again. And a port warren is to serve
//! (AMQP or management) that is taken makes it exit with status 1 and a message.

mod common;

use common::within_secs;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The port the README's command serves.
const PORT: u16 = 5672;

/// How long the first start may take: on a fresh machine the command first
/// builds the release binary (a nested `cargo run --release`).
const FIRST_START: Duration = Duration::from_secs(45 * 60);
const RESTART: Duration = Duration::from_secs(120);

/// The README's first code block: (command that runs the broker, command
/// that runs the tests), comments and blank lines skipped.
fn readme_commands() -> (String, String) {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let block = readme
        .split("```")
        .nth(1)
        .expect("README.md opens with a code block");
    let mut commands = block
        .lines()
        .skip(1) // the info string (`sh`)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let run = commands.next().expect("a command that runs the broker");
    let test = commands.next().expect("a command that runs the tests");
    (run.to_string(), test.to_string())
}

/// The README's command running in its own process group; on drop the
/// whole group is killed (so no broker outlives a failed test) and the
/// working directory (with the data dir) removed.
struct Started {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Started {
    fn run(command: &str, dir: &Path) -> Started {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The variables `cargo test` sets for a test binary are not in a
        // user's shell, and a nested cargo that sees them rebuilds: `ring`'s
        // build script is rerun when CARGO_MANIFEST_DIR changes, and with it
        // the whole release binary CI built just before (2.5 minutes).
        for (name, _) in std::env::vars_os() {
            if set_by_cargo_test(&name.to_string_lossy()) {
                cmd.env_remove(&name);
            }
        }
        // A nested cargo of the same profile as this test would wait for the
        // build directory lock the outer `cargo test` holds: give it its own.
        if let Some(target) = nested_target_dir() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let mut child = cmd.spawn().expect("spawn sh -c <README command>");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("WARREN_TEST_LOG").is_some() {
                    eprintln!("[readme command] {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Started {
            child,
            lines,
            log: Vec::new(),
        }
    }

    fn pgid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Waits for the listening line; panics (with the output) otherwise.
    fn wait_listening(&mut self, limit: Duration) {
        let expected = format!("warren: listening on 127.0.0.1:{PORT} ");
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(line) => {
                    let done = line.starts_with(&expected);
                    self.log.push(line);
                    if done {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        self.fail(&format!("the README command exited with {status}"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail(&format!(
                    "no listening line from the README command within {} s",
                    limit.as_secs()
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    self.fail(&format!(
                        "the README command closed its output without a listening line \
                         ({status:?})"
                    ))
                }
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        panic!("{why}; its output:\n{}", self.log.join("\n"));
    }

    /// SIGTERM to the whole group (the shell may not exec cargo, and cargo
    /// execs warren); waits until every process of it closed its stderr,
    /// and asserts that warren shut down cleanly.
    fn terminate(&mut self) {
        // SAFETY: signalling the process group this test created.
        unsafe { libc::kill(-self.pgid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.fail("the broker did not stop within 60 s of SIGTERM")
                }
            }
        }
        let status = self.child.wait().expect("wait for sh");
        // The shell itself dies of the SIGTERM unless it exec'd cargo.
        let by_sigterm =
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGTERM);
        if !(status.success() || by_sigterm) {
            self.fail(&format!("the README command exited with {status}"));
        }
        if !self.log.iter().any(|l| l == "warren: stopped") {
            self.fail("warren did not stop cleanly on SIGTERM");
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // SAFETY: killing the process group this test created (a no-op once
        // it is gone).
        unsafe { libc::kill(-self.pgid(), libc::SIGKILL) };
        let _ = self.child.wait();
        // The shell is gone; wait (a little) for the rest of its group.
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only checks whether the group still exists.
        while unsafe { libc::kill(-self.pgid(), 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `cargo test` sets the environment variable `name` for the test
/// binary it runs (rather than a user setting it to configure cargo, as
/// CARGO_HOME, CARGO_TARGET_DIR or CARGO_BUILD_JOBS).
fn set_by_cargo_test(name: &str) -> bool {
    const SET_FOR_TESTS: [&str; 7] = [
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    SET_FOR_TESTS.contains(&name)
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

/// `Some(dir)` when this test was built with the release profile, whose
/// build directory the outer `cargo test --release` keeps locked.
fn nested_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?.parent()?; // target/<profile>/deps/<exe>
    (profile.file_name()? == "release").then(|| profile.parent().unwrap().join("fresh-machine"))
}

/// Nothing accepts connections on the port (a bind test would also trip
/// over the TIME_WAIT sockets a broker that just stopped leaves behind).
fn port_is_free(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

#[test]
fn readme_first_command_runs_the_broker_and_keeps_data_across_restarts() {
    if std::env::var(common::EXTERNAL_ENV).is_ok_and(|v| !v.is_empty()) {
        eprintln!("skipped: runs the README's command itself, not an external broker");
        return;
    }
    let (run, test) = readme_commands();
    assert_eq!(test, "cargo test --workspace", "README's second command");
    assert!(
        port_is_free(PORT),
        "port {PORT} is taken: the README's command serves it, so this test needs it free \
         (stop whatever listens there)"
    );
    assert!(
        port_is_free(PORT + 10000),
        "port {} (the default admin port) is taken: the README's command serves it",
        PORT + 10000
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("fresh-machine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the working dir");
    let work = WorkDir(dir.clone());

    let started = Instant::now();
    let mut broker = Started::run(&run, &work.0);
    broker.wait_listening(FIRST_START);
    eprintln!(
        "README command listening after {:.1} s (includes any build)",
        started.elapsed().as_secs_f64()
    );
    let queue = "fresh-machine-durable";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(within_secs(60, async {
        let conn = connect().await;
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_purge(queue.into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b"kept across restarts",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "publish confirmed: {confirm:?}");
        conn.close(200, "bye".into()).await.unwrap();
    }));
    broker.terminate();
    assert!(
        dir.join("warren-data").is_dir(),
        "the default data dir ./warren-data is in the working directory"
    );
    drop(broker);

    let mut broker = Started::run(&run, &work.0);
    broker.wait_listening(RESTART);
    rt.block_on(within_secs(60, async {
        let conn = connect().await;
        let ch = conn.create_channel().await.unwrap();
        let got = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("the persistent message survived the restart");
        assert_eq!(got.delivery.data, b"kept across restarts");
        ch.queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }));
    broker.terminate();
}

async fn connect() -> lapin::Connection {
    let uri = format!("amqp://guest:guest@127.0.0.1:{PORT}/%2f");
    lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {uri}: {e}"))
}

/// Runs warren with `args` and a fresh data dir; returns (exit status, stderr).
fn run_to_exit(args: &[String]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().expect("temp data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn warren");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warren {args:?} did not exit within 30 s on a taken port");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn a_taken_port_is_a_start_up_error() {
    if std::env::var(common::EXTERNAL_ENV).is_ok_and(|v| !v.is_empty()) {
        eprintln!("skipped: checks the warren binary's start-up, not an external broker");
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let port = taken.local_addr().unwrap().port();
    for shards in common::SHARD_COUNTS {
        let shards = shards.to_string();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = port.to_string();

        let (status, stderr) = run_to_exit(&s(&[
            "--port",
            "0",
            "--shards",
            &shards,
            "--management-port",
            &p,
        ]));
        assert_eq!(
            status.code(),
            Some(1),
            "management port taken: {status}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "warren: cannot listen for the management API on 127.0.0.1:{port}"
            )),
            "management port taken: {stderr}"
        );
        assert!(!stderr.contains("warren: listening on"), "{stderr}");

        let (status, stderr) = run_to_exit(&s(&[
            "--port",
            &p,
            "--shards",
            &shards,
            "--management-port",
            "off",
        ]));
        assert_eq!(
            status.code(),
            Some(1),
            "AMQP port taken: {status}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("warren: cannot listen on 127.0.0.1:{port}")),
            "AMQP port taken: {stderr}"
        );
        assert!(!stderr.contains("warren: listening on"), "{stderr}");
    }
    drop(taken);
}
