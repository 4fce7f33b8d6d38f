//! Source options (the `options` jsonb of `add_source` / `alter_source`): the keys we accept,
//! their types and defaults, and their validation. Unknown keys and bad values are rejected
//! with a message that names the key. Names follow pg_chameleon where the option exists there.

use crate::core::change::Op;
use crate::core::error::{CoreError, CoreResult};
use crate::core::types::ZeroDates;
use serde_json::{Map, Value};
use std::time::Duration;

/// What replay does when a statement fails (docs/internals.md, contract 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrorReplay {
    /// Record the error, disable the failing table, go on with the others.
    Continue,
    /// Record the error, put the source in `error` and stop where it was.
    Exit,
}

/// pg_chameleon's skip_events: row events of these kinds are not replicated for these MySQL
/// schemas (`schema`) or tables (`schema.table`). The initial copy is not affected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipEvents {
    pub insert: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
}

impl SkipEvents {
    /// Whether `op` events of `schema.table` are skipped.
    pub fn skips(&self, op: Op, schema: &str, table: &str) -> bool {
        let list = match op {
            Op::Insert => &self.insert,
            Op::Update => &self.update,
            Op::Delete => &self.delete,
            Op::Ddl => return false,
        };
        list.iter().any(|e| match e.split_once('.') {
            Some((s, t)) => s == schema && t == table,
            None => e == schema,
        })
    }

    /// Whether any kind of event of `schema.table` is skipped (its destination knowingly
    /// differs from the source).
    pub fn any_for(&self, schema: &str, table: &str) -> bool {
        [Op::Insert, Op::Update, Op::Delete].into_iter().any(|op| self.skips(op, schema, table))
    }

    fn from_json(v: &Value) -> CoreResult<SkipEvents> {
        let Value::Object(m) = v else {
            return Err(err("skip_events", "must be an object like {\"delete\": [\"schema.table\", \"schema\"]}"));
        };
        let mut out = SkipEvents::default();
        for (k, list) in m {
            let names = as_name_list("skip_events", list, false)?;
            match k.as_str() {
                "insert" => out.insert = names,
                "update" => out.update = names,
                "delete" => out.delete = names,
                other => {
                    return Err(err(
                        "skip_events",
                        &format!("\"{other}\" is not an event kind: insert, update or delete"),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// What the copy does with the source's foreign keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeys {
    /// Record them; `detach_replica` creates them (a replica needs none while replicating).
    Record,
    /// Also create them after the copy, NOT VALID and deferred, then validate them when every
    /// table shares one consistent point.
    Create,
}

/// TLS to the source, as MySQL's `--ssl-mode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP; the password exchange and every row in clear.
    Disabled,
    /// TLS when the server offers it (certificate not checked), plain when it does not.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS with the server's certificate chain checked against `ssl_ca`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host of the URL.
    VerifyIdentity,
}

impl SslMode {
    pub const NAMES: &'static [&'static str] = &["disabled", "preferred", "required", "verify_ca", "verify_identity"];

    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disabled" => SslMode::Disabled,
            "preferred" => SslMode::Preferred,
            "required" => SslMode::Required,
            "verify_ca" => SslMode::VerifyCa,
            "verify_identity" => SslMode::VerifyIdentity,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether the server's certificate is checked (and `ssl_ca` used).
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceOptions {
    /// server_id the reader presents to the source; must be unique among its replicas.
    pub my_server_id: u32,
    /// Rows per stored batch (a batch still ends only on a source commit).
    pub replica_batch_size: usize,
    /// Seconds between flushes of a partial batch, and the idle poll interval.
    pub sleep_loop: f64,
    /// Milliseconds a busy reader keeps gathering transactions after its last flush before it
    /// stores them as one batch (an idle reader flushes at once): fewer, larger batches under a
    /// stream of small transactions, for a lag of at most this much.
    pub batch_delay_ms: u64,
    pub on_error_replay: OnErrorReplay,
    /// `schema.table` names; when non-empty only these are replicated.
    pub limit_tables: Vec<String>,
    /// `schema.table` names never replicated.
    pub skip_tables: Vec<String>,
    /// Roles granted USAGE and SELECT on the replicated schemas.
    pub grant_select_to: Vec<String>,
    /// Seconds the snapshot may wait for the global read lock on the source.
    pub lock_timeout: u32,
    /// Seconds without any byte from the source before the reader reconnects
    /// (heartbeats arrive every few seconds when the source is idle).
    pub net_read_timeout: u32,
    /// Seconds to wait for a TCP connection to the source.
    pub connect_timeout: u32,
    /// Row events stored and not yet replayed past which reading pauses.
    pub max_backlog_events: u64,
    /// pg_chameleon's type_override: MySQL column type -> PostgreSQL type, for some tables.
    pub type_override: Vec<TypeOverride>,
    /// Tables copied at the same time by `init_replica`, each by its own background worker.
    pub copy_workers: usize,
    /// Tables a verification run (`verify_tables`) compares at the same time, each by its own
    /// background worker.
    pub verify_workers: usize,
    /// Megabytes of rows in flight between MySQL and PostgreSQL per copy worker (a single row
    /// larger than that still passes, alone).
    pub copy_max_memory: usize,
    /// What MySQL's zero dates become (the bad-value policy for dates).
    pub zero_dates: ZeroDates,
    pub foreign_keys: ForeignKeys,
    /// Estimated rows from which a table with a single-column integer key is copied by
    /// several copy workers at once, in key ranges (0: never).
    pub copy_split_rows: u64,
    pub skip_events: SkipEvents,
    /// Follow the source by GTID instead of file and offset (the position is still kept), so
    /// that the replica can follow a source that moved to another server of the same
    /// replication topology.
    pub gtid_enable: bool,
    /// How long replayed batches are kept before maintenance may remove them.
    pub batch_retention: Duration,
    /// Whether the replay worker runs the log maintenance by itself (about once a minute).
    pub auto_maintenance: bool,
    /// Megabytes of row changes (estimated as held in memory) a batch gathers before it is
    /// stored; a source transaction larger than that is stored in pieces of this size, in one
    /// batch replay sees only once its commit is stored.
    pub batch_max_memory: usize,
    pub ssl_mode: SslMode,
    /// The CA certificate(s) `verify_ca` / `verify_identity` trust: PEM text, or the absolute
    /// path of a PEM file on the PostgreSQL server.
    pub ssl_ca: Option<String>,
    /// Absolute path of a file on the PostgreSQL server holding the password of the URL's user
    /// (so that the password never appears in SQL text).
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeOverride {
    /// The MySQL `COLUMN_TYPE`, lower case (`tinyint(1)`).
    pub mysql_type: String,
    pub override_to: String,
    /// `schema.table` names, or `*` for every table.
    pub tables: Vec<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            my_server_id: 100,
            replica_batch_size: 10_000,
            sleep_loop: 1.0,
            batch_delay_ms: 50,
            on_error_replay: OnErrorReplay::Exit,
            limit_tables: vec![],
            skip_tables: vec![],
            grant_select_to: vec![],
            lock_timeout: 120,
            net_read_timeout: 30,
            connect_timeout: 10,
            max_backlog_events: 1_000_000,
            type_override: vec![],
            copy_workers: 2,
            verify_workers: 2,
            copy_max_memory: 64,
            zero_dates: ZeroDates::Discard,
            foreign_keys: ForeignKeys::Record,
            copy_split_rows: 1_000_000,
            skip_events: SkipEvents::default(),
            gtid_enable: false,
            batch_retention: Duration::from_secs(86_400),
            auto_maintenance: true,
            batch_max_memory: 8,
            ssl_mode: SslMode::Preferred,
            ssl_ca: None,
            password_file: None,
        }
    }
}

/// Every key accepted, for error messages.
pub const KNOWN_KEYS: &[&str] = &[
    "my_server_id",
    "replica_batch_size",
    "sleep_loop",
    "batch_delay_ms",
    "on_error_replay",
    "limit_tables",
    "skip_tables",
    "grant_select_to",
    "lock_timeout",
    "net_read_timeout",
    "connect_timeout",
    "max_backlog_events",
    "type_override",
    "copy_workers",
    "verify_workers",
    "copy_max_memory",
    "zero_dates",
    "foreign_keys",
    "copy_split_rows",
    "skip_events",
    "gtid_enable",
    "batch_retention",
    "auto_maintenance",
    "batch_max_memory",
    "ssl_mode",
    "ssl_ca",
    "password_file",
];

/// pg_chameleon options that a later release implements; named so that the
/// error says "not supported yet" rather than "unknown".
const PLANNED_KEYS: &[&str] = &["replay_max_rows", "on_error_read", "keep_existing_schema"];

fn err(key: &str, msg: &str) -> CoreError {
    CoreError::invalid_parameter(format!("option \"{key}\": {msg}"))
}

fn as_uint(key: &str, v: &Value, min: u64, max: u64) -> CoreResult<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| err(key, &format!("must be a whole number from {min} to {max}")))?;
    if n < min || n > max {
        return Err(err(key, &format!("must be a whole number from {min} to {max}, got {n}")));
    }
    Ok(n)
}

fn as_bool(key: &str, v: &Value) -> CoreResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(err(key, "must be true or false")),
    }
}

/// `"7 days"`, `"1 day 12 hours"`, `"90 minutes"`, `"30 s"`, or a number of seconds.
pub fn parse_interval(v: &Value) -> Option<Duration> {
    let secs: f64 = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(t) => {
            let words: Vec<&str> = t.split_whitespace().collect();
            if words.len() == 1 {
                words[0].parse::<f64>().ok()?
            } else if words.len().is_multiple_of(2) {
                let mut total = 0.0;
                for pair in words.chunks(2) {
                    let n: f64 = pair[0].parse().ok()?;
                    let unit = match pair[1].to_ascii_lowercase().trim_end_matches('s') {
                        "" | "sec" | "second" => 1.0,
                        "min" | "minute" => 60.0,
                        "h" | "hour" => 3_600.0,
                        "d" | "day" => 86_400.0,
                        "week" => 604_800.0,
                        _ => return None,
                    };
                    total += n * unit;
                }
                total
            } else {
                return None;
            }
        }
        _ => return None,
    };
    (secs.is_finite() && (1.0..=3.2e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

fn as_name_list(key: &str, v: &Value, qualified: bool) -> CoreResult<Vec<String>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::String(_) => vec![v],
        _ => return Err(err(key, "must be an array of names")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let s = item
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(key, "every element must be a non-empty string"))?;
        if qualified && !s.contains('.') {
            return Err(err(key, &format!("\"{s}\" must be written schema.table")));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// A PostgreSQL type name as DDL will contain it: letters, digits, `_`, spaces, one
/// parenthesised list of numbers, `[]`. Anything else (quotes, semicolons) is refused.
fn valid_pg_type(t: &str) -> bool {
    let (base, rest) = match t.find('(') {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let base_ok = !base.trim().is_empty()
        && base.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ');
    let rest = rest.trim_end_matches("[]");
    let rest_ok = rest.is_empty()
        || (rest.starts_with('(')
            && rest.ends_with(')')
            && rest[1..rest.len() - 1].chars().all(|c| c.is_ascii_digit() || c == ',' || c == ' '));
    base_ok && rest_ok
}

fn type_overrides(v: &Value) -> CoreResult<Vec<TypeOverride>> {
    let key = "type_override";
    let map = v.as_object().ok_or_else(|| {
        err(key, "must be an object {\"tinyint(1)\": {\"override_to\": \"boolean\", \"override_tables\": [\"*\"]}}")
    })?;
    let mut out = Vec::new();
    for (mysql_type, spec) in map {
        let to = spec
            .get("override_to")
            .and_then(Value::as_str)
            .filter(|t| valid_pg_type(t))
            .ok_or_else(|| err(key, &format!("\"{mysql_type}\": override_to must be a PostgreSQL type name")))?;
        let tables = match spec.get("override_tables") {
            None => vec!["*".to_string()],
            Some(t) => as_name_list(key, t, false)?,
        };
        if let Some(bad) = tables.iter().find(|t| *t != "*" && !t.contains('.')) {
            return Err(err(key, &format!("\"{bad}\" in override_tables must be schema.table or *")));
        }
        out.push(TypeOverride { mysql_type: mysql_type.to_ascii_lowercase(), override_to: to.to_string(), tables });
    }
    Ok(out)
}

/// An absolute path on the PostgreSQL server (relative ones would depend on the worker's
/// working directory).
fn absolute_path(key: &str, v: &Value) -> CoreResult<String> {
    match v.as_str() {
        Some(p) if p.starts_with('/') && !p.contains('\0') => Ok(p.to_string()),
        _ => Err(err(key, "must be the absolute path of a file on the PostgreSQL server")),
    }
}

/// `ssl_ca`: PEM text holding at least one certificate, or the absolute path of a PEM file.
fn ssl_ca(v: &Value) -> CoreResult<String> {
    let key = "ssl_ca";
    match v.as_str() {
        Some(t) if t.trim_start().starts_with("-----BEGIN") => {
            if t.contains("-----BEGIN CERTIFICATE-----") && t.contains("-----END CERTIFICATE-----") {
                Ok(t.to_string())
            } else {
                Err(err(key, "PEM text must hold a certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"))
            }
        }
        Some(_) => absolute_path(key, v).map_err(|_| {
            err(key, "must be PEM text (-----BEGIN CERTIFICATE-----...) or the absolute path of a PEM file on the PostgreSQL server")
        }),
        None => Err(err(key, "must be a string: PEM text or the absolute path of a PEM file")),
    }
}

impl SourceOptions {
    /// The override target for a column of `schema.table` with this `COLUMN_TYPE`, if any.
    pub fn override_for(&self, schema: &str, table: &str, column_type: &str) -> Option<String> {
        let full = format!("{schema}.{table}");
        let ct = column_type.to_ascii_lowercase();
        self.type_override
            .iter()
            .find(|o| o.mysql_type == ct && o.tables.iter().any(|t| t == "*" || *t == full))
            .map(|o| o.override_to.clone())
    }

    /// Validates `options` (a JSON object) and returns the effective options.
    pub fn from_json(options: &Value) -> CoreResult<SourceOptions> {
        let map: Map<String, Value> = match options {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => return Err(CoreError::invalid_parameter("options must be a JSON object".into())),
        };
        let mut o = SourceOptions::default();
        for (key, v) in &map {
            match key.as_str() {
                "my_server_id" => o.my_server_id = as_uint(key, v, 1, u32::MAX as u64)? as u32,
                "replica_batch_size" => {
                    o.replica_batch_size = as_uint(key, v, 1, 1_000_000)? as usize
                }
                "sleep_loop" => {
                    let f = match v {
                        Value::Number(n) => n.as_f64(),
                        Value::String(s) => s.trim().parse::<f64>().ok(),
                        _ => None,
                    }
                    .filter(|f| f.is_finite() && *f >= 0.01 && *f <= 3600.0)
                    .ok_or_else(|| err(key, "must be a number of seconds from 0.01 to 3600"))?;
                    o.sleep_loop = f;
                }
                "batch_delay_ms" => o.batch_delay_ms = as_uint(key, v, 0, 10_000)?,
                "skip_events" => o.skip_events = SkipEvents::from_json(v)?,
                "gtid_enable" => o.gtid_enable = as_bool(key, v)?,
                "auto_maintenance" => o.auto_maintenance = as_bool(key, v)?,
                "batch_retention" => {
                    o.batch_retention = parse_interval(v).ok_or_else(|| {
                        err(key, "must be a duration like \"7 days\", \"12 hours\", \"30 minutes\" or a number of seconds (at least 1 second)")
                    })?
                }
                "copy_split_rows" => o.copy_split_rows = as_uint(key, v, 0, u64::MAX)?,
                "foreign_keys" => {
                    o.foreign_keys = match v.as_str() {
                        Some("record") => ForeignKeys::Record,
                        Some("create") => ForeignKeys::Create,
                        _ => return Err(err(key, "must be \"record\" or \"create\"")),
                    }
                }
                "on_error_replay" => {
                    o.on_error_replay = match v.as_str() {
                        Some("continue") => OnErrorReplay::Continue,
                        Some("exit") => OnErrorReplay::Exit,
                        _ => return Err(err(key, "must be \"continue\" or \"exit\"")),
                    }
                }
                "limit_tables" => o.limit_tables = as_name_list(key, v, true)?,
                "skip_tables" => o.skip_tables = as_name_list(key, v, true)?,
                "grant_select_to" => o.grant_select_to = as_name_list(key, v, false)?,
                "lock_timeout" => o.lock_timeout = as_uint(key, v, 1, 31_536_000)? as u32,
                "net_read_timeout" => o.net_read_timeout = as_uint(key, v, 5, 86_400)? as u32,
                "connect_timeout" => o.connect_timeout = as_uint(key, v, 1, 3_600)? as u32,
                "max_backlog_events" => o.max_backlog_events = as_uint(key, v, 1_000, 1_000_000_000)?,
                "type_override" => o.type_override = type_overrides(v)?,
                "copy_workers" => o.copy_workers = as_uint(key, v, 1, 64)? as usize,
                "verify_workers" => o.verify_workers = as_uint(key, v, 1, 64)? as usize,
                "copy_max_memory" => o.copy_max_memory = as_uint(key, v, 4, 65_536)? as usize,
                "batch_max_memory" => o.batch_max_memory = as_uint(key, v, 1, 256)? as usize,
                "zero_dates" => {
                    o.zero_dates = v.as_str().and_then(ZeroDates::parse).ok_or_else(|| {
                        err(key, &format!("must be one of {}", ZeroDates::NAMES.join(", ")))
                    })?
                }
                "ssl_mode" => {
                    o.ssl_mode = v.as_str().and_then(SslMode::parse).ok_or_else(|| {
                        err(key, &format!("must be one of {}", SslMode::NAMES.join(", ")))
                    })?
                }
                "ssl_ca" => o.ssl_ca = Some(ssl_ca(v)?),
                "password_file" => o.password_file = Some(absolute_path(key, v)?),
                k if PLANNED_KEYS.contains(&k) => {
                    return Err(err(k, "is not supported yet by this version of pg_chameleon_rs"))
                }
                k => {
                    return Err(err(
                        k,
                        &format!("unknown option; known options are: {}", KNOWN_KEYS.join(", ")),
                    ))
                }
            }
        }
        if o.ssl_ca.is_some() && !o.ssl_mode.verifies() {
            return Err(err(
                "ssl_ca",
                &format!(
                    "is only used to verify the server's certificate, and ssl_mode is {}: set ssl_mode to verify_ca or verify_identity",
                    o.ssl_mode.name()
                ),
            ));
        }
        Ok(o)
    }

    pub fn batch_delay(&self) -> Duration {
        Duration::from_millis(self.batch_delay_ms)
    }

    pub fn sleep_loop_duration(&self) -> Duration {
        Duration::from_secs_f64(self.sleep_loop)
    }

    /// `batch_max_memory` in bytes: the piece size of large transactions, and the most a
    /// batch of whole ones gathers.
    pub fn batch_max_bytes(&self) -> usize {
        self.batch_max_memory << 20
    }

    /// Whether `schema.table` (MySQL names) is replicated under limit_tables / skip_tables.
    pub fn table_selected(&self, schema: &str, table: &str) -> bool {
        let full = format!("{schema}.{table}");
        if self.skip_tables.contains(&full) {
            return false;
        }
        self.limit_tables.is_empty() || self.limit_tables.contains(&full)
    }
}

/// Merges `changes` into `current` (alter_source): keys set to null are removed.
pub fn merge(current: &Value, changes: &Value) -> CoreResult<Value> {
    let mut out = match current {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match changes {
        Value::Object(m) => {
            for (k, v) in m {
                if v.is_null() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        _ => return Err(CoreError::invalid_parameter("options must be a JSON object".into())),
    }
    let merged = Value::Object(out);
    SourceOptions::from_json(&merged)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_for_empty() {
        assert_eq!(SourceOptions::from_json(&json!({})).unwrap(), SourceOptions::default());
    }

    #[test]
    fn parses_known_keys() {
        let o = SourceOptions::from_json(&json!({
            "my_server_id": 77, "replica_batch_size": "500", "sleep_loop": 0.5,
            "on_error_replay": "continue", "limit_tables": ["shop.a"], "skip_tables": "shop.b",
            "batch_delay_ms": 0, "batch_max_memory": "2", "verify_workers": 3
        }))
        .unwrap();
        assert_eq!(o.batch_delay_ms, 0);
        assert_eq!(o.verify_workers, 3);
        assert_eq!(o.batch_max_bytes(), 2 << 20);
        assert_eq!(o.my_server_id, 77);
        assert_eq!(o.replica_batch_size, 500);
        assert_eq!(o.on_error_replay, OnErrorReplay::Continue);
        assert!(o.table_selected("shop", "a"));
        assert!(!o.table_selected("shop", "b"));
        assert!(!o.table_selected("shop", "c"));
    }

    #[test]
    fn retention_durations() {
        let d = |v: Value| parse_interval(&v).map(|d| d.as_secs());
        assert_eq!(d(json!("7 days")), Some(604_800));
        assert_eq!(d(json!("1 day 12 hours")), Some(129_600));
        assert_eq!(d(json!("90 minutes")), Some(5_400));
        assert_eq!(d(json!("2 seconds")), Some(2));
        assert_eq!(d(json!(30)), Some(30));
        assert_eq!(d(json!("45")), Some(45));
        assert_eq!(d(json!("1 fortnight")), None);
        assert_eq!(d(json!("0.5")), None);
        let o = SourceOptions::from_json(&json!({"batch_retention": "2 hours", "auto_maintenance": false})).unwrap();
        assert_eq!(o.batch_retention, Duration::from_secs(7_200));
        assert!(!o.auto_maintenance);
    }

    #[test]
    fn rejects_naming_the_key() {
        for (opts, key) in [
            (json!({"bogus": 1}), "bogus"),
            (json!({"replica_batch_size": 0}), "replica_batch_size"),
            (json!({"replica_batch_size": "x"}), "replica_batch_size"),
            (json!({"on_error_replay": "maybe"}), "on_error_replay"),
            (json!({"batch_retention": "forever"}), "batch_retention"),
            (json!({"batch_retention": 0}), "batch_retention"),
            (json!({"auto_maintenance": "yes"}), "auto_maintenance"),
            (json!({"limit_tables": ["nodot"]}), "limit_tables"),
            (json!({"sleep_loop": -1}), "sleep_loop"),
            (json!({"batch_delay_ms": 10_001}), "batch_delay_ms"),
            (json!({"batch_delay_ms": -5}), "batch_delay_ms"),
            (json!({"copy_workers": 0}), "copy_workers"),
            (json!({"verify_workers": 0}), "verify_workers"),
            (json!({"copy_max_memory": 1}), "copy_max_memory"),
            (json!({"batch_max_memory": 0}), "batch_max_memory"),
            (json!({"batch_max_memory": 257}), "batch_max_memory"),
            (json!({"zero_dates": "epoch"}), "zero_dates"),
            (json!({"foreign_keys": true}), "foreign_keys"),
            (json!({"skip_events": ["a.b"]}), "skip_events"),
            (json!({"skip_events": {"truncate": ["a.b"]}}), "skip_events"),
            (json!({"skip_events": {"delete": [""]}}), "skip_events"),
            (json!({"ssl_mode": "on"}), "ssl_mode"),
            (json!({"ssl_mode": "verify_ca", "ssl_ca": "relative/ca.pem"}), "ssl_ca"),
            (json!({"ssl_mode": "verify_ca", "ssl_ca": "-----BEGIN PRIVATE KEY-----"}), "ssl_ca"),
            (json!({"ssl_ca": "/etc/ssl/ca.pem"}), "ssl_ca"),
            (json!({"ssl_mode": "required", "ssl_ca": "/etc/ssl/ca.pem"}), "ssl_ca"),
            (json!({"password_file": "pw.txt"}), "password_file"),
            (json!({"password_file": 3}), "password_file"),
        ] {
            let e = SourceOptions::from_json(&opts).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{key}\"")), "{e}");
        }
        assert!(SourceOptions::from_json(&json!([1])).is_err());
    }

    #[test]
    fn tls_and_password_file() {
        assert_eq!(SourceOptions::default().ssl_mode, SslMode::Preferred);
        for name in SslMode::NAMES {
            assert_eq!(SslMode::parse(name).map(SslMode::name), Some(*name));
        }
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let o = SourceOptions::from_json(
            &json!({"ssl_mode": "verify_identity", "ssl_ca": pem, "password_file": "/etc/chameleon/pw"}),
        )
        .unwrap();
        assert_eq!(o.ssl_mode, SslMode::VerifyIdentity);
        assert_eq!(o.ssl_ca.as_deref(), Some(pem));
        assert_eq!(o.password_file.as_deref(), Some("/etc/chameleon/pw"));
        let o = SourceOptions::from_json(&json!({"ssl_mode": "verify_ca", "ssl_ca": "/etc/ssl/ca.pem"})).unwrap();
        assert!(o.ssl_mode.verifies() && o.ssl_ca.is_some());
    }

    #[test]
    fn skip_events_like_pg_chameleon() {
        let o = SourceOptions::from_json(
            &json!({"skip_events": {"delete": ["shop.orders", "archive"], "insert": "shop.log"}}),
        )
        .unwrap();
        let s = &o.skip_events;
        assert!(s.skips(Op::Delete, "shop", "orders") && s.skips(Op::Delete, "archive", "anything"));
        assert!(!s.skips(Op::Delete, "shop", "customers") && !s.skips(Op::Update, "shop", "orders"));
        assert!(s.skips(Op::Insert, "shop", "log") && !s.skips(Op::Insert, "shop", "orders"));
        // a table name with a dot after the schema's
        let o = SourceOptions::from_json(&json!({"skip_events": {"update": ["shop.a.b"]}})).unwrap();
        assert!(o.skip_events.skips(Op::Update, "shop", "a.b"));
    }

    #[test]
    fn type_override_like_pg_chameleon() {
        let o = SourceOptions::from_json(&json!({"type_override": {
            "TINYINT(1)": {"override_to": "boolean", "override_tables": ["*"]},
            "varchar(10)": {"override_to": "character varying(20)", "override_tables": ["shop.a"]}}}))
        .unwrap();
        assert_eq!(o.override_for("x", "y", "tinyint(1)").as_deref(), Some("boolean"));
        assert_eq!(o.override_for("shop", "a", "varchar(10)").as_deref(), Some("character varying(20)"));
        assert_eq!(o.override_for("shop", "b", "varchar(10)"), None);
        for bad in [
            json!({"type_override": {"int": {"override_to": "text; drop table x"}}}),
            json!({"type_override": {"int": {"override_to": "\"x\""}}}),
            json!({"type_override": {"int": {}}}),
            json!({"type_override": {"int": {"override_to": "text", "override_tables": ["nodot"]}}}),
            json!({"type_override": []}),
        ] {
            assert!(SourceOptions::from_json(&bad).unwrap_err().to_string().contains("type_override"), "{bad}");
        }
    }

    #[test]
    fn merge_overrides_and_removes() {
        let m =
            merge(&json!({"sleep_loop": 2, "my_server_id": 5}), &json!({"sleep_loop": null, "replica_batch_size": 9}))
                .unwrap();
        assert_eq!(m, json!({"my_server_id": 5, "replica_batch_size": 9}));
        assert!(merge(&json!({}), &json!({"nope": 1})).is_err());
    }
}
