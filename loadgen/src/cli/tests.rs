//! Unit tests of the command line: defaults, PerfTest's short flags,
//! scenarios, cross-flag rules and the compare and merge sub-commands.

use super::config::DEFAULT_TIME_S;
use super::*;
use std::path::PathBuf;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn defaults() {
    let c = parse_run(&[]).unwrap();
    assert_eq!(c.producers, 1);
    assert_eq!(c.consumers, 1);
    assert_eq!(c.size, 16);
    assert_eq!(c.time_s, Some(DEFAULT_TIME_S));
    assert_eq!(c.exchange, ExchangeKind::Default);
    assert_eq!(c.uri.port, 5672);
    assert_eq!(c.mode, Mode::Throughput);
}

#[test]
fn perftest_short_flags() {
    let c = parse_run(&args(
        "-x 3 -y 4 -s 1024 -r 500 -z 5 -c 100 -f persistent -q 50 -A 10 --queues 2",
    ))
    .unwrap();
    assert_eq!(
        (c.producers, c.consumers, c.size, c.rate),
        (3, 4, 1024, 500)
    );
    assert_eq!(c.time_s, Some(5.0));
    assert_eq!(c.confirm, 100);
    assert!(c.persistent);
    assert_eq!((c.qos, c.multi_ack_every, c.queues), (50, 10, 2));
    assert!(!c.autoack);
    assert!(parse_run(&args("-a")).unwrap().autoack);
}

#[test]
fn long_flags_with_equals() {
    let c = parse_run(&args(
        "--producers=2 --uri=amqp://u:p@h:1/v --json=/tmp/x.json --exchange-type topic --routing-key a.b",
    ))
    .unwrap();
    assert_eq!(c.producers, 2);
    assert_eq!(c.uri.host, "h");
    assert_eq!(c.uri.vhost, "v");
    assert_eq!(c.json, Some(PathBuf::from("/tmp/x.json")));
    assert_eq!(c.exchange, ExchangeKind::Topic);
    assert_eq!(c.routing_key.as_deref(), Some("a.b"));
}

#[test]
fn count_without_time_runs_until_count() {
    let c = parse_run(&args("-C 1000")).unwrap();
    assert_eq!(c.pmessages, 1000);
    assert_eq!(c.time_s, None);
    let c = parse_run(&args("-C 1000 -z 3")).unwrap();
    assert_eq!(c.time_s, Some(3.0));
}

#[test]
fn fanout_implies_exchange_and_queues() {
    let c = parse_run(&args("--fanout 10")).unwrap();
    assert_eq!(c.exchange, ExchangeKind::Fanout);
    assert_eq!(c.queues, 10);
    assert!(parse_run(&args("--fanout 3 --exchange-type topic")).is_err());
    // A routing key with no exchange type means a direct exchange.
    let c = parse_run(&args("--routing-key k")).unwrap();
    assert_eq!(c.exchange, ExchangeKind::Direct);
}

#[test]
fn rejects_bad_flags() {
    for bad in [
        "-x",
        "-x many",
        "-s 4",
        "-s 999999999999",
        "-z 0",
        "-z -1",
        "--bogus",
        "-f mandatory",
        "--exchange-type headers",
        "--queues 0",
        "-q 10 -A 20",
        "-x 0 -y 0",
        "--uri http://h",
        "--scenario nope",
        "--mode sideways",
        "--channels-per-connection 0",
        "--backlog 0",
        "--recovery 0",
        "--recovery lots",
        "--expect 0",
        "--since-unix-ns -5",
        "--producer-sndbuf 100",
        "--producer-sndbuf lots",
        "--mode recover-wait -f persistent",
        "--mode fill -f persistent",
        "--mode fill -c 10",
        "--mode fill -f persistent -c 10 --queues 2",
        "--scenario recovery-1m --fanout 2",
    ] {
        assert!(parse_run(&args(bad)).is_err(), "{bad:?} should be refused");
    }
    // Autoack makes -A irrelevant, so no stall check.
    assert!(parse_run(&args("-q 10 -A 20 -a")).is_ok());
}

#[test]
fn scenarios_parse_and_user_flags_override() {
    for s in SCENARIOS {
        let c = parse_run(&args(&format!("--scenario {}", s.name)))
            .unwrap_or_else(|e| panic!("scenario {}: {e}", s.name));
        assert_eq!(c.scenario.as_deref(), Some(s.name));
    }
    let c = parse_run(&args("--scenario persistent-confirms-1k -z 2 -s 2048")).unwrap();
    assert!(c.persistent);
    assert_eq!(c.confirm, 1000);
    assert_eq!(c.size, 2048);
    assert_eq!(c.time_s, Some(2.0));
    let c = parse_run(&args("--scenario backlog --backlog 5000")).unwrap();
    assert_eq!(c.mode, Mode::Backlog);
    assert_eq!(c.backlog, 5000);
    let c = parse_run(&args("--scenario queues-100k")).unwrap();
    assert_eq!((c.mode, c.queues), (Mode::Queues, 100_000));
    let c = parse_run(&args("--scenario fanout-10")).unwrap();
    assert_eq!((c.queues, c.consumers), (10, 10));
}

#[test]
fn feature_scenarios() {
    let c = parse_run(&args("--scenario ttl-expiry")).unwrap();
    assert_eq!(
        (c.mode, c.ttl_ms, c.dead_letter),
        (Mode::TtlExpiry, Some(100), true)
    );
    let c = parse_run(&args(
        "--scenario nack-requeue --requeues 5 --requeue-with reject",
    ))
    .unwrap();
    assert_eq!(
        (c.mode, c.requeues, c.pmessages),
        (Mode::NackRequeue, 5, 100_000)
    );
    assert!(c.requeue_with_reject);
    let c = parse_run(&args("--scenario dlx-fan-in")).unwrap();
    assert_eq!(
        (c.mode, c.queues, c.producers, c.dlx_via),
        (Mode::DlxFanIn, 8, 8, DlxVia::Reject)
    );
    let c = parse_run(&args("--scenario dlx-fan-in --dlx-via ttl --ttl 50")).unwrap();
    assert_eq!((c.dlx_via, c.ttl_ms), (DlxVia::Ttl, Some(50)));
    let c = parse_run(&args("--scenario delayed --delay-min=100 --delay-max=300")).unwrap();
    assert_eq!(c.mode, Mode::Delayed);
    let spread = c.delay_spread().unwrap();
    assert_eq!((spread.min_ms, spread.max_ms), (100, 300));
    assert_eq!(parse_run(&args("")).unwrap().delay_spread(), None);
    let c = parse_run(&args("--scenario ttl-1m-memory --rss-bound-mib 80")).unwrap();
    assert_eq!(
        (c.mode, c.backlog, c.ttl_ms, c.size, c.rss_bound_mib),
        (Mode::TtlMemory, 1_000_000, Some(30_000), 1024, Some(80.0))
    );
    assert_eq!(
        c.time_s, None,
        "the fill is not cut short by the default run length"
    );
}

#[test]
fn feature_modes_refuse_what_they_cannot_measure() {
    for bad in [
        // No TTL to expire by.
        "--mode ttl-expiry",
        "--mode ttl-memory -c 100",
        "--mode dlx-fan-in --dlx-via ttl",
        // Bodies too short for the id.
        "--mode nack-requeue -s 8",
        "--mode ttl-expiry --ttl 10 --dead-letter -s 12",
        // nack-requeue: each queue has exactly one acking consumer.
        "--mode nack-requeue -y 2",
        "--mode nack-requeue -a",
        // ttl-memory must know every message is in before it times expiry.
        "--mode ttl-memory --ttl 1000",
        // Delays out of order or too widely spread.
        "--mode delayed --delay-min 10 --delay-max 5",
        "--mode delayed --delay-max 200000",
        "--mode delayed -y 0",
        "--mode dlx-fan-in --fanout 2",
        "--mode ttl-expiry --ttl 10 --exchange-type direct",
        "--ttl 0",
        "--requeues 0",
        "--dlx-via maybe",
        "--requeue-with ack",
        "--rss-bound-mib -1",
    ] {
        assert!(parse_run(&args(bad)).is_err(), "{bad:?} should be refused");
    }
    // Expiry without dead-lettering needs no consumer and no id.
    let c = parse_run(&args("--mode ttl-expiry --ttl 10 -y 0 -s 8")).unwrap();
    assert!(!c.dead_letter);
    assert!(parse_run(&args("--mode nack-requeue --queues 2 -y 2 -x 2")).is_ok());
}

#[test]
fn recovery_flags() {
    let c = parse_run(&args("--scenario recovery-1m")).unwrap();
    assert_eq!(c.mode, Mode::Fill);
    assert_eq!((c.backlog, c.expect), (1_000_000, 1_000_000));
    assert!(c.persistent);
    assert_eq!((c.size, c.confirm), (16, 1000));
    let c = parse_run(&args(
        "--scenario recovery-1m --mode recover-wait --recovery 5000 --since-unix-ns 17 --save /tmp/r.txt",
    ))
    .unwrap();
    assert_eq!(c.mode, Mode::RecoverWait);
    assert_eq!((c.backlog, c.expect), (5000, 5000));
    assert_eq!(c.since_unix_ns, Some(17));
    assert_eq!(c.save, Some(PathBuf::from("/tmp/r.txt")));
    // --expect alone changes only what recover-wait waits for.
    let c = parse_run(&args("--mode recover-wait -f persistent --expect 7")).unwrap();
    assert_eq!((c.expect, c.backlog, c.since_unix_ns), (7, 1_000_000, None));
    let c = parse_run(&args("--mode fill -f persistent -c 5 -x 0")).unwrap();
    assert_eq!(c.producers, 1, "fill always has a producer");
}

#[test]
fn merge_flags() {
    let c = parse_merge(&args(
        "--title recovery-1m --intro=x --a-name w --b-name r --a f1 --a f2 --b g1 --markdown m.md",
    ))
    .unwrap();
    assert_eq!((c.title.as_str(), c.intro.as_str()), ("recovery-1m", "x"));
    assert_eq!((c.a_name.as_str(), c.b_name.as_str()), ("w", "r"));
    assert_eq!(c.a_files, vec![PathBuf::from("f1"), PathBuf::from("f2")]);
    assert_eq!(c.b_files, vec![PathBuf::from("g1")]);
    assert_eq!(c.markdown, Some(PathBuf::from("m.md")));
    assert!(!c.keep_failed);
    let c = parse_merge(&args("--title t --a f --b g --keep-failed")).unwrap();
    assert!(c.keep_failed);
    for bad in [
        "--a f --b g",
        "--title t --a f",
        "--title t --b g",
        "--title t --a f --b g --bogus 1",
        "--title",
    ] {
        assert!(
            parse_merge(&args(bad)).is_err(),
            "{bad:?} should be refused"
        );
    }
}

#[test]
fn compare_flags() {
    let c = parse_compare(&args(
        "--a amqp://h:5672 --b amqp://h:5673 --a-pid 10 --rounds 3 --scenario 1p1c-1k -z 1",
    ))
    .unwrap();
    assert_eq!(c.a.port, 5672);
    assert_eq!(c.b.port, 5673);
    assert_eq!((c.a_pid, c.b_pid, c.rounds), (Some(10), None, 3));
    assert_eq!(c.run.size, 1024);
    assert_eq!(c.run.time_s, Some(1.0));
    assert_eq!(c.markdown, None);
    let c = parse_compare(&args("--a amqp://h --b amqp://h --markdown=/tmp/m.md")).unwrap();
    assert_eq!(c.markdown, Some(PathBuf::from("/tmp/m.md")));
    assert_eq!(c.rounds, 2);
    assert_eq!((c.a_name.as_str(), c.b_name.as_str()), ("A", "B"));
    assert!(parse_compare(&args("--a amqp://h")).is_err());
    assert!(parse_compare(&args("--a amqp://h --b amqp://h --uri amqp://x")).is_err());
    assert!(parse_compare(&args("--a amqp://h --b amqp://h --rounds 0")).is_err());
}

#[test]
fn producer_sndbuf_is_optional_and_bounded() {
    assert_eq!(parse_run(&args("")).unwrap().producer_sndbuf, None);
    let c = parse_run(&args("--scenario 1p1c-16b --producer-sndbuf 65536")).unwrap();
    assert_eq!(c.producer_sndbuf, Some(65_536));
}

#[test]
fn client_like_traffic_flags() {
    // Defaults: batched writes, 64 KiB reads.
    let c = parse_run(&[]).unwrap();
    assert!(!c.write_per_publish);
    assert_eq!(c.read_size, None);
    assert_eq!(c.read_chunk(), DEFAULT_READ_SIZE);
    // --client-like: one write per publish/ack, 4 KiB reads; acks as -A says.
    let c = parse_run(&args("--client-like -A 1")).unwrap();
    assert!(c.write_per_publish && c.client_like);
    assert_eq!(c.read_chunk(), 4096);
    assert_eq!(c.multi_ack_every, 1);
    // An explicit --read-size wins, whichever side of --client-like it is on.
    for a in [
        "--read-size 512 --client-like",
        "--client-like --read-size=512",
    ] {
        assert_eq!(parse_run(&args(a)).unwrap().read_chunk(), 512);
    }
    // Each part alone.
    let c = parse_run(&args("--write-per-publish")).unwrap();
    assert!(c.write_per_publish);
    assert_eq!(c.read_size, None);
    let c = parse_run(&args("--read-size 1024")).unwrap();
    assert!(!c.write_per_publish);
    assert_eq!(c.read_chunk(), 1024);
    // Bounded.
    assert!(parse_run(&args("--read-size 63")).is_err());
    assert!(parse_run(&args("--read-size 2000000")).is_err());
    assert!(parse_run(&args("--read-size x")).is_err());
    assert!(parse_run(&args("--read-size")).is_err());
    // The scenarios carry it, and the user's flags still override.
    let c = parse_run(&args("--scenario client-like-16b")).unwrap();
    assert!(c.write_per_publish);
    assert_eq!((c.multi_ack_every, c.read_chunk()), (1, 4096));
    let c = parse_run(&args(
        "--scenario client-like-persistent-1k -A 10 --read-size 8192",
    ))
    .unwrap();
    assert!(c.persistent && c.write_per_publish);
    assert_eq!((c.confirm, c.size), (1000, 1024));
    assert_eq!((c.multi_ack_every, c.read_chunk()), (10, 8192));
    // compare passes them through to both sides.
    let cc = parse_compare(&args("--a amqp://h:1 --b amqp://h:2 --client-like")).unwrap();
    assert!(cc.run.write_per_publish);
}

#[test]
fn data_dir_flag() {
    let c = parse_run(&args("-f persistent --data-dir /var/lib/warren")).unwrap();
    assert_eq!(c.data_dir, Some(PathBuf::from("/var/lib/warren")));
    assert!(c.is_persistent());
    assert!(!parse_run(&[]).unwrap().is_persistent());
    assert!(parse_run(&args("--mode fill -f persistent -c 10"))
        .unwrap()
        .is_persistent());
    assert!(parse_run(&args("--data-dir")).is_err());
}

#[test]
fn compare_targets_file() {
    let cc = parse_compare(&args(
        "--a amqp://h:1 --b amqp://h:2 --targets /tmp/t.md --scenario 4p4c",
    ))
    .unwrap();
    assert_eq!(cc.targets, Some(PathBuf::from("/tmp/t.md")));
    assert_eq!(cc.run.scenario.as_deref(), Some("4p4c"));
    assert!(parse_compare(&args("--a amqp://h:1 --b amqp://h:2 --targets")).is_err());
}
