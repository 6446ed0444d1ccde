//! A torn log tail is cut off at recovery.

use super::*;

// ------------------------------------------------------------ torn tail ----

/// How the tail of a shard's log is damaged while the broker is down.
#[derive(Clone, Copy, Debug)]
enum Tear {
    /// The second half of the last record reads as zeroes (a torn write
    /// into the preallocated file).
    ZeroedHalf,
    /// The file ends a few bytes into the last record.
    Cut,
    /// Garbage right after the last record (the last record is intact).
    Garbage,
}

/// The segment files of a shard log directory, ascending by id.
pub(crate) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let digits = name.strip_suffix(".seg")?;
            if digits.len() != 20 {
                return None;
            }
            Some((digits.parse().ok()?, e.path()))
        })
        .collect();
    segs.sort();
    segs.into_iter().map(|(_, p)| p).collect()
}

/// `(offset, length incl. header)` of each record of a segment file: they
/// are contiguous from offset 0 until eight zero bytes or EOF.
fn records(file: &File) -> Vec<(u64, u64)> {
    let size = file.metadata().expect("stat segment").len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos + 8 <= size {
        let mut header = [0u8; 8];
        file.read_exact_at(&mut header, pos).expect("read header");
        if header == [0; 8] {
            break;
        }
        let len = u64::from(u32::from_le_bytes(header[..4].try_into().unwrap()));
        let total = 8 + len;
        assert!(
            len >= 1 && pos + total <= size,
            "record at {pos} (len {len}) runs past the end of the segment ({size})"
        );
        out.push((pos, total));
        pos += total;
    }
    out
}

/// Damages the last record of the last non-empty segment of `shard_dir`,
/// which must be a message record whose body is `last_body`.
fn tear(shard_dir: &Path, tear: Tear, last_body: &str) {
    let segs = segment_files(shard_dir);
    let (path, file, recs) = segs
        .iter()
        .rev()
        .find_map(|p| {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .expect("open segment");
            let r = records(&f);
            (!r.is_empty()).then(|| (p.clone(), f, r))
        })
        .unwrap_or_else(|| panic!("no records under {}", shard_dir.display()));
    let &(off, total) = recs.last().expect("non-empty");
    let mut rec = vec![0u8; total as usize];
    file.read_exact_at(&mut rec, off).expect("read last record");
    assert_eq!(
        rec[8],
        1,
        "the last record of {} is a message",
        path.display()
    );
    assert!(
        rec.ends_with(last_body.as_bytes()),
        "the last record of {} ends with body {last_body:?}",
        path.display()
    );
    match tear {
        Tear::ZeroedHalf => {
            let from = off + total / 2;
            let zeros = vec![0u8; (off + total - from) as usize];
            file.write_all_at(&zeros, from).expect("zero the tail");
        }
        Tear::Cut => file.set_len(off + 8 + 3).expect("truncate"),
        Tear::Garbage => {
            let garbage: Vec<u8> = (0..37u8).map(|i| 0xA5 ^ i.wrapping_mul(31)).collect();
            file.write_all_at(&garbage, off + total)
                .expect("write garbage");
        }
    }
    file.sync_all().expect("sync segment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_cut_off() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for kind in [Tear::ZeroedHalf, Tear::Cut, Tear::Garbage] {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("torn-{p:?}")))
                .collect();
            let old = bodies("m", 0..20);
            let new = bodies("n", 0..3);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &old).await;
                }
            })
            .await;
            node.down(Down::Kill);
            // One queue per shard: each shard's log ends with its last message.
            for p in &placements {
                let dir = node.path().join(format!("shard-{}", p.unwrap_or(0)));
                tear(&dir, kind, old.last().expect("messages"));
            }
            node.broker = Broker::start_in(shards, node.path());
            let survivors: Vec<String> = match kind {
                Tear::Garbage => old.clone(),
                Tear::ZeroedHalf | Tear::Cut => old[..old.len() - 1].to_vec(),
            };
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for q in &queues {
                    assert_eq!(
                        drain(&conn, q).await,
                        fresh(&survivors),
                        "{q} after {kind:?}"
                    );
                    publish_all(&ch, q, &new).await;
                }
            })
            .await;
            node.restart(Down::Term);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(
                        drain(&conn, q).await,
                        fresh(&new),
                        "{q}: new messages after {kind:?} and a restart"
                    );
                }
            })
            .await;
        }
    }
}
