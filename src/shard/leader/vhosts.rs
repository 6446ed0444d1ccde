//! The vhost requests the leader serves (`warren ctl add_vhost`,
//! `delete_vhost`, `set_vhost_limits`): validated against the leader's
//! copy, then journaled and replicated like every metadata change.
//! Deleting a vhost is one change: each shard drops the vhost's queues it
//! owns (messages and all, durable ones with a deletion record), forgets
//! its exchanges, bindings and policies, and closes its connections with
//! 320 (`shard::vhosts`). `/` can be deleted too, as in RabbitMQ, and
//! added again (with id 0).

use super::commit;
use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::vhost::{VhostId, VhostLimits, DEFAULT_VHOST};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::MetaChange;
use crate::shard::Shard;
use std::rc::Rc;

/// Most vhosts a broker holds (each costs a topology on every shard).
pub const MAX_VHOSTS: usize = 4096;

pub(super) async fn add(shard: &Rc<Shard>, name: ShortStr) -> AmqpResult<()> {
    let id = {
        let meta = shard.meta.borrow();
        if meta.vhost_id(&name).is_some() {
            // As rabbitmqctl: adding an existing vhost is not an error.
            return Ok(());
        }
        if meta.vhosts.len() >= MAX_VHOSTS {
            return Err(AmqpError::new(
                code::NOT_ALLOWED,
                format!("cannot add vhost '{name}': {MAX_VHOSTS} vhosts exist"),
            ));
        }
        if name.as_str() == DEFAULT_VHOST {
            // `/` added again after its deletion: its id is always 0
            // (records without a vhost are `/`'s, and placement hashes
            // its queue names alone).
            VhostId::DEFAULT
        } else {
            VhostId(meta.next_vhost)
        }
    };
    commit(shard, MetaChange::VhostAdded(id, name)).await;
    Ok(())
}

pub(super) async fn delete(shard: &Rc<Shard>, name: ShortStr) -> AmqpResult<()> {
    let Some(id) = shard.meta.borrow().vhost_id(&name) else {
        return Err(AmqpError::not_found(format!(
            "Virtual host '{name}' does not exist"
        )));
    };
    commit(shard, MetaChange::VhostDeleted(id, name)).await;
    Ok(())
}

pub(super) async fn set_limits(
    shard: &Rc<Shard>,
    name: ShortStr,
    limits: VhostLimits,
) -> AmqpResult<()> {
    let Some(id) = shard.meta.borrow().vhost_id(&name) else {
        return Err(AmqpError::not_found(format!(
            "Virtual host '{name}' does not exist"
        )));
    };
    commit(shard, MetaChange::VhostLimitsSet(id, limits)).await;
    Ok(())
}
