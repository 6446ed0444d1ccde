//! Queue expiry (`x-expires`) on the owner shard: one timer task per
//! expiring queue, which sleeps until the queue's expiry and then asks the
//! leader to delete it (`Request::DeleteQueue` with if-unused, like a
//! client's queue.delete: every shard forgets it, a durable one's deletion
//! is journaled). Using the queue only moves its `used_at`
//! (`Queue::touch`); the timer looks at it when it wakes, so expiry costs
//! nothing per message or per use. A recovered queue's timer starts at
//! start-up, as RabbitMQ restarts it at node start.

use crate::broker::error::code;
use crate::broker::vhost::QueueName;
use crate::shard::envelope::{Reply, Request};
use crate::shard::{Shard, LEADER};
use std::rc::Rc;
use std::time::Instant;

/// Starts the expiry timer of the queue `name` this shard owns, if it has
/// an `x-expires`.
pub fn start(shard: &Rc<Shard>, name: &QueueName) {
    let (after, incarnation) = match shard.queues.borrow().get(name) {
        Some(q) => match q.expires() {
            Some(after) => (after, q.incarnation()),
            None => return,
        },
        None => return,
    };
    let shard = shard.clone();
    let name = name.clone();
    glommio::spawn_local(async move {
        let mut wait = after;
        loop {
            glommio::timer::sleep(wait).await;
            if shard.shutting_down.get() {
                return;
            }
            let due = match shard.queues.borrow().get(&name) {
                Some(q) if q.incarnation() == incarnation => q.expires_at(),
                _ => return,
            };
            let now = Instant::now();
            match due {
                // In use (consumers): look again later.
                None => wait = after,
                Some(at) if at > now => wait = at - now,
                Some(_) => {
                    let reply = shard
                        .request(
                            LEADER,
                            Request::DeleteQueue {
                                name: name.clone(),
                                if_unused: true,
                                if_empty: false,
                                conn: None,
                            },
                        )
                        .await;
                    match reply {
                        Reply::Count(Err(e)) if e.code == code::PRECONDITION_FAILED => {
                            // A consumer came meanwhile.
                            wait = after;
                        }
                        Reply::Count(Err(e)) => {
                            tracing::warn!(shard = shard.id, "cannot expire queue '{name}': {e:?}");
                            return;
                        }
                        _ => {
                            tracing::debug!(shard = shard.id, "queue '{name}' expired");
                            return;
                        }
                    }
                }
            }
        }
    })
    .detach();
}
