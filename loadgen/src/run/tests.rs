//! Unit tests of the confirm window bookkeeping and of rates.

use std::sync::atomic::Ordering;

use super::confirms::{AckState, ConfirmTrack};
use super::summary::rate;

#[test]
fn confirm_window_in_order_and_out_of_order() {
    let t = ConfirmTrack::new(4);
    let mut s = AckState {
        acked: vec![false; t.ts.len()],
    };
    let mut lat = Vec::new();
    for tag in 1..=4 {
        assert!(t.has_room());
        t.ts[(tag & t.mask) as usize].store(100, Ordering::Relaxed);
        t.published.store(tag, Ordering::Release);
    }
    assert!(!t.has_room(), "window of 4 is full");
    // Out of order: 2 then 1 (which releases both).
    assert_eq!(s.settle(&t, 2, false, 150, &mut lat), 1);
    assert_eq!(t.low.load(Ordering::Relaxed), 1);
    assert_eq!(s.settle(&t, 1, false, 160, &mut lat), 1);
    assert_eq!(t.low.load(Ordering::Relaxed), 3);
    assert!(t.has_room());
    // Duplicate and foreign tags settle nothing.
    assert_eq!(s.settle(&t, 2, false, 170, &mut lat), 0);
    assert_eq!(s.settle(&t, 9, false, 170, &mut lat), 0);
    // Multiple covers the rest.
    assert_eq!(s.settle(&t, 4, true, 200, &mut lat), 2);
    assert!(t.all_confirmed());
    assert_eq!(lat, vec![50, 60, 100, 100]);
}

#[test]
fn multiple_ack_skips_already_acked() {
    let t = ConfirmTrack::new(8);
    let mut s = AckState {
        acked: vec![false; t.ts.len()],
    };
    let mut lat = Vec::new();
    t.published.store(5, Ordering::Release);
    assert_eq!(s.settle(&t, 3, false, 10, &mut lat), 1);
    assert_eq!(s.settle(&t, 4, true, 10, &mut lat), 3);
    assert_eq!(t.low.load(Ordering::Relaxed), 5);
    assert_eq!(s.settle(&t, 5, false, 10, &mut lat), 1);
    assert!(t.all_confirmed());
    assert!(
        s.acked.iter().all(|a| !a),
        "marks are cleared as low passes them"
    );
}

#[test]
fn rates() {
    assert_eq!(rate(1000, 0, 1_000_000_000), 1000.0);
    assert_eq!(rate(0, 0, 10), 0.0);
    assert_eq!(rate(5, 10, 10), 0.0);
}
