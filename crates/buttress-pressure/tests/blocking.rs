//! `Gauge::wait_flowing_blocking`: the blocking wait for threads outside
//! an async runtime.

use std::time::Duration;

use buttress_pressure::{Gauge, Priority, Watermarks};

fn gauge() -> Gauge {
    Gauge::builder("blocking", Watermarks::new(100, 50).expect("marks"))
        .low_priority(Watermarks::new(60, 30).expect("marks"))
        .build()
        .expect("gauge")
}

#[test]
fn a_flowing_band_answers_at_once_and_a_paused_one_times_out() {
    let g = gauge();
    g.set(70); // low priority paused, normal flowing
    assert!(g.wait_flowing_blocking(Priority::Normal, Some(Duration::ZERO)));
    assert!(!g.wait_flowing_blocking(Priority::Low, Some(Duration::ZERO)));
}

#[test]
fn a_waiting_thread_goes_on_once_another_drains_the_level() {
    let g = gauge();
    g.set(150);
    let waiter = {
        let g = g.clone();
        std::thread::spawn(move || g.wait_flowing_blocking(Priority::Low, None))
    };
    g.set(0);
    assert!(waiter.join().unwrap());
}
