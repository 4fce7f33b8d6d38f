//! Source management: `add_source`, `alter_source` (options, mappings, and the server read
//! from: `mysql_url`), `drop_source`, `enable_replica`.

use crate::catalog;
use crate::core::endpoint::Endpoint;
use crate::core::mapping::SchemaMappings;
use crate::core::options::{self, SourceOptions};
use crate::core::source_url::SourceUrl;
use crate::core::state::{SourceEvent, TableState};
use crate::error::{ok, ChameleonError, Kind, Result};
use crate::workers;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::time::Duration;

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 63 {
        return Err(ChameleonError::from(crate::core::error::CoreError::invalid_parameter(
            "source_name must be a non-empty name of at most 63 bytes".into(),
        )));
    }
    Ok(())
}

/// `password_file` and an `ssl_ca` path make the workers read a file of the server: as for
/// `COPY FROM` a file, only members of pg_read_server_files (and superusers) may name one.
fn check_may_name_server_files(changes: &serde_json::Value) -> Result<()> {
    let names_file = |key: &str| {
        changes.get(key).and_then(serde_json::Value::as_str).is_some_and(|v| !v.trim_start().starts_with("-----BEGIN"))
    };
    let keys: Vec<&str> = ["password_file", "ssl_ca"].into_iter().filter(|k| names_file(k)).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let may =
        Spi::get_one::<bool>("SELECT pg_has_role(current_user, 'pg_read_server_files', 'USAGE')")?.unwrap_or(false);
    if may {
        return Ok(());
    }
    Err(ChameleonError::postgres(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("option {} names a file of the server: permission denied", keys.join(" and ")),
    )
    .with_hint("a superuser or a member of pg_read_server_files must set it (ssl_ca may also be given as PEM text)"))
}

/// The source's endpoint as its workers will build it: the password file and the CA are
/// read now, so that a wrong path or mode is refused by the call that set it.
fn check_endpoint(url: &str, opts: &SourceOptions) -> Result<()> {
    Endpoint::resolve(url, opts)?;
    Ok(())
}

fn add(name: &str, url: &str, mappings: &serde_json::Value, opts: &serde_json::Value) -> Result<i32> {
    catalog::check_catalogue_version()?;
    validate_name(name)?;
    let parsed = SourceUrl::parse(url)?;
    let map = SchemaMappings::from_json(mappings)?;
    check_may_name_server_files(opts)?;
    check_endpoint(url, &SourceOptions::from_json(opts)?).map_err(|e| e.context(format!("source \"{name}\"")))?;
    let opts = if opts.is_null() { serde_json::json!({}) } else { opts.clone() };
    for other in catalog::all_sources()? {
        if other.name == name {
            return Err(ChameleonError::state(format!("source \"{name}\" already exists")));
        }
        if let Some(schema) = map.overlap(&other.mappings()?) {
            return Err(ChameleonError::state(format!(
                "PostgreSQL schema \"{schema}\" is already the target of source \"{}\"",
                other.name
            )));
        }
    }
    catalog::insert_source(name, url, &parsed.redacted(), mappings, &opts)
}

/// Registers a source (status `ready`). Returns its id.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn add_source(source_name: &str, mysql_url: &str, schema_mappings: JsonB, options: default!(JsonB, "'{}'")) -> i32 {
    ok(add(source_name, mysql_url, &schema_mappings.0, &options.0))
}

fn alter(
    source_name: &str,
    changes: &serde_json::Value,
    mappings: Option<&serde_json::Value>,
    mysql_url: Option<&str>,
) -> Result<serde_json::Value> {
    let s = catalog::source_by_name(source_name)?;
    catalog::lock_source_control(s.id)?;
    catalog::lock_source(s.id)?;
    let named = |e: crate::core::error::CoreError| ChameleonError::from(e).context(format!("source \"{source_name}\""));
    let merged = options::merge(&s.options, changes).map_err(named)?;
    let old_opts = s.options()?;
    let new_opts = SourceOptions::from_json(&merged).map_err(named)?;
    check_may_name_server_files(changes)?;
    let reaches = ["password_file", "ssl_ca", "ssl_mode"].iter().any(|k| changes.get(k).is_some());
    if reaches || mysql_url.is_some() {
        check_endpoint(mysql_url.unwrap_or(&s.url), &new_opts)
            .map_err(|e| e.context(format!("source \"{source_name}\"")))?;
    }
    let old_map = s.mappings()?;
    let new_map = match mappings {
        Some(m) => SchemaMappings::from_json(m).map_err(named)?,
        None => old_map.clone(),
    };
    for other in catalog::all_sources()?.iter().filter(|o| o.id != s.id) {
        if let Some(schema) = new_map.overlap(&other.mappings()?).map(str::to_string) {
            return Err(ChameleonError::state(format!(
                "PostgreSQL schema \"{schema}\" is already the target of source \"{}\"",
                other.name
            )));
        }
    }
    let change = old_map.change_to(&new_map);
    let registered = catalog::tables_for_source(s.id)?;
    if let Some((my, from, to)) =
        change.moved.iter().find(|(my, _, _)| registered.iter().any(|t| &t.mysql_schema == my))
    {
        return Err(ChameleonError::state(format!(
            "source \"{source_name}\": MySQL schema \"{my}\" is replicated into \"{from}\"; its tables cannot move to \"{to}\""
        ))
        .with_hint("remove the mapping, then map the schema again under the new name: it is copied again there"));
    }
    if let Some(url) = mysql_url {
        point_at_server(&s, url, &new_opts, &registered)?;
    }
    catalog::update_options(s.id, &merged)?;
    if let Some(m) = mappings {
        catalog::update_mappings(s.id, m)?;
    }
    if registered.is_empty() {
        return Ok(merged);
    }
    // tables no longer selected stop being replicated at once (their PostgreSQL tables stay;
    // they stay registered, disabled with the reason, to come back if selected again)
    let selected = |t: &catalog::TableRow| {
        new_map.0.contains_key(&t.mysql_schema) && new_opts.table_selected(&t.mysql_schema, &t.mysql_table)
    };
    let dropped: Vec<&catalog::TableRow> =
        registered.iter().filter(|t| !selected(t) && t.last_error.as_deref() != Some(catalog::NOT_SELECTED)).collect();
    for t in &dropped {
        catalog::disable_table(t.id, catalog::NOT_SELECTED)?;
    }
    if !dropped.is_empty() {
        notice!(
            "no longer replicated (their PostgreSQL tables are kept): {}",
            dropped.iter().map(|t| t.mysql_name()).collect::<Vec<_>>().join(", ")
        );
    }
    // tables newly selected are copied while the source goes on, as by sync_tables: those
    // left out before, and those not registered yet (a newly mapped schema, wider filters)
    let back: Vec<String> = registered
        .iter()
        .filter(|t| selected(t) && t.last_error.as_deref() == Some(catalog::NOT_SELECTED))
        .map(catalog::TableRow::mysql_name)
        .collect();
    let mut added = Vec::new();
    if !back.is_empty() {
        added.extend(catalog::mark_tables_for_sync(s.id, Some(&back), true)?);
    }
    let filters_changed =
        old_opts.limit_tables != new_opts.limit_tables || old_opts.skip_tables != new_opts.skip_tables;
    let scan: Vec<&String> = new_map.0.keys().filter(|k| change.added.contains(k) || filters_changed).collect();
    let s = catalog::source_by_id(s.id)?;
    for schema in scan {
        added.extend(workers::refresh::register(&s, schema, true)?.tables);
    }
    if !added.is_empty() {
        workers::init::start_sync(&s)?;
        notice!("to be copied, then replicated: {}", added.join(", "));
    }
    if workers::alive(s.worker_pid)? {
        notice!("source \"{source_name}\" is running: its workers take the other options at the next start_replica");
    }
    Ok(merged)
}

/// `alter_source(mysql_url)`: the source reads from this URL from now on (a new primary
/// after a failover, a rotated password), checked as `add_source` checks it (the password is
/// never echoed). The source must be stopped. On another host or port, positions of the old
/// server must never be compared with the new one's: every table's consistent point must
/// have been passed by the stored position (those points are cleared here); with
/// `gtid_enable` the reader resumes at the stored GTID position, without it `start_replica`
/// needs a `start_position` on the new server.
fn point_at_server(
    s: &catalog::SourceRow,
    url: &str,
    new_opts: &SourceOptions,
    registered: &[catalog::TableRow],
) -> Result<()> {
    let name = &s.name;
    let new = SourceUrl::parse(url).map_err(|e| ChameleonError::from(e).context(format!("source \"{name}\"")))?;
    if workers::alive(s.worker_pid)? || workers::alive(s.replay_pid)? {
        return Err(ChameleonError::state(format!("source \"{name}\" is running: its mysql_url cannot change now"))
            .with_hint("stop_replica first, then alter_source(mysql_url => ...), then start_replica"));
    }
    let old = SourceUrl::parse(&s.url).ok();
    let server_changed = old.as_ref().is_none_or(|o| o.host != new.host || o.port != new.port);
    let has_position = s.position.is_some() || s.gtid.is_some();
    if !server_changed || !has_position {
        return catalog::point_at(s.id, url, &new.redacted(), server_changed, None);
    }
    let at = s.position.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "its GTID position".into());
    let being_copied: Vec<String> = registered
        .iter()
        .filter(|t| t.enabled && TableState::BEING_COPIED.contains(&t.state) && t.state != TableState::Copied)
        .map(catalog::TableRow::mysql_name)
        .collect();
    if !being_copied.is_empty() {
        return Err(ChameleonError::state(format!(
            "source \"{name}\" cannot move to {}: tables are being copied from {}: {}",
            new.redacted(),
            s.url_safe,
            being_copied.join(", ")
        ))
        .with_hint("let the copy finish (chameleon.tables), or copy them again with sync_tables after the move"));
    }
    // table points are positions of the old server: passed ones are cleared, none may be left
    let with_point: Vec<&catalog::TableRow> = registered.iter().filter(|t| t.point.is_some()).collect();
    let ahead: Vec<String> = with_point
        .iter()
        .filter(|t| match (&t.point, &s.position) {
            (Some(p), Some(r)) => p > r,
            _ => true,
        })
        .map(|t| {
            format!(
                "{} (consistent point {})",
                t.mysql_name(),
                t.point.as_ref().map(|p| p.to_string()).unwrap_or_default()
            )
        })
        .collect();
    if !ahead.is_empty() {
        return Err(ChameleonError::state(format!(
            "source \"{name}\" cannot move to {}: replication from {} (stored position {at}) has not reached the \
             consistent point of {}; the new server would send again changes their copy already has",
            new.redacted(),
            s.url_safe,
            ahead.join(", ")
        ))
        .with_hint(
            "run the source on its current server until wait_for returns, then move it; if that server is gone, \
             move it and copy those tables again (alter_source schema_mappings/limit_tables to leave them out, \
             then bring them back)",
        ));
    }
    if !with_point.is_empty() {
        let pending = catalog::pending_events(s.id)?;
        if pending > 0 {
            return Err(ChameleonError::state(format!(
                "source \"{name}\" cannot move to {}: {pending} stored changes read from {} are not replayed yet \
                 and tables still have consistent points of that server",
                new.redacted(),
                s.url_safe
            ))
            .with_hint(format!("apply them first: SELECT chameleon.replay('{name}')")));
        }
        catalog::clear_table_points(&with_point.iter().map(|t| t.id).collect::<Vec<_>>())?;
    }
    let position_of = if new_opts.gtid_enable {
        if s.gtid.is_none() {
            return Err(ChameleonError::state(format!(
                "source \"{name}\" has gtid_enable but no GTID position stored: it cannot resume on {} by GTID",
                new.redacted()
            ))
            .with_hint(
                "give the position on the new server after the move: start_replica(source, start_position => ...)",
            ));
        }
        notice!(
            "source \"{name}\" now reads from {}: start_replica resumes there at GTID {}",
            new.redacted(),
            s.gtid.as_deref().unwrap_or_default()
        );
        None
    } else {
        notice!(
            "source \"{name}\" now reads from {}; its stored position {at} is of {}: start_replica needs \
             start_position => '<file:offset on the new server>' (or gtid_enable)",
            new.redacted(),
            s.url_safe
        );
        Some(s.url_safe.as_str())
    };
    catalog::point_at(s.id, url, &new.redacted(), true, position_of)
}

/// Changes options (merged; a key set to null is removed) and, with `schema_mappings`, the
/// mapped schemas. On a source already copied, tables no longer selected (schema unmapped,
/// `limit_tables`/`skip_tables`) stop being replicated at once, their PostgreSQL tables
/// kept; tables newly selected are copied and then replicated while the source goes on. A
/// replicated schema cannot move to another PostgreSQL schema (refused, with the way to do
/// it). Running workers take the other options at their next start. With `mysql_url`, the
/// source reads from another URL (see `point_at_server`; the source must be stopped).
/// Returns the options.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn alter_source(
    source_name: &str,
    options: default!(JsonB, "'{}'"),
    schema_mappings: default!(Option<JsonB>, "NULL"),
    mysql_url: default!(Option<&str>, "NULL"),
) -> JsonB {
    ok(alter(source_name, &options.0, schema_mappings.as_ref().map(|m| &m.0), mysql_url).map(JsonB))
}

/// Stops the source's workers and removes it from the catalogue with its stored changes.
/// Replicated tables are kept.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn drop_source(source_name: &str, if_exists: default!(bool, false)) {
    ok((|| {
        let s = match catalog::source_by_name(source_name) {
            Ok(s) => s,
            Err(e) if e.kind() == Kind::NotFound && if_exists => {
                notice!("source \"{source_name}\" does not exist, skipping");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // No lock on the source row while waiting: the worker's last flush writes to it.
        catalog::lock_source_control(s.id)?;
        let s = catalog::source_by_id(s.id)?;
        workers::stop_all(&s, Duration::from_secs(60))?;
        catalog::lock_source(s.id)?;
        catalog::delete_source(s.id)
    })())
}

/// Clears an `error` status once the DBA has fixed the cause; `start_replica` then resumes
/// from the stored position.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn enable_replica(source_name: &str) -> String {
    ok((|| {
        let s = catalog::source_by_name(source_name)?;
        catalog::lock_source_control(s.id)?;
        let s = catalog::source_by_id(s.id)?;
        let refused = |s: &catalog::SourceRow| {
            ChameleonError::state(format!("source \"{source_name}\" is {}, not in error", s.status))
        };
        s.status.next(SourceEvent::Enable { has_position: s.position.is_some() }).map_err(|_| refused(&s))?;
        // A worker of the source may still be ending (the read worker notices the error the
        // replay worker set within a second, then closes its binlog connection): it is waited
        // for, so that start_replica right after finds none and starts both afresh.
        workers::stop_all(&s, Duration::from_secs(60))?;
        catalog::lock_source(s.id)?;
        let s = catalog::source_by_id(s.id)?;
        let status =
            s.status.next(SourceEvent::Enable { has_position: s.position.is_some() }).map_err(|_| refused(&s))?;
        catalog::set_status(s.id, status)?;
        catalog::clear_source_error(s.id)?;
        Ok(status.to_string())
    })())
}
