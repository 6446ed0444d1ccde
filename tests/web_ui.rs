//! The management web UI (`/` on the management port) in a real headless
//! Chromium, driven over WebDriver (`chromedriver`; a small std-only client
//! in `web_ui/webdriver.rs`), with 1 and 2 shards: a wrong password shows
//! the login error; a user logs in; messages published over AMQP show in
//! the Overview's queued-messages chart (its uPlot data, read from the
//! page) and in the Queues tab; purging the queue from its page brings both
//! to 0; deleting it removes it. Screenshots go to `target/web-ui/`.
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`):
//! missing, the test fails when `CI=true` and is skipped otherwise. It needs
//! Warren's management port, so it skips against an external broker.

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
        ctl_with(&b, &["set_user_tags", &user, "management"]);
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
        let sampled = d.wait_js(WAIT, "const u = W.charts.queued; return !!u && u.data[3].length > 0 && u.data[3][u.data[3].length - 1] === 0;", json!([]));
        assert!(sampled.is_some(), "the queued-messages chart starts at 0");

        // N messages over AMQP: the chart's total moves to N, and the
        // message-rate chart shows publishes.
        let queue = unique_name("webui-q");
        within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &queue, false, None).await;
            let bodies = padded_bodies("webui", N);
            publish_confirmed(&ch, &queue, &bodies, Default::default()).await;
            conn.close(200, "bye".into()).await.expect("close");
        })
        .await;
        let moved = d.wait_js(WAIT, "const u = W.charts.queued; return !!u && u.data[3][u.data[3].length - 1] === arguments[0];", json!([N]));
        assert!(
            moved.is_some(),
            "the chart's total reaches {N}: {}",
            d.js(
                "return JSON.stringify(W.charts.queued && W.charts.queued.data);",
                json!([])
            )
        );
        let rates = d.wait_js(
            WAIT,
            "const u = W.charts.rates; return !!u && u.data[1].some((r) => r > 0);",
            json!([]),
        );
        assert!(
            rates.is_some(),
            "the publish rate rose above 0: {}",
            d.js(
                "return JSON.stringify(W.charts.rates && W.charts.rates.data);",
                json!([])
            )
        );
        assert_eq!(text_of(&d, "[data-total='Queues'] b"), "1");
        d.screenshot(&artifacts().join(format!("overview-{shards}-shards.png")));

        // The Queues tab, filtered by name (the API's `name`): N messages.
        click(&d, "#tabs a[data-tab='queues']");
        let filter = d.find("#queues-filter", WAIT);
        d.type_into(&filter, &queue);
        let cell = format!("span.messages[data-queue='{queue}']");
        wait_text(&d, &cell, &N.to_string());
        wait_text(&d, "#queues-count", " 1 of 1 items");
        d.screenshot(&artifacts().join(format!("queues-{shards}-shards.png")));

        // Its page: purge (confirmed), the count goes to 0.
        click(&d, &format!("a[href='#/queues/%2F/{queue}']"));
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

        // The Overview's chart follows it down.
        click(&d, "#tabs a[data-tab='overview']");
        let emptied = d.wait_js(
            WAIT,
            "const u = W.charts.queued; return !!u && u.data[3][u.data[3].length - 1] === 0;",
            json!([]),
        );
        assert!(
            emptied.is_some(),
            "the chart's total falls to 0: {}",
            d.js(
                "return JSON.stringify(W.charts.queued && W.charts.queued.data);",
                json!([])
            )
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
