//! `/api/queues` paging at a small scale (the timings at 100 k queues are
//! in BENCHMARKS.md, not here), with 1 and 2 shards: the page object's
//! counts, RabbitMQ's default order (vhost, then name) across shards, a
//! sort field with ties kept in that order, `sort_reverse`, the `name`
//! filter with paging, `columns`, a sort on a rendered-only field
//! (`message_stats.publish`) and the last partial page. RabbitMQ's
//! management plugin is not enabled on the reference broker, so these
//! skip against an external one.

mod common;

use common::*;
use serde_json::{json, Value};

const NEEDS_API: &str = "it needs Warren's management port";

/// Queues in `/` (and as many again in a second vhost).
const QUEUES: usize = 130;

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|q| q["name"].as_str().expect("a name").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_pages_sort_filter_and_count_like_rabbitmq() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let vhost = unique_name("page-vh");
        ctl_with(&b, &["add_vhost", &vhost]);
        ctl_with(
            &b,
            &["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"],
        );
        within_secs(120, async {
            let tag = unique_name("page");
            let name = |i: usize| format!("{tag}-{i:03}");
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            // Declared in reverse, so no order comes from declaring.
            for i in (0..QUEUES).rev() {
                declare_queue(&ch, &name(i), false, None).await;
            }
            // Queue i holds i % 3 messages.
            for i in 0..QUEUES {
                let bodies = padded_bodies("m", i % 3);
                publish_confirmed(&ch, &name(i), &bodies, Default::default()).await;
            }
            let uri = format!("amqp://guest:guest@{}:{}/{vhost}", b.host(), b.port());
            let other = lapin::Connection::connect(&uri, Default::default())
                .await
                .expect("connect to the second vhost");
            let och = other.create_channel().await.expect("channel");
            for i in 0..QUEUES {
                declare_queue(&och, &name(i), false, None).await;
            }
            let total = (0..QUEUES).map(|i| i % 3).sum::<usize>();
            assert!(
                eventually(30, || api_get(&b, "/api/overview")["queue_totals"]
                    ["messages"]
                    == json!(total))
                .await
            );

            // Default order: vhost, then name, across every shard.
            let first = api_get(&b, "/api/queues?page=1&page_size=100");
            assert_eq!(
                (
                    &first["total_count"],
                    &first["filtered_count"],
                    &first["item_count"],
                    &first["page_count"],
                    &first["page"],
                    &first["page_size"]
                ),
                (
                    &json!(2 * QUEUES),
                    &json!(2 * QUEUES),
                    &json!(100),
                    &json!(3),
                    &json!(1),
                    &json!(100)
                )
            );
            let want: Vec<String> = (0..100).map(name).collect();
            assert_eq!(names(&first), want);
            assert!(first["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|q| q["vhost"] == "/"));
            let second = api_get(&b, "/api/queues?page=2&page_size=100");
            let rest: Vec<String> = (100..QUEUES)
                .chain(0..100 - (QUEUES - 100))
                .map(name)
                .collect();
            assert_eq!(names(&second), rest);
            assert_eq!(second["items"][QUEUES - 100]["vhost"], json!(vhost));
            let last = api_get(&b, "/api/queues?page=3&page_size=100");
            assert_eq!(last["item_count"], json!(2 * QUEUES - 200));

            // A sort field first, ties in name order; reversed whole.
            let by_messages = api_get(
                &b,
                "/api/queues/%2F?page=1&page_size=40&sort=messages&columns=name,messages",
            );
            let zeros: Vec<String> = (0..QUEUES).filter(|i| i % 3 == 0).map(name).collect();
            assert_eq!(names(&by_messages), zeros[..40]);
            assert!(by_messages["items"][0].as_object().unwrap().len() == 2);
            let reversed = api_get(
                &b,
                "/api/queues/%2F?page=1&page_size=10&sort=messages&sort_reverse=true",
            );
            let twos: Vec<String> = (0..QUEUES).filter(|i| i % 3 == 2).map(name).collect();
            let want: Vec<String> = twos.iter().rev().take(10).cloned().collect();
            assert_eq!(names(&reversed), want);
            assert_eq!(reversed["items"][0]["messages"], 2);
            // Each queue's counts come with its page.
            assert_eq!(reversed["items"][0]["message_stats"]["publish"], 2);

            // The name filter with paging counts what it kept.
            let filtered = api_get(
                &b,
                &format!("/api/queues?page=2&page_size=5&name={tag}-01&sort=name"),
            );
            assert_eq!(filtered["filtered_count"], json!(20), "{filtered}");
            assert_eq!(filtered["total_count"], json!(2 * QUEUES));
            assert_eq!(filtered["page_count"], json!(4));
            // Two queues of each name: one per vhost, `/` first.
            let want: Vec<String> = [12, 13, 13, 14, 14].into_iter().map(name).collect();
            assert_eq!(names(&filtered), want);

            // A field only the rendered queue has: message_stats.
            let by_publish = api_get(
                &b,
                "/api/queues/%2F?page=1&page_size=3&sort=message_stats.publish&sort_reverse=true",
            );
            assert_eq!(by_publish["items"][0]["message_stats"]["publish"], 2);
            assert_eq!(
                names(&by_publish),
                twos.iter().rev().take(3).cloned().collect::<Vec<_>>()
            );

            // Unpaged: every queue of the vhost, in order.
            let all = api_get(&b, "/api/queues/%2F?columns=name");
            let all: Vec<&str> = all
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["name"].as_str().unwrap())
                .collect();
            let want: Vec<String> = (0..QUEUES).map(name).collect();
            assert_eq!(all, want);

            // A regex filter, anchored.
            let regex = api_get(
                &b,
                &format!("/api/queues/%2F?page=1&page_size=3&name=%5E{tag}-00%5B0-4%5D%24&use_regex=true"),
            );
            assert_eq!(
                (&regex["filtered_count"], &regex["page_count"]),
                (&json!(5), &json!(2))
            );
            assert_eq!(names(&regex), (0..3).map(name).collect::<Vec<_>>());

            // A user who is no administrator pages through their vhosts only.
            let user = unique_name("pager");
            ctl_with(&b, &["add_user", &user, "pw"]);
            ctl_with(&b, &["set_user_tags", &user, "management"]);
            ctl_with(&b, &["set_permissions", "-p", &vhost, &user, ".*", ".*", ".*"]);
            let login = format!("{user}:pw");
            let r = api(&b, "GET", "/api/queues?page=1&page_size=500", Some(&login));
            assert_eq!(r.status, 200);
            assert_eq!(
                (&r.body["total_count"], &r.body["item_count"]),
                (&json!(QUEUES), &json!(QUEUES))
            );
            assert!(r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|q| q["vhost"] == json!(vhost)));
            let r = api(&b, "GET", "/api/queues/%2F?page=1", Some(&login));
            assert_eq!(r.status, 401, "{:?}", r.body);
            ctl_with(&b, &["delete_user", &user]);

            // Small pages anywhere in the list are the unpaged list's slices
            // (each shard then keeps and cuts its candidates many times).
            let ids = |v: &Value| -> Vec<(String, String)> {
                v.as_array()
                    .unwrap_or_else(|| v["items"].as_array().expect("items"))
                    .iter()
                    .map(|q| (q["vhost"].to_string(), q["name"].to_string()))
                    .collect()
            };
            for sort in ["", "&sort=messages&sort_reverse=true", "&sort=name"] {
                let whole = ids(&api_get(&b, &format!("/api/queues?columns=vhost,name{sort}")));
                assert_eq!(whole.len(), 2 * QUEUES);
                for (page, size) in [(1, 7), (7, 20), (13, 20), (2, 150)] {
                    let got = ids(&api_get(
                        &b,
                        &format!("/api/queues?page={page}&page_size={size}{sort}"),
                    ));
                    let from = (page - 1) * size;
                    let want = &whole[from..(from + size).min(whole.len())];
                    assert_eq!(got, want, "page {page} of {size}{sort}");
                }
            }

            // Refusals, as RabbitMQ's.
            let r = api(
                &b,
                "GET",
                "/api/queues?page=4&page_size=100",
                Some("guest:guest"),
            );
            assert_eq!(
                (r.status, &r.body["error"]),
                (400, &json!("page_out_of_range"))
            );
            let r = api(&b, "GET", "/api/queues?page=0", Some("guest:guest"));
            assert_eq!(
                (r.status, &r.body["error"]),
                (400, &json!("invalid_pagination_parameters"))
            );
            let r = api(&b, "GET", "/api/queues/nope?page=1", Some("guest:guest"));
            assert_eq!(r.status, 404);
            let _ = conn.close(200, "".into()).await;
            let _ = other.close(200, "".into()).await;
        })
        .await;
        ctl_with(&b, &["delete_vhost", &vhost]);
    }
}
