//! The table of bad inputs (`docs/bad-input.md`), part 2: closing
//! channels, content out of order, bodies of the wrong size, malformed
//! field tables and strings, unknown class / method ids, oversized
//! messages. Same rules as `hostile_input.rs`: RabbitMQ 3.10's measured
//! reply (or a stated deliberate difference), then a well-behaved lapin
//! client publishes and consumes on the same broker. --shards 1 and 2.

mod common;

use common::hostile::*;
use common::raw::{Args, RawConn};
use common::{skip_if_external, Broker, SHARD_COUNTS};

fn chan_close(code: u16, text: Text, class: u16, method: u16) -> Step {
    Step::Expect(Reply::ChanClose {
        channel: 1,
        code,
        text,
        class,
        method,
    })
}

/// RabbitMQ's default max_message_size (Warren's `--max-message-size`).
const MAX_BODY: u64 = 128 << 20;

fn row(name: &'static str, steps: Vec<Step>) -> Row {
    Row {
        name,
        stage: Stage::Channel,
        steps,
        warren_differs: None,
    }
}

fn channel_close_ok() -> Vec<u8> {
    method(1, 20, 41, Args::new())
}

fn reopen() -> Vec<Step> {
    vec![
        send(method(1, 20, 10, Args::new().shortstr(""))),
        expect_method(1, 20, 11),
    ]
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `bytes`, then a 505 UNEXPECTED_FRAME connection close.
fn unexpected(name: &'static str, bytes: Vec<u8>, text: &str, class: u16, method: u16) -> Row {
    row(
        name,
        vec![send(bytes), conn_close(505, exact(text), class, method)],
    )
}

fn closing_rows() -> Vec<Row> {
    let passive = method(
        1,
        50,
        10,
        Args::new()
            .short(0)
            .shortstr("hostile-no-such-queue")
            .bits(&[true, false, false, false, false])
            .empty_table(),
    );
    let mut on_closing = vec![
        send(passive),
        chan_close(
            404,
            exact("NOT_FOUND - no queue 'hostile-no-such-queue' in vhost '/'"),
            50,
            10,
        ),
        // Still on the closing channel: dropped until close-ok.
        send(qos(1)),
        send(cat(&[publish(1, "x"), header(1, 60, 1), body(1, b"x")])),
        send(channel_close_ok()),
    ];
    on_closing.extend(reopen());
    let close = method(
        1,
        20,
        40,
        Args::new().short(200).shortstr("bye").short(0).short(0),
    );
    // One write: what is pipelined behind the close (a later frame is
    // 504, `close_ok_for_a_channel_not_open_is_504` in protocol_slips.rs).
    let mut after_own_close = vec![
        send(cat(&[
            close,
            publish(1, "x"),
            header(1, 60, 1),
            body(1, b"x"),
            qos(1),
        ])),
        expect_method(1, 20, 41),
    ];
    after_own_close.extend(reopen());
    vec![
        row("methods_on_a_channel_the_server_is_closing", on_closing),
        row(
            "publish_right_after_the_clients_channel_close",
            after_own_close,
        ),
        row(
            "ack_of_an_unknown_delivery_tag",
            vec![
                send(method(1, 60, 80, Args::new().longlong(99).bits(&[false]))),
                chan_close(
                    406,
                    exact("PRECONDITION_FAILED - unknown delivery tag 99"),
                    60,
                    80,
                ),
                send(channel_close_ok()),
            ],
        ),
    ]
}

fn content_rows() -> Vec<Row> {
    let expected_method = "UNEXPECTED_FRAME - expected method frame, got non method frame instead";
    let expected_header = "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead";
    let expected_body =
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead";
    let mut over_max = cat(&[publish(1, "x"), header(1, 60, MAX_BODY + 1)]);
    let frame = body(1, &vec![b'x'; 131_064]);
    for _ in 0..MAX_BODY / 131_064 {
        over_max.extend_from_slice(&frame);
    }
    over_max.extend(body(1, &vec![b'x'; (MAX_BODY % 131_064 + 1) as usize]));
    vec![
        unexpected("header_without_method", header(1, 60, 1), expected_method, 0, 0),
        unexpected("body_without_method", body(1, b"x"), expected_method, 0, 0),
        unexpected(
            "body_without_header",
            cat(&[publish(1, "x"), body(1, b"x")]),
            expected_header,
            60,
            40,
        ),
        unexpected(
            "method_in_the_middle_of_content",
            cat(&[publish(1, "x"), header(1, 60, 10), body(1, b"abc"), qos(1)]),
            expected_body,
            60,
            40,
        ),
        unexpected(
            "method_instead_of_header",
            cat(&[publish(1, "x"), qos(1)]),
            expected_header,
            60,
            40,
        ),
        unexpected(
            "second_header",
            cat(&[publish(1, "x"), header(1, 60, 5), header(1, 60, 5)]),
            expected_body,
            60,
            40,
        ),
        differs(
            row(
                "body_longer_than_declared",
                vec![
                    send(cat(&[publish(1, "x"), header(1, 60, 2), body(1, b"three")])),
                    conn_close(505, exact("UNEXPECTED_FRAME - content body longer than the 2 bytes its header announced"), 60, 40),
                ],
            ),
            "RabbitMQ waits for more body and closes with 505 'expected content body' at the next frame that is not one; Warren refuses the overrun at once",
        ),
        unexpected(
            "body_after_a_zero_size_header",
            cat(&[publish(1, "x"), header(1, 60, 0), body(1, b"x")]),
            expected_method,
            0,
            0,
        ),
        row(
            "header_of_another_class",
            vec![
                send(cat(&[publish(1, "x"), header(1, 50, 1)])),
                conn_close(505, exact("UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"), 60, 40),
            ],
        ),
        row(
            "message_over_max_size",
            vec![
                // RabbitMQ answers once the whole body is in, Warren at
                // the header (dropping the rest): the same reply.
                send(over_max),
                chan_close(
                    406,
                    exact("PRECONDITION_FAILED - message size 134217729 is larger than configured max size 134217728"),
                    60,
                    40,
                ),
                send(channel_close_ok()),
            ],
        ),
    ]
}

/// A table entry `key` → tag + raw value.
fn entry(key: &str, tag: u8, value: &[u8]) -> Vec<u8> {
    let mut e = vec![key.len() as u8];
    e.extend_from_slice(key.as_bytes());
    e.push(tag);
    e.extend_from_slice(value);
    e
}

fn long_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut v = (bytes.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

/// A table nested `depth` levels below the arguments table.
fn nested(depth: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 0..depth {
        inner = entry("n", b'F', &long_prefixed(&inner));
    }
    inner
}

fn declare_refused(name: &'static str, entries: &[u8], text: Text) -> Row {
    row(
        name,
        vec![
            send(declare_with_table(1, name, entries)),
            conn_close(501, text, 50, 10),
        ],
    )
}

fn declare_accepted(name: &'static str, entries: &[u8]) -> Row {
    row(
        name,
        vec![
            send(declare_with_table(1, name, entries)),
            expect_method(1, 50, 11),
        ],
    )
}

fn table_rows() -> Vec<Row> {
    let overrun_longstr = {
        let mut e = entry("s", b'S', &1_000_000u32.to_be_bytes());
        e.extend_from_slice(b"abc");
        e
    };
    // The table's own length says 1000 octets; 3 follow.
    let mut args = Args::new()
        .short(0)
        .shortstr("t")
        .bits(&[false, false, true, false, false])
        .long(1000)
        .done();
    args.extend_from_slice(b"abc");
    let overrun_table = RawConn::method_bytes(1, 50, 10, &args);
    let many_entries: Vec<u8> = (0..30_000).flat_map(|_| entry("", b'V', b"")).collect();
    let many_values = entry("a", b'A', &long_prefixed(&vec![b'V'; 100_000]));
    vec![
        differs(
            declare_refused("table_unknown_field_tag", &entry("k", b'Z', b"x"), exact("FRAME_ERROR - cannot decode 'queue.declare': unknown field value type 'Z'")),
            "RabbitMQ's reader crashes and drops the socket without a close code; Warren closes with 501",
        ),
        differs(
            declare_refused("table_longstr_overruns", &overrun_longstr, prefix("FRAME_ERROR - cannot decode")),
            "RabbitMQ's reader crashes and drops the socket without a close code; Warren closes with 501",
        ),
        row("table_length_overruns_the_frame", vec![send(overrun_table), conn_close(501, prefix("FRAME_ERROR - cannot decode"), 50, 10)]),
        differs(
            row("table_key_not_utf8", vec![send(declare_with_table(1, "table_key_not_utf8", &[1, 0xff, b'V'])), conn_close(501, exact("FRAME_ERROR - Malformed UTF-8 in shortstr"), 0, 0)]),
            "RabbitMQ accepts any bytes in a table key; Warren's keys are UTF-8 (as RabbitMQ checks method shortstrs): 501",
        ),
        declare_accepted("table_nested_63_deep", &nested(63)),
        differs(
            declare_refused("table_nested_200_deep", &nested(200), exact("FRAME_ERROR - cannot decode 'queue.declare': field tables nested deeper than 64 levels")),
            "RabbitMQ decodes any depth a frame holds; Warren caps nesting at 64 levels (501)",
        ),
        declare_accepted("table_30000_entries", &many_entries),
        differs(
            declare_refused("array_of_100000_values", &many_values, exact("FRAME_ERROR - cannot decode 'queue.declare': field table holds more than 65536 values")),
            "RabbitMQ decodes every value a frame holds; Warren caps a table at 65,536 decoded values (501)",
        ),
    ]
}

fn string_and_id_rows() -> Vec<Row> {
    let short_overrun = RawConn::method_bytes(1, 50, 10, &[0, 0, 255, b'a', b'b', b'c']);
    let bad_utf8 = RawConn::method_bytes(1, 50, 10, &[0, 0, 2, 0xc3, 0x28, 0, 0, 0, 0, 0]);
    vec![
        row("shortstr_length_255_overruns", vec![send(short_overrun), conn_close(501, prefix("FRAME_ERROR - cannot decode"), 50, 10)]),
        row("shortstr_not_utf8", vec![send(bad_utf8), conn_close(501, exact("FRAME_ERROR - Malformed UTF-8 in shortstr"), 0, 0)]),
        row("method_arguments_truncated", vec![send(RawConn::method_bytes(1, 50, 10, &[0, 0])), conn_close(501, prefix("FRAME_ERROR - cannot decode"), 50, 10)]),
        row("method_payload_shorter_than_ids", vec![send(RawConn::frame_bytes(1, 1, &[0, 50])), conn_close(501, exact("FRAME_ERROR - type 1, all octets = <<0,50>>: unknown_frame"), 0, 0)]),
        differs(
            row("unknown_class_id", vec![send(RawConn::method_bytes(1, 99, 10, &[])), conn_close(540, prefix("NOT_IMPLEMENTED"), 99, 10)]),
            "RabbitMQ's reader crashes and drops the socket without a close code; Warren closes with 540 NOT_IMPLEMENTED",
        ),
        differs(
            row("unknown_method_id", vec![send(RawConn::method_bytes(1, 50, 99, &[])), conn_close(540, prefix("NOT_IMPLEMENTED"), 50, 99)]),
            "RabbitMQ's reader crashes and drops the socket without a close code; Warren closes with 540 NOT_IMPLEMENTED",
        ),
        differs(
            row("unknown_class_id_on_channel_0", vec![send(RawConn::method_bytes(0, 99, 10, &[])), conn_close(540, prefix("NOT_IMPLEMENTED"), 99, 10)]),
            "RabbitMQ's reader crashes and drops the socket without a close code; Warren closes with 540 NOT_IMPLEMENTED",
        ),
    ]
}

#[test]
fn closing_channels() {
    run_rows(&closing_rows());
}

#[test]
fn content_out_of_order() {
    run_rows(&content_rows());
}

#[test]
fn field_tables() {
    run_rows(&table_rows());
}

#[test]
fn strings_and_unknown_ids() {
    run_rows(&string_and_id_rows());
}

#[test]
fn max_message_size_is_configurable() {
    if skip_if_external("it starts Warren with --max-message-size") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--max-message-size", "1000"]);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        let (q, _, _) = c.queue_declare(1, "");
        c.basic_publish(1, "", &q, &[b'a'; 1000], 131_072);
        c.send_bytes(&cat(&[
            publish(1, &q),
            header(1, 60, 1001),
            body(1, &[b'b'; 1001]),
        ]));
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (1, 20, 40),
            "channel.close: {m:?}"
        );
        assert_eq!(
            m.close_reason(),
            (
                406,
                "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"
                    .to_string()
            )
        );
        c.send_bytes(&method(1, 20, 41, Args::new()));
        // The message of exactly the maximum went through.
        c.channel_open(2);
        c.basic_consume(2, &q, "t");
        assert_eq!(c.read_delivery().body, vec![b'a'; 1000]);
        second_client_works(&b, "max_message_size_is_configurable");
    }
}
