//! Vhosts on each shard: admitting a connection to one (connection.open:
//! the node must be under `--max-connections`, the vhost must exist and be
//! under its `max-connections`, both counted for the whole broker by
//! `connection_slots`), and what a
//! shard does when one is deleted (drops the vhost's queues it owns and
//! closes its connections with 320 CONNECTION_FORCED, as RabbitMQ), and
//! closing one connection the same way (the management API's
//! `DELETE /api/connections/{name}`).

use crate::broker::error::{code, AmqpError};
use crate::broker::vhost::{self, QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::connection_slots::ConnectionSlot;
use crate::shard::inbox::ConnectionInbox;
use crate::shard::{owner, Shard};
use std::rc::Rc;

/// connection.open: the vhost a client may use and the connection's place
/// in it (held until the connection ends), or RabbitMQ's refusal (530).
/// `user` is the authenticated user.
///
/// This is the one place a connection is admitted to a vhost, in
/// RabbitMQ's order: the node is under its connection limit (530
/// `connection refused: node connection limit (N) is reached`), the vhost
/// exists, the user has permissions on it (530 `access to vhost '…'
/// refused for user '…'`), it is under its connection limit.
pub fn admit(
    shard: &Rc<Shard>,
    name: &str,
    user: &str,
) -> Result<(VhostId, ConnectionSlot), AmqpError> {
    // The node's limit first, as RabbitMQ 3.12+'s connection.open
    // (`rabbit_reader:is_over_node_connection_limit/1`).
    let max = shard.settings.max_connections;
    let Some(node) = shard.connection_slots.reserve_node(max) else {
        return Err(AmqpError::new(
            code::NOT_ALLOWED,
            format!(
                "connection refused: node connection limit ({}) is reached",
                max.unwrap_or(u32::MAX)
            ),
        ));
    };
    let found = {
        let meta = shard.meta.borrow();
        meta.vhost_id(name).map(|id| {
            (
                id,
                meta.vhosts[&id].limits,
                meta.auth.vhost_access(user, name),
            )
        })
    };
    let Some((id, limits, allowed)) = found else {
        return Err(vhost::not_found(name));
    };
    if !allowed {
        return Err(AmqpError::new(
            code::NOT_ALLOWED,
            format!("access to vhost '{name}' refused for user '{user}'"),
        ));
    }
    // Every connection holds a place (so a limit set later counts the
    // connections already open); exact across shards.
    match shard
        .connection_slots
        .reserve(node, id, limits.max_connections)
    {
        Some(slot) => Ok((id, slot)),
        None => Err(limits.connection_refused(name, user)),
    }
}

/// A vhost is being deleted: drops its queues this shard owns (messages
/// and all; durable ones get a deletion record) and closes its
/// connections. Runs before the vhost leaves the metadata, so the records
/// still name it.
pub fn deleted(shard: &Rc<Shard>, id: VhostId, name: &ShortStr) {
    let owned: Vec<QueueName> = shard
        .queues
        .borrow()
        .keys()
        .filter(|q| q.vhost == id)
        .map(|q| QueueName::clone(q))
        .collect();
    for q in owned {
        owner::drop_queue(shard, &q);
    }
    shard.delayed.forget_vhost(id);
    shard.connection_slots.forget(id);
    close_connections(shard, id, name);
}

/// Closes the connections of vhost `id` with 320, as RabbitMQ
/// (`CONNECTION_FORCED - vhost 'x' is deleted`): the close is queued, the
/// socket's read side shut, and the connection ends once its writer has
/// sent the close (it does not wait for the client's close-ok).
fn close_connections(shard: &Shard, id: VhostId, name: &ShortStr) {
    let conns: Vec<Rc<dyn ConnectionInbox>> = shard
        .conns
        .borrow()
        .values()
        .filter(|c| c.vhost() == id)
        .cloned()
        .collect();
    let err = AmqpError::new(
        code::CONNECTION_FORCED,
        format!("vhost '{name}' is deleted"),
    );
    for conn in &conns {
        conn.close_for_shutdown(&err);
        conn.stop_reading();
    }
}

/// Closes connection `id` of this shard with 320 and `reason` (the
/// management API's `DELETE /api/connections/{name}`), as a vhost's
/// deletion closes its connections.
pub fn close_connection(shard: &Shard, id: u64, reason: &str) -> Result<(), AmqpError> {
    let conn = shard
        .connection(id)
        .ok_or_else(|| AmqpError::not_found(format!("no connection {id} on shard {}", shard.id)))?;
    conn.close_for_shutdown(&AmqpError::new(code::CONNECTION_FORCED, reason));
    conn.stop_reading();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::shard::owner_of;

    #[test]
    fn placement_depends_on_the_vhost_and_keeps_the_old_one_for_slash() {
        // `/` hashes the name alone, as before vhosts existed (FNV-1a).
        let fnv = |s: &str| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in s.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % 4) as u16
        };
        let names: Vec<String> = (0..64).map(|i| format!("q{i}")).collect();
        for n in &names {
            assert_eq!(owner_of("/", n, 4), fnv(n));
        }
        // Another vhost places the same names elsewhere, some of them.
        let moved = names
            .iter()
            .filter(|n| owner_of("v1", n, 4) != owner_of("/", n, 4))
            .count();
        assert!(moved > 0, "no name placed differently in another vhost");
        let other = names
            .iter()
            .filter(|n| owner_of("v1", n, 4) != owner_of("v2", n, 4))
            .count();
        assert!(other > 0, "two vhosts place every name alike");
    }
}
