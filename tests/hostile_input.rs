//! The table of bad inputs (`docs/bad-input.md`), part 1: protocol headers,
//! tune-ok values, framing, channel numbers and methods on the wrong
//! channel. Each row asserts RabbitMQ 3.10's exact reply (measured; rows
//! where Warren deliberately answers otherwise say why and skip against an
//! external broker) and that a well-behaved lapin client on the same broker
//! publishes and consumes right after. Runs with --shards 1 and 2.

mod common;

use common::hostile::*;
use common::raw::{Args, RawConn};
use std::time::Duration;

const FRAME_MAX: u32 = 131_072;

fn quiet(ms: u64) -> Step {
    Step::Expect(Reply::Quiet(Duration::from_millis(ms)))
}

fn row(name: &'static str, stage: Stage, steps: Vec<Step>) -> Row {
    Row {
        name,
        stage,
        steps,
        warren_differs: None,
    }
}

fn tune_ok(channel_max: u16, frame_max: u32, heartbeat: u16) -> Vec<u8> {
    method(
        0,
        10,
        31,
        Args::new()
            .short(channel_max)
            .long(frame_max)
            .short(heartbeat),
    )
}

fn connection_open() -> Vec<u8> {
    method(0, 10, 40, Args::new().shortstr("/").shortstr("").octet(0))
}

fn channel_open(channel: u16) -> Vec<u8> {
    method(channel, 20, 10, Args::new().shortstr(""))
}

/// A tune-ok the server refuses: RabbitMQ 3.10 drops the socket without a
/// word after 3 s (the text is in its log); Warren closes with 530 and
/// that text.
fn refused_tune(name: &'static str, ok: Vec<u8>, text: String) -> Row {
    differs(
        row(
            name,
            Stage::Tuning,
            vec![send(ok), conn_close(530, exact(text), 10, 31)],
        ),
        "RabbitMQ drops the socket silently after 3 s; Warren sends 530 NOT_ALLOWED with RabbitMQ's log text",
    )
}

/// A tune-ok the server accepts: connection.open gets open-ok.
fn accepted_tune(name: &'static str, ok: Vec<u8>) -> Row {
    row(
        name,
        Stage::Tuning,
        vec![send(ok), send(connection_open()), expect_method(0, 10, 41)],
    )
}

fn header_rows() -> Vec<Row> {
    let refused = |name, bytes: &[u8]| {
        row(
            name,
            Stage::Tcp,
            vec![send(bytes.to_vec()), Step::Expect(Reply::Header)],
        )
    };
    vec![
        refused("header_http", b"GET / HTTP/1.1\r\n\r\n"),
        refused("header_lowercase_amqp", b"amqp\x00\x00\x09\x01"),
        refused("header_amqp_0_10", b"AMQP\x01\x01\x00\x0a"),
        refused("header_amqp_1_0", b"AMQP\x00\x01\x00\x00"),
        refused("header_amqp_1_0_tls", b"AMQP\x02\x01\x00\x00"),
        refused("header_amqp_1_0_sasl", b"AMQP\x03\x01\x00\x00"),
        refused("header_amqp_0_9_1_wrong_revision", b"AMQP\x00\x00\x09\x02"),
        row(
            "header_amqp_0_9_accepted_as_0_9_1",
            Stage::Tcp,
            vec![send(b"AMQP\x01\x01\x00\x09".to_vec()), expect_method(0, 10, 10)],
        ),
        differs(
            refused("header_amqp_0_8", b"AMQP\x01\x01\x08\x00"),
            "RabbitMQ 3.10 still speaks AMQP 0-8 (connection.start 8-0); Warren speaks 0-9-1 only and answers with its header",
        ),
        row(
            "header_truncated_waits",
            Stage::Tcp,
            vec![send(b"AMQP\x00\x00\x09".to_vec()), quiet(1500)],
        ),
    ]
}

fn tune_rows() -> Vec<Row> {
    vec![
        refused_tune(
            "tune_ok_frame_max_below_min",
            tune_ok(2047, 4095, 0),
            "NOT_ALLOWED - frame_max=4095 < 4096 min size".into(),
        ),
        refused_tune(
            "tune_ok_frame_max_above_server",
            tune_ok(2047, FRAME_MAX + 1, 0),
            format!("NOT_ALLOWED - negotiated frame_max = {} is higher than the maximum allowed value ({FRAME_MAX})", FRAME_MAX + 1),
        ),
        refused_tune(
            "tune_ok_frame_max_zero",
            tune_ok(2047, 0, 0),
            format!("NOT_ALLOWED - negotiated frame_max = 0 is higher than the maximum allowed value ({FRAME_MAX})"),
        ),
        refused_tune(
            "tune_ok_channel_max_zero",
            tune_ok(0, FRAME_MAX, 0),
            "NOT_ALLOWED - negotiated channel_max = 0 is higher than the maximum allowed value (2047)".into(),
        ),
        refused_tune(
            "tune_ok_channel_max_above_server",
            tune_ok(2048, FRAME_MAX, 0),
            "NOT_ALLOWED - negotiated channel_max = 2048 is higher than the maximum allowed value (2047)".into(),
        ),
        accepted_tune("tune_ok_frame_max_exactly_min", tune_ok(2047, 4096, 0)),
        accepted_tune("tune_ok_heartbeat_65535", tune_ok(2047, FRAME_MAX, 65535)),
        accepted_tune("tune_ok_channel_max_1", tune_ok(1, FRAME_MAX, 0)),
        row(
            "connection_open_without_tune_ok",
            Stage::Tuning,
            vec![send(connection_open()), Step::Expect(Reply::Dropped)],
        ),
        row(
            "channel_open_before_tune_ok",
            Stage::Tuning,
            vec![send(channel_open(1)), Step::Expect(Reply::Dropped)],
        ),
    ]
}

/// A publish whose single body frame is `payload` octets long (the frame
/// `payload + 8`), then basic.qos: qos-ok proves the frame was accepted.
fn body_frame_of(name: &'static str, payload: usize) -> Row {
    let mut bytes = publish(1, "nowhere");
    bytes.extend(header(1, 60, payload as u64));
    bytes.extend(body(1, &vec![b'x'; payload]));
    row(
        name,
        Stage::Channel,
        vec![send(bytes), send(qos(1)), expect_method(1, 60, 11)],
    )
}

/// A frame the server refuses with a connection.close naming no method.
fn frame_refused(name: &'static str, bytes: Vec<u8>, code: u16, text: Text) -> Row {
    row(
        name,
        Stage::Open,
        vec![send(bytes), conn_close(code, text, 0, 0)],
    )
}

fn frame_rows() -> Vec<Row> {
    let mut bad_end = RawConn::method_bytes(1, 20, 10, &Args::new().shortstr("").done());
    *bad_end.last_mut().expect("frame") = 0;
    let mut too_big = vec![1u8, 0, 1];
    too_big.extend_from_slice(&1_000_000u32.to_be_bytes());
    vec![
        frame_refused(
            "frame_end_not_0xce",
            bad_end,
            501,
            exact(
                "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}",
            ),
        ),
        frame_refused(
            "frame_type_unknown",
            RawConn::frame_bytes(42, 1, b"junk"),
            501,
            exact("FRAME_ERROR - type 42, all octets = <<\"junk\">>: unknown_frame"),
        ),
        frame_refused(
            "frame_type_4_oob_method",
            RawConn::frame_bytes(4, 0, b""),
            501,
            exact("FRAME_ERROR - type 4, all octets = <<>>: unknown_frame"),
        ),
        frame_refused(
            "heartbeat_on_channel_1",
            RawConn::frame_bytes(8, 1, b""),
            505,
            exact("UNEXPECTED_FRAME - type 8, all octets = <<>>"),
        ),
        frame_refused(
            "heartbeat_with_payload",
            RawConn::frame_bytes(8, 0, b"x"),
            501,
            exact("FRAME_ERROR - type 8, all octets = <<\"x\">>: unknown_frame"),
        ),
        frame_refused(
            "frame_size_far_above_frame_max",
            too_big,
            501,
            exact(format!(
                "FRAME_ERROR - type 1, all octets = <<>>: {{frame_too_large,1000000,{}}}",
                FRAME_MAX - 8
            )),
        ),
        body_frame_of("frame_exactly_frame_max", FRAME_MAX as usize - 8),
        body_frame_of("frame_one_over_frame_max", FRAME_MAX as usize - 7),
    ]
}

fn channel_rows() -> Vec<Row> {
    let mut three_channels = vec![
        send(tune_ok(2, FRAME_MAX, 0)),
        send(connection_open()),
        expect_method(0, 10, 41),
    ];
    for ch in 1..=2 {
        three_channels.push(send(channel_open(ch)));
        three_channels.push(expect_method(ch, 20, 11));
    }
    three_channels.push(send(channel_open(3)));
    three_channels.push(conn_close(
        530,
        exact("NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"),
        0,
        0,
    ));
    let wrong_state = || exact("CHANNEL_ERROR - unexpected method in connection state running");
    vec![
        row(
            // channel_max bounds the channels open, not their numbers.
            "channel_number_above_channel_max",
            Stage::Open,
            vec![send(channel_open(2048)), expect_method(2048, 20, 11)],
        ),
        row(
            "more_channels_than_negotiated_channel_max",
            Stage::Tuning,
            three_channels,
        ),
        row(
            "channel_open_twice",
            Stage::Channel,
            vec![
                send(channel_open(1)),
                conn_close(
                    504,
                    exact("CHANNEL_ERROR - second 'channel.open' seen"),
                    20,
                    10,
                ),
            ],
        ),
        row(
            "channel_open_on_channel_0",
            Stage::Open,
            vec![
                send(channel_open(0)),
                conn_close(504, wrong_state(), 20, 10),
            ],
        ),
        row(
            "queue_declare_on_channel_0",
            Stage::Open,
            vec![
                send(declare_with_table(0, "q-on-0", b"")),
                conn_close(504, wrong_state(), 50, 10),
            ],
        ),
        row(
            "connection_open_on_channel_1",
            Stage::Channel,
            vec![
                send(method(
                    1,
                    10,
                    40,
                    Args::new().shortstr("/").shortstr("").octet(0),
                )),
                conn_close(503, exact("COMMAND_INVALID - unimplemented method"), 10, 40),
            ],
        ),
        row(
            "tune_ok_again_after_open",
            Stage::Open,
            vec![
                send(tune_ok(2047, FRAME_MAX, 0)),
                conn_close(504, wrong_state(), 10, 31),
            ],
        ),
        row(
            "method_on_unopened_channel",
            Stage::Open,
            vec![
                send(qos(7)),
                conn_close(
                    504,
                    exact("CHANNEL_ERROR - expected 'channel.open'"),
                    60,
                    10,
                ),
            ],
        ),
    ]
}

#[test]
fn protocol_headers() {
    run_rows(&header_rows());
}

#[test]
fn tune_ok_values() {
    run_rows(&tune_rows());
}

#[test]
fn framing() {
    run_rows(&frame_rows());
}

#[test]
fn channel_numbers_and_wrong_channels() {
    run_rows(&channel_rows());
}
