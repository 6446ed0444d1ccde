//! Setting a run's topology up and tearing it down over an admin
//! connection, and the synchronous RPCs that needs (queue depth by passive
//! declare).

use warren_protocol::methods::{
    ExchangeDeclare, ExchangeDelete, Method, QueueBind, QueueDeclare, QueueDelete,
};
use warren_protocol::types::{FieldTable, ShortStr};

use crate::cli::Config;
use crate::client::{Conn, Error};
use crate::topology::Topology;

pub(super) fn short(s: &str) -> Result<ShortStr, Error> {
    ShortStr::try_from_string(s.to_string()).ok_or_else(|| Error(format!("{s:?}: name too long")))
}

pub(super) fn expect(m: Method, want: &str) -> Result<Method, Error> {
    if m.name() == want {
        Ok(m)
    } else {
        Err(Error(format!("expected {want}, got {}", m.name())))
    }
}

/// Declares the exchange, queues and bindings (deleting leftovers of an
/// earlier run first, so stale messages cannot skew the numbers).
pub(super) fn setup(conn: &mut Conn, cfg: &Config, topo: &Topology) -> Result<(), Error> {
    conn.open_channel(1)?;
    for q in &topo.queues {
        delete_queue(conn, q)?;
        let m = conn.rpc(
            1,
            QueueDeclare {
                queue: short(q)?,
                durable: cfg.persistent,
                ..QueueDeclare::default()
            },
        )?;
        expect(m, "queue.declare_ok")?;
    }
    if !topo.exchange.is_empty() {
        delete_exchange(conn, &topo.exchange)?;
        let m = conn.rpc(
            1,
            ExchangeDeclare {
                exchange: short(&topo.exchange)?,
                kind: ShortStr::from_static(topo.exchange_kind.as_str()),
                durable: cfg.persistent,
                ..ExchangeDeclare::default()
            },
        )?;
        expect(m, "exchange.declare_ok")?;
        for (q, key) in &topo.bindings {
            let m = conn.rpc(
                1,
                QueueBind {
                    queue: short(&topo.queues[*q])?,
                    exchange: short(&topo.exchange)?,
                    routing_key: short(key)?,
                    no_wait: false,
                    arguments: FieldTable::new(),
                },
            )?;
            expect(m, "queue.bind_ok")?;
        }
    }
    Ok(())
}

pub(super) fn delete_queue(conn: &mut Conn, q: &str) -> Result<(), Error> {
    let m = conn.rpc(
        1,
        QueueDelete {
            queue: short(q)?,
            ..QueueDelete::default()
        },
    )?;
    expect(m, "queue.delete_ok").map(|_| ())
}

/// Deletes what `setup` created.
pub(super) fn teardown(conn: &mut Conn, topo: &Topology) -> Result<(), Error> {
    for q in &topo.queues {
        delete_queue(conn, q)?;
    }
    if !topo.exchange.is_empty() {
        delete_exchange(conn, &topo.exchange)?;
    }
    Ok(())
}

pub(super) fn delete_exchange(conn: &mut Conn, x: &str) -> Result<(), Error> {
    let m = conn.rpc(
        1,
        ExchangeDelete {
            exchange: short(x)?,
            ..ExchangeDelete::default()
        },
    )?;
    expect(m, "exchange.delete_ok").map(|_| ())
}

/// The number of ready messages in a queue (passive declare).
pub(super) fn queue_depth(conn: &mut Conn, q: &str) -> Result<u32, Error> {
    match conn.rpc(
        1,
        QueueDeclare {
            queue: short(q)?,
            passive: true,
            ..QueueDeclare::default()
        },
    )? {
        Method::QueueDeclareOk(ok) => Ok(ok.message_count),
        other => Err(Error(format!(
            "expected queue.declare_ok, got {}",
            other.name()
        ))),
    }
}

pub(super) fn connect_admin(cfg: &Config) -> Result<Conn, Error> {
    Conn::connect(&cfg.uri, "loadgen-admin")
}
