//! The store conformance suite (`duet_core::store::conformance`) against SQLite: a fresh database and
//! media index in a temporary directory for each test.

use duet_core::store::conformance::Backend;
use duet_store_sqlite::{Durability, SqliteMediaIndex, SqliteStore};

fn sqlite() -> Backend<SqliteStore, SqliteMediaIndex> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::default()).unwrap();
    let media = SqliteMediaIndex::open(&dir.path().join("media.db")).unwrap();
    Backend::new(store, media).keeping(dir)
}

duet_core::store_conformance_suite!(sqlite());
