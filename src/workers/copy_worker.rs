//! A copy worker: one of the `copy_workers` background workers of an `init_replica`.
//!
//! 1. opens its consistent snapshot on the source while the coordinator holds the global read
//!    lock, and says `ready`;
//! 2. waits for the coordinator to publish the snapshot's coordinates (`go`), or to say that
//!    each table takes its own consistent point (no lock privilege);
//! 3. claims tables one at a time, largest first, and copies each in its own transaction:
//!    re-reads its definition, (re)creates the PostgreSQL table, COPYs the rows, builds keys
//!    and indexes after the data, records the table's consistent point. A finished table is
//!    committed, so an interrupted copy resumes without copying it again.
//!
//! A table whose copy fails is marked `failed` with its error; the worker stops (its
//! snapshot went with the failed COPY) and the other workers go on with the other tables.

use crate::catalog::{self, ClaimedTable};
use crate::core::discovery::{self, TableDefinition};
use crate::core::mysql_source::{self, Flavor};
use crate::core::position::BinlogPosition;
use crate::core::schema;
use crate::core::source_url::SourceUrl;
use crate::core::sql::{self, quote_ident, ColumnOptions, PgColumn};
use crate::core::types::map_column;
use crate::error::{ChameleonError, Result};
use crate::workers::copy::{self, Mode};
use crate::workers::txn::{backend_sleep, in_transaction, shutdown_requested};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_copy_main(arg: pg_sys::Datum) {
    super::attach_and_connect();
    let (source_id, slot) = super::copy_worker_arg(arg);
    super::set_application_name(&format!("pg_chameleon_rs copy {slot}"));
    if let Err(e) = run(source_id, slot) {
        let msg = e.to_string();
        let _ = in_transaction(|| catalog::set_copy_slot(source_id, slot, "failed", None, Some(&msg)));
        log!("pg_chameleon_rs: copy worker {slot} of source id {source_id} stopped: {msg}");
    }
}

/// How this worker's tables get their consistent point.
enum Points {
    /// Every table at the coordinates of the snapshot opened under the global read lock.
    Snapshot(BinlogPosition),
    /// Each table at its own point (the user may not take the global read lock).
    PerTable(mysql::Conn),
}

fn run(source_id: i32, slot: i32) -> Result<()> {
    let me = unsafe { pg_sys::MyProcPid };
    let source = in_transaction(|| {
        catalog::set_copy_slot(source_id, slot, "starting", Some(me), None)?;
        catalog::source_by_id(source_id)
    })?;
    let options = source.options()?;
    let url = SourceUrl::parse(&source.url)?;
    let connect_timeout = Duration::from_secs(options.connect_timeout as u64);
    let mut conn = mysql_source::connect(&url, connect_timeout, None)?;
    let flavor = mysql_source::check_server(&mut conn)?.flavor;
    mysql_source::prepare_copy_session(&mut conn)?;
    mysql_source::open_snapshot(&mut conn)?;
    in_transaction(|| catalog::set_copy_slot(source_id, slot, "ready", None, None))?;

    // The coordinator holds the lock until every worker is ready; then it says go.
    let deadline = Instant::now() + Duration::from_secs(options.lock_timeout as u64 + 600);
    let go = loop {
        if shutdown_requested() {
            return Err(ChameleonError::State("stopped before the copy started".into()));
        }
        let mine = in_transaction(|| catalog::copy_slots(source_id))?.into_iter().find(|s| s.slot == slot);
        match mine {
            Some(s) if s.state == "go" => break s,
            Some(s) if s.state == "ready" || s.state == "starting" => {}
            _ => return Ok(()), // aborted, or a newer copy replaced the slots
        }
        if Instant::now() > deadline {
            return Err(ChameleonError::State("the coordinator never released the copy".into()));
        }
        backend_sleep(Duration::from_millis(10));
    };
    let mut points = match (go.per_table_points, go.point) {
        (false, Some(p)) => Points::Snapshot(p),
        _ => Points::PerTable(mysql_source::connect(&url, connect_timeout, None)?),
    };

    let mut conn = Some(conn);
    loop {
        if shutdown_requested() {
            return Err(ChameleonError::State("initial copy interrupted by shutdown".into()));
        }
        let Some(claimed) = in_transaction(|| catalog::claim_table(source_id, slot))? else { break };
        let c = conn.take().ok_or_else(|| ChameleonError::State("the copy connection was lost".into()))?;
        let what = format!("table {}.{}", claimed.mysql_schema, claimed.mysql_table);
        match copy_claimed(source_id, &claimed, c, &mut points, flavor, &options) {
            Ok(c) => conn = Some(c),
            Err(e) => {
                let e = e.context(&what);
                let msg = e.to_string();
                let _ = in_transaction(|| {
                    catalog::table_copy_failed(claimed.id, &msg)?;
                    catalog::record_error(source_id, Some(claimed.id), None, None, Some(&e.sqlstate()), &format!("initial copy failed: {msg}"))
                });
                return Err(e);
            }
        }
    }
    in_transaction(|| catalog::set_copy_slot(source_id, slot, "done", None, None))
}

/// Takes the table's consistent point (when per table), then copies it in one transaction.
fn copy_claimed(
    source_id: i32,
    claimed: &ClaimedTable,
    mut conn: mysql::Conn,
    points: &mut Points,
    flavor: Flavor,
    options: &crate::core::options::SourceOptions,
) -> Result<mysql::Conn> {
    let point = match points {
        Points::Snapshot(p) => p.clone(),
        Points::PerTable(lock) => {
            mysql_source::table_snapshot(&mut conn, lock, flavor, &claimed.mysql_schema, &claimed.mysql_table)?.0
        }
    };
    let postgis = in_transaction(catalog::postgis_schema)?;
    let def = discovery::describe(&mut conn, options, &claimed.mysql_schema, &claimed.mysql_table, &claimed.pg_schema, postgis.as_deref())?;
    let memory = options.copy_max_memory * 1024 * 1024;
    let mut conn = Some(conn);
    let first = in_transaction(|| copy_table(source_id, claimed.id, &def, &mut conn, &point, flavor, memory, Mode::Stream));
    match first {
        Ok(()) => {}
        // PostgreSQL refused a row: copy the table again on the same snapshot (the same
        // consistent point), isolating the rows it refuses
        Err(e) if copy::refused_data(&e) && conn.is_some() && !shutdown_requested() => {
            log!(
                "pg_chameleon_rs: PostgreSQL refused a row of {}.{} ({e}); copying the table again with each refused row set aside",
                claimed.mysql_schema,
                claimed.mysql_table
            );
            in_transaction(|| copy_table(source_id, claimed.id, &def, &mut conn, &point, flavor, memory, Mode::Isolate))?;
        }
        Err(e) => return Err(e),
    }
    conn.ok_or_else(|| ChameleonError::State("the copy connection was lost".into()))
}

#[allow(clippy::too_many_arguments)]
/// Creates the PostgreSQL table, copies the rows, then keys, indexes, identity, comments and
/// the consistent point. Runs in the caller's transaction.
fn copy_table(
    source_id: i32,
    table_id: i32,
    t: &TableDefinition,
    conn: &mut Option<mysql::Conn>,
    point: &BinlogPosition,
    flavor: Flavor,
    max_memory: usize,
    mode: Mode,
) -> Result<()> {
    let replicate = t.problem.is_none();
    // A finished table must survive a crash even with synchronous_commit = off: resuming
    // trusts the catalogue (one WAL flush per table).
    catalog::execute("SET LOCAL synchronous_commit = on")?;
    // the definition read now is the one copied: the catalogue follows it
    catalog::register_definition(source_id, t)?;
    if !t.copyable() {
        return Ok(());
    }
    catalog::set_table_state(table_id, "copying")?;
    let mapped = t
        .columns
        .iter()
        .map(|c| map_column(c, &t.pg_schema, &t.mysql_table))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let pg_cols: Vec<PgColumn> = t
        .columns
        .iter()
        .zip(&mapped)
        .map(|(c, m)| PgColumn { name: c.name.clone(), pg_type: m.pg_type.clone(), nullable: c.nullable })
        .collect();
    let qualified = sql::qualified(&t.pg_schema, &t.mysql_table);
    // foreign keys of other tables that reference this one (foreign_keys = create) go first:
    // they are created again after the copy
    catalog::drop_foreign_keys_referencing(&qualified)?;
    catalog::execute(&format!("DROP TABLE IF EXISTS {qualified}"))?;
    for (name, labels) in mapped.iter().filter_map(|m| m.create_enum.as_ref()) {
        let type_name = sql::qualified(&t.pg_schema, name);
        catalog::execute(&format!("DROP TYPE IF EXISTS {type_name}"))?;
        catalog::execute(&sql::create_enum(&t.pg_schema, name, labels))?;
    }
    let mut notes = Vec::new();
    let opts: Vec<ColumnOptions> = t
        .columns
        .iter()
        .zip(&mapped)
        .zip(&t.extras)
        .map(|((c, m), x)| ColumnOptions {
            default: schema::default_clause(flavor, c, m, x).unwrap_or_else(|note| {
                notes.push(note);
                None
            }),
            identity: schema::identity(c, m, x),
        })
        .collect();
    catalog::execute(&sql::create_table_with(&t.pg_schema, &t.mysql_table, &pg_cols, &opts))?;
    if !t.comment.is_empty() {
        catalog::execute(&format!("COMMENT ON TABLE {qualified} IS {}", sql::quote_literal(&t.comment)))?;
    }
    for (c, x) in t.columns.iter().zip(&t.extras) {
        if !x.comment.is_empty() {
            catalog::execute(&format!(
                "COMMENT ON COLUMN {qualified}.{} IS {}",
                quote_ident(&c.name),
                sql::quote_literal(&x.comment)
            ))?;
        }
    }
    let relid = Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regclass::oid", &[qualified.as_str().into()])?
        .ok_or_else(|| ChameleonError::Catalog(format!("table {qualified} vanished after creation")))?;
    let started = Instant::now();
    let outcome = copy::copy_table(conn, &t.mysql_schema, &t.mysql_table, &t.columns, &mapped, relid, max_memory, mode)?;
    let copied_in = started.elapsed();
    for d in &outcome.discards {
        catalog::record_discarded(source_id, table_id, None, &d.raw, &d.reason)?;
    }
    // keys and indexes after the data
    if !t.key.is_empty() {
        catalog::execute(&sql::add_primary_key(&t.pg_schema, &t.mysql_table, &t.key))?;
    }
    let key_index = t.indexes.iter().find(|i| i.columns == t.key && i.unique).map(|i| i.name.clone());
    let secondary: Vec<_> = t.indexes.iter().filter(|i| Some(&i.name) != key_index.as_ref()).cloned().collect();
    let postgis = t.columns.iter().any(|c| c.postgis.is_some());
    let (index_ddl, skipped) = schema::index_statements(&t.pg_schema, &t.mysql_table, &secondary, postgis);
    for ddl in &index_ddl {
        catalog::execute(ddl)?;
    }
    notes.extend(skipped);
    for (c, o) in t.columns.iter().zip(&opts) {
        if o.identity {
            // the sequence continues after the copied maximum
            catalog::execute(&format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), greatest(max({}), 1), max({}) IS NOT NULL) FROM {qualified}",
                sql::quote_literal(&qualified),
                sql::quote_literal(&c.name),
                quote_ident(&c.name),
                quote_ident(&c.name)
            ))?;
        }
    }
    log!(
        "pg_chameleon_rs: copied {}.{}: {} rows in {} ms, keys and indexes in {} ms (consistent point {point})",
        t.mysql_schema,
        t.mysql_table,
        outcome.rows,
        copied_in.as_millis(),
        (started.elapsed() - copied_in).as_millis()
    );
    catalog::set_table_notes(table_id, &notes)?;
    catalog::record_foreign_keys(table_id, &t.foreign_keys)?;
    catalog::set_table_copied(table_id, outcome.rows as i64, outcome.discards.len() as i64, point, replicate)?;
    Ok(())
}
