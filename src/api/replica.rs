//! Replication control: `init_replica`, `start_replica`, `stop_replica`, `replay`,
//! `wait_for`.

use crate::catalog;
use crate::core::endpoint::Endpoint;
use crate::core::gtid::GtidState;
use crate::core::mysql_source;
use crate::core::state::{CopySlotState, Refusal, SourceEvent, SourceStatus};
use crate::error::{ok, ChameleonError, Result};
use crate::workers::replay::Replayer;
use crate::workers::txn::{backend_sleep, catch_pg};
use crate::workers::{self, start_position, WorkerRole};
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// Whether any worker of the source (init, read or replay) is alive.
fn worker_alive(s: &catalog::SourceRow) -> Result<bool> {
    Ok(workers::alive(s.worker_pid)? || workers::alive(s.replay_pid)?)
}

fn refuse_uncommitted(what: &str) -> Result<()> {
    if catalog::transaction_has_writes() {
        return Err(ChameleonError::state(format!(
            "{what} must run in a transaction that has not written anything yet"
        ))
        .with_detail("its background worker cannot see uncommitted changes")
        .with_hint("commit add_source first"));
    }
    Ok(())
}

fn init(source_name: &str, wait: bool, resume: bool) -> Result<String> {
    refuse_uncommitted("init_replica")?;
    let s = catalog::source_by_name(source_name)?;
    let alive = worker_alive(&s)?;
    match s.status.check_init(alive) {
        Err(Refusal::Running) => {
            return Err(
                ChameleonError::state(format!("source \"{source_name}\" is running")).with_hint("stop_replica first")
            )
        }
        Err(_) => {
            return Err(ChameleonError::state(format!(
                "source \"{source_name}\" is already initialising (worker pid {})",
                s.worker_pid.unwrap_or_default()
            )))
        }
        Ok(()) => {}
    }
    catalog::lock_source_control(s.id)?;
    let db = catalog::current_database()?;
    let arg = if resume { s.id | workers::init::RESUME_FLAG } else { s.id };
    let started = workers::start_worker(WorkerRole::Init, arg, &s.name, &db)?;
    if !wait {
        // the worker records its own pid; nothing to write in the caller's transaction
        return Ok("initialising".into());
    }
    started
        .handle
        .wait_for_shutdown()
        .map_err(|st| ChameleonError::state(format!("lost track of the init worker of \"{source_name}\": {st:?}")))?;
    let after = catalog::source_by_name(source_name)?;
    if after.status == SourceStatus::Initialised {
        Ok(after.status.to_string())
    } else {
        let error = after.last_error.unwrap_or_else(|| format!("the init worker ended with status {}", after.status));
        // the worker stored its error as one text: its hint goes back to PostgreSQL's HINT
        let (message, hint) = crate::core::error::split_hint(&error);
        let e = ChameleonError::state(format!("init_replica of source \"{source_name}\" failed: {message}"));
        Err(match hint {
            Some(h) => e.with_hint(h),
            None => e,
        })
    }
}

/// Copies the mapped schemas (structure and rows, consistent snapshot) with `copy_workers`
/// background workers and records the binlog coordinates where replication starts. With
/// `wait`, blocks until the copy is done and raises its error if it failed. After an
/// interrupted copy, `resume` (the default) keeps the tables it finished; `resume => false`
/// copies everything again.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn init_replica(source_name: &str, wait: default!(bool, false), resume: default!(bool, true)) -> String {
    ok(init(source_name, wait, resume))
}

fn start(source_name: &str, start_position: Option<&str>) -> Result<String> {
    let s = catalog::source_by_name(source_name)?;
    catalog::lock_source_control(s.id)?;
    catalog::lock_source(s.id)?;
    let s = catalog::source_by_id(s.id)?;
    if s.status.check_not_initialising(worker_alive(&s)?).is_err() {
        return Err(ChameleonError::state(format!("source \"{source_name}\" is still initialising")));
    }
    if let Some(text) = start_position {
        if worker_alive(&s)? {
            return Err(ChameleonError::state(format!("source \"{source_name}\" is running"))
                .with_hint("stop_replica before giving a start position"));
        }
        let adopted = start_position::set(&s, text)?;
        if adopted > 0 {
            notice!(
                "source \"{source_name}\": {adopted} tables registered without a copy; replication starts at {text}"
            );
        }
    } else {
        if let Some(old) = s.position_of.as_deref().filter(|_| !s.options().is_ok_and(|o| o.gtid_enable)) {
            let at = s.position.as_ref().map(|p| p.to_string()).unwrap_or_default();
            return Err(ChameleonError::state(format!(
                "source \"{source_name}\" now reads from {}, but its stored position {at} is a file position of {old}",
                s.url_safe
            ))
            .with_hint(
                "enable GTID (alter_source(source, options => '{\"gtid_enable\": true}')) to resume by GTID, or give \
                 the position on the new server: start_replica(source, start_position => 'file:offset')",
            ));
        }
        match s.status.next(SourceEvent::Start) {
            Err(Refusal::InError) => {
                return Err(ChameleonError::state(format!("source \"{source_name}\" is in error"))
                    .with_hint("fix the cause, then enable_replica"))
            }
            Err(_) => {
                return Err(ChameleonError::state(format!("source \"{source_name}\" has not been initialised"))
                    .with_hint(
                        "run init_replica first, or give the position where the data was loaded with \
                         start_replica(source, start_position => ...)",
                    ))
            }
            Ok(_) => {}
        }
    }
    let s = catalog::source_by_id(s.id)?;
    let db = catalog::current_database()?;
    if workers::ensure_running(&s, &db)?.is_empty() {
        notice!("source \"{source_name}\" is already running");
    }
    catalog::set_want_running(s.id, true)?;
    catalog::set_status(s.id, SourceStatus::Running)?;
    catalog::clear_source_error(s.id)?;
    // a sync_tables that stop_replica (or a crash) cut short copies its tables again
    if workers::init::resume_sync(&s)? {
        notice!("source \"{source_name}\": the interrupted copy of its pending tables resumes");
    }
    Ok(SourceStatus::Running.to_string())
}

/// Starts the read and replay workers: they follow the binlog from the stored position,
/// store whole source transactions as batches and replay them. With `start_position`
/// (`file:offset`, or a GTID position: MariaDB `0-1-4711`, MySQL `uuid:1-4711`) replication
/// starts there instead, without `init_replica`, for data loaded by other means: a source
/// never initialised gets its tables registered as they are (PostgreSQL must already have
/// them, with every column).
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn start_replica(source_name: &str, start_position: default!(Option<&str>, "NULL")) -> String {
    ok(start(source_name, start_position))
}

fn stop(source_name: &str) -> Result<String> {
    let s = catalog::source_by_name(source_name)?;
    // Keeps the launcher from restarting the worker; no lock on the source row while
    // waiting: the worker's last flush writes to it.
    catalog::lock_source_control(s.id)?;
    let s = catalog::source_by_id(s.id)?;
    stop_copies(&s)?;
    workers::stop_all(&s, Duration::from_secs(60))?;
    catalog::lock_source(s.id)?;
    let s = catalog::source_by_id(s.id)?;
    catalog::set_worker_pid(s.id, None)?;
    catalog::set_replay_pid(s.id, None)?;
    catalog::set_want_running(s.id, false)?;
    // stopping never fails: the status only changes from running
    let status = s.status.next(SourceEvent::Stop).unwrap_or(s.status);
    if status != s.status {
        catalog::set_status(s.id, status)?;
    }
    Ok(status.to_string())
}

/// A copy running beside replication (`sync_tables`' coordinator and its copy workers) stops
/// with the source: all are asked at once, then waited for (each ends at once, also in the
/// middle of a large table: `copy_worker`). The tables they were copying are `pending` again;
/// `start_replica` (or the launcher, while the source runs) copies them again whole. An initial
/// copy is left to its coordinator (the source's worker), which stops its own copy workers.
fn stop_copies(s: &catalog::SourceRow) -> Result<()> {
    if s.status == SourceStatus::Initialising {
        return Ok(());
    }
    let mut pids: Vec<i32> = catalog::sync_coordinator_pid(s.id)?.into_iter().collect();
    for slot in catalog::copy_slots(s.id)? {
        if let Some(pid) = slot.pid.filter(|_| !slot.state.is_finished()) {
            if workers::pid_alive(pid)? {
                pids.push(pid);
            }
        }
    }
    if pids.is_empty() {
        return Ok(());
    }
    workers::stop_workers(&pids, Duration::from_secs(60))
        .map_err(|e| e.context(format!("stop_replica of source \"{}\": its copy", s.name)))?;
    catalog::requeue_interrupted_copies(s.id)
}

/// Stops the replica worker. What was stored is kept; `start_replica` resumes exactly there.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn stop_replica(source_name: &str) -> String {
    ok(stop(source_name))
}

/// A copy (init_replica, sync_tables, refresh_schema) of the source is running. A copy worker
/// that finished its tables (they are replicating again) may still be ending for a moment: it
/// is waited for (up to 10 s), not refused.
fn refuse_while_copying(s: &catalog::SourceRow) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut ending = None;
        let mut copying = None;
        for slot in catalog::copy_slots(s.id)? {
            if !workers::alive(slot.pid)? {
                continue;
            }
            let finished = match slot.state {
                s if s.is_finished() => true,
                // idle, or about to be: nothing left to claim
                CopySlotState::Go => {
                    if copying.is_none() {
                        copying = Some(catalog::tables_being_copied(s.id)?);
                    }
                    copying == Some(0)
                }
                _ => false,
            };
            if !finished || Instant::now() > deadline {
                return Err(ChameleonError::state(format!(
                    "source \"{}\" is copying tables (copy worker pid {})",
                    s.name,
                    slot.pid.unwrap_or_default()
                ))
                .with_hint("wait until that copy ends"));
            }
            ending = slot.pid;
        }
        if ending.is_none() {
            return Ok(());
        }
        backend_sleep(Duration::from_millis(50));
    }
}

/// Refuses a copy of tables while the source cannot take one; locks the source.
fn ready_for_sync(source_name: &str) -> Result<catalog::SourceRow> {
    let s = catalog::source_by_name(source_name)?;
    catalog::lock_source_control(s.id)?;
    catalog::lock_source(s.id)?;
    let s = catalog::source_by_id(s.id)?;
    if s.status.check_sync().is_err() {
        return Err(ChameleonError::state(format!("source \"{source_name}\" has not been initialised"))
            .with_hint("run init_replica (it copies every table)"));
    }
    refuse_while_copying(&s)?;
    Ok(s)
}

/// `sync_tables` (also the repair of `verify_tables`).
pub(crate) fn sync(source_name: &str, tables: Option<Vec<String>>) -> Result<Vec<String>> {
    let s = ready_for_sync(source_name)?;
    // tables the source's options leave out stay out (alter_source brings them back)
    let names = catalog::mark_tables_for_sync(s.id, tables.as_deref(), false)?;
    if names.is_empty() {
        notice!("source \"{source_name}\" has no disabled or failed table to copy again");
        return Ok(names);
    }
    workers::init::start_sync(&s)?;
    Ok(names)
}

fn refresh(source_name: &str, schema_name: &str) -> Result<Vec<String>> {
    let s = ready_for_sync(source_name)?;
    let done = workers::refresh::register(&s, schema_name, false)?;
    if !done.gone.is_empty() {
        notice!("no longer on the source, kept in PostgreSQL and no longer replicated: {}", done.gone.join(", "));
    }
    if !done.tables.is_empty() {
        workers::init::start_sync(&s)?;
    }
    Ok(done.tables)
}

/// Copies a whole mapped MySQL schema again, as it is now on the source, while the source
/// keeps replicating: new tables are added, tables gone from the source stop being
/// replicated (their PostgreSQL tables are kept; a NOTICE names them). Returns the tables
/// to copy; the copy runs after this transaction commits, as for `sync_tables`.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn refresh_schema(source_name: &str, schema_name: &str) -> Vec<String> {
    ok(refresh(source_name, schema_name))
}

/// Copies tables again at a new consistent point while the rest of the source keeps
/// replicating: the named ones (`schema.table`, MySQL names), or every disabled or failed
/// one. Returns their names at once; the copy runs in background workers after this
/// transaction commits (`chameleon.tables` shows each table pending, copying, then back to
/// replicating). Each table's changes after its new point are applied exactly once.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn sync_tables(source_name: &str, tables: default!(Option<Vec<String>>, "NULL")) -> Vec<String> {
    ok(sync(source_name, tables))
}

fn detach_now(source_name: &str) -> Result<String> {
    let s = catalog::source_by_name(source_name)?;
    catalog::lock_source_control(s.id)?;
    if s.status.check_not_initialising(worker_alive(&s)?).is_err() {
        return Err(ChameleonError::state(format!("source \"{source_name}\" is initialising"))
            .with_hint("wait for the copy or stop it before detaching"));
    }
    refuse_while_copying(&s)?;
    workers::stop_all(&s, Duration::from_secs(60))?;
    let replayed = replay_now(source_name, None).map_err(|e| {
        e.context(format!(
            "detach_replica of \"{source_name}\": the stored changes could not all be replayed; nothing was detached"
        ))
    })?;
    let s = catalog::source_by_id(s.id)?;
    let done = workers::detach::detach(&s)?;
    Ok(done.summary(source_name, replayed))
}

/// Ends replication for good (the cut-over of a migration): stops the workers, replays what
/// is stored, sets every sequence past its column's maximum, creates the recorded foreign
/// keys (NOT VALID, then validated; failures are reported, not fatal) and drops the source
/// from the catalogue. The tables stay, as ordinary read-write tables. Returns a summary.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn detach_replica(source_name: &str) -> String {
    ok(detach_now(source_name))
}

/// Removes replayed batches past `batch_retention` (the log is shared by the database's
/// sources: one pass serves them all): whole log partitions are emptied with TRUNCATE, so
/// nothing is left to vacuum but the small batch rows (autovacuum). Returns a summary.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn run_maintenance(source_name: &str) -> String {
    ok((|| {
        catalog::source_by_name(source_name)?;
        Ok(workers::maintenance::run()?.summary())
    })())
}

fn replay_now(source_name: &str, max_events: Option<i64>) -> Result<i64> {
    let s = catalog::source_by_name(source_name)?;
    // (apply_batch reads the tables at its first batch)
    let mut replayer = Replayer::new(s.id, s.options()?.skip_events);
    let mut total = 0i64;
    loop {
        let batches = replayer.pending_batches(64)?;
        if batches.is_empty() {
            return Ok(total);
        }
        for b in batches {
            if max_events.is_some_and(|m| total >= m) {
                return Ok(total);
            }
            let applied = catch_pg(|| replayer.apply_batch(b.id));
            total += applied.map_err(|e| {
                let at = replayer.failure_point();
                let mut ctx = format!("replay of source \"{source_name}\"");
                if let Some(t) = at.table {
                    ctx.push_str(&format!(", table {t}"));
                }
                if let Some(p) = at.position {
                    ctx.push_str(&format!(", binlog position {p}"));
                }
                if let Some(st) = at.statement {
                    ctx.push_str(&format!(", statement {st}"));
                }
                e.context(ctx)
            })?;
        }
    }
}

/// Applies stored batches in this session (what pg_chameleon's fn_process_batch did), whole
/// batches only, until at least `max_events` row events were applied. Returns the count.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn replay(source_name: &str, max_events: default!(Option<i32>, "NULL")) -> i64 {
    ok(replay_now(source_name, max_events.map(|m| m as i64)))
}

fn wait(source_name: &str, timeout: Duration) -> Result<bool> {
    let s = catalog::source_by_name(source_name)?;
    let opts = s.options()?;
    let endpoint = Endpoint::resolve(&s.url, &opts)?;
    let mut conn = mysql_source::connect(&endpoint, None)?;
    let info = mysql_source::check_server(&mut conn)?;
    let (target, target_gtid) = mysql_source::binlog_status(&mut conn, info.flavor)?;
    drop(conn);
    let target_gtid = target_gtid.and_then(|g| GtidState::parse(&g).ok());
    let started = Instant::now();
    loop {
        let now = catalog::source_by_id(s.id)?;
        if now.status == SourceStatus::Error {
            let err = now.last_error.clone().unwrap_or_default();
            return Err(ChameleonError::state(format!("source \"{source_name}\" is in error: {err}")));
        }
        let pending = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open",
            &[s.id.into()],
        )?
        .unwrap_or(0);
        // By GTID the stored file and offset may be another server's (after a failover) or
        // not known yet (started at a GTID): compare GTID positions then.
        let by_gtid = opts.gtid_enable || now.position.is_none();
        let reached = match (&target_gtid, now.gtid.as_deref().and_then(|g| GtidState::parse(g).ok())) {
            (Some(t), Some(have)) if by_gtid => have.contains(t),
            _ => now.position.as_ref().is_some_and(|p| *p >= target),
        };
        // tables being copied again (sync_tables, refresh_schema) are not current until their
        // copy and catch-up are done
        if pending == 0 && reached && catalog::tables_being_copied(s.id)? == 0 {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        if !worker_alive(&now)? {
            return Err(ChameleonError::state(format!(
                "source \"{source_name}\" is not running (status {}): nothing will catch up",
                now.status
            )));
        }
        backend_sleep(Duration::from_millis(100));
    }
}

/// Blocks until everything the source had written when the call started has been stored
/// and replayed, and every table being copied again (`sync_tables`, `refresh_schema`) is
/// replicating (or has failed: `chameleon.tables` says why); false on timeout. Raises if the
/// source is in error.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn wait_for(source_name: &str, timeout: default!(pgrx::datum::Interval, "'5 minutes'")) -> bool {
    ok((|| {
        let secs = Spi::get_one_with_args::<f64>("SELECT extract(epoch FROM $1)::float8", &[timeout.into()])?
            .unwrap_or(300.0)
            .max(0.0);
        wait(source_name, Duration::from_secs_f64(secs))
    })())
}
