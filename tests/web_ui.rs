//! The management web UI (`/` on the management port) in a real headless
//! Chromium, driven over WebDriver (`chromedriver`; a small std-only client
//! in `web_ui/webdriver.rs`), with 1 and 2 shards: a wrong password shows
//! the login error; a user logs in; messages published over AMQP show in
//! the Overview's queued-messages chart (its uPlot data, read from the
//! page) and in the Queues tab; purging the queue from its page brings both
//! to 0; deleting it removes it. Screenshots go to `target/web-ui/`.
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`):
//! missing, the test fails when `CI=true` and is skipped otherwise. A second
//! test, without a browser, checks the files over plain HTTP (types,
//! caching, 304) and that `warren ctl`'s paths beside them still answer.
//! Both need Warren's management port, so they skip against an external
//! broker.

mod common;
#[path = "web_ui/webdriver.rs"]
mod webdriver;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use webdriver::Driver;

/// Messages published for the UI to show.
const N: usize = 7;

/// Seconds to wait for the page: a refresh is every 5 s, the machine is loaded.
const WAIT: u64 = 40;

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("web-ui")
}

/// The browser, or None (after saying why) when it is not installed and
/// this is not CI.
fn browser() -> Option<Driver> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match webdriver::programs() {
        Ok((chromium, chromedriver)) => Some(
            Driver::start(&chromium, &chromedriver)
                .unwrap_or_else(|e| panic!("start Chromium over WebDriver: {e}")),
        ),
        Err(why) if ci => panic!("the web UI test cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("web UI test skipped: {why}");
            None
        }
    }
}

/// The text of the element matching `css`, or "" while there is none.
fn text_of(d: &Driver, css: &str) -> String {
    d.js(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        json!([css]),
    )
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// Waits until the element matching `css` reads `want`.
#[track_caller]
fn wait_text(d: &Driver, css: &str, want: &str) {
    let found = d.wait_js(
        WAIT,
        "const e = document.querySelector(arguments[0]); return !!e && e.textContent === arguments[1];",
        json!([css, want]),
    );
    assert!(
        found.is_some(),
        "{css} should read {want:?}, reads {:?}; page error: {:?}",
        text_of(d, css),
        text_of(d, "#error-text")
    );
}

/// Clicks the element matching `css`, finding it again when a refresh
/// replaced it between the find and the click.
#[track_caller]
fn click(d: &Driver, css: &str) {
    for _ in 0..20 {
        let e = d.find(css, WAIT);
        match d.cmd("POST", &format!("/element/{}/click", e.id()), None) {
            Ok(_) => return,
            Err(why) if why.starts_with("stale element") => continue,
            Err(why) => panic!("click {css}: {why}"),
        }
    }
    panic!("{css} was replaced 20 times in a row");
}

fn log_in(d: &Driver, user: &str, password: &str) {
    let name = d.find("#login-username", WAIT);
    d.clear(&name);
    d.type_into(&name, user);
    let pass = d.find("#login-password", WAIT);
    d.clear(&pass);
    d.type_into(&pass, password);
    click(d, "#login-submit");
}

/// The last point of the Overview's queued-messages total, once it is `n`.
fn chart_total_reaches(d: &Driver, n: usize) -> bool {
    d.wait_js(
        WAIT,
        "const u = W.charts.queued; const s = u ? u.data[3] : []; \
         return s.length > 0 && s[s.length - 1] === arguments[0];",
        json!([n]),
    )
    .is_some()
}

fn chart_data(d: &Driver, chart: &str) -> Value {
    d.js(
        "const u = W.charts[arguments[0]]; return u ? JSON.stringify(u.data) : 'no chart';",
        json!([chart]),
    )
}

/// The text of column `col` (1-based) of each row of a list table.
fn column(d: &Driver, table: &str, col: usize) -> Vec<String> {
    let v = d.js(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')] \
         .map((tr) => tr.children[arguments[1] - 1]?.textContent ?? '');",
        json!([table, col]),
    );
    serde_json::from_value(v).expect("a list of strings")
}

#[track_caller]
fn wait_rows(d: &Driver, table: &str, col: usize, want: &[&str]) {
    let found = d.wait_js(
        WAIT,
        "const got = [...document.querySelectorAll(arguments[0] + ' tbody tr')] \
         .map((tr) => tr.children[arguments[1] - 1]?.textContent ?? ''); \
         return JSON.stringify(got) === JSON.stringify(arguments[2]);",
        json!([table, col, want]),
    );
    assert!(
        found.is_some(),
        "{table} column {col} should be {want:?}, is {:?}",
        column(d, table, col)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_see_queued_messages_purge_and_delete_in_the_browser() {
    if skip_if_external("it needs Warren's management port and web UI") {
        return;
    }
    let Some(d) = browser() else { return };
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let ui = format!("http://{}/", admin_addr(&b));
        let user = unique_name("webui");
        let password = "s3cret-pw";
        ctl_with(&b, &["add_user", &user, password]);
        ctl_with(&b, &["set_user_tags", &user, "administrator"]);
        ctl_with(&b, &["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]);
        d.goto(&ui);
        d.js("sessionStorage.clear();", json!([]));
        d.goto(&ui);

        // A wrong password: the login form says so and stays.
        log_in(&d, &user, "not-the-password");
        wait_text(&d, "#login-error", "Login failed");
        assert_eq!(text_of(&d, "#user"), "", "not logged in");

        // The right one: the Overview, with the first chart sample taken.
        log_in(&d, &user, password);
        wait_text(&d, "#user", &user);
        assert!(
            chart_total_reaches(&d, 0),
            "the chart starts at 0: {}",
            chart_data(&d, "queued")
        );

        // N messages over AMQP (and an empty second queue): the chart's
        // total moves to N, and the message-rate chart shows publishes.
        let queue = unique_name("webui-q");
        let empty = format!("{queue}-empty");
        let (conn, _channel) = within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &queue, false, None).await;
            declare_queue(&ch, &empty, false, None).await;
            let bodies = padded_bodies("webui", N);
            publish_confirmed(&ch, &queue, &bodies, Default::default()).await;
            (conn, ch)
        })
        .await;
        assert!(
            chart_total_reaches(&d, N),
            "the chart's total reaches {N}: {}",
            chart_data(&d, "queued")
        );
        let rates = d.wait_js(
            WAIT,
            "const u = W.charts.rates; return !!u && u.data[1].some((r) => r > 0);",
            json!([]),
        );
        assert!(
            rates.is_some(),
            "the publish rate rose above 0: {}",
            chart_data(&d, "rates")
        );
        wait_text(&d, "[data-total='Queues'] b", "2");
        d.screenshot(&artifacts().join(format!("overview-{shards}-shards.png")));

        // The Queues tab, filtered by name (the API's `name`), sorted by
        // the Total column (the API's `sort`, `sort_reverse`).
        click(&d, "#tabs a[data-tab='queues']");
        let filter = d.find("#queues-filter", WAIT);
        d.type_into(&filter, &queue);
        wait_text(
            &d,
            &format!("span.messages[data-queue='{queue}']"),
            &N.to_string(),
        );
        wait_text(&d, "#queues-count", " 2 of 2 items");
        click(&d, "#queues-table th[data-sort='messages']");
        wait_rows(&d, "#queues-table", 2, &[&empty, &queue]);
        click(&d, "#queues-table th[data-sort='messages']");
        wait_rows(&d, "#queues-table", 2, &[&queue, &empty]);
        d.type_into(&filter, "-empty");
        wait_rows(&d, "#queues-table", 2, &[&empty]);
        d.screenshot(&artifacts().join(format!("queues-{shards}-shards.png")));

        // The other tabs list what the API has: the AMQP connection and
        // its confirm channel, the exchanges, the users.
        click(&d, "#tabs a[data-tab='connections']");
        wait_rows(&d, "#connections-table", 3, &["guest"]);
        click(&d, "#tabs a[data-tab='channels']");
        wait_rows(&d, "#channels-table", 4, &["C"]);
        click(&d, "#tabs a[data-tab='exchanges']");
        let exchanges = d.wait_js(
            WAIT,
            "return [...document.querySelectorAll('#exchanges-table tbody tr td:nth-child(2)')] \
             .map((td) => td.textContent).includes('amq.topic');",
            json!([]),
        );
        assert!(
            exchanges.is_some(),
            "amq.topic listed: {:?}",
            column(&d, "#exchanges-table", 2)
        );
        click(&d, "a[href='#/exchanges/%2F/amq.topic']");
        wait_text(&d, "#exchange-facts td", "topic");
        d.screenshot(&artifacts().join(format!("exchange-{shards}-shards.png")));
        click(&d, "#tabs a[data-tab='admin']");
        let listed = d.wait_js(
            WAIT,
            "return [...document.querySelectorAll('#users-table tbody tr td:first-child')] \
             .map((td) => td.textContent).includes(arguments[0]);",
            json!([user]),
        );
        assert!(
            listed.is_some(),
            "the user is listed: {:?}",
            column(&d, "#users-table", 1)
        );
        d.screenshot(&artifacts().join(format!("admin-{shards}-shards.png")));
        within(conn.close(200, "bye".into())).await.expect("close");

        // The queue's page: purge (confirmed), the count goes to 0.
        d.goto(&format!("{ui}#/queues/%2F/{queue}"));
        wait_text(&d, "#queue-total", &N.to_string());
        click(&d, "#purge-queue");
        let prompt = d.accept_prompt(WAIT);
        assert!(
            prompt.contains(&queue),
            "the prompt names the queue: {prompt}"
        );
        wait_text(&d, "#queue-total", "0");
        assert_eq!(
            api_get(&b, &format!("/api/queues/%2F/{queue}"))["messages"],
            0
        );
        d.screenshot(&artifacts().join(format!("queue-{shards}-shards.png")));

        // The Overview's chart follows it down, and kept the N.
        click(&d, "#tabs a[data-tab='overview']");
        assert!(
            chart_total_reaches(&d, 0),
            "the chart's total falls to 0: {}",
            chart_data(&d, "queued")
        );
        let points: Value = d.js("return W.charts.queued.data[3];", json!([]));
        assert!(
            points.as_array().is_some_and(|p| p.contains(&json!(N))),
            "the chart kept the {N}: {points}"
        );

        // Delete the queue from its page.
        d.goto(&format!("{ui}#/queues/%2F/{queue}"));
        wait_text(&d, "#queue-total", "0");
        click(&d, "#delete-queue");
        d.accept_prompt(WAIT);
        let gone = d.wait_js(WAIT, "return location.hash === '#/queues';", json!([]));
        assert!(gone.is_some(), "back on the queue list after the delete");
        let r = api(
            &b,
            "GET",
            &format!("/api/queues/%2F/{queue}"),
            Some("guest:guest"),
        );
        assert_eq!(r.status, 404, "the queue is gone: {}", r.body);
        d.screenshot(&artifacts().join(format!("after-delete-{shards}-shards.png")));

        assert_eq!(
            d.js("return W.jsErrors;", json!([])),
            json!([]),
            "no script errors"
        );
        assert_eq!(text_of(&d, "#error-text"), "", "no API error shown");
        ctl_with(&b, &["delete_user", &user]);
    }
}

/// One plain HTTP/1.0 request to the management port: (status, lower-cased
/// head, body).
fn http(b: &Broker, request: &str) -> (u16, String, String) {
    let response = admin_request(&admin_addr(b), request);
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
        .trim()
}

#[test]
fn ui_files_are_served_with_types_and_caching_beside_ctl() {
    if skip_if_external("it needs Warren's management port") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (status, head, body) = http(&b, "GET / HTTP/1.0\r\n\r\n");
        assert_eq!(status, 200, "{head}");
        assert_eq!(header(&head, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&head, "cache-control"), "no-cache");
        assert!(body.contains("/js/app.js") && body.contains("login-form"));
        let etag = header(&head, "etag").to_string();
        let (status, head, body) = http(
            &b,
            &format!("GET /index.html HTTP/1.0\r\nIf-None-Match: {etag}\r\n\r\n"),
        );
        assert_eq!((status, body.as_str()), (304, ""), "{head}");
        for (path, kind) in [
            ("/js/app.js", "text/javascript; charset=utf-8"),
            ("/js/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
            ("/css/main.css", "text/css; charset=utf-8"),
        ] {
            let (status, head, body) = http(&b, &format!("GET {path} HTTP/1.0\r\n\r\n"));
            assert_eq!(status, 200, "{path}: {head}");
            assert_eq!(header(&head, "content-type"), kind, "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let (status, _, _) = http(&b, "GET /js/nothing.js HTTP/1.0\r\n\r\n");
        assert_eq!(status, 404);
        // warren ctl's requests on the same port are unchanged.
        // (A listing answers one JSON array per row.)
        let (status, head, body) = http(&b, "GET /queues?columns=name HTTP/1.0\r\n\r\n");
        assert_eq!(status, 200, "{head}");
        assert!(
            body.lines()
                .all(|l| serde_json::from_str::<Vec<serde_json::Value>>(l).is_ok()),
            "{body}"
        );
        assert!(ctl(&b, "list_exchanges").contains("amq.topic"));
    }
}
