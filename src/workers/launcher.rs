//! The launcher (only with `shared_preload_libraries = 'pg_chameleon_rs'`), in two levels, as
//! pglogical's supervisor and managers:
//!
//! - the **supervisor**, a static background worker connected to no database (it reads only the
//!   shared catalogue `pg_database`), starts one database launcher in every database that
//!   accepts connections and is not a template — or only in `chameleon.database_name` when that
//!   optional restriction is set — and starts it again if it ends (a database without the
//!   extension is looked at again every `RECHECK_ROUNDS` naptimes);
//! - a **database launcher**, a dynamic worker connected to one database, exits at once when the
//!   extension is not installed there; otherwise it starts the read and replay workers of every
//!   source whose desired state is running and whose workers are not alive — after a server
//!   start, a crash restart, or a worker that died — and resumes an initial copy whose
//!   coordinator died, and a `sync_tables` copy cut short (tables still to copy, no coordinator).
//!
//! Like PostgreSQL's logical replication launcher, neither replicates itself.
//!
//! A database launcher takes the same per-source advisory lock as the SQL functions that change a source's
//! desired state (`stop_replica`, `drop_source`, ...), and skips a source whose lock is held,
//! so it never restarts a worker that is being stopped. It holds a session advisory lock for
//! its database, so a supervisor started again never runs two in one database.

use crate::catalog;
use crate::core::state::SourceStatus;
use crate::error::Result;
use crate::workers;
use crate::workers::txn::{backend_sleep, in_transaction, shutdown_requested};
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime, DynamicBackgroundWorker,
    SignalWakeFlags,
};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::time::{Duration, Instant};

pub static DATABASE_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(2000);

/// Naptimes after which the supervisor starts again the database launcher of a database whose
/// launcher ended (no extension there, or it failed): a database where the extension is
/// created later is served within this many naptimes.
const RECHECK_ROUNDS: u32 = 10;

/// When preloaded: registers the launcher's GUCs and the supervisor. Called from `_PG_init`.
/// Without preload nothing is registered (a PGC_POSTMASTER setting cannot be defined after
/// startup, and there is no launcher to configure).
pub fn init() {
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    GucRegistry::define_string_guc(
        c"chameleon.database_name",
        c"If set, the only database in which the pg_chameleon_rs launcher keeps sources running.",
        c"Unset or empty (the default): every database that has the extension is served.",
        &DATABASE_NAME,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"chameleon.launcher_naptime",
        c"Milliseconds between the launcher's checks for sources whose worker is not running.",
        c"",
        &NAPTIME_MS,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    BackgroundWorkerBuilder::new("pg_chameleon_rs launcher")
        .set_type(&workers::worker_type("launcher"))
        .set_library("pg_chameleon_rs")
        .set_function("pg_chameleon_rs_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

/// `chameleon.database_name`, if set to a name.
fn restriction() -> Option<String> {
    DATABASE_NAME.get().and_then(|c| c.into_string().ok()).filter(|s| !s.trim().is_empty())
}

fn naptime() -> Duration {
    Duration::from_millis(NAPTIME_MS.get().max(100) as u64)
}

/// Sleeps one naptime (waking early on a latch: a database launcher that ended), reloading
/// the configuration on SIGHUP.
fn nap() {
    let until = Instant::now() + naptime();
    while Instant::now() < until && !shutdown_requested() {
        backend_sleep(Duration::from_millis(200));
    }
    if BackgroundWorker::sighup_received() {
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
}

/// The supervisor's main: connected to no database, it keeps one database launcher in each
/// database it should serve.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    workers::set_application_name("pg_chameleon_rs launcher");
    match restriction() {
        Some(db) => log!("pg_chameleon_rs launcher started for database \"{db}\" (chameleon.database_name)"),
        None => log!("pg_chameleon_rs launcher started for every database that has the extension"),
    }
    let mut launchers: HashMap<String, DatabaseLauncher> = HashMap::new();
    while !shutdown_requested() {
        let databases = connectable_databases();
        let only = restriction();
        launchers.retain(|name, _| databases.contains(name));
        for db in databases.into_iter().filter(|d| only.as_ref().is_none_or(|o| o == d)) {
            launchers.entry(db.clone()).or_insert_with(DatabaseLauncher::new).keep_running(&db);
        }
        nap();
    }
    // SIGTERM: server shutdown, or pg_terminate_backend. Exit code 0 would unregister the
    // supervisor until the next server start; with 1 the postmaster starts it again after
    // bgw_restart_time (a shutting-down server does not). Its database launchers stop by
    // themselves on shutdown; a supervisor started again finds them by their lock.
    log!("pg_chameleon_rs launcher stopping on SIGTERM (restarted in 5 s unless the server is shutting down)");
    unsafe { pg_sys::proc_exit(1) };
}

/// The supervisor's view of the database launcher of one database.
struct DatabaseLauncher {
    handle: Option<DynamicBackgroundWorker>,
    next_start: Instant,
}

impl DatabaseLauncher {
    fn new() -> Self {
        DatabaseLauncher { handle: None, next_start: Instant::now() }
    }

    /// Starts the database launcher of `db` unless one is alive or it ended less than
    /// `RECHECK_ROUNDS` naptimes ago.
    fn keep_running(&mut self, db: &str) {
        if let Some(h) = &self.handle {
            match h.pid() {
                Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted) => return,
                Err(_) => {
                    self.handle = None;
                    self.next_start = Instant::now() + naptime() * RECHECK_ROUNDS;
                }
            }
        }
        if Instant::now() < self.next_start {
            return;
        }
        self.next_start = Instant::now() + naptime() * RECHECK_ROUNDS;
        match BackgroundWorkerBuilder::new(&format!("pg_chameleon_rs launcher {db}"))
            .set_type(&workers::worker_type("launcher"))
            .set_library("pg_chameleon_rs")
            .set_function("pg_chameleon_rs_database_launcher_main")
            .set_extra(db)
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(None)
            .set_notify_pid(unsafe { pg_sys::MyProcPid })
            .load_dynamic()
        {
            Ok(h) => self.handle = Some(h),
            Err(_) => log!(
                "pg_chameleon_rs launcher: could not start the launcher of database \"{db}\": no background worker \
                 slot is free (raise max_worker_processes); tried again in {} s",
                (naptime() * RECHECK_ROUNDS).as_secs()
            ),
        }
    }
}

/// The databases a launcher can serve: those that accept connections and are not templates,
/// read from the shared catalogue `pg_database` (the supervisor is connected to no database),
/// as PostgreSQL's own logical replication launcher reads `pg_subscription`.
fn connectable_databases() -> Vec<String> {
    let mut names = Vec::new();
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        let _ = pg_sys::GetTransactionSnapshot();
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let db = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if (*db).datallowconn && !(*db).datistemplate {
                let name = std::ffi::CStr::from_ptr((*db).datname.data.as_ptr());
                names.push(name.to_string_lossy().into_owned());
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        pg_sys::CommitTransactionCommand();
    }
    names
}

/// A database launcher's main: serves the database named in `bgw_extra` while the extension
/// is installed there; ends when it is not (or is dropped), or when another launcher holds
/// the database's lock.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_database_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    workers::set_application_name("pg_chameleon_rs launcher");
    match in_transaction(claim_database) {
        Ok(true) => {}
        Ok(false) => unsafe { pg_sys::proc_exit(0) },
        Err(e) => {
            log!("pg_chameleon_rs launcher of database \"{db}\": {e}");
            unsafe { pg_sys::proc_exit(0) }
        }
    }
    log!("pg_chameleon_rs launcher started in database \"{db}\"");
    let mut seen = HashSet::new();
    while !shutdown_requested() {
        match in_transaction(|| round(&db, &mut seen)) {
            Ok(true) => {}
            Ok(false) => {
                log!("pg_chameleon_rs launcher of database \"{db}\" stopping: the extension is no longer installed");
                break;
            }
            Err(e) => log!("pg_chameleon_rs launcher: database \"{db}\": {e}"),
        }
        nap();
    }
    unsafe { pg_sys::proc_exit(0) };
}

/// Whether the extension is installed in this database.
fn extension_installed() -> Result<bool> {
    Spi::connect(|c| -> Result<bool> {
        Ok(!c.select("SELECT 1 FROM pg_extension WHERE extname = 'pg_chameleon_rs'", None, &[])?.is_empty())
    })
}

/// True when this database has the extension and no other launcher serves it (this one then
/// holds the database's session advisory lock until it exits).
fn claim_database() -> Result<bool> {
    if !extension_installed()? {
        return Ok(false);
    }
    Ok(Spi::get_one::<bool>("SELECT pg_try_advisory_lock(hashtext('pg_chameleon_rs launcher'), 0)")?.unwrap_or(false))
}

/// Restarts the init worker of a source whose initial copy was cut short; it keeps the tables
/// already copied.
fn resume_copy(s: &catalog::SourceRow, db: &str) -> Result<()> {
    if !catalog::try_lock_source_control(s.id)? {
        return Ok(());
    }
    let s = catalog::source_by_id(s.id)?;
    if s.status != SourceStatus::Initialising || workers::alive(s.worker_pid)? {
        return Ok(());
    }
    match workers::start_worker(workers::WorkerRole::Init, s.id | workers::init::RESUME_FLAG, &s.name, db) {
        Ok(w) => {
            catalog::set_worker_pid(s.id, Some(w.pid))?;
            log!(
                "pg_chameleon_rs launcher: source \"{}\": resuming the interrupted initial copy (pid {})",
                s.name,
                w.pid
            );
        }
        Err(e) => log!("pg_chameleon_rs launcher: source \"{}\": {e}", s.name),
    }
    Ok(())
}

/// Resumes the `sync_tables` of a running source that was cut short (a crash, a server
/// restart): tables still to copy and no coordinator, seen in two rounds in a row (a
/// coordinator `sync_tables` just started may not hold its lock yet; one started twice exits).
fn resume_sync(s: &catalog::SourceRow, seen: &mut HashSet<i32>) -> Result<()> {
    let due = catalog::tables_awaiting_copy(s.id)? > 0 && catalog::sync_coordinator_pid(s.id)?.is_none();
    if !due {
        seen.remove(&s.id);
        return Ok(());
    }
    if seen.insert(s.id) || !catalog::try_lock_source_control(s.id)? {
        return Ok(());
    }
    let s = catalog::source_by_id(s.id)?;
    if !s.want_running || s.status != SourceStatus::Running {
        return Ok(());
    }
    match workers::init::resume_sync(&s) {
        Ok(true) => {
            seen.remove(&s.id);
            log!("pg_chameleon_rs launcher: source \"{}\": resuming the interrupted copy of its pending tables", s.name)
        }
        Ok(false) => {}
        Err(e) => log!("pg_chameleon_rs launcher: source \"{}\": {e}", s.name),
    }
    Ok(())
}

/// One check: start the worker of every source that should run and does not. False when
/// the extension is no longer installed. `seen`: the sources whose sync looked interrupted
/// in the previous round.
fn round(db: &str, seen: &mut HashSet<i32>) -> Result<bool> {
    if !extension_installed()? {
        return Ok(false);
    }
    for s in catalog::all_sources()? {
        // an initial copy whose coordinator died (crash, server restart) resumes
        if s.status == SourceStatus::Initialising && !workers::alive(s.worker_pid)? {
            resume_copy(&s, db)?;
            continue;
        }
        // only sources that were running (a stopped or failed one stays as it is)
        if !s.want_running || s.status != SourceStatus::Running {
            continue;
        }
        resume_sync(&s, seen)?;
        if workers::alive(s.worker_pid)? && workers::alive(s.replay_pid)? {
            continue;
        }
        if !catalog::try_lock_source_control(s.id)? {
            continue; // a stop/drop/start is in progress for this source
        }
        let s = catalog::source_by_id(s.id)?;
        if !s.want_running || s.status != SourceStatus::Running {
            continue;
        }
        match workers::ensure_running(&s, db) {
            Ok(started) if !started.is_empty() => {
                log!("pg_chameleon_rs launcher: source \"{}\": started {}", s.name, started.join(", "))
            }
            Ok(_) => {}
            Err(e) => log!("pg_chameleon_rs launcher: source \"{}\": {e}", s.name),
        }
    }
    Ok(true)
}
