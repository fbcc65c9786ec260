//! The store conformance suite (`duet_core::store::conformance`) against PostgreSQL: a schema of its own
//! for each test in the database at `DUET_TEST_POSTGRES_URL` (skipped when unset; `.ci/run` sets it).

use duet_core::store::conformance::Backend;
use duet_store_postgres::testing::TestDb;
use duet_store_postgres::{PgMediaIndex, PgStore};

async fn postgres() -> Option<Backend<PgStore, PgMediaIndex>> {
    let db = TestDb::create().await?;
    let store = PgStore::open(&db.url()).await.expect("opening the store");
    let media = store.media_index();
    Some(Backend::new(store, media).keeping(db))
}

duet_core::store_conformance_suite!(optional: postgres().await);
