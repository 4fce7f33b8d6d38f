//! The verification worker (`verify_tables`): compares each table of a run with the source
//! while replication and the application keep running, exactly (README,
//! "Verifying a replica").
//!
//! Per table, a pure-Rust producer thread reads the source in chunks of `CHUNK_ROWS` rows in
//! key order (`... WHERE key > last ORDER BY key LIMIT n`), in a consistent snapshot whose
//! binlog position P it knows (`mysql_source::table_snapshot`: MariaDB reports it lock-free;
//! MySQL takes `LOCK TABLES t READ` for the moment the snapshot opens, as the copy does),
//! converting every value with the copy's converter (`core::value::from_text`). A snapshot
//! serves `SNAPSHOT_SECONDS`, then a new one is opened. The worker's main thread, for each
//! chunk: waits once per snapshot until replay has passed P (the read position is at or after
//! P and every batch stored by then is replayed); then in one REPEATABLE READ transaction
//! reads how far replay has gone (R: every batch up to an id is replayed, each batch commits
//! with its rows), the table's stored events of the replayed batches after P (the log keeps
//! full new rows and old keys), and the destination rows of the chunk's key range; it moves
//! the source rows from P to R with those events and matches both sides
//! (`core::verify`). Values whose text differs are decided by PostgreSQL: the source text cast
//! to the column's type (what COPY would store) against the destination's.
//!
//! A table whose key is not a single integer column is read in the source's own key order
//! (`core::keyset`: each chunk after the last key read, as literals the source compares under
//! the column's collation); a chunk is compared with the destination rows of its keys, moved
//! forward by the stored changes of those keys only. The keys compared are kept in a temporary
//! table; at the end the destination's keys that no chunk compared (inserted since their chunk
//! was read, or extra) are read again on the source by key, a page at a time in a new snapshot,
//! and compared the same way. A table without a key is compared whole, in one snapshot, as a
//! multiset counted by PostgreSQL (`compare_multiset_at_replay`: the source's rows as text in a
//! temporary table, one `GROUP BY` with the destination's), so that memory is one chunk. A
//! table whose key cannot be written as literals (a TIME mapped to interval) is compared
//! whole, as one chunk, in memory (its memory grows with the table).
//!
//! Verification yields to replay: before each chunk it waits while the oldest batch not yet
//! replayed is older than `REPLAY_LAG_BOUND` (at most `YIELD_MAX` a chunk), so that on a busy
//! machine the replica's lag stays in its usual range and the verification goes slower.
//!
//! With `repair`, a different table's rows are rewritten by key (`repair`), or the table is
//! copied again by `sync_tables`, and it is compared again.
//!
//! A run's tables are compared `verify_workers` at a time: the worker `verify_tables` starts
//! (the leader) starts helpers, each worker claims the run's next table in order
//! (`catalog::claim_verify_table`) until none is left; the leader then waits for its helpers
//! and ends the run. A leader stopped, terminated or failing terminates them; a table a helper
//! finishes after its run ended keeps what the end recorded (`failed`). Repairs of a source
//! run one at a time (a session advisory lock), since a source runs one copy at a time.

use crate::catalog::{self, TableRow};
use crate::core::change::Op;
use crate::core::endpoint::Endpoint;
use crate::core::error::{CoreError, CoreResult};
use crate::core::keyset::{self, LiteralKind};
use crate::core::mysql_source::{self, Flavor};
use crate::core::position::{after_consistent_point, BinlogPosition};
use crate::core::rowcodec;
use crate::core::sql::{quote_ident, quote_mysql_ident};
use crate::core::state::{SourceStatus, TableState};
use crate::core::types::ValueKind;
use crate::core::value;
use crate::core::verify::{
    change_keys, chunk_text, decide, moved_forward_in_key_order, parse_record_text, record_text, touches, Change,
    ChunkColumn, ChunkCompare, ColumnForm, Delimit, Diff, DiffKind, KeyRange, Row, Tally, SAMPLE_ROWS,
};
use crate::error::{ChameleonError, Result};
use crate::workers::txn::{
    abandonable, backend_sleep, in_repeatable_read, in_subtransaction, in_transaction, keep_freed_memory,
    shutdown_requested, spawn_without_signals,
};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

mod repair;
use std::time::{Duration, Instant};

/// Rows per chunk: the memory of a chunk (both sides) and the unit of progress.
const CHUNK_ROWS: usize = 10_000;
/// Keys per read-again of a table read in the source's key order (one `IN` list).
const RECHECK_KEYS: usize = 1_000;
/// How long one source snapshot serves before a new one is opened: bounds the change events
/// kept to move the source rows forward (those of the table in that time).
const SNAPSHOT_SECONDS: u64 = 10;
/// How long to wait for replay to pass a snapshot's position.
const REPLAY_WAIT: Duration = Duration::from_secs(600);
/// The replay lag (age of the oldest batch not yet replayed) above which the verification
/// waits before its next chunk, and the longest it waits so per chunk (a replica that cannot
/// keep up anyway still gets verified, a chunk at a time).
const REPLAY_LAG_BOUND: Duration = Duration::from_millis(250);
const YIELD_MAX: Duration = Duration::from_secs(10);
/// The prefix of a source value the converter refuses (the copy discards such a row): never
/// equal to a PostgreSQL text, which holds no NUL.
const REFUSED: char = '\u{0}';

/// The worker's argument: a run the caller recorded (`verify_tables` without `wait`), or, with
/// `CREATE_FLAG`, the handle of a `TableList` whose tables the worker records as a new run
/// itself (`wait => true`: the caller's transaction cannot commit a run before it waits, and
/// the worker cannot see an uncommitted one).
pub const CREATE_FLAG: i64 = 1 << 62;
pub const REPAIR_FLAG: i64 = 1 << 61;
const TERMINATED: &str =
    "the verification worker was terminated (server shutdown or pg_terminate_backend): verify again";
/// A helper of a run (the run id in the other bits): compares the run's tables alongside its
/// leader, which starts it.
const HELPER_FLAG: i64 = 1 << 60;

pub fn worker_arg_for_run(run_id: i64) -> i64 {
    run_id
}

/// The source and tables of a `wait => true` run, handed to its worker in a dynamic shared
/// memory segment (`i32` source id, `i32` count, the `i32` table ids in order) that the
/// caller keeps mapped while it waits for the worker (it is detached when dropped, or with
/// the caller's transaction).
pub struct TableList {
    seg: *mut pg_sys::dsm_segment,
}

impl TableList {
    pub fn new(source_id: i32, table_ids: &[i32]) -> Result<TableList> {
        let words: Vec<i32> =
            [source_id, table_ids.len() as i32].into_iter().chain(table_ids.iter().copied()).collect();
        let size = std::mem::size_of_val(words.as_slice());
        // dsm_create raises an ERROR itself when it cannot create the segment
        let seg = unsafe { pg_sys::dsm_create(size, 0) };
        if seg.is_null() {
            return Err(ChameleonError::state("cannot create the shared memory of the verification worker".into()));
        }
        unsafe {
            let at = pg_sys::dsm_segment_address(seg) as *mut i32;
            std::ptr::copy_nonoverlapping(words.as_ptr(), at, words.len());
        }
        Ok(TableList { seg })
    }

    pub fn worker_arg(&self, repair: bool) -> i64 {
        let handle = unsafe { pg_sys::dsm_segment_handle(self.seg) };
        CREATE_FLAG | if repair { REPAIR_FLAG } else { 0 } | handle as i64
    }

    /// The worker's side: the source id and table ids of the caller's list.
    fn read(arg: i64) -> Result<(i32, Vec<i32>)> {
        let seg = unsafe { pg_sys::dsm_attach((arg & 0xffff_ffff) as pg_sys::dsm_handle) };
        if seg.is_null() {
            return Err(ChameleonError::state(
                "the caller of verify_tables(wait => true) ended before its worker started".into(),
            ));
        }
        let out = unsafe {
            let at = pg_sys::dsm_segment_address(seg) as *const i32;
            let len = pg_sys::dsm_segment_map_length(seg) / std::mem::size_of::<i32>();
            let words = std::slice::from_raw_parts(at, len);
            let n = words.get(1).copied().unwrap_or(0).max(0) as usize;
            let ids = words.get(2..2 + n).map(<[i32]>::to_vec);
            (words.first().copied(), ids)
        };
        unsafe { pg_sys::dsm_detach(seg) };
        match out {
            (Some(source), Some(ids)) => Ok((source, ids)),
            _ => Err(ChameleonError::state("the verification worker's table list is malformed".into())),
        }
    }
}

impl Drop for TableList {
    fn drop(&mut self) {
        unsafe { pg_sys::dsm_detach(self.seg) };
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_verify_main(arg: pg_sys::Datum) {
    super::attach_and_connect();
    keep_freed_memory();
    let arg = unsafe { i64::from_datum(arg, false) }.unwrap_or_default();
    if arg & HELPER_FLAG != 0 {
        let run_id = arg & !HELPER_FLAG;
        super::set_application_name(&format!("pg_chameleon_rs verify {run_id} (helper)"));
        // a helper's own failure costs only its share: the tables it took are recorded
        // failed (`work`), the run's other workers go on and the leader ends the run
        if let Err(e) = context(run_id).and_then(|(_, ctx)| work(&ctx)) {
            log!("pg_chameleon_rs: a helper of verification run {run_id} stopped: {e}");
        }
        return;
    }
    let run_id = match in_transaction(|| the_run(arg)) {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            log!("pg_chameleon_rs: verification worker (argument {arg}) cannot start: {e}");
            return;
        }
    };
    super::set_application_name(&format!("pg_chameleon_rs verify {run_id}"));
    let (state, error) = match run(run_id) {
        Ok(false) => ("done", None),
        // stopped: by stop_verification (the run says so already), or terminated otherwise
        Ok(true) => ("failed", Some(TERMINATED.into())),
        Err(e) => ("failed", Some(e.to_string())),
    };
    if let Some(e) = &error {
        log!("pg_chameleon_rs: verification run {run_id} failed: {e}");
    }
    let _ = in_transaction(|| catalog::finish_verify_run(run_id, state, error.as_deref()));
}

/// The run this worker serves: recorded now from the source (`CREATE_FLAG`), or the caller's,
/// once the caller's transaction has ended (None: it rolled back).
fn the_run(arg: i64) -> Result<Option<i64>> {
    if arg & CREATE_FLAG != 0 {
        let (source_id, ids) = TableList::read(arg)?;
        let all = catalog::tables_for_source(source_id)?;
        let mut tables: Vec<(i32, String, String)> = Vec::new();
        for id in ids {
            if let Some(t) = all.iter().find(|t| t.id == id) {
                tables.push((
                    t.id,
                    t.mysql_name(),
                    format!("{}.{}", quote_ident(&t.pg_schema), quote_ident(&t.pg_table)),
                ));
            }
        }
        return Ok(Some(catalog::create_verify_run(source_id, arg & REPAIR_FLAG != 0, &tables)?));
    }
    // the caller holds this lock until its transaction ends
    catalog::execute(&format!(
        "SELECT pg_advisory_xact_lock(hashtext('pg_chameleon_rs verify'), ({arg} % 2147483647)::int)"
    ))?;
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sch_chameleon.t_verify_runs WHERE i_id_run = $1)",
        &[arg.into()],
    )?
    .filter(|b| *b)
    .map(|_| arg))
}

/// The leader of a run: starts up to `verify_workers - 1` helpers, compares tables with them
/// until none is left, then waits for them; Ok(true) when it was stopped.
fn run(run_id: i64) -> Result<bool> {
    in_transaction(|| catalog::set_verify_worker(run_id))?;
    let (r, ctx) = context(run_id)?;
    if r.state != "queued" && r.state != "running" {
        return Ok(true);
    }
    let helpers = start_helpers(&ctx, r.tables);
    let outcome = work(&ctx);
    // a leader stopped, terminated or failed takes its helpers with it; else it waits for
    // them, so that the run ends when its last table does
    end_helpers(helpers, !matches!(outcome, Ok(false)));
    Ok(outcome? || stopped(run_id)?)
}

/// The run, and what its tables share; the session set to write values as both sides are
/// compared (the converter writes TIMESTAMP in UTC with an offset, ISO dates, hex bytea,
/// shortest exact floats).
fn context(run_id: i64) -> Result<(catalog::VerifyRun, Ctx)> {
    let (r, source) = in_transaction(|| {
        let r = catalog::verify_run(run_id)?;
        let s = catalog::source_by_id(r.source_id)?;
        catalog::execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
             SET extra_float_digits = 1; SET bytea_output = 'hex'",
        )?;
        Ok((r, s))
    })?;
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let flavor = {
        let mut conn = mysql_source::connect(&endpoint, None)?;
        mysql_source::check_server(&mut conn)?.flavor
    };
    let ctx = Ctx {
        run_id,
        source_id: source.id,
        source_name: source.name.clone(),
        endpoint,
        flavor,
        workers: options.verify_workers,
        repair: r.repair,
    };
    Ok((r, ctx))
}

/// The helpers of a run (`verify_workers` - 1, at most one per table beyond the leader's
/// first). A helper that cannot start (no background worker slot free) is left out, with a
/// line in the server log: the run is compared by fewer workers, not refused.
fn start_helpers(ctx: &Ctx, tables: usize) -> Vec<pgrx::bgworkers::DynamicBackgroundWorker> {
    let wanted = ctx.workers.min(tables).saturating_sub(1);
    let db = match in_transaction(catalog::current_database) {
        Ok(db) => db,
        Err(e) => {
            log!("pg_chameleon_rs: verification run {}: no helper started: {e}", ctx.run_id);
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        match super::start_verify_worker(ctx.run_id | HELPER_FLAG, &ctx.source_name, &db) {
            Ok(w) => out.push(w.handle),
            Err(e) => {
                log!(
                    "pg_chameleon_rs: verification run {}: compared by {} workers, not {}: {e}",
                    ctx.run_id,
                    out.len() + 1,
                    wanted + 1
                );
                break;
            }
        }
    }
    out
}

/// Waits until every helper has ended; `stop`: terminates them first. A leader asked to stop
/// while it waits terminates them then.
fn end_helpers(helpers: Vec<pgrx::bgworkers::DynamicBackgroundWorker>, mut stop: bool) {
    use pgrx::bgworkers::BackgroundWorkerStatus;
    let mut running = helpers;
    loop {
        running.retain(|h| matches!(h.pid(), Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted)));
        if running.is_empty() {
            return;
        }
        stop = stop || shutdown_requested();
        if stop {
            for h in running {
                let _ = h.terminate().wait_for_shutdown();
            }
            return;
        }
        backend_sleep(Duration::from_millis(100));
    }
}

/// One worker's share of a run: claims the run's next table and compares it (and repairs
/// it), until no table is left; Ok(true) when the run was stopped.
fn work(ctx: &Ctx) -> Result<bool> {
    loop {
        if stopped(ctx.run_id)? {
            return Ok(true);
        }
        let Some((table_id, name)) = in_transaction(|| catalog::claim_verify_table(ctx.run_id))? else {
            return Ok(false);
        };
        let outcome = verify_and_record(ctx, table_id);
        let outcome = match outcome {
            Ok(t) if t.total() > 0 && ctx.repair => repair_alone(ctx, table_id, &name, &t),
            other => other.map(|_| ()),
        };
        if let Err(e) = outcome {
            // (a run already ended keeps what its end recorded: `verify_table_finished`)
            let reason = if shutdown_requested() { TERMINATED.to_string() } else { e.to_string() };
            in_transaction(|| catalog::verify_table_finished(ctx.run_id, table_id, "failed", Some(&reason)))?;
            if shutdown_requested() {
                return Ok(true);
            }
        }
    }
}

/// Whether this worker should end: asked to (SIGTERM), or the run is over (stopped by
/// `stop_verification`, or ended by its leader).
fn stopped(run_id: i64) -> Result<bool> {
    Ok(shutdown_requested()
        || !matches!(in_transaction(|| catalog::verify_run_state(run_id))?.as_str(), "queued" | "running"))
}

/// What every table of a run shares.
struct Ctx {
    run_id: i64,
    source_id: i32,
    source_name: String,
    endpoint: Endpoint,
    flavor: Flavor,
    /// `verify_workers`: the leader and its helpers.
    workers: usize,
    repair: bool,
}

/// Compares one table and records the result (`equal` or `different`).
fn verify_and_record(ctx: &Ctx, table_id: i32) -> Result<Tally> {
    let tally = verify_table(ctx, table_id)?;
    let state = if tally.total() == 0 { "equal" } else { "different" };
    in_transaction(|| catalog::verify_table_finished(ctx.run_id, table_id, state, None))?;
    Ok(tally)
}

/// `repair`, one table of a source at a time (`catalog::lock_verify_repairs`); a worker asked
/// to stop while it waits for the lock gives up at once.
fn repair_alone(ctx: &Ctx, table_id: i32, name: &str, found: &Tally) -> Result<()> {
    in_transaction(|| abandonable(|| catalog::lock_verify_repairs(ctx.source_id)))?;
    let out = repair(ctx, table_id, name, found);
    let _ = in_transaction(|| catalog::unlock_verify_repairs(ctx.source_id));
    out
}

/// `repair`: the table is copied again at a new consistent point (`sync_tables`), then
/// compared again: `repaired` when it is equal then.
fn repair(ctx: &Ctx, table_id: i32, name: &str, found: &Tally) -> Result<()> {
    let plan = Plan::of(in_transaction(|| catalog::table_by_id(table_id))?);
    let by_key = found.all_keys().zip(repair::literal_kinds(&plan));
    let how = if by_key.is_some() {
        "repairing: the differing rows are rewritten by key, then the table is compared again"
    } else {
        "repairing: the table is copied again (sync_tables), then compared again"
    };
    in_transaction(|| catalog::verify_table_repairing(ctx.run_id, table_id, how))?;
    let done = match by_key {
        Some((keys, kinds)) => {
            check_replicating(&plan.table)?;
            let written = repair::repair_by_keys(ctx, &plan, &kinds, keys)?;
            format!("{} differing keys rewritten by key ({written} rows written)", keys.len())
        }
        None => {
            copy_again(ctx, table_id, name)?;
            "the table copied again".to_string()
        }
    };
    let again = verify_table(ctx, table_id)?;
    in_transaction(|| {
        catalog::verify_table_repaired_rows(ctx.run_id, table_id, found.total() as i64)?;
        if again.total() == 0 {
            catalog::verify_table_finished(ctx.run_id, table_id, "repaired", Some(&format!("repaired: {done}")))
        } else {
            catalog::verify_table_finished(
                ctx.run_id,
                table_id,
                "different",
                Some(&format!("still {} rows different after the repair ({done})", again.total())),
            )
        }
    })
}

/// The table copied again by `sync_tables`, waited for until it replicates.
fn copy_again(ctx: &Ctx, table_id: i32, name: &str) -> Result<()> {
    in_transaction(|| crate::api::replica::sync(&ctx.source_name, Some(vec![name.to_string()])).map(|_| ()))?;
    let started = Instant::now();
    loop {
        let t = in_transaction(|| catalog::table_by_id(table_id))?;
        match t.state {
            TableState::Replicating if t.enabled => return Ok(()),
            // a table without a key ends its copy disabled (copied, not replicated)
            TableState::Disabled if t.key.is_empty() => return Ok(()),
            TableState::Failed | TableState::Disabled => {
                return Err(ChameleonError::state(format!(
                    "the repair's copy of {name} ended {}: {}",
                    t.state,
                    t.last_error.unwrap_or_default()
                )))
            }
            _ => {}
        }
        if shutdown_requested() || started.elapsed() > REPLAY_WAIT {
            return Err(ChameleonError::state(format!("the repair's copy of {name} did not finish")));
        }
        backend_sleep(Duration::from_millis(200));
    }
}

/// How a table is compared.
struct Plan {
    table: TableRow,
    key: Vec<usize>,
    /// The integer key column (MySQL name) when the table is compared in key ranges.
    range_key: Option<String>,
    /// How each key column is written as a literal when the table is read in the source's key
    /// order (a key that is not a single integer column, `core::keyset`).
    keyset: Option<Vec<LiteralKind>>,
    /// Columns whose source text is cast through PostgreSQL before rows are matched: the key
    /// columns that are not integers, every column of a keyless table.
    canonical: Vec<usize>,
    /// The destination's select list (every column as text) and table.
    select: String,
    /// The destination's expression of a row of a chunk's text (`chunk_columns`): the values
    /// as `select` writes them, with fewer casts.
    chunk: String,
    /// How the source text of each column is written for `chunk`'s (`chunk_text`).
    chunk_columns: Vec<ChunkColumn>,
    from: String,
    pg_key: Option<String>,
}

impl Plan {
    fn of(table: TableRow) -> Plan {
        let key = table.key_indexes();
        let kinds: Vec<&ValueKind> = table.mapped.iter().map(|m| &m.kind).collect();
        let int_key = key.len() == 1 && matches!(kinds[key[0]], ValueKind::Int { .. });
        let canonical = if key.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            key.iter().copied().filter(|&i| !matches!(kinds[i], ValueKind::Int { .. })).collect()
        };
        let select =
            table.columns.iter().map(|c| format!("{}::text", quote_ident(&c.name))).collect::<Vec<_>>().join(", ");
        let from = format!("{}.{}", quote_ident(&table.pg_schema), quote_ident(&table.pg_table));
        let range_key = int_key.then(|| table.columns[key[0]].name.clone());
        let pg_key = range_key.as_deref().map(quote_ident);
        let keyset = if int_key { None } else { keyset::key_literals(&key, &table.columns, &kinds) };
        Plan {
            table,
            key,
            range_key,
            keyset,
            canonical,
            select,
            chunk: String::new(),
            chunk_columns: Vec::new(),
            from,
            pg_key,
        }
    }

    fn method(&self) -> &'static str {
        match (&self.range_key, &self.keyset, self.key.is_empty()) {
            (Some(_), _, _) => "key ranges",
            (None, Some(_), _) => "the source's key order",
            (None, None, true) => "whole table, as a multiset of rows",
            (None, None, false) => "whole table, by key",
        }
    }
}

/// A chunk read on the source: its snapshot's position, its key range and its rows.
struct SourceChunk {
    at: BinlogPosition,
    range: KeyRange,
    rows: Vec<Row>,
    /// The rows' `record_text`, written on the producer thread (a chunk of a key range):
    /// the chunk's text when no stored change touches its range.
    text: Option<String>,
    /// A chunk read again by key (`recheck_uncompared`): the keys asked for, as the
    /// destination writes them (a chunk of the source's key order: None, its keys are those
    /// of its rows).
    keys: Option<Vec<Row>>,
    last: bool,
}

/// Keys of the destination to read again on the source: each as the destination writes it,
/// and as the source's literals.
struct Recheck {
    keys: Vec<Row>,
    literals: Vec<Vec<String>>,
}

/// The stored changes after a snapshot's position, kept while chunks of that snapshot are
/// compared.
struct Overlay {
    at: BinlogPosition,
    /// Events are in batches after this id.
    fetched: i64,
    changes: Vec<Change>,
    /// Each change's integer keys (`change_keys`; a table compared in key ranges).
    keys: Vec<(Option<i128>, Option<i128>)>,
}

fn verify_table(ctx: &Ctx, table_id: i32) -> Result<Tally> {
    let table = in_transaction(|| catalog::table_by_id(table_id))?;
    check_replicating(&table)?;
    let mut plan = Plan::of(table);
    in_transaction(|| {
        catalog::verify_table_started(ctx.run_id, table_id, plan.method())?;
        (plan.chunk, plan.chunk_columns) = chunk_columns(&plan)?;
        Ok(())
    })?;
    let (tx, rx) = bounded::<SourceChunk>(1);
    let (recheck_tx, recheck_rx) = bounded::<Recheck>(1);
    let producer = Producer::start(ctx, &plan, tx, recheck_rx);
    let result = consume(ctx, &plan, &rx, &recheck_tx);
    // both channels closed, whatever the result: the producer waiting on either ends
    drop(rx);
    drop(recheck_tx);
    let produced = producer.finish(&plan.table.mysql_name());
    let tally = result?;
    produced?;
    Ok(tally)
}

fn check_replicating(t: &TableRow) -> Result<()> {
    if t.enabled && t.state == TableState::Replicating {
        return Ok(());
    }
    // a table without a key is copied, not replicated: compared as it is (a difference may
    // then be a change made on the source since its copy)
    if t.key.is_empty() && matches!(t.state, TableState::Disabled | TableState::Copied | TableState::Replicating) {
        return Ok(());
    }
    Err(ChameleonError::state(format!(
        "{} is not replicating (state {}): it cannot be compared",
        t.mysql_name(),
        t.state
    ))
    .with_hint("sync_tables copies it again; verify it once it is replicating"))
}

/// The main thread's side: every chunk compared, the progress recorded after each; then, for
/// a table read in the source's key order, the destination's keys no chunk compared.
fn consume(ctx: &Ctx, plan: &Plan, rx: &Receiver<SourceChunk>, recheck: &Sender<Recheck>) -> Result<Tally> {
    let mut st = Compared::default();
    let mut whole: Option<ChunkCompare> = None;
    if plan.keyset.is_some() {
        in_transaction(|| compared_keys_table(plan))?;
    }
    if plan.key.is_empty() {
        in_transaction(|| Ok(Spi::run(&source_rows_ddl())?))?;
    }
    loop {
        let Some(chunk) = receive(rx, &mut st.times)? else {
            // the producer ended early: its error is reported by `finish`
            return Ok(st.tally);
        };
        let last = chunk.last;
        if plan.range_key.is_none() && plan.keyset.is_none() {
            // the whole table as one chunk
            let cmp = whole.get_or_insert_with(|| ChunkCompare::new(plan.key.clone(), chunk.range.clone()));
            if !last {
                let t0 = Instant::now();
                yield_to_replay(ctx)?;
                st.times.yielded += t0.elapsed();
                let mut rows = chunk.rows;
                if plan.key.is_empty() && st.overlay.is_none() {
                    let after = wait_for_replay(ctx, &chunk.at)?;
                    st.overlay =
                        Some(Overlay { at: chunk.at.clone(), fetched: after, changes: Vec::new(), keys: Vec::new() });
                }
                let t0 = Instant::now();
                let (overlay, times) = (&mut st.overlay, &mut st.times);
                in_transaction(|| {
                    canonicalize(plan, &mut rows)?;
                    if let (true, Some(ov)) = (plan.key.is_empty(), overlay.as_mut()) {
                        // counted in PostgreSQL (`compare_multiset_at_replay`), the stored
                        // changes replayed so far too: memory is a chunk, not the table
                        add_source_rows(rows.iter().map(|r| (r, 1)))?;
                        rows.clear();
                        move_multiset_forward(ctx, plan, ov, times)?;
                    }
                    Ok(())
                })?;
                st.times.canonical += t0.elapsed();
                for r in rows {
                    cmp.add_source(r);
                }
                continue;
            }
        }
        compare_chunk(ctx, plan, &mut st, chunk, &mut whole)?;
        if last {
            if plan.keyset.is_some() {
                recheck_uncompared(ctx, plan, rx, recheck, &mut st)?;
            }
            let method = match (&plan.range_key, &plan.keyset) {
                (Some(_), _) => Some(format!(
                    "key ranges: {} of {} chunks equal as text, the others compared row by row",
                    st.times.by_text, st.chunks
                )),
                (None, Some(_)) => Some(format!(
                    "the source's key order: {} chunks ({} equal as text, the others compared row by row), \
                     then {} keys found only at the destination compared again",
                    st.chunks - st.rechecks,
                    st.times.by_text,
                    st.rechecked
                )),
                _ => None,
            };
            in_transaction(|| {
                if let Some(m) = &method {
                    catalog::verify_table_method(ctx.run_id, plan.table.id, m)?;
                }
                if plan.keyset.is_some() {
                    Spi::run(&format!("DROP TABLE IF EXISTS {COMPARED_KEYS}"))?;
                }
                if plan.key.is_empty() {
                    Spi::run(&format!("DROP TABLE IF EXISTS {SOURCE_ROWS}"))?;
                }
                Ok(())
            })?;
            debug1!(
                "pg_chameleon_rs: verified {} ({} rows, {} chunks): {:?}",
                plan.table.mysql_name(),
                st.rows_source,
                st.chunks,
                st.times
            );
            return Ok(st.tally);
        }
        if shutdown_requested() {
            return Err(ChameleonError::state("the verification was stopped".into()));
        }
    }
}

/// A table's comparison so far.
#[derive(Default)]
struct Compared {
    tally: Tally,
    overlay: Option<Overlay>,
    chunks: i64,
    rows_source: i64,
    rows_destination: i64,
    /// Chunks and keys of the destination compared again after the source's key order.
    rechecks: i64,
    rechecked: i64,
    times: Timings,
}

/// The next chunk from the producer; None when it ended.
fn receive(rx: &Receiver<SourceChunk>, times: &mut Timings) -> Result<Option<SourceChunk>> {
    loop {
        let t0 = Instant::now();
        let received = rx.recv_timeout(Duration::from_millis(200));
        times.source += t0.elapsed();
        match received {
            Ok(c) => return Ok(Some(c)),
            Err(RecvTimeoutError::Timeout) => {
                if shutdown_requested() {
                    return Err(ChameleonError::state("the verification was stopped".into()));
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
        }
    }
}

/// One chunk compared at the destination's replay position, and the progress recorded.
fn compare_chunk(
    ctx: &Ctx,
    plan: &Plan,
    st: &mut Compared,
    chunk: SourceChunk,
    whole: &mut Option<ChunkCompare>,
) -> Result<()> {
    let t0 = Instant::now();
    yield_to_replay(ctx)?;
    st.times.yielded += t0.elapsed();
    if st.overlay.as_ref().is_none_or(|o| o.at != chunk.at) {
        let after = wait_for_replay(ctx, &chunk.at)?;
        st.overlay = Some(Overlay { at: chunk.at.clone(), fetched: after, changes: Vec::new(), keys: Vec::new() });
    }
    let Some(ov) = st.overlay.as_mut() else { return Ok(()) };
    let times = &mut st.times;
    let mut rows = chunk.rows;
    let t0 = Instant::now();
    in_transaction(|| canonicalize(plan, &mut rows))?;
    times.canonical += t0.elapsed();
    let (diffs, rs, rd) = if plan.range_key.is_some() {
        // the producer's text is of the rows as read: canonical columns would change them
        let text = chunk.text.filter(|_| plan.canonical.is_empty());
        in_repeatable_read(|| compare_range_at_replay(ctx, plan, ov, rows, text, &chunk.range, times))?
    } else if plan.keyset.is_some() {
        let requested = chunk.keys.is_some();
        // the text of the rows as read (`compare_keys_at_replay`): the producer's when no
        // column is cast, else written here after the casts
        let text = match (&chunk.keys, chunk.text) {
            (Some(_), _) => None,
            (None, Some(t)) if plan.canonical.is_empty() => Some(t),
            (None, _) => {
                let t0 = Instant::now();
                let t = chunk_text(&rows, &plan.chunk_columns);
                times.text += t0.elapsed();
                t
            }
        };
        let keys: HashSet<Row> = match chunk.keys {
            Some(k) => k.into_iter().collect(),
            None => rows.iter().map(|r| key_of(plan, r)).collect(),
        };
        let range = KeyRange::Keys(Arc::new(keys));
        in_repeatable_read(|| {
            if !requested {
                remember_compared(plan, &range)?;
            }
            compare_keys_at_replay(ctx, plan, ov, rows, range.clone(), text.clone(), times)
        })?
    } else if plan.key.is_empty() {
        let tally = &mut st.tally;
        in_repeatable_read(|| {
            add_source_rows(rows.iter().map(|r| (r, 1)))?;
            compare_multiset_at_replay(ctx, plan, ov, tally, times)
        })?
    } else {
        let Some(mut cmp) = whole.take() else { return Ok(()) };
        for r in rows {
            cmp.add_source(r);
        }
        in_repeatable_read(|| compare_at_replay(ctx, plan, ov, cmp, times))?
    };
    st.chunks += 1;
    st.rows_source += rs as i64;
    st.rows_destination += rd as i64;
    for d in diffs {
        st.tally.add(d);
    }
    let sample = sample_json(plan, &st.tally);
    let t0 = Instant::now();
    in_transaction(|| {
        catalog::verify_table_progress(
            ctx.run_id,
            plan.table.id,
            &catalog::VerifyProgress {
                chunks: st.chunks,
                rows_source: st.rows_source,
                rows_destination: st.rows_destination,
                position: Some(&ov.at),
                tally: &st.tally,
                sample: sample.clone(),
            },
        )
    })?;
    st.times.progress += t0.elapsed();
    Ok(())
}

/// The keys compared so far of the table read in the source's key order, in a temporary table
/// of the worker's session (the key columns, typed, indexed): what is at the destination and
/// not among them at the end was inserted since its chunk was read, or is extra.
const COMPARED_KEYS: &str = "pg_temp.chameleon_compared_keys";

fn key_names(plan: &Plan) -> Vec<String> {
    plan.key.iter().map(|&i| quote_ident(&plan.table.columns[i].name)).collect()
}

fn key_types(plan: &Plan) -> Vec<&str> {
    plan.key.iter().map(|&i| plan.table.mapped[i].pg_type.as_str()).collect()
}

fn compared_keys_table(plan: &Plan) -> Result<()> {
    let cols = key_names(plan).join(", ");
    Spi::run(&format!("DROP TABLE IF EXISTS {COMPARED_KEYS}"))?;
    Spi::run(&format!("CREATE TEMP TABLE chameleon_compared_keys AS SELECT {cols} FROM {} WITH NO DATA", plan.from))?;
    Spi::run(&format!("CREATE INDEX ON {COMPARED_KEYS} ({cols})"))?;
    Ok(())
}

/// `unnest` of one text array per key column, each cast to the column's type: the keys of a
/// set as rows PostgreSQL compares with the table's (`$1` .. `$n`).
fn unnest_keys(plan: &Plan) -> String {
    format!("SELECT * FROM unnest({})", key_array_params(plan))
}

/// `$1::text[]::t1[], ...`: one text array per key column (`key_args`) cast to its type.
fn key_array_params(plan: &Plan) -> String {
    let arrays: Vec<String> =
        key_types(plan).iter().enumerate().map(|(i, t)| format!("${}::text[]::{t}[]", i + 1)).collect();
    arrays.join(", ")
}

/// Whether a key can be at the destination: no value the converter refused (the copy stored
/// no such row) and no NULL.
fn storable_key(k: &Row) -> bool {
    k.iter().all(|v| v.as_deref().is_some_and(|v| !v.starts_with(REFUSED)))
}

fn key_of(plan: &Plan, row: &Row) -> Row {
    plan.key.iter().map(|&i| row.get(i).cloned().flatten()).collect()
}

/// The keys of a set, one text array per key column (`unnest_keys`'s arguments); a key with a
/// value the converter refused is left out (the copy stored no such row: the source's row is
/// `missing`).
fn key_arrays<'a>(plan: &Plan, keys: impl IntoIterator<Item = &'a Row>) -> Vec<Vec<Option<String>>> {
    let mut arrays = vec![Vec::new(); plan.key.len()];
    for k in keys.into_iter().filter(|k| storable_key(k)) {
        for (a, v) in arrays.iter_mut().zip(k) {
            a.push(v.clone());
        }
    }
    arrays
}

/// The keys of a set (`key_arrays`), as SPI arguments.
fn key_args<'a>(plan: &Plan, keys: impl IntoIterator<Item = &'a Row>) -> Vec<pgrx::datum::DatumWithOid<'static>> {
    key_arrays(plan, keys).into_iter().map(Into::into).collect()
}

fn set_of(range: &KeyRange) -> impl Iterator<Item = &Row> {
    match range {
        KeyRange::Keys(keys) => Some(keys.iter()),
        _ => None,
    }
    .into_iter()
    .flatten()
}

fn remember_compared(plan: &Plan, range: &KeyRange) -> Result<()> {
    let args = key_args(plan, set_of(range));
    Spi::connect_mut(|c| -> Result<()> {
        c.update(&format!("INSERT INTO {COMPARED_KEYS} {}", unnest_keys(plan)), None, &args)?;
        Ok(())
    })
}

/// After the source's last chunk: the destination's keys that no chunk compared (the source
/// had no such key when the chunk around it was read: inserted since, or extra), page by page
/// in PostgreSQL's key order, each page read again on the source by key in a new snapshot and
/// compared like a chunk (`SourceChunk::keys`).
fn recheck_uncompared(
    ctx: &Ctx,
    plan: &Plan,
    rx: &Receiver<SourceChunk>,
    recheck: &Sender<Recheck>,
    st: &mut Compared,
) -> Result<()> {
    let Some(kinds) = &plan.keyset else { return Ok(()) };
    let names = key_names(plan);
    let types = key_types(plan);
    let texts: Vec<String> = names.iter().map(|n| format!("{n}::text")).collect();
    let joined: Vec<String> = names.iter().map(|n| format!("v.{n} = d.{n}")).collect();
    let after: Vec<String> = types.iter().enumerate().map(|(i, t)| format!("${}::text::{t}", i + 1)).collect();
    let order: Vec<String> = names.iter().map(|n| format!("d.{n}")).collect();
    let page_sql = |from_start: bool| {
        format!(
            "SELECT {} FROM {} d WHERE {} NOT EXISTS (SELECT 1 FROM {COMPARED_KEYS} v WHERE {}) \
             ORDER BY {} LIMIT {RECHECK_KEYS}",
            texts.join(", "),
            plan.from,
            if from_start { String::new() } else { format!("({}) > ({}) AND", order.join(", "), after.join(", ")) },
            joined.join(" AND "),
            order.join(", ")
        )
    };
    in_transaction(|| Ok(Spi::run(&format!("ANALYZE {COMPARED_KEYS}"))?))?;
    let n = names.len();
    let mut last: Option<Row> = None;
    loop {
        let (keys, lits) = in_transaction(|| {
            let args: Vec<pgrx::datum::DatumWithOid> = last.iter().flatten().map(|v| v.clone().into()).collect();
            let keys = Spi::connect(|c| -> Result<Vec<Row>> {
                let t = c.select(&page_sql(last.is_none()), None, &args)?;
                let mut out = Vec::new();
                for r in t {
                    let mut ident = Vec::with_capacity(n);
                    for i in 1..=n {
                        ident.push(r.get::<String>(i)?);
                    }
                    out.push(ident);
                }
                Ok(out)
            })?;
            let lits = repair::literals_of(plan, kinds, &keys)?;
            Ok((keys, lits))
        })?;
        let Some(end) = keys.last() else { return Ok(()) };
        last = Some(end.clone());
        let full = keys.len() >= RECHECK_KEYS;
        st.rechecked += keys.len() as i64;
        // the producer gone: its error is reported by `Producer::finish`
        if recheck.send(Recheck { literals: lits, keys }).is_err() {
            return Ok(());
        }
        let Some(chunk) = receive(rx, &mut st.times)? else { return Ok(()) };
        compare_chunk(ctx, plan, st, chunk, &mut None)?;
        st.rechecks += 1;
        if !full {
            return Ok(());
        }
        if shutdown_requested() {
            return Err(ChameleonError::state("the verification was stopped".into()));
        }
    }
}

fn sample_key(ident: &Row) -> String {
    let v: Vec<&str> = ident.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    format!("({})", v.join(", "))
}

/// A chunk of a table read in the source's key order, in the destination's snapshot: the
/// source rows of the chunk's keys moved forward, matched with the destination rows of the
/// same keys. When no stored change touches the chunk's keys, first as one text: the source
/// rows as read against the destination's rows of the same keys written in the same order
/// (the keys' order in the array, `destination_text_by_keys`); equal text is an equal chunk.
fn compare_keys_at_replay(
    ctx: &Ctx,
    plan: &Plan,
    ov: &mut Overlay,
    rows: Vec<Row>,
    range: KeyRange,
    text_as_read: Option<String>,
    times: &mut Timings,
) -> Result<(Vec<Diff>, u64, u64)> {
    read_fresh_changes(ctx, plan, ov, times)?;
    let touched = ov.changes.iter().any(|c| match c {
        Change::Insert(row) => range.contains(&key_of(plan, row)),
        Change::Update { old_key, row } => range.contains(old_key) || range.contains(&key_of(plan, row)),
        Change::Delete { old_key } => range.contains(old_key),
    });
    if let (false, Some(text)) = (touched, text_as_read) {
        let t0 = Instant::now();
        let (n, dest) = destination_text_by_keys(plan, &rows)?;
        times.destination += t0.elapsed();
        if n == rows.len() as i64 && dest.as_deref().unwrap_or("") == text {
            times.by_text += 1;
            return Ok((Vec::new(), n as u64, n as u64));
        }
    }
    let t0 = Instant::now();
    let cmp = moved_by_keys(plan, range, rows, &ov.changes);
    times.apply += t0.elapsed();
    compare_rows(plan, cmp, times)
}

/// The source rows of a set of keys (`range`, `KeyRange::Keys`) moved forward by `changes`:
/// a chunk in the source's key order, a recheck, a repair.
fn moved_by_keys(plan: &Plan, range: KeyRange, rows: Vec<Row>, changes: &[Change]) -> ChunkCompare {
    let mut cmp = ChunkCompare::new(plan.key.clone(), range);
    for r in rows {
        // a key read again that the source's collation matched but is not the one asked for
        // (`a` for `A`): it was compared in its own chunk
        if cmp.range().contains(&key_of(plan, &r)) {
            cmp.add_source(r);
        }
    }
    for c in changes {
        cmp.apply(c.clone());
    }
    cmp
}

/// The destination rows of the keys of `rows`, written as `destination_text` writes them, in
/// the order of `rows` (the source's key order), and how many.
fn destination_text_by_keys(plan: &Plan, rows: &[Row]) -> Result<(i64, Option<String>)> {
    let names = key_names(plan);
    let cols: Vec<String> = (1..=names.len()).map(|i| format!("chameleon_k{i}")).collect();
    let on: Vec<String> = names.iter().zip(&cols).map(|(n, c)| format!("d.{n} = u.{c}")).collect();
    let sql = format!(
        "SELECT count(*), string_agg(chameleon_t, E'\\n') FROM (SELECT {} AS chameleon_t \
         FROM unnest({}) WITH ORDINALITY AS u({}, chameleon_n) JOIN {} d ON {} ORDER BY u.chameleon_n) s",
        plan.chunk,
        key_array_params(plan),
        cols.join(", "),
        plan.from,
        on.join(" AND ")
    );
    let keys: Vec<Row> = rows.iter().map(|r| key_of(plan, r)).collect();
    let args = key_args(plan, &keys);
    Spi::connect(|c| {
        let t = c.select(&sql, None, &args)?;
        let r = t.first();
        Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<String>(2)?))
    })
}

/// In the destination's snapshot: the source rows moved from the snapshot's position to what
/// replay has applied, matched with the destination rows of the range.
/// Where a table's verification spends its time (logged when it ends).
#[derive(Debug, Default)]
struct Timings {
    source: Duration,
    canonical: Duration,
    events: Duration,
    apply: Duration,
    destination: Duration,
    /// Writing the source rows' text (the fast path).
    text: Duration,
    matching: Duration,
    decide: Duration,
    progress: Duration,
    /// Waiting for replay to catch up (`yield_to_replay`).
    yielded: Duration,
    /// Chunks found equal by their text alone.
    by_text: u64,
}

/// The source rows of a table without a key, in a temporary table of the worker's session:
/// each row's `record_text` (its values cast as COPY stores them), whether a value was refused
/// by the converter (such a row was never stored: it matches no destination row), and how many
/// times it counts (1 a row read; the stored changes after the snapshot add +1 for a new row,
/// -1 for an old one). PostgreSQL then counts both sides (`compare_multiset_at_replay`), so
/// that memory is one chunk, not the table.
const SOURCE_ROWS: &str = "pg_temp.chameleon_source_rows";

fn add_source_rows<'a>(rows: impl Iterator<Item = (&'a Row, i64)>) -> Result<()> {
    let (mut texts, mut refused, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for (row, n) in rows {
        let was_refused = row.iter().flatten().any(|v| v.starts_with(REFUSED));
        let text = if was_refused {
            let stripped: Row = row.iter().map(|v| v.as_ref().map(|v| v.replace(REFUSED, ""))).collect();
            record_text(std::slice::from_ref(&stripped))
        } else {
            record_text(std::slice::from_ref(row))
        };
        texts.push(text);
        refused.push(was_refused);
        counts.push(n);
    }
    if texts.is_empty() {
        return Ok(());
    }
    Spi::connect_mut(|c| -> Result<()> {
        c.update(
            &format!("INSERT INTO {SOURCE_ROWS} SELECT * FROM unnest($1::text[], $2::boolean[], $3::bigint[])"),
            None,
            &[texts.into(), refused.into(), counts.into()],
        )?;
        Ok(())
    })
}

/// The stored changes of a table without a key replayed since the last call, into
/// `SOURCE_ROWS` (+1 a new row, -1 an old one) and out of memory.
fn move_multiset_forward(ctx: &Ctx, plan: &Plan, ov: &mut Overlay, times: &mut Timings) -> Result<()> {
    read_fresh_changes(ctx, plan, ov, times)?;
    let t0 = Instant::now();
    let mut moved: Vec<(&Row, i64)> = Vec::new();
    for c in &ov.changes {
        match c {
            Change::Insert(row) => moved.push((row, 1)),
            Change::Update { old_key, row } => {
                moved.push((old_key, -1));
                moved.push((row, 1));
            }
            Change::Delete { old_key } => moved.push((old_key, -1)),
        }
    }
    for part in moved.chunks(CHUNK_ROWS) {
        add_source_rows(part.iter().copied())?;
    }
    ov.changes.clear();
    times.apply += t0.elapsed();
    Ok(())
}

/// `SOURCE_ROWS` is split by the hash of the row's text into this many partitions, each
/// counted by a statement of its own (`compare_multiset_at_replay`).
const SOURCE_ROW_PARTS: usize = 16;
/// The destination's rows are added to `SOURCE_ROWS` this many heap blocks (8 MB) a statement.
const DESTINATION_PIECE_BLOCKS: i64 = 1024;

fn source_rows_ddl() -> String {
    let mut sql = format!(
        "DROP TABLE IF EXISTS {SOURCE_ROWS}; \
         CREATE TEMP TABLE chameleon_source_rows (r text, refused boolean, n bigint) PARTITION BY HASH (r);"
    );
    for i in 0..SOURCE_ROW_PARTS {
        sql.push_str(&format!(
            " CREATE TEMP TABLE chameleon_source_rows_{i} PARTITION OF {SOURCE_ROWS} \
             FOR VALUES WITH (MODULUS {SOURCE_ROW_PARTS}, REMAINDER {i});"
        ));
    }
    sql
}

/// A table without a key, in the destination's snapshot: the source's rows (all chunks, in
/// `SOURCE_ROWS`) moved forward by the stored changes, counted against the destination's rows
/// by PostgreSQL; a row with more copies on the source is `missing` that many times, with fewer
/// `extra`. The tally gets the counts and a sample; the rows of both sides, as counted.
///
/// In pieces, so that replay is not starved by one long statement: the destination's rows are
/// added to `SOURCE_ROWS` as -1 by ranges of heap blocks (`ctid`, a TID range scan), then each
/// hash partition of `SOURCE_ROWS` is counted (`GROUP BY` the row's text, which spills to disk
/// rather than grow); between pieces the worker waits while replay lags, replay's progress read
/// in the latest snapshot (`yield_in_snapshot`), the pieces all in this transaction's one.
fn compare_multiset_at_replay(
    ctx: &Ctx,
    plan: &Plan,
    ov: &mut Overlay,
    tally: &mut Tally,
    times: &mut Timings,
) -> Result<(Vec<Diff>, u64, u64)> {
    move_multiset_forward(ctx, plan, ov, times)?;
    let t0 = Instant::now();
    let rows_source =
        Spi::get_one::<i64>(&format!("SELECT coalesce(sum(n), 0)::bigint FROM {SOURCE_ROWS}"))?.unwrap_or(0);
    let rows_destination = add_destination_rows(ctx, plan, times)?;
    let mut found: Vec<(String, i64)> = Vec::new();
    for i in 0..SOURCE_ROW_PARTS {
        let t1 = Instant::now();
        yield_in_snapshot(ctx)?;
        times.yielded += t1.elapsed();
        // the differing rows are materialized by PostgreSQL (to disk when large); only their
        // counts and a sample come back
        let sql = format!(
            "WITH d AS MATERIALIZED (SELECT r, sum(n)::bigint AS s FROM pg_temp.chameleon_source_rows_{i} \
             GROUP BY r, refused HAVING sum(n) <> 0), \
             sample AS (SELECT r, s FROM d ORDER BY r, s LIMIT {SAMPLE_ROWS}) \
             SELECT (SELECT coalesce(sum(s) FILTER (WHERE s > 0), 0)::bigint FROM d), \
             (SELECT coalesce(-sum(s) FILTER (WHERE s < 0), 0)::bigint FROM d), \
             (SELECT array_agg(r ORDER BY r, s) FROM sample), (SELECT array_agg(s ORDER BY r, s) FROM sample)"
        );
        type Counted = (i64, i64, Vec<Option<String>>, Vec<Option<i64>>);
        let (missing, extra, texts, surpluses) = Spi::connect(|c| -> Result<Counted> {
            let t = c.select(&sql, None, &[])?;
            let r = t.first();
            Ok((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<i64>(2)?.unwrap_or(0),
                r.get::<Vec<Option<String>>>(3)?.unwrap_or_default(),
                r.get::<Vec<Option<i64>>>(4)?.unwrap_or_default(),
            ))
        })?;
        tally.missing += missing.max(0) as u64;
        tally.extra += extra.max(0) as u64;
        found.extend(texts.into_iter().zip(surpluses).filter_map(|(t, s)| Some((t?, s?))));
    }
    // the sample: the first rows in text order, whichever partition they are in
    found.sort();
    for (text, surplus) in found.iter().take(SAMPLE_ROWS) {
        let ident = parse_record_text(text).ok_or_else(|| {
            ChameleonError::state(format!("a row of {} cannot be read back: {text}", plan.table.mysql_name()))
        })?;
        let kind = if *surplus > 0 { DiffKind::Missing } else { DiffKind::Extra };
        for _ in 0..surplus.unsigned_abs().min(SAMPLE_ROWS as u64) {
            if tally.sample.len() < SAMPLE_ROWS {
                tally.sample.push(Diff { ident: ident.clone(), kind, columns: Vec::new() });
            }
        }
    }
    times.matching += t0.elapsed();
    Ok((Vec::new(), rows_source.max(0) as u64, rows_destination))
}

/// The destination's rows into `SOURCE_ROWS`, each counted -1, by ranges of heap blocks (the
/// last range open: rows this snapshot sees are in blocks that existed when it was taken, all
/// below the size read after it); how many. A destination that is not a plain table (a
/// partitioned one) is read in one statement.
fn add_destination_rows(ctx: &Ctx, plan: &Plan, times: &mut Timings) -> Result<u64> {
    let (plain, blocks) = Spi::get_two_with_args::<bool, i64>(
        "SELECT c.relkind = 'r', (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint \
         FROM pg_class c WHERE c.oid = $1::regclass",
        &[plan.from.as_str().into()],
    )?;
    let pieces: Vec<String> = if plain == Some(true) {
        let blocks = blocks.unwrap_or(0);
        let mut out = Vec::new();
        let mut lo = 0i64;
        loop {
            let hi = lo + DESTINATION_PIECE_BLOCKS;
            if hi >= blocks {
                out.push(format!(" WHERE ctid >= '({lo},0)'::tid"));
                break;
            }
            out.push(format!(" WHERE ctid >= '({lo},0)'::tid AND ctid < '({hi},0)'::tid"));
            lo = hi;
        }
        out
    } else {
        vec![String::new()]
    };
    let mut rows = 0u64;
    for (i, filter) in pieces.iter().enumerate() {
        if i > 0 {
            let t0 = Instant::now();
            yield_in_snapshot(ctx)?;
            times.yielded += t0.elapsed();
        }
        let sql = format!(
            "INSERT INTO {SOURCE_ROWS} SELECT ROW({})::text, false, -1 FROM {}{filter}",
            plan.select, plan.from
        );
        rows += Spi::connect_mut(|c| -> Result<u64> { Ok(c.update(&sql, None, &[])?.len() as u64) })?;
    }
    Ok(rows)
}

fn compare_at_replay(
    ctx: &Ctx,
    plan: &Plan,
    ov: &mut Overlay,
    mut cmp: ChunkCompare,
    times: &mut Timings,
) -> Result<(Vec<Diff>, u64, u64)> {
    read_fresh_changes(ctx, plan, ov, times)?;
    let t0 = Instant::now();
    for c in &ov.changes {
        cmp.apply(c.clone());
    }
    times.apply += t0.elapsed();
    compare_rows(plan, cmp, times)
}

/// A chunk of an integer-keyed table, in the destination's snapshot: the source rows moved
/// forward (in key order) and written as text, against the same text written by PostgreSQL
/// for the destination rows of the range (one aggregate, no row leaves the server); equal
/// text is an equal chunk. Otherwise (or when a key is not an integer) the rows are compared
/// one by one (`compare_rows`), which decides each differing value.
fn compare_range_at_replay(
    ctx: &Ctx,
    plan: &Plan,
    ov: &mut Overlay,
    rows: Vec<Row>,
    text_as_read: Option<String>,
    range: &KeyRange,
    times: &mut Timings,
) -> Result<(Vec<Diff>, u64, u64)> {
    read_fresh_changes(ctx, plan, ov, times)?;
    let t0 = Instant::now();
    let key_pos = plan.key.first().copied().unwrap_or(0);
    let touching = ov.changes.iter().zip(&ov.keys).filter(|(_, k)| touches(**k, range)).map(|(c, _)| c);
    let moved = moved_forward_in_key_order(rows, key_pos, range, touching);
    times.apply += t0.elapsed();
    let mut cmp = ChunkCompare::new(plan.key.clone(), range.clone());
    match moved {
        Ok((moved, changed)) => {
            let t0 = Instant::now();
            let text = match text_as_read {
                Some(text) if !changed => Some(text),
                _ => chunk_text(&moved, &plan.chunk_columns),
            };
            times.text += t0.elapsed();
            if let Some(text) = text {
                let t0 = Instant::now();
                let (n, dest) = destination_text(plan, range)?;
                times.destination += t0.elapsed();
                if n == moved.len() as i64 && dest.as_deref().unwrap_or("") == text {
                    times.by_text += 1;
                    return Ok((Vec::new(), n as u64, n as u64));
                }
            }
            for r in moved {
                cmp.add_source(r);
            }
        }
        Err(rows) => {
            for r in rows {
                cmp.add_source(r);
            }
            for c in &ov.changes {
                cmp.apply(c.clone());
            }
        }
    }
    compare_rows(plan, cmp, times)
}

/// The table's definition is unchanged, and the stored changes of the table replayed since
/// the last call (as this snapshot sees replay) are added to the overlay.
fn read_fresh_changes(ctx: &Ctx, plan: &Plan, ov: &mut Overlay, times: &mut Timings) -> Result<()> {
    let t0 = Instant::now();
    let now = catalog::table_by_id(plan.table.id)?;
    check_replicating(&now)?;
    if now.columns != plan.table.columns || now.key != plan.table.key {
        return Err(ChameleonError::state(format!(
            "the definition of {} changed during the verification (DDL)",
            plan.table.mysql_name()
        ))
        .with_hint("verify it again"));
    }
    let upto = catalog::replayed_prefix(ctx.source_id)?;
    if upto > ov.fetched {
        let events = catalog::table_events(ctx.source_id, plan.table.id, ov.fetched, upto)?;
        let mut fresh = Vec::new();
        for ev in events.iter().filter(|e| after_consistent_point(&e.file, e.pos as u64, Some(&ov.at))) {
            fresh.push(decode_change(plan, ev)?);
        }
        canonicalize_changes(plan, &mut fresh)?;
        if plan.range_key.is_some() {
            let key_pos = plan.key.first().copied().unwrap_or(0);
            ov.keys.extend(fresh.iter().map(|c| change_keys(c, key_pos)));
        }
        ov.changes.extend(fresh);
        ov.fetched = upto;
    }
    times.events += t0.elapsed();
    Ok(())
}

/// The WHERE clause of a chunk's key range at the destination (empty: the whole table).
fn range_filter(plan: &Plan, range: &KeyRange) -> String {
    match range {
        KeyRange::Int { lo, hi } => {
            let k = plan.pg_key.as_deref().unwrap_or("NULL");
            let mut parts = Vec::new();
            if let Some(lo) = lo {
                parts.push(format!("{k} > {lo}"));
            }
            if let Some(hi) = hi {
                parts.push(format!("{k} <= {hi}"));
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", parts.join(" AND "))
            }
        }
        KeyRange::Keys(_) => format!(" WHERE ({}) IN ({})", key_names(plan).join(", "), unnest_keys(plan)),
        KeyRange::Whole => String::new(),
    }
}

/// Types whose output never holds a comma or a line break and is never `N`, in the session's
/// settings (ISO dates, hex bytea): written bare in a chunk's text (`Delimit::Bare`).
const BARE_TYPES: &str = "'int2', 'int4', 'int8', 'oid', 'numeric', 'float4', 'float8', 'bool', 'date', 'time', \
                          'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid', 'bytea', 'inet', 'cidr', \
                          'macaddr', 'macaddr8'";

/// The destination's expression of a row of a chunk's text, what `core::verify::chunk_text`
/// writes for the source's rows, and how the source writes each column for it.
///
/// A value is the same text as `select`'s: a column whose type has no cast function to text
/// is written by its type's output function, which is what its cast to text writes (a cast to
/// text without a function is the output function, or binary for varchar), and saves a cast
/// per value; a `character(n)` column by its output function too, padded to n (the source side
/// pads it the same, `ColumnForm::Padded`); the others (boolean, domains, ...) as
/// `column::text`. A timestamp or time column's source text loses the trailing zeros of its
/// fraction, as PostgreSQL writes it (`ColumnForm::TrimmedFraction`). A value of a type in
/// `BARE_TYPES` is written bare; any other after its length in bytes (`octet_length` of the
/// value itself for a string type, else of its text). Each column starts with
/// `CASE WHEN c IS NULL THEN 'N' END`, which `concat_ws` skips when the column is not NULL (as
/// it skips the other pieces when it is). At most 30 columns go to one `concat_ws` (a function
/// takes at most 100 arguments), those calls into another.
fn chunk_columns(plan: &Plan) -> Result<(String, Vec<ChunkColumn>)> {
    // aggregates: one row even when the column is not there (then `::text`, and the
    // destination's query reports the missing column as it did)
    let sql = format!(
        "SELECT bool_and(t.typtype IN ('b', 'e') AND NOT EXISTS (SELECT 1 FROM pg_cast c \
         WHERE c.castsource = a.atttypid AND c.casttarget = 'text'::regtype AND c.castmethod = 'f')), \
         max(CASE WHEN a.atttypid = 'bpchar'::regtype AND a.atttypmod > 4 THEN a.atttypmod - 4 END), \
         bool_or(a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype, 'time'::regtype)), \
         bool_or(t.typname IN ({BARE_TYPES}) AND t.typnamespace = 'pg_catalog'::regnamespace), \
         bool_or(a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)) \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped"
    );
    let mut pieces = Vec::with_capacity(plan.table.columns.len());
    let mut cols = Vec::with_capacity(plan.table.columns.len());
    for c in &plan.table.columns {
        let (native, width, time, bare, string) = Spi::connect(|client| -> Result<_> {
            let t = client.select(&sql, None, &[plan.from.as_str().into(), c.name.as_str().into()])?;
            let r = t.first();
            Ok((
                r.get::<bool>(1)?,
                r.get::<i32>(2)?.and_then(|w| usize::try_from(w).ok()),
                r.get::<bool>(3)?,
                r.get::<bool>(4)? == Some(true),
                r.get::<bool>(5)? == Some(true),
            ))
        })?;
        let name = quote_ident(&c.name);
        let native = native == Some(true) || width.is_some();
        let value = if native { name.clone() } else { format!("{name}::text") };
        let form = match (width, time) {
            (Some(n), _) => ColumnForm::Padded(n),
            (None, Some(true)) => ColumnForm::TrimmedFraction,
            _ => ColumnForm::AsIs,
        };
        let null = format!("CASE WHEN {name} IS NULL THEN 'N' END");
        if bare {
            pieces.push(format!("{null}, {value}"));
            cols.push(ChunkColumn { form, delimit: Delimit::Bare });
        } else {
            // a string type's length without writing it; `value` of character(n) is padded
            let length = if native && string {
                format!("octet_length({name})")
            } else {
                format!("octet_length(({value})::text)")
            };
            pieces.push(format!("{null}, {length}, {value}"));
            cols.push(ChunkColumn { form, delimit: Delimit::Counted });
        }
    }
    let groups: Vec<String> = pieces.chunks(30).map(|g| format!("concat_ws(',', {})", g.join(", "))).collect();
    let expr = if groups.len() == 1 { groups.concat() } else { format!("concat_ws(',', {})", groups.join(", ")) };
    Ok((expr, cols))
}

/// The destination rows of a range as `core::verify::record_text` writes them, in key order,
/// and how many.
fn destination_text(plan: &Plan, range: &KeyRange) -> Result<(i64, Option<String>)> {
    let k = plan.pg_key.as_deref().unwrap_or("NULL");
    let sql = format!(
        "SELECT count(*), string_agg(chameleon_t, E'\\n') FROM (SELECT {} AS chameleon_t FROM {}{} ORDER BY {k}) s",
        plan.chunk,
        plan.from,
        range_filter(plan, range)
    );
    Spi::connect(|c| {
        let t = c.select(&sql, None, &[])?;
        let r = t.first();
        Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<String>(2)?))
    })
}

/// The source rows in `cmp` matched with the destination rows of its range, one by one; a
/// value whose text differs decided by PostgreSQL.
fn compare_rows(plan: &Plan, mut cmp: ChunkCompare, times: &mut Timings) -> Result<(Vec<Diff>, u64, u64)> {
    let t0 = Instant::now();
    let filter = range_filter(plan, cmp.range());
    let args = key_args(plan, set_of(cmp.range()));
    let n = plan.table.columns.len();
    Spi::connect(|c| -> Result<()> {
        let t = c.select(&format!("SELECT {} FROM {}{filter}", plan.select, plan.from), None, &args)?;
        for r in t {
            let mut row: Row = Vec::with_capacity(n);
            for i in 1..=n {
                row.push(r.get::<String>(i)?);
            }
            cmp.add_destination(row);
        }
        Ok(())
    })?;
    times.destination += t0.elapsed();
    let t0 = Instant::now();
    let matched = cmp.finish();
    times.matching += t0.elapsed();
    let t0 = Instant::now();
    let mut diffs = matched.diffs;
    diffs.extend(decide_candidates(plan, &matched.candidates)?);
    times.decide += t0.elapsed();
    Ok((diffs, matched.rows_source, matched.rows_destination))
}

/// A stored event of the table as a change of whole rows (values already in the converter's
/// text form).
fn decode_change(plan: &Plan, ev: &catalog::StoredEvent) -> Result<Change> {
    let owned = |b: &Option<Vec<u8>>| -> Result<Row> {
        let Some(b) = b else { return Ok(Vec::new()) };
        Ok(rowcodec::decode(b)?.into_iter().map(|v| v.map(str::to_string)).collect())
    };
    let row = owned(&ev.row)?;
    let key = owned(&ev.key)?;
    let ncols = plan.table.columns.len();
    if plan.key.is_empty() && !key.is_empty() && key.len() != ncols {
        return Err(ChameleonError::state(format!(
            "a stored change of {} at {} has no whole old row: a table without a key cannot be moved forward",
            plan.table.mysql_name(),
            BinlogPosition::new(ev.file.clone(), ev.pos as u64)
        )));
    }
    Ok(match ev.op {
        Op::Insert => Change::Insert(row),
        Op::Update => Change::Update { old_key: key, row },
        Op::Delete => Change::Delete { old_key: key },
        Op::Ddl => {
            return Err(ChameleonError::catalog(format!(
                "a DDL event among the stored row changes of {}",
                plan.table.mysql_name()
            )))
        }
    })
}

/// The key columns of stored changes in the same form as the rows (see `canonicalize`).
fn canonicalize_changes(plan: &Plan, changes: &mut [Change]) -> Result<()> {
    if plan.canonical.is_empty() || changes.is_empty() {
        return Ok(());
    }
    // rows are whole; keys hold the key columns in key order (a keyless table: the whole row)
    let key_pos: Vec<(usize, usize)> = if plan.key.is_empty() {
        (0..plan.table.columns.len()).map(|i| (i, i)).collect()
    } else {
        plan.key.iter().enumerate().filter(|(_, c)| plan.canonical.contains(c)).map(|(p, c)| (p, *c)).collect()
    };
    for &col in &plan.canonical {
        let mut slots: Vec<&mut Option<String>> = Vec::new();
        let key_slot = key_pos.iter().find(|(_, c)| *c == col).map(|(p, _)| *p);
        for ch in changes.iter_mut() {
            match ch {
                Change::Insert(row) => slots.extend(row.get_mut(col)),
                Change::Update { old_key, row } => {
                    slots.extend(row.get_mut(col));
                    if let Some(p) = key_slot {
                        slots.extend(old_key.get_mut(p));
                    }
                }
                Change::Delete { old_key } => {
                    if let Some(p) = key_slot {
                        slots.extend(old_key.get_mut(p));
                    }
                }
            }
        }
        cast_in_place(&plan.table.mapped[col].pg_type, slots)?;
    }
    Ok(())
}

/// Casts the source text of the `canonical` columns through PostgreSQL (what COPY would
/// store, written back as text), so that rows match by identity however the value is spelt.
fn canonicalize(plan: &Plan, rows: &mut [Row]) -> Result<()> {
    for &col in &plan.canonical {
        let slots: Vec<&mut Option<String>> = rows.iter_mut().filter_map(|r| r.get_mut(col)).collect();
        cast_in_place(&plan.table.mapped[col].pg_type, slots)?;
    }
    Ok(())
}

fn cast_in_place(pg_type: &str, mut slots: Vec<&mut Option<String>>) -> Result<()> {
    let values: Vec<Option<String>> = slots.iter().map(|s| (**s).clone()).collect();
    let cast = cast_values(pg_type, &values)?;
    for (slot, v) in slots.iter_mut().zip(cast) {
        if let Some(v) = v {
            **slot = Some(v);
        }
    }
    Ok(())
}

/// Each value cast to `pg_type` and back to text, as PostgreSQL stores it; None for NULL, for
/// a value the converter refused, and for one PostgreSQL refuses (those stay as they are, and
/// equal nothing at the destination).
fn cast_values(pg_type: &str, values: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let input: Vec<Option<String>> = values.iter().map(|v| v.clone().filter(|s| !s.starts_with(REFUSED))).collect();
    if input.iter().all(Option::is_none) {
        return Ok(vec![None; values.len()]);
    }
    let sql =
        format!("SELECT CAST(v AS {pg_type})::text FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n");
    let all = in_subtransaction(|| {
        Spi::connect(|c| -> Result<Vec<Option<String>>> {
            let t = c.select(&sql, None, &[input.clone().into()])?;
            let mut out = Vec::with_capacity(input.len());
            for r in t {
                out.push(r.get::<String>(1)?);
            }
            Ok(out)
        })
    });
    if let Ok(out) = all {
        return Ok(out);
    }
    // one value PostgreSQL refuses: each alone
    let one = format!("SELECT CAST($1::text AS {pg_type})::text");
    let mut out = Vec::with_capacity(input.len());
    for v in &input {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let cast = in_subtransaction(|| Ok(Spi::get_one_with_args::<String>(&one, &[v.as_str().into()])?));
        out.push(cast.ok().flatten());
    }
    Ok(out)
}

/// Decides the candidates: for each value whose text differs, the source text cast to the
/// column's type against the destination's text.
fn decide_candidates(plan: &Plan, candidates: &[crate::core::verify::Candidate]) -> Result<Vec<Diff>> {
    let mut same: Vec<Vec<bool>> = candidates.iter().map(|c| vec![false; c.columns.len()]).collect();
    for col in 0..plan.table.columns.len() {
        let mut at: Vec<(usize, usize)> = Vec::new();
        let mut values: Vec<Option<String>> = Vec::new();
        for (ci, c) in candidates.iter().enumerate() {
            if let Some(pos) = c.columns.iter().position(|&x| x == col) {
                at.push((ci, pos));
                values.push(c.source.get(col).cloned().flatten());
            }
        }
        if values.is_empty() {
            continue;
        }
        let cast = cast_values(&plan.table.mapped[col].pg_type, &values)?;
        for ((ci, pos), v) in at.into_iter().zip(cast) {
            let dest = candidates[ci].destination.get(col).cloned().flatten();
            same[ci][pos] = v.is_some() && v == dest;
        }
    }
    Ok(candidates.iter().zip(&same).filter_map(|(c, s)| decide(c, s)).collect())
}

/// The sample of differing rows as JSON: kind, key (or row) by column name, differing columns.
fn sample_json(plan: &Plan, tally: &Tally) -> serde_json::Value {
    let names: Vec<&str> = plan.table.columns.iter().map(|c| c.name.as_str()).collect();
    let ident_names: Vec<&str> =
        if plan.key.is_empty() { names.clone() } else { plan.key.iter().map(|&i| names[i]).collect() };
    let rows: Vec<serde_json::Value> = tally
        .sample
        .iter()
        .map(|d| {
            let ident: serde_json::Map<String, serde_json::Value> = ident_names
                .iter()
                .zip(&d.ident)
                .map(|(n, v)| {
                    let v = v.as_deref().map(|s| s.trim_start_matches(REFUSED).to_string());
                    (n.to_string(), v.map_or(serde_json::Value::Null, serde_json::Value::String))
                })
                .collect();
            let mut o = serde_json::Map::new();
            o.insert("kind".into(), d.kind.as_str().into());
            o.insert(if plan.key.is_empty() { "row" } else { "key" }.into(), ident.into());
            if !d.columns.is_empty() {
                o.insert("columns".into(), d.columns.iter().map(|&i| names[i]).collect::<Vec<_>>().into());
            }
            o.into()
        })
        .collect();
    rows.into()
}

/// Waits until replay has passed `at` (the read worker stored past it, and every batch it had
/// stored then is replayed). Returns the id of the last batch that ends at or before `at`
/// (the events after `at` are in the batches after it; 0 when the log keeps none before it).
/// Waits while replay is more than `REPLAY_LAG_BOUND` behind (at most `YIELD_MAX`).
fn yield_to_replay(ctx: &Ctx) -> Result<()> {
    yield_while_behind(|| in_transaction(|| catalog::replay_backlog_age(ctx.source_id)))
}

/// `yield_to_replay` inside the comparison's REPEATABLE READ transaction (between the pieces
/// of a keyless table's count): replay's progress read in the latest snapshot.
fn yield_in_snapshot(ctx: &Ctx) -> Result<()> {
    yield_while_behind(|| catalog::replay_backlog_age_now(ctx.source_id))
}

fn yield_while_behind(backlog: impl Fn() -> Result<Option<Duration>>) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < YIELD_MAX {
        let behind = backlog()?;
        if behind.is_none_or(|b| b <= REPLAY_LAG_BOUND) {
            break;
        }
        if shutdown_requested() {
            return Err(ChameleonError::state("the verification was stopped".into()));
        }
        backend_sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn wait_for_replay(ctx: &Ctx, at: &BinlogPosition) -> Result<i64> {
    let started = Instant::now();
    let frontier = loop {
        let (pos, last) = in_transaction(|| catalog::stored_frontier(ctx.source_id))?;
        if pos.as_ref().is_some_and(|p| p >= at) {
            break last;
        }
        waiting(ctx, started, at)?;
    };
    while !in_transaction(|| catalog::replayed_through(ctx.source_id, frontier))? {
        waiting(ctx, started, at)?;
    }
    let mut upto = frontier;
    loop {
        let page = in_transaction(|| catalog::batches_before(ctx.source_id, upto, 500))?;
        if let Some((id, _)) = page.iter().find(|(_, end)| end <= at) {
            return Ok(*id);
        }
        match page.last() {
            Some((id, _)) if page.len() == 500 => upto = id - 1,
            _ => return Ok(0),
        }
    }
}

/// One wait step: fails when the source cannot get there (not running, in error) or it takes
/// too long.
fn waiting(ctx: &Ctx, started: Instant, at: &BinlogPosition) -> Result<()> {
    if shutdown_requested() {
        return Err(ChameleonError::state("the verification was stopped".into()));
    }
    let s = in_transaction(|| catalog::source_by_id(ctx.source_id))?;
    let stuck = match s.status {
        SourceStatus::Error => Some(format!("is in error: {}", s.last_error.clone().unwrap_or_default())),
        SourceStatus::Running | SourceStatus::Syncing => None,
        other => Some(format!("is {other}")),
    };
    if let Some(why) = stuck {
        return Err(ChameleonError::state(format!(
            "source \"{}\" {why}: replay cannot reach the source snapshot at {at} the comparison needs",
            ctx.source_name
        ))
        .with_hint("verify a running source (start_replica)"));
    }
    if started.elapsed() > REPLAY_WAIT {
        return Err(ChameleonError::state(format!(
            "replay of source \"{}\" did not reach the source snapshot at {at} within {} s",
            ctx.source_name,
            REPLAY_WAIT.as_secs()
        )));
    }
    backend_sleep(Duration::from_millis(50));
    Ok(())
}

/// The producer thread: reads the source's chunks (see the module header).
struct Producer(std::io::Result<std::thread::JoinHandle<CoreResult<()>>>);

struct ProducerArgs {
    endpoint: Endpoint,
    flavor: Flavor,
    schema: String,
    table: String,
    columns: Vec<crate::core::types::MySqlColumn>,
    kinds: Vec<ValueKind>,
    range_key: Option<(String, usize)>,
    /// A table read in the source's key order: the key columns (MySQL names), their indexes,
    /// their literal kinds.
    keyset: Option<(Vec<String>, Vec<usize>, Vec<LiteralKind>)>,
    recheck: Receiver<Recheck>,
    chunk_columns: Vec<ChunkColumn>,
    /// Whether the rows' text is written here (no column is cast on the main thread).
    text_on_reader: bool,
}

impl Producer {
    fn start(ctx: &Ctx, plan: &Plan, tx: Sender<SourceChunk>, recheck: Receiver<Recheck>) -> Producer {
        let args = ProducerArgs {
            endpoint: ctx.endpoint.clone(),
            flavor: ctx.flavor,
            schema: plan.table.mysql_schema.clone(),
            table: plan.table.mysql_table.clone(),
            columns: plan.table.columns.clone(),
            kinds: plan.table.mapped.iter().map(|m| m.kind.clone()).collect(),
            range_key: plan.range_key.clone().zip(plan.key.first().copied()),
            keyset: plan.keyset.clone().map(|kinds| {
                let names = plan.key.iter().map(|&i| plan.table.columns[i].name.clone()).collect();
                (names, plan.key.clone(), kinds)
            }),
            recheck,
            chunk_columns: plan.chunk_columns.clone(),
            text_on_reader: plan.canonical.is_empty(),
        };
        Producer(spawn_without_signals("verify-reader", move || produce(args, tx)))
    }

    fn finish(self, what: &str) -> Result<()> {
        let joined = self
            .0
            .map_err(|e| ChameleonError::state(format!("cannot start the verification thread of {what}: {e}")))?
            .join()
            .map_err(|_| ChameleonError::state(format!("the verification thread of {what} panicked")))?;
        joined.map_err(|e| ChameleonError::from(e).context(format!("reading {what} on the source")))
    }
}

/// A text-protocol row in the copy's text form; a refused value keeps its reason behind
/// `REFUSED`.
fn convert(raw: Vec<Option<Vec<u8>>>, kinds: &[ValueKind]) -> Row {
    raw.into_iter()
        .zip(kinds)
        .map(|(v, k)| {
            let b = v?;
            match value::from_text(k, &b) {
                Ok(s) => s,
                Err(reason) => Some(format!("{REFUSED}{reason}")),
            }
        })
        .collect()
}

fn produce(a: ProducerArgs, tx: Sender<SourceChunk>) -> CoreResult<()> {
    let gone = || CoreError::source_query("the verification stopped reading".into());
    let mut snap = mysql_source::connect(&a.endpoint, None)?;
    mysql_source::prepare_copy_session(&mut snap)?;
    let mut lock = mysql_source::connect(&a.endpoint, None)?;
    let mut opened: Option<(Instant, BinlogPosition)> = None;
    if a.keyset.is_some() {
        return produce_in_key_order(&a, &mut snap, &mut lock, &tx);
    }
    let Some((key, key_pos)) = a.range_key.clone() else {
        // the whole table, in chunks of rows, on one snapshot
        let (at, _) = mysql_source::table_snapshot(&mut snap, &mut lock, a.flavor, &a.schema, &a.table)?;
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        mysql_source::stream_rows(&mut snap, &a.schema, &a.table, &a.columns, None, |raw| {
            rows.push(convert(raw, &a.kinds));
            if rows.len() >= CHUNK_ROWS {
                let chunk = SourceChunk {
                    at: at.clone(),
                    range: KeyRange::Whole,
                    rows: std::mem::replace(&mut rows, Vec::with_capacity(CHUNK_ROWS)),
                    text: None,
                    keys: None,
                    last: false,
                };
                tx.send(chunk).map_err(|_| gone())?;
            }
            Ok(())
        })?;
        tx.send(SourceChunk { at, range: KeyRange::Whole, rows, text: None, keys: None, last: true })
            .map_err(|_| gone())?;
        return Ok(());
    };
    let k = quote_mysql_ident(&key);
    let mut lo: Option<i128> = None;
    loop {
        let at = match &opened {
            Some((since, at)) if since.elapsed() < Duration::from_secs(SNAPSHOT_SECONDS) => at.clone(),
            _ => {
                let (at, _) = mysql_source::table_snapshot(&mut snap, &mut lock, a.flavor, &a.schema, &a.table)?;
                opened = Some((Instant::now(), at.clone()));
                at
            }
        };
        let filter = match lo {
            Some(lo) => format!("{k} > {lo} ORDER BY {k} LIMIT {CHUNK_ROWS}"),
            None => format!("1 = 1 ORDER BY {k} LIMIT {CHUNK_ROWS}"),
        };
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        mysql_source::stream_rows(&mut snap, &a.schema, &a.table, &a.columns, Some(&filter), |raw| {
            rows.push(convert(raw, &a.kinds));
            Ok(())
        })?;
        let hi = if rows.len() < CHUNK_ROWS {
            None
        } else {
            let last = rows.last().and_then(|r| r.get(key_pos).cloned().flatten()).unwrap_or_default();
            Some(last.parse::<i128>().map_err(|_| {
                CoreError::source_query(format!("key {key} of {}.{}: {last} is not an integer", a.schema, a.table))
            })?)
        };
        let last = hi.is_none();
        // the text is written here, while the main thread compares the chunk before
        let text = chunk_text(&rows, &a.chunk_columns);
        tx.send(SourceChunk { at, range: KeyRange::Int { lo, hi }, rows, text, keys: None, last })
            .map_err(|_| gone())?;
        if last {
            return Ok(());
        }
        lo = hi;
    }
}

/// A table read in the source's key order (`core::keyset`): chunks after the last key read,
/// a new snapshot every `SNAPSHOT_SECONDS`; then the keys the main thread asks to read again,
/// each page in a new snapshot, until it closes the request channel.
fn produce_in_key_order(
    a: &ProducerArgs,
    snap: &mut mysql::Conn,
    lock: &mut mysql::Conn,
    tx: &Sender<SourceChunk>,
) -> CoreResult<()> {
    let gone = || CoreError::source_query("the verification stopped reading".into());
    let Some((names, key, kinds)) = &a.keyset else { return Ok(()) };
    let what = format!("{}.{}", a.schema, a.table);
    let order = format!(" ORDER BY {} LIMIT {CHUNK_ROWS}", keyset::order_by(names));
    let mut opened: Option<(Instant, BinlogPosition)> = None;
    let mut bound: Option<Vec<String>> = None;
    loop {
        let at = match &opened {
            Some((since, at)) if since.elapsed() < Duration::from_secs(SNAPSHOT_SECONDS) => at.clone(),
            _ => {
                let (at, _) = mysql_source::table_snapshot(snap, lock, a.flavor, &a.schema, &a.table)?;
                opened = Some((Instant::now(), at.clone()));
                at
            }
        };
        let filter = match &bound {
            Some(b) => format!("{}{order}", keyset::after(names, b)),
            None => format!("1 = 1{order}"),
        };
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        let mut last_key: Vec<Option<Vec<u8>>> = Vec::new();
        mysql_source::stream_rows(snap, &a.schema, &a.table, &a.columns, Some(&filter), |raw| {
            last_key = key.iter().map(|&i| raw.get(i).cloned().flatten()).collect();
            rows.push(convert(raw, &a.kinds));
            Ok(())
        })?;
        let last = rows.len() < CHUNK_ROWS;
        if !last {
            let next: Option<Vec<String>> = kinds
                .iter()
                .zip(&last_key)
                .map(|(k, v)| v.as_deref().and_then(|v| keyset::mysql_literal(k, v)))
                .collect();
            let Some(next) = next else {
                return Err(CoreError::source_query(format!(
                    "{what}: the key of the row read last cannot be written as a literal ({})",
                    names.join(", ")
                )));
            };
            if bound.as_ref() == Some(&next) {
                return Err(CoreError::source_query(format!(
                    "{what}: reading in the order of ({}) does not advance past {}",
                    names.join(", "),
                    next.join(", ")
                )));
            }
            bound = Some(next);
        }
        // the text is written here, while the main thread compares the chunk before (used
        // when no column is cast there)
        let text = a.text_on_reader.then(|| chunk_text(&rows, &a.chunk_columns)).flatten();
        tx.send(SourceChunk { at, range: KeyRange::Whole, rows, text, keys: None, last }).map_err(|_| gone())?;
        if last {
            break;
        }
    }
    // the main thread's requests: keys found only at the destination
    while let Ok(req) = a.recheck.recv() {
        let source =
            KeySource { flavor: a.flavor, schema: &a.schema, table: &a.table, columns: &a.columns, kinds: &a.kinds };
        let (at, rows) = read_by_keys(snap, lock, &source, names, &req.literals)?;
        let chunk = SourceChunk { at, range: KeyRange::Whole, rows, text: None, keys: Some(req.keys), last: false };
        tx.send(chunk).map_err(|_| gone())?;
    }
    Ok(())
}

/// A source table read by key (`read_by_keys`).
struct KeySource<'a> {
    flavor: Flavor,
    schema: &'a str,
    table: &'a str,
    columns: &'a [crate::core::types::MySqlColumn],
    kinds: &'a [ValueKind],
}

/// The rows of the keys (each as the source's literals, `names` the key columns) in a new
/// snapshot, and its position: the recheck of keys found only at the destination, and the
/// repair.
fn read_by_keys(
    snap: &mut mysql::Conn,
    lock: &mut mysql::Conn,
    t: &KeySource,
    names: &[String],
    literals: &[Vec<String>],
) -> CoreResult<(BinlogPosition, Vec<Row>)> {
    let (at, _) = mysql_source::table_snapshot(snap, lock, t.flavor, t.schema, t.table)?;
    let mut rows = Vec::with_capacity(literals.len());
    mysql_source::stream_rows(snap, t.schema, t.table, t.columns, Some(&keyset::one_of(names, literals)), |raw| {
        rows.push(convert(raw, t.kinds));
        Ok(())
    })?;
    Ok((at, rows))
}
