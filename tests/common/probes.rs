//! Channel-close probes: publishes the broker refuses, checked with the raw client.

use super::*;

/// A basic.publish that the broker answers by closing the channel, sent on
/// a raw connection so that the exact close the broker sends can be checked
/// (lapin reports only "channel closing" when the close beats its probe).
pub struct RefusedPublish<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// The `reply-to` property (the only property sent), if any.
    pub reply_to: Option<&'a str>,
    pub body: &'a [u8],
}

/// Publishes `publish` on channel 1 of a fresh raw connection to `b`, then
/// sends basic.qos on the same channel as a synchronous probe. The broker
/// must answer with a channel.close on channel 1 carrying reply `code` and
/// exactly `text` (the probe, sent after the publish, is discarded and never
/// answered; a connection.close or any other method fails the assertion).
/// Then only the channel must be closed: after channel.close-ok, channel 2
/// opens and answers basic.qos, and the connection closes cleanly.
///
/// Runs the blocking raw client on a blocking thread; its reads time out
/// after 10 s, so a broker that never answers fails instead of hanging.
pub async fn assert_publish_closes_channel(
    b: &Broker,
    publish: RefusedPublish<'_>,
    code: u16,
    text: &str,
) {
    let addr = b.addr();
    let exchange = publish.exchange.to_string();
    let routing_key = publish.routing_key.to_string();
    let reply_to = publish.reply_to.map(str::to_string);
    let body = publish.body.to_vec();
    let expected = (code, text.to_string());
    let probe = tokio::task::spawn_blocking(move || {
        let (mut c, tune) = raw::RawConn::open(&addr);
        c.channel_open(1);
        raw_publish(
            &mut c,
            1,
            &exchange,
            &routing_key,
            reply_to.as_deref(),
            &body,
            tune.frame_max,
        );
        let qos = raw::Args::new().long(0).short(1).bits(&[false]).done();
        c.send_method(1, 60, 10, &qos);
        let m = c.expect_method();
        assert!(
            (m.channel, m.class, m.method) != (0, 10, 50),
            "expected channel.close {expected:?} on channel 1, got connection.close {:?}",
            m.close_reason()
        );
        assert_eq!(
            (m.channel, m.class, m.method),
            (1, 20, 40),
            "expected channel.close {expected:?} on channel 1 in answer to the \
             publish and the probe, got {m:?}"
        );
        assert_eq!(
            m.close_reason(),
            expected,
            "channel.close reply code and text"
        );
        // channel.close-ok; the connection and other channels are unaffected.
        c.send_method(1, 20, 41, &[]);
        c.channel_open(2);
        c.basic_qos(2, 1);
        let close = raw::Args::new()
            .short(200)
            .shortstr("OK")
            .short(0)
            .short(0)
            .done();
        c.send_method(0, 10, 50, &close);
        let ok = c.expect_method();
        assert_eq!(
            (ok.channel, ok.class, ok.method),
            (0, 10, 51),
            "connection.close-ok: {ok:?}"
        );
    });
    if let Err(e) = probe.await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// basic.publish of `body` in body frames of at most `frame_max` bytes,
/// with no properties but `reply-to` when given.
pub fn raw_publish(
    c: &mut raw::RawConn,
    channel: u16,
    exchange: &str,
    routing_key: &str,
    reply_to: Option<&str>,
    body: &[u8],
    frame_max: u32,
) {
    let Some(reply_to) = reply_to else {
        c.basic_publish(channel, exchange, routing_key, body, frame_max);
        return;
    };
    let args = raw::Args::new()
        .short(0)
        .shortstr(exchange)
        .shortstr(routing_key)
        .bits(&[false, false])
        .done();
    c.send_method(channel, 60, 40, &args);
    // Property flags: reply-to is bit 9 (content-type is bit 15).
    let header = raw::Args::new()
        .short(60)
        .short(0)
        .longlong(body.len() as u64)
        .short(1 << 9)
        .shortstr(reply_to)
        .done();
    c.send_frame(raw::FRAME_HEADER, channel, &header);
    let chunk = (frame_max as usize).saturating_sub(8).max(1);
    for part in body.chunks(chunk) {
        c.send_frame(raw::FRAME_BODY, channel, part);
    }
}
