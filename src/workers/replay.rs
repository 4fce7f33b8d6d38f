//! Native replay: applies stored batches to the destination tables with the effect of
//! applying their events one by one in source order, and marks each batch replayed in the
//! same transaction (docs/internals.md, contract 1). A batch is read `CHUNKS_READ` log chunks
//! at a time (`core::logchunk`, up to 5000 events each: what bounds replay's memory, whatever
//! the source transaction's size); what is read is cut at DDL events into units, and a unit's events of the tables that
//! can take sets are applied per table as their net change (`core::netchange`, a few
//! statements over unnested arrays, every count checked) in a subtransaction: if a check or a
//! statement fails, the unit is rolled back and applied one by one (one prepared plan per
//! table and operation), which finds and reports the exact event. Used by the replay worker of each source (below) and
//! by `chameleon.replay()`. Tables that are disabled, not yet copied, or whose
//! consistent point is at or after an event skip that event (docs/internals.md, contract 3).
//!
//! An error PostgreSQL raises while applying propagates to the caller, who rolls back; the
//! replayer remembers which event it was applying (cheaply: ids and offsets, no copies per
//! row) and `failure_point()` turns that into table, binlog position and statement.

use crate::catalog::{self, TableRow, INT4_OID, INT8_OID, TEXT_ARRAY_OID, TEXT_OID};
use crate::core::change::{DdlEvent, Op};
use crate::core::error::{is_transient_sqlstate, retry_backoff_ms};
use crate::core::netchange::{Change, NetChange, Reducer, WouldFail};
use crate::core::options::{OnErrorReplay, SkipEvents, SourceOptions};
use crate::core::position::{after_consistent_point, BinlogPosition};
use crate::core::rowcodec;
use crate::core::setsql;
use crate::core::sql::{self, PgColumn};
use crate::core::state::{SourceStatus, TableState};
use crate::error::{ChameleonError, Result};
use crate::workers::ddl_apply;
use crate::workers::full_row::FullRowPlans;
use crate::workers::txn::{abandonable, backend_sleep, in_subtransaction, in_transaction, shutdown_requested};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Where replay was when an error happened.
#[derive(Debug, Clone, Default)]
pub struct FailurePoint {
    pub table_id: Option<i32>,
    pub table: Option<String>,
    pub position: Option<BinlogPosition>,
    pub statement: Option<String>,
    /// The stored event (batch, event number) being applied.
    pub event: Option<(i64, i32)>,
}

/// The event being applied: set per row without allocating.
#[derive(Debug, Clone, Copy)]
struct Applying {
    table_id: i32,
    op: Op,
    pos: u64,
    batch: i64,
    event: i32,
}

struct Plan {
    sql: String,
    stmt: OwnedPreparedStatement,
}

/// Log chunks (`logchunk::MAX_EVENTS` row events each at most) read and applied at a time:
/// with the decoded values borrowed from them and the arrays of one set statement, what
/// bounds replay's memory.
const CHUNKS_READ: i64 = 2;

/// Tables with more columns go one by one (one array parameter per column).
const MAX_SET_COLUMNS: usize = 1_000;

/// The set statements of a table (`core::setsql`), prepared and kept once per table
/// definition: parsing and planning them for every batch cost replay more than running them
/// (issue 19's profile). Their parameters are text arrays, one per column.
struct SetPlan {
    key_at: Vec<usize>,
    width: usize,
    insert: OwnedPreparedStatement,
    update: OwnedPreparedStatement,
    delete: OwnedPreparedStatement,
    count: OwnedPreparedStatement,
}

/// Prepares and keeps a set statement of `nargs` text-array parameters.
fn prepare_set(sql: &str, nargs: usize, mutating: bool) -> Result<OwnedPreparedStatement> {
    catalog::kept_plan(sql, &vec![TEXT_ARRAY_OID; nargs], mutating)
}

/// A value list (a row, or a key) decoded from the log, borrowing its bytes.
type Values<'a> = Vec<Option<&'a str>>;

pub struct Replayer {
    source_id: i32,
    tables: HashMap<i32, TableRow>,
    plans: HashMap<(i32, Op), Plan>,
    /// Updates and deletes of tables without a key (matched by full row).
    full_row: FullRowPlans,
    set_plans: HashMap<i32, SetPlan>,
    /// Tables with a foreign key (either side) or a user trigger at the destination: the order
    /// of their rows matters beyond their key, so they go one by one. Read per batch.
    ordered: HashSet<i32>,
    applying: Option<Applying>,
    /// Binlog file of the event being applied (changes rarely: copied only then).
    applying_file: String,
    /// skip_events of the source: its tables knowingly lack rows or changes.
    skip_events: SkipEvents,
    /// Tables with skip_events, found once per table reload (not per event).
    skipping: HashSet<i32>,
    /// The source's table generation when the tables were last read.
    generation: i64,
    /// Stored events (batch, event number) whose row PostgreSQL cannot store (one of its size
    /// limits, SQLSTATE 54000): kept in discarded_rows and skipped.
    set_aside: HashSet<(i64, i32)>,
}

/// A stored row event as replay applies it.
type Ev = catalog::StoredEvent;

/// The events of the log chunks `query` selects (see `catalog::read_log_chunks`), of
/// `table` only when given.
fn load_events(query: &str, args: &[DatumWithOid], table: Option<i32>) -> Result<Vec<Ev>> {
    catalog::read_log_chunks(query, args, |e| table.is_none_or(|t| e.table_id == t))
}

/// A value as a divergence error shows it: long ones (a full row's blobs) cut.
fn shown(v: &str) -> String {
    match v.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &v[..cut]),
        None => v.to_string(),
    }
}

pub struct PendingBatchInfo {
    pub id: i64,
    pub events: i32,
}

fn pg_columns(t: &TableRow) -> Vec<PgColumn> {
    t.columns.iter().zip(&t.mapped).map(|(c, m)| PgColumn::of(c, m)).collect()
}

impl Replayer {
    pub fn new(source_id: i32, skip_events: SkipEvents) -> Replayer {
        Replayer {
            source_id,
            tables: HashMap::new(),
            plans: HashMap::new(),
            full_row: FullRowPlans::default(),
            set_plans: HashMap::new(),
            ordered: HashSet::new(),
            applying: None,
            applying_file: String::new(),
            skip_events,
            skipping: HashSet::new(),
            generation: -1,
            set_aside: HashSet::new(),
        }
    }

    /// Where the last `apply_batch` stopped, for the error record (empty if it finished).
    pub fn failure_point(&self) -> FailurePoint {
        let Some(a) = self.applying else { return FailurePoint::default() };
        FailurePoint {
            table_id: Some(a.table_id),
            table: self.tables.get(&a.table_id).map(TableRow::mysql_name),
            position: Some(BinlogPosition::new(self.applying_file.clone(), a.pos)),
            statement: self
                .plans
                .get(&(a.table_id, a.op))
                .map(|p| p.sql.clone())
                .or_else(|| self.full_row.statement(a.table_id, a.op)),
            event: Some((a.batch, a.event)),
        }
    }

    /// Re-reads the table catalogue; plans of tables whose definition changed are dropped.
    pub fn reload_tables(&mut self) -> Result<()> {
        self.generation = catalog::table_generation(self.source_id)?;
        let fresh: HashMap<i32, TableRow> =
            catalog::tables_for_source(self.source_id)?.into_iter().map(|t| (t.id, t)).collect();
        let changed: Vec<i32> = self
            .tables
            .iter()
            .filter(|(id, old)| {
                fresh
                    .get(id)
                    .is_none_or(|new| new.columns != old.columns || new.key != old.key || new.pg_table != old.pg_table)
            })
            .map(|(id, _)| *id)
            .collect();
        self.plans.retain(|(id, _), _| !changed.contains(id));
        self.full_row.retain(|id| !changed.contains(&id));
        self.set_plans.retain(|id, _| !changed.contains(id));
        self.skipping = fresh
            .values()
            .filter(|t| self.skip_events.any_for(&t.mysql_schema, &t.mysql_table))
            .map(|t| t.id)
            .collect();
        self.tables = fresh;
        Ok(())
    }

    pub fn pending_batches(&self, limit: i64) -> Result<Vec<PendingBatchInfo>> {
        catalog::run_kept(
            "SELECT i_id_batch, i_events FROM sch_chameleon.t_replica_batch \
             WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open ORDER BY i_id_batch LIMIT $2",
            &[INT4_OID, INT8_OID],
            &[self.source_id.into(), limit.into()],
            |t| {
                let mut out = Vec::new();
                for row in t {
                    out.push(PendingBatchInfo {
                        id: row.get(1)?.unwrap_or_default(),
                        events: row.get(2)?.unwrap_or_default(),
                    });
                }
                Ok(out)
            },
        )
    }

    fn plan(&mut self, table_id: i32, op: Op) -> Result<&Plan> {
        if !self.plans.contains_key(&(table_id, op)) {
            let t = self
                .tables
                .get(&table_id)
                .ok_or_else(|| ChameleonError::not_found(format!("table id {table_id} is not in the catalogue")))?;
            let cols = pg_columns(t);
            let key: Vec<&PgColumn> = t.key_indexes().into_iter().map(|i| &cols[i]).collect();
            if key.is_empty() && op != Op::Insert {
                return Err(ChameleonError::state(format!("table {} has no replica key", t.mysql_name())));
            }
            let (sql, nargs) = match op {
                Op::Insert => (sql::insert_statement(&t.pg_schema, &t.pg_table, &cols), cols.len()),
                Op::Update => (sql::update_statement(&t.pg_schema, &t.pg_table, &cols, &key), cols.len() + key.len()),
                Op::Delete => (sql::delete_statement(&t.pg_schema, &t.pg_table, &key), key.len()),
                Op::Ddl => return Err(ChameleonError::internal("a DDL event has no row plan".into())),
            };
            let stmt = catalog::kept_plan(&sql, &vec![TEXT_OID; nargs], true)?;
            self.plans.insert((table_id, op), Plan { sql, stmt });
        }
        self.plans.get(&(table_id, op)).ok_or_else(|| ChameleonError::internal("plan cache lost a plan".into()))
    }

    /// Runs the table's prepared statement for `op`; returns the rows it touched.
    fn execute(&mut self, table_id: i32, op: Op, values: &[Option<&str>]) -> Result<usize> {
        if let Some(a) = self.applying.as_mut() {
            a.op = op;
        }
        if op != Op::Insert {
            if let Some(t) = self.tables.get(&table_id).filter(|t| t.full_row()) {
                return self.full_row.execute(t, op, values);
            }
        }
        let plan = self.plan(table_id, op)?;
        let args: Vec<DatumWithOid> = values.iter().map(|v| (*v).into()).collect();
        Spi::connect_mut(|client| -> Result<usize> { Ok(client.update(&plan.stmt, None, &args)?.len()) })
    }

    /// Applies events one by one in order (those of tables not live, or at or before their
    /// table's consistent point, are skipped); returns how many were applied.
    fn apply_events(&mut self, events: &[Ev]) -> Result<i64> {
        let mut applied = 0i64;
        for ev in events {
            applied += self.apply_one(ev)?;
        }
        self.applying = None;
        Ok(applied)
    }

    /// Whether replay applies `ev` to its table: the table is live and the event after its
    /// consistent point.
    fn is_due(&self, ev: &Ev) -> bool {
        self.tables.get(&ev.table_id).is_some_and(|t| {
            t.enabled && t.state.is_applied() && after_consistent_point(&ev.file, ev.pos as u64, t.point.as_ref())
        }) && !self.set_aside.contains(&(ev.batch, ev.event))
    }

    /// Skips a stored event from now on: its row went to discarded_rows
    /// (`catalog::discard_logged_row`).
    pub fn set_aside(&mut self, batch: i64, event: i32) {
        self.set_aside.insert((batch, event));
    }

    /// Applies one event with the table's prepared statement (a DDL event: the statement);
    /// returns 1 if applied, 0 if skipped.
    fn apply_one(&mut self, ev: &Ev) -> Result<i64> {
        let op = ev.op;
        if op == Op::Ddl {
            self.apply_ddl(ev)?;
            return Ok(1);
        }
        if !self.is_due(ev) {
            return Ok(0);
        }
        let Some(table) = self.tables.get(&ev.table_id) else { return Ok(0) };
        let lacks_rows = table.rows_discarded > 0;
        let skipping = self.skipping.contains(&ev.table_id);
        if self.applying_file != ev.file {
            self.applying_file = ev.file.clone();
        }
        self.applying =
            Some(Applying { table_id: ev.table_id, op, pos: ev.pos as u64, batch: ev.batch, event: ev.event });
        let row = ev.row.as_deref().map(rowcodec::decode).transpose()?;
        let key = ev.key.as_deref().map(rowcodec::decode).transpose()?;
        let mut values: Vec<Option<&str>> = Vec::new();
        match op {
            Op::Insert => values.extend(row.iter().flatten()),
            Op::Update => {
                values.extend(row.iter().flatten());
                values.extend(key.iter().flatten());
            }
            Op::Delete => values.extend(key.iter().flatten()),
            Op::Ddl => {}
        }
        let mut affected = self.execute(ev.table_id, op, &values)?;
        if affected == 0 && (lacks_rows || skipping) {
            // The destination knowingly lacks rows of this table (kept in discarded_rows, or
            // left out by skip_events): a delete of one is already done; an update that
            // makes a discarded row storable brings it back; under skip_events it is a no-op.
            affected = match op {
                Op::Delete => 1,
                Op::Update if !lacks_rows => 1,
                Op::Update => {
                    let row_only: Vec<Option<&str>> = row.iter().flatten().copied().collect();
                    self.execute(ev.table_id, Op::Insert, &row_only)?
                }
                Op::Insert | Op::Ddl => 0,
            };
        }
        if affected != 1 {
            let keytext: Vec<String> = key.iter().flatten().map(|k| shown(k.unwrap_or("NULL"))).collect();
            let full_row = self.tables.get(&ev.table_id).is_some_and(TableRow::full_row);
            let at = self.failure_point();
            return Err(ChameleonError::state(format!(
                "{} on {} at {}:{} matched {affected} rows at the destination instead of 1 ({} {}): \
                 the destination has diverged from the source",
                if op == Op::Update { "update" } else { "delete" },
                at.table.unwrap_or_default(),
                ev.file,
                ev.pos,
                if full_row { "full row" } else { "key" },
                keytext.join(", ")
            ))
            .with_hint("copy the table again with chameleon.sync_tables"));
        }
        Ok(1)
    }

    /// Reads which replicated tables have a foreign key (either side) or a user trigger at
    /// the destination: those go one by one (see `ordered`).
    fn read_ordered_tables(&mut self) -> Result<()> {
        let linked: HashSet<(String, String)> = catalog::run_kept(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.oid IN (SELECT conrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' \
                              UNION SELECT confrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' \
                              UNION SELECT tgrelid FROM pg_catalog.pg_trigger WHERE NOT tgisinternal)",
            &[],
            &[],
            |t| {
                let mut out = HashSet::new();
                for r in t {
                    out.insert((r.get::<String>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default()));
                }
                Ok(out)
            },
        )?;
        self.ordered = self
            .tables
            .values()
            .filter(|t| {
                linked.contains(&(
                    sql::pg_identifier(&t.pg_schema).to_string(),
                    sql::pg_identifier(&t.pg_table).to_string(),
                ))
            })
            .map(|t| t.id)
            .collect();
        Ok(())
    }

    /// Whether a table's events may be applied as its net change: it has a replica key (a
    /// table without one is matched by full row, one by one), no knowingly missing rows
    /// (discarded rows, skip_events: their special cases are per event), nothing at the
    /// destination that sees the order of its rows (foreign keys, user triggers), and not too
    /// many columns.
    fn takes_sets(&self, table_id: i32) -> bool {
        self.tables.get(&table_id).is_some_and(|t| {
            !t.key.is_empty()
                && t.rows_discarded == 0
                && !self.skipping.contains(&table_id)
                && !self.ordered.contains(&table_id)
                && t.columns.len() <= MAX_SET_COLUMNS
        })
    }

    /// Applies a chunk of events: cut at each DDL event (a barrier, applied alone) into units.
    fn apply_chunk(&mut self, events: &[Ev], label: &str) -> Result<i64> {
        let mut applied = 0i64;
        let mut start = 0;
        for (i, ev) in events.iter().enumerate() {
            if ev.op == Op::Ddl {
                applied += self.apply_unit(&events[start..i], label)?;
                applied += self.apply_events(&events[i..=i])?;
                start = i + 1;
            }
        }
        applied += self.apply_unit(&events[start..], label)?;
        Ok(applied)
    }

    /// Applies a unit of row events (no DDL among them): as sets in a subtransaction when at
    /// least two can go so; if that fails anyhow, the subtransaction is rolled back and the
    /// unit applied one by one, which either succeeds or stops at the exact failing event
    /// (recorded as always).
    fn apply_unit(&mut self, events: &[Ev], label: &str) -> Result<i64> {
        if events.iter().filter(|ev| self.takes_sets(ev.table_id)).take(2).count() < 2 {
            return self.apply_events(events);
        }
        match in_subtransaction(|| self.apply_unit_as_sets(events, label)) {
            Ok(n) => Ok(n),
            Err(e) => {
                debug1!("pg_chameleon_rs: set-based replay of {label} refused ({e}): applying its events one by one");
                self.apply_events(events)
            }
        }
    }

    /// The set path of `apply_unit`: events of tables that take sets are folded per table into
    /// their net change, the others applied at once (no foreign key or trigger links them);
    /// then each table's net change is applied and checked.
    fn apply_unit_as_sets(&mut self, events: &[Ev], label: &str) -> Result<i64> {
        let mut reducers: HashMap<i32, Reducer<Values<'_>, Values<'_>>> = HashMap::new();
        let mut order: Vec<i32> = Vec::new();
        let mut key_at: HashMap<i32, Vec<usize>> = HashMap::new();
        let mut applied = 0i64;
        for (i, ev) in events.iter().enumerate() {
            if !self.takes_sets(ev.table_id) {
                applied += self.apply_one(ev)?;
                continue;
            }
            if !self.is_due(ev) {
                continue;
            }
            let op = ev.op;
            let at = match key_at.get(&ev.table_id) {
                Some(at) => at,
                None => {
                    let t = self.tables.get(&ev.table_id).map(TableRow::key_indexes).unwrap_or_default();
                    key_at.entry(ev.table_id).or_insert(t)
                }
            };
            let row = ev.row.as_deref().map(rowcodec::decode).transpose()?;
            let old = ev.key.as_deref().map(rowcodec::decode).transpose()?;
            let change = change_of(op, old, row, at).ok_or_else(|| {
                ChameleonError::catalog(format!("row event {} of {label} lacks its key or row", ev.event))
            })?;
            let reducer = reducers.entry(ev.table_id).or_insert_with(|| {
                order.push(ev.table_id);
                Reducer::new()
            });
            reducer
                .push(i, change)
                .map_err(|WouldFail(i)| ChameleonError::state(format!("event {i} of the unit fails one by one")))?;
            applied += 1;
        }
        for table_id in order {
            if let Some(r) = reducers.remove(&table_id) {
                self.apply_net(table_id, r.finish())?;
            }
        }
        self.applying = None;
        Ok(applied)
    }

    fn set_plan(&mut self, table_id: i32) -> Result<&SetPlan> {
        if !self.set_plans.contains_key(&table_id) {
            let t = self
                .tables
                .get(&table_id)
                .ok_or_else(|| ChameleonError::not_found(format!("table id {table_id} is not in the catalogue")))?;
            let cols = pg_columns(t);
            let key_at = t.key_indexes();
            let key: Vec<&PgColumn> = key_at.iter().map(|&i| &cols[i]).collect();
            let (width, nkey) = (cols.len(), key.len());
            let plan = SetPlan {
                insert: prepare_set(&setsql::insert_rows(&t.pg_schema, &t.pg_table, &cols), width, true)?,
                update: prepare_set(&setsql::update_rows(&t.pg_schema, &t.pg_table, &cols, &key_at), width, true)?,
                delete: prepare_set(&setsql::delete_keys(&t.pg_schema, &t.pg_table, &key), nkey, true)?,
                count: prepare_set(&setsql::count_keys(&t.pg_schema, &t.pg_table, &key), nkey, false)?,
                width,
                key_at,
            };
            self.set_plans.insert(table_id, plan);
        }
        self.set_plans.get(&table_id).ok_or_else(|| ChameleonError::internal("set plan cache lost a plan".into()))
    }

    /// Applies a table's net change; every statement must touch exactly the rows it names.
    fn apply_net(&mut self, table_id: i32, net: NetChange<Values<'_>, Values<'_>>) -> Result<()> {
        if net.is_empty() {
            return Ok(());
        }
        let plan = self.set_plan(table_id)?;
        let (width, nkey) = (plan.width, plan.key_at.len());
        let checks: [(&OwnedPreparedStatement, Vec<&Values<'_>>, usize, usize); 4] = [
            (&plan.delete, net.deletes.iter().collect(), nkey, net.deletes.len()),
            (&plan.count, net.absent.iter().collect(), nkey, 0),
            (&plan.update, net.updates.iter().map(|(_, r)| r).collect(), width, net.updates.len()),
            (&plan.insert, net.inserts.iter().collect(), width, net.inserts.len()),
        ];
        for (i, (stmt, rows, w, expected)) in checks.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            if rows.iter().any(|r| r.len() != w) {
                return Err(ChameleonError::catalog(format!(
                    "a stored row of table id {table_id} has the wrong width"
                )));
            }
            let touched = Spi::connect_mut(|client| -> Result<usize> {
                // the arrays live in SPI's memory, freed when this statement's connection ends
                let args: Vec<DatumWithOid> =
                    (0..w).map(|c| rows.iter().map(|r| r[c]).collect::<Vec<Option<&str>>>().into()).collect();
                // every one, the count too, runs as a write (pgrx's `update`): a fresh snapshot
                // that sees this transaction's earlier statements, whether or not it has an xid
                // yet (`select` would read the transaction's first snapshot until it has one)
                let t = client.update(stmt, None, &args)?;
                if i == 1 {
                    Ok(t.first().get_one::<i64>()?.unwrap_or_default() as usize)
                } else {
                    Ok(t.len())
                }
            })?;
            if touched != expected {
                return Err(ChameleonError::state(format!(
                    "a set statement on table id {table_id} touched {touched} rows instead of {expected}"
                )));
            }
        }
        Ok(())
    }

    /// A DDL statement of the source, in stream order: applied (or recorded as failed), then
    /// every plan is dropped and the tables read again.
    fn apply_ddl(&mut self, ev: &Ev) -> Result<()> {
        let at = BinlogPosition::new(ev.file.clone(), ev.pos as u64);
        let fields = ev.row.as_deref().map(rowcodec::decode).transpose()?.unwrap_or_default();
        let event = DdlEvent::from_row(&fields)
            .map_err(|e| ChameleonError::from(e).context(format!("the DDL event at {at}")))?;
        self.applying = None;
        ddl_apply::apply(self.source_id, &self.tables, &event, &at)?;
        self.plans.clear();
        self.full_row.clear();
        self.set_plans.clear();
        self.reload_tables()?;
        self.read_ordered_tables()
    }

    /// A table's catch-up when its copy finishes while the source runs (`sync_tables`): the
    /// events of the table after its new consistent point that replay already passed (and
    /// skipped, the table being copied) are applied now, in the copy's transaction, which
    /// holds the replay lock. Batches read from an earlier server (before `alter_source`
    /// pointed the source at this one) all precede the copy and are never compared with its
    /// point. Returns how many.
    pub fn catch_up(&mut self, table_id: i32) -> Result<i64> {
        self.read_ordered_tables()?;
        let (mut applied, mut after) = (0i64, (0i64, -1i32));
        loop {
            let events = load_events(
                "SELECT l.i_id_batch, l.i_id_event, l.i_events, l.b_events, l.t_binlog_name, l.i_binlog_position \
                   FROM sch_chameleon.t_log_replica l \
                   JOIN sch_chameleon.t_replica_batch b ON b.i_id_batch = l.i_id_batch AND b.i_log_slot = l.i_log_slot \
                  WHERE b.i_id_source = $1 AND b.b_replayed AND $2 = ANY (l.i_tables) \
                    AND b.i_id_batch > coalesce((SELECT s.i_moved_after_batch FROM sch_chameleon.t_sources s \
                                                  WHERE s.i_id_source = $1), 0) \
                    AND (l.i_id_batch, l.i_id_event) > ($3, $4) \
                  ORDER BY l.i_id_batch, l.i_id_event LIMIT $5",
                &[self.source_id.into(), table_id.into(), after.0.into(), after.1.into(), CHUNKS_READ.into()],
                Some(table_id),
            )?;
            // every chunk selected holds an event of the table: none left when nothing came
            let Some(last) = events.last() else { break };
            after = (last.batch, last.event);
            applied += self.apply_chunk(&events, "the catch-up after the table's copy")?;
        }
        Ok(applied)
    }

    /// Clears, in the batch's transaction, the consistent point of every replicating table
    /// that this batch (ending at `end`, read from the same server) reaches: every later
    /// event applies to the table, and a point kept would be compared with the positions of
    /// another server after a failover (where files have other names and numbers).
    fn forget_points_passed(&mut self, end: &BinlogPosition) -> Result<()> {
        let passed: Vec<i32> = self
            .tables
            .values()
            .filter(|t| t.state == TableState::Replicating && t.point.as_ref().is_some_and(|p| p <= end))
            .map(|t| t.id)
            .collect();
        catalog::clear_table_points(&passed)?;
        for id in &passed {
            if let Some(t) = self.tables.get_mut(id) {
                t.point = None;
            }
        }
        Ok(())
    }

    /// Applies one batch and marks it replayed, in the caller's transaction.
    /// Returns the number of row events applied (skipped ones not counted).
    pub fn apply_batch(&mut self, batch_id: i64) -> Result<i64> {
        // Lock the batch: a concurrent replay (the worker and chameleon.replay()) waits here
        // and then sees it replayed, so no batch is ever applied twice.
        let (already, slot, end): (Option<bool>, i16, Option<BinlogPosition>) = catalog::run_kept(
            "SELECT b_replayed, i_log_slot, t_binlog_name, i_binlog_position FROM sch_chameleon.t_replica_batch \
             WHERE i_id_batch = $1 FOR UPDATE",
            &[INT8_OID],
            &[batch_id.into()],
            |t| {
                if t.is_empty() {
                    return Ok((None, 0, None));
                }
                let row = t.first();
                let end = match (row.get::<String>(3)?, row.get::<i64>(4)?) {
                    (Some(file), Some(pos)) => Some(BinlogPosition::new(file, pos as u64)),
                    _ => None,
                };
                Ok((row.get(1)?, row.get(2)?.unwrap_or_default(), end))
            },
        )?;
        if already != Some(false) {
            return Ok(0);
        }
        // a table sync finishing (catch-up) goes first; then the table cache must be current
        catalog::replay_lock(self.source_id, false)?;
        if catalog::table_generation(self.source_id)? != self.generation {
            self.reload_tables()?;
        }
        self.read_ordered_tables()?;
        let label = format!("batch {batch_id}");
        let (mut applied, mut after) = (0i64, -1i32);
        loop {
            let events = load_events(
                "SELECT i_id_batch, i_id_event, i_events, b_events, t_binlog_name, i_binlog_position \
                   FROM sch_chameleon.t_log_replica \
                  WHERE i_id_batch = $1 AND i_log_slot = $2 AND i_id_event > $3 ORDER BY i_id_event LIMIT $4",
                &[batch_id.into(), slot.into(), after.into(), CHUNKS_READ.into()],
                None,
            )?;
            let Some(last) = events.last() else { break };
            after = last.event;
            applied += self.apply_chunk(&events, &label)?;
        }
        if let Some(end) = &end {
            self.forget_points_passed(end)?;
        }
        // the replayed mark and the source's last replayed time, in one statement
        catalog::run_kept(
            "WITH b AS (UPDATE sch_chameleon.t_replica_batch SET b_replayed = true, ts_replayed = clock_timestamp() \
                         WHERE i_id_batch = $1 RETURNING i_id_source, ts_source) \
             INSERT INTO sch_chameleon.t_last_replayed (i_id_source, ts_last_replayed) \
             SELECT i_id_source, coalesce(ts_source, clock_timestamp()) FROM b \
             ON CONFLICT (i_id_source) DO UPDATE SET ts_last_replayed = EXCLUDED.ts_last_replayed, \
                ts_written = clock_timestamp()",
            &[INT8_OID],
            &[batch_id.into()],
            |_| Ok(()),
        )?;
        Ok(applied)
    }
}

/// The change one row event makes to its table's keys: the new key taken from the row (the
/// columns `key_at`). None when the event lacks what its operation needs.
fn change_of<'a>(
    op: Op,
    old: Option<Values<'a>>,
    row: Option<Values<'a>>,
    key_at: &[usize],
) -> Option<Change<Values<'a>, Values<'a>>> {
    let key_of = |r: &Values<'a>| key_at.iter().map(|&i| r.get(i).copied()).collect::<Option<Values<'a>>>();
    match op {
        Op::Insert => {
            let row = row?;
            Some(Change::Insert { key: key_of(&row)?, row })
        }
        Op::Update => {
            let row = row?;
            Some(Change::Update { old_key: old?, key: key_of(&row)?, row })
        }
        Op::Delete => Some(Change::Delete { old_key: old? }),
        Op::Ddl => None,
    }
}

/// The replay worker of a source (started with the read worker by `start_replica`, restarted
/// by the launcher): applies stored batches as they arrive, each in its own transaction.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_replay_main(arg: pg_sys::Datum) {
    let source_id = crate::workers::worker_prologue(arg);
    if let Err(e) = run_worker(source_id) {
        crate::workers::stop_source_on_error(source_id, crate::workers::WorkerRole::Replay, &e.to_string());
    }
}

fn run_worker(source_id: i32) -> Result<()> {
    let source = in_transaction(|| catalog::source_by_id(source_id))?;
    crate::workers::set_application_name(&format!("pg_chameleon_rs replay {}", source.name));
    let options = source.options()?;
    let mut replayer = Replayer::new(source_id, options.skip_events.clone());
    let idle = options.sleep_loop_duration().min(Duration::from_millis(50));
    let mut last_status_check = std::time::Instant::now();
    // log maintenance: a quarter of the retention, at least every minute
    let maintenance_every = (options.batch_retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut last_maintenance = std::time::Instant::now();
    while !shutdown_requested() {
        if options.auto_maintenance && last_maintenance.elapsed() >= maintenance_every {
            last_maintenance = std::time::Instant::now();
            match in_transaction(crate::workers::maintenance::run) {
                Ok(r) if r.batches_removed > 0 || r.rotated_to.is_some() => {
                    log!("pg_chameleon_rs: log maintenance: {}", r.summary())
                }
                Ok(_) => {}
                Err(e) => log!("pg_chameleon_rs: log maintenance failed (tried again later): {e}"),
            }
        }
        let applied = replay_pending(&mut replayer, source_id, &options)?;
        if applied == 0 {
            if last_status_check.elapsed() >= Duration::from_secs(1) {
                last_status_check = std::time::Instant::now();
                // the read worker hit a fatal error: nothing more will come
                if in_transaction(|| catalog::source_by_id(source_id))?.status == SourceStatus::Error {
                    return Ok(());
                }
            }
            backend_sleep(idle);
        }
    }
    Ok(())
}

/// Replays every stored batch, each in its own transaction. A failing batch is rolled back
/// and recorded; with `on_error_replay = continue` the failing table is disabled and the batch
/// retried without it, with `exit` the error is returned (the source goes to `error`).
pub fn replay_pending(replayer: &mut Replayer, source_id: i32, options: &SourceOptions) -> Result<i64> {
    let mut total = 0;
    loop {
        // (the table catalogue is re-read by apply_batch when its generation moved)
        let batches = in_transaction(|| replayer.pending_batches(16))?;
        if batches.is_empty() {
            return Ok(total);
        }
        for b in batches {
            let mut attempt = 0u32;
            loop {
                match abandonable(|| in_transaction(|| replayer.apply_batch(b.id))) {
                    Ok(n) => {
                        total += n.max(1);
                        break;
                    }
                    Err(e) => {
                        let at = replayer.failure_point();
                        let msg = match &at.table {
                            Some(t) => format!("replay of {t} failed: {e}"),
                            None => format!("replay failed: {e}"),
                        };
                        if let (true, Some(table_id), Some((batch, event))) =
                            (too_large_for_postgres(&e.sqlstate()), at.table_id, at.event)
                        {
                            // a row PostgreSQL cannot store (a limit, not a divergence): kept
                            // in discarded_rows as the copy keeps it, and the batch applied
                            // again without it; the table now knowingly lacks that row
                            let reason = format!("PostgreSQL refused the row: {e} (SQLSTATE {})", e.sqlstate());
                            in_transaction(|| {
                                catalog::discard_logged_row(
                                    source_id,
                                    table_id,
                                    batch,
                                    event,
                                    at.position.as_ref(),
                                    &reason,
                                )
                            })?;
                            log!("pg_chameleon_rs: {msg}: the row is kept in discarded_rows and replay goes on");
                            replayer.set_aside(batch, event);
                            continue;
                        }
                        if is_transient_sqlstate(&e.sqlstate()) {
                            attempt += 1;
                            wait_before_retry(source_id, b.id, attempt, &msg, &at)?;
                            if shutdown_requested() {
                                return Ok(total);
                            }
                            continue;
                        }
                        in_transaction(|| {
                            catalog::record_error(
                                source_id,
                                at.table_id,
                                at.position.as_ref(),
                                at.statement.as_deref(),
                                Some(&e.sqlstate()),
                                &msg,
                            )
                        })?;
                        match (options.on_error_replay, at.table_id) {
                            (OnErrorReplay::Continue, Some(tid)) => {
                                // the generation moves: the retried batch reloads the tables
                                in_transaction(|| catalog::disable_table(tid, &msg))?;
                            }
                            _ => {
                                let pos = at.position.map(|p| format!(" at {p}")).unwrap_or_default();
                                return Err(ChameleonError::state(format!("{msg}{pos}")));
                            }
                        }
                    }
                }
            }
            if shutdown_requested() {
                return Ok(total);
            }
        }
    }
}

/// Whether PostgreSQL refused a row for one of its size limits (SQLSTATE 54000,
/// program_limit_exceeded: an index row larger than a btree page allows, a row too big, a
/// value over its type's maximum size): no replay will ever store it.
fn too_large_for_postgres(sqlstate: &str) -> bool {
    sqlstate == "54000"
}

/// A batch failed on a transient error (a deadlock, a lock or statement timeout, a
/// serialization failure): nothing is disabled and the source stays running; `last_error`
/// says what happened and that the batch is retried, and the worker waits (backing off) before
/// retrying the whole batch, which is atomic with its replayed mark (contract 1).
fn wait_before_retry(source_id: i32, batch_id: i64, attempt: u32, msg: &str, at: &FailurePoint) -> Result<()> {
    let wait = Duration::from_millis(retry_backoff_ms(attempt));
    let pos = at.position.as_ref().map(|p| format!(" at {p}")).unwrap_or_default();
    let note = format!(
        "{msg}{pos} (a transient error: batch {batch_id} is retried whole in {} ms, attempt {attempt})",
        wait.as_millis()
    );
    if attempt == 1 || attempt.is_power_of_two() {
        log!("pg_chameleon_rs: {note}");
    }
    in_transaction(|| catalog::set_source_error(source_id, None, &note))?;
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until && !shutdown_requested() {
        backend_sleep(Duration::from_millis(50).min(wait));
    }
    Ok(())
}
