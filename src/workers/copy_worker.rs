//! A copy worker: one of the `copy_workers` background workers of an `init_replica`.
//!
//! 1. connects to the source and says `connected`; once the coordinator holds the global read
//!    lock (`open`: every worker is connected by then, so no connect happens under the lock)
//!    opens its consistent snapshot and says `ready`;
//! 2. waits for the coordinator to publish the snapshot's coordinates (`go`), or to say that
//!    each table takes its own consistent point (no lock privilege);
//! 3. claims tables one at a time, largest first, and copies each in its own transaction:
//!    re-reads its definition, (re)creates the PostgreSQL table, COPYs the rows, builds keys
//!    and indexes after the data, records the table's consistent point. A finished table is
//!    committed, so an interrupted copy resumes without copying it again;
//! 4. a large table (`copy_split_rows`, a single-column integer key, one shared snapshot) is
//!    instead created and cut into key ranges that every worker copies, each range in its own
//!    transaction; the worker that commits the last range builds the keys and indexes. Ranges
//!    come before new tables, and a worker with nothing to claim waits while others work;
//! 5. if PostgreSQL refuses a row, the table (or range) is copied again on the same snapshot
//!    with the refused rows set aside in `discarded_rows` (`copy::Mode::Isolate`).
//!
//! A table whose copy fails otherwise is marked `failed` with its error; the worker stops and
//! the other workers go on with the other tables.
//!
//! A table's copy is work the worker may abandon (`txn::abandonable`): SIGTERM (`stop_replica`,
//! `pg_terminate_backend`, a fast shutdown) ends the worker at PostgreSQL's next interrupt
//! check, also while it waits on a lock, streams a large table or builds its indexes; the
//! table's transaction rolls back and the table is copied again whole when the copy resumes.

use crate::catalog::{self, ClaimedRange, ClaimedTable};
use crate::core::discovery::{self, TableDefinition};
use crate::core::endpoint::Endpoint;
use crate::core::mysql_source::{self, Flavor};
use crate::core::options::SourceOptions;
use crate::core::position::BinlogPosition;
use crate::core::ranges;
use crate::core::schema;
use crate::core::sql::{self, quote_ident, ColumnOptions, PgColumn};
use crate::core::state::{CopySlotState, SourceStatus, TableState};
use crate::core::types::{map_column, MappedType};
use crate::error::{ChameleonError, Result};
use crate::workers::copy::{self, Mode};
use crate::workers::replay::Replayer;
use crate::workers::txn::{abandonable, backend_sleep, build_index, in_transaction, shutdown_requested};
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
        let _ = in_transaction(|| catalog::set_copy_slot(source_id, slot, CopySlotState::Failed, None, Some(&msg)));
        log!("pg_chameleon_rs: copy worker {slot} of source id {source_id} stopped: {msg}");
    }
}

/// The error a copy ends with when a DDL statement changed its table on the source after the
/// copy's snapshot: the copy is rolled back, and the table copied again at a later snapshot.
const STALE_COPY: &str = "changed on the source by a DDL statement during its copy: copied again at a new snapshot";

/// Whether `e` ends a copy that a DDL statement made void: `STALE_COPY`, or the source's own
/// refusal to read a table under a snapshot older than its definition (MariaDB and MySQL
/// error 1412, "Table definition has changed").
fn void_copy(e: &ChameleonError) -> bool {
    e.message().starts_with(STALE_COPY) || e.message().contains("MySQL error 1412 ")
}

/// Whether a DDL statement changed the table after `snapshot` (replay records the statement's
/// position as the table's point and sets it pending): a copy at that snapshot would be void.
fn changed_after(table_id: i32, snapshot: &BinlogPosition) -> Result<bool> {
    let t = in_transaction(|| catalog::table_by_id(table_id))?;
    Ok(t.point.as_ref().is_some_and(|d| d >= snapshot))
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
        catalog::set_copy_slot(source_id, slot, CopySlotState::Starting, Some(me), None)?;
        catalog::source_by_id(source_id)
    })?;
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let mut conn = mysql_source::connect(&endpoint, None)?;
    let flavor = mysql_source::check_server(&mut conn)?.flavor;
    mysql_source::prepare_copy_session(&mut conn)?;
    in_transaction(|| catalog::set_copy_slot(source_id, slot, CopySlotState::Connected, None, None))?;

    // Once every worker is connected the coordinator takes the global read lock and says
    // open (waking this worker's latch); the snapshot opened now is the one under the lock.
    let deadline = Instant::now() + Duration::from_secs(options.lock_timeout as u64 + 600);
    if wait_for_slot(source_id, slot, CopySlotState::Open, deadline, Duration::from_millis(1))?.is_none() {
        return Ok(()); // aborted, or a newer copy replaced the slots
    }
    mysql_source::open_snapshot(&mut conn)?;
    in_transaction(|| catalog::set_copy_slot(source_id, slot, CopySlotState::Ready, None, None))?;
    // then it reads the coordinates, releases the lock and says go
    let Some(go) = wait_for_slot(source_id, slot, CopySlotState::Go, deadline, Duration::from_millis(10))? else {
        return Ok(());
    };
    let mut points = match (go.per_table_points, go.point) {
        (false, Some(p)) => Points::Snapshot(p),
        _ => Points::PerTable(mysql_source::connect(&endpoint, None)?),
    };

    let mut conn = Some(conn);
    // tables a DDL statement changed after this worker's snapshot: left to a later one
    let mut changed: Vec<i32> = Vec::new();
    loop {
        if shutdown_requested() {
            return Err(ChameleonError::state("initial copy interrupted by shutdown".into()));
        }
        // ranges of a table already split come first: they finish that table sooner
        let (table, result) = if let Some(range) = in_transaction(|| catalog::claim_range(source_id, slot))? {
            let c = conn.take().ok_or_else(|| ChameleonError::state("the copy connection was lost".into()))?;
            let point = match &points {
                Points::Snapshot(p) => p.clone(),
                Points::PerTable(_) => {
                    return Err(ChameleonError::state("a key range without a shared snapshot".into()))
                }
            };
            let result = abandonable(|| copy_range(source_id, &range, c, &point, flavor, &options));
            (range.table.clone(), result)
        } else if let Some(claimed) = in_transaction(|| catalog::claim_table(source_id, slot, &changed))? {
            if let Points::Snapshot(p) = &points {
                if changed_after(claimed.id, p)? {
                    in_transaction(|| catalog::set_table_state(claimed.id, TableState::Pending))?;
                    changed.push(claimed.id);
                    continue;
                }
            }
            let c = conn.take().ok_or_else(|| ChameleonError::state("the copy connection was lost".into()))?;
            let result = abandonable(|| copy_claimed(source_id, &claimed, c, &mut points, &endpoint, flavor, &options));
            (claimed, result)
        } else if others_working(source_id, slot)? {
            // another worker may still cut its table into ranges this one can help with
            backend_sleep(Duration::from_millis(50));
            continue;
        } else {
            break;
        };
        match result {
            Ok((c, true)) => conn = Some(c),
            Ok((c, false)) => {
                // a DDL statement made this copy void: left pending for a later snapshot
                conn = Some(c);
                in_transaction(|| catalog::set_table_state(table.id, TableState::Pending))?;
                changed.push(table.id);
            }
            // stopped (stop_replica, a fast shutdown, pg_terminate_backend): the table's copy
            // rolled back; it is still to copy, and is copied again whole when the copy resumes
            Err(e) if shutdown_requested() => return Err(e),
            Err(e) => {
                let e = e.context(format!("table {}.{}", table.mysql_schema, table.mysql_table));
                let msg = e.to_string();
                let _ = in_transaction(|| {
                    catalog::table_copy_failed(table.id, &msg)?;
                    catalog::record_error(
                        source_id,
                        Some(table.id),
                        None,
                        None,
                        Some(&e.sqlstate()),
                        &format!("initial copy failed: {msg}"),
                    )
                });
                return Err(e);
            }
        }
    }
    in_transaction(|| catalog::set_copy_slot(source_id, slot, CopySlotState::Done, None, None))
}

/// Waits until the coordinator moves this worker's slot to `wanted` (polling every `poll`, or
/// woken by its latch); `None` when the slot was aborted or replaced by a newer copy.
fn wait_for_slot(
    source_id: i32,
    slot: i32,
    wanted: CopySlotState,
    deadline: Instant,
    poll: Duration,
) -> Result<Option<catalog::CopySlot>> {
    loop {
        if shutdown_requested() {
            return Err(ChameleonError::state("stopped before the copy started".into()));
        }
        let mine = in_transaction(|| catalog::copy_slots(source_id))?.into_iter().find(|s| s.slot == slot);
        match mine {
            Some(s) if s.state == wanted => return Ok(Some(s)),
            Some(s) if CopySlotState::ABORTABLE.contains(&s.state) && s.state != CopySlotState::Go => {}
            _ => return Ok(None),
        }
        if Instant::now() > deadline {
            return Err(ChameleonError::state("the coordinator never released the copy".into()));
        }
        backend_sleep(poll);
    }
}

/// Says this worker is idle (it has nothing to claim), and whether another copy worker of
/// this copy is alive and still copying something (idle workers do not count, so the last
/// ones to run out of work all stop).
fn others_working(source_id: i32, slot: i32) -> Result<bool> {
    in_transaction(|| {
        catalog::set_copy_slot_table(source_id, slot, None)?;
        for s in catalog::copy_slots(source_id)? {
            if s.slot != slot && s.state == CopySlotState::Go && s.table_id.is_some() && super::alive(s.pid)? {
                return Ok(true);
            }
        }
        Ok(false)
    })
}

/// Runs `copy` (one transaction) in the fast mode; if PostgreSQL refused a row, runs it again
/// on the same snapshot (the same consistent point), isolating the rows it refuses.
/// Returns the connection and whether the copy stands (false: a DDL statement made it void,
/// it was rolled back, and the table is to be copied at a later snapshot).
fn with_isolation_fallback(
    what: &str,
    conn: mysql::Conn,
    copy: impl Fn(&mut Option<mysql::Conn>, Mode) -> Result<()>,
) -> Result<(mysql::Conn, bool)> {
    let mut conn = Some(conn);
    let mut stands = true;
    match in_transaction(|| copy(&mut conn, Mode::Stream)) {
        Ok(()) => {}
        Err(e) if void_copy(&e) && conn.is_some() => {
            log!("pg_chameleon_rs: {what}: {e}; copied again at a later snapshot");
            stands = false;
        }
        Err(e) if copy::refused_data(&e) && conn.is_some() && !shutdown_requested() => {
            log!("pg_chameleon_rs: PostgreSQL refused a row of {what} ({e}); copying it again with each refused row set aside");
            match in_transaction(|| copy(&mut conn, Mode::Isolate)) {
                Err(e) if void_copy(&e) && conn.is_some() => {
                    log!("pg_chameleon_rs: {what}: {e}; copied again at a later snapshot");
                    stands = false;
                }
                other => other?,
            }
        }
        Err(e) => return Err(e),
    }
    let conn = conn.ok_or_else(|| ChameleonError::state("the copy connection was lost".into()))?;
    Ok((conn, stands))
}

/// Takes the table's consistent point (when per table), then copies it in one transaction,
/// or, when it is large and the workers share a snapshot, creates it and cuts it into key
/// ranges that every worker then copies. A table whose engine has no snapshots is copied
/// under a lock of its own instead (`copy_locked`).
fn copy_claimed(
    source_id: i32,
    claimed: &ClaimedTable,
    mut conn: mysql::Conn,
    points: &mut Points,
    endpoint: &Endpoint,
    flavor: Flavor,
    options: &SourceOptions,
) -> Result<(mysql::Conn, bool)> {
    let point = match points {
        Points::Snapshot(p) => p.clone(),
        Points::PerTable(lock) => {
            mysql_source::table_snapshot(&mut conn, lock, flavor, &claimed.mysql_schema, &claimed.mysql_table)?.0
        }
    };
    let def = describe(&mut conn, claimed, options)?;
    if def.copyable() && !def.in_snapshot() {
        return copy_locked(source_id, claimed, conn, endpoint, flavor, options);
    }
    if matches!(points, Points::Snapshot(_)) && def.copyable() {
        if let Some(c) = split(source_id, claimed, &def, &mut conn, flavor, options)? {
            log!(
                "pg_chameleon_rs: copying {}.{} in {c} key ranges with the other copy workers",
                claimed.mysql_schema,
                claimed.mysql_table
            );
            return Ok((conn, true));
        }
    }
    let what = format!("{}.{}", claimed.mysql_schema, claimed.mysql_table);
    with_isolation_fallback(&what, conn, |conn, mode| {
        copy_whole(source_id, claimed, &def, conn, mode, &point, flavor, options)
    })
}

/// A table whose engine has no consistent snapshots (MyISAM, Aria, MEMORY, ...: see
/// `discovery::has_snapshots`) would be read in the copy's snapshot as it is when read, not
/// as of the snapshot's point: rows written meanwhile would be copied and then replayed
/// again. So it is read on a connection of its own holding `LOCK TABLES t READ` from before
/// its consistent point is read until its rows are committed (as mysqldump locks such
/// tables), and its consistent point is the binlog position read under that lock
/// (`mysql_source::lock_table_for_copy`): replay applies its events after that point only
/// (docs/internals.md, contract 3). Writes to the table wait during its copy; other tables
/// are not locked. Returns the snapshot connection, untouched, and whether the copy stands
/// (false: a DDL statement made it void, as `with_isolation_fallback` says).
fn copy_locked(
    source_id: i32,
    claimed: &ClaimedTable,
    mut conn: mysql::Conn,
    endpoint: &Endpoint,
    flavor: Flavor,
    options: &SourceOptions,
) -> Result<(mysql::Conn, bool)> {
    let (schema, table) = (&claimed.mysql_schema, &claimed.mysql_table);
    let engine = mysql_source::table_engine(&mut conn, schema, table)?.unwrap_or_else(|| "unknown".into());
    let mut locked = mysql_source::connect(endpoint, None)?;
    mysql_source::prepare_copy_session(&mut locked)?;
    let point = mysql_source::lock_table_for_copy(&mut locked, flavor, schema, table, &engine, options.lock_timeout)?;
    let since = Instant::now();
    log!(
        "pg_chameleon_rs: copying {schema}.{table} (engine {engine}, no consistent snapshot) under LOCK TABLES ... READ \
         at its own consistent point {point}: writes to it wait until its rows are copied"
    );
    // the definition cannot change while the table is locked
    let def = describe(&mut conn, claimed, options)?;
    let what = format!("{schema}.{table}");
    let (mut locked, stands) = with_isolation_fallback(&what, locked, |c, mode| {
        copy_whole(source_id, claimed, &def, c, mode, &point, flavor, options)
    })?;
    mysql_source::unlock_tables(&mut locked)?;
    log!("pg_chameleon_rs: {schema}.{table} unlocked after {} ms", since.elapsed().as_millis());
    Ok((conn, stands))
}

/// One whole table in the caller's transaction: (re)created, its rows copied from the
/// connection in `conn` (refused rows set aside), finished at `point`.
#[allow(clippy::too_many_arguments)]
fn copy_whole(
    source_id: i32,
    claimed: &ClaimedTable,
    def: &TableDefinition,
    conn: &mut Option<mysql::Conn>,
    mode: Mode,
    point: &BinlogPosition,
    flavor: Flavor,
    options: &SourceOptions,
) -> Result<()> {
    let Some(created) = create_table(source_id, def, flavor)? else { return Ok(()) };
    let started = Instant::now();
    let outcome = copy::copy_table(
        conn,
        &def.mysql_schema,
        &def.mysql_table,
        &def.columns,
        &created.mapped,
        created.relid,
        None,
        options.copy_max_memory * 1024 * 1024,
        mode,
    )?;
    for d in &outcome.discards {
        catalog::record_discarded(source_id, claimed.id, None, &d.raw, &d.reason)?;
    }
    let rows = (outcome.rows as i64, outcome.discards.len() as i64);
    finish_table(source_id, options, claimed.id, def, created, Some(rows), point, started.elapsed())
}

fn describe(conn: &mut mysql::Conn, t: &ClaimedTable, options: &SourceOptions) -> Result<TableDefinition> {
    let extensions = in_transaction(catalog::extensions)?;
    Ok(discovery::describe(conn, options, &t.mysql_schema, &t.mysql_table, &t.pg_schema, &extensions)?)
}

/// When the table qualifies (`copy_split_rows`), creates it and its key ranges in one
/// transaction, and returns how many ranges.
fn split(
    source_id: i32,
    claimed: &ClaimedTable,
    def: &TableDefinition,
    conn: &mut mysql::Conn,
    flavor: Flavor,
    options: &SourceOptions,
) -> Result<Option<usize>> {
    let names: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
    let mapped = mapped_columns(def)?;
    let Some(column) =
        ranges::split_column(&def.key, &names, &mapped, def.estimate, options.copy_split_rows, options.copy_workers)
    else {
        return Ok(None);
    };
    let Some((min, max)) = mysql_source::key_span(conn, &def.mysql_schema, &def.mysql_table, column)? else {
        return Ok(None);
    };
    let plan = ranges::plan(min, max, options.copy_workers * 2);
    if plan.len() < 2 {
        return Ok(None);
    }
    in_transaction(|| {
        create_table(source_id, def, flavor)?;
        // the ranges' workers read the definition copied from the catalogue
        catalog::register_definition(source_id, def)?;
        catalog::set_table_state(claimed.id, TableState::Copying)?;
        catalog::create_copy_ranges(claimed.id, column, &plan)
    })?;
    Ok(Some(plan.len()))
}

/// Copies one key range of a table in its own transaction; the worker that commits the last
/// range finishes the table (keys, indexes, consistent point).
fn copy_range(
    source_id: i32,
    range: &ClaimedRange,
    conn: mysql::Conn,
    point: &BinlogPosition,
    flavor: Flavor,
    options: &SourceOptions,
) -> Result<(mysql::Conn, bool)> {
    let t = &range.table;
    // the definition the table was created from (registered by the worker that split it)
    let registered = in_transaction(|| catalog::table_by_id(t.id))?;
    let qualified = sql::qualified(&registered.pg_schema, &registered.pg_table);
    let filter = ranges::filter(&range.column, &range.bounds);
    let memory = options.copy_max_memory * 1024 * 1024;
    let what = format!("{}.{} (key range {})", t.mysql_schema, t.mysql_table, range.range);
    let started = Instant::now();
    let (conn, stands) = with_isolation_fallback(&what, conn, |conn, mode| {
        let relid = relation(&qualified)?;
        let outcome = copy::copy_table(
            conn,
            &registered.mysql_schema,
            &registered.mysql_table,
            &registered.columns,
            &registered.mapped,
            relid,
            filter.as_deref(),
            memory,
            mode,
        )?;
        for d in &outcome.discards {
            catalog::record_discarded(source_id, t.id, None, &d.raw, &d.reason)?;
        }
        catalog::copy_range_done(t.id, range.range, outcome.rows as i64)
    })?;
    if !stands {
        // (its table is pending again, or left copying: the coordinator's next round copies it whole)
        return Ok((conn, true));
    }
    let copied_in = started.elapsed();
    let mut conn = conn;
    in_transaction(|| {
        if !catalog::ranges_complete(t.id)? {
            return Ok(());
        }
        // the last range: keys, indexes, defaults and comments need the whole definition
        // (read here, in this transaction: `describe` would open one of its own)
        let extensions = catalog::extensions()?;
        let def = discovery::describe(&mut conn, options, &t.mysql_schema, &t.mysql_table, &t.pg_schema, &extensions)?;
        catalog::execute("SET LOCAL synchronous_commit = on")?;
        let (opts, notes) = column_options(&def, &registered.mapped, flavor);
        let created = Created { relid: relation(&qualified)?, mapped: registered.mapped.clone(), opts, notes };
        finish_table(source_id, options, t.id, &def, created, None, point, copied_in)
    })?;
    Ok((conn, true))
}

fn relation(qualified: &str) -> Result<pg_sys::Oid> {
    Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regclass::oid", &[qualified.into()])?
        .ok_or_else(|| ChameleonError::catalog(format!("table {qualified} vanished")))
}

fn mapped_columns(t: &TableDefinition) -> Result<Vec<MappedType>> {
    Ok(t.columns
        .iter()
        .map(|c| map_column(c, &t.pg_schema, &t.mysql_table))
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Defaults and identity of each column, and notes on what could not be translated.
fn column_options(t: &TableDefinition, mapped: &[MappedType], flavor: Flavor) -> (Vec<ColumnOptions>, Vec<String>) {
    let mut notes = sql::long_name_notes(&t.mysql_table, t.columns.iter().map(|c| c.name.as_str()));
    let opts = t
        .columns
        .iter()
        .zip(mapped)
        .zip(&t.extras)
        .map(|((c, m), x)| ColumnOptions {
            default: schema::default_clause(flavor, c, m, x).unwrap_or_else(|note| {
                notes.push(note);
                None
            }),
            identity: schema::identity(c, m, x),
        })
        .collect();
    (opts, notes)
}

/// A PostgreSQL table created for the copy, before its rows.
struct Created {
    relid: pg_sys::Oid,
    mapped: Vec<MappedType>,
    opts: Vec<ColumnOptions>,
    notes: Vec<String>,
}

/// (Re)creates the PostgreSQL table with its enum types and comments, without keys or indexes
/// (those come after the data); `finish_table` records the definition. `None` when the table
/// is not copied at all (its definition recorded now). Runs in the caller's transaction.
fn create_table(source_id: i32, t: &TableDefinition, flavor: Flavor) -> Result<Option<Created>> {
    // A finished table must survive a crash even with synchronous_commit = off: resuming
    // trusts the catalogue (one WAL flush per table).
    catalog::execute("SET LOCAL synchronous_commit = on")?;
    if !t.copyable() {
        // the definition read now is the one the catalogue follows (not copied: disabled)
        catalog::register_definition(source_id, t)?;
        return Ok(None);
    }
    // (the catalogue's row of the table is written by finish_table, at the end: a row lock
    // held for the whole copy would stall replay, which records DDL statements there)
    let mapped = mapped_columns(t)?;
    let pg_cols: Vec<PgColumn> = t.columns.iter().zip(&mapped).map(|(c, m)| PgColumn::of(c, m)).collect();
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
    let (opts, notes) = column_options(t, &mapped, flavor);
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
    let relid = relation(&qualified)?;
    Ok(Some(Created { relid, mapped, opts, notes }))
}

/// After the rows: primary key, indexes, identity past the copied maximum, notes, foreign
/// keys recorded, and the table's consistent point. `rows` (copied, discarded) replaces the
/// counts; `None` keeps those the key ranges added up. Runs in the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn finish_table(
    source_id: i32,
    options: &SourceOptions,
    table_id: i32,
    t: &TableDefinition,
    created: Created,
    rows: Option<(i64, i64)>,
    point: &BinlogPosition,
    copied_in: Duration,
) -> Result<()> {
    let started = Instant::now();
    let qualified = sql::qualified(&t.pg_schema, &t.mysql_table);
    let mut notes = created.notes;
    if !t.key.is_empty() {
        catalog::execute(&sql::add_primary_key(&t.pg_schema, &t.mysql_table, &t.key))?;
    }
    let key_index = t.indexes.iter().find(|i| i.columns == t.key && i.unique).map(|i| i.name.clone());
    let secondary: Vec<_> = t.indexes.iter().filter(|i| Some(&i.name) != key_index.as_ref()).cloned().collect();
    let postgis = t.columns.iter().any(|c| c.postgis.is_some());
    let (index_ddl, skipped) = schema::index_statements(&t.pg_schema, &t.mysql_table, &secondary, postgis);
    notes.extend(skipped);
    for ddl in &index_ddl {
        if let Some(note) = build_index(ddl)? {
            log!("pg_chameleon_rs: {}.{}: {note}", t.mysql_schema, t.mysql_table);
            notes.push(note);
        }
    }
    for (c, o) in t.columns.iter().zip(&created.opts) {
        if o.identity {
            // the sequence continues after the copied maximum
            catalog::set_sequence_past_max(&qualified, &c.name)?;
        }
    }
    log!(
        "pg_chameleon_rs: copied {}.{}: {} in {} ms, keys and indexes in {} ms (consistent point {point})",
        t.mysql_schema,
        t.mysql_table,
        match rows {
            Some((n, _)) => format!("{n} rows"),
            None => "key ranges".to_string(),
        },
        copied_in.as_millis(),
        started.elapsed().as_millis()
    );
    // A table copied again by sync_tables (not by init_replica, which no replay runs beside
    // and whose old batches it discards): replay skipped its events while it was being
    // copied; those after its consistent point are applied here, with replay held off, so
    // that from the next batch on replay takes the table over. The replay lock comes before
    // the table's catalogue row (replay writes it when a DDL statement changes the table):
    // the other order deadlocks.
    let syncing = catalog::source_by_id(source_id)?.status != SourceStatus::Initialising;
    if syncing {
        catalog::replay_lock(source_id, true)?;
        let now = catalog::table_by_id(table_id)?;
        if now.state != TableState::Copying || now.point.as_ref().is_some_and(|d| *d >= *point) {
            // a DDL statement changed the table on the source after this snapshot (replay set
            // it pending again, at the statement's position): this copy is void
            return Err(ChameleonError::state(format!("{STALE_COPY} ({}.{})", t.mysql_schema, t.mysql_table)));
        }
    }
    if rows.is_some() {
        // the definition copied is the one the catalogue follows (a table copied in key
        // ranges was registered when it was split, and its ranges added up its rows since)
        catalog::register_definition(source_id, t)?;
    }
    catalog::set_table_notes(table_id, &notes)?;
    catalog::record_foreign_keys(table_id, &t.foreign_keys)?;
    catalog::set_table_copied(table_id, rows.map(|r| r.0), rows.map(|r| r.1), point, t.problem.is_none())?;
    if !syncing {
        return Ok(());
    }
    let mut replayer = Replayer::new(source_id, options.skip_events.clone());
    replayer.reload_tables()?;
    let caught_up = replayer.catch_up(table_id)?;
    if caught_up > 0 {
        log!("pg_chameleon_rs: {}.{}: {caught_up} changes made during the copy applied", t.mysql_schema, t.mysql_table);
    }
    catalog::set_table_replicating_if_running(table_id, source_id)?;
    catalog::bump_table_generation(source_id)
}
