//! Repair by key (`verify_tables(..., repair => true)`): the differing rows of a table with a
//! key rewritten at the destination, exactly, while replication goes on; what cannot be
//! repaired so (a table without a key, more than `REPAIR_KEYS` differing rows, a key the
//! source cannot be asked for by literals) is copied again by `sync_tables` instead.
//!
//! A page of keys (`RECHECK_KEYS`) is read on the source by key (`core::keyset::one_of`) in a
//! new consistent snapshot at position P. Once replay has passed P, one transaction at the
//! destination takes `LOCK TABLE ... IN EXCLUSIVE MODE` (readers go on; replay's next write to
//! this table waits, a batch that wrote to it before is committed by then), so that the stored
//! changes replayed so far are exactly those its rows hold: it reads the table's stored changes
//! after P up to what is replayed (R), moves the source rows of the page's keys from P to R
//! (`ChunkCompare`, as the comparison does), deletes the page's keys and inserts the moved rows
//! (each value cast from the converter's text, as COPY stores it). The lock is held for that
//! transaction only. The table is then compared again.

use super::{
    canonicalize, key_args, key_array_params, key_names, key_types, moved_by_keys, read_by_keys, read_fresh_changes,
    storable_key, unnest_keys, wait_for_replay, Ctx, KeySource, Overlay, Plan, Timings, RECHECK_KEYS, REFUSED,
};
use crate::catalog;
use crate::core::error::{CoreError, CoreResult};
use crate::core::keyset::{self, LiteralKind};
use crate::core::mysql_source;
use crate::core::position::BinlogPosition;
use crate::core::sql::quote_ident;
use crate::core::types::ValueKind;
use crate::core::verify::{KeyRange, Row};
use crate::error::{ChameleonError, Result};
use crate::workers::txn::{in_transaction, spawn_without_signals};
use pgrx::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// How long the repair waits for the table's lock (replay may hold it for a batch).
const LOCK_TIMEOUT: &str = "60s";

/// The key columns' literal kinds when the table can be repaired by key.
pub(super) fn literal_kinds(plan: &Plan) -> Option<Vec<LiteralKind>> {
    if plan.range_key.is_some() {
        return Some(vec![LiteralKind::Number]);
    }
    plan.keyset.clone()
}

/// Rewrites the rows of `keys` (every differing row's key) at the destination; returns how
/// many rows it wrote (deleted keys not counted).
pub(super) fn repair_by_keys(ctx: &Ctx, plan: &Plan, kinds: &[LiteralKind], keys: &[Row]) -> Result<u64> {
    // a key with a value the converter refused names a row the copy never stores
    let storable: Vec<Row> = keys.iter().filter(|k| storable_key(k)).cloned().collect();
    let mut written = 0u64;
    for page in storable.chunks(RECHECK_KEYS) {
        let literals = in_transaction(|| literals_of(plan, kinds, page))?;
        let (at, mut rows) = read_on_source(ctx, plan, literals)?;
        in_transaction(|| canonicalize(plan, &mut rows))?;
        let after = wait_for_replay(ctx, &at)?;
        written += in_transaction(|| rewrite(ctx, plan, page, rows.clone(), &at, after))?;
    }
    Ok(written)
}

/// Each key as the source's literals, written by PostgreSQL from the key's typed value
/// (`LiteralKind::pg_text`: a timestamp with time zone in UTC, bytes in hex); the keys are
/// storable (`storable_key`).
pub(super) fn literals_of(plan: &Plan, kinds: &[LiteralKind], page: &[Row]) -> Result<Vec<Vec<String>>> {
    let names: Vec<String> = (1..=plan.key.len()).map(|i| format!("k.c{i}")).collect();
    let texts: Vec<String> = kinds.iter().zip(&names).zip(key_types(plan)).map(|((k, n), t)| k.pg_text(n, t)).collect();
    let sql = format!(
        "SELECT {} FROM unnest({}) WITH ORDINALITY AS k({}, n) ORDER BY k.n",
        texts.join(", "),
        key_array_params(plan),
        (1..=plan.key.len()).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ")
    );
    let args = key_args(plan, page);
    let n = plan.key.len();
    Spi::connect(|c| -> Result<Vec<Vec<String>>> {
        let mut out = Vec::with_capacity(page.len());
        for (r, ident) in c.select(&sql, None, &args)?.zip(page) {
            let mut lits = Vec::with_capacity(n);
            for (i, k) in kinds.iter().enumerate() {
                let text = r.get::<String>(i + 1)?.unwrap_or_default();
                lits.push(keyset::literal_from_pg(k, &text).ok_or_else(|| {
                    ChameleonError::state(format!(
                        "key {} of {} at the destination cannot be written as the source's literal",
                        super::sample_key(ident),
                        plan.table.mysql_name()
                    ))
                    .with_hint("such a key cannot be compared with the source by verify_tables")
                })?);
            }
            out.push(lits);
        }
        Ok(out)
    })
}

/// The rows of the keys on the source, in a new snapshot, and its position (a thread of its
/// own: the main thread does not wait on the network).
fn read_on_source(ctx: &Ctx, plan: &Plan, literals: Vec<Vec<String>>) -> Result<(BinlogPosition, Vec<Row>)> {
    let endpoint = ctx.endpoint.clone();
    let flavor = ctx.flavor;
    let schema = plan.table.mysql_schema.clone();
    let table = plan.table.mysql_table.clone();
    let columns = plan.table.columns.clone();
    let kinds: Vec<ValueKind> = plan.table.mapped.iter().map(|m| m.kind.clone()).collect();
    let names: Vec<String> = plan.key.iter().map(|&i| plan.table.columns[i].name.clone()).collect();
    let what = plan.table.mysql_name();
    let read = move || -> CoreResult<(BinlogPosition, Vec<Row>)> {
        let mut snap = mysql_source::connect(&endpoint, None)?;
        mysql_source::prepare_copy_session(&mut snap)?;
        let mut lock = mysql_source::connect(&endpoint, None)?;
        let source = KeySource { flavor, schema: &schema, table: &table, columns: &columns, kinds: &kinds };
        read_by_keys(&mut snap, &mut lock, &source, &names, &literals)
    };
    let joined = spawn_without_signals("verify-repair", read)
        .map_err(|e| ChameleonError::state(format!("cannot start the repair's reading thread of {what}: {e}")))?
        .join()
        .map_err(|_| ChameleonError::state(format!("the repair's reading thread of {what} panicked")))?;
    joined.map_err(|e: CoreError| ChameleonError::from(e).context(format!("reading {what} on the source to repair it")))
}

/// One page rewritten under the table's lock (see the module header); returns the rows
/// inserted.
fn rewrite(ctx: &Ctx, plan: &Plan, page: &[Row], rows: Vec<Row>, at: &BinlogPosition, after: i64) -> Result<u64> {
    Spi::run(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))?;
    Spi::run(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", plan.from))?;
    let mut ov = Overlay { at: at.clone(), fetched: after, changes: Vec::new(), keys: Vec::new() };
    read_fresh_changes(ctx, plan, &mut ov, &mut Timings::default())?;
    let set: HashSet<Row> = page.iter().cloned().collect();
    let moved = moved_by_keys(plan, KeyRange::Keys(Arc::new(set)), rows, &ov.changes).into_source_rows();
    let names = key_names(plan);
    let cols: Vec<String> = plan.table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let values: Vec<String> =
        plan.table.mapped.iter().enumerate().map(|(i, m)| format!("${}::text::{}", i + 1, m.pg_type)).collect();
    let insert = format!("INSERT INTO {} ({}) VALUES ({})", plan.from, cols.join(", "), values.join(", "));
    let mut written = 0u64;
    Spi::connect_mut(|c| -> Result<()> {
        c.update(
            &format!("DELETE FROM {} WHERE ({}) IN ({})", plan.from, names.join(", "), unnest_keys(plan)),
            None,
            &key_args(plan, page),
        )?;
        let stmt = c.prepare_mut(&insert, &vec![catalog::TEXT_OID; cols.len()])?;
        for row in &moved {
            // a value the converter refused: the copy would not store the row either
            if row.iter().flatten().any(|v| v.starts_with(REFUSED)) {
                continue;
            }
            let args: Vec<pgrx::datum::DatumWithOid> = row.iter().map(|v| v.clone().into()).collect();
            c.update(&stmt, None, &args)?;
            written += 1;
        }
        Ok(())
    })?;
    Ok(written)
}
