//! The admin side of rabbitmqctl's `delete_queue NAME [--if-unused]
//! [--if-empty]` and `purge_queue NAME`: `POST /delete_queue/NAME` (with
//! `?if_unused=true` / `&if_empty=true`) and `POST /purge_queue/NAME`,
//! in the request's vhost (`?vhost=`). They run as the broker itself
//! (rabbitmqctl needs no AMQP user): a deletion through the leader, a
//! purge on the queue's owner. The body is rabbitmqctl's result line; the
//! client prints the `Deleting queue …` / `Purging queue …` line.

use super::policy::decode;
use crate::broker::vhost::QueueName;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{Reply, Request};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use std::rc::Rc;

/// A queue command, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueCommand {
    Delete {
        name: String,
        if_unused: bool,
        if_empty: bool,
    },
    Purge {
        name: String,
    },
}

/// Parses `delete_queue/NAME` or `purge_queue/NAME` (`flags` are the
/// query's `if_unused` and `if_empty`); None when `command` is neither.
pub fn route(
    method: &str,
    command: &str,
    value: &str,
    flags: (bool, bool),
) -> Option<Result<QueueCommand, (&'static str, String)>> {
    if command != "delete_queue" && command != "purge_queue" {
        return None;
    }
    if method != "POST" {
        return Some(Err((
            "405 Method Not Allowed",
            format!("{command} changes the broker: use POST\n"),
        )));
    }
    let Some(name) = decode(value).filter(|n| !n.is_empty() && n.len() <= 255) else {
        return Some(Err((
            "400 Bad Request",
            "Error:\nexpected a queue name (at most 255 bytes)\n".into(),
        )));
    };
    Some(Ok(if command == "delete_queue" {
        QueueCommand::Delete {
            name,
            if_unused: flags.0,
            if_empty: flags.1,
        }
    } else {
        QueueCommand::Purge { name }
    }))
}

/// Runs the command in `vhost`. A missing queue (or vhost) is 404, a
/// refused condition 409, with rabbitmqctl's error text.
pub async fn answer(
    shard: &Rc<Shard>,
    command: QueueCommand,
    vhost: &str,
) -> (&'static str, String) {
    let not_found = |text: &str| ("404 Not Found", format!("Error:\n{text}\n"));
    let (name, missing) = match &command {
        QueueCommand::Delete { name, .. } => (name, "Queue not found"),
        QueueCommand::Purge { name } => (name, "not_found"),
    };
    let Ok(vhost) = super::vhosts::resolve(shard, vhost) else {
        return not_found(missing);
    };
    let qname = QueueName::new(vhost, ShortStr::from(name.as_str()));
    let Some(owner) = shard.meta.borrow().queues.get(&qname).map(|q| q.owner) else {
        return not_found(missing);
    };
    let deleting = matches!(command, QueueCommand::Delete { .. });
    let (dest, request) = match command {
        QueueCommand::Delete {
            if_unused,
            if_empty,
            ..
        } => (
            LEADER,
            Request::DeleteQueue {
                name: qname,
                if_unused,
                if_empty,
                conn: None,
            },
        ),
        QueueCommand::Purge { .. } => (owner, Request::Purge { name: qname }),
    };
    match shard.request(dest, request).await {
        Reply::Count(Ok(n)) if deleting => (
            "200 OK",
            format!("Queue was successfully deleted with {n} ready messages\n"),
        ),
        Reply::Count(Ok(_)) => ("200 OK", String::new()),
        Reply::Count(Err(e)) if e.code == 404 => not_found(missing),
        Reply::Count(Err(e)) => {
            // RabbitMQ's words for a refused if-empty / if-unused.
            let text = if e.text.ends_with("' in use") {
                "Queue is in use"
            } else if e.text.ends_with("' not empty") {
                "Queue is not empty"
            } else {
                e.text.as_str()
            };
            ("409 Conflict", format!("Error:\n{text}\n"))
        }
        other => (
            "500 Internal Server Error",
            format!("Error:\nunexpected reply {other:?}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            route("POST", "delete_queue", "a%2Fb", (true, false)),
            Some(Ok(QueueCommand::Delete {
                name: "a/b".into(),
                if_unused: true,
                if_empty: false
            }))
        );
        assert_eq!(
            route("POST", "purge_queue", "q", (false, false)),
            Some(Ok(QueueCommand::Purge { name: "q".into() }))
        );
        assert!(matches!(
            route("GET", "purge_queue", "q", (false, false)),
            Some(Err(("405 Method Not Allowed", _)))
        ));
        assert!(matches!(
            route("POST", "purge_queue", "", (false, false)),
            Some(Err(("400 Bad Request", _)))
        ));
        assert_eq!(route("POST", "other", "q", (false, false)), None);
    }
}
