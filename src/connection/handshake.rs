//! The connection handshake: protocol header, start/start-ok (PLAIN and
//! AMQPLAIN, checked against the shard's users; EXTERNAL with a TLS client
//! certificate; a refusal from an address
//! that keeps failing is delayed, see `broker::auth::failures`), tune/tune-ok
//! negotiated as RabbitMQ does, and connection.open, answered once
//! `shard::vhosts::admit` admitted the user to the vhost (it exists, the
//! user has permissions there, it is under its connection limit). Runs
//! before the connection's writer exists, so it writes its frames straight
//! to the socket.

use crate::broker::error::{code, AmqpError};
use crate::connection::transport::Transport;
use crate::protocol::frame::{
    encode_method_frame, Frame, FrameDecoder, FRAME_MIN_SIZE, PROTOCOL_HEADER,
};
use crate::protocol::methods::*;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;

pub const CHANNEL_MAX: u16 = 2047;
pub const FRAME_MAX: u32 = 131_072;
pub const HEARTBEAT: u16 = 60;

/// How long a client may take to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handshake settled.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    pub user: String,
    /// The user's tags at login (RabbitMQ keeps them for the connection).
    pub tags: Vec<String>,
    /// The client-properties table of connection.start-ok, shared with the
    /// management API's connection snapshots.
    pub client_properties: Arc<FieldTable>,
    /// The vhost connection.open named…
    pub vhost_name: ShortStr,
    /// …and its id, once admitted (`shard::vhosts::admit`)…
    pub vhost: crate::broker::vhost::VhostId,
    /// …and the connection's place there (`max-connections`), given back
    /// when the connection ends.
    pub slot: std::rc::Rc<crate::shard::connection_slots::ConnectionSlot>,
}

/// Why a handshake ended without an open connection.
#[derive(Debug)]
pub enum HandshakeError {
    /// Wrong protocol header: we answered with ours and close.
    BadHeader,
    /// A connection.close was sent to the client (auth failure, bad vhost…).
    Refused(AmqpError),
    Io(std::io::Error),
    Protocol(String),
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> HandshakeError {
        HandshakeError::Io(e)
    }
}

fn capabilities() -> FieldTable {
    let mut t = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "connection.blocked",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        t.insert(ShortStr::from_static(cap), FieldValue::Bool(true));
    }
    t
}

fn longstr(s: &'static str) -> FieldValue {
    FieldValue::LongStr(Bytes::from_static(s.as_bytes()))
}

pub fn server_properties(shard: u16) -> FieldTable {
    let mut t = FieldTable::new();
    t.insert(
        ShortStr::from_static("capabilities"),
        FieldValue::Table(capabilities()),
    );
    t.insert(ShortStr::from_static("product"), longstr("Warren"));
    t.insert(
        ShortStr::from_static("version"),
        longstr(env!("CARGO_PKG_VERSION")),
    );
    t.insert(ShortStr::from_static("platform"), longstr("Rust"));
    t.insert(ShortStr::from_static("cluster_name"), longstr("warren"));
    t.insert(
        ShortStr::from_static("information"),
        longstr("Warren: a RabbitMQ-compatible AMQP 0-9-1 broker"),
    );
    t.insert(
        ShortStr::from_static("warren-shard"),
        FieldValue::I64(shard as i64),
    );
    t
}

async fn send(stream: &mut Transport, method: Method) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(512);
    encode_method_frame(&mut buf, 0, &method);
    stream.write_bytes(&buf).await
}

/// Reads the next method on channel 0, skipping heartbeats.
async fn next_method(
    stream: &mut Transport,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Result<Method, HandshakeError> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(Frame::Method { channel: 0, method })) => return Ok(method),
            Ok(Some(Frame::Heartbeat { .. })) => continue,
            Ok(Some(other)) => {
                return Err(HandshakeError::Protocol(format!(
                    "unexpected frame during handshake on channel {}",
                    other.channel()
                )))
            }
            Ok(None) => {}
            Err(e) => return Err(HandshakeError::Protocol(e.reply_text())),
        }
        if stream.read_into(buf, 4096).await? == 0 {
            return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// The mechanisms connection.start offers: EXTERNAL only to a TLS client
/// that presented a certificate, as RabbitMQ.
fn mechanisms(client_cert: Option<&[u8]>) -> &'static [u8] {
    match client_cert {
        Some(_) => b"PLAIN AMQPLAIN EXTERNAL",
        None => b"PLAIN AMQPLAIN",
    }
}

/// Checks a start-ok's credentials (EXTERNAL: the verified client
/// certificate's subject CN names an existing user), and that a
/// loopback-only user (RabbitMQ's `loopback_users`) comes from a loopback
/// address; returns the user name.
fn authenticate(
    start_ok: &ConnectionStartOk,
    peer: Option<std::net::SocketAddr>,
    shard: &Shard,
    client_cert: Option<&[u8]>,
) -> Result<String, AmqpError> {
    let loopback_users = &shard.settings.loopback_users;
    let mechanism = start_ok.mechanism.as_str();
    // The client sees the same text whatever the reason, as in RabbitMQ;
    // the log says why.
    let refused = || {
        AmqpError::access_refused(format!(
            "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        ))
    };
    let (user, pass) = match (mechanism, client_cert) {
        ("EXTERNAL", Some(der)) => {
            let user = match super::peer_cert::subject_common_name(der) {
                Some(cn) if shard.meta.borrow().auth.user(&cn).is_some() => cn,
                cn => {
                    tracing::warn!(
                        "EXTERNAL login refused: certificate subject CN {cn:?} is not a user"
                    );
                    return Err(refused());
                }
            };
            (user, None)
        }
        (mechanism, _) => {
            let (user, pass) = password_credentials(mechanism, start_ok)?;
            (user, Some(pass))
        }
    };
    if let Some(pass) = pass {
        if let Err(why) = shard.meta.borrow().auth.authenticate(&user, &pass) {
            let peer = peer.map_or_else(|| "?".into(), |p| p.to_string());
            tracing::warn!(peer = %peer, "{mechanism} login refused: {}", why.describe(&user));
            return Err(refused());
        }
    }
    let from_loopback = peer.is_some_and(|p| match p.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    });
    if loopback_users.contains(&user) && !from_loopback {
        let peer = peer.map_or_else(|| "?".into(), |p| p.to_string());
        tracing::warn!(
            peer = %peer,
            "{mechanism} login refused: user '{user}' can only connect via localhost"
        );
        return Err(refused());
    }
    Ok(user)
}

/// The user and password of a PLAIN or AMQPLAIN start-ok.
fn password_credentials(
    mechanism: &str,
    start_ok: &ConnectionStartOk,
) -> Result<(String, String), AmqpError> {
    Ok(match mechanism {
        "PLAIN" => {
            let mut parts = start_ok.response.split(|b| *b == 0);
            let _authzid = parts.next();
            let user = parts.next().unwrap_or_default();
            let pass = parts.next().unwrap_or_default();
            (
                String::from_utf8_lossy(user).into_owned(),
                String::from_utf8_lossy(pass).into_owned(),
            )
        }
        "AMQPLAIN" => {
            let mut raw = start_ok.response.clone();
            let table = amqplain_table(&mut raw);
            let field = |k: &str| {
                table
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (field("LOGIN"), field("PASSWORD"))
        }
        other => {
            return Err(AmqpError::new(
                code::ACCESS_REFUSED,
                format!("unsupported authentication mechanism '{other}'"),
            ))
        }
    })
}

/// AMQPLAIN's response is a field table's entries without the length prefix.
fn amqplain_table(raw: &mut Bytes) -> FieldTable {
    use crate::protocol::wire::{get_field_value, get_shortstr};
    let mut table = FieldTable::new();
    while !raw.is_empty() {
        match (get_shortstr(raw), get_field_value(raw)) {
            (Ok(k), Ok(v)) => table.insert(k, v),
            _ => break,
        }
    }
    table
}

/// Whether the client advertised `name` in its capabilities table.
pub fn client_capability(props: &FieldTable, name: &str) -> bool {
    match props.get("capabilities") {
        Some(FieldValue::Table(caps)) => caps.get(name).and_then(|v| v.as_bool()).unwrap_or(false),
        _ => false,
    }
}

/// Runs the handshake. `buf` keeps whatever the client pipelined after it.
pub async fn run(
    stream: &mut Transport,
    shard: &std::rc::Rc<Shard>,
    buf: &mut BytesMut,
) -> Result<Negotiated, HandshakeError> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header, buf).await?;
    // "AMQP 1 1 0 9" (AMQP 0-9) is served as 0-9-1, as RabbitMQ does.
    if header != PROTOCOL_HEADER && header != *PROTOCOL_HEADER_0_9 {
        stream.write_bytes(&PROTOCOL_HEADER).await?;
        return Err(HandshakeError::BadHeader);
    }
    let mut decoder = FrameDecoder::new(FRAME_MIN_SIZE);
    let client_cert = stream.session().and_then(|s| s.peer_certificate());
    send(
        stream,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(shard.id),
            mechanisms: Bytes::from_static(mechanisms(client_cert.as_deref())),
            locales: Bytes::from_static(b"en_US"),
        }
        .into(),
    )
    .await?;
    let start_ok = match next_method(stream, &mut decoder, buf).await? {
        Method::ConnectionStartOk(m) => m,
        other => {
            return Err(HandshakeError::Protocol(format!(
                "expected connection.start-ok, got {}",
                other.name()
            )))
        }
    };
    let peer = stream.peer_addr();
    let user = match authenticate(&start_ok, peer, shard, client_cert.as_deref()) {
        Ok(user) => user,
        Err(e) => {
            let delay = match (peer, shard.settings.auth_failures.lock()) {
                (Some(p), Ok(mut failures)) => failures.failed(p.ip(), std::time::Instant::now()),
                _ => Duration::ZERO,
            };
            if !delay.is_zero() {
                glommio::timer::sleep(delay).await;
            }
            if client_capability(&start_ok.client_properties, "authentication_failure_close") {
                let _ = send(stream, close_method(&e, 0, 0)).await;
            }
            return Err(HandshakeError::Refused(e));
        }
    };
    send(
        stream,
        ConnectionTune {
            channel_max: CHANNEL_MAX,
            frame_max: FRAME_MAX,
            heartbeat: HEARTBEAT,
        }
        .into(),
    )
    .await?;
    let tune_ok = match next_method(stream, &mut decoder, buf).await? {
        Method::ConnectionTuneOk(m) => m,
        other => {
            return Err(HandshakeError::Protocol(format!(
                "expected connection.tune-ok, got {}",
                other.name()
            )))
        }
    };
    let (frame_max, channel_max) = match check_tune_ok(&tune_ok) {
        Ok(values) => values,
        Err(e) => {
            // RabbitMQ drops the socket silently after 3 s here; Warren
            // says why (530, RabbitMQ's log text) and closes.
            let _ = send(stream, close_method(&e, 10, 31)).await;
            return Err(HandshakeError::Refused(e));
        }
    };
    let open = match next_method(stream, &mut decoder, buf).await? {
        Method::ConnectionOpen(m) => m,
        other => {
            return Err(HandshakeError::Protocol(format!(
                "expected connection.open, got {}",
                other.name()
            )))
        }
    };
    let (vhost, slot) = match crate::shard::vhosts::admit(shard, open.virtual_host.as_str(), &user)
    {
        Ok(admitted) => admitted,
        Err(e) => {
            let _ = send(stream, close_method(&e, 10, 40)).await;
            return Err(HandshakeError::Refused(e));
        }
    };
    let tags = (shard.meta.borrow().auth.user(&user)).map_or_else(Vec::new, |u| u.tags.clone());
    send(stream, ConnectionOpenOk {}.into()).await?;
    Ok(Negotiated {
        channel_max,
        frame_max,
        heartbeat: tune_ok.heartbeat,
        user,
        tags,
        client_properties: Arc::new(start_ok.client_properties),
        vhost_name: open.virtual_host,
        vhost,
        slot: std::rc::Rc::new(slot),
    })
}

/// The header of AMQP 0-9, which RabbitMQ (and Warren) serve as 0-9-1.
const PROTOCOL_HEADER_0_9: &[u8; 8] = b"AMQP\x01\x01\x00\x09";

/// RabbitMQ's checks of a tune-ok (`rabbit_reader`,
/// `validate_negotiated_integer_value`): frame_max at least 4096, and
/// neither value above the server's (0, "no limit", is above it too).
/// Returns the negotiated frame_max and channel_max.
pub fn check_tune_ok(tune_ok: &ConnectionTuneOk) -> Result<(u32, u16), AmqpError> {
    let refuse = |text: String| Err(AmqpError::new(code::NOT_ALLOWED, text));
    let frame_max = tune_ok.frame_max;
    if frame_max != 0 && frame_max < FRAME_MIN_SIZE {
        return refuse(format!("frame_max={frame_max} < {FRAME_MIN_SIZE} min size"));
    }
    if frame_max == 0 || frame_max > FRAME_MAX {
        return refuse(format!(
            "negotiated frame_max = {frame_max} is higher than the maximum allowed value ({FRAME_MAX})"
        ));
    }
    let channel_max = tune_ok.channel_max;
    if channel_max == 0 || channel_max > CHANNEL_MAX {
        return refuse(format!(
            "negotiated channel_max = {channel_max} is higher than the maximum allowed value ({CHANNEL_MAX})"
        ));
    }
    Ok((frame_max, channel_max))
}

pub fn close_method(e: &AmqpError, class_id: u16, method_id: u16) -> Method {
    ConnectionClose {
        reply_code: e.code,
        reply_text: ShortStr::try_from_string(e.text.clone()).unwrap_or_default(),
        class_id,
        method_id,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_reads_the_largest_frame_the_server_accepts_in_one_allocation() {
        assert_eq!(super::super::socket::MAX_FRAME_REST, FRAME_MAX as usize);
    }

    fn tune_ok(channel_max: u16, frame_max: u32) -> ConnectionTuneOk {
        ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat: 0,
        }
    }

    #[test]
    fn tune_ok_is_checked_as_rabbitmq_checks_it() {
        assert_eq!(check_tune_ok(&tune_ok(2047, 131_072)), Ok((131_072, 2047)));
        assert_eq!(check_tune_ok(&tune_ok(1, 4096)), Ok((4096, 1)));
        let refused = |c, f| {
            let e = check_tune_ok(&tune_ok(c, f)).unwrap_err();
            assert_eq!(e.code, 530);
            e.text
        };
        assert_eq!(
            refused(2047, 4095),
            "NOT_ALLOWED - frame_max=4095 < 4096 min size"
        );
        for f in [0, 131_073] {
            assert_eq!(
                refused(2047, f),
                format!(
                    "NOT_ALLOWED - negotiated frame_max = {f} is higher than the maximum \
                     allowed value (131072)"
                )
            );
        }
        for c in [0, 2048] {
            assert_eq!(
                refused(c, 131_072),
                format!(
                    "NOT_ALLOWED - negotiated channel_max = {c} is higher than the maximum \
                     allowed value (2047)"
                )
            );
        }
    }
}
