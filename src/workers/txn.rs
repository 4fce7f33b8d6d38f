//! Transactions in background workers, with PostgreSQL errors caught and turned into
//! `ChameleonError` (the transaction is rolled back), and sleeping that stays responsive
//! to interrupts and postmaster death.

use crate::error::{ChameleonError, Result};
use pgrx::pg_sys;
use pgrx::PgTryBuilder;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `body` in its own transaction: commits on `Ok`, rolls back on `Err` or on an
/// error raised by PostgreSQL (returned as a `ChameleonError` of kind `Kind::Postgres`, its SQLSTATE, detail and hint kept).
pub fn in_transaction<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    transaction(false, body)
}

/// As `in_transaction`, in a REPEATABLE READ transaction: every query of `body` sees one
/// snapshot (the verification reads the replay position, the log and a table at once).
pub fn in_repeatable_read<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    transaction(true, body)
}

fn transaction<R>(repeatable_read: bool, body: impl FnOnce() -> Result<R>) -> Result<R> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        if repeatable_read {
            pg_sys::XactIsoLevel = pg_sys::XACT_REPEATABLE_READ as i32;
        }
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result =
        PgTryBuilder::new(AssertUnwindSafe(body)).catch_others(|e| Err(ChameleonError::from_caught(&e))).execute();
    unsafe {
        match &result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// Runs `body` and turns an error PostgreSQL raises inside it into `Err`, without touching
/// the transaction (the caller must abort it).
pub fn catch_pg<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    PgTryBuilder::new(AssertUnwindSafe(body)).catch_others(|e| Err(ChameleonError::from_caught(&e))).execute()
}

/// Runs `body` in a subtransaction of the current transaction: released on `Ok`, rolled back
/// on `Err` or on an error PostgreSQL raises (returned as `Err`); the transaction goes on.
pub fn in_subtransaction<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        let result = catch_pg(body);
        match &result {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        result
    }
}

/// Runs a `CREATE INDEX` statement of a table's secondary index, in a subtransaction. An index
/// PostgreSQL cannot build over the table's rows costs that index, not the table (replay needs
/// only the key, and the source enforces its own unique indexes): an entry longer than a btree
/// page holds (a value over about 2,700 bytes that does not compress, where MySQL indexes up
/// to 3,072), two values its unique index finds equal. Then `Some(note)` says which and why;
/// any other error is returned.
pub fn build_index(sql: &str) -> Result<Option<String>> {
    use pgrx::PgSqlErrorCode::*;
    match in_subtransaction(|| crate::catalog::execute(sql)) {
        Ok(()) => Ok(None),
        Err(e) if matches!(e.code(), ERRCODE_PROGRAM_LIMIT_EXCEEDED | ERRCODE_UNIQUE_VIOLATION) => {
            Ok(Some(format!("{sql} failed, the table replicates without this index: {e}")))
        }
        Err(e) => Err(e),
    }
}

/// Sleeps on the process latch: wakes early on a signal, exits if the postmaster died,
/// and honours query cancel / terminate in ordinary backends.
pub fn backend_sleep(d: Duration) {
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            d.as_millis() as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
        pg_sys::check_for_interrupts!();
    }
}

/// Set while the worker runs work it may abandon at any point (a transaction that is rolled
/// back whole): SIGTERM then also ends a wait on a lock, as it does in an ordinary backend.
static DIE_ON_TERM: AtomicBool = AtomicBool::new(false);

/// The SIGTERM handler of every source worker (replaces pgrx's, which only sets
/// `ShutdownRequestPending` and the latch): within `abandonable`, it also asks for the
/// process to end at the next interrupt check (as PostgreSQL's `die` does), so a worker waiting
/// on a row lock held by another session stops at once instead of when the lock is released.
pub fn install_sigterm_handler() {
    // PostgreSQL 18 made the backend's pqsignal a macro for pqsignal_be
    #[cfg(not(feature = "pg18"))]
    unsafe {
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(on_sigterm))
    };
    #[cfg(feature = "pg18")]
    unsafe {
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(on_sigterm))
    };
}

unsafe extern "C-unwind" fn on_sigterm(_signal: i32) {
    unsafe {
        let saved = *libc::__errno_location();
        (&raw mut pg_sys::ShutdownRequestPending).write_volatile(1);
        if DIE_ON_TERM.load(Ordering::SeqCst) {
            ask_to_die();
        }
        pg_sys::SetLatch(pg_sys::MyLatch);
        *libc::__errno_location() = saved;
    }
}

unsafe fn ask_to_die() {
    unsafe {
        (&raw mut pg_sys::InterruptPending).write_volatile(1);
        (&raw mut pg_sys::ProcDiePending).write_volatile(1);
    }
}

/// Runs `body`, work that is rolled back whole if the process ends in its middle (a batch
/// applied with its replayed mark): a SIGTERM (stop_replica, pg_terminate_backend, a fast
/// shutdown) arriving meanwhile ends the process at the next interrupt check, also while it
/// waits on a lock.
pub fn abandonable<R>(body: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DIE_ON_TERM.store(false, Ordering::SeqCst);
        }
    }
    DIE_ON_TERM.store(true, Ordering::SeqCst);
    let _reset = Reset;
    if shutdown_requested() {
        // asked before the flag was set: end at the first interrupt check
        unsafe { ask_to_die() };
    }
    body()
}

/// Whether SIGTERM asked this worker to stop. Sticky (unlike pgrx's `sigterm_received`, which
/// clears on read), so every loop level sees it.
pub fn shutdown_requested() -> bool {
    unsafe { std::ptr::read_volatile(&raw const pg_sys::ShutdownRequestPending) != 0 }
}

/// Starts a pure-Rust thread that never receives a signal: PostgreSQL's and pgrx's signal
/// handlers (SIGTERM, SIGINT, SIGUSR1, latches) call into PostgreSQL, which only the main
/// thread may do; a signal the kernel delivered to this thread would abort the backend. The
/// signals are blocked in the calling thread while the new one starts (it inherits that
/// mask), then unblocked again.
pub fn spawn_without_signals<T, F>(name: &str, body: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let handle = std::thread::Builder::new().name(name.to_string()).spawn(body);
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        handle
    }
}

/// Freed blocks of a worker kept by malloc for its next ones, rather than given back to the
/// kernel. A worker that allocates and frees blocks of megabytes at every chunk or batch (a
/// chunk's text, a batch's rows) otherwise takes a page fault per fresh page, and the kernel
/// zeroes each: glibc maps a block above its threshold (128 kB at first, raised as such blocks
/// are freed) and unmaps it when freed, and gives back the heap's top beyond its trim
/// threshold. Blocks under 32 MB now come from the heap, and up to 64 MB free at its top stay:
/// the worker's memory is its high-water mark, which its chunks and batches bound.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
