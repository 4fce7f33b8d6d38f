//! The binlog reader: runs on its own thread (pure Rust, never calls PostgreSQL), follows
//! the source's binlog from a stored position, decodes row, query, rotate, GTID and XID
//! events into typed changes grouped by source transaction, and sends each committed
//! transaction over a bounded channel to the worker's main thread.
//!
//! MariaDB's own events (GTID = 162, ANNOTATE_ROWS, BINLOG_CHECKPOINT, GTID_LIST) come back
//! undecoded from the driver; the GTID event is decoded here from its raw bytes, the others
//! carry nothing for us and are skipped, as is any unknown event type.

use crate::core::change::{DdlEvent, DiscardedRow, Op, ReaderMessage, Row, RowChange, SourceTransaction};
use crate::core::ddl;
use crate::core::error::{from_mysql, CoreError, CoreResult};
use crate::core::gtid::{self, Gtid, GtidState};
use crate::core::mysql_source::{self, Flavor};
use crate::core::position::{after_consistent_point, BinlogPosition};
use crate::core::rowcodec;
use crate::core::source_url::SourceUrl;
use crate::core::types::ValueKind;
use crate::core::value;
use crossbeam_channel::Sender;
use mysql::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql::binlog::row::BinlogRow;
use mysql::binlog::value::BinlogValue;
use mysql::prelude::Queryable;
use mysql::BinlogRequest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A replicated table as the reader needs it: catalogue id, value kinds in MySQL column
/// order, and the positions of the replica key columns.
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
}

pub struct ReaderConfig {
    pub url: SourceUrl,
    pub server_id: u32,
    /// Where to resume; None when only a GTID position is known (the reader then connects at
    /// the GTID and learns the file and offset from the server).
    pub start: Option<BinlogPosition>,
    /// (MySQL schema, table) -> table. Events for other tables are skipped.
    pub tables: HashMap<(String, String), ReaderTable>,
    pub connect_timeout: Duration,
    pub net_read_timeout: Duration,
    /// The source's GTID state at `start`, when known.
    pub gtid: Option<GtidState>,
    /// `gtid_enable`: connect at the GTID state, not at `start`'s file and offset.
    pub gtid_connect: bool,
    /// The mapped MySQL schemas: DDL statements that may change them stop the reader.
    pub mapped_schemas: Vec<String>,
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

// Event type codes (MySQL and MariaDB share the low numbers).
const QUERY_EVENT: u8 = 2;
const ROTATE_EVENT: u8 = 4;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;
const XID_EVENT: u8 = 16;
const TABLE_MAP_EVENT: u8 = 19;
const HEARTBEAT_EVENT: u8 = 27;
const MARIADB_GTID_EVENT: u8 = 162;
const MYSQL_GTID_EVENT: u8 = 33;
const MYSQL_ANONYMOUS_GTID_EVENT: u8 = 34;
const MYSQL_GTID_TAGGED_EVENT: u8 = 42;
const INCIDENT_EVENT: u8 = 26;
/// WRITE/UPDATE/DELETE_ROWS v0 (MariaDB 5.1), v1 (23-25), v2 (30-32), PARTIAL_UPDATE (39).
const ROWS_EVENTS: &[u8] = &[20, 21, 22, 23, 24, 25, 30, 31, 32, 39];
/// Known events with nothing for us: STOP, INTVAR, LOAD/EXEC_LOAD and friends, RAND, USER_VAR,
/// ROWS_QUERY, PREVIOUS_GTIDS, TRANSACTION_CONTEXT, VIEW_CHANGE, XA_PREPARE, HEARTBEAT_V2;
/// MariaDB: ANNOTATE_ROWS (160), BINLOG_CHECKPOINT (161), GTID_LIST (163), START_ENCRYPTION (164).
const IGNORED_EVENTS: &[u8] =
    &[3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 29, 35, 36, 37, 38, 41, 160, 161, 163, 164];
/// MySQL 8 binlog_transaction_compression wraps whole transactions in this event.
const TRANSACTION_PAYLOAD_EVENT: u8 = 40;
/// MariaDB log_bin_compress: QUERY_COMPRESSED_EVENT (165) .. DELETE_ROWS_COMPRESSED_EVENT (171).
const MARIADB_COMPRESSED_EVENTS: std::ops::RangeInclusive<u8> = 165..=171;

/// Events whose rows we cannot see: skipping them would lose data, so the reader stops.
pub fn unreadable_event(etype: u8) -> Option<&'static str> {
    if etype == TRANSACTION_PAYLOAD_EVENT {
        Some("a compressed transaction payload event: set binlog_transaction_compression=OFF on the source and resync")
    } else if MARIADB_COMPRESSED_EVENTS.contains(&etype) {
        Some("a compressed binlog event: set log_bin_compress=OFF on the source and resync")
    } else {
        None
    }
}
const MARIADB_FL_STANDALONE: u8 = 1;

/// A MariaDB GTID event's payload: seq_no (8 bytes LE), domain_id (4 bytes LE), flags (1 byte).
/// Returns the GTID and whether the event group is standalone (no BEGIN: DDL).
pub fn decode_mariadb_gtid(data: &[u8], server_id: u32) -> Option<(Gtid, bool)> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let flags = *data.get(12)?;
    Some((Gtid::MariaDb { domain, server: server_id, seq }, flags & MARIADB_FL_STANDALONE != 0))
}

/// The file a ROTATE event points to. The artificial ROTATE the server sends first, before
/// any format description (`before_format`), cannot have its checksum stripped by the driver:
/// its name then ends with the 4 CRC bytes when the source writes checksums (`crc`, known
/// from `binlog_checksum`; `None` when unknown: guessed from the bytes). Every later rotate,
/// real or artificial (the server moving to the next file), arrives clean: its name is whole.
pub fn rotate_target(raw: &[u8], current: &str, before_format: bool, crc: Option<bool>) -> String {
    if !before_format {
        return String::from_utf8_lossy(raw).into_owned();
    }
    match crc {
        Some(true) if raw.len() > 4 => return String::from_utf8_lossy(&raw[..raw.len() - 4]).into_owned(),
        Some(false) => return String::from_utf8_lossy(raw).into_owned(),
        _ => {}
    }
    if raw.starts_with(current.as_bytes()) && raw.len() <= current.len() + 4 {
        return current.to_string();
    }
    let name_len = raw.iter().position(|b| !(b.is_ascii_alphanumeric() || b"._-".contains(b))).unwrap_or(raw.len());
    let name = &raw[..name_len];
    let name = if raw.len() >= 4 && name_len == raw.len() { &raw[..raw.len() - 4] } else { name };
    String::from_utf8_lossy(name).into_owned()
}

/// Decodes the row images of one rows event into changes for `table`.
/// Conversion failures become discarded rows; the rest of the event goes on.
pub fn decode_rows(
    table: &ReaderTable,
    table_name: &str,
    rows_event: &RowsEventData<'_>,
    tme: &TableMapEvent<'_>,
    pos: u64,
    timestamp: u32,
    out: &mut Vec<RowChange>,
    discarded: &mut Vec<DiscardedRow>,
) -> CoreResult<()> {
    let op = match rows_event {
        RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
        RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) => Op::Update,
        RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
        RowsEventData::PartialUpdateRowsEvent(_) => {
            return Err(CoreError::binlog(format!("{table_name}: partial JSON update rows event"))
                .with_hint("set binlog_row_value_options='' on the source"))
        }
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
    for item in rows_event.rows(tme) {
        let (before, after) =
            item.map_err(|e| CoreError::binlog(format!("{table_name}: undecodable row event: {e}")))?;
        let convert = |row: &BinlogRow, only: Option<&[usize]>| -> Result<Row, (String, Vec<u8>)> {
            let idx: Vec<usize> = match only {
                Some(k) => k.to_vec(),
                None => (0..table.kinds.len()).collect(),
            };
            let mut vals = Vec::with_capacity(idx.len());
            for i in idx {
                let v = row.as_ref(i).ok_or_else(|| {
                    (format!("column {} is missing from the row image: set binlog_row_image=FULL", i + 1), raw_row(row))
                })?;
                let c = value::from_binlog(&table.kinds[i], v).map_err(|reason| match table.names.get(i) {
                    Some(name) => (format!("column \"{name}\": {reason}"), raw_row(row)),
                    None => (format!("column {}: {reason}", i + 1), raw_row(row)),
                })?;
                vals.push(c);
            }
            Ok(vals)
        };
        let result = match op {
            Op::Insert => after.as_ref().map(|a| convert(a, None).map(|r| (None, Some(r)))),
            Op::Delete => before.as_ref().map(|b| convert(b, Some(&table.key)).map(|k| (Some(k), None))),
            Op::Update => match (before.as_ref(), after.as_ref()) {
                (Some(b), Some(a)) => {
                    Some(convert(b, Some(&table.key)).and_then(|k| convert(a, None).map(|r| (Some(k), Some(r)))))
                }
                _ => None,
            },
            Op::Ddl => None,
        };
        match result {
            Some(Ok((key, row))) => out.push(RowChange { table_id: table.id, op, pos, timestamp, key, row }),
            Some(Err((reason, raw))) => discarded.push(DiscardedRow { table_id: table.id, pos, raw, reason }),
            None => return Err(CoreError::binlog(format!("{table_name}: row event without the expected row image"))),
        }
    }
    Ok(())
}

/// The exact source bytes of a row, for `discarded_rows`.
fn raw_row(row: &BinlogRow) -> Vec<u8> {
    let vals: Vec<Option<Vec<u8>>> = (0..row.len())
        .map(|i| match row.as_ref(i) {
            None | Some(BinlogValue::Value(mysql::Value::NULL)) => None,
            Some(BinlogValue::Value(mysql::Value::Bytes(b))) => Some(b.clone()),
            Some(other) => Some(format!("{other:?}").into_bytes()),
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
    let mut conn = mysql_source::connect(&cfg.url, cfg.connect_timeout, Some(cfg.net_read_timeout))?;
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

fn follow(cfg: &ReaderConfig, tx: &Sender<ReaderMessage>, stop: &AtomicBool) -> CoreResult<()> {
    let Opened { stream, mut state, crc, flavor, schema_charsets } = open_stream(cfg)?;
    let mapped = |schema: &str| cfg.mapped_schemas.iter().any(|m| m == schema);
    // a DDL statement that may change replicated tables was stored: stop after its commit
    let mut barrier = false;
    // Connected at a GTID, the server chooses the file (its first ROTATE says which) and
    // skips, without sending them, the transactions we have: the offset is known from the
    // first transaction it sends.
    let by_gtid = cfg.gtid_connect || cfg.start.is_none();
    let mut position_known = !by_gtid;
    let mut file = cfg.start.as_ref().map(|p| p.file.clone()).unwrap_or_default();
    let mut pos = cfg.start.as_ref().map_or(4, |p| p.pos);
    let mut maps: HashMap<u64, (TableMapEvent<'static>, Option<(String, ReaderTable)>)> = HashMap::new();
    let mut changes: Vec<RowChange> = Vec::new();
    let mut discarded: Vec<DiscardedRow> = Vec::new();
    let mut in_txn = false;
    let mut gtid: Option<Gtid> = None;
    let mut txn_time: u32 = 0;
    // until the first format description, the driver cannot strip checksums
    let mut before_format = true;
    let mut noted = std::collections::HashSet::new();

    for event in stream {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let event = event.map_err(|e| from_mysql(e, &format!("reading the binlog after {file}:{pos}")))?;
        let header = event.header();
        let etype = header.event_type_raw();
        if etype != ROTATE_EVENT && etype != HEARTBEAT_EVENT && header.log_pos() > 0 {
            pos = header.log_pos() as u64;
        }
        txn_time = txn_time.max(header.timestamp());
        let at = || format!("{file}:{pos}");
        if let Some(why) = unreadable_event(etype) {
            return Err(CoreError::source_config(format!("the binlog at {} holds {why}", at())));
        }
        let mut commit = false;
        match etype {
            ROTATE_EVENT => {
                if let Ok(Some(EventData::RotateEvent(r))) = event.read_data() {
                    file = rotate_target(r.name_raw(), &file, before_format, crc);
                    pos = r.position();
                }
                continue;
            }
            FORMAT_DESCRIPTION_EVENT => {
                before_format = false;
                continue;
            }
            HEARTBEAT_EVENT => {
                let between_groups =
                    position_known && !in_txn && gtid.is_none() && changes.is_empty() && discarded.is_empty();
                let position = between_groups.then(|| BinlogPosition::new(file.clone(), pos));
                if tx.send(ReaderMessage::Heartbeat { position }).is_err() {
                    return Ok(());
                }
                continue;
            }
            MARIADB_GTID_EVENT => {
                let (g, standalone) = decode_mariadb_gtid(event.data(), header.server_id())
                    .ok_or_else(|| CoreError::binlog(format!("truncated MariaDB GTID event at {}", at())))?;
                gtid = Some(g);
                position_known = true;
                // A standalone event group (DDL) has no BEGIN; it ends with its one query.
                in_txn = !standalone;
                continue;
            }
            MYSQL_GTID_EVENT | MYSQL_GTID_TAGGED_EVENT => {
                if let Ok(Some(EventData::GtidEvent(ge))) = event.read_data() {
                    let uuid = gtid::uuid_text(&ge.sid());
                    let sid = match ge.tag() {
                        Some(tag) => format!("{uuid}:{}", tag.as_str()),
                        None => uuid,
                    };
                    gtid = Some(Gtid::MySql { sid, gno: ge.gno() });
                } else {
                    return Err(CoreError::binlog(format!("undecodable GTID event at {}", at())));
                }
                position_known = true;
                continue;
            }
            MYSQL_ANONYMOUS_GTID_EVENT => {
                position_known = true;
                continue;
            }
            XID_EVENT => commit = true,
            QUERY_EVENT => {
                if let Ok(Some(EventData::QueryEvent(qe))) = event.read_data() {
                    let query = qe.query();
                    let q = query.trim();
                    if q.eq_ignore_ascii_case("BEGIN") {
                        in_txn = true;
                        continue;
                    }
                    let end = q.eq_ignore_ascii_case("COMMIT") || q.eq_ignore_ascii_case("ROLLBACK");
                    let schema = qe.schema();
                    if !end && ddl::may_affect(q, &schema, &mapped) {
                        let ev = DdlEvent {
                            query: q.to_string(),
                            default_schema: schema.into_owned(),
                            mysql: flavor == Flavor::MySql,
                            schema_charsets: schema_charsets.clone(),
                            with_rows: in_txn,
                        };
                        changes.push(RowChange {
                            table_id: 0,
                            op: Op::Ddl,
                            pos,
                            timestamp: header.timestamp(),
                            key: None,
                            row: Some(ev.to_row()),
                        });
                        barrier = true;
                    }
                    // COMMIT (non-transactional engines), ROLLBACK of a mixed transaction, or
                    // a standalone statement (DDL): all end the event group.
                    commit = end || !in_txn;
                }
            }
            TABLE_MAP_EVENT => {
                if let Ok(Some(EventData::TableMapEvent(tme))) = event.read_data() {
                    let key = (tme.database_name().into_owned(), tme.table_name().into_owned());
                    let target = cfg.tables.get(&key).map(|t| (format!("{}.{}", key.0, key.1), t.clone()));
                    maps.insert(tme.table_id(), (tme.into_owned(), target));
                }
                continue;
            }
            INCIDENT_EVENT => {
                return Err(CoreError::source_config(format!("the source wrote an INCIDENT event at {}", at()))
                    .with_detail("changes may be missing from its binlog (a replica of MySQL stops here too)")
                    .with_hint("resync the source with init_replica"));
            }
            t if ROWS_EVENTS.contains(&t) => {
                if let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() {
                    if let Some((tme, Some((name, table)))) = maps.get(&rows.table_id()) {
                        if !after_consistent_point(&file, pos, table.point.as_ref()) {
                            continue;
                        }
                        decode_rows(table, name, &rows, tme, pos, header.timestamp(), &mut changes, &mut discarded)
                            .map_err(|e| e.context(format!("at {}", at())))?;
                    }
                }
                continue;
            }
            t => {
                // Events that carry nothing we store are skipped; an unknown type is skipped
                // too, and said once per type in the server log.
                if !IGNORED_EVENTS.contains(&t) && noted.insert(t) {
                    let note = format!("skipped a binlog event of unknown type {t} at {}", at());
                    if tx.send(ReaderMessage::Note(note)).is_err() {
                        return Ok(());
                    }
                }
                continue;
            }
        }
        if commit {
            if let (Some(g), Some(st)) = (gtid.as_ref(), state.as_mut()) {
                st.apply(g).map_err(|e| e.context(format!("at {}", at())))?;
            }
            gtid = None;
            position_known = true;
            let txn = SourceTransaction {
                file: file.clone(),
                changes: std::mem::take(&mut changes),
                discarded: std::mem::take(&mut discarded),
                end: BinlogPosition::new(file.clone(), pos),
                gtid: state.as_ref().map(ToString::to_string).filter(|g| !g.is_empty()),
                timestamp: txn_time,
            };
            in_txn = false;
            txn_time = 0;
            maps.clear();
            if tx.send(ReaderMessage::Transaction(txn)).is_err() {
                return Ok(());
            }
            if barrier {
                let _ = tx.send(ReaderMessage::DdlBarrier);
                return Ok(());
            }
        }
    }
    Err(CoreError::binlog(format!("the source closed the binlog stream after {file}:{pos}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_names_without_checksum_bytes() {
        let mut raw = b"mysql-bin.000001".to_vec();
        raw.extend_from_slice(&[0xde, b'O', b'J', 0x7f]);
        assert_eq!(rotate_target(&raw, "mysql-bin.000001", true, None), "mysql-bin.000001");
        raw.truncate(16);
        raw.extend_from_slice(b"ABCD");
        assert_eq!(rotate_target(&raw, "mysql-bin.000001", true, None), "mysql-bin.000001");
        assert_eq!(rotate_target(b"mysql-bin.000002", "mysql-bin.000001", false, None), "mysql-bin.000002");
        assert_eq!(
            rotate_target(b"mysql-bin.000002\xff\x01\x02\x03", "mysql-bin.000001", true, None),
            "mysql-bin.000002"
        );
        // the server moving to the next file mid-stream (artificial, log_pos 0, after the
        // format description): the name is whole, nothing may be cut from it
        assert_eq!(rotate_target(b"mysql-bin.000002", "mysql-bin.000001", false, None), "mysql-bin.000002");
        assert_eq!(
            rotate_target(b"binlog-with.dots.000010", "binlog-with.dots.000009", false, None),
            "binlog-with.dots.000010"
        );
        // binlog_checksum known: exactly the 4 CRC bytes go, whatever they look like (here
        // alphanumeric, which the guess cannot tell from the name); connected by GTID the
        // current name is empty
        assert_eq!(rotate_target(b"mysql-bin.000007a1Zx", "", true, Some(true)), "mysql-bin.000007");
        assert_eq!(rotate_target(b"mysql-bin.0000071\x02\x03\x04", "", true, Some(true)), "mysql-bin.000007");
        assert_eq!(rotate_target(b"mysql-bin.000007", "", true, Some(false)), "mysql-bin.000007");
    }

    #[test]
    fn compressed_events_are_refused_not_skipped() {
        assert!(unreadable_event(40).unwrap().contains("binlog_transaction_compression"));
        for t in 165..=171 {
            assert!(unreadable_event(t).unwrap().contains("log_bin_compress"));
        }
        assert_eq!(unreadable_event(30), None);
        assert_eq!(unreadable_event(162), None);
    }

    #[test]
    fn mariadb_gtid_payload() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend_from_slice(&3u32.to_le_bytes());
        data.push(1);
        let g = Gtid::MariaDb { domain: 3, server: 7, seq: 42 };
        assert_eq!(decode_mariadb_gtid(&data, 7), Some((g.clone(), true)));
        assert_eq!(g.to_string(), "3-7-42");
        data[12] = 0;
        assert_eq!(decode_mariadb_gtid(&data, 7), Some((g, false)));
        assert_eq!(decode_mariadb_gtid(&data[..10], 7), None);
    }
}
