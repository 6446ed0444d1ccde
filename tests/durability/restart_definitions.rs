//! Durable exchanges, queues and bindings come back after SIGTERM and SIGKILL restarts; non-durable and exclusive ones do not.

use super::*;

// ------------------------------------------------------------- restart ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_definitions_come_back_others_do_not() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let x = unique_name("dx");
            let nx = unique_name("nx");
            // A durable fanout bound into `x` (exchange-to-exchange).
            let xs = unique_name("dxs");
            // A durable exchange deleted before the restart.
            let xd = unique_name("dxd");
            let names: Vec<(String, String, String)> = placements
                .iter()
                .map(|p| {
                    (
                        unique_name(&format!("dq-{p:?}")),
                        unique_name(&format!("nq-{p:?}")),
                        unique_name(&format!("eq-{p:?}")),
                    )
                })
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("declare durable exchange");
                ch.exchange_declare(
                    nx.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("declare transient exchange");
                for (name, kind) in [(&xs, ExchangeKind::Fanout), (&xd, ExchangeKind::Topic)] {
                    ch.exchange_declare(
                        name.as_str().into(),
                        kind,
                        ExchangeDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .expect("declare durable exchange");
                }
                ch.exchange_bind(
                    x.as_str().into(),
                    xs.as_str().into(),
                    "".into(),
                    ExchangeBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange.bind");
                ch.exchange_delete(xd.as_str().into(), ExchangeDeleteOptions::default())
                    .await
                    .expect("exchange.delete");
                for ((dq, nq, eq), p) in names.iter().zip(&placements) {
                    declare_queue(&ch, dq, true, *p).await;
                    ch.queue_declare(
                        nq.as_str().into(),
                        QueueDeclareOptions::default(),
                        lapin_placement_args(*p),
                    )
                    .await
                    .expect("declare transient queue");
                    ch.queue_declare(
                        eq.as_str().into(),
                        QueueDeclareOptions {
                            durable: true,
                            exclusive: true,
                            ..Default::default()
                        },
                        lapin_placement_args(*p),
                    )
                    .await
                    .expect("declare exclusive durable queue");
                    let bind = |q: String, ex: String, key: String| {
                        let ch = ch.clone();
                        async move {
                            ch.queue_bind(
                                q.as_str().into(),
                                ex.as_str().into(),
                                key.as_str().into(),
                                QueueBindOptions::default(),
                                FieldTable::default(),
                            )
                            .await
                            .unwrap_or_else(|e| panic!("bind {q} to {ex} with {key}: {e}"))
                        }
                    };
                    bind(dq.clone(), x.clone(), dq.clone()).await;
                    bind(dq.clone(), x.clone(), format!("{dq}-unbound")).await;
                    bind(dq.clone(), nx.clone(), dq.clone()).await;
                    ch.queue_unbind(
                        dq.as_str().into(),
                        x.as_str().into(),
                        format!("{dq}-unbound").as_str().into(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("unbind");
                    // The binding routes before the restart.
                    publish_ok(&ch, &x, dq, "before", persistent()).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                assert_no_exchange(&conn, &nx).await;
                assert_no_exchange(&conn, &xd).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("durable exchange gone after {how:?}: {e}"));
                for (dq, nq, eq) in &names {
                    assert_no_queue(&conn, nq).await;
                    assert_no_queue(&conn, eq).await;
                    assert_eq!(ready_count(&conn, dq).await, 1, "{dq} after {how:?}");
                    // The durable binding routes after the restart.
                    publish_ok(&ch, &x, dq, "after", persistent()).await;
                    // So does the exchange-to-exchange binding.
                    publish_ok(&ch, &xs, dq, "via-e2e", persistent()).await;
                    wait_ready(&conn, dq, 3).await;
                    assert_eq!(
                        drain(&conn, dq).await,
                        fresh(&["before".into(), "after".into(), "via-e2e".into()]),
                        "{dq} after {how:?}"
                    );
                    // The unbound key does not route any more.
                    let c = ch
                        .basic_publish(
                            x.as_str().into(),
                            format!("{dq}-unbound").as_str().into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..Default::default()
                            },
                            b"unroutable",
                            persistent(),
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    assert!(
                        matches!(&c, Confirmation::Ack(Some(_))),
                        "unbound key routed after {how:?}: {c:?}"
                    );
                    assert_eq!(ready_count(&conn, dq).await, 0);
                    // The exclusive queue's name is free: a new connection
                    // may declare it.
                    declare_queue(&ch, eq, true, None).await;
                }
            })
            .await;
        }
    }
}
