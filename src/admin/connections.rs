//! The admin side of rabbitmqctl's `close_connection NAME REASON`: `POST
//! /close_connection/NAME/REASON` (each part percent-encoded). NAME is a
//! connection's name as `list_connections name` shows it (its peer
//! address; RabbitMQ takes the connection's Erlang pid); every shard closes
//! its connections of that name with 320 `CONNECTION_FORCED - REASON`. As
//! with rabbitmqctl, a name that matches nothing is no error.

use super::policy::decode;
use crate::shard::envelope::{Reply, Request};
use crate::shard::Shard;
use std::rc::Rc;

/// An HTTP status line and body.
pub type Refusal = (&'static str, String);

/// Parses `close_connection/NAME/REASON`: Some((name, reason)), or the
/// HTTP status and body of a bad request; None for another command.
pub fn route(
    method: &str,
    command: &str,
    value: &str,
) -> Option<Result<(String, String), Refusal>> {
    if command != "close_connection" {
        return None;
    }
    if method != "POST" {
        return Some(Err((
            "405 Method Not Allowed",
            "close_connection changes the broker: use POST\n".into(),
        )));
    }
    let parts: Option<Vec<String>> = value.split('/').map(decode).collect();
    Some(match parts.as_deref() {
        Some([name, reason]) if !name.is_empty() && name.len() <= 255 && reason.len() <= 200 => {
            Ok((name.clone(), reason.clone()))
        }
        _ => Err((
            "400 Bad Request",
            "Error:\nexpected close_connection/NAME/REASON (a reason of at most 200 bytes)\n"
                .into(),
        )),
    })
}

/// Asks every shard to close the connections named `name`.
pub async fn close(shard: &Rc<Shard>, name: &str, reason: &str) -> (&'static str, String) {
    let mut closed = 0;
    for id in 0..shard.count {
        let request = Request::CloseConnectionsNamed {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if let Reply::Count(Ok(n)) = shard.request(id, request).await {
            closed += n;
        }
    }
    tracing::info!("admin: close_connection {name}: {closed} closed");
    ("200 OK", String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            route("POST", "close_connection", "127.0.0.1%3A5/go%20away"),
            Some(Ok(("127.0.0.1:5".into(), "go away".into())))
        );
        assert!(matches!(
            route("POST", "close_connection", "x"),
            Some(Err(("400 Bad Request", _)))
        ));
        assert!(matches!(
            route("GET", "close_connection", "x/y"),
            Some(Err(("405 Method Not Allowed", _)))
        ));
        assert_eq!(route("POST", "other", "x/y"), None);
    }
}
