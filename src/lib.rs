//! pg_chameleon_rs: replicates MySQL and MariaDB into PostgreSQL from inside PostgreSQL.
//!
//! Layout: `core` is pure Rust (no pgrx) and unit-tested with `cargo test --lib`;
//! `catalog` is the SPI access to `sch_chameleon`; `api` holds the SQL functions;
//! `workers` the background workers and data path; `error` the one exit into `ereport`.

use pgrx::prelude::*;

pub mod api;
pub mod catalog;
pub mod core;
pub mod error;
pub mod workers;

::pgrx::pg_module_magic!();

/// Registers the GUCs, and the launcher when loaded by `shared_preload_libraries`.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    workers::launcher::init();
}

extension_sql_file!("../sql/catalogue.sql", name = "catalogue", bootstrap);

/// The SQL functions live in schema `chameleon` (created by the catalogue script, so that
/// it belongs to the extension and DROP EXTENSION removes it).
#[pg_schema]
mod chameleon {}

extension_sql!(
    r#"
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA chameleon FROM PUBLIC;
COMMENT ON FUNCTION chameleon.add_source(text, text, jsonb, jsonb) IS 'Registers a MySQL/MariaDB source: name, mysql://user:password@host:port, {"mysql_schema": "pg_schema"}, options';
COMMENT ON FUNCTION chameleon.alter_source(text, jsonb, jsonb, text) IS 'Merges options into a source (null removes a key), replaces its schema mappings, points it at another server (mysql_url: new host after a failover, rotated password; the source must be stopped); tables no longer selected stop being replicated, newly selected ones are copied; validated';
COMMENT ON FUNCTION chameleon.drop_source(text, boolean) IS 'Stops the workers and removes the source and its stored changes; replicated tables are kept';
COMMENT ON FUNCTION chameleon.enable_replica(text) IS 'Clears the error status of a source after the cause was fixed';
COMMENT ON FUNCTION chameleon.init_replica(text, boolean, boolean) IS 'Initial copy with a consistent snapshot by copy_workers background workers; wait => true blocks and raises on failure; resume => false copies again the tables an interrupted copy finished';
COMMENT ON FUNCTION chameleon.start_replica(text, text) IS 'Starts the read and replay workers; start_position (file:offset or GTID) starts there without init_replica, for data loaded by other means';
COMMENT ON FUNCTION chameleon.sync_tables(text, text[]) IS 'Copies the named tables (MySQL schema.table), or every one not replicating, again at a new consistent point while the source keeps replicating; returns their names, the copy runs after commit';
COMMENT ON FUNCTION chameleon.detach_replica(text) IS 'Ends replication: stops the workers, replays what is stored, sets sequences past their maximum, creates the recorded foreign keys, drops the source; the tables stay as ordinary tables';
COMMENT ON FUNCTION chameleon.run_maintenance(text) IS 'Removes replayed batches past batch_retention by emptying whole log partitions (TRUNCATE); serves every source of the database';
COMMENT ON FUNCTION chameleon.refresh_schema(text, text) IS 'Copies a mapped MySQL schema again as it is now on the source (new tables added, gone ones no longer replicated) while the source keeps replicating; returns the tables, the copy runs after commit';
COMMENT ON FUNCTION chameleon.stop_replica(text) IS 'Stops the read and replay workers (and the launcher no longer restarts them); start_replica resumes exactly where they stopped';
COMMENT ON FUNCTION chameleon.replay(text, integer) IS 'Applies stored batches in this session; returns the row events applied';
COMMENT ON FUNCTION chameleon.verify_tables(text, text[], boolean, boolean) IS 'Compares tables with the source while replication runs, exactly (chunk by chunk at one source position); returns the run id, results in chameleon.verification; repair => true copies a different table again and compares it again';
COMMENT ON FUNCTION chameleon.stop_verification(bigint) IS 'Stops a verification run; its tables not compared yet end failed';
COMMENT ON FUNCTION chameleon.wait_for(text, interval) IS 'Waits until everything the source had written at the call is replayed; false on timeout';
"#,
    name = "finalize_grants",
    finalize
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The primary message of the error `sql` raises.
    fn err_of(sql: &str) -> String {
        report_of(sql).0
    }

    /// The primary message and the hint of the error `sql` raises.
    fn report_of(sql: &str) -> (String, Option<String>) {
        PgTryBuilder::new(|| (Spi::run(sql).map(|_| String::new()).unwrap_or_else(|e| e.to_string()), None))
            .catch_others(|e| {
                let r = match &e {
                    pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => r,
                    pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport,
                };
                (r.message().to_string(), r.hint().map(str::to_string))
            })
            .execute()
    }

    #[pg_test]
    fn catalogue_exists_and_is_private() {
        let v = Spi::get_one::<String>("SELECT t_version FROM sch_chameleon.v_version").unwrap();
        // the catalogue version follows the extension version (upgrade scripts go from one to the next)
        assert_eq!(v.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        let public_can =
            Spi::get_one::<bool>("SELECT has_table_privilege('public', 'sch_chameleon.t_sources', 'SELECT')").unwrap();
        assert_eq!(public_can, Some(false));
        let public_exec = Spi::get_one::<bool>(
            "SELECT has_function_privilege('public', 'chameleon.add_source(text,text,jsonb,jsonb)', 'EXECUTE')",
        )
        .unwrap();
        assert_eq!(public_exec, Some(false));
        let monitor =
            Spi::get_one::<bool>("SELECT has_table_privilege('pg_monitor', 'chameleon.sources', 'SELECT')").unwrap();
        assert_eq!(monitor, Some(true));
        // row contents: operators only
        let monitor_rows =
            Spi::get_one::<bool>("SELECT has_table_privilege('pg_monitor', 'chameleon.discarded_rows', 'SELECT')")
                .unwrap();
        assert_eq!(monitor_rows, Some(false));
        // the verification's states and counts, but not its sample of differing rows
        let column = |c: &str| {
            Spi::get_one::<bool>(&format!(
                "SELECT has_column_privilege('pg_monitor', 'chameleon.verification', '{c}', 'SELECT')"
            ))
            .unwrap()
        };
        assert_eq!(
            (column("state"), column("reason"), column("differing_rows")),
            (Some(true), Some(true), Some(false))
        );
    }

    #[pg_test]
    fn add_source_validates_and_hides_the_password() {
        let id = Spi::get_one::<i32>(
            "SELECT chameleon.add_source('src', 'mysql://rep:s3cret@127.0.0.1:3399', '{\"shop\":\"shop\"}')",
        )
        .unwrap();
        assert!(id.is_some());
        let status = Spi::get_one::<String>("SELECT status FROM chameleon.sources WHERE name = 'src'").unwrap();
        assert_eq!(status.as_deref(), Some("ready"));
        // this cluster does not preload the library: the view says workers will not come back
        let auto = Spi::get_one::<bool>("SELECT auto_restart FROM chameleon.sources WHERE name = 'src'").unwrap();
        assert_eq!(auto, Some(false));
        let shown = Spi::get_one::<String>("SELECT s::text FROM chameleon.sources s").unwrap().unwrap();
        assert!(!shown.contains("s3cret"), "{shown}");

        let e = err_of("SELECT chameleon.add_source('src', 'mysql://u:p@h:1', '{\"a\":\"b\"}')");
        assert!(e.contains("already exists"), "{e}");
        let e = err_of("SELECT chameleon.add_source('s2', 'mysql://u:topsecret@h:99999', '{\"a\":\"b\"}')");
        assert!(e.contains("invalid mysql_url") && !e.contains("topsecret"), "{e}");
        let e = err_of("SELECT chameleon.add_source('s2', 'mysql://u:p@h:1', '{}')");
        assert!(e.contains("schema_mappings"), "{e}");
        let e = err_of("SELECT chameleon.add_source('s2', 'mysql://u:p@h:1', '{\"other\":\"shop\"}')");
        assert!(e.contains("already the target of source \"src\""), "{e}");
        let e = err_of("SELECT chameleon.add_source('s2', 'mysql://u:p@h:1', '{\"x\":\"y\"}', '{\"nope\": 1}')");
        assert!(e.contains("\"nope\""), "{e}");
        let n = Spi::get_one::<i64>("SELECT count(*) FROM sch_chameleon.t_sources").unwrap();
        assert_eq!(n, Some(1));
    }

    #[pg_test]
    fn alter_enable_drop() {
        Spi::run("SELECT chameleon.add_source('a', 'mysql://u:p@h:1', '{\"x\":\"y\"}')").unwrap();
        let merged = Spi::get_one::<pgrx::JsonB>("SELECT chameleon.alter_source('a', '{\"replica_batch_size\": 50}')")
            .unwrap()
            .unwrap();
        assert_eq!(merged.0["replica_batch_size"], 50);
        let e = err_of("SELECT chameleon.alter_source('a', '{\"replica_batch_size\": -5}')");
        assert!(e.contains("replica_batch_size"), "{e}");
        // mappings are validated too; nothing changes on a refusal
        let e = err_of("SELECT chameleon.alter_source('a', schema_mappings => '{\"x\": \"pg_nope\"}')");
        assert!(e.contains("reserved schema"), "{e}");
        Spi::run("SELECT chameleon.alter_source('a', schema_mappings => '{\"x\": \"y\", \"z\": \"w\"}')").unwrap();
        let m =
            Spi::get_one::<pgrx::JsonB>("SELECT jsb_schema_mappings FROM sch_chameleon.t_sources").unwrap().unwrap();
        assert_eq!(m.0["z"], "w");
        let e = err_of("SELECT chameleon.enable_replica('a')");
        assert!(e.contains("not in error"), "{e}");
        let (e, hint) = report_of("SELECT chameleon.start_replica('a')");
        assert!(e.contains("has not been initialised"), "{e}");
        assert!(hint.as_deref().is_some_and(|h| h.contains("init_replica first")), "{hint:?}");
        assert_eq!(Spi::get_one::<i64>("SELECT chameleon.replay('a')").unwrap(), Some(0));
        Spi::run("SELECT chameleon.drop_source('a')").unwrap();
        Spi::run("SELECT chameleon.drop_source('a', if_exists => true)").unwrap();
        let e = err_of("SELECT chameleon.drop_source('a')");
        assert!(e.contains("does not exist"), "{e}");
    }
}

/// This module is required by `cargo pgrx test` invocations.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
