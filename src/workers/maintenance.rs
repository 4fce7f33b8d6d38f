//! Log maintenance (`run_maintenance`, and the replay workers with `auto_maintenance`): keeps
//! the stored change log bounded under any load without DELETE of log rows or long locks.
//!
//! The log (`sch_chameleon.t_log_replica`) has 8 partitions, the log slots; the batch writers
//! write into the current one. Maintenance
//! 1. empties every other slot whose batches are all replayed and older than their source's
//!    `batch_retention`: `TRUNCATE` of its partition (taken with NOWAIT: a busy slot is left
//!    for the next run) and removal of its batch rows;
//! 2. moves the writers to the next slot once the current one is older than a quarter of the
//!    shortest `batch_retention` and the next one is empty.
//!
//! The log is shared by the sources of the database, so one maintenance serves them all (an
//! advisory lock keeps two from running at once).

use crate::catalog;
use crate::error::Result;
use crate::workers::txn::in_subtransaction;

pub const LOG_SLOTS: i16 = 8;

#[derive(Debug, Default)]
pub struct Report {
    /// Another maintenance was running: nothing done.
    pub busy: bool,
    pub emptied_slots: Vec<i16>,
    pub batches_removed: i64,
    pub events_removed: i64,
    /// Slots that could be emptied but were in use (tried again next time).
    pub skipped_busy: Vec<i16>,
    pub rotated_to: Option<i16>,
}

impl Report {
    pub fn summary(&self) -> String {
        if self.busy {
            return "another maintenance is running".into();
        }
        let mut s = format!(
            "{} replayed batches ({} row events) past their retention removed",
            self.batches_removed, self.events_removed
        );
        if !self.emptied_slots.is_empty() {
            s.push_str(&format!("; log slots emptied: {:?}", self.emptied_slots));
        }
        if !self.skipped_busy.is_empty() {
            s.push_str(&format!("; slots in use, left for the next run: {:?}", self.skipped_busy));
        }
        if let Some(r) = self.rotated_to {
            s.push_str(&format!("; the log now writes into slot {r}"));
        }
        s
    }
}

/// One maintenance pass, in the caller's transaction.
pub fn run() -> Result<Report> {
    let mut report = Report::default();
    if !catalog::try_maintenance_lock()? {
        report.busy = true;
        return Ok(report);
    }
    // A source whose stored options cannot be read is left out of the list: the slots holding
    // its batches are then kept (empty_log_slot removes only what every source's retention allows).
    let mut retention: Vec<(i32, f64)> = Vec::new();
    for s in catalog::all_sources()? {
        match s.options() {
            Ok(o) => retention.push((s.id, o.batch_retention.as_secs_f64())),
            Err(e) => pgrx::warning!("pg_chameleon_rs maintenance: keeping every batch of source \"{}\": {e}", s.name),
        }
    }
    let shortest = retention.iter().map(|r| r.1).fold(86_400.0_f64, f64::min);
    let slots = catalog::log_slots()?;
    for slot in slots.iter().filter(|s| !s.current && s.batches > 0) {
        match in_subtransaction(|| catalog::empty_log_slot(slot.slot, &retention)) {
            Ok(Some((batches, events))) => {
                report.emptied_slots.push(slot.slot);
                report.batches_removed += batches;
                report.events_removed += events;
            }
            Ok(None) => {}
            // NOWAIT: a reader or writer holds the partition; next time
            Err(_) => report.skipped_busy.push(slot.slot),
        }
    }
    let slots = catalog::log_slots()?;
    if let Some(current) = slots.iter().find(|s| s.current) {
        let next = (current.slot + 1) % LOG_SLOTS;
        let next_empty = slots.iter().any(|s| s.slot == next && s.batches == 0);
        if current.age_seconds >= shortest / 4.0 && next_empty {
            catalog::set_current_log_slot(next)?;
            report.rotated_to = Some(next);
        }
    }
    Ok(report)
}
