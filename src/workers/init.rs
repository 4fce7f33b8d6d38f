//! The init worker: the coordinator of the initial copy (what `init_replica` starts), like
//! PostgreSQL's logical replication launcher is to its table-sync workers.
//!
//! 1. reads the mapped schemas' tables from `information_schema` and registers them; when an
//!    earlier copy was interrupted (and `resume`), tables it finished are kept as they are;
//! 2. starts the copy workers and waits until each is connected to the source, then takes the
//!    global read lock, lets them open their consistent snapshots, reads the binlog
//!    coordinates, releases the lock (held for that moment only: no connect under it) and
//!    publishes the coordinates; a user who may not take the lock gets a
//!    consistent point per table instead;
//! 3. waits for the workers (`copy_worker`), which copy the tables in parallel;
//! 4. marks the source `initialised` at the earliest consistent point of its tables, where
//!    replication starts (each table applies only the events after its own point).
//!
//! Any failure puts the source in `error` with the message (tables not copied are listed;
//! `init_replica` again resumes); `init_replica(wait => true)` raises it.

use crate::catalog;
use crate::core::discovery::{self, TableDefinition};
use crate::core::endpoint::Endpoint;
use crate::core::mysql_source::{self, LockOutcome};
use crate::core::options::{ForeignKeys, SourceOptions};
use crate::core::position::BinlogPosition;
use crate::core::schema;
use crate::core::sql::{self, quote_ident};
use crate::core::state::{CopySlotState, SourceStatus, TableState};
use crate::core::types::Extensions;
use crate::error::{ChameleonError, Result};
use crate::workers::txn::{backend_sleep, in_subtransaction, in_transaction, shutdown_requested};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_init_main(arg: pg_sys::Datum) {
    let arg = super::worker_prologue(arg);
    if arg & SYNC_FLAG != 0 {
        let source_id = arg & !SYNC_FLAG;
        super::set_application_name("pg_chameleon_rs sync");
        if let Err(e) = run_sync(source_id) {
            if shutdown_requested() {
                // stop_replica, a fast shutdown, pg_terminate_backend: the tables stay to copy,
                // and the copy resumes when the source runs again (resume_sync)
                log!("pg_chameleon_rs: source id {source_id}: sync_tables interrupted ({e}); it resumes when the source runs again");
                return;
            }
            let msg = format!("sync_tables failed: {e}");
            let _ = in_transaction(|| {
                catalog::record_error(source_id, None, None, None, Some(&e.sqlstate()), &msg)?;
                catalog::fail_awaiting_copies(source_id, &msg)
            });
            log!("pg_chameleon_rs: source id {source_id}: {msg}");
        }
        return;
    }
    let source_id = arg & !RESUME_FLAG;
    super::set_application_name("pg_chameleon_rs init");
    let mut phase = Phase::default();
    if let Err(e) = run(arg, &mut phase) {
        let msg = e.to_string();
        // Before the copy touched anything (connection, settings, discovery) the source keeps
        // its status; once tables were being replaced it is in error.
        let status = match phase.previous_status {
            Some(previous) => SourceStatus::after_failed_init(previous, phase.copying),
            None if phase.copying => SourceStatus::Error,
            None => SourceStatus::Ready,
        };
        let _ = in_transaction(|| {
            catalog::record_error(
                source_id,
                None,
                None,
                None,
                Some(&e.sqlstate()),
                &format!("initial copy failed: {msg}"),
            )?;
            catalog::set_source_error(source_id, Some(status), &format!("initial copy failed: {msg}"))?;
            catalog::set_worker_pid(source_id, None)
        });
        log!("pg_chameleon_rs: initial copy of source id {source_id} failed: {msg}");
    }
}

#[derive(Default)]
struct Phase {
    previous_status: Option<SourceStatus>,
    copying: bool,
}

/// The tables of the mapped schemas that the options select, as the source defines them
/// (`extensions`: the destination's PostGIS and pgvector, where installed).
pub fn discover(
    conn: &mut mysql::Conn,
    source: &catalog::SourceRow,
    options: &SourceOptions,
    extensions: &Extensions,
) -> Result<Vec<TableDefinition>> {
    let mappings = source.mappings()?;
    let mut out = Vec::new();
    for (my_schema, pg_schema) in &mappings.0 {
        if !mysql_source::schema_exists(conn, my_schema)? {
            return Err(ChameleonError::state(format!(
                "source \"{}\": MySQL schema \"{my_schema}\" in schema_mappings does not exist",
                source.name
            )));
        }
        for table in mysql_source::list_tables(conn, my_schema)? {
            if options.table_selected(my_schema, &table) {
                out.push(discovery::describe(conn, options, my_schema, &table, pg_schema, extensions)?);
            }
        }
    }
    Ok(out)
}

/// Whether the init worker was asked to resume (the argument's high bit).
pub const RESUME_FLAG: i32 = 1 << 30;
/// The init worker as `sync_tables`' coordinator: copies the source's pending tables again.
pub const SYNC_FLAG: i32 = 1 << 29;

/// Starts the coordinator of a copy of the source's pending tables (`sync_tables`,
/// `refresh_schema`, `alter_source`); it begins once the caller's transaction commits.
pub fn start_sync(s: &catalog::SourceRow) -> Result<()> {
    let db = catalog::current_database()?;
    super::start_worker(super::WorkerRole::Init, s.id | SYNC_FLAG, &s.name, &db)?;
    Ok(())
}

/// Resumes a sync that was cut short (a crash or restart of the server, `stop_replica`): when
/// tables of the source are still to copy (`pending`, or `copying` with their worker gone) and
/// no coordinator runs, starts one; it copies them again at a new snapshot. True if started.
/// Called by `start_replica` and the launcher, holding the source's control lock.
pub fn resume_sync(s: &catalog::SourceRow) -> Result<bool> {
    if catalog::tables_awaiting_copy(s.id)? == 0 || catalog::sync_coordinator_pid(s.id)?.is_some() {
        return Ok(false);
    }
    start_sync(s)?;
    Ok(true)
}

/// `sync_tables`: copies the tables `sync_tables` set pending, under a new snapshot, while
/// the source keeps running. The read worker must store their changes before the snapshot
/// is taken: it acknowledges the table generation once its reader follows them. Each table
/// then takes over where its copy stops (the copy worker's catch-up, `copy_worker`). The
/// source's status and position are not touched.
fn run_sync(source_id: i32) -> Result<()> {
    // sync_tables set the tables pending in its transaction, holding the source's row: wait
    // for it to commit
    let source = in_transaction(|| {
        catalog::lock_source(source_id)?;
        catalog::source_by_id(source_id)
    })?;
    // one coordinator per source (held until this worker exits): another one started meanwhile
    // (sync_tables, and the launcher or start_replica resuming) copies every pending table
    if !in_transaction(|| catalog::try_lock_sync(source_id))? {
        log!(
            "pg_chameleon_rs: source \"{}\": another sync_tables coordinator runs; it copies these tables",
            source.name
        );
        return Ok(());
    }
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let mut copied = 0;
    // A DDL statement on a table being copied makes its copy void and sets it pending again
    // (ddl_apply): each round copies what is pending at a new snapshot, a few rounds at most.
    for round in 1..=SYNC_ROUNDS {
        describe_tables_to_copy(&source, &endpoint, &options)?;
        wait_for_reader(source_id)?;
        let mut meta = mysql_source::connect(&endpoint, None)?;
        let info = mysql_source::check_server(&mut meta)?;
        drop(meta);
        let to_copy = in_transaction(|| catalog::uncopied_tables(source_id))?.len();
        if to_copy == 0 {
            break;
        }
        let db = in_transaction(catalog::current_database)?;
        let mut worker_errors = Vec::new();
        copy_in_parallel(
            &source,
            &endpoint,
            info.flavor,
            &options,
            options.copy_workers.min(to_copy),
            &db,
            &mut worker_errors,
        )?;
        let left = in_transaction(|| catalog::uncopied_tables(source_id))?;
        copied += to_copy.saturating_sub(left.len());
        let again = in_transaction(|| catalog::tables_awaiting_copy(source_id))?;
        if left.is_empty() {
            break;
        }
        if again == 0 || !worker_errors.is_empty() || round == SYNC_ROUNDS || shutdown_requested() {
            return Err(ChameleonError::state(not_copied(&left, &worker_errors)));
        }
        log!(
            "pg_chameleon_rs: source \"{}\": {again} tables changed by DDL during their copy are copied again at a new snapshot",
            source.name
        );
    }
    log!("pg_chameleon_rs: source \"{}\": {copied} tables copied again", source.name);
    Ok(())
}

/// How many snapshots one `sync_tables` takes at most: tables a DDL statement changes during
/// their copy are copied again at the next one.
const SYNC_ROUNDS: usize = 5;

/// Waits until the read worker's reader follows the tables to copy (it acknowledges the table
/// generation), so that their changes are stored from before the snapshot.
fn wait_for_reader(source_id: i32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = in_transaction(|| catalog::source_by_id(source_id))?;
        let reading = s.status == SourceStatus::Running && in_transaction(|| super::alive(s.worker_pid))?;
        if !reading || s.reader_generation >= s.table_generation {
            return Ok(());
        }
        if Instant::now() > deadline || shutdown_requested() {
            return Err(ChameleonError::state(
                "the read worker did not take the tables to copy into its reader within 120 s".into(),
            ));
        }
        backend_sleep(Duration::from_millis(200));
    }
}

/// Tables to copy are described again first, and registered again when their columns or key
/// differ from the catalogue's: those whose columns the catalogue does not know (registered by
/// a DDL statement that could not be translated), and those changed on the source while they
/// were not replicated (a column INT -> BIGINT, VARCHAR -> DATETIME). The reader follows them
/// from before the copy's snapshot, and must decode their changes with the columns the copy
/// will have (the generation moves; the read worker starts its reader again with them).
fn describe_tables_to_copy(source: &catalog::SourceRow, endpoint: &Endpoint, options: &SourceOptions) -> Result<()> {
    let pending: Vec<catalog::TableRow> = in_transaction(|| catalog::tables_for_source(source.id))?
        .into_iter()
        .filter(|t| t.state == TableState::Pending)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut conn = mysql_source::connect(endpoint, None)?;
    mysql_source::check_server(&mut conn)?;
    let extensions = in_transaction(catalog::extensions)?;
    let mut present: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for t in pending {
        if !present.contains_key(&t.mysql_schema) {
            present.insert(t.mysql_schema.clone(), mysql_source::list_tables(&mut conn, &t.mysql_schema)?);
        }
        if !present.get(&t.mysql_schema).is_some_and(|names| names.contains(&t.mysql_table)) {
            continue; // gone from the source: its copy says so
        }
        let def = crate::core::discovery::describe(
            &mut conn,
            options,
            &t.mysql_schema,
            &t.mysql_table,
            &t.pg_schema,
            &extensions,
        )?;
        if def.columns == t.columns && def.key == t.key {
            continue;
        }
        in_transaction(|| {
            catalog::register_definition(source.id, &def)?;
            catalog::bump_table_generation(source.id)
        })?;
    }
    Ok(())
}

fn run(arg: i32, phase: &mut Phase) -> Result<()> {
    let source_id = arg & !RESUME_FLAG;
    let want_resume = arg & RESUME_FLAG != 0;
    let (source, incomplete) = in_transaction(|| {
        let s = catalog::source_by_id(source_id)?;
        let incomplete = catalog::copy_incomplete(source_id)?;
        catalog::set_status(source_id, SourceStatus::Initialising)?;
        catalog::set_want_running(source_id, false)?;
        catalog::clear_source_error(source_id)?;
        catalog::set_worker_pid(source_id, Some(unsafe { pg_sys::MyProcPid }))?;
        Ok((s, incomplete))
    })?;
    phase.previous_status = Some(source.status);
    let resume = want_resume && incomplete;
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let mut meta = mysql_source::connect(&endpoint, None)?;
    let info = mysql_source::check_server(&mut meta)?;
    // where replication starts if no table gets a point of its own (every table keyless)
    let (now, _) = mysql_source::binlog_status(&mut meta, info.flavor)?;
    let extensions = in_transaction(catalog::extensions)?;
    let tables = discover(&mut meta, &source, &options, &extensions)?;
    drop(meta);

    phase.copying = true;
    let (to_copy, kept) = in_transaction(|| register(&source, &tables, resume))?;
    if kept > 0 {
        log!(
            "pg_chameleon_rs: source \"{}\": resuming the interrupted copy; {kept} tables already copied are kept",
            source.name
        );
    }
    let mut snapshot_gtid = None;
    let mut worker_errors = Vec::new();
    if to_copy > 0 {
        let workers = options.copy_workers.min(to_copy);
        let db = in_transaction(catalog::current_database)?;
        snapshot_gtid = copy_in_parallel(&source, &endpoint, info.flavor, &options, workers, &db, &mut worker_errors)?;
    }

    in_transaction(|| {
        let left = catalog::uncopied_tables(source_id)?;
        if !left.is_empty() {
            let msg = not_copied(&left, &worker_errors);
            return Err(ChameleonError::state(msg)
                .with_detail("the tables copied are kept")
                .with_hint("init_replica again resumes"));
        }
        if options.foreign_keys == ForeignKeys::Create {
            create_foreign_keys(source_id)?;
        }
        let start = catalog::earliest_table_point(source_id)?.unwrap_or_else(|| now.clone());
        let gtid = snapshot_gtid.as_ref().filter(|(p, _)| *p == start).map(|(_, g)| g.clone());
        catalog::mark_initialised(source_id, &start, gtid.as_deref())?;
        for role in &options.grant_select_to {
            for pg_schema in source.mappings()?.0.values() {
                catalog::execute(&format!(
                    "GRANT USAGE ON SCHEMA {} TO {}",
                    quote_ident(pg_schema),
                    quote_ident(role)
                ))?;
                catalog::execute(&format!(
                    "GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}",
                    quote_ident(pg_schema),
                    quote_ident(role)
                ))?;
            }
        }
        catalog::set_worker_pid(source_id, None)?;
        log!("pg_chameleon_rs: source \"{}\" initialised; replication starts at {start}", source.name);
        Ok(())
    })
}

/// Registers the discovered tables: those an interrupted copy finished are kept when
/// resuming, the others are (re)set to `pending`. Returns (tables to copy, tables kept).
fn register(source: &catalog::SourceRow, tables: &[TableDefinition], resume: bool) -> Result<(usize, usize)> {
    check_table_names(source, tables)?;
    let known: Vec<(String, String)> = catalog::tables_for_source_names(source.id)?;
    for t in tables {
        let target = (t.pg_schema.clone(), t.mysql_table.clone());
        if catalog::table_exists(&target.0, &target.1)? && !known.contains(&target) {
            return Err(ChameleonError::state(format!(
                "source \"{}\": table {} already exists in PostgreSQL and is not managed by this source",
                source.name,
                sql::qualified(&target.0, &target.1),
            ))
            .with_hint(format!("drop or rename it, or map {} to another schema", t.mysql_schema)));
        }
    }
    let mut ids = Vec::new();
    let (mut to_copy, mut kept) = (0, 0);
    for t in tables {
        let finished = if resume {
            catalog::finished_table(source.id, &t.mysql_schema, &t.mysql_table, &t.pg_schema, &t.columns, &t.key)?
        } else {
            None
        };
        match finished {
            Some(id) => {
                kept += 1;
                ids.push(id);
            }
            None => {
                ids.push(catalog::register_definition(source.id, t)?);
                if t.copyable() {
                    to_copy += 1;
                }
            }
        }
    }
    catalog::unregister_tables_except(source.id, &ids)?;
    // here, not by the copy workers, which would race to create them
    for pg_schema in source.mappings()?.0.values() {
        catalog::execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(pg_schema)))?;
    }
    Ok((to_copy, kept))
}

/// The tables a copy left behind, with their errors (or, when they have none, the copy
/// workers' errors).
fn not_copied(left: &[(String, Option<String>)], worker_errors: &[String]) -> String {
    let list: Vec<String> = left
        .iter()
        .map(|(t, e)| match e {
            Some(e) => format!("{t} ({e})"),
            None => t.clone(),
        })
        .collect();
    let mut msg = format!("{} tables not copied: {}", left.len(), list.join("; "));
    if left.iter().all(|(_, e)| e.is_none()) && !worker_errors.is_empty() {
        msg.push_str(&format!("; copy workers: {}", worker_errors.join("; ")));
    }
    msg
}

/// Tables mapped into one PostgreSQL schema whose names PostgreSQL would cut to the same 63
/// bytes cannot both be replicated: refused before anything is created, naming them.
pub fn check_table_names(source: &catalog::SourceRow, tables: &[TableDefinition]) -> Result<()> {
    let mut by_schema: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for t in tables {
        by_schema.entry(t.pg_schema.as_str()).or_default().push(t.mysql_table.as_str());
    }
    for (schema, names) in by_schema {
        if let Some((a, b)) = sql::identifier_collision(names) {
            return Err(ChameleonError::state(format!(
                "source \"{}\": tables \"{a}\" and \"{b}\" mapped into schema \"{schema}\" have the same first 63 bytes",
                source.name
            ))
            .with_detail("PostgreSQL keeps the first 63 bytes of a name")
            .with_hint("map one of their schemas elsewhere or leave one out with skip_tables"));
        }
    }
    Ok(())
}

/// Runs the copy workers under one consistent snapshot (or per-table points when the global
/// read lock is refused) and waits for them. Returns the snapshot's (position, GTID).
fn copy_in_parallel(
    source: &catalog::SourceRow,
    endpoint: &Endpoint,
    flavor: mysql_source::Flavor,
    options: &SourceOptions,
    workers: usize,
    db: &str,
    worker_errors: &mut Vec<String>,
) -> Result<Option<(BinlogPosition, String)>> {
    let id = source.id;
    // copy workers of an earlier, interrupted coordinator must not copy alongside
    for pid in in_transaction(|| catalog::copy_slots(id))?.into_iter().filter_map(|s| s.pid) {
        in_transaction(|| super::stop_worker(pid, Duration::from_secs(60)))?;
    }
    // what they left half copied is copied again whole
    in_transaction(|| catalog::requeue_interrupted_copies(id))?;
    in_transaction(|| catalog::create_copy_slots(id, workers))?;
    // The workers start and connect to the source first (a slow connect or TLS handshake must
    // not happen under the lock, which stalls every write on the source); the lock is taken
    // once all are connected, and held while they open their snapshots.
    let mut started_workers = Vec::new();
    let connecting = Instant::now();
    let connected = (|| -> Result<()> {
        for slot in 0..workers as i32 {
            // outside a transaction: the handle must outlive it (it is allocated in the current context)
            started_workers.push(super::start_copy_worker(id, slot, &source.name, db)?);
        }
        wait_for_slots(
            id,
            &started_workers,
            CopySlotState::Connected,
            endpoint.connect_timeout + Duration::from_secs(60),
        )
    })();
    let pids: Vec<i32> = started_workers.iter().map(|w| w.pid).collect();
    if let Err(e) = connected {
        stop_copy_workers(id, &pids);
        return Err(e);
    }
    log!(
        "pg_chameleon_rs: source \"{}\": {workers} copy workers started and connected in {} ms",
        source.name,
        connecting.elapsed().as_millis()
    );
    let lock = match mysql_source::lock_global(endpoint, options.lock_timeout) {
        Ok(lock) => lock,
        Err(e) => {
            stop_copy_workers(id, &pids);
            return Err(e.into());
        }
    };
    let started = in_transaction(|| catalog::copy_slots_open(id)).and_then(|_| {
        for w in &started_workers {
            super::wake(Some(w.pid));
        }
        wait_for_slots(id, &started_workers, CopySlotState::Ready, Duration::from_secs(60))
    });
    let mut snapshot = None;
    let go = match lock {
        LockOutcome::Held(mut lock) => {
            let position = started.and_then(|_| lock.position(flavor).map_err(ChameleonError::from));
            let held = lock.release().map_err(ChameleonError::from);
            match (position, held) {
                (Ok((pos, gtid)), Ok(held)) => {
                    log!(
                        "pg_chameleon_rs: source \"{}\": consistent snapshot at {pos} for {workers} copy workers (global read lock held {} ms)",
                        source.name,
                        held.as_millis()
                    );
                    let r = in_transaction(|| catalog::copy_slots_go(id, Some(&pos)));
                    snapshot = gtid.map(|g| (pos, g));
                    r
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        LockOutcome::Refused(why) => {
            log!(
                "pg_chameleon_rs: source \"{}\": the global read lock was refused ({why}); each table gets its own consistent point",
                source.name
            );
            started.and_then(|_| in_transaction(|| catalog::copy_slots_go(id, None)))
        }
    };
    if let Err(e) = go {
        stop_copy_workers(id, &pids);
        return Err(e);
    }
    // the workers copy; the coordinator watches
    loop {
        if shutdown_requested() {
            stop_copy_workers(id, &pids);
            return Err(ChameleonError::state("initial copy interrupted by shutdown".into()));
        }
        let slots = in_transaction(|| catalog::copy_slots(id))?;
        let running = |slot: i32| started_workers.get(slot as usize).is_some_and(|w| w.handle.pid().is_ok());
        let active = slots.iter().filter(|s| s.state == CopySlotState::Go && running(s.slot)).count();
        if active == 0 {
            for s in &slots {
                match (s.state, &s.error) {
                    (CopySlotState::Failed, Some(e)) => worker_errors.push(format!("worker {}: {e}", s.slot)),
                    (CopySlotState::Go, _) => {
                        worker_errors.push(format!("worker {} (pid {}) died", s.slot, s.pid.unwrap_or_default()))
                    }
                    _ => {}
                }
            }
            return Ok(snapshot);
        }
        backend_sleep(Duration::from_millis(200));
    }
}

/// Waits until every copy worker is `wanted`: connected to the source (`Connected`), or with
/// its snapshot open (`Ready`, while the coordinator holds the lock: polled every millisecond).
fn wait_for_slots(id: i32, started: &[super::StartedWorker], wanted: CopySlotState, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let what = if wanted == CopySlotState::Ready { "open its snapshot" } else { "connect to the source" };
    loop {
        let slots = in_transaction(|| catalog::copy_slots(id))?;
        if let Some(failed) = slots.iter().find(|s| s.state == CopySlotState::Failed) {
            return Err(ChameleonError::state(format!(
                "copy worker {} could not {what}: {}",
                failed.slot,
                failed.error.clone().unwrap_or_default()
            )));
        }
        if slots.iter().all(|s| s.state == wanted) {
            return Ok(());
        }
        if let Some(w) = started.iter().find(|w| w.handle.pid().is_err()) {
            return Err(ChameleonError::state(format!("copy worker pid {} ended before it could {what}", w.pid)));
        }
        if Instant::now() > deadline || shutdown_requested() {
            return Err(ChameleonError::state(format!("the copy workers could not {what} in time")));
        }
        backend_sleep(Duration::from_millis(if wanted == CopySlotState::Ready { 1 } else { 5 }));
    }
}

fn stop_copy_workers(id: i32, pids: &[i32]) {
    let _ = in_transaction(|| catalog::abort_copy_slots(id));
    for &pid in pids {
        let _ = in_transaction(|| super::stop_worker(pid, Duration::from_secs(60)));
    }
}

/// `foreign_keys = create`: adds the recorded foreign keys between copied tables, NOT VALID and
/// deferred, and validates them when every table has the same consistent point (with points
/// per table a child may briefly reference a parent row the catch-up removes). What cannot be
/// created or validated becomes a note on the table; the copy stands.
fn create_foreign_keys(source_id: i32) -> Result<()> {
    let validate = catalog::single_consistent_point(source_id)?;
    for k in catalog::source_foreign_keys(source_id)? {
        let name = &k.fk.name;
        let Some((ref_schema, ref_table)) = &k.referenced else {
            catalog::add_table_note(
                k.table_id,
                &format!(
                    "foreign key {name} not created: the referenced table {}.{} is not replicated",
                    k.fk.ref_schema, k.fk.ref_table
                ),
            )?;
            continue;
        };
        let table = sql::qualified(&k.pg_schema, &k.pg_table);
        let ddl = schema::foreign_key_ddl(
            &k.pg_schema,
            &k.pg_table,
            &k.fk,
            ref_schema,
            ref_table,
            schema::ForeignKeyUse::Replica,
        );
        if let Err(e) = in_subtransaction(|| {
            catalog::execute(&format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}", quote_ident(name)))?;
            catalog::execute(&ddl)
        }) {
            catalog::add_table_note(k.table_id, &format!("foreign key {name} not created: {e}"))?;
            continue;
        }
        if !validate {
            catalog::add_table_note(
                k.table_id,
                &format!(
                    "foreign key {name} created NOT VALID: the tables have different consistent points; \
                     run ALTER TABLE {table} VALIDATE CONSTRAINT {} once replication has caught up",
                    quote_ident(name)
                ),
            )?;
            continue;
        }
        if let Err(e) = in_subtransaction(|| {
            catalog::execute(&format!("ALTER TABLE {table} VALIDATE CONSTRAINT {}", quote_ident(name)))
        }) {
            catalog::add_table_note(
                k.table_id,
                &format!("foreign key {name} created NOT VALID: validation failed: {e}"),
            )?;
        }
    }
    Ok(())
}
