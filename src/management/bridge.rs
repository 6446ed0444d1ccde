//! The bridge from the management server's thread into shard 0: a bounded
//! queue of jobs that shard 0 serves on its executor, each answered over a
//! one-shot channel. The HTTP thread never touches shard state; a full
//! queue is refused at once (HTTP 503), so no client can pile work up, and
//! shard 0 answers a job with copies of what it read (`View`), so JSON is
//! rendered off the shards.

use crate::broker::auth::{Access, Resource, UserDef};
use crate::broker::binding::BindingDef;
use crate::broker::error::AmqpError;
use crate::broker::exchange::ExchangeDef;
use crate::broker::vhost::{QueueName, VhostId};
use crate::connection::tls_config::TlsContext;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::envelope::ShardSnapshot;
use crate::shard::envelope::{Reply, Request};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Jobs waiting for shard 0 at most; more are refused.
pub const CAPACITY: usize = 64;

/// What the management thread asks of shard 0.
pub enum Job {
    /// A `warren ctl` request (`crate::admin::answer`).
    Admin {
        method: String,
        path: String,
        reply: oneshot::Sender<(&'static str, String)>,
    },
    /// A copy of the broker's state for the API's listings.
    View { reply: oneshot::Sender<View> },
    /// A change made as `user` (RabbitMQ's permission checks apply);
    /// answers a message count, or the AMQP error.
    Change {
        user: String,
        change: Change,
        reply: oneshot::Sender<Result<u32, AmqpError>>,
    },
    /// Checks a user's password against the user store; answers the
    /// user's tags, or why the login is refused (for the log).
    Authenticate {
        user: String,
        password: String,
        reply: oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// Work of the definitions and access endpoints (`access`,
    /// `transfer`): run on shard 0, answering over its own channel.
    Task(Task),
}

/// A closure run on shard 0 (it builds the future there, so the future
/// need not be `Send`).
pub type Task =
    Box<dyn FnOnce(Rc<Shard>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send>;

/// What a `Job::Change` does.
#[derive(Debug)]
pub enum Change {
    /// `DELETE /api/queues/{vhost}/{name}` (`if-unused`, `if-empty`).
    DeleteQueue {
        name: String,
        if_unused: bool,
        if_empty: bool,
    },
    /// `DELETE /api/queues/{vhost}/{name}/contents`.
    Purge { name: String },
    /// `DELETE /api/exchanges/{vhost}/{name}` (`if-unused`).
    DeleteExchange { name: String, if_unused: bool },
}

/// Everything the API's listings read, copied out of the shards.
pub struct View {
    /// Every shard's snapshot, in shard order.
    pub snapshots: Vec<ShardSnapshot>,
    /// Exchanges by name, with their policy ("" when none).
    pub exchanges: Vec<(ExchangeDef, String)>,
    pub bindings: Vec<BindingDef>,
    /// Each queue's declared arguments, by name.
    pub queue_arguments: std::collections::HashMap<String, FieldTable>,
    /// The users, by name.
    pub users: Vec<UserDef>,
    /// `message_stats` counts and rates (filled in by the management
    /// thread, `super::stats`).
    pub stats: super::stats::Stats,
}

/// The sending side, held by the management thread.
pub type Sender = async_channel::Sender<Job>;

/// A bounded bridge: the sender for the management thread, the receiver
/// for shard 0.
pub fn channel() -> (Sender, async_channel::Receiver<Job>) {
    async_channel::bounded(CAPACITY)
}

/// Serves jobs on shard 0 until the management thread's sender is gone.
/// `tls` is the amqps context `warren ctl reload_tls` reloads.
pub async fn serve(
    shard: Rc<Shard>,
    jobs: async_channel::Receiver<Job>,
    tls: Option<Arc<TlsContext>>,
) {
    while let Ok(job) = jobs.recv().await {
        let shard = shard.clone();
        let tls = tls.clone();
        glommio::spawn_local(async move {
            match job {
                Job::Admin {
                    method,
                    path,
                    reply,
                } => {
                    let _ = reply
                        .send(crate::admin::answer(&shard, &method, &path, tls.as_deref()).await);
                }
                Job::View { reply } => {
                    let _ = reply.send(view(&shard).await);
                }
                Job::Change {
                    user,
                    change,
                    reply,
                } => {
                    let _ = reply.send(apply(&shard, &user, change).await);
                }
                Job::Task(task) => task(shard).await,
                Job::Authenticate {
                    user,
                    password,
                    reply,
                } => {
                    let meta = shard.meta.borrow();
                    let answer = meta
                        .auth
                        .authenticate(&user, &password)
                        .map(|u| u.tags.clone())
                        .map_err(|why| why.describe(&user));
                    let _ = reply.send(answer);
                }
            }
        })
        .detach();
    }
}

/// A change, checked against the user's permissions as the AMQP method
/// that does the same is (queue.delete, exchange.delete: configure;
/// queue.purge: read).
async fn apply(shard: &Rc<Shard>, user: &str, change: Change) -> Result<u32, AmqpError> {
    // The queue deletion's flags; None for a purge.
    let (access, name, deletion) = match change {
        Change::DeleteExchange { name, if_unused } => {
            return delete_exchange(shard, user, &name, if_unused).await
        }
        Change::DeleteQueue {
            name,
            if_unused,
            if_empty,
        } => (Access::Configure, name, Some((if_unused, if_empty))),
        Change::Purge { name } => (Access::Read, name, None),
    };
    shard
        .meta
        .borrow()
        .auth
        .check(user, "/", access, Resource::Queue, &name)?;
    let not_found = || AmqpError::not_found(format!("no queue '{name}' in vhost '/'"));
    if name.len() > 255 {
        return Err(not_found());
    }
    let owner = shard
        .meta
        .borrow()
        .queues
        .get(&QueueName::default_vhost(name.as_str()))
        .map(|q| q.owner)
        .ok_or_else(not_found)?;
    let name = QueueName::default_vhost(name.as_str());
    let (dest, request) = match deletion {
        Some((if_unused, if_empty)) => (
            LEADER,
            Request::DeleteQueue {
                name,
                if_unused,
                if_empty,
                conn: None,
            },
        ),
        None => (owner, Request::Purge { name }),
    };
    match shard.request(dest, request).await {
        Reply::Count(r) => r,
        other => Err(AmqpError::new(541, format!("unexpected reply {other:?}"))),
    }
}

/// exchange.delete as `user`: the default and `amq.*` exchanges are the
/// leader's to refuse (403), as for AMQP; an unknown one is a 404 (the
/// AMQP method would succeed).
async fn delete_exchange(
    shard: &Rc<Shard>,
    user: &str,
    name: &str,
    if_unused: bool,
) -> Result<u32, AmqpError> {
    let not_found = || AmqpError::not_found(format!("no exchange '{name}' in vhost '/'"));
    let known = shard
        .meta
        .borrow()
        .topology(VhostId::DEFAULT)
        .is_some_and(|t| t.exchange(name).is_some());
    if name.len() > 255 || !known {
        return Err(not_found());
    }
    if !name.is_empty() && !name.starts_with("amq.") {
        shard
            .meta
            .borrow()
            .auth
            .check(user, "/", Access::Configure, Resource::Exchange, name)?;
    }
    let request = Request::DeleteExchange {
        vhost: VhostId::DEFAULT,
        name: ShortStr::from(name),
        if_unused,
    };
    match shard.request(LEADER, request).await {
        Reply::Done(r) => r.map(|()| 0),
        other => Err(AmqpError::new(541, format!("unexpected reply {other:?}"))),
    }
}

async fn view(shard: &Rc<Shard>) -> View {
    let snapshots = crate::admin::gather(shard).await;
    let meta = shard.meta.borrow();
    // The API shows vhost `/` only so far (see `management` docs).
    let topology = meta.topology(VhostId::DEFAULT);
    let mut exchanges: Vec<(ExchangeDef, String)> = topology
        .into_iter()
        .flat_map(|t| {
            t.exchanges().map(move |x| {
                let policy = t.exchange_policy(&x.name).unwrap_or("");
                (x.clone(), policy.to_string())
            })
        })
        .collect();
    exchanges.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    View {
        snapshots,
        exchanges,
        bindings: topology.map(|t| t.bindings()).unwrap_or_default(),
        queue_arguments: meta
            .queues
            .values()
            .filter(|q| q.name.vhost == VhostId::DEFAULT)
            .map(|q| (q.name.name.to_string(), q.config.arguments.clone()))
            .collect(),
        users: meta.auth.defs().users.values().cloned().collect(),
        stats: Default::default(),
    }
}
