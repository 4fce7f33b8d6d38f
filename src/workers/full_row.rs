//! Replay of tables without a primary or NOT NULL unique key ("full row" tables,
//! `TableRow::full_row`): an update or delete changes exactly one destination row equal to the
//! event's before image, every column of it, NULLs matching NULLs, found by `ctid`
//! (`core::sql::full_row_update_statement`), so equal rows stay as many as on the source. One
//! prepared plan per table, operation and pattern of NULLs in the before image (a NULL is
//! matched with `IS NULL`, a value with `=`, so an index on any column can serve the search).
//! Inserts of these tables use the keyed tables' INSERT plan. Used by `workers/replay.rs`;
//! what a change matching no row means is decided there, as for keyed tables.

use crate::catalog::{self, TableRow, TEXT_OID};
use crate::core::change::Op;
use crate::core::sql::{self, PgColumn};
use crate::error::{ChameleonError, Result};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use std::collections::HashMap;

/// More plans than this (NULL patterns of every table together) and they are all dropped:
/// a table with many nullable columns must not grow the cache without bound.
const MAX_PLANS: usize = 256;

/// Which plan: table, operation, and which before-image values are NULL.
type PlanKey = (i32, Op, Vec<bool>);

struct Plan {
    sql: String,
    stmt: OwnedPreparedStatement,
}

#[derive(Default)]
pub struct FullRowPlans {
    plans: HashMap<PlanKey, Plan>,
    /// The plan of the last statement run, for the failure point.
    last: Option<PlanKey>,
}

impl FullRowPlans {
    /// Drops the plans of tables `keep` refuses (their definition changed).
    pub fn retain(&mut self, keep: impl Fn(i32) -> bool) {
        self.plans.retain(|(id, _, _), _| keep(*id));
    }

    pub fn clear(&mut self) {
        self.plans.clear();
        self.last = None;
    }

    /// The statement last run for `table_id` and `op`, if the last one was for them.
    pub fn statement(&self, table_id: i32, op: Op) -> Option<String> {
        let key = self.last.as_ref().filter(|(id, o, _)| *id == table_id && *o == op)?;
        self.plans.get(key).map(|p| p.sql.clone())
    }

    /// Runs an update (`values`: the new row, then the before image) or a delete (`values`:
    /// the before image) of the full-row table `t`; returns the rows changed (0 or 1).
    pub fn execute(&mut self, t: &TableRow, op: Op, values: &[Option<&str>]) -> Result<usize> {
        let n = t.columns.len();
        let before = match op {
            Op::Update if values.len() == 2 * n => &values[n..],
            Op::Delete if values.len() == n => values,
            Op::Update | Op::Delete => {
                return Err(ChameleonError::catalog(format!(
                    "a stored {} of {} (a table without a key, {n} columns) has {} values instead of the whole row",
                    if op == Op::Update { "update" } else { "delete" },
                    t.mysql_name(),
                    values.len()
                ))
                .with_hint("copy the table again with chameleon.sync_tables"))
            }
            Op::Insert | Op::Ddl => {
                return Err(ChameleonError::internal(format!("no full-row plan for {}", op.code())))
            }
        };
        let key: PlanKey = (t.id, op, before.iter().map(Option::is_none).collect());
        if !self.plans.contains_key(&key) {
            if self.plans.len() >= MAX_PLANS {
                self.plans.clear();
            }
            let cols: Vec<PgColumn> = t.columns.iter().zip(&t.mapped).map(|(c, m)| PgColumn::of(c, m)).collect();
            let sql = match op {
                Op::Update => sql::full_row_update_statement(&t.pg_schema, &t.pg_table, &cols, &key.2),
                _ => sql::full_row_delete_statement(&t.pg_schema, &t.pg_table, &cols, &key.2),
            };
            let stmt = catalog::kept_plan(&sql, &vec![TEXT_OID; values.len()], true)?;
            self.plans.insert(key.clone(), Plan { sql, stmt });
        }
        let plan =
            self.plans.get(&key).ok_or_else(|| ChameleonError::internal("full-row plan cache lost a plan".into()))?;
        self.last = Some(key);
        let args: Vec<DatumWithOid> = values.iter().map(|v| (*v).into()).collect();
        Spi::connect_mut(|client| -> Result<usize> { Ok(client.update(&plan.stmt, None, &args)?.len()) })
    }
}
