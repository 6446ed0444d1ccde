//! Integration tests of the per-shard log (`warren::storage`) on real files:
//! recovery, torn tails, group commit, segment roll-over and reclamation,
//! reading bodies back, and a simulated crash.

use bytes::Bytes;
use glommio::LocalExecutorBuilder;
use std::future::Future;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use warren::protocol::types::ShortStr;
use warren::storage::{segment, Log, LogConfig, Message, Record, RecordPos, Target};

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor thread");
}

fn small() -> LogConfig {
    LogConfig {
        segment_size: 16 << 10,
        ..LogConfig::default()
    }
}

fn msg(queue: &str, id: u64, body_len: usize) -> Record {
    Record::Message(Message {
        targets: vec![Target {
            queue: ShortStr::from(queue),
            msg_id: id,
            expires: None,
        }],
        exchange: ShortStr::from("amq.direct"),
        routing_key: ShortStr::from(queue),
        raw_properties: Bytes::from_static(&[0x10, 0x00, 0x02]),
        body: Bytes::from(vec![(id % 251) as u8; body_len]),
    })
}

fn ack(queue: &str, id: u64) -> Record {
    Record::Ack {
        queue: ShortStr::from(queue),
        msg_id: id,
    }
}

fn mixed(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| match i % 5 {
            0..=2 => msg("q", i, (i as usize * 37) % 900),
            3 => ack("q", i - 1),
            _ => Record::Metadata {
                payload: Bytes::from(format!("meta-{i}")),
            },
        })
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

async fn sleep_ms(ms: u64) {
    glommio::timer::sleep(Duration::from_millis(ms)).await;
}

#[test]
fn append_sync_reopen_returns_records_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert!(rec.is_empty());
        let records = mixed(200);
        let mut positions = Vec::new();
        for r in &records {
            positions.push(log.append(r).unwrap());
        }
        log.sync(positions.last().unwrap().lsn()).await.unwrap();
        assert!(log.durable_lsn() >= positions.last().unwrap().lsn());
        assert!(log.segments().len() > 1, "200 records roll 16 KiB segments");
        log.close().await.unwrap();

        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert_eq!(rec.len(), records.len());
        for ((got, want), pos) in rec.iter().zip(&records).zip(&positions) {
            assert_eq!(&got.record, want);
            assert_eq!(&got.pos, pos);
        }
        assert!(log.recovery_report().truncated.is_none());
        // Appends after reopen land after the recovered ones.
        let more = mixed(30);
        for r in &more {
            log.append(r).unwrap();
        }
        log.close().await.unwrap();
        let (_log, rec) = Log::open(&dir, small()).await.unwrap();
        let all: Vec<&Record> = records.iter().chain(&more).collect();
        assert_eq!(rec.len(), all.len());
        for (got, want) in rec.iter().zip(all) {
            assert_eq!(&got.record, want);
        }
    });
}

/// Writes records, closes, damages the last one with `damage(path, last)`,
/// and checks that recovery keeps exactly `keep` records, cuts the tail,
/// and that later appends are recovered after them.
fn torn_case(damage: fn(&Path, RecordPos), expect_lost: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, LogConfig::default()).await.unwrap();
        let records = mixed(50);
        let mut last = None;
        for r in &records {
            last = Some(log.append(r).unwrap());
        }
        log.close().await.unwrap();
        let last = last.unwrap();
        damage(&segment::path(&dir, last.segment), last);

        let (log, rec) = Log::open(&dir, LogConfig::default()).await.unwrap();
        let keep = records.len() - expect_lost;
        assert_eq!(rec.len(), keep);
        for (got, want) in rec.iter().zip(&records) {
            assert_eq!(&got.record, want);
        }
        let report = log.recovery_report();
        let (seg, end, _why) = report.truncated.expect("tail cut");
        assert_eq!(seg, last.segment);
        let file_len = std::fs::metadata(segment::path(&dir, seg)).unwrap().len();
        assert_eq!(file_len, end, "segment truncated to its valid prefix");

        let extra = msg("after", 1, 100);
        log.append(&extra).unwrap();
        log.close().await.unwrap();
        let (log, rec) = Log::open(&dir, LogConfig::default()).await.unwrap();
        assert_eq!(rec.len(), keep + 1);
        assert_eq!(rec.last().unwrap().record, extra);
        assert!(log.recovery_report().truncated.is_none());
    });
}

#[test]
fn torn_tail_mid_record_is_cut() {
    torn_case(
        |path, last| {
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len((last.offset + last.len - 3) as u64).unwrap();
        },
        1,
    );
}

#[test]
fn garbage_after_last_record_is_cut() {
    torn_case(
        |path, last| {
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.seek(SeekFrom::Start((last.offset + last.len) as u64))
                .unwrap();
            f.write_all(&[0xAB; 100]).unwrap();
            f.sync_all().unwrap();
        },
        0,
    );
}

#[test]
fn corrupt_byte_in_last_record_is_cut() {
    torn_case(
        |path, last| {
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.seek(SeekFrom::Start((last.offset + last.len - 1) as u64))
                .unwrap();
            f.write_all(&[0x5A]).unwrap();
            f.sync_all().unwrap();
        },
        1,
    );
}

#[test]
fn corruption_in_an_older_segment_quarantines_later_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let records: Vec<Record> = (0..60).map(|i| msg("q", i, 1000)).collect();
        let pos: Vec<RecordPos> = records.iter().map(|r| log.append(r).unwrap()).collect();
        log.close().await.unwrap();
        let first_seg = pos[0].segment;
        assert!(pos.last().unwrap().segment > first_seg + 1);
        // Flip a byte inside the third record of the first segment.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(segment::path(&dir, first_seg))
            .unwrap();
        f.seek(SeekFrom::Start(pos[2].offset as u64 + 20)).unwrap();
        f.write_all(&[0xFF]).unwrap();
        f.sync_all().unwrap();
        drop(f);

        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert_eq!(rec.len(), 2, "only the prefix before the corruption");
        let report = log.recovery_report();
        assert!(!report.quarantined.is_empty());
        let names = files(&dir);
        assert!(names.iter().any(|n| n.ends_with(".seg.corrupt")));
    });
}

#[test]
fn concurrent_appenders_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, LogConfig::default()).await.unwrap();
        let log = Rc::new(log);
        let (tasks, per_task) = (200u64, 20u64);
        let mut handles = Vec::new();
        for t in 0..tasks {
            let log = log.clone();
            handles.push(glommio::spawn_local(async move {
                for i in 0..per_task {
                    let pos = log.append(&msg("q", t * 1000 + i, 64)).unwrap();
                    log.sync(pos.lsn()).await.unwrap();
                    assert!(log.durable_lsn() >= pos.lsn());
                }
            }));
        }
        for h in handles {
            h.await;
        }
        let stats = log.stats();
        let total = tasks * per_task;
        assert_eq!(stats.appends, total);
        assert!(
            stats.fsyncs * 20 < total,
            "{} fsyncs for {} synced records",
            stats.fsyncs,
            total
        );
        assert!(stats.max_batch_records >= 100, "{stats:?}");
        let log = Rc::try_unwrap(log).ok().unwrap();
        log.close().await.unwrap();
        let (_log, rec) = Log::open(&dir, LogConfig::default()).await.unwrap();
        assert_eq!(rec.len() as u64, total);
    });
}

#[test]
fn dead_segments_are_deleted_and_acks_outlive_their_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        // Segment A: m0 (long-lived) and m1..; then fill so acks go to later
        // segments.
        let mut msgs = Vec::new();
        for i in 0..30u64 {
            msgs.push((i, log.append(&msg("q", i, 1500)).unwrap()));
        }
        let seg_a = msgs[0].1.segment;
        // Ack every message except m0.
        for &(i, pos) in &msgs[1..] {
            let a = log.append(&ack("q", i)).unwrap();
            log.release(pos.segment, a.segment);
        }
        // Push the acks into sealed segments.
        for i in 100..120u64 {
            let p = log.append(&msg("other", i, 1500)).unwrap();
            let a = log.append(&ack("other", i)).unwrap();
            log.release(p.segment, a.segment);
        }
        log.sync_all().await.unwrap();
        for _ in 0..200 {
            if log.stats().segments_deleted > 0 && log.segments()[0] == seg_a {
                break;
            }
            sleep_ms(5).await;
        }
        let segs = log.segments();
        assert_eq!(segs[0], seg_a, "segment with a live message is kept");
        assert!(log.stats().segments_deleted > 0, "dead segments deleted");
        // The segment holding the ack records of A's dead messages must be
        // kept while A exists, or a restart would resurrect them.
        // A forgotten segment's file is unlinked asynchronously: wait for it.
        for _ in 0..2000 {
            if files(&dir).len() == log.segments().len() {
                break;
            }
            sleep_ms(5).await;
        }
        let on_disk = files(&dir);
        assert_eq!(on_disk.len(), log.segments().len());
        log.close().await.unwrap();

        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        let acked: std::collections::HashSet<(String, u64)> = rec
            .iter()
            .filter_map(|r| match &r.record {
                Record::Ack { queue, msg_id } => Some((queue.to_string(), *msg_id)),
                _ => None,
            })
            .collect();
        for r in &rec {
            if let Record::Message(m) = &r.record {
                let t = &m.targets[0];
                let is_acked = acked.contains(&(t.queue.to_string(), t.msg_id));
                assert!(t.msg_id == 0 || is_acked, "resurrected {t:?}");
            }
        }
        // Replay: release what the recovered acks kill, then m0 too.
        let mut index = std::collections::HashMap::new();
        for r in &rec {
            match &r.record {
                Record::Message(m) => {
                    index.insert(m.targets[0].msg_id, r.pos.segment);
                }
                Record::Ack { msg_id, .. } => {
                    if let Some(seg) = index.remove(msg_id) {
                        log.release(seg, r.pos.segment);
                    }
                }
                _ => {}
            }
        }
        log.replay_done();
        let a0 = log.append(&ack("q", 0)).unwrap();
        log.release(seg_a, a0.segment);
        // Roll past the ack so its segment is sealed too.
        for i in 200..215u64 {
            let p = log.append(&msg("other", i, 1500)).unwrap();
            let a = log.append(&ack("other", i)).unwrap();
            log.release(p.segment, a.segment);
        }
        log.sync_all().await.unwrap();
        // The log forgets the segment first and unlinks its file after:
        // wait for both.
        for _ in 0..400 {
            if !log.segments().contains(&seg_a) && !files(&dir).contains(&segment::file_name(seg_a))
            {
                break;
            }
            sleep_ms(5).await;
        }
        assert!(!log.segments().contains(&seg_a));
        assert!(!files(&dir).contains(&segment::file_name(seg_a)));
        log.close().await.unwrap();
    });
}

#[test]
fn recovered_ack_segments_wait_for_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let m = log.append(&msg("q", 1, 100)).unwrap();
        let keep = log.append(&msg("q", 2, 100)).unwrap();
        log.close().await.unwrap();
        // New life: the ack lands in a new segment, which is sealed at the
        // next reopen with no live references.
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let a = log.append(&ack("q", 1)).unwrap();
        log.release(m.segment, a.segment);
        log.close().await.unwrap();

        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert_eq!(rec.len(), 3);
        sleep_ms(50).await;
        assert!(
            log.segments().contains(&a.segment),
            "ack-only segment kept before replay"
        );
        // The broker replays without releasing anything for m2 (still live)
        // and releases m1 again for the recovered ack.
        log.release(m.segment, a.segment);
        log.replay_done();
        sleep_ms(50).await;
        assert!(log.segments().contains(&keep.segment));
        assert!(
            log.segments().contains(&a.segment),
            "still pinned by the message segment"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn oversized_record_gets_its_own_segment_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let small_pos = log.append(&msg("q", 1, 10)).unwrap();
        let big = msg("q", 2, 100_000);
        let big_pos = log.append(&big).unwrap();
        assert_ne!(big_pos.segment, small_pos.segment);
        let after = log.append(&msg("q", 3, 10)).unwrap();
        // read_body waits for durability itself.
        let body = log.read_body(big_pos).await.unwrap();
        assert_eq!(body.len(), 100_000);
        assert!(body.iter().all(|&b| b == 2));
        assert_eq!(log.read_record(small_pos).await.unwrap(), msg("q", 1, 10));
        assert_eq!(log.read_record(after).await.unwrap(), msg("q", 3, 10));
        assert!(log
            .read_body(log.append(&ack("q", 1)).unwrap())
            .await
            .is_err());
        log.close().await.unwrap();
        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert_eq!(rec[1].record, big);
        assert_eq!(log.read_body(big_pos).await.unwrap().len(), 100_000);
    });
}

#[test]
fn too_large_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let cfg = LogConfig {
            max_record_len: 4096,
            ..small()
        };
        let (log, _) = Log::open(&dir, cfg).await.unwrap();
        assert!(log.append(&msg("q", 1, 5000)).is_err());
        assert!(log.append(&msg("q", 1, 50)).is_ok());
        log.close().await.unwrap();
    });
}

#[test]
fn crash_without_sync_recovers_a_clean_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let records = mixed(400);
        for (i, r) in records.iter().enumerate() {
            log.append(r).unwrap();
            if i % 100 == 50 {
                // Let the writer pick up a batch.
                glommio::yield_if_needed().await;
                sleep_ms(1).await;
            }
        }
        log.crash().await;
        let (log, rec) = Log::open(&dir, small()).await.unwrap();
        assert!(rec.len() < records.len(), "the tail was never written");
        assert!(!rec.is_empty(), "batches before the crash survived");
        for (got, want) in rec.iter().zip(&records) {
            assert_eq!(&got.record, want);
        }
        // And the log is usable.
        log.append(&msg("q", 9, 9)).unwrap();
        log.close().await.unwrap();
        let (_log, again) = Log::open(&dir, small()).await.unwrap();
        assert_eq!(again.len(), rec.len() + 1);
    });
}

/// `Log::pin`: the segment of a record about a live message (a delivery
/// count) is kept while the message's segment is, though nothing in it is
/// live; once the message dies, both go.
#[test]
fn a_pinned_segment_stays_while_the_message_segment_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run(move || async move {
        let (log, _) = Log::open(&dir, small()).await.unwrap();
        let m = log.append(&msg("q", 0, 1500)).unwrap();
        // Fill: the count record lands in a later segment.
        for i in 100..115u64 {
            let p = log.append(&msg("other", i, 1500)).unwrap();
            let a = log.append(&ack("other", i)).unwrap();
            log.release(p.segment, a.segment);
        }
        let returned = Record::Returned {
            queue: ShortStr::from("q"),
            msg_id: 0,
            delivery_count: 2,
        };
        let r = log.append(&returned).unwrap();
        assert!(r.segment > m.segment);
        log.pin(m.segment, r.segment);
        // Roll on, with more traffic, so the count's segment is sealed and dead.
        for i in 200..230u64 {
            let p = log.append(&msg("other", i, 1500)).unwrap();
            let a = log.append(&ack("other", i)).unwrap();
            log.release(p.segment, a.segment);
        }
        log.sync_all().await.unwrap();
        for _ in 0..400 {
            if log.stats().segments_deleted > 0 {
                break;
            }
            sleep_ms(5).await;
        }
        sleep_ms(50).await;
        let segs = log.segments();
        assert!(log.stats().segments_deleted > 0, "dead segments deleted");
        assert!(
            segs.contains(&m.segment) && segs.contains(&r.segment),
            "{segs:?}"
        );
        // The message dies: its segment goes, and then the pinned one.
        let a = log.append(&ack("q", 0)).unwrap();
        log.release(m.segment, a.segment);
        log.sync_all().await.unwrap();
        for _ in 0..400 {
            let segs = log.segments();
            if !segs.contains(&m.segment) && !segs.contains(&r.segment) {
                break;
            }
            sleep_ms(5).await;
        }
        let segs = log.segments();
        assert!(!segs.contains(&r.segment), "{segs:?}");
        log.close().await.unwrap();
    });
}
