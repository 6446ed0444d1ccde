//! The listing verbs of `warren ctl` with columns, as rabbitmqctl 3.10
//! names and titles them: each one's path on the admin endpoint, its row
//! type (`rows`), its default columns and its informational lines.

use super::columns::{Listing, Row};
use super::rows;

/// Every listing with columns, in rabbitmqctl's words.
pub const LISTINGS: &[Listing] = &[
    Listing {
        verb: "list_queues",
        path: "/queues",
        columns: <rows::QueueRow<'static> as Row>::COLUMNS,
        defaults: &["name", "messages"],
        vhost_scoped: true,
        timeout_line: true,
        title: "Listing queues for vhost {vhost} ...",
    },
    Listing {
        verb: "list_exchanges",
        path: "/exchanges",
        columns: <rows::ExchangeRow<'static> as Row>::COLUMNS,
        defaults: &["name", "type"],
        vhost_scoped: true,
        timeout_line: false,
        title: "Listing exchanges for vhost {vhost} ...",
    },
    Listing {
        verb: "list_bindings",
        path: "/bindings",
        columns: <rows::BindingRow<'static> as Row>::COLUMNS,
        defaults: &[
            "source_name",
            "source_kind",
            "destination_name",
            "destination_kind",
            "routing_key",
            "arguments",
        ],
        vhost_scoped: true,
        timeout_line: false,
        title: "Listing bindings for vhost {vhost}...",
    },
    Listing {
        verb: "list_connections",
        path: "/connections",
        columns: <rows::ConnectionRow<'static> as Row>::COLUMNS,
        defaults: &["user", "peer_host", "peer_port", "state"],
        vhost_scoped: false,
        timeout_line: false,
        title: "Listing connections ...",
    },
    Listing {
        verb: "list_channels",
        path: "/channels",
        columns: <rows::ChannelRow<'static> as Row>::COLUMNS,
        defaults: &["pid", "user", "consumer_count", "messages_unacknowledged"],
        vhost_scoped: false,
        timeout_line: false,
        title: "Listing channels ...",
    },
    Listing {
        verb: "list_consumers",
        path: "/consumers",
        columns: <rows::ConsumerRow<'static> as Row>::COLUMNS,
        defaults: &[
            "queue_name",
            "channel_pid",
            "consumer_tag",
            "ack_required",
            "prefetch_count",
            "active",
            // rabbitmqctl's default ends with `arguments`: Warren keeps
            // no consumer arguments but x-priority, so it has no such
            // column.
        ],
        vhost_scoped: true,
        timeout_line: false,
        title: "Listing consumers in vhost {vhost} ...",
    },
    Listing {
        verb: "list_vhosts",
        path: "/vhosts",
        columns: <rows::VhostRow<'static> as Row>::COLUMNS,
        defaults: &["name"],
        vhost_scoped: false,
        timeout_line: false,
        title: "Listing vhosts ...",
    },
    Listing {
        verb: "status",
        path: "/counters",
        columns: <rows::CounterRow<'static> as Row>::COLUMNS,
        defaults: &[],
        vhost_scoped: false,
        timeout_line: false,
        title: "Status of node {node} ...",
    },
];

/// The listing of a verb.
pub fn listing(verb: &str) -> Option<&'static Listing> {
    LISTINGS.iter().find(|l| l.verb == verb)
}

/// The listing served at `path`.
pub fn by_path(path: &str) -> Option<&'static Listing> {
    LISTINGS.iter().find(|l| l.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_columns_and_unknown_columns_are_named() {
        for l in LISTINGS {
            assert!(l.select(&[]).is_ok(), "{}", l.verb);
            for d in l.defaults {
                assert!(l.kind(d).is_some(), "{}: default {d}", l.verb);
            }
        }
        let q = listing("list_queues").unwrap();
        assert_eq!(q.select(&[]).unwrap(), ["name", "messages"]);
        assert_eq!(
            q.select(&["consumers", "name"]).unwrap(),
            ["consumers", "name"]
        );
        assert_eq!(
            q.select(&["name", "bogus", "x"]).unwrap_err(),
            ["bogus", "x"]
        );
        assert_eq!(q.title("/", ""), "Listing queues for vhost / ...");
    }

    #[test]
    fn column_names_are_unique() {
        // Column names are unique in every listing.
        for l in LISTINGS {
            for (i, (c, _)) in l.columns.iter().enumerate() {
                assert!(
                    !l.columns[..i].iter().any(|(d, _)| d == c),
                    "{}: {c}",
                    l.verb
                );
            }
        }
    }
}
