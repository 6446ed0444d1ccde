//! Deleting the default vhost `/`, as RabbitMQ allows: its queues and
//! messages go, its connections are closed with 320, its permissions go;
//! connection.open to it is then 530 `vhost / not found`; it stays deleted
//! across a restart and a SIGKILL (RabbitMQ creates `/` only when its
//! database is empty), other vhosts and the users are untouched; added
//! again, it is an empty vhost with no permissions. With 1 and 2 shards.
//!
//! Not run against the reference RabbitMQ: deleting its `/` would break
//! everyone else using it.

mod common;

use common::raw::RawConn;
use common::*;

fn ok(b: &Broker, words: &[&str]) -> String {
    let (ok, text) = broker_ctl(b, words);
    assert!(ok, "{words:?}: {text}");
    text
}

fn vhost_uri(b: &Broker, vhost: &str) -> String {
    format!("amqp://guest:guest@{}/{vhost}", b.addr())
}

#[track_caller]
fn assert_close(m: &common::raw::RawMethod, code: u16, text: &str) {
    m.assert_connection_close(code, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_default_vhost_works_as_in_rabbitmq_and_survives_restart() {
    if skip_if_external("deleting `/` on the shared reference RabbitMQ would break its other users")
    {
        return;
    }
    within_secs(300, async {
        for shards in SHARD_COUNTS {
            let dir = temp_dir("warren-del-slash-");
            let mut b = Broker::start_in(shards, dir.path());
            let q = unique_name("slash-q");
            let other = unique_name("vh-kept");
            ok(&b, &["add_vhost", &other]);
            ok(
                &b,
                &["set_permissions", "-p", &other, "guest", ".*", ".*", ".*"],
            );
            for vhost in ["%2f", other.as_str()] {
                let conn = lapin::Connection::connect(
                    &vhost_uri(&b, vhost),
                    lapin::ConnectionProperties::default(),
                )
                .await
                .expect("connect");
                let ch = confirm_channel(&conn).await;
                declare_queue(&ch, &q, true, last_shard(shards)).await;
                publish_confirmed(&ch, &q, &padded_bodies("m", 3), persistent()).await;
                conn.close(200, "".into()).await.ok();
            }
            // A connection to `/` when it goes.
            let mut open = RawConn::connect(&b.addr());
            let m = open.open_vhost("guest", "guest", "/");
            assert_eq!((m.class, m.method), (10, 41), "open-ok: {m:?}");
            ok(&b, &["delete_vhost", "/"]);
            assert_close(
                &open.expect_method(),
                320,
                "CONNECTION_FORCED - vhost '/' is deleted",
            );
            let check_gone = |b: &Broker| {
                let mut c = RawConn::connect(&b.addr());
                assert_close(
                    &c.open_vhost("guest", "guest", "/"),
                    530,
                    "NOT_ALLOWED - vhost / not found",
                );
                let vhosts = ctl(b, "list_vhosts");
                assert!(!vhosts.lines().any(|l| l == "/"), "{vhosts}");
                assert!(vhosts.lines().any(|l| l == other), "{vhosts}");
                let perms = ctl_with(b, &["list_user_permissions", "guest"]);
                assert!(!perms.lines().any(|l| l.starts_with("/\t")), "{perms}");
            };
            check_gone(&b);
            for kill in [false, true] {
                if kill {
                    b.kill();
                } else {
                    b.stop();
                }
                b = Broker::start_in(shards, dir.path());
                check_gone(&b);
                // The other vhost and its messages are intact.
                let conn = lapin::Connection::connect(
                    &vhost_uri(&b, &other),
                    lapin::ConnectionProperties::default(),
                )
                .await
                .expect("connect to the other vhost");
                assert_eq!(ready_count(&conn, &q).await, 3);
                conn.close(200, "".into()).await.ok();
            }
            // Added again: empty, and nobody may use it until permitted.
            ok(&b, &["add_vhost", "/"]);
            let mut c = RawConn::connect(&b.addr());
            assert_close(
                &c.open_vhost("guest", "guest", "/"),
                530,
                "NOT_ALLOWED - access to vhost '/' refused for user 'guest'",
            );
            ok(
                &b,
                &["set_permissions", "-p", "/", "guest", ".*", ".*", ".*"],
            );
            b.stop();
            let b = Broker::start_in(shards, dir.path());
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let r = ch
                .queue_declare(q.as_str().into(), passive(), Default::default())
                .await;
            assert_lapin_code(r, 404);
            conn.close(200, "".into()).await.ok();
        }
    })
    .await;
}
