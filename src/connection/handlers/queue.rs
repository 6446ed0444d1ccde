//! The queue class: declare (server-named, passive, or through the leader,
//! then the owner's counts for declare-ok), bind and unbind (leader), purge
//! (the owner) and delete (the leader, with the channel's consumer-cancel
//! notifications held until delete-ok is out). Every method that names a
//! queue resolves it with `Ctx::resolve_queue`.

use crate::broker::auth::{Access, Resource};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::Destination;
use crate::broker::queue::QueueConfig;
use crate::broker::queue_args;
use crate::broker::vhost::{in_vhost, QueueName};
use crate::connection::handlers::access::Actor;
use crate::connection::handlers::context::{count, done, generated_name, stats, Ctx};
use crate::protocol::methods::{
    QueueBind, QueueBindOk, QueueDeclare, QueueDeclareOk, QueueDelete, QueueDeleteOk, QueuePurge,
    QueuePurgeOk, QueueUnbind, QueueUnbindOk,
};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{QueueStats, Request};
use crate::shard::leader;

pub async fn declare(cx: &Ctx<'_>, m: QueueDeclare) -> AmqpResult<()> {
    let shard = cx.shard;
    let server_named = m.queue.is_empty();
    let name = if server_named {
        generated_name("amq.gen-")
    } else {
        m.queue.clone()
    };
    if m.passive {
        let meta = cx.queue_access(&name)?;
        let s = stats(
            cx.request(meta.owner, Request::QueueStats { name: meta.name })
                .await,
        )?;
        declared(cx, name, s, m.no_wait);
        return Ok(());
    }
    let (qname, config, owner) = check_declare(
        &cx.actor(),
        name.clone(),
        server_named,
        QueueConfig {
            durable: m.durable,
            exclusive: m.exclusive,
            auto_delete: m.auto_delete,
            arguments: m.arguments,
        },
    )?;
    done(
        cx.request(
            leader::LEADER,
            Request::DeclareQueue {
                name: qname.clone(),
                config,
                owner,
                conn: cx.conn.key,
            },
        )
        .await,
    )?;
    if m.exclusive {
        let mut ex = cx.conn.exclusive_queues.borrow_mut();
        if !ex.contains(&qname) {
            ex.push(qname.clone());
        }
    }
    let owner = shard
        .meta
        .borrow()
        .queues
        .get(&qname)
        .map(|q| q.owner)
        .unwrap_or(owner);
    let s = stats(cx.request(owner, Request::QueueStats { name: qname }).await)?;
    declared(cx, name, s, m.no_wait);
    Ok(())
}

/// The checks of a queue.declare that is not passive, as `actor`: the
/// reserved `amq.` prefix, configure permission (and, for a new queue,
/// the dead-letter exchange's permissions), the arguments; answers the
/// queue's name, its shape and the shard that is to own it, for the
/// leader's `Request::DeclareQueue`. The management API's PUT makes the
/// same checks.
pub fn check_declare(
    actor: &Actor<'_>,
    name: ShortStr,
    server_named: bool,
    config: QueueConfig,
) -> AmqpResult<(QueueName, QueueConfig, u16)> {
    let shard = actor.shard;
    if !server_named && name.starts_with("amq.") {
        return Err(AmqpError::access_refused(format!(
            "queue name '{name}' contains reserved prefix 'amq.*'"
        )));
    }
    actor.authorize(Access::Configure, Resource::Queue, &name)?;
    let qname = QueueName::new(actor.vhost, name.clone());
    if !shard.meta.borrow().queues.contains_key(&qname) {
        actor.authorize_target_argument(
            Resource::Queue,
            &name,
            &config.arguments,
            "x-dead-letter-exchange",
        )?;
    }
    queue_args::validate_declare(
        &name,
        config.durable,
        config.exclusive,
        config.auto_delete,
        &config.arguments,
    )
    .map_err(|e| in_vhost(e, actor.vhost_name))?;
    let owner = match queue_args::pinned_shard(&name, &config.arguments, shard.count)? {
        Some(s) => s,
        None if server_named => shard.id,
        None => shard.owner_by_hash(actor.vhost_name, &name),
    };
    Ok((qname, config, owner))
}

/// The channel's last declared queue is now `name`; declare-ok.
fn declared(cx: &Ctx<'_>, name: ShortStr, s: QueueStats, no_wait: bool) {
    cx.with_channel(|ch| ch.declared_queue(name.clone()));
    cx.reply(
        no_wait,
        QueueDeclareOk {
            queue: name,
            message_count: s.messages,
            consumer_count: s.consumers,
        },
    );
}

pub async fn bind(cx: &Ctx<'_>, m: QueueBind) -> AmqpResult<()> {
    let queue = cx.resolve_queue(m.queue);
    cx.actor()
        .authorize_binding(&m.exchange, Resource::Queue, &queue, &m.routing_key)?;
    let request = Request::Bind {
        vhost: cx.vhost(),
        source: m.exchange,
        destination: Destination::Queue(queue),
        routing_key: m.routing_key,
        arguments: m.arguments,
        conn: cx.conn.key,
    };
    cx.leader_op(request, m.no_wait, QueueBindOk {}).await
}

pub async fn unbind(cx: &Ctx<'_>, m: QueueUnbind) -> AmqpResult<()> {
    let queue = cx.resolve_queue(m.queue);
    cx.actor()
        .authorize_binding(&m.exchange, Resource::Queue, &queue, &m.routing_key)?;
    let request = Request::Unbind {
        vhost: cx.vhost(),
        source: m.exchange,
        destination: Destination::Queue(queue),
        routing_key: m.routing_key,
        arguments: m.arguments,
        conn: cx.conn.key,
    };
    cx.leader_op(request, false, QueueUnbindOk {}).await
}

pub async fn purge(cx: &Ctx<'_>, m: QueuePurge) -> AmqpResult<()> {
    let queue = cx.resolve_queue(m.queue);
    cx.authorize(Access::Read, Resource::Queue, &queue)?;
    let meta = cx.queue_access(&queue)?;
    let n = count(
        cx.request(meta.owner, Request::Purge { name: meta.name })
            .await,
    )?;
    cx.reply(m.no_wait, QueuePurgeOk { message_count: n });
    Ok(())
}

pub async fn delete(cx: &Ctx<'_>, m: QueueDelete) -> AmqpResult<()> {
    let queue = cx.resolve_queue(m.queue);
    cx.authorize(Access::Configure, Resource::Queue, &queue)?;
    cx.with_channel(|ch| ch.begin_queue_delete());
    let r = cx
        .request(
            leader::LEADER,
            Request::DeleteQueue {
                name: cx.queue_name(queue),
                if_unused: m.if_unused,
                if_empty: m.if_empty,
                conn: Some(cx.conn.key),
            },
        )
        .await;
    let r = count(r).map(|n| cx.reply(m.no_wait, QueueDeleteOk { message_count: n }));
    cx.conn.send_deferred_cancels(cx.channel);
    r
}
