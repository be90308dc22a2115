//! The stale cache against a reference model: random sequences of time
//! passing, the upstream going up and down, and requests for a few keys,
//! each answered as the model says (the value, whether it is degraded,
//! and how many upstream calls were made).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use buttress_degrade::StaleCache;
use proptest::prelude::*;

const TTL: u64 = 100;
const STALE: u64 = 200;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Down(bool),
    Get(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..350_u64).prop_map(Op::Advance),
        any::<bool>().prop_map(Op::Down),
        (0..3_u8).prop_map(Op::Get),
        (0..3_u8).prop_map(Op::Get),
    ]
}

/// What the model says a request gets.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Fresh(String),
    Stale(String),
    Failed,
}

/// The reference: each key's value and when it was fetched.
#[derive(Default)]
struct Model {
    now: u64,
    down: bool,
    calls: usize,
    entries: HashMap<u8, (String, u64)>,
}

impl Model {
    fn fetch(&mut self, key: u8) -> Option<String> {
        self.calls += 1;
        (!self.down).then(|| format!("{key}#{}", self.calls))
    }

    fn get(&mut self, key: u8) -> Answer {
        let age = self.entries.get(&key).map(|(_, at)| self.now - at);
        match age {
            Some(age) if age < TTL => Answer::Fresh(self.entries[&key].0.clone()),
            Some(age) if age < TTL + STALE => match self.fetch(key) {
                Some(v) => {
                    self.entries.insert(key, (v.clone(), self.now));
                    Answer::Fresh(v)
                }
                None => Answer::Stale(self.entries[&key].0.clone()),
            },
            _ => {
                self.entries.remove(&key);
                match self.fetch(key) {
                    Some(v) => {
                        self.entries.insert(key, (v.clone(), self.now));
                        Answer::Fresh(v)
                    }
                    None => Answer::Failed,
                }
            }
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cache: StaleCache<u8, String> = StaleCache::builder("model")
            .ttl(Duration::from_secs(TTL))
            .stale_if_error(Duration::from_secs(STALE))
            .build()
            .expect("valid");
        let calls = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let mut model = Model::default();
        for op in ops {
            match *op {
                Op::Advance(secs) => {
                    tokio::time::advance(Duration::from_secs(secs)).await;
                    model.now += secs;
                }
                Op::Down(d) => {
                    down.store(d, Ordering::SeqCst);
                    model.down = d;
                }
                Op::Get(key) => {
                    let (calls, down) = (calls.clone(), down.clone());
                    let got = cache
                        .get_or_fetch(key, move || async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            if down.load(Ordering::SeqCst) {
                                Err(std::io::Error::other("down"))
                            } else {
                                Ok(format!("{key}#{n}"))
                            }
                        })
                        .await;
                    let got = match got {
                        Ok(served) if served.is_degraded() => Answer::Stale(served.value),
                        Ok(served) => Answer::Fresh(served.value),
                        Err(_) => Answer::Failed,
                    };
                    prop_assert_eq!(got, model.get(key), "after {:?}", ops);
                }
            }
        }
        prop_assert_eq!(calls.load(Ordering::SeqCst), model.calls);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_cache_answers_as_the_model_does(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
