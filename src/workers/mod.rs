//! Background workers and what they share: starting a dynamic worker for a source, the
//! transaction wrapper, and the data-path modules the workers (and the SQL API) call.
//!
//! - `init`: the initial copy's coordinator (discovery, resumption, the snapshot's global read
//!   lock, the copy workers, the start position).
//! - `copy_worker`: a copy worker; claims tables and copies each in its own transaction.
//! - `copy`: feeds PostgreSQL's own COPY machinery from a MySQL table stream.
//! - `copy_producer`: the copy's pure-Rust thread that reads the table and sends COPY text.
//! - `read`: the per-source read worker: binlog reader thread + batch writer.
//! - `batch_writer`: stores whole source transactions with the read position.
//! - `replay`: the per-source replay worker, applying stored batches to the destination.
//! - `launcher`: with preload, restarts the workers of sources that should be running.
//! - `txn`: transactions, error catching and sleeping in a backend.
//! - `verify`: the verification worker of `verify_tables`.

pub mod batch_writer;
pub mod copy;
mod copy_producer;
pub mod copy_worker;
pub mod ddl_apply;
pub mod detach;
pub mod full_row;
pub mod init;
pub mod launcher;
pub mod maintenance;
pub mod read;
pub mod refresh;
pub mod replay;
pub mod start_position;
pub mod txn;
pub mod verify;

use crate::error::{ChameleonError, Result};
use pgrx::bgworkers::{BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime};
use pgrx::prelude::*;
use std::time::Duration;

/// Which worker to start for a source.
#[derive(Debug, Clone, Copy)]
pub enum WorkerRole {
    Init,
    Copy,
    Read,
    Replay,
    Verify,
}

impl WorkerRole {
    fn function(self) -> &'static str {
        match self {
            WorkerRole::Init => "pg_chameleon_rs_init_main",
            WorkerRole::Copy => "pg_chameleon_rs_copy_main",
            WorkerRole::Read => "pg_chameleon_rs_read_main",
            WorkerRole::Replay => "pg_chameleon_rs_replay_main",
            WorkerRole::Verify => "pg_chameleon_rs_verify_main",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            WorkerRole::Init => "init",
            WorkerRole::Copy => "copy",
            WorkerRole::Read => "read",
            WorkerRole::Replay => "replay",
            WorkerRole::Verify => "verify",
        }
    }
}

/// A started worker: its pid and the handle to wait for its end.
pub struct StartedWorker {
    /// 0 when the worker had already ended by the time the postmaster reported it (`launch`).
    pub pid: i32,
    pub handle: pgrx::bgworkers::DynamicBackgroundWorker,
}

/// Starts a dynamic background worker for `source_id` in the current database.
pub fn start_worker(role: WorkerRole, source_id: i32, source_name: &str, database: &str) -> Result<StartedWorker> {
    launch(
        role,
        &format!("pg_chameleon_rs {} {}", role.label(), source_name),
        source_id.into_datum(),
        source_name,
        database,
    )
}

/// Starts copy worker `slot` of `source_id`'s initial copy.
pub fn start_copy_worker(source_id: i32, slot: i32, source_name: &str, database: &str) -> Result<StartedWorker> {
    let arg = ((source_id as i64) << 16) | (slot as i64 & 0xffff);
    launch(
        WorkerRole::Copy,
        &format!("pg_chameleon_rs copy {slot} {source_name}"),
        arg.into_datum(),
        source_name,
        database,
    )
}

/// Starts the verification worker of a run (`verify_tables`; `arg` as `verify::worker_arg`).
pub fn start_verify_worker(arg: i64, source_name: &str, database: &str) -> Result<StartedWorker> {
    launch(
        WorkerRole::Verify,
        &format!("pg_chameleon_rs verify {source_name}"),
        arg.into_datum(),
        source_name,
        database,
    )
}

/// The source id and slot of a copy worker, from its argument.
pub fn copy_worker_arg(arg: pgrx::pg_sys::Datum) -> (i32, i32) {
    let v = unsafe { i64::from_datum(arg, false) }.unwrap_or_default();
    ((v >> 16) as i32, (v & 0xffff) as i32)
}

fn launch(
    role: WorkerRole,
    name: &str,
    arg: Option<pgrx::pg_sys::Datum>,
    source_name: &str,
    database: &str,
) -> Result<StartedWorker> {
    let handle = BackgroundWorkerBuilder::new(name)
        .set_type(&worker_type(role.label()))
        .set_library("pg_chameleon_rs")
        .set_function(role.function())
        .set_argument(arg)
        .set_extra(database)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(unsafe { pgrx::pg_sys::MyProcPid })
        .load_dynamic()
        .map_err(|_| {
            ChameleonError::state(format!(
                "could not start the {} worker of source \"{source_name}\": no background worker slot is free \
                 (raise max_worker_processes)",
                role.label()
            ))
        })?;
    let pid = match handle.wait_for_startup() {
        Ok(pid) => pid,
        // It started and has already ended: a worker that fails at once (a source refusing the
        // connection) can be gone before the postmaster reports it running. What it recorded
        // (the source's last_error) says why, as for one that ran longer, so it is no start
        // failure. (The postmaster says the same of a worker it could not fork, and logs that;
        // pid 0 is then not alive, and the launcher starts a source's worker again.)
        Err(BackgroundWorkerStatus::Stopped) => 0,
        Err(status) => {
            return Err(ChameleonError::state(format!(
                "the {} worker of source \"{source_name}\" did not start ({status:?})",
                role.label()
            )))
        }
    };
    Ok(StartedWorker { pid, handle })
}

/// Whether a worker of ours with this pid is alive: in pg_stat_activity as one of our
/// workers (`pg_chameleon_rs ...`), or a child of the postmaster that is not there yet (a
/// worker just forked shows in pg_stat_activity only once it has connected to its database,
/// which takes a while on a loaded server: `wait_for` right after `start_replica` took a
/// starting worker for a dead one). A pid pg_stat_activity shows as another process (the
/// catalogue's pid of a worker gone with a crash, reused since by a checkpointer or a client
/// backend) is not ours: not alive, never signalled.
pub fn pid_alive(pid: i32) -> Result<bool> {
    // pg_stat_activity is a snapshot taken once per transaction; polling needs a fresh one.
    unsafe { pgrx::pg_sys::pgstat_clear_snapshot() };
    let listed = Spi::get_one_with_args::<String>(
        "SELECT coalesce((SELECT backend_type FROM pg_stat_activity WHERE pid = $1), '')",
        &[pid.into()],
    )?
    .unwrap_or_default();
    Ok(match listed.as_str() {
        "" => postmaster_child_starting(pid),
        t => is_our_worker(t),
    })
}

/// The start of every backend type of ours (pg_stat_activity's `backend_type`).
const WORKER_TYPE_PREFIX: &str = "pg_chameleon_rs ";

/// The backend type of our workers of this role (`replay`, `launcher`, ...), as every worker
/// is registered with it, and as `is_our_worker` recognises it.
pub fn worker_type(role: &str) -> String {
    format!("{WORKER_TYPE_PREFIX}{role}")
}

/// Whether a pg_stat_activity backend_type is one of our workers' (`worker_type`).
fn is_our_worker(backend_type: &str) -> bool {
    backend_type.starts_with(WORKER_TYPE_PREFIX)
}

/// A process with this pid exists, is a child of this server's postmaster, and is not a zombie.
fn postmaster_child_starting(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let postmaster = unsafe { pgrx::pg_sys::PostmasterPid };
    stat_parent(&stat).is_some_and(|(state, ppid)| state != 'Z' && state != 'X' && ppid == postmaster)
}

/// State and parent pid from a /proc/PID/stat line (`pid (comm) state ppid ...`; comm may
/// hold spaces and parentheses: the fields start after the last ')').
fn stat_parent(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Sets the latch of the backend with this pid, if there is one: a worker sleeping in
/// `backend_sleep` wakes at once (the read worker wakes the replay worker after storing a
/// batch). A pid reused by another backend only costs that backend a spurious wake-up.
pub fn wake(pid: Option<i32>) {
    let Some(pid) = pid else { return };
    unsafe {
        let proc_ = pgrx::pg_sys::BackendPidGetProc(pid);
        if !proc_.is_null() {
            pgrx::pg_sys::SetLatch(&raw mut (*proc_).procLatch);
        }
    }
}

/// Whether the worker whose pid the catalogue recorded (if any) is alive.
pub fn alive(pid: Option<i32>) -> Result<bool> {
    match pid {
        Some(p) => pid_alive(p),
        None => Ok(false),
    }
}

/// Sends SIGTERM to the worker with this pid once it is a backend (in the proc array);
/// false while it is not yet one. A worker just forked (`start_replica` returns as soon as the
/// postmaster has forked it) is not a backend until it connects to its database, and
/// `pg_terminate_backend` then only warns: the caller asks again until it is one.
fn signal_stop(pid: i32) -> Result<bool> {
    if unsafe { pgrx::pg_sys::BackendPidGetProc(pid) }.is_null() {
        return Ok(false);
    }
    Ok(Spi::get_one_with_args::<bool>("SELECT pg_terminate_backend($1)", &[pid.into()])?.unwrap_or(false))
}

/// Asks these workers to stop (SIGTERM, asked again until each is a backend that took it) and
/// waits until all are gone; the first one still alive after `timeout`, if any.
fn stop_and_wait(pids: &[i32], timeout: Duration) -> Result<Option<i32>> {
    let mut signalled = vec![false; pids.len()];
    let started = std::time::Instant::now();
    loop {
        let mut alive = None;
        for (i, &pid) in pids.iter().enumerate() {
            if !pid_alive(pid)? {
                continue;
            }
            if !signalled[i] {
                signalled[i] = signal_stop(pid)?;
            }
            alive.get_or_insert(pid);
        }
        let Some(pid) = alive else { return Ok(None) };
        if started.elapsed() >= timeout {
            return Ok(Some(pid));
        }
        txn::backend_sleep(Duration::from_millis(50));
    }
}

/// What the server shows of a worker that did not stop, for the error's detail: its
/// pg_stat_activity row (what it waits for, its statement), or that it is not a backend yet.
fn worker_activity(pid: i32) -> String {
    unsafe { pgrx::pg_sys::pgstat_clear_snapshot() };
    let row = Spi::connect(|c| -> Result<Option<String>> {
        let t = c.select(
            "SELECT format('%s \"%s\", state %s, waiting for %s, transaction open for %s, statement: %s', \
                    backend_type, application_name, coalesce(state, '-'), \
                    coalesce(wait_event_type || '/' || wait_event, 'nothing'), \
                    coalesce((clock_timestamp() - xact_start)::text, '-'), coalesce(left(query, 200), '-')) \
               FROM pg_stat_activity WHERE pid = $1",
            None,
            &[pid.into()],
        )?;
        Ok(if t.is_empty() { None } else { t.first().get_one::<String>()? })
    });
    match row {
        Ok(Some(r)) => format!("pid {pid}: {r}"),
        Ok(None) => format!("pid {pid} is a child of the postmaster not yet connected to its database"),
        Err(e) => format!("pid {pid}: pg_stat_activity could not be read ({e})"),
    }
}

/// The error for a worker that did not stop in time, saying what it was doing.
fn did_not_stop(pid: i32, whose: &str, timeout: Duration) -> ChameleonError {
    ChameleonError::state(format!("the worker (pid {pid}){whose} did not stop within {} s", timeout.as_secs()))
        .with_detail(worker_activity(pid))
        .with_hint("it is asked to stop again by the next call; pg_terminate_backend or a server restart ends it")
}

/// Asks a worker to stop (SIGTERM) and waits until it is gone (at once if it is not alive);
/// false if it did not stop within `timeout`.
pub fn stop_worker(pid: i32, timeout: Duration) -> Result<bool> {
    Ok(stop_and_wait(&[pid], timeout)?.is_none())
}

/// Asks every one of these workers to stop at once (SIGTERM), then waits until all are gone;
/// Err naming the first that did not stop within `timeout`.
pub fn stop_workers(pids: &[i32], timeout: Duration) -> Result<()> {
    match stop_and_wait(pids, timeout)? {
        None => Ok(()),
        Some(pid) => Err(did_not_stop(pid, "", timeout)),
    }
}

/// Starts whichever of the read and replay workers of a running source is not alive, and
/// records their pids. Used by `start_replica` and the launcher.
pub fn ensure_running(s: &crate::catalog::SourceRow, database: &str) -> Result<Vec<String>> {
    let mut started = Vec::new();
    if !alive(s.worker_pid)? {
        let w = start_worker(WorkerRole::Read, s.id, &s.name, database)?;
        crate::catalog::set_worker_pid(s.id, Some(w.pid))?;
        started.push(format!("read (pid {})", w.pid));
    }
    if !alive(s.replay_pid)? {
        let w = start_worker(WorkerRole::Replay, s.id, &s.name, database)?;
        crate::catalog::set_replay_pid(s.id, Some(w.pid))?;
        started.push(format!("replay (pid {})", w.pid));
    }
    Ok(started)
}

/// Stops the read and replay workers of a source; Err if one does not stop in time.
pub fn stop_all(s: &crate::catalog::SourceRow, timeout: Duration) -> Result<()> {
    let pids: Vec<i32> = [s.worker_pid, s.replay_pid].into_iter().flatten().collect();
    match stop_and_wait(&pids, timeout)? {
        None => Ok(()),
        Some(pid) => Err(did_not_stop(pid, &format!(" of source \"{}\"", s.name), timeout)),
    }
}

/// The common start of every source worker: signal handlers, connection to the database
/// named in `bgw_extra`, and the source id from the argument.
pub fn worker_prologue(arg: pgrx::pg_sys::Datum) -> i32 {
    attach_and_connect();
    wait_for_catalogue_version();
    unsafe { i32::from_datum(arg, false) }.unwrap_or_default()
}

/// New binaries started by a server restart (or the launcher) before `ALTER EXTENSION
/// pg_chameleon_rs UPDATE`: the worker waits, saying why once, instead of running against a
/// catalogue it does not know; it goes on as soon as the catalogue is updated.
fn wait_for_catalogue_version() {
    let mut said = false;
    while let Err(e) = txn::in_transaction(crate::catalog::check_catalogue_version) {
        if !said {
            pgrx::log!("pg_chameleon_rs: {e}; the worker waits for it");
            said = true;
        }
        if txn::shutdown_requested() {
            return;
        }
        txn::backend_sleep(std::time::Duration::from_secs(2));
    }
}

/// Signal handlers and the connection to the database named in `bgw_extra`.
pub fn attach_and_connect() {
    use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    txn::install_sigterm_handler();
    BackgroundWorker::connect_worker_to_spi(Some(BackgroundWorker::get_extra()), None);
}

/// A read or replay worker stopping on a fatal error: the source goes to `error` with the
/// message and is no longer wanted running (the launcher leaves it alone).
pub fn stop_source_on_error(source_id: i32, role: WorkerRole, message: &str) {
    pgrx::log!("pg_chameleon_rs: {} worker of source id {source_id} stopped on error: {message}", role.label());
    let _ = txn::in_transaction(|| {
        crate::catalog::set_source_error(source_id, Some(crate::core::state::SourceStatus::Error), message)?;
        crate::catalog::set_want_running(source_id, false)?;
        match role {
            WorkerRole::Replay => crate::catalog::set_replay_pid(source_id, None),
            _ => crate::catalog::set_worker_pid(source_id, None),
        }
    });
}

/// Sets `application_name` of the worker so it shows in pg_stat_activity.
pub fn set_application_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        unsafe { pgrx::pg_sys::pgstat_report_appname(c.as_ptr()) };
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{is_our_worker, stat_parent, worker_type};
    use pgrx::prelude::*;

    #[test]
    fn only_our_workers_backend_types_are_ours() {
        for t in ["pg_chameleon_rs read", "pg_chameleon_rs replay", "pg_chameleon_rs launcher"] {
            assert!(is_our_worker(t), "{t}");
        }
        for role in ["init", "copy", "read", "replay", "verify", "launcher"] {
            assert!(is_our_worker(&worker_type(role)), "{role}");
        }
        for t in
            ["checkpointer", "client backend", "autovacuum worker", "pg_chameleon_rs", "logical replication worker"]
        {
            assert!(!is_our_worker(t), "{t}");
        }
    }

    #[test]
    fn the_parent_pid_is_read_after_the_last_parenthesis() {
        assert_eq!(stat_parent("4711 (postgres) S 42 4711 4711 0 -1"), Some(('S', 42)));
        assert_eq!(stat_parent("4711 (pg_chameleon_rs (read) x) R 7 1 1"), Some(('R', 7)));
        assert_eq!(stat_parent("4711 (bgworker) Z"), None);
        assert_eq!(stat_parent("garbage"), None);
    }

    #[pg_test]
    fn a_pid_that_is_not_one_of_our_workers_is_not_alive_and_stops_at_once() {
        // pids the catalogue may still hold after a crash, reused since by other processes
        let others = Spi::connect(|c| {
            c.select(
                "SELECT pid FROM pg_stat_activity WHERE backend_type IN ('checkpointer', 'client backend')",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<i32>(1).unwrap().unwrap())
            .collect::<Vec<i32>>()
        });
        assert!(others.len() >= 2, "{others:?}");
        for pid in others {
            assert!(!super::pid_alive(pid).unwrap(), "pid {pid}");
            assert!(super::stop_worker(pid, std::time::Duration::from_secs(5)).unwrap(), "pid {pid}");
        }
        // this backend is still here: it was never signalled
        assert_eq!(Spi::get_one::<i32>("SELECT 1").unwrap(), Some(1));
    }
}
