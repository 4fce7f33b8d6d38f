//! The core's one error type: a kind (what failed, which decides the SQLSTATE in the glue and
//! whether retrying may help), the message a DBA reads (naming the source, table, column or
//! binlog position), an optional detail (the explanation) and an optional hint (what to do).
//! `full_text()` is the one-line form stored in the catalogue and written to the log.

use std::fmt;

/// What failed. The glue maps each kind to a SQLSTATE in `crate::error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A value given by the user (URL, mapping, option) is invalid.
    InvalidParameter,
    /// The MySQL server is configured in a way replication cannot work with.
    SourceConfig,
    /// The MySQL server could not be reached or refused us (network, auth, timeout).
    SourceConnection,
    /// A query on the MySQL server failed.
    SourceQuery,
    /// The binlog stream failed or carried something we could not decode.
    Binlog,
    /// The binlog file we need has been purged on the source: a resync is required.
    BinlogPurged,
    /// A value could not be converted to its PostgreSQL form.
    Value,
    /// The stored row encoding is corrupt.
    Codec,
    /// A MySQL type we do not (yet) map.
    UnsupportedType,
    /// A bug: something the code should never let happen.
    Internal,
}

impl ErrorKind {
    /// Whether retrying later (reconnecting) may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::SourceConnection | ErrorKind::Binlog)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl CoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CoreError {
        CoreError { kind, message: message.into(), detail: None, hint: None }
    }

    pub fn invalid_parameter(message: String) -> CoreError {
        CoreError::new(ErrorKind::InvalidParameter, message)
    }

    pub fn source_config(message: String) -> CoreError {
        CoreError::new(ErrorKind::SourceConfig, message)
    }

    pub fn source_connection(message: String) -> CoreError {
        CoreError::new(ErrorKind::SourceConnection, message)
    }

    pub fn source_query(message: String) -> CoreError {
        CoreError::new(ErrorKind::SourceQuery, message)
    }

    pub fn binlog(message: String) -> CoreError {
        CoreError::new(ErrorKind::Binlog, message)
    }

    pub fn binlog_purged(message: String) -> CoreError {
        CoreError::new(ErrorKind::BinlogPurged, message)
    }

    pub fn value(message: String) -> CoreError {
        CoreError::new(ErrorKind::Value, message)
    }

    pub fn codec(message: String) -> CoreError {
        CoreError::new(ErrorKind::Codec, message)
    }

    pub fn unsupported_type(message: String) -> CoreError {
        CoreError::new(ErrorKind::UnsupportedType, message)
    }

    pub fn internal(message: String) -> CoreError {
        CoreError::new(ErrorKind::Internal, message)
    }

    /// Adds the explanation (PostgreSQL's DETAIL).
    pub fn with_detail(mut self, detail: impl Into<String>) -> CoreError {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the advice on what to do (PostgreSQL's HINT).
    pub fn with_hint(mut self, hint: impl Into<String>) -> CoreError {
        self.hint = Some(hint.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Adds context in front of the message, keeping the kind, detail and hint.
    pub fn context(mut self, ctx: impl fmt::Display) -> CoreError {
        self.message = format!("{ctx}: {}", self.message);
        self
    }

    /// Whether retrying later (reconnecting) may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The one-line form stored in the catalogue and logged: see [`full_text`].
    pub fn full_text(&self) -> String {
        full_text(&self.message, self.detail(), self.hint())
    }
}

/// The one-line form of an error, stored in the catalogue (source and table errors,
/// `chameleon.errors`, notes) and written to the log: `message (detail) HINT: hint`,
/// each part only when present.
pub fn full_text(message: &str, detail: Option<&str>, hint: Option<&str>) -> String {
    let mut out = message.to_string();
    if let Some(d) = detail {
        out.push_str(&format!(" ({d})"));
    }
    if let Some(h) = hint {
        out.push_str(&format!(" HINT: {h}"));
    }
    out
}

/// The message (with its detail) and the hint of a text `full_text` wrote: what a caller that
/// reads a stored error raises again, the hint as PostgreSQL's HINT.
pub fn split_hint(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once(" HINT: ") {
        Some((message, hint)) if !hint.is_empty() => (message, Some(hint)),
        _ => (text, None),
    }
}

/// Shows the full text, so that an error formatted into a stored or logged text keeps its
/// detail and hint.
impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_text())
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

/// Classifies a `mysql` crate error. Server errors keep their code; I/O and driver errors
/// are connection problems. The URL (and so the password) never appears: callers pass
/// `what`, a redacted description of where we were.
pub fn from_mysql(err: mysql::Error, what: &str) -> CoreError {
    match &err {
        mysql::Error::MySqlError(e) => {
            // 1045 access denied, 1044 db access denied, 2013 lost connection.
            let msg = format!("{what}: MySQL error {} ({}): {}", e.code, e.state, e.message);
            match e.code {
                // another binlog connection with our server_id is still registered on the source
                // (our previous reader's, until the server notices it closed): try again.
                // MariaDB says 4052; MySQL says 1236 with this text.
                4052 => CoreError::source_connection(msg),
                1236 if e.message.contains("same server_uuid") || e.message.contains("same server_id") => {
                    CoreError::source_connection(msg)
                }
                1236 => CoreError::binlog_purged(msg)
                    .with_detail("the binlog the replica needs is no longer on the source")
                    .with_hint("resync it with init_replica"),
                1045 | 1044 | 1130 | 1040 | 1203 => CoreError::source_connection(msg),
                _ => CoreError::source_query(msg),
            }
        }
        mysql::Error::IoError(e) => CoreError::source_connection(format!("{what}: {e}")),
        mysql::Error::DriverError(e) => CoreError::source_connection(format!("{what}: {e}")),
        other => CoreError::source_connection(format!("{what}: {other}")),
    }
}

/// SQLSTATEs of errors PostgreSQL raises that say nothing about the data: the same work
/// retried a moment later succeeds (deadlock_detected, lock_not_available (lock_timeout),
/// query_canceled (statement_timeout, pg_cancel_backend), serialization_failure). Replay
/// retries a batch failing with one of them instead of stopping or disabling a table.
pub fn is_transient_sqlstate(sqlstate: &str) -> bool {
    matches!(sqlstate, "40P01" | "55P03" | "57014" | "40001")
}

/// How long to wait before retry number `attempt` (1, 2, ...) of a transient failure:
/// 100 ms doubling, at most 5 s.
pub fn retry_backoff_ms(attempt: u32) -> u64 {
    100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16)).min(5_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_error_gives_back_its_hint() {
        let text = super::full_text("copy failed", Some("the table is gone"), Some("run refresh_schema"));
        assert_eq!(super::split_hint(&text), ("copy failed (the table is gone)", Some("run refresh_schema")));
        assert_eq!(super::split_hint("no hint here"), ("no hint here", None));
        assert_eq!(super::split_hint("HINT: first"), ("HINT: first", None));
        assert_eq!(super::split_hint("empty HINT: "), ("empty HINT: ", None));
    }

    #[test]
    fn transient_sqlstates_are_the_retryable_ones() {
        for code in ["40P01", "55P03", "57014", "40001"] {
            assert!(super::is_transient_sqlstate(code), "{code}");
        }
        // data errors, a terminated backend, our own kinds: not retried
        for code in ["23505", "22P02", "57P01", "XX000", "42P01"] {
            assert!(!super::is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn retry_backoff_doubles_up_to_five_seconds() {
        let waits: Vec<u64> = (1..=8).map(super::retry_backoff_ms).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(super::retry_backoff_ms(1000), 5000);
    }

    use super::*;

    fn server(code: u16, message: &str) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError { state: "HY000".into(), message: message.into(), code })
    }

    #[test]
    fn a_previous_connection_with_our_server_id_is_transient_a_purged_binlog_is_not() {
        let busy =
            from_mysql(server(4052, "A slave with the same server_uuid/server_id is already connected"), "reading");
        assert!(busy.is_transient(), "{busy:?}");
        let mysql_busy = from_mysql(
            server(1236, "A slave with the same server_uuid/server_id as this slave has connected to the master"),
            "reading",
        );
        assert!(mysql_busy.is_transient(), "{mysql_busy:?}");
        let purged = from_mysql(server(1236, "Could not find first log file name in binary log index file"), "reading");
        assert_eq!(purged.kind(), ErrorKind::BinlogPurged);
        assert!(!purged.is_transient());
        assert_eq!(purged.hint(), Some("resync it with init_replica"));
        assert!(purged.to_string().contains("no longer on the source"), "{purged}");
    }

    #[test]
    fn only_connection_and_binlog_stream_errors_are_transient() {
        let transient: Vec<ErrorKind> = [
            ErrorKind::InvalidParameter,
            ErrorKind::SourceConfig,
            ErrorKind::SourceConnection,
            ErrorKind::SourceQuery,
            ErrorKind::Binlog,
            ErrorKind::BinlogPurged,
            ErrorKind::Value,
            ErrorKind::Codec,
            ErrorKind::UnsupportedType,
            ErrorKind::Internal,
        ]
        .into_iter()
        .filter(|k| CoreError::new(*k, "x").is_transient())
        .collect();
        assert_eq!(transient, vec![ErrorKind::SourceConnection, ErrorKind::Binlog]);
    }

    #[test]
    fn context_prefixes_the_message_and_keeps_kind_detail_and_hint() {
        let e = CoreError::source_config("binlog_format is MIXED".into())
            .with_detail("row events are needed")
            .with_hint("set binlog_format=ROW on the source")
            .context("source \"src\"");
        assert_eq!(e.kind(), ErrorKind::SourceConfig);
        assert_eq!(e.message(), "source \"src\": binlog_format is MIXED");
        assert_eq!(e.detail(), Some("row events are needed"));
        assert_eq!(e.hint(), Some("set binlog_format=ROW on the source"));
    }

    #[test]
    fn the_full_text_has_message_detail_and_hint_and_display_shows_it() {
        let bare = CoreError::value("bad".into());
        assert_eq!(bare.full_text(), "bad");
        assert_eq!(bare.clone().with_detail("why").full_text(), "bad (why)");
        assert_eq!(bare.clone().with_hint("do this").full_text(), "bad HINT: do this");
        let all = bare.with_detail("why").with_hint("do this");
        assert_eq!(all.full_text(), "bad (why) HINT: do this");
        assert_eq!(all.to_string(), all.full_text());
        assert_eq!(all.message(), "bad");
    }
}
