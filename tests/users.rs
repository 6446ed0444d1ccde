//! Users and authentication: rabbitmqctl's user and permission verbs
//! (`warren ctl`, same output and exit statuses), PLAIN and AMQPLAIN
//! logins against the users (RabbitMQ's 403 text, as connection.close for
//! clients advertising `authentication_failure_close`), a password hash
//! exported from RabbitMQ logging in unchanged, deleting a user closing its
//! connections with 320, repeated failures from one address slowed down
//! without slowing another, the default user and its flags, and users and
//! permissions surviving a restart and a SIGKILL. With 1 and 2 shards;
//! against RabbitMQ the users are made with rabbitmqctl and deleted
//! afterwards (the Warren-only parts say so).

mod common;

use common::raw::RawConn;
use common::*;
use std::time::{Duration, Instant};

/// What RabbitMQ answers to any refused login.
fn login_refused(mechanism: &str) -> String {
    format!(
        "ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
    )
}

/// A hash `rabbitmqctl export_definitions` of RabbitMQ 3.10.8 wrote for a
/// user whose password is `pw2` (`rabbit_password_hashing_sha256`).
const RABBITMQ_HASH: &str = "UmdEupYZJDYhVToXF7tWXJi3wvc7L8GxCDxJNyYYt9mHfG3e";

/// Deletes the named users (of an external broker) when dropped.
struct Cleanup<'a>(&'a Broker, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for u in &self.1 {
            let _ = broker_ctl(self.0, &["delete_user", u]);
        }
    }
}

/// The exit status and output of a ctl command.
fn ctl_status(b: &Broker, words: &[&str]) -> (i32, String) {
    let out = broker_ctl_output(b, words);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// connection.start-ok with AMQPLAIN credentials (a table's entries
/// without its length), advertising `authentication_failure_close`.
fn amqplain_start_ok(c: &mut RawConn, user: &str, password: &str) {
    let mut response = Vec::new();
    for (k, v) in [("LOGIN", user), ("PASSWORD", password)] {
        response.push(k.len() as u8);
        response.extend_from_slice(k.as_bytes());
        response.push(b'S');
        response.extend_from_slice(&(v.len() as u32).to_be_bytes());
        response.extend_from_slice(v.as_bytes());
    }
    c.start_ok_with("AMQPLAIN", &response, true);
}

/// Logs in on a raw connection; Ok(()) at connection.tune, or the
/// connection.close the broker sent.
fn raw_login(
    c: &mut RawConn,
    mechanism: &str,
    user: &str,
    password: &str,
) -> Result<(), (u16, String)> {
    c.begin();
    if mechanism == "AMQPLAIN" {
        amqplain_start_ok(c, user, password);
    } else {
        c.start_ok(user, password, true);
    }
    let m = c.expect_method();
    match (m.class, m.method) {
        (10, 30) => Ok(()),
        (10, 50) => Err(m.close_reason()),
        other => panic!("expected tune or close, got {other:?}"),
    }
}

#[test]
fn ctl_verbs_answer_as_rabbitmqctl() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let u = unique_name("zu-ctl");
        let _cleanup = Cleanup(&b, vec![u.clone()]);
        let out = broker_ctl_ok(&b, &["add_user", &u, "pw1"]);
        assert!(out.contains(&format!("Adding user \"{u}\" ...")), "{out}");
        let (status, out) = ctl_status(&b, &["add_user", &u, "pw1"]);
        assert_eq!(status, 70, "{out}");
        assert!(
            out.contains(&format!("User \"{u}\" already exists")),
            "{out}"
        );
        let out = broker_ctl_ok(&b, &["set_user_tags", &u, "administrator", "monitoring"]);
        assert!(
            out.contains(&format!(
                "Setting tags for user \"{u}\" to [administrator, monitoring] ..."
            )),
            "{out}"
        );
        let users = broker_ctl_ok(&b, &["list_users"]);
        assert!(
            users.starts_with("Listing users ...\nuser\ttags\n"),
            "{users}"
        );
        assert_eq!(row(&users, &u)[1], "[administrator, monitoring]");
        assert_eq!(row(&users, "guest")[1], "[administrator]");

        let out = broker_ctl_ok(&b, &["authenticate_user", &u, "pw1"]);
        assert!(out.contains("Success"), "{out}");
        let (status, out) = ctl_status(&b, &["authenticate_user", &u, "nope"]);
        assert_eq!(status, 65, "{out}");
        assert!(
            out.contains(&format!("user '{u}' - invalid credentials")),
            "{out}"
        );
        broker_ctl_ok(&b, &["change_password", &u, "pw2"]);
        assert_eq!(ctl_status(&b, &["authenticate_user", &u, "pw1"]).0, 65);
        broker_ctl_ok(&b, &["authenticate_user", &u, "pw2"]);

        let out = broker_ctl_ok(&b, &["set_permissions", "-p", "/", &u, "^c", "^w", "^r"]);
        assert!(
            out.contains(&format!(
                "Setting permissions for user \"{u}\" in vhost \"/\" ..."
            )),
            "{out}"
        );
        let perms = broker_ctl_ok(&b, &["list_permissions", "-p", "/"]);
        assert!(
            perms.starts_with(
                "Listing permissions for vhost \"/\" ...\nuser\tconfigure\twrite\tread\n"
            ),
            "{perms}"
        );
        assert_eq!(row(&perms, &u)[1..], ["^c", "^w", "^r"]);
        assert_eq!(row(&perms, "guest")[1..], [".*", ".*", ".*"]);
        let mine = broker_ctl_ok(&b, &["list_user_permissions", &u]);
        assert!(mine.contains("vhost\tconfigure\twrite\tread\n"), "{mine}");
        assert_eq!(row(&mine, "/")[1..], ["^c", "^w", "^r"]);
        let (status, out) = ctl_status(&b, &["set_permissions", &u, "(", "", ""]);
        assert_eq!(status, 69, "{out}");

        broker_ctl_ok(
            &b,
            &[
                "set_topic_permissions",
                &u,
                "amq.topic",
                "^{username}",
                "^b",
            ],
        );
        let topic = broker_ctl_ok(&b, &["list_topic_permissions"]);
        assert!(topic.contains("user\texchange\twrite\tread\n"), "{topic}");
        assert_eq!(row(&topic, &u)[1..], ["amq.topic", "^{username}", "^b"]);
        broker_ctl_ok(&b, &["clear_topic_permissions", &u, "amq.topic"]);
        let topic = broker_ctl_ok(&b, &["list_topic_permissions"]);
        assert!(!topic.contains(&u), "{topic}");

        let out = broker_ctl_ok(&b, &["clear_permissions", &u]);
        assert!(
            out.contains(&format!(
                "Clearing permissions for user \"{u}\" in vhost \"/\" ..."
            )),
            "{out}"
        );
        assert!(!broker_ctl_ok(&b, &["list_permissions"]).contains(&u));
        let out = broker_ctl_ok(&b, &["delete_user", &u]);
        assert!(out.contains(&format!("Deleting user \"{u}\" ...")), "{out}");
        let (status, out) = ctl_status(&b, &["delete_user", &u]);
        assert_eq!(status, 67, "{out}");
        assert!(
            out.contains(&format!("User \"{u}\" does not exist")),
            "{out}"
        );
        assert_eq!(ctl_status(&b, &["set_permissions", &u, "", "", ""]).0, 67);
        assert!(!broker_ctl_ok(&b, &["list_users"]).contains(&u));
    }
}

#[test]
fn plain_and_amqplain_check_the_password() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let u = unique_name("zu-login");
        let _cleanup = Cleanup(&b, vec![u.clone()]);
        broker_ctl_ok(&b, &["add_user", &u, "right"]);
        broker_ctl_ok(&b, &["set_permissions", &u, ".*", ".*", ".*"]);
        for mechanism in ["PLAIN", "AMQPLAIN"] {
            let mut c = RawConn::connect(&b.addr());
            assert_eq!(raw_login(&mut c, mechanism, &u, "right"), Ok(()));
            for (user, pass) in [(u.as_str(), "wrong"), ("zu-nobody", "right")] {
                let mut c = RawConn::connect(&b.addr());
                assert_eq!(
                    raw_login(&mut c, mechanism, user, pass),
                    Err((403, login_refused(mechanism))),
                    "{mechanism} {user}/{pass}"
                );
                assert!(c.closed_by_server(), "socket closed after the refusal");
            }
        }
    }
}

#[test]
fn a_password_hash_exported_from_rabbitmq_logs_in() {
    if skip_if_external("RabbitMQ 3.10's add_user has no --pre-hashed-password") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        broker_ctl_ok(
            &b,
            &[
                "add_user",
                "imported",
                RABBITMQ_HASH,
                "--pre-hashed-password",
            ],
        );
        broker_ctl_ok(&b, &["set_permissions", "imported", ".*", ".*", ".*"]);
        broker_ctl_ok(&b, &["authenticate_user", "imported", "pw2"]);
        let mut c = RawConn::connect(&b.addr());
        assert_eq!(raw_login(&mut c, "PLAIN", "imported", "pw2"), Ok(()));
        let mut c = RawConn::connect(&b.addr());
        assert_eq!(
            raw_login(&mut c, "PLAIN", "imported", "pw1"),
            Err((403, login_refused("PLAIN")))
        );
        // A malformed hash is refused, never stored.
        let (status, out) = ctl_status(
            &b,
            &[
                "add_user",
                "bad",
                "bm90IGEgaGFzaA==",
                "--pre-hashed-password",
            ],
        );
        assert_eq!(status, 69, "{out}");
        assert!(!ctl(&b, "list_users").contains("bad"));
    }
}

#[test]
fn deleting_a_user_closes_its_connections() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let u = unique_name("zu-del");
        let _cleanup = Cleanup(&b, vec![u.clone()]);
        broker_ctl_ok(&b, &["add_user", &u, "pw"]);
        broker_ctl_ok(&b, &["set_permissions", &u, ".*", ".*", ".*"]);
        // Several connections, so with 2 shards both hold some.
        let mut conns: Vec<RawConn> = (0..4)
            .map(|_| {
                let mut c = RawConn::connect(&b.addr());
                c.handshake(&u, "pw");
                c.channel_open(1);
                c
            })
            .collect();
        let (mut guest, _) = RawConn::open(&b.addr());
        guest.channel_open(1);
        broker_ctl_ok(&b, &["delete_user", &u]);
        for c in &mut conns {
            let m = c.expect_method();
            assert_eq!(
                (m.channel, m.class, m.method),
                (0, 10, 50),
                "connection.close: {m:?}"
            );
            assert_eq!(
                m.close_reason(),
                (320, format!("CONNECTION_FORCED - user '{u}' is deleted"))
            );
        }
        // Other users' connections stay.
        guest.basic_qos(1, 1);
        let mut c = RawConn::connect(&b.addr());
        assert_eq!(
            raw_login(&mut c, "PLAIN", &u, "pw"),
            Err((403, login_refused("PLAIN")))
        );
    }
}

/// A raw connection from source address `from`.
async fn connect_from(from: &str, to: &str) -> RawConn {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind the source address");
    let stream = socket
        .connect(to.parse().expect("address"))
        .await
        .expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    RawConn {
        stream,
        server_properties: Vec::new(),
    }
}

/// How long a failed login from `from` takes to be refused.
async fn failed_login_time(b: &Broker, from: &str) -> Duration {
    let mut c = connect_from(from, &b.addr()).await;
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || raw_login(&mut c, "PLAIN", "guest", "wrong"))
        .await
        .expect("login thread");
    assert_eq!(r, Err((403, login_refused("PLAIN"))));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_slow_down_only_their_address() {
    if skip_if_external("RabbitMQ does not slow down repeated login failures") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            // The first three are answered at once, then 250 ms, 500 ms,
            // 1 s, 2 s (`broker::auth::failures`).
            let mut last = Duration::ZERO;
            for _ in 0..7 {
                last = failed_login_time(&b, "127.0.0.2").await;
            }
            assert!(
                last >= Duration::from_millis(1900),
                "7th failure after {last:?}"
            );
            // Another address is not slowed down, nor a good login.
            let other = failed_login_time(&b, "127.0.0.3").await;
            assert!(other < last / 2, "another address waited {other:?}");
            let started = Instant::now();
            let conn = lapin_connect(&b).await;
            assert!(
                started.elapsed() < last / 2,
                "a good login waited {:?}",
                started.elapsed()
            );
            conn.close(200, "bye".into()).await.ok();
            assert!(b.logs_within("PLAIN login refused: user 'guest' - invalid credentials"));
        })
        .await;
    }
}

#[test]
fn the_default_user_can_be_chosen() {
    if skip_if_external("the default user is a start-up setting") {
        return;
    }
    for shards in SHARD_COUNTS {
        // Flags...
        let b = Broker::start_with_args(
            shards,
            &["--default-user", "boss", "--default-pass", "hunter2"],
        );
        let users = ctl(&b, "list_users");
        assert_eq!(row(&users, "boss")[1], "[administrator]");
        assert!(!users.contains("guest"), "{users}");
        let mut c = RawConn::connect(&b.addr());
        c.handshake("boss", "hunter2");
        let mut c = RawConn::connect(&b.addr());
        assert_eq!(
            raw_login(&mut c, "PLAIN", "guest", "guest"),
            Err((403, login_refused("PLAIN")))
        );
        let perms = ctl_with(&b, &["list_user_permissions", "boss"]);
        assert_eq!(row(&perms, "/")[1..], [".*", ".*", ".*"]);
        // ...or the environment.
        let dir = temp_dir("zu-default");
        let b = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[
                ("WARREN_DEFAULT_USER", "envboss"),
                ("WARREN_DEFAULT_PASS", "pw"),
            ],
        );
        let mut c = RawConn::connect(&b.addr());
        c.handshake("envboss", "pw");
    }
}

#[test]
fn users_and_permissions_survive_restart_and_sigkill() {
    if skip_if_external("restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("zu-durable");
        let mut b = Broker::start_in(shards, dir.path());
        // A first start's default user is stored with the first change
        // (here a policy): a later start with another default keeps it.
        ctl_with(&b, &["set_policy", "p", "^nothing$", r#"{"max-length":1}"#]);
        b.kill();
        let mut b = Broker::start_in_with(shards, dir.path(), &["--default-user", "other"]);
        let users = ctl(&b, "list_users");
        assert!(
            users.contains("guest") && !users.contains("other"),
            "{users}"
        );
        ctl_with(&b, &["add_user", "alice", "apw"]);
        ctl_with(&b, &["set_user_tags", "alice", "monitoring"]);
        ctl_with(&b, &["set_permissions", "alice", "^a", "^a", "^a"]);
        ctl_with(
            &b,
            &["set_topic_permissions", "alice", "amq.topic", "^x", "^y"],
        );
        ctl_with(&b, &["add_user", "gone", "pw"]);
        ctl_with(&b, &["delete_user", "gone"]);
        ctl_with(&b, &["change_password", "guest", "newguest"]);
        let listings = |b: &Broker| {
            [
                ctl(b, "list_users"),
                ctl(b, "list_permissions"),
                ctl(b, "list_topic_permissions"),
            ]
        };
        let expected = listings(&b);
        for kill in [true, false] {
            if kill {
                b.kill();
            } else {
                b.stop();
            }
            b = Broker::start_in(shards, dir.path());
            assert_eq!(
                listings(&b),
                expected,
                "after {}",
                if kill { "SIGKILL" } else { "SIGTERM" }
            );
            ctl_with(&b, &["authenticate_user", "alice", "apw"]);
            ctl_with(&b, &["authenticate_user", "guest", "newguest"]);
            let mut c = RawConn::connect(&b.addr());
            assert_eq!(
                raw_login(&mut c, "PLAIN", "guest", "guest"),
                Err((403, login_refused("PLAIN")))
            );
            assert!(!ctl(&b, "list_users").contains("gone"));
        }
        // A deleted default user stays deleted.
        ctl_with(&b, &["delete_user", "guest"]);
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        assert!(!ctl(&b, "list_users").contains("guest"));
    }
}

/// The default user is stored by the first start itself, before the broker
/// listens: it survives a SIGKILL right after the start, and a later start
/// with another `--default-user` seeds nobody (RabbitMQ seeds its default
/// user only into an empty database).
#[test]
fn the_default_user_is_durable_from_the_first_start() {
    if skip_if_external("restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("zu-first");
        let mut b = Broker::start_in_with(
            shards,
            dir.path(),
            &["--default-user", "first", "--default-pass", "pw1"],
        );
        b.kill();
        let mut b = Broker::start_in_with(
            shards,
            dir.path(),
            &["--default-user", "second", "--default-pass", "pw2"],
        );
        let users = ctl(&b, "list_users");
        assert!(
            users.contains("first") && !users.contains("second") && !users.contains("guest"),
            "{users}"
        );
        let perms = ctl_with(&b, &["list_user_permissions", "first"]);
        assert_eq!(row(&perms, "/")[1..], [".*", ".*", ".*"]);
        let mut c = RawConn::connect(&b.addr());
        c.handshake("first", "pw1");
        drop(c);
        // Deleted, it stays deleted, and nobody is seeded in its place.
        ctl_with(&b, &["add_user", "keeper", "pw"]);
        ctl_with(&b, &["delete_user", "first"]);
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        let users = ctl(&b, "list_users");
        assert!(
            users.contains("keeper") && !users.contains("first") && !users.contains("guest"),
            "{users}"
        );
    }
}
