//! Replay by several workers of one source (`replay_workers` > 1; docs/internals.md "Parallel
//! replay"). The source's replay worker (the leader) starts `replay_workers - 1` helpers and
//! starts again one that ended; it terminates them when it stops, and a helper whose leader is
//! gone stops by itself.
//!
//! Every one of them takes the source's first pending batch that no other holds (its row
//! locked FOR UPDATE SKIP LOCKED, `Replayer::claim_batch`) and applies it in one transaction
//! with its replayed mark, as a single worker does. Next to earlier batches still being
//! applied, it applies at once only the events touching none of their rows
//! (`core::overlap`), then waits for the earlier batches to commit (a row lock wait on
//! their batch rows, which the deadlock detector sees) before the rest and before its own
//! commit: commits stay in batch order, so PostgreSQL never shows a source transaction
//! before an earlier one (contract 2), and a batch whose earlier one was rolled back rolls
//! back too.
//!
//! A batch that fails next to others is applied again in turn. A helper never records an
//! error: it leaves the batch (it never takes it again) and the leader, taking it in turn
//! (after every earlier batch, as a single worker does), applies it one more time, where an
//! error is the event's own: recorded, retried, disabling a table or stopping the source
//! exactly as with one worker.

use crate::catalog;
use crate::core::options::SourceOptions;
use crate::error::{ChameleonError, Result};
use crate::workers::replay::{replay_one, Replayed, Replayer};
use crate::workers::txn::{abandonable, backend_sleep, in_transaction, shutdown_requested};
use pgrx::bgworkers::{BackgroundWorkerStatus, DynamicBackgroundWorker};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pids of the leader's helpers, for `end_helpers` (also when the leader exits on FATAL,
/// from its exit callback).
static HELPER_PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static EXIT_HOOK: AtomicBool = AtomicBool::new(false);

/// How long a stopping leader waits for its helpers to be gone.
const HELPERS_STOP_WAIT: Duration = Duration::from_secs(30);

/// What one claim of a batch came to.
enum Step {
    /// No pending batch is free.
    Idle,
    /// This many row events applied.
    Applied(i64),
    /// An earlier batch is waiting for a worker or was rolled back: try again shortly.
    NotYet,
    /// The batch failed (perhaps only because it ran next to others).
    Failed(i64, ChameleonError),
    /// Claiming failed: the catalogue could not be read.
    Broken(ChameleonError),
}

/// Claims the next batch and applies it (`passed`: batches this worker left to the leader).
fn step(replayer: &mut Replayer, passed: &[i64]) -> Step {
    let claimed: Cell<Option<i64>> = Cell::new(None);
    let not_yet = Cell::new(false);
    let outcome = abandonable(|| {
        in_transaction(|| {
            let Some(c) = replayer.claim_batch(passed)? else { return Ok(None) };
            claimed.set(Some(c.id));
            let applied = if c.earlier.is_empty() || replayer.earlier_all_held(c.id)? {
                replayer.apply_claimed(&c)?
            } else {
                None
            };
            match applied {
                Some(n) => Ok(Some(n)),
                None => {
                    // roll back: nothing of this batch may commit before the earlier ones
                    not_yet.set(true);
                    Err(ChameleonError::state(format!("batch {} waits for an earlier batch", c.id)))
                }
            }
        })
    });
    match (outcome, claimed.get()) {
        (Ok(None), _) => Step::Idle,
        (Ok(Some(n)), _) => Step::Applied(n),
        (Err(_), _) if not_yet.get() => Step::NotYet,
        (Err(e), Some(id)) => Step::Failed(id, e),
        (Err(e), None) => Step::Broken(e),
    }
}

/// The longest round of the leader.
const ROUND: Duration = Duration::from_secs(1);

/// How long a worker waits after an earlier batch was not ready.
const NOT_YET_WAIT: Duration = Duration::from_millis(5);

/// One round of the leader: applies batches, with its helpers, until none is free or
/// `ROUND` has passed (the replay worker then runs its maintenance and starts a helper that
/// ended); returns the row events it applied (at least 1 per batch). A batch that failed is
/// applied again in turn by `replay_one`, whose error (an `exit` under `on_error_replay`) is
/// returned.
pub fn leader_round(replayer: &mut Replayer, source_id: i32, options: &SourceOptions) -> Result<i64> {
    let mut total = 0;
    let started = Instant::now();
    while !shutdown_requested() && started.elapsed() < ROUND {
        match step(replayer, &[]) {
            Step::Idle => break,
            Step::Applied(n) => total += n.max(1),
            Step::NotYet => backend_sleep(NOT_YET_WAIT),
            Step::Broken(e) => return Err(e),
            Step::Failed(id, e) => {
                debug1!("pg_chameleon_rs: batch {id} failed next to earlier ones ({e}): applied again in turn");
                match replay_one(replayer, source_id, options, id, true)? {
                    Replayed::Applied(n) => total += n.max(1),
                    Replayed::NotYet => backend_sleep(NOT_YET_WAIT),
                    Replayed::Stopped => break,
                }
            }
        }
    }
    Ok(total)
}

/// The helpers a leader started, and how many it wants.
pub struct Helpers {
    source_id: i32,
    source_name: String,
    database: String,
    wanted: usize,
    running: Vec<DynamicBackgroundWorker>,
    last_start: Option<Instant>,
}

/// How often a leader tries again to start helpers it lacks.
const RESTART_EVERY: Duration = Duration::from_secs(5);

impl Helpers {
    pub fn new(source_id: i32, source_name: &str, database: &str, wanted: usize) -> Helpers {
        Helpers {
            source_id,
            source_name: source_name.to_string(),
            database: database.to_string(),
            wanted,
            running: Vec::new(),
            last_start: None,
        }
    }

    /// Starts the helpers that are not running (at most every `RESTART_EVERY`); one that
    /// cannot start (no background worker slot free) is said in the server log, and replay
    /// goes on with fewer. Outside a transaction: the handles outlive it.
    pub fn keep(&mut self) {
        self.running.retain(|h| matches!(h.pid(), Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted)));
        if self.running.len() >= self.wanted || self.last_start.is_some_and(|t| t.elapsed() < RESTART_EVERY) {
            return;
        }
        self.last_start = Some(Instant::now());
        if !EXIT_HOOK.swap(true, Ordering::SeqCst) {
            // a leader ending in any way (stop_replica's SIGTERM ends it at once, with FATAL)
            // ends its helpers first: none applies a batch after the source is stopped
            unsafe { pg_sys::before_shmem_exit(Some(end_helpers_at_exit), pg_sys::Datum::from(0usize)) };
        }
        let leader = unsafe { pg_sys::MyProcPid };
        while self.running.len() < self.wanted {
            match super::start_replay_helper(self.source_id, leader, &self.source_name, &self.database) {
                Ok(w) => {
                    if let Ok(mut pids) = HELPER_PIDS.lock() {
                        pids.retain(|&p| backend_alive(p));
                        pids.push(w.pid);
                    }
                    self.running.push(w.handle);
                }
                Err(e) => {
                    log!(
                        "pg_chameleon_rs: source \"{}\" is replayed by {} workers, not {}: {e}",
                        self.source_name,
                        self.running.len() + 1,
                        self.wanted + 1
                    );
                    return;
                }
            }
        }
    }

    /// Terminates the helpers and waits until they are gone.
    pub fn stop(self) {
        end_helpers();
    }
}

/// Terminates the leader's helpers (SIGTERM: one applying a batch rolls it back) and waits
/// until they are gone (at most `HELPERS_STOP_WAIT`).
fn end_helpers() {
    let pids: Vec<i32> = match HELPER_PIDS.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    let alive: Vec<i32> = pids.into_iter().filter(|&p| backend_alive(p)).collect();
    for &pid in &alive {
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let since = Instant::now();
    while alive.iter().any(|&p| backend_alive(p)) && since.elapsed() < HELPERS_STOP_WAIT {
        unsafe { pg_sys::pg_usleep(10_000) };
    }
}

unsafe extern "C-unwind" fn end_helpers_at_exit(_code: std::os::raw::c_int, _arg: pg_sys::Datum) {
    end_helpers();
}

/// The argument of a helper: its source and its leader's pid.
pub fn helper_arg(source_id: i32, leader_pid: i32) -> i64 {
    ((leader_pid as i64) << 32) | (source_id as u32 as i64)
}

fn from_helper_arg(arg: i64) -> (i32, i32) {
    (arg as u32 as i32, (arg >> 32) as i32)
}

/// Whether the backend with this pid (the leader) is alive: its PGPROC, read without a
/// transaction.
fn backend_alive(pid: i32) -> bool {
    unsafe { !pg_sys::BackendPidGetProc(pid).is_null() }
}

/// A helper replay worker (started by its source's replay worker).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_replay_helper_main(arg: pg_sys::Datum) {
    crate::workers::attach_and_connect();
    let (source_id, leader) = from_helper_arg(unsafe { i64::from_datum(arg, false) }.unwrap_or_default());
    if let Err(e) = run_helper(source_id, leader) {
        log!("pg_chameleon_rs: a replay helper of source id {source_id} stopped: {e}");
    }
}

fn run_helper(source_id: i32, leader: i32) -> Result<()> {
    let source = in_transaction(|| catalog::source_by_id(source_id))?;
    crate::workers::set_application_name(&format!("pg_chameleon_rs replay {} (helper)", source.name));
    let options = source.options()?;
    let mut replayer = Replayer::new(source_id, options.skip_events.clone());
    let idle = options.sleep_loop_duration().min(Duration::from_millis(50));
    // batches this helper failed on: the leader applies them in turn
    let mut passed: Vec<i64> = Vec::new();
    while !shutdown_requested() && backend_alive(leader) {
        match step(&mut replayer, &passed) {
            Step::Idle => backend_sleep(idle),
            Step::Applied(_) => {}
            Step::NotYet => backend_sleep(NOT_YET_WAIT),
            Step::Failed(id, e) => {
                debug1!("pg_chameleon_rs: replay helper left batch {id} to the replay worker: {e}");
                passed.push(id);
                if passed.len() > 1_000 {
                    passed.drain(..500);
                }
            }
            Step::Broken(e) => {
                log!("pg_chameleon_rs: a replay helper of source \"{}\" could not claim a batch: {e}", source.name);
                backend_sleep(Duration::from_secs(1));
            }
        }
    }
    Ok(())
}
