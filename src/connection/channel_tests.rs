//! Unit tests of `connection::channel`: settlements, prefetch, held
//! deliveries, consumers' own timeouts.

use super::*;
use crate::broker::queue::ConsumerKey;
use crate::connection::assembly::tests::{header, publish, MAX_MESSAGE_SIZE};
use crate::connection::delivery::tests::{frames, message};
use crate::protocol::frame::Frame;
use crate::protocol::methods::Method;
use std::sync::Arc;

fn settlement(tag: u64, multiple: bool) -> Settlement {
    Settlement {
        tag,
        multiple,
        requeue: false,
        rejected: false,
    }
}

/// (owner, queue, msg_ids, how) of the Settle envelopes in `actions`.
fn settles(actions: &[ToShard]) -> Vec<(u16, String, Vec<u64>, Settle)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ToShard::Send {
                owner,
                envelope:
                    Envelope::Settle {
                        queue,
                        msg_ids,
                        how,
                    },
            } => Some((*owner, queue.to_string(), msg_ids.clone(), *how)),
            _ => None,
        })
        .collect()
}

// ---- publish assembly (the frame checks are `assembly`'s tests) ----

#[test]
fn the_channel_assembles_its_publishes_and_drops_content_while_closing() {
    let mut ch = Channel::new(1);
    ch.start_publish(publish("rk")).unwrap();
    assert_eq!(ch.check_no_content_expected().unwrap_err().0.code, 505);
    let pending = ch.on_header(header(60, 2), MAX_MESSAGE_SIZE).unwrap();
    assert!(matches!(pending, Assembly::Pending));
    match ch.on_body(Bytes::from_static(b"hi")).unwrap() {
        Assembly::Complete(p) => assert_eq!(p.method.routing_key.as_str(), "rk"),
        other => panic!("expected a whole publish: {other:?}"),
    }
    assert!(ch.check_no_content_expected().is_ok());

    ch.start_publish(publish("rk")).unwrap();
    ch.start_closing();
    let header = ch.on_header(header(60, 1), MAX_MESSAGE_SIZE).unwrap();
    let body = ch.on_body(Bytes::from_static(b"x")).unwrap();
    assert!(matches!(
        (header, body),
        (Assembly::Dropped, Assembly::Dropped)
    ));
}

// ---- confirms ----

/// The delivery tags of the basic.ack (multiple) frames `write_confirms` queued.
fn acks(ch: &mut Channel) -> Vec<u64> {
    let mut out = Outbound::new(131_072);
    ch.write_confirms(&mut out);
    frames(&mut out, 131_072)
        .into_iter()
        .map(|f| match f {
            Frame::Method {
                channel: 4,
                method: Method::BasicAck(a),
            } if a.multiple => a.delivery_tag,
            other => panic!("only basic.ack on channel 4: {other:?}"),
        })
        .collect()
}

#[test]
fn publishes_are_numbered_from_1_once_confirm_select_is_seen() {
    let mut ch = Channel::new(4);
    assert_eq!(
        ch.confirm_publish(1),
        None,
        "no numbers before confirm.select"
    );
    assert!(!ch.confirmed(&[1], true));
    assert_eq!(acks(&mut ch), Vec::<u64>::new());

    ch.select_confirms();
    assert!(ch.confirming());
    let seqs: Vec<Option<u64>> = [0, 1, 0].iter().map(|&c| ch.confirm_publish(c)).collect();
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3)]);
    // 1 reached no queue: acked at once; 3 waits behind 2.
    assert_eq!(acks(&mut ch), vec![1]);
    // A second confirm.select changes nothing.
    ch.select_confirms();
    assert_eq!(ch.confirm_publish(0), Some(4));
    assert!(ch.confirmed(&[2], true));
    assert_eq!(acks(&mut ch), vec![4]);
    assert_eq!(acks(&mut ch), Vec::<u64>::new(), "nothing twice");
}

// ---- deliveries and settlements ----

fn delivery(tag: &str, msg_id: u64, no_ack: bool) -> Delivery {
    Delivery {
        consumer: ConsumerKey {
            shard: 0,
            conn: 1,
            channel: 1,
            tag: ShortStr::from(tag),
        },
        no_ack,
        msg_id,
        redelivered: false,
        message: Arc::new(message(b"hi")),
        stored: None,
        consumer_timeout: None,
    }
}

fn consumer_of_q() -> ChannelConsumer {
    ChannelConsumer {
        queue: QueueName::default_vhost("q"),
        owner: 0,
        no_ack: false,
        timeout: None,
    }
}

/// A channel with consumer "c" on queue "q" and a global prefetch.
fn consuming(prefetch: u16) -> Channel {
    let mut ch = Channel::new(1);
    ch.add_consumer(ShortStr::from("c"), consumer_of_q())
        .unwrap();
    let global = BasicQos {
        prefetch_size: 0,
        prefetch_count: prefetch,
        global: true,
    };
    ch.qos(&global).unwrap();
    ch
}

/// Hands the channel a delivery of queue "q": what became of it.
fn hand(ch: &mut Channel, out: &mut Outbound, tag: &str, id: u64, no_ack: bool) -> &'static str {
    match ch.deliver(
        out,
        QueueName::default_vhost("q"),
        0,
        delivery(tag, id, no_ack),
    ) {
        Handed::Written => "written",
        Handed::Held => "held",
        Handed::Bounce(ToShard::Bounce { .. }) => "bounced",
        Handed::Bounce(other) => panic!("{other:?}"),
    }
}

/// The delivery tags of the basic.deliver frames queued on `out`.
fn delivered_tags(out: &mut Outbound) -> Vec<u64> {
    frames(out, 131_072)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Method {
                method: Method::BasicDeliver(d),
                ..
            } => Some(d.delivery_tag),
            _ => None,
        })
        .collect()
}

#[test]
fn deliveries_get_tags_and_unknown_consumers_bounce() {
    let mut ch = consuming(0);
    let mut out = Outbound::new(131_072);
    assert_eq!(hand(&mut ch, &mut out, "c", 7, false), "written");
    assert_eq!(hand(&mut ch, &mut out, "c", 8, true), "written");
    assert_eq!(delivered_tags(&mut out), vec![1, 2]);
    assert_eq!(ch.unacked_count(), 1, "the no-ack delivery is not tracked");
    assert_eq!(hand(&mut ch, &mut out, "gone", 9, false), "bounced");
    let reused = ch.add_consumer(ShortStr::from("c"), consumer_of_q());
    assert_eq!(reused.unwrap_err().code, 530);
}

#[test]
fn a_consumers_own_timeout_wins_over_the_one_its_deliveries_carry() {
    let mut ch = Channel::new(1);
    let mut out = Outbound::new(131_072);
    let own = ChannelConsumer {
        timeout: Some(50),
        ..consumer_of_q()
    };
    ch.add_consumer(ShortStr::from("own"), own).unwrap();
    ch.add_consumer(ShortStr::from("queues"), consumer_of_q())
        .unwrap();
    let queue = QueueName::default_vhost("q");
    // The queue's (or the broker's) timeout, carried by the delivery.
    let carried = |tag: &str, id: u64| Delivery {
        consumer_timeout: Some(600_000),
        ..delivery(tag, id, false)
    };
    assert!(matches!(
        ch.deliver(&mut out, queue.clone(), 0, carried("queues", 1)),
        Handed::Written
    ));
    let now = crate::shard::stats::coarse_now_ms();
    assert_eq!(ch.consumer_timed_out(now + 1000), None, "10 min: not yet");
    ch.settle(settlement(1, false)).unwrap();
    // The consumer's own 50 ms, larger or smaller than the queue's.
    assert!(matches!(
        ch.deliver(&mut out, queue.clone(), 0, carried("own", 2)),
        Handed::Written
    ));
    assert_eq!(ch.consumer_timed_out(now + 1000), Some(50));
    ch.settle(settlement(2, false)).unwrap();
    // Also when its delivery carries none.
    assert!(matches!(
        ch.deliver(&mut out, queue, 0, delivery("own", 3, false)),
        Handed::Written
    ));
    assert_eq!(ch.consumer_timed_out(now + 1000), Some(50));
}

#[test]
fn a_global_prefetch_holds_deliveries_until_acks_make_room() {
    let mut ch = consuming(1);
    let mut out = Outbound::new(131_072);
    assert_eq!(hand(&mut ch, &mut out, "c", 1, false), "written");
    assert_eq!(hand(&mut ch, &mut out, "c", 2, false), "held");
    assert!(!ch.release_held(&mut out), "no room yet");
    assert_eq!(delivered_tags(&mut out), vec![1]);
    let acts = ch.settle(settlement(1, false)).unwrap();
    let removed = vec![(0, "q".into(), vec![1], Settle::Remove)];
    assert_eq!(settles(&acts), removed);
    assert!(ch.release_held(&mut out));
    assert_eq!(delivered_tags(&mut out), vec![2]);
}

#[test]
fn release_drops_consumers_then_requeues_then_bounces_held() {
    let mut ch = consuming(1);
    let mut out = Outbound::new(131_072);
    hand(&mut ch, &mut out, "c", 1, false);
    hand(&mut ch, &mut out, "c", 2, false);
    ch.start_publish(publish("rk")).unwrap();
    let acts = ch.release(ConnKey { shard: 0, id: 1 });
    assert_eq!(acts.len(), 3, "{acts:?}");
    assert!(matches!(
        &acts[0],
        ToShard::Send {
            owner: 0,
            envelope: Envelope::ChannelGone { channel: 1, .. }
        }
    ));
    assert_eq!(
        settles(&acts[1..2]),
        vec![(0, "q".into(), vec![1], Settle::Requeue)]
    );
    assert!(matches!(&acts[2], ToShard::Bounce { delivery, .. } if delivery.msg_id == 2));
    assert_eq!(ch.consumer_count(), 0);
    assert!(ch.check_no_content_expected().is_ok());
}

#[test]
fn an_empty_queue_name_is_the_last_declared_queue() {
    let mut ch = Channel::new(1);
    assert_eq!(ch.resolve_queue(ShortStr::from("")).as_str(), "");
    ch.declared_queue(ShortStr::from("amq.gen-1"));
    assert_eq!(ch.resolve_queue(ShortStr::from("")).as_str(), "amq.gen-1");
    assert_eq!(ch.resolve_queue(ShortStr::from("other")).as_str(), "other");
}
