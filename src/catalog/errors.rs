//! `t_error_log` (replay and copy errors) and `t_discarded_rows` (rows the destination
//! refused, kept with their exact bytes).

use super::run;
use crate::core::position::BinlogPosition;
use crate::error::Result;

#[allow(clippy::too_many_arguments)]
pub fn record_error(
    source_id: i32,
    table_id: Option<i32>,
    position: Option<&BinlogPosition>,
    statement: Option<&str>,
    sqlstate: Option<&str>,
    message: &str,
) -> Result<()> {
    run(
        "INSERT INTO sch_chameleon.t_error_log (i_id_source, i_id_table, t_binlog_name, i_binlog_position, t_statement, t_sqlstate, t_error_message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            source_id.into(),
            table_id.into(),
            position.map(|p| p.file.clone()).into(),
            position.map(|p| p.pos as i64).into(),
            statement.into(),
            sqlstate.into(),
            message.into(),
        ],
    )
}

/// Keeps a row the destination could not store, and counts it on its table; returns the
/// table's count of discarded rows after it.
pub fn record_discarded(
    source_id: i32,
    table_id: i32,
    position: Option<&BinlogPosition>,
    raw: &[u8],
    reason: &str,
) -> Result<i64> {
    run(
        "INSERT INTO sch_chameleon.t_discarded_rows (i_id_source, i_id_table, t_binlog_name, i_binlog_position, b_row, t_reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            source_id.into(),
            table_id.into(),
            position.map(|p| p.file.clone()).into(),
            position.map(|p| p.pos as i64).into(),
            raw.to_vec().into(),
            reason.into(),
        ],
    )?;
    pgrx::Spi::connect_mut(|client| {
        let t = client.update(
            "UPDATE sch_chameleon.t_replica_tables SET i_rows_discarded = i_rows_discarded + 1 WHERE i_id_table = $1 \
             RETURNING i_rows_discarded",
            None,
            &[table_id.into()],
        )?;
        Ok(if t.is_empty() { 0 } else { t.first().get_one::<i64>()?.unwrap_or_default() })
    })
}

/// A row event of the log whose row PostgreSQL cannot store (replay found it): its stored row
/// goes to `t_discarded_rows` with the reason, counted on its table; the table generation
/// moves, so replay knows the table lacks a row.
pub fn discard_logged_row(
    source_id: i32,
    table_id: i32,
    batch: i64,
    event: i32,
    position: Option<&BinlogPosition>,
    reason: &str,
) -> Result<()> {
    let row = super::stored_event(batch, event)?.and_then(|e| e.row.or(e.key)).unwrap_or_default();
    record_discarded(source_id, table_id, position, &row, reason)?;
    super::bump_table_generation(source_id)
}
