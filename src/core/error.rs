//! The core's one error type. Every variant names the thing that failed (source, table,
//! column, binlog position) so that the message a DBA reads is actionable on its own.
//! The glue maps each kind to a SQLSTATE in `crate::pgerror`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value given by the user (URL, mapping, option) is invalid.
    InvalidParameter(String),
    /// The MySQL server is configured in a way replication cannot work with.
    SourceConfig(String),
    /// The MySQL server could not be reached or refused us (network, auth, timeout).
    SourceConnection(String),
    /// A query on the MySQL server failed.
    SourceQuery(String),
    /// The binlog stream failed or carried something we could not decode.
    Binlog(String),
    /// The binlog file we need has been purged on the source: a resync is required.
    BinlogPurged(String),
    /// A value could not be converted to its PostgreSQL form.
    Value(String),
    /// The stored row encoding is corrupt.
    Codec(String),
    /// A MySQL type we do not (yet) map.
    UnsupportedType(String),
}

impl CoreError {
    pub fn message(&self) -> &str {
        match self {
            CoreError::InvalidParameter(m)
            | CoreError::SourceConfig(m)
            | CoreError::SourceConnection(m)
            | CoreError::SourceQuery(m)
            | CoreError::Binlog(m)
            | CoreError::BinlogPurged(m)
            | CoreError::Value(m)
            | CoreError::Codec(m)
            | CoreError::UnsupportedType(m) => m,
        }
    }

    /// Adds context in front of the message, keeping the kind.
    pub fn context(self, ctx: impl fmt::Display) -> CoreError {
        let wrap = |m: String| format!("{ctx}: {m}");
        match self {
            CoreError::InvalidParameter(m) => CoreError::InvalidParameter(wrap(m)),
            CoreError::SourceConfig(m) => CoreError::SourceConfig(wrap(m)),
            CoreError::SourceConnection(m) => CoreError::SourceConnection(wrap(m)),
            CoreError::SourceQuery(m) => CoreError::SourceQuery(wrap(m)),
            CoreError::Binlog(m) => CoreError::Binlog(wrap(m)),
            CoreError::BinlogPurged(m) => CoreError::BinlogPurged(wrap(m)),
            CoreError::Value(m) => CoreError::Value(wrap(m)),
            CoreError::Codec(m) => CoreError::Codec(wrap(m)),
            CoreError::UnsupportedType(m) => CoreError::UnsupportedType(wrap(m)),
        }
    }

    /// Whether retrying later (reconnecting) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, CoreError::SourceConnection(_) | CoreError::Binlog(_))
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
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
                4052 => CoreError::SourceConnection(msg),
                1236 if e.message.contains("same server_uuid") || e.message.contains("same server_id") => {
                    CoreError::SourceConnection(msg)
                }
                1236 => CoreError::BinlogPurged(format!(
                    "{msg}; the binlog the replica needs is no longer on the source: resync it with init_replica"
                )),
                1045 | 1044 | 1130 | 1040 | 1203 => CoreError::SourceConnection(msg),
                _ => CoreError::SourceQuery(msg),
            }
        }
        mysql::Error::IoError(e) => CoreError::SourceConnection(format!("{what}: {e}")),
        mysql::Error::DriverError(e) => CoreError::SourceConnection(format!("{what}: {e}")),
        other => CoreError::SourceConnection(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
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
        assert!(matches!(purged, CoreError::BinlogPurged(_)));
    }
}
