//! What one node and one channel hold, bounded as RabbitMQ bounds them:
//! `--max-connections` (RabbitMQ's `connection_max`) refuses connection.open
//! past the limit with 530 `connection refused: node connection limit (N)
//! is reached`, exact across shards, and a closed connection gives its
//! place back; `--consumer-max-per-channel` (RabbitMQ 3.12+'s
//! `consumer_max_per_channel`) closes the connection with 530 `reached
//! maximum (N) of consumers per channel` on one consume too many, while
//! other channels still have room. (Channels per connection are bounded by
//! the negotiated channel_max: `tests/hostile_input.rs`.) With 1 and 2
//! shards.
//!
//! Against RabbitMQ these skip: the limits are node settings the shared
//! reference broker must not be restarted with, and 3.10.8 has neither
//! (both came in 3.12); the texts are those of 3.12.0's `rabbit_reader.erl`
//! and `rabbit_channel.erl`.

mod common;

use common::raw::RawConn;
use common::*;

const NODE_SETTINGS: &str =
    "the limits are node settings (RabbitMQ 3.12+), not set on the shared reference broker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_admits_max_connections_and_refuses_more() {
    if skip_if_external(NODE_SETTINGS) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--max-connections", "3"]);
        let addr = b.addr();
        within_secs(60, async {
            tokio::task::spawn_blocking(move || {
                // Enough connections that, with two shards, the kernel puts
                // some on each.
                let mut open: Vec<RawConn> = (0..3)
                    .map(|_| {
                        let mut c = RawConn::connect(&addr);
                        let ok = c.open_vhost("guest", "guest", "/");
                        assert_eq!((ok.class, ok.method), (10, 41), "open-ok: {ok:?}");
                        c
                    })
                    .collect();
                for _ in 0..4 {
                    let mut c = RawConn::connect(&addr);
                    c.open_vhost("guest", "guest", "/").assert_connection_close(
                        530,
                        "NOT_ALLOWED - connection refused: node connection limit (3) is reached",
                    );
                }
                // A closed connection gives its place back.
                let mut gone = open.pop().expect("one");
                gone.send_method(
                    0,
                    10,
                    50,
                    &common::raw::Args::new()
                        .short(200)
                        .shortstr("")
                        .short(0)
                        .short(0)
                        .done(),
                );
                let close_ok = gone.expect_method();
                assert_eq!((close_ok.class, close_ok.method), (10, 51));
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    let mut c = RawConn::connect(&addr);
                    let m = c.open_vhost("guest", "guest", "/");
                    if (m.class, m.method) == (10, 41) {
                        break;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the place never came back: {:?}",
                        m.close_reason()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
            .await
            .expect("raw clients");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_too_many_on_a_channel_closes_the_connection() {
    if skip_if_external(NODE_SETTINGS) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--consumer-max-per-channel", "3"]);
        within_secs(60, async {
            let conn = lapin_connect(&b).await;
            let setup = conn.create_channel().await.expect("channel");
            let q = unique_name("many-consumers");
            declare_queue(&setup, &q, false, last_shard(shards)).await;
            let addr = b.addr();
            tokio::task::spawn_blocking(move || {
                let mut c = RawConn::connect(&addr);
                c.handshake("guest", "guest");
                c.channel_open(1);
                for i in 0..3 {
                    c.basic_consume(1, &q, &format!("c{i}"));
                }
                // Another channel has its own room.
                c.channel_open(2);
                c.basic_consume(2, &q, "other");
                let consume = common::raw::Args::new()
                    .short(0)
                    .shortstr(&q)
                    .shortstr("c3")
                    .bits(&[false, false, false, false])
                    .empty_table()
                    .done();
                c.send_method(1, 60, 20, &consume);
                let close = c.expect_method();
                close.assert_connection_close(
                    530,
                    "NOT_ALLOWED - reached maximum (3) of consumers per channel",
                );
                let mut r = close.reader();
                let (_, _) = (r.short(), r.shortstr());
                assert_eq!((r.short(), r.short()), (60, 20), "basic.consume caused it");
            })
            .await
            .expect("raw client");
            conn.close(200, "".into()).await.ok();
        })
        .await;
    }
}
