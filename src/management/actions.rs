//! The management API's writes, run on shard 0 as the requesting user in
//! the vhost the path names: declaring and deleting queues and exchanges,
//! binding and unbinding, purging, publishing, getting messages, the
//! aliveness test. Each makes the checks of the AMQP method that does the
//! same (`connection::handlers`: `Actor`, `queue::check_declare`,
//! `exchange::check_declare`, …) and sends the leader or the owner the same
//! request, so the API and AMQP clients get the same validation and the
//! same errors. The management API acts without a connection: like
//! RabbitMQ's, it may not touch another connection's exclusive queue.

use crate::broker::auth::publish::{PublishGrants, Publisher};
use crate::broker::auth::{Access, Resource};
use crate::broker::binding::BindingDef;
use crate::broker::error::AmqpError;
use crate::broker::exchange::{Destination, ExchangeKind};
use crate::broker::message::{Body, Message};
use crate::broker::queue::{QueueConfig, Settle};
use crate::broker::topology::{
    exchange_not_found, publish_to_internal, sender_selected, Origin, RouteResult,
};
use crate::broker::vhost::{QueueName, VhostId};
use crate::connection::direct_reply;
use crate::connection::handlers::access::{check_user_id, Actor};
use crate::connection::handlers::publish::invalid_expiration;
use crate::connection::handlers::{exchange, queue};
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::counters::Counters;
use crate::shard::envelope::{ConnKey, Envelope, Reply, Request, TxOp};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

/// The key the leader's requests carry for the management API: no
/// connection has it, so every exclusive queue is another connection's.
const NO_CONNECTION: ConnKey = ConnKey {
    shard: u16::MAX,
    id: u64::MAX,
};

/// What one `POST .../get` takes at most: messages, and payload bytes
/// (once over, it stops). Deliberate difference: RabbitMQ takes `count`
/// messages whatever their size; an answer is held in memory whole.
const MAX_GET_MESSAGES: u32 = 10_000;
const MAX_GET_BYTES: usize = 64 * 1024 * 1024;

/// The queue `GET /api/aliveness-test/{vhost}` uses, as RabbitMQ's.
pub const ALIVENESS_QUEUE: &str = "aliveness-test";

/// What a `Job::Act` does.
#[derive(Debug)]
pub enum Action {
    /// `PUT /api/queues/{vhost}/{name}`.
    DeclareQueue {
        name: String,
        durable: bool,
        auto_delete: bool,
        arguments: FieldTable,
    },
    /// `DELETE /api/queues/{vhost}/{name}` (`if-unused`, `if-empty`).
    DeleteQueue {
        name: String,
        if_unused: bool,
        if_empty: bool,
    },
    /// `DELETE /api/queues/{vhost}/{name}/contents`.
    Purge { name: String },
    /// `PUT /api/exchanges/{vhost}/{name}`.
    DeclareExchange {
        name: String,
        kind: String,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    },
    /// `DELETE /api/exchanges/{vhost}/{name}` (`if-unused`).
    DeleteExchange { name: String, if_unused: bool },
    /// `POST /api/bindings/{vhost}/e/{source}/{q|e}/{destination}`.
    Bind {
        source: String,
        destination: Destination,
        routing_key: String,
        arguments: FieldTable,
    },
    /// `DELETE /api/bindings/{vhost}/e/{source}/{q|e}/{destination}/{props}`.
    Unbind {
        source: String,
        destination: Destination,
        props: String,
    },
    /// `POST /api/exchanges/{vhost}/{name}/publish`.
    Publish {
        exchange: String,
        routing_key: String,
        properties: Box<BasicProperties>,
        payload: Bytes,
    },
    /// `POST /api/queues/{vhost}/{name}/get`.
    Get {
        queue: String,
        count: u32,
        mode: AckMode,
    },
    /// `GET /api/aliveness-test/{vhost}`.
    Aliveness,
}

/// How `POST .../get` settles what it got (RabbitMQ's `ackmode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AckMode {
    /// Got unacked, then requeued (RabbitMQ closes its channel).
    AckRequeueTrue,
    /// Got with no-ack: gone.
    AckRequeueFalse,
    /// Got unacked, then rejected with requeue.
    RejectRequeueTrue,
    /// Got unacked, then rejected without requeue (dead-lettered).
    RejectRequeueFalse,
}

impl AckMode {
    pub fn parse(s: &str) -> Option<AckMode> {
        Some(match s {
            "ack_requeue_true" => AckMode::AckRequeueTrue,
            "ack_requeue_false" => AckMode::AckRequeueFalse,
            "reject_requeue_true" => AckMode::RejectRequeueTrue,
            "reject_requeue_false" => AckMode::RejectRequeueFalse,
            _ => return None,
        })
    }

    fn settle(self) -> Option<Settle> {
        match self {
            AckMode::AckRequeueFalse => None,
            AckMode::AckRequeueTrue | AckMode::RejectRequeueTrue => Some(Settle::Requeue),
            AckMode::RejectRequeueFalse => Some(Settle::Reject),
        }
    }
}

/// A message `POST .../get` got, as basic.get-ok carried it.
#[derive(Debug)]
pub struct Got {
    pub payload: Bytes,
    pub redelivered: bool,
    pub exchange: String,
    pub routing_key: String,
    /// Ready messages left after this one.
    pub message_count: u32,
    pub raw_properties: Bytes,
}

/// What a write did.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// A declare: whether it created the entity (201) or found it (204).
    Created(bool),
    /// A publish: whether it reached a queue.
    Routed(bool),
    Messages(Vec<Got>),
}

/// Why a write was refused, as RabbitMQ's management plugin tells them
/// apart (see `writes::refusal`).
#[derive(Debug)]
pub enum Refusal {
    /// The vhost in the path does not exist.
    VhostNotFound,
    /// The object in the path does not exist (RabbitMQ's resource check).
    NotFound,
    /// A user who is not an administrator has no permissions in the vhost.
    VhostAccess,
    /// The AMQP method's error, as `rabbit_channel:handle_method` raises it
    /// for a declare, delete, bind or unbind (RabbitMQ's `direct_request`).
    Method(AmqpError),
    /// The AMQP method's error on a channel (publish, get, aliveness:
    /// RabbitMQ's `with_channel`).
    Channel(AmqpError),
    /// A publish an owner refused (reject-publish) or could not store.
    Rejected(String),
}

/// Runs `action` as `user` in vhost `vhost`.
pub async fn act(
    shard: &Rc<Shard>,
    user: &str,
    vhost: &str,
    action: Action,
) -> Result<Outcome, Refusal> {
    let id = {
        let meta = shard.meta.borrow();
        let id = meta.vhost_id(vhost).ok_or(Refusal::VhostNotFound)?;
        let admin = meta
            .auth
            .user(user)
            .is_some_and(|u| u.tags.iter().any(|t| t == "administrator"));
        if !admin && !meta.auth.vhost_access(user, vhost) {
            return Err(Refusal::VhostAccess);
        }
        id
    };
    let actor = Actor {
        shard,
        user,
        vhost: id,
        vhost_name: vhost,
        conn: None,
    };
    match action {
        Action::DeclareQueue {
            name,
            durable,
            auto_delete,
            arguments,
        } => declare_queue(
            shard,
            &actor,
            &name,
            QueueConfig {
                durable,
                exclusive: false,
                auto_delete,
                arguments,
            },
        )
        .await
        .map_err(Refusal::Method),
        Action::DeleteQueue {
            name,
            if_unused,
            if_empty,
        } => {
            let name = existing_queue(shard, id, &name)?;
            actor
                .authorize(Access::Configure, Resource::Queue, &name)
                .map_err(Refusal::Method)?;
            let request = Request::DeleteQueue {
                name: QueueName::new(id, name),
                if_unused,
                if_empty,
                conn: Some(NO_CONNECTION),
            };
            count(shard.request(LEADER, request).await).map_err(Refusal::Method)
        }
        Action::Purge { name } => {
            let name = existing_queue(shard, id, &name)?;
            actor
                .authorize(Access::Read, Resource::Queue, &name)
                .map_err(Refusal::Method)?;
            let meta = actor.queue_access(&name).map_err(Refusal::Method)?;
            let request = Request::Purge { name: meta.name };
            count(shard.request(meta.owner, request).await).map_err(Refusal::Method)
        }
        Action::DeclareExchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
        } => {
            let name = short(&name).map_err(Refusal::Method)?;
            let existed = exchange_exists(shard, id, &name);
            exchange::check_declare(&actor, &name, &arguments).map_err(Refusal::Method)?;
            let request = Request::DeclareExchange {
                vhost: id,
                name,
                kind: short(&kind).map_err(Refusal::Method)?,
                passive: false,
                durable,
                auto_delete,
                internal,
                arguments,
            };
            done(shard.request(LEADER, request).await).map_err(Refusal::Method)?;
            Ok(Outcome::Created(!existed))
        }
        Action::DeleteExchange { name, if_unused } => {
            if name.len() > 255 || !exchange_exists(shard, id, &name) {
                return Err(Refusal::NotFound);
            }
            exchange::check_delete(&actor, &name).map_err(Refusal::Method)?;
            let request = Request::DeleteExchange {
                vhost: id,
                name: ShortStr::from(name.as_str()),
                if_unused,
            };
            done(shard.request(LEADER, request).await).map_err(Refusal::Method)?;
            Ok(Outcome::Done)
        }
        Action::Bind {
            source,
            destination,
            routing_key,
            arguments,
        } => {
            let def = BindingDef {
                source: short(&source).map_err(Refusal::Method)?,
                destination,
                routing_key: short(&routing_key).map_err(Refusal::Method)?,
                arguments,
            };
            bind(shard, &actor, def, true).await
        }
        Action::Unbind {
            source,
            destination,
            props,
        } => {
            let def = shard
                .meta
                .borrow()
                .topology(id)
                .into_iter()
                .flat_map(|t| t.bindings())
                .find(|b| {
                    b.source.as_str() == source
                        && b.destination == destination
                        && super::binding_keys::properties_key(&b.routing_key, &b.arguments)
                            == props
                })
                .ok_or(Refusal::NotFound)?;
            bind(shard, &actor, def, false).await
        }
        Action::Publish {
            exchange,
            routing_key,
            properties,
            payload,
        } => {
            // As RabbitMQ's, a missing exchange is the channel's 404.
            publish(shard, &actor, &exchange, &routing_key, &properties, payload).await
        }
        Action::Get { queue, count, mode } => {
            // As RabbitMQ's, a missing queue is the channel's 404.
            let name = short(&queue).map_err(Refusal::Channel)?;
            get(shard, &actor, &name, count, mode).await
        }
        Action::Aliveness => aliveness(shard, &actor).await,
    }
}

async fn declare_queue(
    shard: &Rc<Shard>,
    actor: &Actor<'_>,
    name: &str,
    config: QueueConfig,
) -> Result<Outcome, AmqpError> {
    let name = short(name)?;
    let qname = QueueName::new(actor.vhost, name.clone());
    let existed = shard.meta.borrow().queues.contains_key(&qname);
    let (name, config, owner) = queue::check_declare(actor, name, false, config)?;
    let request = Request::DeclareQueue {
        name,
        config,
        owner,
        conn: NO_CONNECTION,
    };
    done(shard.request(LEADER, request).await)?;
    Ok(Outcome::Created(!existed))
}

/// queue.bind / exchange.bind (or unbind) as the actor.
async fn bind(
    shard: &Rc<Shard>,
    actor: &Actor<'_>,
    def: BindingDef,
    bind: bool,
) -> Result<Outcome, Refusal> {
    let (kind, name) = match &def.destination {
        Destination::Queue(q) => (Resource::Queue, q),
        Destination::Exchange(x) => (Resource::Exchange, x),
    };
    actor
        .authorize_binding(&def.source, kind, name, &def.routing_key)
        .map_err(Refusal::Method)?;
    let BindingDef {
        source,
        destination,
        routing_key,
        arguments,
    } = def;
    let request = if bind {
        Request::Bind {
            vhost: actor.vhost,
            source,
            destination,
            routing_key,
            arguments,
            conn: NO_CONNECTION,
        }
    } else {
        Request::Unbind {
            vhost: actor.vhost,
            source,
            destination,
            routing_key,
            arguments,
            conn: NO_CONNECTION,
        }
    };
    done(shard.request(LEADER, request).await).map_err(Refusal::Method)?;
    Ok(Outcome::Done)
}

/// basic.publish (mandatory, in confirm mode, as RabbitMQ's endpoint):
/// the publish path's checks, routed on shard 0's copy of the topology,
/// and answered once every owner has the copies (and, for durable ones,
/// the fsync covering them completed).
async fn publish(
    shard: &Rc<Shard>,
    actor: &Actor<'_>,
    exchange: &str,
    routing_key: &str,
    properties: &BasicProperties,
    payload: Bytes,
) -> Result<Outcome, Refusal> {
    let refused = Refusal::Channel;
    let exchange = short(exchange).map_err(refused)?;
    let routing_key = short(routing_key).map_err(refused)?;
    let mut raw = bytes::BytesMut::new();
    properties.encode(&mut raw);
    let raw = raw.freeze();
    let tags = {
        let meta = shard.meta.borrow();
        PublishGrants::default()
            .check(
                &meta.auth,
                Publisher {
                    user: actor.user,
                    vhost: actor.vhost_name,
                },
                &exchange,
                &routing_key,
                || {
                    meta.topology(actor.vhost)
                        .and_then(|t| t.exchange(&exchange))
                        .is_some_and(|x| x.kind == ExchangeKind::Topic)
                },
            )
            .map_err(refused)?;
        meta.auth
            .user(actor.user)
            .map(|u| u.tags.clone())
            .unwrap_or_default()
    };
    check_user_id(actor.user, &tags, &raw).map_err(refused)?;
    if let Some(e) = invalid_expiration(&raw) {
        return Err(refused(e));
    }
    let headers = properties.headers.as_ref();
    let extra_keys = sender_selected::extra_keys(headers).map_err(refused)?;
    let stripped = headers.and_then(sender_selected::without_bcc);
    let persistent = properties.delivery_mode == Some(2);
    let mut body = Body::new();
    body.push(payload);
    Counters::add(&shard.counters.published, 1);
    let delay =
        crate::shard::delayed::delay_of(&shard.meta.borrow(), actor.vhost, &exchange, headers);
    if let Some((delay_ms, durable_exchange)) = delay {
        // Held by shard 0's scheduler; routed at its time (so a mandatory
        // publish reached no queue now, as the plugin says).
        let outcome = crate::shard::delayed::hold(
            shard,
            actor.vhost,
            &exchange,
            &routing_key,
            &raw,
            &body,
            delay_ms,
            durable_exchange && persistent,
        );
        settled(shard, outcome).await?;
        return Ok(Outcome::Routed(false));
    }
    let mut destinations = Vec::new();
    let by_owner = {
        let meta = shard.meta.borrow();
        let routed = match meta.topology(actor.vhost) {
            Some(t) => t.route_keys(
                &exchange,
                &routing_key,
                &extra_keys,
                stripped.as_ref().or(headers),
                Origin::Client,
                &mut destinations,
            ),
            None => RouteResult::ExchangeNotFound,
        };
        match routed {
            RouteResult::ExchangeNotFound => {
                return Err(refused(exchange_not_found(&exchange, actor.vhost_name)))
            }
            RouteResult::Internal => {
                return Err(refused(publish_to_internal(&exchange, actor.vhost_name)))
            }
            RouteResult::Routed { .. } => {}
        }
        meta.group_by_owner(actor.vhost, destinations)
    };
    let message = Arc::new(Message {
        exchange,
        routing_key,
        raw_properties: raw,
        body,
        persistent,
    });
    if message.exchange.is_empty() && direct_reply::is_reply_address(&message.routing_key) {
        // To the requester's channel, which checks the address; it
        // reached no queue.
        if let Some((to, conn, channel)) = direct_reply::parse(&message.routing_key) {
            if to < shard.count {
                shard.send(
                    to,
                    Envelope::DirectReply {
                        conn,
                        channel,
                        message,
                    },
                );
                shard.pump();
            }
        }
        return Ok(Outcome::Routed(false));
    }
    let copies: u64 = by_owner.iter().map(|(_, q)| q.len() as u64).sum();
    Counters::add(&shard.counters.routed_copies, copies);
    if copies == 0 {
        Counters::add(&shard.counters.unroutable, 1);
        return Ok(Outcome::Routed(false));
    }
    let answers: Vec<_> = by_owner
        .into_iter()
        .map(|(owner, queues)| {
            let ops = vec![TxOp::Enqueue {
                queues,
                message: message.clone(),
            }];
            shard.request(owner, Request::TxCommit { ops })
        })
        .collect();
    let mut failure = None;
    for answer in answers {
        if let Err(e) = done(answer.await) {
            failure.get_or_insert(e);
        }
    }
    match failure {
        None => Ok(Outcome::Routed(true)),
        Some(e) if e.text.ends_with(crate::shard::limits::REJECTED) => Err(Refusal::Rejected(
            "Unable to publish message. Check queue limits.".into(),
        )),
        Some(e) => Err(Refusal::Rejected(e.text)),
    }
}

/// Waits for what a delayed hold needs (its record's fsync).
async fn settled(shard: &Rc<Shard>, outcome: ConfirmOutcome) -> Result<(), Refusal> {
    match outcome {
        ConfirmOutcome::Now => Ok(()),
        ConfirmOutcome::Failed(reason) => Err(Refusal::Rejected(reason)),
        ConfirmOutcome::AfterSync(lsn) => match shard.log.as_ref() {
            Some(log) => log
                .sync(lsn)
                .await
                .map_err(|e| Refusal::Rejected(e.to_string())),
            None => Ok(()),
        },
    }
}

/// basic.get `count` times (stopping at get-empty), then settles what it
/// got as `mode` says — after the gets, as RabbitMQ, so a requeue does not
/// hand the same message out twice.
async fn get(
    shard: &Rc<Shard>,
    actor: &Actor<'_>,
    name: &ShortStr,
    count: u32,
    mode: AckMode,
) -> Result<Outcome, Refusal> {
    actor
        .authorize(Access::Read, Resource::Queue, name)
        .map_err(Refusal::Channel)?;
    let meta = actor.queue_access(name).map_err(Refusal::Channel)?;
    let no_ack = mode == AckMode::AckRequeueFalse;
    let mut got = Vec::new();
    let mut ids = Vec::new();
    let mut bytes = 0;
    for _ in 0..count.min(MAX_GET_MESSAGES) {
        if bytes >= MAX_GET_BYTES {
            break;
        }
        let request = Request::Get {
            name: meta.name.clone(),
            no_ack,
            getter: None,
        };
        let answer = match shard.request(meta.owner, request).await {
            Reply::Got(r) => r.map_err(Refusal::Channel)?,
            other => return Err(Refusal::Channel(unexpected(other))),
        };
        let Some(m) = answer else {
            break;
        };
        ids.push(m.msg_id);
        bytes += m.message.body.len() as usize;
        got.push(Got {
            payload: m.message.body.to_bytes(),
            redelivered: m.redelivered,
            exchange: m.message.exchange.to_string(),
            routing_key: m.message.routing_key.to_string(),
            message_count: m.remaining,
            raw_properties: m.message.raw_properties.clone(),
        });
    }
    if let (Some(how), false) = (mode.settle(), ids.is_empty()) {
        shard.send(
            meta.owner,
            Envelope::Settle {
                queue: meta.name,
                msg_ids: ids,
                how,
            },
        );
        shard.pump();
    }
    Ok(Outcome::Messages(got))
}

/// RabbitMQ's aliveness test: declare `aliveness-test`, publish a message
/// to it, get it back.
async fn aliveness(shard: &Rc<Shard>, actor: &Actor<'_>) -> Result<Outcome, Refusal> {
    declare_queue(
        shard,
        actor,
        ALIVENESS_QUEUE,
        QueueConfig {
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::default(),
        },
    )
    .await
    .map_err(Refusal::Channel)?;
    publish(
        shard,
        actor,
        "",
        ALIVENESS_QUEUE,
        &BasicProperties::default(),
        Bytes::from_static(b"test_message"),
    )
    .await?;
    get(
        shard,
        actor,
        &ShortStr::from_static(ALIVENESS_QUEUE),
        1,
        AckMode::AckRequeueFalse,
    )
    .await
}

/// The queue `name` of the vhost, or the API's 404.
fn existing_queue(shard: &Shard, vhost: VhostId, name: &str) -> Result<ShortStr, Refusal> {
    let name = ShortStr::try_from_string(name.to_string()).ok_or(Refusal::NotFound)?;
    if shard
        .meta
        .borrow()
        .queues
        .contains_key(&QueueName::new(vhost, name.clone()))
    {
        Ok(name)
    } else {
        Err(Refusal::NotFound)
    }
}

fn exchange_exists(shard: &Shard, vhost: VhostId, name: &str) -> bool {
    shard
        .meta
        .borrow()
        .topology(vhost)
        .is_some_and(|t| t.exchange(name).is_some())
}

/// A name from the request as a short string (RabbitMQ refuses longer
/// ones when it reads the method).
fn short(s: &str) -> Result<ShortStr, AmqpError> {
    ShortStr::try_from_string(s.to_string()).ok_or_else(|| {
        AmqpError::precondition_failed(format!("name too long (over 255 bytes): '{s}'"))
    })
}

fn done(r: Reply) -> Result<(), AmqpError> {
    match r {
        Reply::Done(r) => r,
        other => Err(unexpected(other)),
    }
}

fn count(r: Reply) -> Result<Outcome, AmqpError> {
    match r {
        Reply::Count(r) => r.map(|_| Outcome::Done),
        other => Err(unexpected(other)),
    }
}

fn unexpected(r: Reply) -> AmqpError {
    AmqpError::new(
        crate::broker::error::code::INTERNAL_ERROR,
        format!("unexpected reply {r:?}"),
    )
}
