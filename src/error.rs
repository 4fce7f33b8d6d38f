//! The glue layer's error type and its one exit into PostgreSQL: `report()` raises any error
//! as an `ERROR` with its SQLSTATE, message, detail and hint. Core errors
//! (`core::error::CoreError`) arrive here unchanged in kind, detail and hint; catalogue (SPI)
//! failures, missing objects, state violations and errors PostgreSQL raised (kept with their
//! own SQLSTATE, detail and hint) are added. Stored and logged texts use `full_text()` (also
//! what `Display` shows).

use crate::core::error::{full_text, CoreError, ErrorKind};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgSqlErrorCode::*};

/// What failed: a core kind, or one the glue adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Core(ErrorKind),
    /// An SPI call on the catalogue failed.
    Catalog,
    /// A source or table that does not exist.
    NotFound,
    /// The request does not fit the source's current state.
    State,
    /// An error PostgreSQL raised while we applied or copied data; its SQLSTATE is kept.
    Postgres,
}

#[derive(Debug, Clone)]
pub struct ChameleonError {
    kind: Kind,
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, ChameleonError>;

impl From<CoreError> for ChameleonError {
    fn from(e: CoreError) -> Self {
        let kind = Kind::Core(e.kind());
        ChameleonError {
            kind,
            code: code_of(kind),
            message: e.message().to_string(),
            detail: e.detail().map(str::to_string),
            hint: e.hint().map(str::to_string),
        }
    }
}

impl From<pgrx::spi::Error> for ChameleonError {
    fn from(e: pgrx::spi::Error) -> Self {
        ChameleonError::catalog(format!("catalogue access failed: {e}"))
    }
}

/// Shows the full text, so that an error formatted into a stored or logged text keeps its
/// detail and hint.
impl std::fmt::Display for ChameleonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full_text())
    }
}

/// SQLSTATE text ("23505") of a PostgreSQL error code.
pub fn sqlstate_text(code: PgSqlErrorCode) -> String {
    let mut out = String::with_capacity(5);
    let mut v = code as i32;
    for _ in 0..5 {
        out.push((((v & 0x3F) as u8) + b'0') as char);
        v >>= 6;
    }
    out
}

/// The SQLSTATE an error of our own kind is raised with.
fn code_of(kind: Kind) -> PgSqlErrorCode {
    match kind {
        Kind::Core(k) => match k {
            ErrorKind::InvalidParameter => ERRCODE_INVALID_PARAMETER_VALUE,
            ErrorKind::SourceConfig => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ErrorKind::SourceConnection => ERRCODE_CONNECTION_FAILURE,
            ErrorKind::SourceQuery | ErrorKind::Binlog => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
            ErrorKind::BinlogPurged => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ErrorKind::Value | ErrorKind::Codec => ERRCODE_DATA_EXCEPTION,
            ErrorKind::UnsupportedType => ERRCODE_FEATURE_NOT_SUPPORTED,
            ErrorKind::Internal => ERRCODE_INTERNAL_ERROR,
        },
        Kind::Catalog => ERRCODE_INTERNAL_ERROR,
        Kind::NotFound => ERRCODE_UNDEFINED_OBJECT,
        Kind::State => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        Kind::Postgres => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
    }
}

impl ChameleonError {
    fn new(kind: Kind, message: impl Into<String>) -> ChameleonError {
        ChameleonError { kind, code: code_of(kind), message: message.into(), detail: None, hint: None }
    }

    /// An SPI call on the catalogue failed.
    pub fn catalog(message: String) -> ChameleonError {
        ChameleonError::new(Kind::Catalog, message)
    }

    /// A source or table that does not exist.
    pub fn not_found(message: String) -> ChameleonError {
        ChameleonError::new(Kind::NotFound, message)
    }

    /// The request does not fit the source's current state.
    pub fn state(message: String) -> ChameleonError {
        ChameleonError::new(Kind::State, message)
    }

    /// A bug: something the code should never let happen (XX000).
    pub fn internal(message: String) -> ChameleonError {
        ChameleonError::new(Kind::Core(ErrorKind::Internal), message)
    }

    /// An error PostgreSQL raised, with its code (used where the error is built from a
    /// report, and by tests).
    pub fn postgres(code: PgSqlErrorCode, message: String) -> ChameleonError {
        ChameleonError { kind: Kind::Postgres, code, message, detail: None, hint: None }
    }

    /// From an error PostgreSQL raised and pgrx caught: its SQLSTATE, message, detail and
    /// hint are kept as they are.
    pub fn from_caught(e: &pg_sys::panic::CaughtError) -> ChameleonError {
        use pg_sys::panic::CaughtError;
        let report = match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        ChameleonError {
            detail: report.detail().map(str::to_string),
            hint: report.hint().map(str::to_string),
            ..ChameleonError::postgres(report.sql_error_code(), report.message().to_string())
        }
    }

    /// Adds the explanation (PostgreSQL's DETAIL).
    pub fn with_detail(mut self, detail: impl Into<String>) -> ChameleonError {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the advice on what to do (PostgreSQL's HINT).
    pub fn with_hint(mut self, hint: impl Into<String>) -> ChameleonError {
        self.hint = Some(hint.into());
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn code(&self) -> PgSqlErrorCode {
        self.code
    }

    /// The SQLSTATE as text: ours for our kinds, PostgreSQL's own for an error it raised.
    pub fn sqlstate(&self) -> String {
        sqlstate_text(self.code)
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

    /// `message (detail) HINT: hint`: the form stored in the catalogue and logged.
    pub fn full_text(&self) -> String {
        full_text(&self.message, self.detail(), self.hint())
    }

    /// Whether retrying later (reconnecting) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, Kind::Core(k) if k.is_transient())
    }

    /// Adds context in front of the message, keeping the kind, SQLSTATE, detail and hint.
    pub fn context(mut self, ctx: impl std::fmt::Display) -> ChameleonError {
        self.message = format!("{ctx}: {}", self.message);
        self
    }

    /// Raises the error in the calling backend with its SQLSTATE, message, detail and hint.
    /// Never returns.
    pub fn report(self) -> ! {
        let mut report = ErrorReport::new(self.code, self.message, pgrx::function_name!());
        if let Some(d) = self.detail {
            report = report.set_detail(d);
        }
        if let Some(h) = self.hint {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("an ERROR report returns control to PostgreSQL")
    }
}

/// Unwraps a glue result at the SQL boundary.
pub fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => e.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_sqlstate_and_bugs_are_xx000() {
        let state = |k: Kind| sqlstate_text(code_of(k));
        assert_eq!(state(Kind::Core(ErrorKind::InvalidParameter)), "22023");
        assert_eq!(state(Kind::Core(ErrorKind::SourceConfig)), "55000");
        assert_eq!(state(Kind::Core(ErrorKind::SourceConnection)), "08006");
        assert_eq!(state(Kind::Core(ErrorKind::SourceQuery)), "38000");
        assert_eq!(state(Kind::Core(ErrorKind::Binlog)), "38000");
        assert_eq!(state(Kind::Core(ErrorKind::BinlogPurged)), "55000");
        assert_eq!(state(Kind::Core(ErrorKind::Value)), "22000");
        assert_eq!(state(Kind::Core(ErrorKind::Codec)), "22000");
        assert_eq!(state(Kind::Core(ErrorKind::UnsupportedType)), "0A000");
        assert_eq!(state(Kind::Core(ErrorKind::Internal)), "XX000");
        assert_eq!(state(Kind::Catalog), "XX000");
        assert_eq!(state(Kind::NotFound), "42704");
        assert_eq!(state(Kind::State), "55000");
        assert_eq!(ChameleonError::internal("bug".into()).sqlstate(), "XX000");
    }

    #[test]
    fn a_core_error_keeps_its_kind_detail_and_hint_and_context_keeps_them_too() {
        let core = CoreError::binlog_purged("reading: MySQL error 1236".into())
            .with_detail("the binlog is gone")
            .with_hint("resync it with init_replica");
        let e = ChameleonError::from(core).context("source \"src\"");
        assert_eq!(e.kind(), Kind::Core(ErrorKind::BinlogPurged));
        assert_eq!(e.sqlstate(), "55000");
        assert_eq!(e.message(), "source \"src\": reading: MySQL error 1236");
        assert_eq!(e.detail(), Some("the binlog is gone"));
        assert_eq!(e.hint(), Some("resync it with init_replica"));
        assert_eq!(
            e.to_string(),
            "source \"src\": reading: MySQL error 1236 (the binlog is gone) HINT: resync it with init_replica"
        );
        assert!(!e.is_transient());
        assert!(ChameleonError::from(CoreError::source_connection("lost".into())).is_transient());
        assert!(!ChameleonError::state("running".into()).is_transient());
    }

    #[test]
    fn the_full_text_of_a_glue_error_has_detail_and_hint() {
        let e = ChameleonError::state("source \"a\" is running".into()).with_hint("stop_replica first");
        assert_eq!(e.full_text(), "source \"a\" is running HINT: stop_replica first");
        assert_eq!(e.to_string(), e.full_text());
        assert_eq!(e.message(), "source \"a\" is running");
    }
}
