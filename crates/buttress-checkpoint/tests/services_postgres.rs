//! `PgStore` against the PostgreSQL at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Without one these tests
//! print why and pass, unless `BUTTRESS_REQUIRE_SERVICES=1` (as in CI),
//! which makes that a failure.
#![cfg(feature = "postgres")]

use std::error::Error;

use buttress_checkpoint::{
    Checkpointer, FrameError, Json, LoadError, OpenError, PgStore, Policy, SaveError, SkipReason,
    Store, load, save,
};
use serde::{Deserialize, Serialize};

const TABLE: &str = "buttress_checkpoint_tests";

use buttress_test_support::errors::chain;
use buttress_test_support::services;

fn url() -> String {
    services::database_url()
}

async fn store(name: &str) -> Option<PgStore> {
    let url = url();
    match PgStore::connect(&url, TABLE, name).await {
        Ok(store) => Some(store),
        Err(e) => {
            // The client's error, below ours, says why.
            services::unavailable("PostgreSQL", "DATABASE_URL", &url, chain(&e));
            None
        }
    }
}

/// A name no other run uses.
fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), fastrand::u64(..))
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct State {
    cursor: u64,
}

#[tokio::test]
async fn saves_load_back_and_never_go_backwards() {
    let Some(store) = store(&unique("basic")).await else {
        return;
    };
    assert_eq!(store.latest_seq().await.unwrap(), 0);
    assert!(load::<_, _, State>(&store, &Json).await.unwrap().is_none());
    save(&store, &Json, 1, &State { cursor: 10 }).await.unwrap();
    save(&store, &Json, 3, &State { cursor: 30 }).await.unwrap();
    let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (3, State { cursor: 30 }));
    // An older or equal sequence is refused and changes nothing.
    for seq in [2, 3] {
        match save(&store, &Json, seq, &State { cursor: 0 }).await {
            Err(SaveError::Stale {
                current: 3,
                attempted,
            }) => assert_eq!(attempted, seq),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        load::<_, _, State>(&store, &Json)
            .await
            .unwrap()
            .unwrap()
            .state
            .cursor,
        30
    );
}

#[tokio::test]
async fn two_workers_on_one_name_cannot_roll_the_state_back() {
    let name = unique("workers");
    let (Some(a), Some(b)) = (store(&name).await, store(&name).await) else {
        return;
    };
    let mut first = Checkpointer::new(a, Policy::every_events(1));
    assert_eq!(first.resume::<State>().await.unwrap(), None);
    first.save(&State { cursor: 5 }).await.unwrap();
    // The second worker takes over, resumes, and moves on.
    let mut second = Checkpointer::new(b, Policy::every_events(1));
    assert_eq!(
        second.resume::<State>().await.unwrap(),
        Some(State { cursor: 5 })
    );
    second.save(&State { cursor: 9 }).await.unwrap();
    // The first, slow worker wakes up and tries to save its older view.
    assert!(matches!(
        first.save(&State { cursor: 6 }).await,
        Err(SaveError::Stale { .. })
    ));
    let mut third = Checkpointer::new(store(&name).await.unwrap(), Policy::every_events(1));
    assert_eq!(
        third.resume::<State>().await.unwrap(),
        Some(State { cursor: 9 })
    );
}

#[tokio::test]
async fn a_damaged_row_is_a_typed_error() {
    let name = unique("damaged");
    let Some(store) = store(&name).await else {
        return;
    };
    save(&store, &Json, 1, &State { cursor: 1 }).await.unwrap();
    // A frame cut short, stored as generation 2 (as a torn write would).
    store.put(2, vec![7; 20]).await.unwrap();
    match load::<_, _, State>(&store, &Json).await {
        Err(LoadError::NoValid { skipped }) => {
            assert!(matches!(
                skipped[0].reason,
                SkipReason::Corrupt(FrameError::TooShort { len: 20 })
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_table_names_are_refused() {
    assert!(
        PgStore::connect(&url(), "x; DROP TABLE y", "n")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn database_errors_are_typed_with_their_sqlstate() {
    // Only where a server answers at all.
    let Some(_) = store(&unique("probe")).await else {
        return;
    };
    let url = url();
    let (base, _) = url.rsplit_once('/').expect("a database in the URL");
    let missing = format!("{base}/buttress_no_such_database");
    let err = match PgStore::connect(&missing, TABLE, "n").await {
        Err(e) => e,
        Ok(_) => panic!("connected to a database that does not exist"),
    };
    let OpenError::Backend(backend) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        backend.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
    );
    assert!(backend.postgres().is_some());
    // The client's error is the source, not repeated in the message.
    assert!(
        err.source()
            .is_some_and(|s| s.is::<tokio_postgres::Error>())
    );
    let text = err.to_string();
    assert!(!text.contains("buttress_no_such_database"), "{text}");
}

#[tokio::test]
async fn a_sequence_above_bigint_is_its_own_error() {
    let Some(store) = store(&unique("bigint")).await else {
        return;
    };
    match store.put(u64::MAX, vec![0; 36]).await {
        Err(SaveError::SequenceTooLarge { seq, max }) => {
            assert_eq!((seq, max), (u64::MAX, i64::MAX as u64));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.latest_seq().await.unwrap(), 0);
}
