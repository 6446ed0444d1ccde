//! `/api/queues[/{vhost}]?page=…`: a paged queue listing that copies out
//! only what its page needs. Each shard counts the queues the user's
//! listing shows and those the `name` filter keeps, and answers the first
//! `page × page_size` of them in the listing's order (`shard::listing`,
//! run through `QueueOrder`); the management thread merges those, cuts
//! the page and renders it. The order and counts are RabbitMQ's, as the
//! full path has them (`api::queue_list`): by vhost, then name; a `sort`
//! field first; `sort_reverse` reverses the whole. A query this path does
//! not serve (no `page`, a page past `MAX_PICK`, a sort on a field only a
//! rendered queue has, a bad parameter whose error the full path words)
//! goes the full way.

use super::api::{self, QUEUE_SCALARS};
use super::auth::User;
use super::listing::{self, NameFilter, Selection};
use super::stats::QueueSample;
use super::{access, bad_query, json_response, writes, Context};
use crate::shard::envelope::{PickRequest, Picked, QueuePick, SortKey};
use crate::shard::envelope::{Reply, Request};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the shards may take to answer.
const WITHIN: Duration = Duration::from_secs(10);

/// The deepest page end (`page × page_size`) this path serves: past it
/// each shard would copy out most of its queues anyway, and the full path
/// does that with less (at 100 k queues, page 500 of 100 took 0.36–0.76 s
/// here against the full path's 0.16–0.24 s).
const MAX_PICK: usize = 10_000;

/// A listing's choice and order of queues, run by every shard.
#[derive(Debug)]
struct QueueOrder {
    /// The vhost of `/api/queues/{vhost}`.
    vhost: Option<String>,
    /// The vhosts the user may see (None: every one, an administrator).
    visible: Option<Vec<String>>,
    filter: Option<NameFilter>,
    /// A field of `QUEUE_SCALARS`.
    sort: Option<String>,
    reverse: bool,
    node: String,
}

impl QueuePick for QueueOrder {
    fn shows(&self, vhost: &str) -> bool {
        match (&self.vhost, &self.visible) {
            (Some(wanted), _) => wanted == vhost,
            (None, Some(visible)) => visible.iter().any(|v| v == vhost),
            (None, None) => true,
        }
    }

    fn keeps(&self, name: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(name))
    }

    fn key(&self, vhost: &str, q: &crate::shard::envelope::QueueSnapshot) -> Option<Value> {
        let field = self.sort.as_deref()?;
        api::queue_scalar(q, vhost, &self.node, field)
    }

    fn order(&self, a: SortKey<'_>, b: SortKey<'_>) -> Ordering {
        order(a, b, self.reverse)
    }

    fn sorts(&self) -> bool {
        self.sort.is_some()
    }
}

/// The listing's order: the sort key, then vhost and name; all of it
/// reversed by `sort_reverse` (as the full path's stable sort, reversed).
fn order(a: SortKey<'_>, b: SortKey<'_>, reverse: bool) -> Ordering {
    let o = listing::compare(a.key, b.key).then_with(|| (a.vhost, a.name).cmp(&(b.vhost, b.name)));
    if reverse {
        o.reverse()
    } else {
        o
    }
}

/// A query this path serves, parsed.
pub struct Plan {
    page: usize,
    page_size: usize,
    filter: Option<NameFilter>,
    /// A field of `QUEUE_SCALARS`.
    sort: Option<String>,
    reverse: bool,
}

impl Plan {
    /// `query` when this path serves it: paged, a sort (if any) on a
    /// field of the snapshot, and no parameter the full path refuses.
    pub fn of(query: &[(String, String)]) -> Option<Plan> {
        let sort = listing::param(query, "sort").filter(|s| !s.is_empty());
        if sort.is_some_and(|s| !QUEUE_SCALARS.contains(&s)) {
            return None;
        }
        let (page, page_size) = listing::page_params(query).ok()??;
        if page.saturating_mul(page_size) > MAX_PICK {
            return None;
        }
        Some(Plan {
            page,
            page_size,
            filter: NameFilter::of(query).ok()?,
            sort: sort.map(str::to_string),
            reverse: listing::param(query, "sort_reverse") == Some("true"),
        })
    }
}

/// What shard 0 answers: the vhosts, the user's, and each shard's pick.
struct Answer {
    vhosts: Vec<String>,
    login_vhosts: Vec<String>,
    picked: Vec<Picked>,
}

/// Serves `plan` as `user` (tags already checked for reading queues;
/// `admin`: the user sees every vhost).
pub async fn serve(
    ctx: &Context,
    user: &User,
    admin: bool,
    vhost: Option<&str>,
    plan: Plan,
    query: &[(String, String)],
) -> Response<Full<Bytes>> {
    let stats = ctx.rates.lock().is_ok_and(|r| r.queue_sample_due());
    let name = user.name.clone();
    let (page, page_size) = (plan.page, plan.page_size);
    let mut order = QueueOrder {
        vhost: vhost.map(str::to_string),
        visible: None,
        filter: plan.filter,
        sort: plan.sort,
        reverse: plan.reverse,
        node: ctx.node.name.clone(),
    };
    let limit = page.saturating_mul(page_size);
    let answer = access::on_shard0(ctx, WITHIN, move |shard| async move {
        let (vhosts, login_vhosts) = {
            let meta = shard.meta.borrow();
            let mut vhosts: Vec<String> =
                meta.vhosts.values().map(|v| v.name.to_string()).collect();
            vhosts.sort();
            let login: Vec<String> = vhosts
                .iter()
                .filter(|v| meta.auth.vhost_access(&name, v))
                .cloned()
                .collect();
            (vhosts, login)
        };
        if !admin {
            order.visible = Some(login_vhosts.clone());
        }
        let req = PickRequest {
            pick: Arc::new(order),
            limit,
            stats,
        };
        // Sent to every shard at once, then awaited.
        let replies: Vec<_> = (0..shard.count)
            .map(|id| shard.request(id, Request::PickQueues(req.clone())))
            .collect();
        let mut picked = Vec::with_capacity(replies.len());
        for r in replies {
            if let Reply::Picked(p) = r.await {
                picked.push(*p);
            }
        }
        Answer {
            vhosts,
            login_vhosts,
            picked,
        }
    })
    .await;
    let Some(answer) = answer else {
        return writes::busy();
    };
    if let Some(v) = vhost {
        if !answer.vhosts.iter().any(|x| x == v) {
            return json_response(StatusCode::NOT_FOUND, &api::not_found());
        }
        if !admin && !answer.login_vhosts.iter().any(|l| l == v) {
            return writes::not_authorised("User not authorised to access virtual host");
        }
    }
    page_of(
        ctx,
        answer.picked,
        (page, page_size, plan.reverse),
        stats,
        query,
    )
}

/// Merges the shards' picks and renders page `page` (of `page_size`,
/// `reverse`d or not); `stats`: the picks carry a queue sample.
fn page_of(
    ctx: &Context,
    picked: Vec<Picked>,
    (page, page_size, reverse): (usize, usize, bool),
    stats: bool,
    query: &[(String, String)],
) -> Response<Full<Bytes>> {
    let total = picked.iter().map(|p| p.total).sum();
    let filtered = picked.iter().map(|p| p.filtered).sum();
    let page_count = match listing::page_count(page, page_size, filtered) {
        Ok(n) => n,
        Err(e) => return bad_query(e),
    };
    let mut sample = Vec::new();
    let mut queues = Vec::new();
    for p in picked {
        sample.extend(p.stats);
        queues.extend(p.queues);
    }
    let sample = stats.then(|| QueueSample::of(sample, Instant::now()));
    let stats = match ctx.rates.lock() {
        Ok(mut rates) => rates.observe_queues(sample),
        Err(_) => Default::default(),
    };
    queues.sort_by(|a, b| order(a.sort_key(), b.sort_key(), reverse));
    let items = queues
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|p| {
            let args = (!p.arguments.is_empty()).then_some(&p.arguments);
            api::queue_item(&p.queue, &p.vhost, args, &ctx.node, &stats)
        })
        .collect();
    let page = Selection::paged(Vec::new(), page, page_size, page_count, filtered, total);
    json_response(StatusCode::OK, &page.finish(items, query))
}
