//! Closing client connections by the broker's decision (a deleted user,
//! `warren ctl close_connection`): 320 CONNECTION_FORCED with the reason,
//! the close queued on the connection, then its socket shut once the close
//! is sent (at most 500 ms later), as RabbitMQ does.

use crate::broker::error::{code, AmqpError};
use crate::shard::inbox::ConnectionInbox;
use crate::shard::Shard;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Closes `conns` with `err`, then shuts their sockets.
pub fn force_close(conns: Vec<Rc<dyn ConnectionInbox>>, err: &AmqpError) {
    if conns.is_empty() {
        return;
    }
    for c in &conns {
        c.close_for_shutdown(err);
    }
    glommio::spawn_local(async move {
        // The close goes out first (bounded), then the socket.
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && conns.iter().any(|c| c.has_pending_output()) {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        for c in &conns {
            c.shut_socket();
        }
    })
    .detach();
}

/// `close_connection NAME REASON`: closes this shard's connections named
/// `name` (their peer address, as `list_connections` shows it) with 320
/// `CONNECTION_FORCED - REASON`; returns how many.
pub fn close_named(shard: &Shard, name: &str, reason: &str) -> u32 {
    let conns: Vec<Rc<dyn ConnectionInbox>> = shard
        .conns
        .borrow()
        .values()
        .filter(|c| c.snapshot().peer == name)
        .cloned()
        .collect();
    let n = conns.len() as u32;
    if n > 0 {
        tracing::info!(shard = shard.id, "closing connection {name}: {reason}");
    }
    force_close(conns, &AmqpError::new(code::CONNECTION_FORCED, reason));
    n
}
