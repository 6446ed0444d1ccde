//! RabbitMQ's consumer timeout (`consumer_timeout`, the queue argument
//! `x-consumer-timeout` and the policy key `consumer-timeout`): a channel
//! whose oldest unacknowledged delivery has waited longer than its timeout
//! is closed with 406 PRECONDITION_FAILED, and its unacked messages go
//! back to their queues. One task per connection looks at each channel's
//! oldest delivery every `CHECK_INTERVAL` (RabbitMQ's channel does so on
//! its tick, every `channel_tick_interval`, 60 s by default), once the
//! connection has handed out a delivery that has a timeout
//! (`ConnShared::timed_delivery`), or a consumer with a timeout of its
//! own was added; before that it does not wake. The timeout of a delivery
//! is its consumer's `x-consumer-timeout` (a basic.consume argument,
//! RabbitMQ 4.x's, applied by `Channel::deliver`), else its queue's (the
//! lower of argument and policy, sent with the delivery by the queue's
//! owner), else `--consumer-timeout`; none by default.

use crate::broker::error::AmqpError;
use crate::connection::handlers::close_with_error;
use crate::connection::ConnShared;
use crate::shard::Shard;
use std::rc::Rc;
use std::time::Duration;

/// How often a connection looks for timed-out deliveries.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// RabbitMQ's text (`rabbit_channel:handle_consumer_timed_out/3`).
pub fn timed_out(channel: u16, timeout_ms: u64) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "delivery acknowledgement on channel {channel} timed out. Timeout value used: \
         {timeout_ms} ms. This timeout value can be configured, see consumers doc guide to \
         learn more"
    ))
}

/// Closes the channels of `conn` whose oldest unacked delivery is older
/// than its timeout, until the connection closes.
pub(super) async fn watch(shard: Rc<Shard>, conn: Rc<ConnShared>) {
    // Nothing to watch until a delivery with a timeout is handed out.
    conn.timed_delivery.wait().await;
    loop {
        glommio::timer::sleep(CHECK_INTERVAL).await;
        if conn.closing.get() {
            return;
        }
        let now = crate::shard::stats::coarse_now_ms();
        // A channel whose method is being handled (its handler may await a
        // reply) is left to the next check.
        let busy = conn.handling.get();
        let expired: Vec<(u16, u64)> = conn
            .channels
            .borrow()
            .iter()
            .filter(|(id, _)| busy != Some(**id))
            .filter_map(|(id, ch)| ch.consumer_timed_out(now).map(|t| (*id, t)))
            .collect();
        if expired.is_empty() {
            continue;
        }
        for (channel, timeout) in expired {
            tracing::warn!(
                shard = shard.id,
                peer = %conn.peer,
                conn = conn.key.id,
                "consumer on channel {channel} has timed out waiting for delivery \
                 acknowledgement. Timeout used: {timeout} ms"
            );
            // As RabbitMQ's channel exception: no class or method caused it.
            close_with_error(&shard, &conn, channel, &timed_out(channel, timeout), 0, 0);
        }
        shard.pump();
    }
}
