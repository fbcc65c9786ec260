//! A throwaway schema per test, in the database at `DUET_TEST_POSTGRES_URL`: each test's store sees only
//! its own tables, runs don't collide, and the schema is dropped when the test ends. A schema left by a
//! process that died (named after its pid) is dropped by the next run.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

/// The variable naming the test database; PostgreSQL tests are skipped when it is unset.
pub const URL_VAR: &str = "DUET_TEST_POSTGRES_URL";

/// A schema of its own in the test database, dropped with this value.
pub struct TestDb {
    base: String,
    schema: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// A new empty schema, or `None` when [`URL_VAR`] is unset (the caller skips its test). Panics when the
    /// database cannot be reached: a test run that asked for PostgreSQL must not pass without it.
    pub async fn create() -> Option<TestDb> {
        let base = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty())?;
        let pid = std::process::id();
        let schema = format!("duet_test_{pid}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let client = connect(&base).await;
        if NEXT.load(Ordering::Relaxed) == 1 {
            drop_stale(&client).await;
        }
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("creating a test schema");
        Some(TestDb { base, schema })
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The database's URL with this schema as the search path, for `PgStore::open` or `duet serve --store`.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.schema)
    }

    /// [`TestDb::url`] with another `host:port` (a proxy in front of the database, to cut the link).
    pub fn url_through(&self, host_port: &str) -> String {
        let url = self.url();
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        format!("{scheme}://{user}{host_port}{path}")
    }

    /// The connection settings of [`TestDb::url`].
    pub fn config(&self) -> tokio_postgres::Config {
        tokio_postgres::Config::from_str(&self.url()).expect("the test database's URL")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future: a thread of its own does.
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async move {
                let client = connect(&base).await;
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            });
        });
        let _ = dropped.join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database at {url} ({URL_VAR}): {e}"));
    tokio::spawn(connection);
    client
}

/// Drops the test schemas of processes that no longer run.
async fn drop_stale(client: &tokio_postgres::Client) {
    let Ok(rows) = client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'duet\\_test\\_%'", &[]).await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
        }
    }
}
