//! Carrying out a checked import plan on shard 0: the leader's own
//! requests, phase by phase, many in flight at once.

use super::Plan;
use crate::broker::auth::AuthRequest;
use crate::broker::queue::QueueConfig;
use crate::broker::queue_args;
use crate::broker::vhost::QueueName;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ConnKey, Reply, Request};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use std::collections::VecDeque;
use std::rc::Rc;

/// Requests in flight at once while applying.
const WINDOW: usize = 256;

/// Carries out a checked plan on shard 0 through the leader's requests;
/// answers the number of changes, or what failed (a change the leader
/// refused although the plan was checked: something changed meanwhile,
/// or the definitions could not be stored).
pub async fn apply(shard: &Rc<Shard>, plan: Plan) -> Result<usize, String> {
    for note in &plan.notes {
        tracing::info!("definitions import: {note}");
    }
    let total = plan.changes();
    let short = |s: &str| ShortStr::try_from_string(s.to_string()).unwrap_or_default();
    let phase = plan
        .vhosts
        .iter()
        .map(|v| (format!("vhost {v}"), Request::AddVhost { name: short(v) }));
    run(shard, phase.collect()).await?;
    let users = plan.users.into_iter().map(|u| {
        (
            format!("user {}", u.name),
            Request::Auth(AuthRequest::PutUser(u)),
        )
    });
    run(shard, users.collect()).await?;
    let perms = plan.permissions.into_iter().map(|p| {
        (
            format!("permissions of {} in {}", p.user, p.vhost),
            Request::Auth(AuthRequest::SetPermissions(p)),
        )
    });
    let topics = plan.topic_permissions.into_iter().map(|t| {
        (
            format!("topic permissions of {} in {}", t.user, t.vhost),
            Request::Auth(AuthRequest::SetTopicPermissions(t)),
        )
    });
    let limits = plan.limits.into_iter().map(|(v, limits)| {
        (
            format!("limits of {v}"),
            Request::SetVhostLimits {
                name: short(&v),
                limits,
            },
        )
    });
    run(shard, perms.chain(topics).chain(limits).collect()).await?;
    let id = |v: &str| {
        shard
            .meta
            .borrow()
            .vhost_id(v)
            .ok_or_else(|| format!("virtual host \"{v}\" was deleted during the import"))
    };
    let mut requests = Vec::new();
    for (v, x) in plan.exchanges {
        requests.push((
            format!("exchange {} in {v}", x.name),
            Request::DeclareExchange {
                vhost: id(&v)?,
                kind: ShortStr::from_static(x.kind.as_str()),
                name: x.name,
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments,
            },
        ));
    }
    run(shard, requests).await?;
    let mut requests = Vec::new();
    for (v, def) in plan.policies {
        requests.push((
            format!("policy {} in {v}", def.name),
            Request::SetPolicy {
                vhost: id(&v)?,
                def,
            },
        ));
    }
    run(shard, requests).await?;
    // Queues and bindings are the leader's, as if declared by no connection.
    let conn = ConnKey {
        shard: shard.id,
        id: 0,
    };
    let mut requests = Vec::new();
    for q in plan.queues {
        let owner = queue_args::pinned_shard(&q.name, &q.arguments, shard.count)
            .ok()
            .flatten()
            .unwrap_or_else(|| shard.owner_by_hash(&q.vhost, &q.name));
        requests.push((
            format!("queue {} in {}", q.name, q.vhost),
            Request::DeclareQueue {
                name: QueueName::new(id(&q.vhost)?, short(&q.name)),
                config: QueueConfig {
                    durable: q.durable,
                    exclusive: false,
                    auto_delete: q.auto_delete,
                    arguments: q.arguments,
                },
                owner,
                conn,
            },
        ));
    }
    run(shard, requests).await?;
    let mut requests = Vec::new();
    for (v, b) in plan.bindings {
        requests.push((
            format!("binding of {} in {v}", b.source),
            Request::Bind {
                vhost: id(&v)?,
                source: b.source,
                destination: b.destination,
                routing_key: b.routing_key,
                arguments: b.arguments,
                conn,
            },
        ));
    }
    run(shard, requests).await?;
    Ok(total)
}

/// Sends every request to the leader, at most `WINDOW` at once; the first
/// refusal, once every request sent has been answered.
async fn run(shard: &Rc<Shard>, requests: Vec<(String, Request)>) -> Result<(), String> {
    let mut pending = VecDeque::new();
    let mut first_error = None;
    let mut check = |label: String, reply: Reply| {
        let failed = match reply {
            Reply::Done(Err(e)) | Reply::Count(Err(e)) => Some(super::amqp_text(e)),
            Reply::Done(Ok(())) | Reply::Count(Ok(_)) => None,
            other => Some(format!("unexpected reply {other:?}")),
        };
        if let Some(why) = failed {
            first_error.get_or_insert(format!("{label}: {why}"));
        }
    };
    for (label, request) in requests {
        if pending.len() >= WINDOW {
            let (label, reply) = pending.pop_front().expect("full");
            check(label, reply.await);
        }
        pending.push_back((label, shard.request(LEADER, request)));
    }
    while let Some((label, reply)) = pending.pop_front() {
        check(label, reply.await);
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}
