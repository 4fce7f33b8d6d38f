//! The binlog reader: runs on its own thread (pure Rust, never calls PostgreSQL), follows
//! the source's binlog from a stored position and sends each committed source transaction
//! (a large one first in pieces) over a channel bounded in messages and in bytes
//! (`core::budget`) to the worker's main thread.
//!
//! It owns the socket side: opening the stream (at a file and offset or at a GTID state),
//! decoding what the driver can of each event (row images into typed changes with
//! `decode_rows`), and handing the event to the `assembler`, which groups changes into
//! transactions and says what to send. MariaDB's own events (GTID = 162, ANNOTATE_ROWS,
//! BINLOG_CHECKPOINT, GTID_LIST) come back undecoded from the driver; the assembler decodes
//! the GTID event from its raw bytes, the others carry nothing for us and are skipped, as is
//! any unknown event type.

use crate::core::assembler::{
    Assembler, RowsTarget, SourceContext, Step, FORMAT_DESCRIPTION_EVENT, HEARTBEAT_EVENT, INCIDENT_EVENT,
    MARIADB_GTID_EVENT, MYSQL_ANONYMOUS_GTID_EVENT, MYSQL_GTID_EVENT, MYSQL_GTID_TAGGED_EVENT, QUERY_EVENT,
    ROTATE_EVENT, ROWS_EVENTS, TABLE_MAP_EVENT, TRANSACTION_PAYLOAD_EVENT, XA_PREPARE_EVENT, XID_EVENT,
};
use crate::core::binlog_file;
use crate::core::budget::ByteBudget;
use crate::core::change::{DiscardedRow, Op, ReaderMessage, Row, RowChange};
use crate::core::endpoint::Endpoint;
use crate::core::error::{from_mysql, CoreError, CoreResult};
use crate::core::gtid::{self, Gtid, GtidState};
use crate::core::json;
use crate::core::mysql_source::{self, Flavor};
use crate::core::position::BinlogPosition;
use crate::core::rowcodec;
use crate::core::rowimage::{self, Image};
use crate::core::tablemap;
use crate::core::types::ValueKind;
use crate::core::value;
use crossbeam_channel::Sender;
use mysql::binlog::events::{Event, EventData, GtidEvent, RowsEventData, TableMapEvent};
use mysql::binlog::value::BinlogValue;
use mysql::prelude::Queryable;
use mysql::BinlogRequest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A replicated table as the reader needs it: catalogue id, value kinds in MySQL column
/// order, and the positions of the replica key columns (every column for a table without a
/// key, which replay matches by full row).
#[derive(Debug, Clone)]
pub struct ReaderTable {
    pub id: i32,
    pub kinds: Vec<ValueKind>,
    /// Column names, for the reasons of discarded rows.
    pub names: Vec<String>,
    pub key: Vec<usize>,
    /// Row event kinds not replicated for this table (`skip_events`).
    pub skip: Vec<Op>,
    /// The table's consistent point: its row events at or before it are in its copy (and may
    /// have the columns it had before a DDL statement), so they are not decoded.
    pub point: Option<BinlogPosition>,
    /// Being copied again (`sync_tables`, `refresh_schema`): its rows up to its new consistent
    /// point are not applied and its definition is registered again by the copy, so its table
    /// maps are not checked against the definition (`core::tablemap`) meanwhile.
    pub awaiting_copy: bool,
}

pub struct ReaderConfig {
    /// The source, with its password and TLS settings.
    pub endpoint: Endpoint,
    pub server_id: u32,
    /// Where to resume; None when only a GTID position is known (the reader then connects at
    /// the GTID and learns the file and offset from the server).
    pub start: Option<BinlogPosition>,
    /// (MySQL schema, table) -> table. Events for other tables are skipped.
    pub tables: HashMap<(String, String), ReaderTable>,
    pub net_read_timeout: Duration,
    /// The source's GTID state at `start`, when known.
    pub gtid: Option<GtidState>,
    /// `gtid_enable`: connect at the GTID state, not at `start`'s file and offset.
    pub gtid_connect: bool,
    /// The mapped MySQL schemas: DDL statements that may change them stop the reader.
    pub mapped_schemas: Vec<String>,
    /// Estimated bytes of changes past which an open transaction is sent as a piece.
    pub piece_bytes: usize,
    /// Bytes of changes sent and not yet received by the main thread.
    pub budget: Arc<ByteBudget>,
}

/// What the reader learnt from the server when it connected.
struct Opened {
    stream: mysql::BinlogStream,
    state: Option<GtidState>,
    crc: Option<bool>,
    flavor: Flavor,
    /// Default character set of each mapped schema.
    schema_charsets: Vec<(String, String)>,
}

/// Decodes the row images of one rows event into changes for `table`.
/// Conversion failures become discarded rows; the rest of the event goes on.
pub fn decode_rows(
    target: &RowsTarget<'_, TableMapEvent<'static>>,
    rows_event: &RowsEventData<'_>,
    timestamp: u32,
    out: &mut Vec<RowChange>,
    discarded: &mut Vec<DiscardedRow>,
) -> CoreResult<()> {
    let RowsTarget { map: tme, table, name: table_name, pos } = *target;
    let op = match rows_event {
        RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
        RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => Op::Update,
        RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
    };
    if table.skip.contains(&op) {
        return Ok(());
    }
    let ncols = rows_event.num_columns() as usize;
    if ncols != table.kinds.len() {
        return Err(CoreError::binlog(format!(
            "{table_name}: the row event has {ncols} columns but the replicated table has {}",
            table.kinds.len()
        ))
        .with_detail("its structure changed on the source in a way the replica did not see")
        .with_hint("copy it again with sync_tables"));
    }
    let undecodable = |e: String| CoreError::binlog(format!("{table_name}: undecodable row event: {e}"));
    // the driver trusts the bytes it decodes: a mangled row must be an error, not a panic
    let images = binlog_file::guarded("row images", || rowimage::rows(rows_event, tme)).map_err(undecodable)?;
    let every_column: Vec<usize> = (0..table.kinds.len()).collect();
    for (before, after) in images {
        // a row image holds only the columns its bitmap names (rowimage: None for the others)
        let old = |i: usize| value_at(before.as_ref(), i);
        // the after image of an update: a column it leaves out (binlog_row_image=MINIMAL or
        // NOBLOB) is unchanged, so its before image stands, when there is one
        let convert = |row: &Image, after_image: bool, only: Option<&[usize]>| -> Result<Row, (String, Vec<u8>)> {
            let idx = only.unwrap_or(&every_column);
            let mut vals = Vec::with_capacity(idx.len());
            for &i in idx {
                let v = if after_image { value_at(Some(row), i).or_else(|| old(i)) } else { value_at(Some(row), i) };
                let v = v.ok_or_else(|| {
                    (format!("column {} is missing from the row image: set binlog_row_image=FULL", i + 1), raw_row(row))
                })?;
                let converted = match (v, old(i)) {
                    // a partial JSON update: the diffs apply to the column's before image
                    (BinlogValue::JsonDiff(diffs), Some(BinlogValue::Jsonb(old))) => {
                        json::apply_diffs(old, diffs).map(Some)
                    }
                    _ => value::from_binlog(&table.kinds[i], v),
                };
                let c = converted.map_err(|reason| match table.names.get(i) {
                    Some(name) => (format!("column \"{name}\": {reason}"), raw_row(row)),
                    None => (format!("column {}: {reason}", i + 1), raw_row(row)),
                })?;
                vals.push(c);
            }
            Ok(vals)
        };
        // the before image holds every column it must (a value conversion failed, not a column
        // missing from a minimal image)
        let whole_before = |b: &Image| table.key.iter().all(|&i| value_at(Some(b), i).is_some());
        let result = match op {
            Op::Insert => after.as_ref().map(|a| convert(a, true, None).map(|r| (op, None, Some(r)))),
            Op::Delete => before.as_ref().map(|b| convert(b, false, Some(&table.key)).map(|k| (op, Some(k), None))),
            Op::Update => match (before.as_ref(), after.as_ref()) {
                (Some(b), Some(a)) => Some(match convert(b, false, Some(&table.key)) {
                    Ok(k) => convert(a, true, None).map(|r| (op, Some(k), Some(r))),
                    // a table matched by full row whose before image PostgreSQL cannot store:
                    // the destination never had that row (it went to discarded_rows), so the
                    // update stores the after image as a new row, as replay does for a keyed
                    // row the destination lacks
                    Err(_)
                        if table.key.len() == table.kinds.len()
                            && whole_before(b)
                            && !table.skip.contains(&Op::Insert) =>
                    {
                        convert(a, true, None).map(|r| (Op::Insert, None, Some(r)))
                    }
                    Err(e) => Err(e),
                }),
                _ => None,
            },
            Op::Ddl => None,
        };
        match result {
            Some(Ok((op, key, row))) => out.push(RowChange { table_id: table.id, op, pos, timestamp, key, row }),
            Some(Err((reason, raw))) => discarded.push(DiscardedRow { table_id: table.id, pos, raw, reason }),
            None => return Err(CoreError::binlog(format!("{table_name}: row event without the expected row image"))),
        }
    }
    Ok(())
}

/// Column `i`'s value in a row image (None: the image does not hold it).
fn value_at<'r, 'a>(row: Option<&'r Image<'a>>, i: usize) -> Option<&'r BinlogValue<'a>> {
    row?.get(i)?.as_ref()
}

/// The exact source bytes of a row, for `discarded_rows`.
fn raw_row(row: &Image) -> Vec<u8> {
    let vals: Vec<Option<Vec<u8>>> = row
        .iter()
        .flatten()
        .map(|v| match v {
            BinlogValue::Value(mysql::Value::NULL) => None,
            BinlogValue::Value(mysql::Value::Bytes(b)) => Some(b.clone()),
            other => Some(format!("{other:?}").into_bytes()),
        })
        .collect();
    rowcodec::encode(&vals)
}

/// Runs until `stop` is set, the receiver goes away, or an error occurs (sent as
/// `ReaderMessage::Error`). The worker restarts it from its last committed position.
pub fn run(cfg: ReaderConfig, tx: Sender<ReaderMessage>, stop: &AtomicBool) {
    if let Err(e) = follow(&cfg, &tx, stop) {
        let _ = tx.send(ReaderMessage::Error(e));
    }
}

/// The source's GTID state at `at` (MariaDB: `BINLOG_GTID_POS`, which MySQL lacks).
fn gtid_state_at(conn: &mut mysql::Conn, flavor: Flavor, at: &BinlogPosition) -> CoreResult<Option<GtidState>> {
    if flavor != Flavor::MariaDb {
        return Ok(None);
    }
    let found: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (at.file.as_str(), at.pos))
        .map_err(|e| from_mysql(e, &format!("reading the GTID position of {at}")))?;
    Ok(match found.flatten() {
        Some(g) if g.trim().is_empty() => Some(GtidState::MariaDb(Default::default())),
        Some(g) => Some(GtidState::parse(&g)?),
        None => None,
    })
}

/// Opens the binlog stream: at the GTID state with `gtid_connect`, else at `cfg.start`.
fn open_stream(cfg: &ReaderConfig) -> CoreResult<Opened> {
    let mut conn = mysql_source::connect(&cfg.endpoint, Some(cfg.net_read_timeout))?;
    let info = mysql_source::check_server(&mut conn)?;
    let crc = mysql_source::variable(&mut conn, "binlog_checksum")?.map(|c| !c.eq_ignore_ascii_case("NONE"));
    let schema_charsets = mysql_source::schema_charsets(&mut conn, &cfg.mapped_schemas)?;
    // MariaDB sends its own events (GTID, annotate...) only to replicas that say they
    // understand them; MySQL ignores the variable. One heartbeat a second keeps read lag
    // honest when the source is idle.
    for s in ["SET @mariadb_slave_capability = 4", "SET @master_heartbeat_period = 1000000000"] {
        conn.query_drop(s).map_err(|e| from_mysql(e, "preparing the binlog connection"))?;
    }
    let start_text = cfg.start.as_ref().map(ToString::to_string).unwrap_or_else(|| "the start".into());
    let state = if cfg.gtid_connect || cfg.start.is_none() {
        let state = cfg.gtid.clone().ok_or_else(|| {
            CoreError::source_config(format!("gtid_enable is on but no GTID position is recorded at {start_text}"))
                .with_hint("give one with start_replica(source, start_position => '<gtid>') or turn gtid_enable off")
        })?;
        if state.is_mariadb() != (info.flavor == Flavor::MariaDb) {
            return Err(CoreError::source_config(format!(
                "the recorded GTID position {state} is not of the source's kind ({})",
                info.version
            ))
            .with_hint("give a position of the source's own form with start_replica(source, start_position => ...)"));
        }
        Some(state)
    } else if let (Flavor::MariaDb, Some(start)) = (info.flavor, cfg.start.as_ref()) {
        // authoritative, and covers every domain
        gtid_state_at(&mut conn, info.flavor, start)?
    } else {
        cfg.gtid.clone().filter(|g| !g.is_mariadb())
    };
    let mut request = BinlogRequest::new(cfg.server_id);
    let by_gtid = cfg.gtid_connect || cfg.start.is_none();
    let what = match (&state, by_gtid) {
        (Some(GtidState::MariaDb(_)), true) => {
            let g = state.as_ref().map(ToString::to_string).unwrap_or_default();
            conn.exec_drop("SET @slave_connect_state = ?", (g.as_str(),))
                .map_err(|e| from_mysql(e, "setting @slave_connect_state"))?;
            // the file and offset are ignored by the server when a connect state is set
            request = request.with_filename(Vec::new()).with_pos(4u64);
            format!("reading the binlog from GTID {g}")
        }
        (Some(s @ GtidState::MySql(_)), true) => {
            let mut sids = Vec::new();
            for block in s.mysql_blocks() {
                let sid: mysql_common::packets::Sid<'static> =
                    block.parse().map_err(|e| CoreError::invalid_parameter(format!("GTID set {block}: {e}")))?;
                sids.push(sid);
            }
            request = request.with_use_gtid(true).with_sids(sids).with_filename(Vec::new()).with_pos(4u64);
            format!("reading the binlog from GTID set {s}")
        }
        _ => {
            let start = cfg.start.as_ref().ok_or_else(|| CoreError::binlog("no binlog position to start at".into()))?;
            request = request.with_filename(start.file.as_bytes().to_vec()).with_pos(start.pos);
            format!("reading the binlog at {start}")
        }
    };
    let stream = conn.get_binlog_stream(request).map_err(|e| from_mysql(e, &what))?;
    Ok(Opened { stream, state, crc, flavor: info.flavor, schema_charsets })
}

/// Follows the stream: each event goes to the assembler, and what it says to do is done.
fn follow(cfg: &ReaderConfig, tx: &Sender<ReaderMessage>, stop: &AtomicBool) -> CoreResult<()> {
    let Opened { stream, state, crc, flavor, schema_charsets } = open_stream(cfg)?;
    let source = SourceContext {
        tables: cfg.tables.clone(),
        mapped_schemas: cfg.mapped_schemas.clone(),
        flavor,
        schema_charsets,
        crc,
        piece_bytes: cfg.piece_bytes,
    };
    let by_gtid = cfg.gtid_connect || cfg.start.is_none();
    let mut asm = Assembler::new(source, cfg.start.as_ref(), by_gtid, state);
    for event in stream {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let event = event.map_err(|e| from_mysql(e, &format!("reading the binlog after {}", asm.at())))?;
        if !dispatch(&mut asm, &event, &mut |step| act(step, tx, &cfg.budget, stop))? {
            return Ok(());
        }
    }
    Err(CoreError::binlog(format!("the source closed the binlog stream after {}", asm.at())))
}

/// Hands one event, from the socket or from a file, to the assembler's handler for its type,
/// with what the driver decodes of it, and each step the assembler returns to `emit`; false
/// when `emit` says to stop. A compressed transaction (TRANSACTION_PAYLOAD_EVENT) is
/// decompressed and its events dispatched in order, at the payload event's end position. An
/// event the driver cannot decode is skipped, except a MySQL GTID event (the assembler
/// refuses it) and a rows event (an error).
pub fn dispatch(
    asm: &mut Assembler<TableMapEvent<'static>>,
    event: &Event,
    emit: &mut dyn FnMut(Step) -> bool,
) -> CoreResult<bool> {
    let header = event.header();
    dispatch_at(asm, event, header.log_pos(), emit)
}

fn dispatch_at(
    asm: &mut Assembler<TableMapEvent<'static>>,
    event: &Event,
    log_pos: u32,
    emit: &mut dyn FnMut(Step) -> bool,
) -> CoreResult<bool> {
    let header = event.header();
    let etype = header.event_type_raw();
    asm.start_event(etype, log_pos, header.timestamp())?;
    if etype == TRANSACTION_PAYLOAD_EVENT {
        let inner = binlog_file::payload_events(event)
            .map_err(|e| CoreError::binlog(format!("at {}: compressed transaction: {e}", asm.at())))?;
        for ev in &inner {
            if !dispatch_at(asm, ev, log_pos, emit)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let data = || binlog_file::guarded("event", || event.read_data()).ok().flatten();
    let step = match etype {
        ROTATE_EVENT => match data() {
            Some(EventData::RotateEvent(r)) => asm.rotate(r.name_raw(), r.position()),
            _ => Step::Nothing,
        },
        FORMAT_DESCRIPTION_EVENT => asm.format_description(),
        HEARTBEAT_EVENT => asm.heartbeat(),
        MARIADB_GTID_EVENT => asm.mariadb_gtid(event.data(), header.server_id())?,
        MYSQL_GTID_EVENT | MYSQL_GTID_TAGGED_EVENT => asm.mysql_gtid(match data() {
            Some(EventData::GtidEvent(ge)) => Some(mysql_gtid(&ge)),
            _ => None,
        })?,
        MYSQL_ANONYMOUS_GTID_EVENT => asm.anonymous_gtid(),
        XID_EVENT => asm.xid()?,
        XA_PREPARE_EVENT => asm.xa_prepare(event.data())?,
        // a statement or table map skipped unread could lose a DDL change or a table's rows
        QUERY_EVENT => match decoded(asm, event, "query event")? {
            EventData::QueryEvent(qe) => asm.query(&qe.query(), &qe.schema(), header.timestamp())?,
            _ => Step::Nothing,
        },
        TABLE_MAP_EVENT => match decoded(asm, event, "table map event")? {
            // the same map as last time (most transactions): nothing to check or copy
            EventData::TableMapEvent(tme) if asm.table_map_again(tme.table_id(), |map| tme == *map) => Step::Nothing,
            EventData::TableMapEvent(tme) => {
                let key = (tme.database_name().into_owned(), tme.table_name().into_owned());
                asm.table_map_checked(tme.table_id(), key, tme.into_owned(), |map, table, name, at| {
                    tablemap::check(&tablemap::metadata(map)?, table, name, at)
                })
            }
            _ => Step::Nothing,
        },
        INCIDENT_EVENT => asm.incident()?,
        t if ROWS_EVENTS.contains(&t) => match decoded(asm, event, "rows event")? {
            EventData::RowsEvent(rows) => asm.rows(rows.table_id(), |target, out, discarded| {
                decode_rows(target, &rows, header.timestamp(), out, discarded)
            })?,
            _ => Step::Nothing,
        },
        t => asm.other(t),
    };
    Ok(emit(step))
}

/// What the driver decodes of an event that must not be skipped: an error naming the position
/// when it cannot.
fn decoded<'e>(asm: &Assembler<TableMapEvent<'static>>, event: &'e Event, what: &str) -> CoreResult<EventData<'e>> {
    match binlog_file::guarded(what, || event.read_data()) {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(CoreError::binlog(format!("at {}: {what} of an unknown type", asm.at()))),
        Err(e) => Err(CoreError::binlog(format!("at {}: undecodable {e}", asm.at()))),
    }
}

/// A MySQL GTID event's GTID: the server UUID, with its tag when tagged.
fn mysql_gtid(ge: &GtidEvent) -> Gtid {
    let uuid = gtid::uuid_text(&ge.sid());
    let sid = match ge.tag() {
        Some(tag) => format!("{uuid}:{}", tag.as_str()),
        None => uuid,
    };
    Gtid::MySql { sid, gno: ge.gno() }
}

/// Sends what the assembler's step says; false when the reader must stop (the receiver went
/// away, `stop` was set while the byte budget was spent, or a DDL barrier was sent).
fn act(step: Step, tx: &Sender<ReaderMessage>, budget: &ByteBudget, stop: &AtomicBool) -> bool {
    match step {
        Step::Nothing => true,
        Step::Heartbeat(position) => tx.send(ReaderMessage::Heartbeat { position }).is_ok(),
        Step::Note(note) => tx.send(ReaderMessage::Note(note)).is_ok(),
        Step::Abandon(what) => tx.send(ReaderMessage::Abandon(what)).is_ok(),
        Step::TableStopped { table_id, position, error } => {
            tx.send(ReaderMessage::TableStopped { table_id, position, error }).is_ok()
        }
        Step::Piece(piece) => budget.acquire(piece.mem_size(), stop) && tx.send(ReaderMessage::Piece(piece)).is_ok(),
        Step::Xa { txn, xa } => budget.acquire(txn.mem_size(), stop) && tx.send(ReaderMessage::Xa { txn, xa }).is_ok(),
        Step::Transaction { txn, barrier } => {
            if !budget.acquire(txn.mem_size(), stop) || tx.send(ReaderMessage::Transaction(txn)).is_err() {
                return false;
            }
            if barrier {
                let _ = tx.send(ReaderMessage::DdlBarrier);
                return false;
            }
            true
        }
    }
}
