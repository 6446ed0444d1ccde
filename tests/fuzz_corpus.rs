//! The fuzz corpus as ordinary tests: every file of `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through the function the fuzz
//! target calls (`warren::protocol::fuzzing::<target>`), so CI replays
//! every input the fuzzers kept and every crash they ever found without a
//! fuzzer. The ignored test `record_client_traffic` records the seeds: it
//! puts a recording TCP proxy between real clients (lapin, amqprs, pika)
//! and a broker and splits what went over the wire into per-target seeds
//! (see docs/fuzzing.md).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warren::protocol::frame::{Frame, FrameDecoder, FRAME_HEADER, FRAME_METHOD};
use warren::protocol::fuzzing;

/// A fuzz target's name and the function it calls.
type Target = (&'static str, fn(&[u8]));

/// The fuzz targets.
const TARGETS: [Target; 3] = [
    ("frame", fuzzing::frame),
    ("method", fuzzing::method),
    ("content_header", fuzzing::content_header),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir` (none if it does not exist), sorted.
fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_and_regressions_replay() {
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let corpus = files_in(&fuzz_dir().join("corpus").join(target));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{target} holds {} inputs; record it (docs/fuzzing.md)",
            corpus.len()
        );
        let regressions = files_in(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("read corpus file");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
        eprintln!(
            "{target}: {} corpus inputs, {} regressions replayed",
            corpus.len(),
            regressions.len()
        );
    }
    assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
}

/// Each file of `fuzz/regressions/<target>/` is there because the fuzzer
/// once crashed on it: they must still be there (and named by target).
#[test]
fn regression_folders_name_fuzz_targets() {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join("regressions")) else {
        return;
    };
    for entry in entries {
        let name = entry.expect("regressions entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
}

// ---- recording seed traffic ----

/// One recorded TCP connection: what the client sent, what the server sent.
struct Session {
    client: Vec<u8>,
    server: Vec<u8>,
}

/// A TCP proxy in front of `upstream` that records both directions of
/// every connection it carries.
struct RecordingProxy {
    port: u16,
    sessions: Arc<Mutex<Vec<Session>>>,
    open: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RecordingProxy {
    fn start(upstream: String) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, o, st) = (sessions.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let server = TcpStream::connect(&upstream).expect("proxy connects upstream");
                o.fetch_add(1, Ordering::SeqCst);
                let (s, o) = (s.clone(), o.clone());
                std::thread::spawn(move || {
                    let up = pump(
                        client.try_clone().expect("clone"),
                        server.try_clone().unwrap(),
                    );
                    let down = pump(server, client);
                    let session = Session {
                        client: up.join().expect("client pump"),
                        server: down.join().expect("server pump"),
                    };
                    s.lock().unwrap().push(session);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        RecordingProxy {
            port,
            sessions,
            open,
            stop,
        }
    }

    /// Waits for every carried connection to end; returns what they carried.
    fn finish(self) -> Vec<Session> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "proxied connections still open");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        std::mem::take(&mut *self.sessions.lock().unwrap())
    }
}

/// Copies `from` to `to` until EOF, recording the bytes.
fn pump(mut from: TcpStream, mut to: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        seen
    })
}

/// Records lapin, amqprs and pika sessions through the proxy and writes the
/// seeds to `FUZZ_SEED_DIR` (default `fuzz/corpus`): whole streams for
/// `frame`, method payloads for `method`, header payloads for
/// `content_header`. With `WARREN_TEST_EXTERNAL_URI` the clients talk to
/// that broker (RabbitMQ) instead of a fresh Warren.
#[test]
#[ignore = "records fuzz seeds from real client traffic; see docs/fuzzing.md"]
fn record_client_traffic() {
    let b = Broker::start(1);
    let proxy = RecordingProxy::start(b.addr());
    let port = proxy.port;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(within(lapin_session(port)));
    rt.block_on(within(amqprs_session(port)));
    pika_session(port);
    let sessions = proxy.finish();
    assert!(sessions.len() >= 3, "{} sessions recorded", sessions.len());
    let out = std::env::var("FUZZ_SEED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| fuzz_dir().join("corpus"));
    let mut written = [0usize; 3];
    for s in &sessions {
        let client = s
            .client
            .strip_prefix(b"AMQP\x00\x00\x09\x01")
            .unwrap_or(&s.client);
        for stream in [client, &s.server[..]] {
            written[0] += write_seed(&out.join("frame"), stream);
            for (kind, payload) in frame_payloads(stream) {
                let (i, target) = match kind {
                    FRAME_METHOD => (1, "method"),
                    FRAME_HEADER => (2, "content_header"),
                    _ => continue,
                };
                written[i] += write_seed(&out.join(target), &payload);
            }
        }
    }
    eprintln!(
        "{} sessions; new seeds: frame {}, method {}, content_header {} (in {})",
        sessions.len(),
        written[0],
        written[1],
        written[2],
        out.display()
    );
}

/// The type and payload of every frame of a stream.
fn frame_payloads(stream: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut decoder = FrameDecoder::new(0);
    let mut buf = bytes::BytesMut::from(stream);
    let mut out = Vec::new();
    loop {
        let start = stream.len() - buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                let end = stream.len() - buf.len();
                let kind = match frame {
                    Frame::Method { .. } => FRAME_METHOD,
                    Frame::Header { .. } => FRAME_HEADER,
                    _ => 0,
                };
                out.push((kind, stream[start + 7..end - 1].to_vec()));
            }
            Ok(None) => return out,
            Err(e) => panic!("recorded traffic does not split into frames: {e}"),
        }
    }
}

/// Writes `data` as `<dir>/<hash>` unless a seed with its hash is there;
/// returns 1 if it wrote one.
fn write_seed(dir: &std::path::Path, data: &[u8]) -> usize {
    use std::hash::{Hash, Hasher};
    std::fs::create_dir_all(dir).expect("create seed dir");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let path = dir.join(format!("seed-{:016x}", h.finish()));
    if path.exists() {
        return 0;
    }
    std::fs::write(&path, data).expect("write seed");
    1
}

fn proxy_uri(port: u16, query: &str) -> String {
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f{query}")
}

/// Headers with every field type lapin writes, nested.
fn lapin_headers() -> lapin::types::FieldTable {
    use lapin::types::{AMQPValue, DecimalValue, FieldArray, FieldTable, LongString};
    let mut inner = FieldTable::default();
    inner.insert("depth".into(), AMQPValue::LongInt(2));
    inner.insert("note".into(), AMQPValue::LongString("naïve ☃".into()));
    let mut h = FieldTable::default();
    h.insert("bool".into(), AMQPValue::Boolean(true));
    h.insert("i8".into(), AMQPValue::ShortShortInt(-3));
    h.insert("u8".into(), AMQPValue::ShortShortUInt(200));
    h.insert("i16".into(), AMQPValue::ShortInt(-300));
    h.insert("u16".into(), AMQPValue::ShortUInt(60000));
    h.insert("i32".into(), AMQPValue::LongInt(-70000));
    h.insert("u32".into(), AMQPValue::LongUInt(4_000_000_000));
    h.insert("i64".into(), AMQPValue::LongLongInt(-(1 << 40)));
    h.insert("f32".into(), AMQPValue::Float(1.5));
    h.insert("f64".into(), AMQPValue::Double(-2.25));
    h.insert(
        "dec".into(),
        AMQPValue::DecimalValue(DecimalValue {
            scale: 2,
            value: 12345,
        }),
    );
    h.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
    h.insert("void".into(), AMQPValue::Void);
    h.insert(
        "bytes".into(),
        AMQPValue::ByteArray(vec![0, 1, 0xCE].into()),
    );
    h.insert("table".into(), AMQPValue::FieldTable(inner));
    h.insert(
        "array".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongString(LongString::from("a")),
            AMQPValue::LongInt(7),
            AMQPValue::Boolean(false),
        ])),
    );
    h
}

/// A lapin session: topology with arguments, publishes with every property
/// (a body over several frames at frame_max 4096), confirms, get, consume,
/// ack / nack / reject, recover, transactions, flow, purge, unbind, delete.
async fn lapin_session(port: u16) {
    use futures_lite::StreamExt;
    use lapin::options::*;
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(
        &proxy_uri(port, "?frame_max=4096&heartbeat=0"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("lapin connect");
    let ch = conn.create_channel().await.expect("channel");
    let q = unique_name("seed-lapin");
    let x = format!("{q}-x");
    let x2 = format!("{q}-x2");
    let mut qargs = FieldTable::default();
    qargs.insert("x-message-ttl".into(), AMQPValue::LongInt(600_000));
    qargs.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(5));
    ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), qargs)
        .await
        .expect("queue.declare");
    ch.exchange_declare(
        x.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare");
    ch.exchange_declare(
        x2.as_str().into(),
        lapin::ExchangeKind::Headers,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare headers");
    let mut bargs = FieldTable::default();
    bargs.insert("x-match".into(), AMQPValue::LongString("any".into()));
    bargs.insert("kind".into(), AMQPValue::LongString("seed".into()));
    ch.queue_bind(
        q.as_str().into(),
        x2.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        bargs,
    )
    .await
    .expect("bind headers");
    ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "seed.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue.bind");
    ch.exchange_bind(
        x2.as_str().into(),
        x.as_str().into(),
        "seed.*".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let full = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(lapin_headers())
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr-1".into())
        .with_reply_to("seed-replies".into())
        .with_expiration("60000".into())
        .with_message_id("m-1".into())
        .with_timestamp(1_700_000_000)
        .with_type("seed.kind".into())
        .with_user_id("guest".into())
        .with_app_id("fuzz-seeds".into());
    let big = vec![b'z'; 10_000];
    let bodies: [(&str, &[u8], lapin::BasicProperties); 4] = [
        ("seed.a", b"{\"n\":1}", full),
        ("seed.b", b"", lapin::BasicProperties::default()),
        (
            "seed.c.d",
            &big,
            lapin::BasicProperties::default().with_delivery_mode(1),
        ),
        ("other", b"returned", lapin::BasicProperties::default()),
    ];
    for (key, body, props) in bodies {
        ch.basic_publish(
            x.as_str().into(),
            key.into(),
            BasicPublishOptions {
                mandatory: key == "other",
                ..Default::default()
            },
            body,
            props,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    }
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
        .expect("a message");
    got.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .expect("nack");
    ch.basic_qos(2, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "seed-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let first = consumer.next().await.expect("delivery").expect("ok");
    let second = consumer.next().await.expect("delivery").expect("ok");
    first
        .reject(BasicRejectOptions { requeue: true })
        .await
        .expect("reject");
    second
        .ack(BasicAckOptions { multiple: true })
        .await
        .expect("ack");
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .expect("recover");
    ch.basic_cancel("seed-consumer".into(), BasicCancelOptions::default())
        .await
        .expect("cancel");
    let tx = conn.create_channel().await.expect("channel");
    tx.tx_select().await.expect("tx.select");
    tx.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"tx",
        lapin::BasicProperties::default(),
    )
    .await
    .expect("tx publish");
    tx.tx_commit().await.expect("tx.commit");
    tx.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"rolled back",
        lapin::BasicProperties::default(),
    )
    .await
    .expect("tx publish");
    tx.tx_rollback().await.expect("tx.rollback");
    tx.channel_flow(ChannelFlowOptions { active: true })
        .await
        .expect("flow");
    tx.close(200, "bye".into()).await.expect("channel.close");
    ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .await
        .expect("purge");
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "seed.#".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind");
    ch.exchange_unbind(
        x2.as_str().into(),
        x.as_str().into(),
        "seed.*".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind");
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("exchange.delete");
    ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue.delete");
    // A channel error: a passive declare of a missing queue.
    let err = conn.create_channel().await.expect("channel");
    let missing = err
        .queue_declare(
            format!("{q}-missing").as_str().into(),
            passive(),
            FieldTable::default(),
        )
        .await;
    assert!(missing.is_err(), "passive declare of a missing queue");
    conn.close(200, "done".into())
        .await
        .expect("connection.close");
}

/// An amqprs session: declare with arguments, publish with properties and
/// headers under confirms, consume and ack, get, cancel, delete.
async fn amqprs_session(port: u16) {
    use amqprs::channel::*;
    use amqprs::{FieldName, FieldTable, FieldValue};
    let args =
        amqprs::connection::OpenConnectionArguments::new("127.0.0.1", port, "guest", "guest");
    let conn = amqprs::connection::Connection::open(&args)
        .await
        .expect("amqprs connect");
    let ch = conn.open_channel(None).await.expect("channel");
    let q = unique_name("seed-amqprs");
    let mut qargs = FieldTable::new();
    let key = |k: &str| -> FieldName { k.try_into().expect("field name") };
    qargs.insert(key("x-max-length"), FieldValue::l(1000));
    qargs.insert(
        key("x-overflow"),
        FieldValue::S("reject-publish".try_into().unwrap()),
    );
    ch.queue_declare(QueueDeclareArguments::new(&q).arguments(qargs).finish())
        .await
        .expect("queue.declare");
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .expect("confirm");
    let mut headers = FieldTable::new();
    headers.insert(key("attempt"), FieldValue::I(3));
    headers.insert(key("flag"), FieldValue::t(true));
    headers.insert(key("when"), FieldValue::T(1_700_000_000));
    headers.insert(key("note"), FieldValue::S("amqprs".try_into().unwrap()));
    let props = amqprs::BasicProperties::default()
        .with_content_type("text/plain")
        .with_persistence(true)
        .with_headers(headers)
        .with_message_id("a-1")
        .with_correlation_id("c-1")
        .with_reply_to("replies")
        .with_priority(1)
        .with_timestamp(1_700_000_001)
        .finish();
    for body in [b"one".to_vec(), b"two".to_vec(), vec![7u8; 3000]] {
        ch.basic_publish(props.clone(), body, BasicPublishArguments::new("", &q))
            .await
            .expect("publish");
    }
    ch.basic_qos(BasicQosArguments::new(0, 10, false))
        .await
        .expect("qos");
    let (tag, mut rx) = ch
        .basic_consume_rx(
            BasicConsumeArguments::new(&q, "amqprs-seed")
                .manual_ack(true)
                .finish(),
        )
        .await
        .expect("consume");
    let mut last = 0;
    for _ in 0..2 {
        let m = rx.recv().await.expect("delivery");
        last = m.deliver.expect("deliver").delivery_tag();
    }
    ch.basic_ack(BasicAckArguments::new(last, true))
        .await
        .expect("ack");
    ch.basic_cancel(BasicCancelArguments::new(&tag))
        .await
        .expect("cancel");
    ch.basic_get(BasicGetArguments::new(&q).no_ack(true).finish())
        .await
        .expect("get");
    ch.queue_delete(QueueDeleteArguments::new(&q))
        .await
        .expect("delete");
    ch.close().await.expect("channel.close");
    conn.close().await.expect("connection.close");
}

/// A pika session (python3): the tutorials' calls, with properties.
fn pika_session(port: u16) {
    let script = r#"
import sys, pika
params = pika.ConnectionParameters(host='127.0.0.1', port=int(sys.argv[1]), heartbeat=0)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
q = ch.queue_declare(queue='', exclusive=True, arguments={'x-max-length': 100, 'x-expires': 600000}).method.queue
x = 'seed-pika-' + q[8:]
ch.exchange_declare(exchange=x, exchange_type='fanout')
ch.queue_bind(queue=q, exchange=x)
props = pika.BasicProperties(content_type='text/plain', delivery_mode=2, priority=1,
    headers={'n': 1, 'list': [1, 'two', {'three': 3}], 'none': None, 'big': 2**40, 'bytes': b'\x00\xce', 'ok': True},
    correlation_id='pika-c', reply_to='pika-r', expiration='10000', message_id='pika-m',
    timestamp=1700000002, type='t', app_id='pika-seed')
for i in range(3):
    ch.basic_publish(exchange=x, routing_key='', body=('pika %d' % i).encode(), properties=props)
method, header, body = ch.basic_get(queue=q, auto_ack=False)
ch.basic_reject(delivery_tag=method.delivery_tag, requeue=True)
ch.basic_qos(prefetch_count=1)
for method, header, body in ch.consume(q, inactivity_timeout=5):
    if method is None:
        break
    ch.basic_ack(method.delivery_tag)
    if body == b'pika 2':
        break
ch.cancel()
ch.queue_unbind(queue=q, exchange=x)
ch.exchange_delete(exchange=x)
ch.queue_delete(queue=q)
ch.close()
conn.close()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pika session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The seeds directory layout the replay test expects is the one
/// `record_client_traffic` writes: one folder per target.
#[test]
fn seed_folders_are_the_fuzz_targets() {
    let names: BTreeSet<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    for entry in std::fs::read_dir(fuzz_dir().join("corpus")).expect("fuzz/corpus") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy().into_owned();
        assert!(
            names.contains(name.as_str()),
            "fuzz/corpus/{name} is not a fuzz target"
        );
    }
}
