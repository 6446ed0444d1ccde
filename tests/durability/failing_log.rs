//! A failing log nacks publishes and loses nothing it confirmed.

use super::*;

// ------------------------------------------------------- failing log ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_nacks_publishes_and_loses_nothing_it_confirmed() {
    if skip_if_external(
        "it injects log write failures into a local warren (test-only environment variables)",
    ) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-failing-log-");
        // Every shard's log fails its 30th write as a broken disk would; a
        // tiny memory budget makes transient copies go to the log too.
        let mut broker = Broker::start_in_with_env(
            shards,
            dir.path(),
            &["--admin-port", "off"],
            &[
                ("WARREN_TEST_LOG_FAIL_AFTER_BATCHES", "30"),
                ("WARREN_MEMORY_BUDGET", "4096"),
            ],
        );
        let placement = last_shard(shards);
        let durable_q = unique_name("failing-durable");
        let transient_q = unique_name("failing-transient");
        let acked = within_secs(120, async {
            let conn = lapin_connect(&broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &durable_q, true, placement).await;
            ch.queue_declare(
                transient_q.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(placement),
            )
            .await
            .expect("declare");
            let mut acked = Vec::new();
            let (mut nacked_durable, mut nacked_transient) = (0, 0);
            for i in 0..400 {
                for (q, props) in [(&durable_q, persistent()), (&transient_q, transient())] {
                    let body = format!("{q}-{i}");
                    // Every publish gets an answer, ack or nack: none hangs.
                    let confirmation = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            body.as_bytes(),
                            props,
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    match confirmation {
                        Confirmation::Ack(_) => {
                            if q == &durable_q {
                                acked.push(body);
                            }
                        }
                        Confirmation::Nack(_) if q == &durable_q => nacked_durable += 1,
                        Confirmation::Nack(_) => nacked_transient += 1,
                        Confirmation::NotRequested => panic!("confirm mode"),
                    }
                }
            }
            assert!(acked.len() >= 10, "the log worked for a while");
            assert!(
                nacked_durable > 0,
                "persistent publishes nacked after the failure"
            );
            assert!(nacked_transient > 0, "paged transient publishes nacked too");
            assert!(
                broker.logs_within("injected write failure"),
                "the failure is logged:\n{}",
                broker.log().join("\n")
            );
            acked
        })
        .await;
        broker.kill();
        drop(broker);
        // A healthy restart: every persistent message that was acked is there.
        let node = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&node).await;
            let got = bodies_only(drain(&conn, &durable_q).await);
            let got: HashSet<&String> = got.iter().collect();
            let lost: Vec<&String> = acked.iter().filter(|b| !got.contains(b)).collect();
            assert!(lost.is_empty(), "acked messages lost: {lost:?}");
        })
        .await;
    }
}
