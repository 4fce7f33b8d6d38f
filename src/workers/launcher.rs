//! The launcher (only with `shared_preload_libraries = 'pg_chameleon_rs'`): a static
//! background worker connected to `chameleon.database_name` that starts the read and replay
//! workers of every source whose desired state is running and whose workers are not alive — after a server
//! start, a crash restart, or a worker that died — and resumes an initial copy whose
//! coordinator died. Like PostgreSQL's logical replication
//! launcher, it only starts workers; it never replicates itself.
//!
//! It takes the same per-source advisory lock as the SQL functions that change a source's
//! desired state (`stop_replica`, `drop_source`, ...), and skips a source whose lock is held,
//! so it never restarts a worker that is being stopped.

use crate::catalog;
use crate::core::state::SourceStatus;
use crate::error::Result;
use crate::workers;
use crate::workers::txn::{backend_sleep, in_transaction, shutdown_requested};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::Duration;

pub static DATABASE_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(2000);

/// When preloaded: registers the launcher's GUCs and the launcher. Called from `_PG_init`.
/// Without preload nothing is registered (a PGC_POSTMASTER setting cannot be defined after
/// startup, and there is no launcher to configure).
pub fn init() {
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    GucRegistry::define_string_guc(
        c"chameleon.database_name",
        c"Database in which the pg_chameleon_rs launcher looks for sources to keep running.",
        c"The launcher connects to this database (like pg_cron's cron.database_name); sources of other databases are started by start_replica only.",
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
        .set_type("pg_chameleon_rs launcher")
        .set_library("pg_chameleon_rs")
        .set_function("pg_chameleon_rs_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = DATABASE_NAME.get().and_then(|c| c.into_string().ok()).unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    workers::set_application_name("pg_chameleon_rs launcher");
    log!("pg_chameleon_rs launcher started in database \"{db}\"");
    while !shutdown_requested() {
        if let Err(e) = in_transaction(|| round(&db)) {
            log!("pg_chameleon_rs launcher: {e}");
        }
        let nap = Duration::from_millis(NAPTIME_MS.get().max(100) as u64);
        let until = std::time::Instant::now() + nap;
        while std::time::Instant::now() < until && !shutdown_requested() {
            backend_sleep(Duration::from_millis(200));
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
    }
    // SIGTERM: server shutdown, or pg_terminate_backend / DROP DATABASE ... WITH (FORCE) of its
    // database. Exit code 0 would unregister the launcher until the next server start; with 1
    // the postmaster starts it again after bgw_restart_time (a shutting-down server does not).
    log!("pg_chameleon_rs launcher stopping on SIGTERM (restarted in 5 s unless the server is shutting down)");
    unsafe { pg_sys::proc_exit(1) };
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

/// One check: start the worker of every source that should run and does not.
fn round(db: &str) -> Result<()> {
    let installed = Spi::connect(|c| -> Result<bool> {
        Ok(!c.select("SELECT 1 FROM pg_extension WHERE extname = 'pg_chameleon_rs'", None, &[])?.is_empty())
    })?;
    if !installed {
        return Ok(());
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
    Ok(())
}
