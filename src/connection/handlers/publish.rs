//! basic.publish and its content frames — the publish path, all synchronous
//! on the publisher's shard. The channel assembles a publish from its
//! method, header and body frames (`Channel::start_publish`, `on_header`,
//! `on_body`); here the whole message is routed on
//! this shard's copy of the routing tables, one `Arc<Message>` copy per
//! destination queue is queued for its owner (sent in batches by the next
//! pump), a mandatory publish that found no queue is returned, and in
//! confirm mode the publish gets its sequence number. On a transactional
//! channel the routed copies go to the open transaction instead.

use crate::broker::error::{code, AmqpError};
use crate::broker::message::Message;
use crate::broker::topology::{
    exchange_not_found, publish_to_internal, sender_selected, Origin, RouteResult,
};
use crate::connection::assembly::{Assembly, Publish};
use crate::connection::channel::Channel;
use crate::connection::delivery::{self, Carrier};
use crate::connection::handlers::channel::close_with_error;
use crate::connection::handlers::context::Ctx;
use crate::connection::transaction::{DelayedHold, TxPublish};
use crate::connection::{direct_reply, ConnShared, HardError};
use crate::protocol::methods::BasicPublish;
use crate::protocol::properties::{BasicProperties, ContentHeader, BASIC_CLASS_ID};
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::counters::Counters;
use crate::shard::envelope::{ConfirmTicket, Envelope};
use crate::shard::Shard;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

/// Property flag of the `headers` property in the first flags word.
const HEADERS_FLAG: u16 = 1 << 13;

/// basic.publish arrived: content frames follow.
pub fn on_method(cx: &Ctx<'_>, method: BasicPublish) -> Result<(), HardError> {
    cx.with_channel(|ch| ch.start_publish(method))
        .unwrap_or(Ok(()))
}

/// A content header frame.
pub fn on_header(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    header: ContentHeader,
) -> Result<(), HardError> {
    let max_size = shard.settings.max_message_size;
    on_content(shard, conn, channel, |ch| ch.on_header(header, max_size))
}

/// A content body frame.
pub fn on_body(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    payload: Bytes,
) -> Result<(), HardError> {
    on_content(shard, conn, channel, |ch| ch.on_body(payload))
}

/// A content frame for channel `channel`: handed to the channel, and the
/// publish routed once it is whole.
fn on_content(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    frame: impl FnOnce(&mut Channel) -> Result<Assembly, HardError>,
) -> Result<(), HardError> {
    let mut channels = conn.channels.borrow_mut();
    let Some(ch) = channels.get_mut(&channel) else {
        return Err(channel_not_open(channel));
    };
    let refused = match frame(ch)? {
        Assembly::Pending | Assembly::Dropped => return Ok(()),
        Assembly::Complete(publish) => match route(shard, conn, ch, publish) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        },
        Assembly::Refused(e) => e,
    };
    drop(channels);
    close_with_error(
        shard,
        conn,
        channel,
        &refused,
        BASIC_CLASS_ID,
        BasicPublish::METHOD_ID,
    );
    Ok(())
}

fn channel_not_open(channel: u16) -> HardError {
    (
        AmqpError::new(
            code::CHANNEL_ERROR,
            format!("expected 'channel.open' (channel {channel})"),
        ),
        0,
        0,
    )
}

/// Routes a whole message and queues its copies. An error closes the
/// channel (the exchange is missing or internal, or reply-to names the
/// reply pseudo-queue the channel does not consume).
fn route(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    ch: &mut Channel,
    p: Publish,
) -> Result<(), AmqpError> {
    let Publish {
        method,
        mut header,
        body,
    } = p;
    super::access::publish_allowed(
        shard,
        conn,
        ch,
        &method.exchange,
        &method.routing_key,
        &header.raw_properties,
    )?;
    if let Some(rewritten) =
        direct_reply::rewrite_reply_to(&header.raw_properties, ch.reply_to_address())?
    {
        header.raw_properties = rewritten;
    }
    if let Some(e) = invalid_expiration(&header.raw_properties) {
        return Err(e);
    }
    Counters::add(&shard.counters.published, 1);
    ch.stats.add(crate::broker::stats::Stat::Publish, 1);
    conn.published.set(true);
    let headers: Option<FieldTable> = if first_flags(&header.raw_properties) & HEADERS_FLAG != 0 {
        BasicProperties::decode(header.raw_properties.clone())
            .ok()
            .and_then(|p| p.headers)
    } else {
        None
    };
    // Sender-selected distribution: the `CC` / `BCC` keys route too, and
    // header routing does not see `BCC`. Publishes without headers skip it.
    let (extra_keys, bcc_stripped) = match headers.as_ref() {
        Some(h) => match sender_selected::extra_keys(Some(h)) {
            Ok(keys) => (keys, sender_selected::without_bcc(h)),
            // RabbitMQ checks the exchange first.
            Err(e) => return Err(exchange_refusal(shard, conn, &method.exchange).unwrap_or(e)),
        },
        None => (Vec::new(), None),
    };
    let persistent = header.delivery_mode() == Some(2);
    let vhost = conn.negotiated.vhost;
    let delay = crate::shard::delayed::delay_of(
        &shard.meta.borrow(),
        vhost,
        &method.exchange,
        headers.as_ref(),
    );
    if let Some((delay_ms, durable_exchange)) = delay {
        let message = Message {
            exchange: method.exchange,
            routing_key: method.routing_key,
            raw_properties: header.raw_properties,
            body,
            persistent,
        };
        if let Some(tx) = ch.tx.as_mut() {
            // Transactional: held at tx.commit, dropped by tx.rollback.
            return tx.publish(TxPublish {
                message: Arc::new(message),
                by_owner: Default::default(),
                returned: method.mandatory,
                delayed: Some(DelayedHold {
                    delay_ms,
                    durable: durable_exchange && persistent,
                }),
            });
        }
        // The exchange took it in; it reaches queues only when it is due
        // (routed then by the scheduler, as the plugin does, uncounted).
        shard
            .stats
            .exchange_publish(vhost, &message.exchange, false);
        hold_delayed(
            shard,
            conn,
            ch,
            &message,
            method.mandatory,
            delay_ms,
            durable_exchange && persistent,
        );
        return Ok(());
    }
    // The shard's routing scratch space: no allocation per publish.
    let mut destinations = std::mem::take(&mut *shard.route_scratch.borrow_mut());
    destinations.clear();
    let meta = shard.meta.borrow();
    let vhost_name = &conn.negotiated.vhost_name;
    let routed = match meta.topology(vhost) {
        Some(t) => t.route_keys(
            &method.exchange,
            &method.routing_key,
            &extra_keys,
            bcc_stripped.as_ref().or(headers.as_ref()),
            Origin::Client,
            &mut destinations,
        ),
        // The vhost was deleted: the connection is being closed.
        None => RouteResult::ExchangeNotFound,
    };
    match routed {
        RouteResult::ExchangeNotFound => {
            return Err(exchange_not_found(&method.exchange, vhost_name))
        }
        RouteResult::Internal => return Err(publish_to_internal(&method.exchange, vhost_name)),
        RouteResult::Routed { .. } => {}
    }
    let message = Arc::new(Message {
        exchange: method.exchange,
        routing_key: method.routing_key,
        raw_properties: header.raw_properties,
        body,
        persistent,
    });
    if message.exchange.is_empty() && direct_reply::is_reply_address(&message.routing_key) {
        // Handed to the requester's channel, which checks the address's
        // secret. Like RabbitMQ 3.10, the reply reached no queue: a
        // mandatory one is also returned (312 NO_ROUTE).
        destinations.clear();
        if let Some((to_shard, to_conn, to_channel)) = direct_reply::parse(&message.routing_key) {
            if to_shard < shard.count {
                shard.send(
                    to_shard,
                    Envelope::DirectReply {
                        conn: to_conn,
                        channel: to_channel,
                        message: message.clone(),
                    },
                );
            }
        }
    }
    // One envelope per owner shard; the owner decides whether its copies
    // are durable (confirm after the fsync) or not.
    let by_owner = meta.group_by_owner(vhost, destinations.drain(..));
    let routed: u64 = by_owner.iter().map(|(_, q)| q.len() as u64).sum();
    drop(meta);
    *shard.route_scratch.borrow_mut() = destinations;
    if let Some(tx) = ch.tx.as_mut() {
        // Transactional: routed now, as RabbitMQ; the copies (and the
        // return of a mandatory publish that found no queue) wait for
        // tx.commit (`handlers::tx`).
        return tx.publish(TxPublish {
            message,
            by_owner,
            returned: routed == 0 && method.mandatory,
            delayed: None,
        });
    }
    // In confirm mode every owner confirms its copies once they are
    // enqueued (and, for durable copies, on disk), as RabbitMQ does.
    let seq = ch.confirm_publish(by_owner.len() as u32);
    for (owner, queues) in by_owner {
        let confirm = seq.map(|seq| ConfirmTicket {
            shard: shard.id,
            conn: conn.key.id,
            channel: ch.id,
            seq,
        });
        conn.credit.sent(owner);
        shard.send(
            owner,
            Envelope::Enqueue {
                queues,
                message: message.clone(),
                confirm,
                publisher: Some(conn.key),
            },
        );
    }
    Counters::add(&shard.counters.routed_copies, routed);
    count_publish(shard, ch, vhost, &message, routed > 0, method.mandatory);
    if routed == 0 {
        Counters::add(&shard.counters.unroutable, 1);
        if method.mandatory {
            write_return(conn, ch.id, &message);
        }
    }
    if seq.is_some() {
        // An unroutable publish is confirmed now; routed ones when their
        // owners report them enqueued (see `ConnectionInbox::confirmed`).
        conn.mark_confirm_dirty(ch.id);
    }
    Ok(())
}

/// `message_stats` of a publish routed now (not delayed, not in a
/// transaction: those count when held, and at tx.commit, `handlers::tx`):
/// the channel's unroutable counts, the exchange's in / out.
fn count_publish(
    shard: &Shard,
    ch: &mut Channel,
    vhost: crate::broker::vhost::VhostId,
    message: &Message,
    routed: bool,
    mandatory: bool,
) {
    use crate::broker::stats::Stat;
    if !routed {
        ch.stats.add(
            if mandatory {
                Stat::ReturnUnroutable
            } else {
                Stat::DropUnroutable
            },
            1,
        );
    }
    shard
        .stats
        .exchange_publish(vhost, &message.exchange, routed);
}

/// Why a client may not publish to `exchange` (missing or internal), if
/// it may not.
fn exchange_refusal(shard: &Shard, conn: &ConnShared, exchange: &ShortStr) -> Option<AmqpError> {
    let vhost = &conn.negotiated.vhost_name;
    let routed = match shard.meta.borrow().topology(conn.negotiated.vhost) {
        Some(t) => t.route(exchange, "", None, &mut Vec::new()),
        None => RouteResult::ExchangeNotFound,
    };
    match routed {
        RouteResult::ExchangeNotFound => Some(exchange_not_found(exchange, vhost)),
        RouteResult::Internal => Some(publish_to_internal(exchange, vhost)),
        RouteResult::Routed { .. } => None,
    }
}

/// A publish to an `x-delayed-message` exchange with a positive `x-delay`:
/// held by this shard's scheduler (`shard::delayed`) and routed at its
/// time. As the plugin, a mandatory one is returned (312 NO_ROUTE) now —
/// nothing is routed at publish time — and still delivered later.
fn hold_delayed(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    ch: &mut Channel,
    message: &Message,
    mandatory: bool,
    delay_ms: u64,
    durable: bool,
) {
    let outcome = crate::shard::delayed::hold(
        shard,
        conn.negotiated.vhost,
        &message.exchange,
        &message.routing_key,
        &message.raw_properties,
        &message.body,
        delay_ms,
        durable,
    );
    if mandatory {
        write_return(conn, ch.id, message);
    }
    match ch.confirm_publish(1) {
        Some(seq) => {
            let ticket = ConfirmTicket {
                shard: shard.id,
                conn: conn.key.id,
                channel: ch.id,
                seq,
            };
            shard.settle_confirm(ticket, outcome);
            conn.mark_confirm_dirty(ch.id);
        }
        None => {
            if let ConfirmOutcome::Failed(reason) = outcome {
                tracing::error!(shard = shard.id, "delayed message dropped: {reason}");
            }
        }
    }
}

/// RabbitMQ refuses a publish whose `expiration` is not a non-negative
/// integer string: 406 `invalid expiration '<s>': <reason>`.
pub fn invalid_expiration(raw: &Bytes) -> Option<AmqpError> {
    const EXPIRATION_FLAG: u16 = 0x0100;
    if first_flags(raw) & EXPIRATION_FLAG == 0 {
        return None;
    }
    let expiration = BasicProperties::decode(raw.clone()).ok()?.expiration?;
    let reason = crate::broker::queue::parse_expiration(expiration.as_str()).err()?;
    Some(AmqpError::precondition_failed(format!(
        "invalid expiration '{expiration}': {reason}"
    )))
}

/// basic.return 312 NO_ROUTE of a mandatory publish that reached no queue.
pub fn write_return(conn: &ConnShared, channel: u16, message: &Message) {
    delivery::write(
        &mut conn.out.borrow_mut(),
        channel,
        Carrier::Return {
            reply_code: code::NO_ROUTE,
            reply_text: ShortStr::from_static("NO_ROUTE"),
        },
        message,
    );
    conn.notify_writer();
}

fn first_flags(raw: &[u8]) -> u16 {
    match raw {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}
