//! The basic class, less basic.publish and its content (`publish`): qos,
//! consume (on a queue's owner, or on the direct reply-to pseudo-queue),
//! cancel, get, ack / nack / reject, recover.

use crate::broker::auth::{Access, Resource};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::queue::{ConsumerKey, ConsumerSpec, GetterKey};
use crate::broker::queue_args::{ConsumerArguments, QueueArguments};
use crate::connection::actions::ToShard;
use crate::connection::channel::{ChannelConsumer, Settlement};
use crate::connection::direct_reply;
use crate::connection::handlers::context::{done, generated_name, unexpected_reply, Ctx};
use crate::protocol::methods::{
    BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk, BasicGet, BasicGetEmpty, BasicQos,
    BasicQosOk, BasicRecoverOk,
};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{Envelope, Reply, Request};

pub fn qos(cx: &Ctx<'_>, m: BasicQos) -> AmqpResult<()> {
    cx.with_channel(|ch| ch.qos(&m)).transpose()?;
    cx.send(BasicQosOk {});
    cx.conn.release_held(cx.channel);
    Ok(())
}

/// basic.ack, basic.nack, basic.reject.
pub fn settle(cx: &Ctx<'_>, s: Settlement) -> AmqpResult<()> {
    let Some(actions) = cx.with_channel(|ch| ch.settle(s)).transpose()? else {
        return Ok(());
    };
    apply(cx, actions);
    cx.conn.release_held(cx.channel);
    Ok(())
}

/// basic.recover (`reply`: recover-ok) and basic.recover-async.
pub fn recover(cx: &Ctx<'_>, requeue: bool, reply: bool) -> AmqpResult<()> {
    let Some(actions) = cx.with_channel(|ch| ch.recover(requeue)).transpose()? else {
        return Ok(());
    };
    apply(cx, actions);
    if reply {
        cx.send(BasicRecoverOk {});
    }
    cx.conn.release_held(cx.channel);
    Ok(())
}

fn apply(cx: &Ctx<'_>, actions: Vec<ToShard>) {
    for action in actions {
        action.apply(cx.shard);
    }
}

pub async fn consume(cx: &Ctx<'_>, m: BasicConsume) -> AmqpResult<()> {
    let shard = cx.shard;
    check_consumer_limit(cx, &m.consumer_tag)?;
    let queue = cx.resolve_queue(m.queue.clone());
    let tag = if m.consumer_tag.is_empty() {
        generated_name("amq.ctag-")
    } else {
        m.consumer_tag.clone()
    };
    if queue.as_str() == direct_reply::PSEUDO_QUEUE {
        return consume_direct_reply(cx, tag, &m);
    }
    cx.authorize(Access::Read, Resource::Queue, &queue)?;
    let meta = cx.queue_access(&queue)?;
    let queue_type = QueueArguments::parse(queue.as_str(), &meta.config.arguments)
        .map(|a| a.queue_type)
        .unwrap_or_default();
    let args = ConsumerArguments::parse(queue.as_str(), queue_type, &m.arguments)
        .map_err(|e| crate::broker::vhost::in_vhost(e, &cx.conn.negotiated.vhost_name))?;
    let consumer = ChannelConsumer {
        queue: meta.name.clone(),
        owner: meta.owner,
        no_ack: m.no_ack,
        timeout: args.timeout,
    };
    let prefetch = cx
        .with_channel(|ch| ch.add_consumer(tag.clone(), consumer))
        .expect("open channel")?;
    let key = ConsumerKey {
        shard: shard.id,
        conn: cx.conn.key.id,
        channel: cx.channel,
        tag: tag.clone(),
    };
    let spec = ConsumerSpec {
        key: key.clone(),
        no_ack: m.no_ack,
        exclusive: m.exclusive,
        prefetch,
        priority: args.priority,
    };
    let r = cx
        .request(
            meta.owner,
            Request::Consume {
                name: meta.name.clone(),
                spec,
            },
        )
        .await;
    if let Err(e) = done(r) {
        cx.with_channel(|ch| ch.remove_consumer(&tag));
        return Err(e);
    }
    cx.reply(m.no_wait, BasicConsumeOk { consumer_tag: tag });
    if args.timeout.is_some() && !m.no_ack {
        // Its deliveries will have a timeout (`connection::consumer_timeout`).
        cx.conn.timed_delivery.notify();
    }
    // Deliveries may start now that consume-ok is queued ahead of them.
    shard.send(
        meta.owner,
        Envelope::Request {
            from: shard.id,
            token: 0,
            request: Request::Activate {
                name: meta.name.clone(),
                key,
            },
        },
    );
    shard.pump();
    Ok(())
}

/// `--consumer-max-per-channel` (RabbitMQ 3.12+'s `consumer_max_per_channel`,
/// checked first in `rabbit_channel`'s basic.consume): a channel with that
/// many consumers gets no new one, 530 NOT_ALLOWED (a connection error). A
/// tag already in use is refused later, as a reused tag.
fn check_consumer_limit(cx: &Ctx<'_>, tag: &ShortStr) -> AmqpResult<()> {
    let Some(max) = cx.shard.settings.consumer_max_per_channel else {
        return Ok(());
    };
    let full = cx
        .with_channel(|ch| ch.consumer(tag).is_none() && ch.consumer_count() >= max as usize)
        .unwrap_or(false);
    if full {
        return Err(AmqpError::not_allowed(format!(
            "reached maximum ({max}) of consumers per channel"
        )));
    }
    Ok(())
}

/// basic.consume on `amq.rabbitmq.reply-to`: no queue, no owner; replies
/// come straight to this channel.
fn consume_direct_reply(cx: &Ctx<'_>, tag: ShortStr, m: &BasicConsume) -> AmqpResult<()> {
    if !m.no_ack {
        return Err(AmqpError::precondition_failed(
            "reply consumer cannot acknowledge",
        ));
    }
    let address = direct_reply::new_address(cx.conn.key, cx.channel);
    cx.with_channel(|ch| ch.set_reply_consumer(tag.clone(), address))
        .expect("open channel")?;
    cx.reply(m.no_wait, BasicConsumeOk { consumer_tag: tag });
    Ok(())
}

pub async fn cancel(cx: &Ctx<'_>, m: BasicCancel) -> AmqpResult<()> {
    let consumer = cx
        .with_channel(|ch| {
            ch.cancel_reply_consumer(&m.consumer_tag);
            ch.consumer(&m.consumer_tag).cloned()
        })
        .flatten();
    if let Some(c) = consumer {
        let key = ConsumerKey {
            shard: cx.shard.id,
            conn: cx.conn.key.id,
            channel: cx.channel,
            tag: m.consumer_tag.clone(),
        };
        let _ = cx
            .request(c.owner, Request::Cancel { name: c.queue, key })
            .await;
        cx.with_channel(|ch| ch.remove_consumer(&m.consumer_tag));
    }
    cx.reply(
        m.no_wait,
        BasicCancelOk {
            consumer_tag: m.consumer_tag,
        },
    );
    Ok(())
}

pub async fn get(cx: &Ctx<'_>, m: BasicGet) -> AmqpResult<()> {
    let queue = cx.resolve_queue(m.queue);
    cx.authorize(Access::Read, Resource::Queue, &queue)?;
    let meta = cx.queue_access(&queue)?;
    let r = cx
        .request(
            meta.owner,
            Request::Get {
                name: meta.name.clone(),
                no_ack: m.no_ack,
                getter: Some(GetterKey {
                    shard: cx.shard.id,
                    conn: cx.conn.key.id,
                    channel: cx.channel,
                }),
            },
        )
        .await;
    let got = match r {
        Reply::Got(r) => r?,
        other => return Err(unexpected_reply(other)),
    };
    let Some(got) = got else {
        cx.with_channel(|ch| ch.stats.add(crate::broker::stats::Stat::GetEmpty, 1));
        cx.send(BasicGetEmpty {});
        return Ok(());
    };
    let conn = cx.conn;
    if got.consumer_timeout.is_some() && !m.no_ack {
        conn.timed_delivery.notify();
    }
    let wrote = cx.with_channel(|ch| {
        ch.write_get_ok(
            &mut conn.out.borrow_mut(),
            &meta.name,
            meta.owner,
            m.no_ack,
            &got,
        )
    });
    if wrote.is_some() {
        conn.notify_writer();
    }
    Ok(())
}
