//! The bridge from the management server's thread into shard 0: a bounded
//! queue of jobs that shard 0 serves on its executor, each answered over a
//! one-shot channel. The HTTP thread never touches shard state; a full
//! queue is refused at once (HTTP 503), so no client can pile work up, and
//! shard 0 answers a job with copies of what it read (`View`), so JSON is
//! rendered off the shards. The writes themselves are `actions`.

use super::actions::{self, Action, Outcome, Refusal};
use crate::broker::binding::BindingDef;
use crate::broker::error::AmqpError;
use crate::broker::exchange::ExchangeDef;
use crate::broker::vhost::{QueueName, VhostId};
use crate::connection::tls_config::TlsContext;
use crate::protocol::types::FieldTable;
use crate::shard::envelope::{ConnKey, Reply, Request, ShardSnapshot};
use crate::shard::Shard;
use std::collections::HashMap;
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
    /// A copy of the broker's state for the API's listings, with the
    /// vhosts `user` may log into.
    View {
        user: String,
        reply: oneshot::Sender<View>,
    },
    /// A write in a vhost made as `user`, with the checks of the AMQP
    /// method that does the same (see `actions`).
    Act {
        user: String,
        vhost: String,
        action: Action,
        reply: oneshot::Sender<Result<Outcome, Refusal>>,
    },
    /// Closes a connection (anywhere) with 320 and `reason`.
    CloseConnection {
        key: ConnKey,
        reason: String,
        reply: oneshot::Sender<Result<(), AmqpError>>,
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

/// Everything the API's listings read, copied out of the shards.
pub struct View {
    /// Every shard's snapshot, in shard order.
    pub snapshots: Vec<ShardSnapshot>,
    /// Every vhost, by name.
    pub vhosts: Vec<(VhostId, String)>,
    /// The vhosts the requesting user has permissions in (RabbitMQ's
    /// "login vhosts").
    pub login_vhosts: Vec<String>,
    /// Exchanges by vhost and name, with their policy ("" when none).
    pub exchanges: Vec<(VhostId, ExchangeDef, String)>,
    pub bindings: Vec<(VhostId, BindingDef)>,
    /// Each queue's declared arguments (a queue without any is not here).
    pub queue_arguments: HashMap<QueueName, FieldTable>,
    /// `message_stats` counts and rates (filled in by the management
    /// thread, `super::stats`).
    pub stats: super::stats::Stats,
}

impl View {
    /// The name of vhost `id` ("" for one deleted meanwhile).
    pub fn vhost_name(&self, id: VhostId) -> &str {
        self.vhosts
            .iter()
            .find(|(v, _)| *v == id)
            .map_or("", |(_, n)| n.as_str())
    }

    /// The id of the vhost called `name`.
    pub fn vhost_id(&self, name: &str) -> Option<VhostId> {
        self.vhosts.iter().find(|(_, n)| n == name).map(|(v, _)| *v)
    }
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
                Job::View { user, reply } => {
                    let _ = reply.send(view(&shard, &user).await);
                }
                Job::Act {
                    user,
                    vhost,
                    action,
                    reply,
                } => {
                    let _ = reply.send(actions::act(&shard, &user, &vhost, action).await);
                }
                Job::CloseConnection { key, reason, reply } => {
                    let request = Request::CloseConnection { id: key.id, reason };
                    let answer = match shard.request(key.shard, request).await {
                        Reply::Done(r) => r,
                        other => Err(AmqpError::new(541, format!("unexpected reply {other:?}"))),
                    };
                    let _ = reply.send(answer);
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

async fn view(shard: &Rc<Shard>, user: &str) -> View {
    let snapshots = crate::admin::gather(shard).await;
    let meta = shard.meta.borrow();
    let mut vhosts: Vec<(VhostId, String)> = meta
        .vhosts
        .iter()
        .map(|(id, v)| (*id, v.name.to_string()))
        .collect();
    vhosts.sort_by(|a, b| a.1.cmp(&b.1));
    let login_vhosts = vhosts
        .iter()
        .filter(|(_, n)| meta.auth.vhost_access(user, n))
        .map(|(_, n)| n.clone())
        .collect();
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    for (id, _) in &vhosts {
        let Some(t) = meta.topology(*id) else {
            continue;
        };
        let mut of_vhost: Vec<(VhostId, ExchangeDef, String)> = t
            .exchanges()
            .map(|x| {
                let policy = t.exchange_policy(&x.name).unwrap_or("");
                (*id, x.clone(), policy.to_string())
            })
            .collect();
        of_vhost.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        exchanges.extend(of_vhost);
        bindings.extend(t.bindings().into_iter().map(|b| (*id, b)));
    }
    View {
        snapshots,
        vhosts,
        login_vhosts,
        exchanges,
        bindings,
        // Only the queues that have any: most have none, and a View of
        // 100 k queues need not copy 100 k empty tables.
        queue_arguments: meta
            .queues
            .values()
            .filter(|q| !q.config.arguments.is_empty())
            .map(|q| (q.name.clone(), q.config.arguments.clone()))
            .collect(),
        stats: Default::default(),
    }
}
