//! `verify_tables` and `stop_verification`: a verification run is recorded and its worker
//! started (`workers::verify` compares); `chameleon.verification` shows the results.

use crate::catalog;
use crate::core::sql::quote_ident;
use crate::core::state::{SourceStatus, TableState};
use crate::error::{ok, ChameleonError, Result};
use crate::workers::{self, verify};
use pgrx::prelude::*;

fn verify_tables_now(source_name: &str, tables: Option<Vec<String>>, repair: bool, wait: bool) -> Result<i64> {
    let s = catalog::source_by_name(source_name)?;
    catalog::fail_dead_verify_runs(s.id)?;
    if !matches!(s.status, SourceStatus::Running | SourceStatus::Syncing) {
        return Err(ChameleonError::state(format!(
            "source \"{source_name}\" is {}: a verification compares while replication runs",
            s.status
        ))
        .with_hint("start_replica first"));
    }
    let all = catalog::tables_for_source(s.id)?;
    let chosen: Vec<&catalog::TableRow> = match &tables {
        None => all.iter().filter(|t| t.enabled && t.state == TableState::Replicating).collect(),
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                let t = all.iter().find(|t| &t.mysql_name() == n).ok_or_else(|| {
                    ChameleonError::not_found(format!("table {n} is not replicated by source \"{source_name}\""))
                        .with_hint("name tables as MySQL schema.table, as chameleon.tables shows them")
                })?;
                out.push(t);
            }
            out
        }
    };
    if chosen.is_empty() {
        return Err(ChameleonError::state(format!("source \"{source_name}\" has no replicating table to verify")));
    }
    let db = catalog::current_database()?;
    if wait {
        // the worker records the run from the list it is handed (this transaction cannot
        // commit one before it waits)
        let ids: Vec<i32> = chosen.iter().map(|t| t.id).collect();
        let list = verify::TableList::new(s.id, &ids)?;
        let started = workers::start_verify_worker(list.worker_arg(repair), &s.name, &db)?;
        started
            .handle
            .wait_for_shutdown()
            .map_err(|st| ChameleonError::state(format!("lost track of the verification worker: {st:?}")))?;
        drop(list);
        if started.pid == 0 {
            // it ended before the postmaster reported it running: its run cannot be told by pid
            return Err(ChameleonError::state("the verification worker ended before it was seen running".into())
                .with_hint(
                "its run, if it recorded one, is the latest of the source in chameleon.verification; see the server log",
            ));
        }
        // (a statement with a snapshot of its own: the worker's run was committed after ours)
        let id = Spi::connect_mut(|c| -> Result<Option<i64>> {
            let t = c.update(
                "SELECT max(i_id_run) FROM sch_chameleon.t_verify_runs WHERE i_id_source = $1 AND i_worker_pid = $2",
                None,
                &[s.id.into(), started.pid.into()],
            )?;
            Ok(t.first().get_one::<i64>()?)
        })?;
        return id.ok_or_else(|| {
            ChameleonError::state("the verification worker recorded no run (see the server log)".into())
        });
    }
    let list: Vec<(i32, String, String)> = chosen
        .iter()
        .map(|t| (t.id, t.mysql_name(), format!("{}.{}", quote_ident(&t.pg_schema), quote_ident(&t.pg_table))))
        .collect();
    let run_id = catalog::create_verify_run(s.id, repair, &list)?;
    // the worker waits for this lock, so it reads the run once this transaction commits
    catalog::execute(&format!(
        "SELECT pg_advisory_xact_lock(hashtext('pg_chameleon_rs verify'), ({run_id} % 2147483647)::int)"
    ))?;
    workers::start_verify_worker(verify::worker_arg_for_run(run_id), &s.name, &db)?;
    Ok(run_id)
}

/// Compares the named tables (MySQL `schema.table`; default: every replicating table) with
/// the source, chunk by chunk, while replication and the application keep running; returns
/// the run id (`chameleon.verification`). The worker starts after this transaction commits;
/// `wait => true` blocks until it is done (the worker then records the run itself). `repair => true` copies
/// a different table again (`sync_tables`) and compares it again.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn verify_tables(
    source_name: &str,
    tables: default!(Option<Vec<String>>, "NULL"),
    repair: default!(bool, false),
    wait: default!(bool, false),
) -> i64 {
    ok(verify_tables_now(source_name, tables, repair, wait))
}

fn stop_now(run_id: i64) -> Result<bool> {
    let run = catalog::verify_run(run_id)?;
    if run.state != "queued" && run.state != "running" {
        return Ok(false);
    }
    let pid = Spi::get_one_with_args::<i32>(
        "SELECT a.pid FROM sch_chameleon.t_verify_runs r JOIN pg_stat_activity a \
             ON a.pid = r.i_worker_pid AND a.backend_start = r.ts_worker_start WHERE r.i_id_run = $1",
        &[run_id.into()],
    )?;
    catalog::finish_verify_run(run_id, "stopped", None)?;
    if let Some(pid) = pid {
        Spi::get_one_with_args::<bool>("SELECT pg_terminate_backend($1)", &[pid.into()])?;
    }
    Ok(true)
}

/// Stops a verification run: its tables not compared yet are `failed` (stopped); true if it
/// was running.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn stop_verification(run_id: i64) -> bool {
    ok(stop_now(run_id))
}
