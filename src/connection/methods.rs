//! Handlers for the methods a client sends on a channel (channel, exchange,
//! queue, basic, confirm, tx classes). Metadata operations go to the leader
//! shard, queue operations to the queue's owner; the handler awaits the
//! reply and writes the -ok. Soft errors close the channel, hard errors the
//! connection, with RabbitMQ's codes and texts.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::exchange::Destination;
use crate::broker::queue::{ConsumerKey, ConsumerSpec, QueueConfig};
use crate::broker::queue_args;
use crate::connection::channel::{Channel, ChannelConsumer, Phase, Settlement};
use crate::connection::{
    close_channel_with_error, direct_reply, publish, release_channel, send_deferred_cancels,
    ConnShared, HardError,
};
use crate::protocol::methods::*;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{Envelope, QueueMeta, QueueStats, Reply, Request};
use crate::shard::{leader, Shard};
use std::rc::Rc;

/// Handles one method on channel `channel` (not 0).
pub async fn handle(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    method: Method,
) -> Result<(), HardError> {
    let (class_id, method_id) = (method.class_id(), method.method_id());
    let hard = |e: AmqpError| (e, class_id, method_id);

    // Channel lifecycle first.
    let phase = conn.channels.borrow().get(&channel).map(|c| c.phase());
    match (&method, phase) {
        (Method::ChannelOpen(_), None) => {
            if channel > conn.negotiated.channel_max {
                return Err(hard(AmqpError::new(
                    code::CHANNEL_ERROR,
                    format!(
                        "channel id {channel} exceeds channel_max {}",
                        conn.negotiated.channel_max
                    ),
                )));
            }
            conn.channels
                .borrow_mut()
                .insert(channel, Channel::new(channel));
            conn.send_method(channel, ChannelOpenOk {});
            return Ok(());
        }
        (Method::ChannelOpen(_), Some(_)) => {
            return Err(hard(AmqpError::new(
                code::CHANNEL_ERROR,
                "second 'channel.open' seen",
            )));
        }
        (_, None) => {
            return Err(hard(AmqpError::new(
                code::CHANNEL_ERROR,
                "expected 'channel.open'",
            )));
        }
        (Method::ChannelClose(_), Some(Phase::Closing)) => {
            // The client's close crossed ours: answer it, and keep waiting
            // for the close-ok of ours (RabbitMQ does the same).
            conn.send_method(channel, ChannelCloseOk {});
            return Ok(());
        }
        (Method::ChannelClose(_), Some(_)) => {
            let ch = conn.channels.borrow_mut().remove(&channel);
            if let Some(mut ch) = ch {
                release_channel(shard, conn.key, &mut ch);
            }
            conn.send_method(channel, ChannelCloseOk {});
            return Ok(());
        }
        (Method::ChannelCloseOk(_), Some(Phase::Closing)) => {
            conn.channels.borrow_mut().remove(&channel);
            return Ok(());
        }
        (_, Some(Phase::Closing)) => return Ok(()), // dropped until close-ok
        _ => {}
    }
    if let Some(Err(e)) = conn
        .channels
        .borrow()
        .get(&channel)
        .map(|c| c.check_no_content_expected(&method))
    {
        return Err(hard(e));
    }

    let result = match method {
        Method::BasicPublish(m) => return publish::on_publish(conn, channel, m),
        Method::BasicAck(m) => settle(
            shard,
            conn,
            channel,
            Settlement {
                tag: m.delivery_tag,
                multiple: m.multiple,
                requeue: false,
            },
        ),
        Method::BasicNack(m) => settle(
            shard,
            conn,
            channel,
            Settlement {
                tag: m.delivery_tag,
                multiple: m.multiple,
                requeue: m.requeue,
            },
        ),
        Method::BasicReject(m) => settle(
            shard,
            conn,
            channel,
            Settlement {
                tag: m.delivery_tag,
                multiple: false,
                requeue: m.requeue,
            },
        ),
        // RabbitMQ never stops a channel's deliveries on request.
        Method::ChannelFlow(m) if !m.active => {
            Err(AmqpError::new(code::NOT_IMPLEMENTED, "active=false"))
        }
        Method::ChannelFlow(m) => {
            conn.send_method(channel, ChannelFlowOk { active: m.active });
            Ok(())
        }
        Method::ChannelFlowOk(_) => Ok(()),
        Method::ChannelCloseOk(_) => Ok(()),
        Method::BasicQos(m) => qos(conn, channel, m),
        Method::ConfirmSelect(m) => {
            if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
                ch.select_confirms();
            }
            if !m.nowait {
                conn.send_method(channel, ConfirmSelectOk {});
            }
            Ok(())
        }
        Method::BasicRecover(m) => recover(shard, conn, channel, m.requeue, true),
        Method::BasicRecoverAsync(m) => recover(shard, conn, channel, m.requeue, false),
        Method::QueueDeclare(m) => queue_declare(shard, conn, channel, m).await,
        Method::QueueBind(m) => {
            let queue = resolve_queue(conn, channel, m.queue);
            let request = Request::Bind {
                source: m.exchange,
                destination: Destination::Queue(queue),
                routing_key: m.routing_key,
                arguments: m.arguments,
                conn: conn.key,
            };
            leader_op(shard, conn, channel, request, m.no_wait, QueueBindOk {}).await
        }
        Method::QueueUnbind(m) => {
            let queue = resolve_queue(conn, channel, m.queue);
            let request = Request::Unbind {
                source: m.exchange,
                destination: Destination::Queue(queue),
                routing_key: m.routing_key,
                arguments: m.arguments,
                conn: conn.key,
            };
            leader_op(shard, conn, channel, request, false, QueueUnbindOk {}).await
        }
        Method::QueuePurge(m) => {
            let queue = resolve_queue(conn, channel, m.queue);
            match check_queue_access(shard, conn, &queue) {
                Err(e) => Err(e),
                Ok(meta) => {
                    let r = shard
                        .request(meta.owner, Request::Purge { name: queue })
                        .await;
                    count(r).map(|n| {
                        if !m.no_wait {
                            conn.send_method(channel, QueuePurgeOk { message_count: n });
                        }
                    })
                }
            }
        }
        Method::QueueDelete(m) => {
            let queue = resolve_queue(conn, channel, m.queue);
            if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
                ch.begin_queue_delete();
            }
            let r = shard
                .request(
                    leader::LEADER,
                    Request::DeleteQueue {
                        name: queue,
                        if_unused: m.if_unused,
                        if_empty: m.if_empty,
                        conn: Some(conn.key),
                    },
                )
                .await;
            let r = count(r).map(|n| {
                if !m.no_wait {
                    conn.send_method(channel, QueueDeleteOk { message_count: n });
                }
            });
            send_deferred_cancels(conn, channel);
            r
        }
        Method::ExchangeDeclare(m) => {
            let request = Request::DeclareExchange {
                name: m.exchange,
                kind: m.kind,
                passive: m.passive,
                durable: m.durable,
                auto_delete: m.auto_delete,
                internal: m.internal,
                arguments: m.arguments,
            };
            leader_op(
                shard,
                conn,
                channel,
                request,
                m.no_wait,
                ExchangeDeclareOk {},
            )
            .await
        }
        Method::ExchangeDelete(m) => {
            let request = Request::DeleteExchange {
                name: m.exchange,
                if_unused: m.if_unused,
            };
            leader_op(
                shard,
                conn,
                channel,
                request,
                m.no_wait,
                ExchangeDeleteOk {},
            )
            .await
        }
        Method::ExchangeBind(m) => {
            let request = Request::Bind {
                source: m.source,
                destination: Destination::Exchange(m.destination),
                routing_key: m.routing_key,
                arguments: m.arguments,
                conn: conn.key,
            };
            leader_op(shard, conn, channel, request, m.no_wait, ExchangeBindOk {}).await
        }
        Method::ExchangeUnbind(m) => {
            let request = Request::Unbind {
                source: m.source,
                destination: Destination::Exchange(m.destination),
                routing_key: m.routing_key,
                arguments: m.arguments,
                conn: conn.key,
            };
            leader_op(
                shard,
                conn,
                channel,
                request,
                m.no_wait,
                ExchangeUnbindOk {},
            )
            .await
        }
        Method::BasicConsume(m) => consume(shard, conn, channel, m).await,
        Method::BasicCancel(m) => cancel(shard, conn, channel, m).await,
        Method::BasicGet(m) => get(shard, conn, channel, m).await,
        Method::TxSelect(_) | Method::TxCommit(_) | Method::TxRollback(_) => Err(AmqpError::new(
            code::NOT_IMPLEMENTED,
            "transactions (tx.*) are not implemented",
        )),
        other => Err(AmqpError::new(
            code::COMMAND_INVALID,
            format!("unexpected method {} from client", other.name()),
        )),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_hard() => Err(hard(e)),
        Err(e) => {
            close_channel_with_error(shard, conn, channel, &e, class_id, method_id);
            Ok(())
        }
    }
}

/// A metadata change through the leader; the -ok once every shard applied it.
async fn leader_op(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    request: Request,
    no_wait: bool,
    ok: impl Into<Method>,
) -> AmqpResult<()> {
    done(shard.request(leader::LEADER, request).await)?;
    if !no_wait {
        conn.send_method(channel, ok);
    }
    Ok(())
}

fn done(r: Reply) -> AmqpResult<()> {
    match r {
        Reply::Done(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

fn count(r: Reply) -> AmqpResult<u32> {
    match r {
        Reply::Count(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

fn stats(r: Reply) -> AmqpResult<QueueStats> {
    match r {
        Reply::Stats(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

fn unexpected_reply(r: Reply) -> AmqpError {
    debug_assert!(false, "unexpected reply {r:?}");
    AmqpError::new(code::INTERNAL_ERROR, "unexpected internal reply")
}

/// An empty queue name means the channel's last declared queue (when
/// there is none, the empty name stays and the lookup fails with 404).
fn resolve_queue(conn: &ConnShared, channel: u16, name: ShortStr) -> ShortStr {
    match conn.channels.borrow().get(&channel) {
        Some(ch) => ch.resolve_queue(name),
        None => name,
    }
}

/// The queue's catalog entry, refusing another connection's exclusive queue.
fn check_queue_access(shard: &Shard, conn: &ConnShared, queue: &ShortStr) -> AmqpResult<QueueMeta> {
    let meta = shard.meta.borrow();
    let Some(m) = meta.queues.get(queue) else {
        return Err(AmqpError::not_found(format!(
            "no queue '{queue}' in vhost '/'"
        )));
    };
    if let Some(owner) = m.exclusive_to {
        if owner != conn.key {
            return Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{queue}' in vhost '/'. It could be \
                 originally declared on another connection or the exclusive property value does not \
                 match that of the original declaration."
            )));
        }
    }
    Ok(m.clone())
}

fn random_suffix() -> String {
    // 22 characters of base64url, like RabbitMQ's generated names.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut seed = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let c = NAME_COUNTER.with(|c| {
            let v = c.get().wrapping_add(1);
            c.set(v);
            v
        });
        t ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (std::process::id() as u64) << 32
    };
    (0..22)
        .map(|_| {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let v = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ALPHABET[(v >> 58) as usize] as char
        })
        .collect()
}

thread_local! {
    static NAME_COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

async fn queue_declare(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    m: QueueDeclare,
) -> AmqpResult<()> {
    let server_named = m.queue.is_empty();
    let name = if server_named {
        ShortStr::try_from_string(format!("amq.gen-{}", random_suffix())).expect("short")
    } else {
        m.queue.clone()
    };
    if m.passive {
        let meta = check_queue_access(shard, conn, &name)?;
        let s = stats(
            shard
                .request(meta.owner, Request::QueueStats { name: name.clone() })
                .await,
        )?;
        finish_declare(conn, channel, name, s, m.no_wait);
        return Ok(());
    }
    if !server_named && name.starts_with("amq.") {
        return Err(AmqpError::access_refused(format!(
            "queue name '{name}' contains reserved prefix 'amq.*'"
        )));
    }
    queue_args::validate_declare(&name, m.durable, m.exclusive, m.auto_delete, &m.arguments)?;
    let owner = match queue_args::pinned_shard(&name, &m.arguments, shard.count)? {
        Some(s) => s,
        None if server_named => shard.id,
        None => shard.owner_by_hash(&name),
    };
    let config = QueueConfig {
        durable: m.durable,
        exclusive: m.exclusive,
        auto_delete: m.auto_delete,
        arguments: m.arguments,
    };
    done(
        shard
            .request(
                leader::LEADER,
                Request::DeclareQueue {
                    name: name.clone(),
                    config,
                    owner,
                    conn: conn.key,
                },
            )
            .await,
    )?;
    if m.exclusive {
        let mut ex = conn.exclusive_queues.borrow_mut();
        if !ex.contains(&name) {
            ex.push(name.clone());
        }
    }
    let owner = shard
        .meta
        .borrow()
        .queues
        .get(&name)
        .map(|q| q.owner)
        .unwrap_or(owner);
    let s = stats(
        shard
            .request(owner, Request::QueueStats { name: name.clone() })
            .await,
    )?;
    finish_declare(conn, channel, name, s, m.no_wait);
    Ok(())
}

fn finish_declare(conn: &ConnShared, channel: u16, name: ShortStr, s: QueueStats, no_wait: bool) {
    if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
        ch.declared_queue(name.clone());
    }
    if !no_wait {
        conn.send_method(
            channel,
            QueueDeclareOk {
                queue: name,
                message_count: s.messages,
                consumer_count: s.consumers,
            },
        );
    }
}

fn qos(conn: &ConnShared, channel: u16, m: BasicQos) -> AmqpResult<()> {
    if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
        ch.qos(&m)?;
    }
    conn.send_method(channel, BasicQosOk {});
    crate::connection::release_held(conn, channel);
    Ok(())
}

fn settle(shard: &Rc<Shard>, conn: &ConnShared, channel: u16, s: Settlement) -> AmqpResult<()> {
    let actions = match conn.channels.borrow_mut().get_mut(&channel) {
        Some(ch) => ch.settle(s)?,
        None => return Ok(()),
    };
    for action in actions {
        action.apply(shard);
    }
    crate::connection::release_held(conn, channel);
    Ok(())
}

fn recover(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    requeue: bool,
    reply: bool,
) -> AmqpResult<()> {
    let actions = match conn.channels.borrow_mut().get_mut(&channel) {
        Some(ch) => ch.recover(requeue)?,
        None if !requeue => return Err(AmqpError::new(code::NOT_IMPLEMENTED, "requeue=false")),
        None => return Ok(()),
    };
    for action in actions {
        action.apply(shard);
    }
    if reply {
        conn.send_method(channel, BasicRecoverOk {});
    }
    crate::connection::release_held(conn, channel);
    Ok(())
}

async fn consume(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    m: BasicConsume,
) -> AmqpResult<()> {
    let queue = resolve_queue(conn, channel, m.queue.clone());
    let tag = if m.consumer_tag.is_empty() {
        ShortStr::try_from_string(format!("amq.ctag-{}", random_suffix())).expect("short")
    } else {
        m.consumer_tag.clone()
    };
    if queue.as_str() == direct_reply::PSEUDO_QUEUE {
        return consume_direct_reply(conn, channel, tag, &m);
    }
    let meta = check_queue_access(shard, conn, &queue)?;
    let prefetch = {
        let mut channels = conn.channels.borrow_mut();
        let ch = channels.get_mut(&channel).expect("open channel");
        ch.add_consumer(
            tag.clone(),
            ChannelConsumer {
                queue: queue.clone(),
                owner: meta.owner,
                no_ack: m.no_ack,
            },
        )?
    };
    let key = ConsumerKey {
        shard: shard.id,
        conn: conn.key.id,
        channel,
        tag: tag.clone(),
    };
    let spec = ConsumerSpec {
        key: key.clone(),
        no_ack: m.no_ack,
        exclusive: m.exclusive,
        prefetch,
    };
    let r = shard
        .request(
            meta.owner,
            Request::Consume {
                name: queue.clone(),
                spec,
            },
        )
        .await;
    if let Err(e) = done(r) {
        if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
            ch.remove_consumer(&tag);
        }
        return Err(e);
    }
    if !m.no_wait {
        conn.send_method(channel, BasicConsumeOk { consumer_tag: tag });
    }
    // Deliveries may start now that consume-ok is queued ahead of them.
    shard.send(
        meta.owner,
        Envelope::Request {
            from: shard.id,
            token: 0,
            request: Request::Activate { name: queue, key },
        },
    );
    shard.pump();
    Ok(())
}

/// basic.consume on `amq.rabbitmq.reply-to`: no queue, no owner; replies
/// come straight to this channel.
fn consume_direct_reply(
    conn: &ConnShared,
    channel: u16,
    tag: ShortStr,
    m: &BasicConsume,
) -> AmqpResult<()> {
    if !m.no_ack {
        return Err(AmqpError::precondition_failed(
            "reply consumer cannot acknowledge",
        ));
    }
    {
        let mut channels = conn.channels.borrow_mut();
        let ch = channels.get_mut(&channel).expect("open channel");
        ch.set_reply_consumer(tag.clone(), direct_reply::new_address(conn.key, channel))?;
    }
    if !m.no_wait {
        conn.send_method(channel, BasicConsumeOk { consumer_tag: tag });
    }
    Ok(())
}

async fn cancel(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    m: BasicCancel,
) -> AmqpResult<()> {
    let consumer = conn
        .channels
        .borrow()
        .get(&channel)
        .and_then(|c| c.consumer(&m.consumer_tag).cloned());
    if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
        ch.cancel_reply_consumer(&m.consumer_tag);
    }
    if let Some(c) = consumer {
        let key = ConsumerKey {
            shard: shard.id,
            conn: conn.key.id,
            channel,
            tag: m.consumer_tag.clone(),
        };
        let _ = shard
            .request(c.owner, Request::Cancel { name: c.queue, key })
            .await;
        if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
            ch.remove_consumer(&m.consumer_tag);
        }
    }
    if !m.no_wait {
        conn.send_method(
            channel,
            BasicCancelOk {
                consumer_tag: m.consumer_tag,
            },
        );
    }
    Ok(())
}

async fn get(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    m: BasicGet,
) -> AmqpResult<()> {
    let queue = resolve_queue(conn, channel, m.queue.clone());
    let meta = check_queue_access(shard, conn, &queue)?;
    let r = shard
        .request(
            meta.owner,
            Request::Get {
                name: queue.clone(),
                no_ack: m.no_ack,
            },
        )
        .await;
    let got = match r {
        Reply::Got(r) => r?,
        other => return Err(unexpected_reply(other)),
    };
    let Some(got) = got else {
        conn.send_method(channel, BasicGetEmpty {});
        return Ok(());
    };
    let mut channels = conn.channels.borrow_mut();
    let Some(ch) = channels.get_mut(&channel) else {
        return Ok(());
    };
    ch.write_get_ok(
        &mut conn.out.borrow_mut(),
        &queue,
        meta.owner,
        m.no_ack,
        &got,
    );
    drop(channels);
    conn.notify_writer();
    Ok(())
}
