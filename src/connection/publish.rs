//! The publish path, all synchronous on the publisher's shard: assemble a
//! basic.publish from its method, header and body frames; route it on this
//! shard's copy of the routing tables; queue one `Arc<Message>` copy per
//! destination queue for its owner (sent in batches by the next pump);
//! return it when mandatory found no queue; confirm it in confirm mode.

use crate::broker::error::{code, AmqpError};
use crate::broker::message::{Body, Message};
use crate::broker::topology::{exchange_not_found, publish_to_internal, RouteResult};
use crate::connection::channel::{PendingPublish, MAX_MESSAGE_SIZE};
use crate::connection::{close_channel_with_error, direct_reply, ConnShared, HardError};
use crate::protocol::methods::{BasicPublish, BasicReturn, Method};
use crate::protocol::properties::{BasicProperties, ContentHeader, BASIC_CLASS_ID};
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::counters::Counters;
use crate::shard::envelope::{ConfirmTicket, Envelope};
use crate::shard::Shard;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

/// Property flag of the `headers` property in the first flags word.
const HEADERS_FLAG: u16 = 1 << 13;

fn unexpected_frame(text: String) -> HardError {
    (AmqpError::new(code::UNEXPECTED_FRAME, text), 0, 0)
}

/// basic.publish arrived: content frames follow.
pub fn on_publish(conn: &ConnShared, channel: u16, method: BasicPublish) -> Result<(), HardError> {
    let mut channels = conn.channels.borrow_mut();
    let Some(ch) = channels.get_mut(&channel) else {
        return Ok(());
    };
    if ch.publish.is_some() {
        return Err(unexpected_frame(format!(
            "expected content header for class 60, got non content header frame instead (channel {channel})"
        )));
    }
    if method.immediate {
        // RabbitMQ dropped `immediate` (3.0) and closes the connection.
        return Err((
            AmqpError::new(code::NOT_IMPLEMENTED, "immediate=true"),
            BASIC_CLASS_ID,
            40, // basic.publish
        ));
    }
    ch.publish = Some(PendingPublish {
        method,
        header: None,
        body: Body::new(),
    });
    Ok(())
}

pub fn on_header(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    header: ContentHeader,
) -> Result<(), HardError> {
    {
        let mut channels = conn.channels.borrow_mut();
        let Some(ch) = channels.get_mut(&channel) else {
            return Err(channel_not_open(channel));
        };
        if !ch.is_open() {
            return Ok(());
        }
        let Some(p) = ch.publish.as_mut().filter(|p| p.header.is_none()) else {
            return Err(unexpected_frame(format!(
                "unexpected content header for class {} on channel {channel}",
                header.class_id
            )));
        };
        if header.class_id != BASIC_CLASS_ID {
            return Err(unexpected_frame(format!(
                "expected content header for class 60, got class {}",
                header.class_id
            )));
        }
        if header.body_size > MAX_MESSAGE_SIZE {
            let size = header.body_size;
            ch.publish = None;
            drop(channels);
            let e = AmqpError::precondition_failed(format!(
                "message size {size} is larger than configured max size {MAX_MESSAGE_SIZE}"
            ));
            close_channel_with_error(shard, conn, channel, &e, 60, 40);
            return Ok(());
        }
        let complete = header.body_size == 0;
        p.header = Some(header);
        if !complete {
            return Ok(());
        }
    }
    complete_publish(shard, conn, channel);
    Ok(())
}

pub fn on_body(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    payload: Bytes,
) -> Result<(), HardError> {
    {
        let mut channels = conn.channels.borrow_mut();
        let Some(ch) = channels.get_mut(&channel) else {
            return Err(channel_not_open(channel));
        };
        if !ch.is_open() {
            return Ok(());
        }
        let Some((p, size)) = ch
            .publish
            .as_mut()
            .and_then(|p| p.header.as_ref().map(|h| h.body_size).map(|s| (p, s)))
        else {
            return Err(unexpected_frame(format!(
                "unexpected content body on channel {channel}"
            )));
        };
        p.body.push(payload);
        if p.body.len() > size {
            return Err(unexpected_frame(format!(
                "content body longer than the {size} bytes its header announced"
            )));
        }
        if p.body.len() < size {
            return Ok(());
        }
    }
    complete_publish(shard, conn, channel);
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

/// Routes a complete message and queues its copies.
fn complete_publish(shard: &Rc<Shard>, conn: &ConnShared, channel: u16) {
    let (method, mut header, body, confirming, reply_consumer) = {
        let mut channels = conn.channels.borrow_mut();
        let ch = channels.get_mut(&channel).expect("checked by caller");
        let p = ch.publish.take().expect("publish in progress");
        let reply = ch.reply_to_address.clone();
        (
            p.method,
            p.header.expect("header"),
            p.body,
            ch.confirms.is_some(),
            reply,
        )
    };
    match direct_reply::rewrite_reply_to(&header.raw_properties, reply_consumer.as_ref()) {
        Ok(Some(rewritten)) => header.raw_properties = rewritten,
        Ok(None) => {}
        Err(e) => {
            close_channel_with_error(shard, conn, channel, &e, 60, 40);
            return;
        }
    }
    if let Some(e) = invalid_expiration(&header.raw_properties) {
        close_channel_with_error(shard, conn, channel, &e, 60, 40);
        return;
    }
    Counters::add(&shard.counters.published, 1);
    conn.published.set(true);
    let headers: Option<FieldTable> = if first_flags(&header.raw_properties) & HEADERS_FLAG != 0 {
        BasicProperties::decode(header.raw_properties.clone())
            .ok()
            .and_then(|p| p.headers)
    } else {
        None
    };
    let persistent = header.delivery_mode() == Some(2);
    // The shard's routing scratch space: no allocation per publish.
    let mut destinations = std::mem::take(&mut *shard.route_scratch.borrow_mut());
    destinations.clear();
    {
        let meta = shard.meta.borrow();
        let refused = match meta.topology.route(
            &method.exchange,
            &method.routing_key,
            headers.as_ref(),
            &mut destinations,
        ) {
            RouteResult::ExchangeNotFound => Some(exchange_not_found(&method.exchange)),
            RouteResult::Internal => Some(publish_to_internal(&method.exchange)),
            RouteResult::Routed { .. } => None,
        };
        if let Some(e) = refused {
            drop(meta);
            close_channel_with_error(shard, conn, channel, &e, 60, 40);
            return;
        }
        let message = Arc::new(Message {
            exchange: method.exchange.clone(),
            routing_key: method.routing_key.clone(),
            raw_properties: header.raw_properties.clone(),
            body,
            persistent,
        });
        let mut routed = 0u64;
        if method.exchange.is_empty() && direct_reply::is_reply_address(&method.routing_key) {
            // Handed to the requester's channel, which checks the address's
            // secret. Like RabbitMQ 3.10, the reply reached no queue: a
            // mandatory one is also returned (312 NO_ROUTE).
            destinations.clear();
            if let Some((to_shard, to_conn, to_channel)) = direct_reply::parse(&method.routing_key)
            {
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
        let mut by_owner: Vec<(u16, Vec<ShortStr>)> = Vec::new();
        for queue in destinations.drain(..) {
            let Some(q) = meta.queues.get(&queue) else {
                continue;
            };
            match by_owner.iter_mut().find(|(o, _)| *o == q.owner) {
                Some(entry) => entry.1.push(queue),
                None => by_owner.push((q.owner, vec![queue])),
            }
            routed += 1;
        }
        *shard.route_scratch.borrow_mut() = destinations;
        // In confirm mode every owner confirms its copies once they are
        // enqueued (and, for durable copies, on disk), as RabbitMQ does.
        let owners = by_owner.len() as u32;
        let seq = if confirming {
            let mut channels = conn.channels.borrow_mut();
            let confirms = channels
                .get_mut(&channel)
                .and_then(|c| c.confirms.as_mut())
                .expect("confirm mode");
            Some(confirms.publish(owners))
        } else {
            None
        };
        for (owner, queues) in by_owner {
            let confirm = seq.map(|seq| ConfirmTicket {
                shard: shard.id,
                conn: conn.key.id,
                channel,
                seq,
            });
            shard.send(
                owner,
                Envelope::Enqueue {
                    queues,
                    message: message.clone(),
                    confirm,
                },
            );
        }
        Counters::add(&shard.counters.routed_copies, routed);
        if routed == 0 {
            Counters::add(&shard.counters.unroutable, 1);
            if method.mandatory {
                let mut out = conn.out.borrow_mut();
                out.method(
                    channel,
                    &Method::from(BasicReturn {
                        reply_code: code::NO_ROUTE,
                        reply_text: ShortStr::from_static("NO_ROUTE"),
                        exchange: method.exchange.clone(),
                        routing_key: method.routing_key.clone(),
                    }),
                );
                out.content(
                    channel,
                    BASIC_CLASS_ID,
                    &message.raw_properties,
                    &message.body,
                );
                drop(out);
                conn.notify_writer();
            }
        }
    }
    if confirming {
        // An unroutable publish is confirmed now; routed ones when their
        // owners report them enqueued (see `connection::confirmed`).
        crate::connection::mark_confirm_dirty(conn, channel);
    }
}

/// RabbitMQ refuses a publish whose `expiration` is not a non-negative
/// integer string: 406 `invalid expiration '<s>': <reason>`.
fn invalid_expiration(raw: &bytes::Bytes) -> Option<AmqpError> {
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

fn first_flags(raw: &[u8]) -> u16 {
    match raw {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}
