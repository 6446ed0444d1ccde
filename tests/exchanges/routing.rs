//! Direct, fanout, topic and headers routing, one copy per queue per publish.

use super::*;

// ------------------------------------------------------------- routing ----

async fn direct_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-direct", ExchangeKind::Direct).await;
    let q1 = c.queue("q-d1").await;
    let q2 = c.queue("q-d2").await;
    let q3 = c.queue("q-d3").await;
    // Many queues per key, many keys per queue.
    c.bind(&q1, &x, "black").await;
    c.bind(&q2, &x, "black").await;
    c.bind(&q3, &x, "black").await;
    c.bind(&q3, &x, "green").await;
    c.bind(&q3, &x, "orange").await;
    // The empty key is an ordinary key.
    c.bind(&q2, &x, "").await;

    for (key, body) in [
        ("black", "m1"),
        ("green", "m2"),
        ("orange", "m3"),
        ("", "m4"),
        ("blue", "m5"),
        ("Black", "m6"),
        ("black", "m7"),
    ] {
        assert_eq!(c.publish(&x, key, body).await, Confirmation::Ack(None));
    }
    assert_eq!(c.drain(&q1, 2).await, strings(&["m1", "m7"]));
    assert_eq!(c.drain(&q2, 3).await, strings(&["m1", "m4", "m7"]));
    assert_eq!(c.drain(&q3, 4).await, strings(&["m1", "m2", "m3", "m7"]));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exchange_routing() {
    for_each_placement!(direct_routing);
}

async fn fanout_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-fanout", ExchangeKind::Fanout).await;
    let q1 = c.queue("q-f1").await;
    let q2 = c.queue("q-f2").await;
    let q3 = c.queue("q-f3").await;
    c.bind(&q1, &x, "").await;
    c.bind(&q2, &x, "whatever").await;
    // Bound twice (two keys): still one copy per publish.
    c.bind(&q3, &x, "a").await;
    c.bind(&q3, &x, "b").await;
    for (key, body) in [("", "m1"), ("a", "m2"), ("zzz", "m3")] {
        assert_eq!(c.publish(&x, key, body).await, Confirmation::Ack(None));
    }
    let all = strings(&["m1", "m2", "m3"]);
    assert_eq!(c.drain(&q1, 3).await, all);
    assert_eq!(c.drain(&q2, 3).await, all);
    assert_eq!(c.drain(&q3, 3).await, all);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exchange_routing() {
    for_each_placement!(fanout_routing);
}

async fn topic_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-topic", ExchangeKind::Topic).await;
    let patterns: [&[&str]; 10] = [
        &["#"],
        &["*"],
        &["a.#.b"],
        &["*.orange.*"],
        &["a.*.b"],
        &[""],
        &["a.#"],
        &["#.b"],
        // Two patterns matching the same keys: one copy.
        &["a.*", "*.b"],
        &["lazy.#", "*.*.rabbit"],
    ];
    let mut queues = Vec::new();
    for p in patterns {
        let q = c.queue("q-t").await;
        for pattern in p {
            c.bind(&q, &x, pattern).await;
        }
        queues.push(q);
    }
    // (routing key, indexes of the queues (patterns) it reaches)
    let cases: [(&str, &[usize]); 16] = [
        ("", &[0, 5]),
        ("a", &[0, 1, 6]),
        ("orange", &[0, 1]),
        ("quick.orange.rabbit", &[0, 3, 9]),
        ("a.b", &[0, 2, 6, 7, 8]),
        ("a.x.b", &[0, 2, 4, 6, 7]),
        ("a.x.y.b", &[0, 2, 6, 7]),
        ("a.b.c", &[0, 6]),
        ("a..b", &[0, 2, 4, 6, 7]),
        ("b", &[0, 1, 7]),
        (".orange.", &[0, 3]),
        ("a.", &[0, 6, 8]),
        ("lazy", &[0, 1, 9]),
        ("lazy.pink.rabbit", &[0, 9]),
        ("quick.brown.fox", &[0]),
        ("A.B", &[0]),
    ];
    for (i, (key, _)) in cases.iter().enumerate() {
        let body = format!("{i}:{key}");
        assert_eq!(c.publish(&x, key, &body).await, Confirmation::Ack(None));
    }
    for (j, q) in queues.iter().enumerate() {
        let expected: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(_, (_, to))| to.contains(&j))
            .map(|(i, (key, _))| format!("{i}:{key}"))
            .collect();
        let got = c.drain(q, expected.len()).await;
        assert_eq!(got, expected, "queue bound with {:?}", patterns[j]);
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_exchange_routing() {
    for_each_placement!(topic_routing);
}

async fn headers_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-headers", ExchangeKind::Headers).await;
    let q_all = c.queue("q-h-all").await;
    let q_any = c.queue("q-h-any").await;
    let q_default = c.queue("q-h-default").await;
    let q_xkey = c.queue("q-h-xkey").await;
    let q_twice = c.queue("q-h-twice").await;
    c.bind_args(
        &q_all,
        &x,
        "",
        table(&[("x-match", "all"), ("format", "pdf"), ("type", "report")]),
    )
    .await;
    c.bind_args(
        &q_any,
        &x,
        "",
        table(&[("x-match", "any"), ("format", "pdf"), ("type", "report")]),
    )
    .await;
    // No x-match means all.
    c.bind_args(
        &q_default,
        &x,
        "",
        table(&[("format", "pdf"), ("type", "report")]),
    )
    .await;
    // Binding keys starting with x- take no part in matching.
    c.bind_args(
        &q_xkey,
        &x,
        "",
        table(&[("x-match", "all"), ("format", "pdf"), ("x-extra", "nope")]),
    )
    .await;
    // Two bindings that both match: one copy.
    c.bind_args(
        &q_twice,
        &x,
        "",
        table(&[("x-match", "any"), ("format", "pdf")]),
    )
    .await;
    c.bind_args(
        &q_twice,
        &x,
        "",
        table(&[("x-match", "any"), ("type", "report")]),
    )
    .await;

    let messages: [(&str, &[(&str, &str)]); 6] = [
        ("m1", &[("format", "pdf"), ("type", "report")]),
        ("m2", &[("format", "pdf")]),
        ("m3", &[("format", "zip"), ("type", "report")]),
        ("m4", &[]),
        (
            "m5",
            &[("format", "pdf"), ("type", "report"), ("extra", "1")],
        ),
        ("m6", &[("format", "PDF"), ("type", "log")]),
    ];
    for (body, headers) in messages {
        c.publish_headers(&x, table(headers), body).await;
    }
    // And a message with no headers table at all.
    assert_eq!(c.publish(&x, "", "m7").await, Confirmation::Ack(None));

    assert_eq!(c.drain(&q_all, 2).await, strings(&["m1", "m5"]));
    assert_eq!(c.drain(&q_any, 4).await, strings(&["m1", "m2", "m3", "m5"]));
    assert_eq!(c.drain(&q_default, 2).await, strings(&["m1", "m5"]));
    assert_eq!(c.drain(&q_xkey, 3).await, strings(&["m1", "m2", "m5"]));
    assert_eq!(
        c.drain(&q_twice, 4).await,
        strings(&["m1", "m2", "m3", "m5"])
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_exchange_routing() {
    for_each_placement!(headers_routing);
}
