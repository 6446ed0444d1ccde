//! Operations: a small read-only admin endpoint (plain HTTP/1.0 on
//! localhost, served by shard 0) and the `warren ctl` client that prints its
//! listings like `rabbitmqctl list_queues` does — queues (ready, unacked,
//! consumers), exchanges, bindings, connections, channels, consumers, and
//! the live counters. `curl http://127.0.0.1:<admin-port>/queues` works too.
//!
//! Shard 0 gathers a snapshot from every shard over the mesh; formatting is
//! pure (`render`) so it is unit-tested alone.

pub mod client;

use crate::broker::exchange::Destination;
use crate::shard::envelope::{Reply, Request, ShardSnapshot};
use crate::shard::Shard;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::fmt::Write;
use std::rc::Rc;
use std::time::Duration;

/// The listings the endpoint serves (path = `/<name>`).
pub const LISTINGS: &[&str] = &[
    "queues",
    "exchanges",
    "bindings",
    "connections",
    "channels",
    "consumers",
    "counters",
];

/// Serves the admin endpoint until the shard stops.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = glommio::timer::timeout(Duration::from_secs(10), async {
                        handle(&shard, stream).await;
                        Ok(())
                    })
                    .await;
                })
                .detach();
            }
            Err(_) => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    // Read the whole request head (bounded): closing with unread bytes
    // would reset the connection and could lose the response.
    while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
    }
    let line = String::from_utf8_lossy(&buf[..len]);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/');
    let (status, body) = if LISTINGS.contains(&name) {
        let snapshots = gather(shard).await;
        ("200 OK", render(name, shard, &snapshots))
    } else {
        (
            "404 Not Found",
            format!(
                "unknown listing '{name}'; try one of: {}\n",
                LISTINGS.join(", ")
            ),
        )
    };
    let response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

/// Every shard's snapshot, in shard order.
pub async fn gather(shard: &Rc<Shard>) -> Vec<ShardSnapshot> {
    let mut out = Vec::with_capacity(shard.count as usize);
    for id in 0..shard.count {
        if let Reply::Snapshot(s) = shard.request(id, Request::Snapshot).await {
            out.push(*s);
        }
    }
    out
}

/// Formats one listing: a title line, a header line, tab-separated rows.
pub fn render(listing: &str, shard: &Shard, snapshots: &[ShardSnapshot]) -> String {
    let mut out = String::new();
    let title = match listing {
        "counters" => "Counters",
        other => other,
    };
    let _ = writeln!(out, "Listing {title} for vhost / ...");
    match listing {
        "queues" => {
            out.push_str("name\tmessages_ready\tmessages_unacknowledged\tconsumers\tdurable\tauto_delete\texclusive\tshard\n");
            for s in snapshots {
                for q in &s.queues {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        q.name,
                        q.messages,
                        q.unacked,
                        q.consumers.len(),
                        q.durable,
                        q.auto_delete,
                        q.exclusive,
                        s.shard
                    );
                }
            }
        }
        "exchanges" => {
            out.push_str("name\ttype\tdurable\tauto_delete\tinternal\n");
            let meta = shard.meta.borrow();
            let mut xs: Vec<_> = meta.topology.exchanges().collect();
            xs.sort_by(|a, b| a.name.cmp(&b.name));
            for x in xs {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    x.name,
                    x.kind.as_str(),
                    x.durable,
                    x.auto_delete,
                    x.internal
                );
            }
        }
        "bindings" => {
            out.push_str(
                "source_name\tdestination_kind\tdestination_name\trouting_key\targuments\n",
            );
            let meta = shard.meta.borrow();
            for b in meta.topology.bindings() {
                let (kind, dest) = match &b.destination {
                    Destination::Queue(q) => ("queue", q),
                    Destination::Exchange(x) => ("exchange", x),
                };
                let _ = writeln!(
                    out,
                    "{}\t{kind}\t{dest}\t{}\t{:?}",
                    b.source, b.routing_key, b.arguments.0
                );
            }
        }
        "connections" => {
            out.push_str("name\tuser\tshard\tchannels\n");
            for s in snapshots {
                for c in &s.connections {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        c.peer,
                        c.user,
                        s.shard,
                        c.channels.len()
                    );
                }
            }
        }
        "channels" => {
            out.push_str("connection\tnumber\tconsumer_count\tmessages_unacknowledged\tprefetch_count\tconfirm\n");
            for s in snapshots {
                for c in &s.connections {
                    for ch in &c.channels {
                        let _ = writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            c.peer, ch.id, ch.consumers, ch.unacked, ch.prefetch, ch.confirm
                        );
                    }
                }
            }
        }
        "consumers" => {
            out.push_str("queue_name\tconsumer_tag\tchannel\tconnection\tack_required\tprefetch_count\tunacked\n");
            for s in snapshots {
                for q in &s.queues {
                    for (key, no_ack, prefetch, unacked) in &q.consumers {
                        let _ = writeln!(
                            out,
                            "{}\t{}\t{}\t{}.{}\t{}\t{}\t{}",
                            q.name,
                            key.tag,
                            key.channel,
                            key.shard,
                            key.conn,
                            !no_ack,
                            prefetch,
                            unacked
                        );
                    }
                }
            }
        }
        "counters" => {
            out.push_str("shard\tpublished\trouted_copies\tunroutable\tdelivered\tacked\tconfirmed\tconnections_opened\tconnections_closed\n");
            let mut total = crate::shard::counters::CountersSnapshot::default();
            let mut row = |name: String, c: &crate::shard::counters::CountersSnapshot| {
                let _ = writeln!(
                    out,
                    "{name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.published,
                    c.routed_copies,
                    c.unroutable,
                    c.delivered,
                    c.acked,
                    c.confirmed,
                    c.connections_opened,
                    c.connections_closed
                );
            };
            for s in snapshots {
                row(s.shard.to_string(), &s.counters);
                total.merge(&s.counters);
            }
            row("total".into(), &total);
        }
        _ => {}
    }
    out
}
