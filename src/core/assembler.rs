//! The transaction assembler: the binlog reader's decoding state, fed one event at a time
//! (one method per event kind) and turning them into committed source transactions.
//!
//! It never touches the socket or the channel: each handler returns a [`Step`], what the
//! reader's loop must do next (send a heartbeat, a note, a transaction, stop at a DDL barrier),
//! or an error naming the binlog `file:pos`. The loop in `reader` decodes what the driver can
//! and dispatches by event type; the table map a rows event is decoded against is opaque here
//! (`M`: the driver's `TableMapEvent` in the reader, `()` in the tests).
//!
//! The rules it keeps: positions move with each event's end offset (not with rotate or
//! heartbeat events); a heartbeat carries a position only between event groups; a DDL
//! statement that may change mapped schemas is stored in stream order and raises the barrier
//! (the reader stops after its commit); rows of unmapped tables, and of tables at or before
//! their consistent point, are skipped; an unknown event type is noted once. A transaction
//! whose changes grow past `SourceContext::piece_bytes` is handed over in pieces as it is read
//! (memory stays bounded whatever its size); its commit still ends it, and a group cut off by
//! a new binlog file before its commit (the source restarted while writing it) is abandoned.
//! An XA transaction's first phase (`XA START` ... XA_PREPARE event) is handed over as
//! prepared, with its xid; its `XA COMMIT` / `XA ROLLBACK`, a later group of its own, as the
//! outcome for that xid (`core::xa`): the worker keeps the prepared rows from replay until then.

use crate::core::change::{
    changes_mem_size, DdlEvent, DiscardedRow, Op, RowChange, SourceTransaction, TransactionPiece,
};
use crate::core::ddl;
use crate::core::error::{CoreError, CoreResult};
use crate::core::gtid::{Gtid, GtidState};
use crate::core::mysql_source::Flavor;
use crate::core::position::{after_consistent_point, BinlogPosition};
use crate::core::reader::ReaderTable;
use crate::core::xa::{self, XaEvent, XaPhase, Xid};
use std::collections::{HashMap, HashSet};

// Event type codes (MySQL and MariaDB share the low numbers).
pub const QUERY_EVENT: u8 = 2;
pub const ROTATE_EVENT: u8 = 4;
pub const FORMAT_DESCRIPTION_EVENT: u8 = 15;
pub const XID_EVENT: u8 = 16;
pub const TABLE_MAP_EVENT: u8 = 19;
pub const HEARTBEAT_EVENT: u8 = 27;
pub const MARIADB_GTID_EVENT: u8 = 162;
pub const MYSQL_GTID_EVENT: u8 = 33;
pub const MYSQL_ANONYMOUS_GTID_EVENT: u8 = 34;
pub const MYSQL_GTID_TAGGED_EVENT: u8 = 42;
pub const INCIDENT_EVENT: u8 = 26;
/// XA_PREPARE_LOG_EVENT: ends the event group of an XA transaction's first phase (MySQL 5.7+,
/// MariaDB 10.5+); its XA COMMIT or XA ROLLBACK comes later as a group of its own.
pub const XA_PREPARE_EVENT: u8 = 38;
/// WRITE/UPDATE/DELETE_ROWS v0 (MariaDB 5.1), v1 (23-25), v2 (30-32), PARTIAL_UPDATE (39).
pub const ROWS_EVENTS: &[u8] = &[20, 21, 22, 23, 24, 25, 30, 31, 32, 39];
/// Known events with nothing for us: STOP, INTVAR, LOAD/EXEC_LOAD and friends, RAND, USER_VAR,
/// ROWS_QUERY, PREVIOUS_GTIDS, TRANSACTION_CONTEXT, VIEW_CHANGE, HEARTBEAT_V2;
/// MariaDB: ANNOTATE_ROWS (160), BINLOG_CHECKPOINT (161), GTID_LIST (163), START_ENCRYPTION (164).
const IGNORED_EVENTS: &[u8] = &[3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 29, 35, 36, 37, 41, 160, 161, 163, 164];
/// MySQL 8 binlog_transaction_compression wraps whole transactions in this event; the reader
/// decompresses it and hands its events over one by one.
pub const TRANSACTION_PAYLOAD_EVENT: u8 = 40;
/// MariaDB log_bin_compress: QUERY_COMPRESSED_EVENT (165) .. DELETE_ROWS_COMPRESSED_EVENT (171).
const MARIADB_COMPRESSED_EVENTS: std::ops::RangeInclusive<u8> = 165..=171;
const MARIADB_FL_STANDALONE: u8 = 1;

/// Whether `q` starts with these keywords (any case, any whitespace between them).
fn starts_with_words(q: &str, words: &[&str]) -> bool {
    let mut it = q.split_whitespace();
    words.iter().all(|w| it.next().is_some_and(|x| x.eq_ignore_ascii_case(w)))
}

/// Events whose rows we cannot see: skipping them would lose data, so the reader stops.
pub fn unreadable_event(etype: u8) -> Option<&'static str> {
    if MARIADB_COMPRESSED_EVENTS.contains(&etype) {
        Some("a compressed binlog event: set log_bin_compress=OFF on the source and resync")
    } else {
        None
    }
}

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

/// What the reader's loop must do after an event.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing to send: read the next event.
    Nothing,
    /// Send a heartbeat; `position` is set when the reader is between event groups.
    Heartbeat(Option<BinlogPosition>),
    /// Send a note for the server log.
    Note(String),
    /// Send the committed transaction; with `barrier`, then send the DDL barrier and stop.
    Transaction { txn: SourceTransaction, barrier: bool },
    /// Send a piece of the transaction being read: it grew past the piece size.
    Piece(TransactionPiece),
    /// The transaction being read was cut off before its commit: its pieces sent so far must
    /// be discarded (the text says where).
    Abandon(String),
    /// Send an XA event group: the prepared transaction (its rows, after the pieces sent so
    /// far, and the position after its prepare), or the outcome of one (no rows; the position
    /// after the XA COMMIT or XA ROLLBACK).
    Xa { txn: SourceTransaction, xa: XaEvent },
    /// A replicated table's table map contradicts its definition (`core::tablemap`): the
    /// table must be stopped with this error; the reader skips its rows from now on and the
    /// source's other tables go on.
    TableStopped { table_id: i32, position: BinlogPosition, error: CoreError },
}

/// What the assembler knows of the source, fixed while the reader runs.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// (MySQL schema, table) -> table. Rows of other tables are skipped.
    pub tables: HashMap<(String, String), ReaderTable>,
    /// DDL statements that may change these schemas are stored and raise the barrier.
    pub mapped_schemas: Vec<String>,
    pub flavor: Flavor,
    /// Default character set of each mapped schema, stored with each DDL statement.
    pub schema_charsets: Vec<(String, String)>,
    /// Whether the source writes binlog checksums (`None`: unknown), for the first rotate.
    pub crc: Option<bool>,
    /// Estimated bytes of changes (`RowChange::mem_size`) past which the transaction being
    /// read is handed over as a piece.
    pub piece_bytes: usize,
}

/// What a rows event is decoded against: its table map, the replicated table and its name,
/// and the event's end position.
pub struct RowsTarget<'a, M> {
    pub map: &'a M,
    pub table: &'a ReaderTable,
    pub name: &'a str,
    pub pos: u64,
}

/// A table id's last TABLE_MAP. Most transactions map the same tables with the same bytes
/// again: a map equal to a settled entry's is taken as it is, with no check, no copy and no
/// lookup of its table (`table_map_again`).
struct MapEntry<M> {
    map: M,
    /// The replicated table it maps to and its name (None: not replicated, or stopped).
    target: Option<(String, ReaderTable)>,
    /// The group it was last seen in.
    group: u64,
    /// Checked against its table past the table's consistent point (or it maps no replicated
    /// table): the same map needs nothing more. A table before its point, or being copied
    /// again, is looked at again on every map, as its state moves.
    settled: bool,
}

/// Map entries kept for table ids not seen in the current group, at most (table ids change
/// when the source reopens a table: after DDL or FLUSH TABLES).
const MAPS_KEPT: usize = 4096;

/// The decoding state between events. `M` is the table map a rows event needs to be decoded.
pub struct Assembler<M> {
    source: SourceContext,
    /// The GTID state after the last commit, when known.
    state: Option<GtidState>,
    file: String,
    /// End offset of the last event in `file`.
    pos: u64,
    /// Connected at a GTID, the server chooses the file (its first ROTATE says which) and
    /// skips, without sending them, the transactions we have: the offset is known from the
    /// first event group it sends.
    position_known: bool,
    /// Inside a BEGIN ... COMMIT group, or a MariaDB group announced as not standalone.
    in_txn: bool,
    /// The GTID of the current event group.
    gtid: Option<Gtid>,
    /// Latest event time of the current group.
    txn_time: u32,
    /// Table maps by table id, kept across groups (`MapEntry`): a rows event uses only one
    /// seen in its own group.
    maps: HashMap<u64, MapEntry<M>>,
    /// The number of the current event group (a map entry's `group` says where it was seen).
    group: u64,
    changes: Vec<RowChange>,
    discarded: Vec<DiscardedRow>,
    /// Estimated bytes of `changes` and `discarded`.
    held_bytes: usize,
    /// Pieces of the current group already handed over.
    pieces: u32,
    /// Replicated tables the current group has rows or discarded rows for (also those in
    /// pieces already handed over).
    touched: HashSet<i32>,
    /// A DDL statement that may change replicated tables was stored: stop after its commit.
    barrier: bool,
    /// The group began with XA START (an XA transaction's first phase), with the xid it names
    /// when readable.
    xa_start: Option<Option<Xid>>,
    /// Until the first format description, the driver cannot strip checksums.
    before_format: bool,
    /// Unknown event types already noted.
    noted: HashSet<u8>,
}

impl<M> Assembler<M> {
    /// Starts at `start` (file and offset), or, `by_gtid`, where the server's first events say.
    pub fn new(source: SourceContext, start: Option<&BinlogPosition>, by_gtid: bool, state: Option<GtidState>) -> Self {
        Assembler {
            source,
            state,
            file: start.map(|p| p.file.clone()).unwrap_or_default(),
            pos: start.map_or(4, |p| p.pos),
            position_known: !by_gtid,
            in_txn: false,
            gtid: None,
            txn_time: 0,
            maps: HashMap::new(),
            group: 0,
            changes: Vec::new(),
            discarded: Vec::new(),
            held_bytes: 0,
            pieces: 0,
            touched: HashSet::new(),
            barrier: false,
            xa_start: None,
            before_format: true,
            noted: HashSet::new(),
        }
    }

    /// The current position as `file:pos`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.pos)
    }

    /// Every event first: its end offset becomes the position (except for rotate and heartbeat
    /// events, and artificial events with none), its time counts for the group's; an event
    /// whose rows we cannot see is an error.
    pub fn start_event(&mut self, etype: u8, log_pos: u32, timestamp: u32) -> CoreResult<()> {
        if etype != ROTATE_EVENT && etype != HEARTBEAT_EVENT && log_pos > 0 {
            self.pos = log_pos as u64;
        }
        self.txn_time = self.txn_time.max(timestamp);
        match unreadable_event(etype) {
            Some(why) => Err(CoreError::source_config(format!("the binlog at {} holds {why}", self.at()))),
            None => Ok(()),
        }
    }

    /// ROTATE: the next file (`name_raw` as the event holds it) and offset.
    pub fn rotate(&mut self, name_raw: &[u8], position: u64) -> Step {
        // MySQL checksums its artificial first ROTATE only for a replica that declared CRC32 in
        // @master_binlog_checksum; the driver declares 'ALL', which MySQL's Binlog_sender does
        // not recognise (event_checksum_on() is false until the format description): no CRC
        // bytes there. MariaDB checksums it whenever the replica declared anything.
        let crc = match self.source.flavor {
            Flavor::MySql => Some(false),
            Flavor::MariaDb => self.source.crc,
        };
        self.file = rotate_target(name_raw, &self.file, self.before_format, crc);
        self.pos = position;
        Step::Nothing
    }

    /// FORMAT_DESCRIPTION: from now on the driver strips checksums. One arriving inside an
    /// event group starts a new binlog file before the group's commit: the source restarted
    /// while writing it (its tail was never committed, as a MySQL replica concludes too), so
    /// the group is abandoned, with the pieces already handed over.
    pub fn format_description(&mut self) -> Step {
        self.before_format = false;
        if !self.in_group() {
            return Step::Nothing;
        }
        let what = format!(
            "a transaction cut off by a new binlog file at {} (the source restarted before its commit) was discarded: \
             {} row changes, {} pieces already stored",
            self.at(),
            self.changes.len(),
            self.pieces
        );
        self.end_group();
        self.changes.clear();
        self.discarded.clear();
        Step::Abandon(what)
    }

    /// Inside an event group: something of it was read and its end was not.
    fn in_group(&self) -> bool {
        self.in_txn || self.gtid.is_some() || !self.changes.is_empty() || !self.discarded.is_empty() || self.pieces > 0
    }

    /// Forgets the current group's state (after its commit, or when it is abandoned).
    fn end_group(&mut self) {
        self.gtid = None;
        self.in_txn = false;
        self.txn_time = 0;
        self.group += 1;
        if self.maps.len() > MAPS_KEPT {
            self.maps.clear();
        }
        self.held_bytes = 0;
        self.pieces = 0;
        self.touched.clear();
        self.barrier = false;
        self.xa_start = None;
    }

    /// HEARTBEAT: the source has nothing more; the position is safe to resume at only
    /// between event groups.
    pub fn heartbeat(&self) -> Step {
        let between_groups = self.position_known && !self.in_group();
        Step::Heartbeat(between_groups.then(|| BinlogPosition::new(self.file.clone(), self.pos)))
    }

    /// MariaDB GTID (raw payload): starts an event group; a standalone one (DDL) has no BEGIN
    /// and ends with its one query.
    pub fn mariadb_gtid(&mut self, data: &[u8], server_id: u32) -> CoreResult<Step> {
        let (g, standalone) = decode_mariadb_gtid(data, server_id)
            .ok_or_else(|| CoreError::binlog(format!("truncated MariaDB GTID event at {}", self.at())))?;
        self.gtid = Some(g);
        self.position_known = true;
        self.in_txn = !standalone;
        Ok(Step::Nothing)
    }

    /// MySQL GTID or tagged GTID (`None`: the driver could not decode it).
    pub fn mysql_gtid(&mut self, gtid: Option<Gtid>) -> CoreResult<Step> {
        let g = gtid.ok_or_else(|| CoreError::binlog(format!("undecodable GTID event at {}", self.at())))?;
        self.gtid = Some(g);
        self.position_known = true;
        Ok(Step::Nothing)
    }

    /// MySQL anonymous GTID (gtid_mode OFF): an event group starts, its position is known.
    pub fn anonymous_gtid(&mut self) -> Step {
        self.position_known = true;
        Step::Nothing
    }

    /// QUERY: BEGIN opens a group, XA START an XA transaction's group; COMMIT
    /// (non-transactional engines), ROLLBACK of a mixed transaction, or a standalone statement
    /// (DDL) end it; XA COMMIT / XA ROLLBACK alone in their group are the outcome of a
    /// prepared XA transaction. A DDL statement that may change mapped schemas is stored in
    /// stream order and raises the barrier.
    pub fn query(&mut self, query: &str, schema: &str, timestamp: u32) -> CoreResult<Step> {
        let q = query.trim();
        if q.eq_ignore_ascii_case("BEGIN") {
            self.in_txn = true;
            return Ok(Step::Nothing);
        }
        if starts_with_words(q, &["XA", "START"]) || starts_with_words(q, &["XA", "BEGIN"]) {
            self.in_txn = true;
            self.xa_start = Some(xa::statement_xid(q).map(|x| x.1));
            return Ok(Step::Nothing);
        }
        let xa_end = starts_with_words(q, &["XA", "COMMIT"]) || starts_with_words(q, &["XA", "ROLLBACK"]);
        // XA COMMIT / XA ROLLBACK of a prepared transaction are event groups of their own;
        // inside the group of an XA START (ONE PHASE, or the rollback of one never prepared)
        // they end it as COMMIT and ROLLBACK do
        if xa_end && self.xa_start.is_none() && !self.holds_rows() {
            return self.xa_outcome(q);
        }
        let end = q.eq_ignore_ascii_case("COMMIT") || q.eq_ignore_ascii_case("ROLLBACK") || xa_end;
        let replicated = |s: &str, t: &str| self.source.tables.contains_key(&(s.to_string(), t.to_string()));
        if let Some((s, t)) = ddl::logged_dml_target(q, schema, &replicated) {
            return Err(self.statement_logged_change(q, &s, &t));
        }
        let mapped = |s: &str| self.source.mapped_schemas.iter().any(|m| m == s);
        if !end && ddl::may_affect(q, schema, &mapped) {
            let ev = DdlEvent {
                query: q.to_string(),
                default_schema: schema.to_string(),
                mysql: self.source.flavor == Flavor::MySql,
                schema_charsets: self.source.schema_charsets.clone(),
                with_rows: self.in_txn,
            };
            let change =
                RowChange { table_id: 0, op: Op::Ddl, pos: self.pos, timestamp, key: None, row: Some(ev.to_row()) };
            self.held_bytes += change.mem_size();
            self.changes.push(change);
            self.barrier = true;
        }
        if end || !self.in_txn {
            self.commit()
        } else {
            Ok(Step::Nothing)
        }
    }

    /// A change to a replicated table logged as a statement (binlog_format STATEMENT or
    /// MIXED): it has no rows to apply, and skipping it would lose it, so the reader stops here.
    fn statement_logged_change(&self, query: &str, schema: &str, table: &str) -> CoreError {
        let line = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = match line.char_indices().nth(200) {
            Some((i, _)) => format!("{}...", &line[..i]),
            None => line,
        };
        CoreError::source_config(format!(
            "the binlog at {} holds a change to the replicated table {schema}.{table} logged as a statement \
             (binlog_format STATEMENT or MIXED), not as rows: {shown}",
            self.at()
        ))
        .with_detail("the replica applies row events only; this change was not applied and the source stops here")
        .with_hint(
            "set binlog_format = ROW on the source (SET GLOBAL binlog_format = 'ROW', and no session may set \
             another), then copy the source again with init_replica (or the tables this statement changed with \
             sync_tables after skipping past it)",
        )
    }

    /// Whether the current group holds rows, discarded rows or pieces handed over.
    fn holds_rows(&self) -> bool {
        !self.changes.is_empty() || !self.discarded.is_empty() || self.pieces > 0
    }

    /// XA_PREPARE (raw payload): the first phase of an XA transaction ends its event group.
    /// Its rows count only if a later XA COMMIT says so, after other transactions: the group
    /// is handed over as prepared, with its xid (from the event, or from the group's XA
    /// START). `XA COMMIT ... ONE PHASE` (MySQL writes it as this event) is an ordinary commit.
    pub fn xa_prepare(&mut self, data: &[u8]) -> CoreResult<Step> {
        let decoded = xa::decode_prepare_event(data);
        if let Some((true, _)) = decoded {
            return self.commit();
        }
        let xid = decoded.map(|d| d.1).or_else(|| self.xa_start.clone().flatten()).ok_or_else(|| {
            CoreError::binlog(format!("at {}: an XA PREPARE event whose xid cannot be read", self.at()))
        })?;
        if self.barrier {
            return Err(CoreError::binlog(format!(
                "at {}: the XA transaction {xid} holds a DDL statement of a mapped schema",
                self.at()
            )));
        }
        let (txn, _) = self.finish_group()?;
        Ok(Step::Xa { txn, xa: XaEvent { xid, phase: XaPhase::Prepare } })
    }

    /// XA COMMIT / XA ROLLBACK of a prepared XA transaction: the group of that statement alone
    /// ends, naming the xid.
    fn xa_outcome(&mut self, q: &str) -> CoreResult<Step> {
        let phase = if starts_with_words(q, &["XA", "COMMIT"]) { XaPhase::Commit } else { XaPhase::Rollback };
        let xid = xa::statement_xid(q).map(|x| x.1).ok_or_else(|| {
            CoreError::binlog(format!("at {}: an XA statement whose xid cannot be read: {q}", self.at()))
        })?;
        let (txn, _) = self.finish_group()?;
        Ok(Step::Xa { txn, xa: XaEvent { xid, phase } })
    }

    /// TABLE_MAP: remembers the map of `table_id` for the group's rows events, with the
    /// replicated table `key` (schema, table) names, if it names one.
    pub fn table_map(&mut self, table_id: u64, key: (String, String), map: M) -> Step {
        self.table_map_checked(table_id, key, map, |_, _, _, _| Ok(()))
    }

    /// TABLE_MAP seen before: when the last map of `table_id` is settled and `same` says the
    /// new one equals it, it serves this group as it is and true is returned; else the caller
    /// goes on with `table_map_checked`.
    pub fn table_map_again<F: FnOnce(&M) -> bool>(&mut self, table_id: u64, same: F) -> bool {
        match self.maps.get_mut(&table_id) {
            Some(entry) if entry.settled && same(&entry.map) => {
                entry.group = self.group;
                true
            }
            _ => false,
        }
    }

    /// TABLE_MAP, with `check` (given the map, the replicated table, its name and the
    /// position) saying whether the map agrees with the table's definition. When it does not,
    /// the table is no longer replicated by this reader (its rows are skipped) and the step
    /// says to stop it with the error.
    pub fn table_map_checked<C>(&mut self, table_id: u64, key: (String, String), map: M, check: C) -> Step
    where
        C: FnOnce(&M, &ReaderTable, &str, &str) -> CoreResult<()>,
    {
        let name = format!("{}.{}", key.0, key.1);
        // a table map at or before the table's consistent point describes rows that are in its
        // copy (maybe with the columns it had before a DDL statement), and one of a table being
        // copied again rows that will not be applied: nothing to check
        let verdict = self
            .source
            .tables
            .get(&key)
            .filter(|t| !t.awaiting_copy)
            .filter(|t| self.xa_start.is_some() || after_consistent_point(&self.file, self.pos, t.point.as_ref()))
            .map(|t| check(&map, t, &name, &self.at()));
        let group = self.group;
        match verdict {
            Some(Err(error)) => {
                let stopped = self.source.tables.remove(&key).map(|t| t.id);
                self.maps.insert(table_id, MapEntry { map, target: None, group, settled: true });
                match stopped {
                    Some(table_id) => {
                        let position = BinlogPosition::new(self.file.clone(), self.pos);
                        Step::TableStopped { table_id, position, error }
                    }
                    None => Step::Nothing,
                }
            }
            verdict => {
                let target = self.source.tables.get(&key).map(|t| (name, t.clone()));
                let settled = target.is_none() || verdict.is_some();
                self.maps.insert(table_id, MapEntry { map, target, group, settled });
                Step::Nothing
            }
        }
    }

    /// WRITE/UPDATE/DELETE_ROWS: `decode` turns the event's rows into changes and discarded
    /// rows, given what they are decoded against; only called for a replicated table past its
    /// consistent point. Its errors are given the position.
    pub fn rows<F>(&mut self, table_id: u64, decode: F) -> CoreResult<Step>
    where
        F: FnOnce(&RowsTarget<'_, M>, &mut Vec<RowChange>, &mut Vec<DiscardedRow>) -> CoreResult<()>,
    {
        let Some(MapEntry { map, target: Some((name, table)), .. }) =
            self.maps.get(&table_id).filter(|e| e.group == self.group)
        else {
            return Ok(Step::Nothing);
        };
        // an XA transaction's rows count at its XA COMMIT, not here: its position is the one
        // compared with the table's consistent point (when replay applies them)
        if self.xa_start.is_none() && !after_consistent_point(&self.file, self.pos, table.point.as_ref()) {
            return Ok(Step::Nothing);
        }
        let target = RowsTarget { map, table, name, pos: self.pos };
        let at = || format!("at {}:{}", self.file, self.pos);
        let (changes_before, discarded_before) = (self.changes.len(), self.discarded.len());
        decode(&target, &mut self.changes, &mut self.discarded).map_err(|e| e.context(at()))?;
        let added = changes_mem_size(&self.changes[changes_before..], &self.discarded[discarded_before..]);
        if added > 0 {
            self.touched.insert(table.id);
            self.held_bytes += added;
        }
        if self.held_bytes >= self.source.piece_bytes && !self.changes.is_empty() {
            return Ok(Step::Piece(self.take_piece()));
        }
        Ok(Step::Nothing)
    }

    /// Hands over what the group holds so far, as a piece of its transaction.
    fn take_piece(&mut self) -> TransactionPiece {
        self.pieces += 1;
        self.held_bytes = 0;
        TransactionPiece {
            file: self.file.clone(),
            changes: std::mem::take(&mut self.changes),
            discarded: std::mem::take(&mut self.discarded),
            last: BinlogPosition::new(self.file.clone(), self.pos),
            timestamp: self.txn_time,
        }
    }

    /// XID: the transaction commits.
    pub fn xid(&mut self) -> CoreResult<Step> {
        self.commit()
    }

    /// INCIDENT: changes may be missing from the binlog; always an error.
    pub fn incident(&self) -> CoreResult<Step> {
        Err(CoreError::source_config(format!("the source wrote an INCIDENT event at {}", self.at()))
            .with_detail("changes may be missing from its binlog (a replica of MySQL stops here too)")
            .with_hint("resync the source with init_replica"))
    }

    /// Any other event: those that carry nothing we store are skipped; an unknown type is
    /// skipped too, and said once per type.
    pub fn other(&mut self, etype: u8) -> Step {
        if !IGNORED_EVENTS.contains(&etype) && self.noted.insert(etype) {
            Step::Note(format!("skipped a binlog event of unknown type {etype} at {}", self.at()))
        } else {
            Step::Nothing
        }
    }

    /// Ends the event group: the GTID state moves past it, and the transaction ends at the
    /// current position.
    fn commit(&mut self) -> CoreResult<Step> {
        let (txn, barrier) = self.finish_group()?;
        Ok(Step::Transaction { txn, barrier })
    }

    /// Ends the event group: the transaction it makes, and whether a barrier was raised.
    fn finish_group(&mut self) -> CoreResult<(SourceTransaction, bool)> {
        if let (Some(g), Some(st)) = (self.gtid.as_ref(), self.state.as_mut()) {
            st.apply(g).map_err(|e| e.context(format!("at {}:{}", self.file, self.pos)))?;
        }
        self.position_known = true;
        let txn = SourceTransaction {
            file: self.file.clone(),
            changes: std::mem::take(&mut self.changes),
            discarded: std::mem::take(&mut self.discarded),
            end: BinlogPosition::new(self.file.clone(), self.pos),
            gtid: self.state.as_ref().map(ToString::to_string).filter(|g| !g.is_empty()),
            timestamp: self.txn_time,
        };
        let barrier = self.barrier;
        self.end_group();
        Ok((txn, barrier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "mysql-bin.000001";
    const WRITE_ROWS_V2: u8 = 30;

    fn table(id: i32) -> ReaderTable {
        ReaderTable { id, kinds: vec![], names: vec![], key: vec![], skip: vec![], point: None, awaiting_copy: false }
    }

    fn source() -> SourceContext {
        let mut tables = HashMap::new();
        tables.insert(("shop".to_string(), "t".to_string()), table(7));
        SourceContext {
            tables,
            mapped_schemas: vec!["shop".into()],
            flavor: Flavor::MariaDb,
            schema_charsets: vec![("shop".into(), "utf8mb4".into())],
            crc: Some(true),
            piece_bytes: usize::MAX,
        }
    }

    /// At mysql-bin.000001:4, past the format description.
    fn assembler(state: Option<GtidState>) -> Assembler<()> {
        let mut asm = Assembler::new(source(), Some(&BinlogPosition::new(FILE, 4)), false, state);
        asm.format_description();
        asm
    }

    /// An assembler (no format description yet) whose table `shop.t` has its consistent point
    /// at `point`.
    fn assembler_with_point(point: u64) -> Assembler<()> {
        let mut src = source();
        src.tables.get_mut(&("shop".to_string(), "t".to_string())).unwrap().point =
            Some(BinlogPosition::new(FILE, point));
        Assembler::new(src, Some(&BinlogPosition::new(FILE, 4)), false, None)
    }

    fn ok(r: CoreResult<()>) {
        assert_eq!(r, Ok(()));
    }

    fn begin(asm: &mut Assembler<()>, log_pos: u32) {
        ok(asm.start_event(QUERY_EVENT, log_pos, 100));
        assert_eq!(asm.query("BEGIN", "shop", 100), Ok(Step::Nothing));
    }

    fn map(asm: &mut Assembler<()>, log_pos: u32, table_id: u64, schema: &str, name: &str) {
        ok(asm.start_event(TABLE_MAP_EVENT, log_pos, 100));
        assert_eq!(asm.table_map(table_id, (schema.into(), name.into()), ()), Step::Nothing);
    }

    /// A rows event whose one row decodes to an insert of `value`; `decoded` says whether the
    /// decoder was asked.
    fn rows(asm: &mut Assembler<()>, log_pos: u32, table_id: u64, value: &str) -> bool {
        ok(asm.start_event(WRITE_ROWS_V2, log_pos, 101));
        let mut decoded = false;
        let step = asm.rows(table_id, |t, out, _| {
            decoded = true;
            out.push(insert(t.table.id, t.pos, value));
            Ok(())
        });
        assert_eq!(step, Ok(Step::Nothing));
        decoded
    }

    fn insert(table_id: i32, pos: u64, value: &str) -> RowChange {
        RowChange { table_id, op: Op::Insert, pos, timestamp: 101, key: None, row: Some(vec![Some(value.into())]) }
    }

    fn xid_event(asm: &mut Assembler<()>, log_pos: u32) -> Step {
        ok(asm.start_event(XID_EVENT, log_pos, 102));
        asm.xid().unwrap()
    }

    fn committed(step: Step) -> (SourceTransaction, bool) {
        match step {
            Step::Transaction { txn, barrier } => (txn, barrier),
            other => panic!("expected a transaction, got {other:?}"),
        }
    }

    fn heartbeat(asm: &mut Assembler<()>) -> Option<BinlogPosition> {
        // a heartbeat's log_pos is the server's, not an event end: it must not move the position
        ok(asm.start_event(HEARTBEAT_EVENT, 99_999, 0));
        match asm.heartbeat() {
            Step::Heartbeat(p) => p,
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }

    fn gtid_payload(seq: u64, domain: u32, standalone: bool) -> Vec<u8> {
        let mut data = seq.to_le_bytes().to_vec();
        data.extend_from_slice(&domain.to_le_bytes());
        data.push(u8::from(standalone));
        data
    }

    #[test]
    fn a_transaction_commits_at_its_xid() {
        let mut asm = assembler(None);
        begin(&mut asm, 100);
        map(&mut asm, 150, 5, "shop", "t");
        assert!(rows(&mut asm, 200, 5, "a"));
        assert!(rows(&mut asm, 260, 5, "b"));
        let (txn, barrier) = committed(xid_event(&mut asm, 291));
        assert!(!barrier);
        assert_eq!(
            txn,
            SourceTransaction {
                file: FILE.into(),
                changes: vec![insert(7, 200, "a"), insert(7, 260, "b")],
                discarded: vec![],
                end: BinlogPosition::new(FILE, 291),
                gtid: None,
                timestamp: 102,
            }
        );
        // the table maps belong to the transaction: a rows event after it without its own map
        // is not decoded
        assert!(!rows(&mut asm, 350, 5, "c"));
        assert!(committed(xid_event(&mut asm, 381)).0.changes.is_empty());
    }

    #[test]
    fn rollback_and_commit_queries_end_the_group() {
        // ROLLBACK of a mixed transaction: the non-transactional changes it logged did happen,
        // so the group ends with them (as COMMIT does for non-transactional engines)
        for end in ["ROLLBACK", "COMMIT"] {
            let mut asm = assembler(None);
            begin(&mut asm, 100);
            map(&mut asm, 150, 5, "shop", "t");
            assert!(rows(&mut asm, 200, 5, "a"));
            ok(asm.start_event(QUERY_EVENT, 250, 103));
            let (txn, barrier) = committed(asm.query(end, "shop", 103).unwrap());
            assert!(!barrier);
            assert_eq!(txn.changes, vec![insert(7, 200, "a")]);
            assert_eq!(txn.end, BinlogPosition::new(FILE, 250));
            assert_eq!(txn.timestamp, 103);
            // the next group starts empty
            assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 250)));
        }
    }

    /// An assembler that hands over a piece once the group holds `rows` inserts of one letter.
    fn piecewise(rows: usize, state: Option<GtidState>) -> Assembler<()> {
        let mut src = source();
        src.piece_bytes = rows * insert(7, 0, "a").mem_size();
        let mut asm = Assembler::new(src, Some(&BinlogPosition::new(FILE, 4)), false, state);
        asm.format_description();
        asm
    }

    /// A rows event of one insert of `value`; returns the step.
    fn rows_step(asm: &mut Assembler<()>, log_pos: u32, table_id: u64, value: &str) -> Step {
        ok(asm.start_event(WRITE_ROWS_V2, log_pos, 101));
        asm.rows(table_id, |t, out, _| {
            out.push(insert(t.table.id, t.pos, value));
            Ok(())
        })
        .unwrap()
    }

    fn piece(step: Step) -> TransactionPiece {
        match step {
            Step::Piece(p) => p,
            other => panic!("expected a piece, got {other:?}"),
        }
    }

    #[test]
    fn a_large_transaction_is_handed_over_in_pieces_then_its_commit() {
        let state = GtidState::parse("0-1-41").unwrap();
        let mut asm = piecewise(2, Some(state));
        ok(asm.start_event(MARIADB_GTID_EVENT, 50, 0));
        asm.mariadb_gtid(&gtid_payload(42, 0, false), 1).unwrap();
        begin(&mut asm, 100);
        map(&mut asm, 150, 5, "shop", "t");
        assert_eq!(rows_step(&mut asm, 200, 5, "a"), Step::Nothing);
        let first = piece(rows_step(&mut asm, 250, 5, "b"));
        assert_eq!(first.changes, vec![insert(7, 200, "a"), insert(7, 250, "b")]);
        assert_eq!(first.last, BinlogPosition::new(FILE, 250));
        assert_eq!(first.file, FILE);
        // inside the group after a piece: no position to resume at
        assert_eq!(heartbeat(&mut asm), None);
        assert_eq!(rows_step(&mut asm, 300, 5, "c"), Step::Nothing);
        let second = piece(rows_step(&mut asm, 350, 5, "d"));
        assert_eq!(second.changes, vec![insert(7, 300, "c"), insert(7, 350, "d")]);
        assert_eq!(rows_step(&mut asm, 400, 5, "e"), Step::Nothing);
        // the commit carries the rest, the position after it and the GTID state it reaches
        let (txn, barrier) = committed(xid_event(&mut asm, 431));
        assert!(!barrier);
        assert_eq!(txn.changes, vec![insert(7, 400, "e")]);
        assert_eq!(txn.end, BinlogPosition::new(FILE, 431));
        assert_eq!(txn.gtid.as_deref(), Some("0-1-42"));
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 431)));
        // the next transaction starts counting afresh: one row stays whole
        begin(&mut asm, 500);
        map(&mut asm, 550, 5, "shop", "t");
        assert_eq!(rows_step(&mut asm, 600, 5, "f"), Step::Nothing);
        assert_eq!(committed(xid_event(&mut asm, 631)).0.changes, vec![insert(7, 600, "f")]);
        // a transaction that fills exactly its pieces commits with no changes of its own
        begin(&mut asm, 700);
        map(&mut asm, 750, 5, "shop", "t");
        assert_eq!(rows_step(&mut asm, 800, 5, "g"), Step::Nothing);
        piece(rows_step(&mut asm, 850, 5, "h"));
        let (txn, _) = committed(xid_event(&mut asm, 881));
        assert!(txn.changes.is_empty());
        assert_eq!(txn.end, BinlogPosition::new(FILE, 881));
    }

    #[test]
    fn a_group_cut_by_a_new_binlog_file_is_abandoned() {
        let state = GtidState::parse("0-1-41").unwrap();
        let mut asm = piecewise(2, Some(state));
        ok(asm.start_event(MARIADB_GTID_EVENT, 50, 0));
        asm.mariadb_gtid(&gtid_payload(42, 0, false), 1).unwrap();
        begin(&mut asm, 100);
        map(&mut asm, 150, 5, "shop", "t");
        assert_eq!(rows_step(&mut asm, 200, 5, "a"), Step::Nothing);
        piece(rows_step(&mut asm, 250, 5, "b"));
        assert_eq!(rows_step(&mut asm, 300, 5, "c"), Step::Nothing);
        // the source restarted while writing it: its next file begins before the commit
        ok(asm.start_event(ROTATE_EVENT, 0, 0));
        asm.rotate(b"mysql-bin.000002", 4);
        ok(asm.start_event(FORMAT_DESCRIPTION_EVENT, 256, 0));
        match asm.format_description() {
            Step::Abandon(what) => {
                assert!(what.contains("mysql-bin.000002:256") && what.contains("1 pieces"), "{what}")
            }
            other => panic!("expected the group to be abandoned, got {other:?}"),
        }
        // nothing of it remains: the next group is whole, its GTID follows the last committed
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new("mysql-bin.000002", 256)));
        ok(asm.start_event(MARIADB_GTID_EVENT, 300, 0));
        asm.mariadb_gtid(&gtid_payload(43, 0, false), 1).unwrap();
        begin(&mut asm, 350);
        assert_eq!(rows_step(&mut asm, 400, 5, "x"), Step::Nothing, "its table map went with it");
        map(&mut asm, 450, 5, "shop", "t");
        assert_eq!(rows_step(&mut asm, 500, 5, "y"), Step::Nothing);
        let (txn, _) = committed(xid_event(&mut asm, 531));
        assert_eq!(txn.changes, vec![insert(7, 500, "y")]);
        assert_eq!(txn.gtid.as_deref(), Some("0-1-43"));
        // a format description between groups (a file switch) abandons nothing
        ok(asm.start_event(FORMAT_DESCRIPTION_EVENT, 256, 0));
        assert_eq!(asm.format_description(), Step::Nothing);
    }

    #[test]
    fn a_prepared_xa_transaction_whose_rows_went_in_pieces_ends_as_prepared() {
        let mut asm = piecewise(1, None);
        xa_start(&mut asm, 100, "X'61',X'',1");
        map(&mut asm, 150, 5, "shop", "t");
        let first = piece(rows_step(&mut asm, 200, 5, "a"));
        assert_eq!(first.changes, vec![insert(7, 200, "a")]);
        piece(rows_step(&mut asm, 250, 5, "b"));
        ok(asm.start_event(XA_PREPARE_EVENT, 300, 0));
        let (txn, xa) = xa_step(asm.xa_prepare(&prepare_payload(b"a", false)).unwrap());
        // the pieces were handed over; the prepare ends the group with the rest (none here)
        assert_eq!(xa, XaEvent { xid: xid("a"), phase: XaPhase::Prepare });
        assert!(txn.changes.is_empty());
        assert_eq!(txn.end, BinlogPosition::new(FILE, 300));
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 300)));
    }

    #[test]
    fn heartbeats_carry_a_position_only_between_groups() {
        let mut asm = assembler(None);
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 4)));
        begin(&mut asm, 100);
        assert_eq!(heartbeat(&mut asm), None);
        map(&mut asm, 150, 5, "shop", "t");
        rows(&mut asm, 200, 5, "a");
        assert_eq!(heartbeat(&mut asm), None);
        committed(xid_event(&mut asm, 231));
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 231)));
        // an event of no interest between groups moves the position
        ok(asm.start_event(29, 260, 0));
        assert_eq!(asm.other(29), Step::Nothing);
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 260)));
        // a GTID announces a group
        ok(asm.start_event(MARIADB_GTID_EVENT, 300, 0));
        asm.mariadb_gtid(&gtid_payload(9, 0, false), 1).unwrap();
        assert_eq!(heartbeat(&mut asm), None);
    }

    #[test]
    fn connected_at_a_gtid_the_position_is_unknown_until_a_group() {
        let mut asm: Assembler<()> = Assembler::new(source(), None, true, None);
        assert_eq!(asm.rotate(b"mysql-bin.000003\x01\x02\x03\x04", 4), Step::Nothing);
        assert_eq!(heartbeat(&mut asm), None);
        asm.format_description();
        ok(asm.start_event(MYSQL_ANONYMOUS_GTID_EVENT, 500, 0));
        assert_eq!(asm.anonymous_gtid(), Step::Nothing);
        begin(&mut asm, 560);
        let (txn, _) = committed(xid_event(&mut asm, 600));
        assert_eq!(txn.end, BinlogPosition::new("mysql-bin.000003", 600));
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new("mysql-bin.000003", 600)));
    }

    #[test]
    fn rotate_changes_the_file() {
        let mut asm = assembler(None);
        // a rotate's log_pos is not an offset in the file it names
        ok(asm.start_event(ROTATE_EVENT, 777, 0));
        assert_eq!(asm.rotate(b"mysql-bin.000002", 4), Step::Nothing);
        assert_eq!(asm.at(), "mysql-bin.000002:4");
        begin(&mut asm, 120);
        let (txn, _) = committed(xid_event(&mut asm, 151));
        assert_eq!(txn.file, "mysql-bin.000002");
        assert_eq!(txn.end, BinlogPosition::new("mysql-bin.000002", 151));
        // before the format description, the checksum bytes are cut (crc known: exactly 4)
        let mut first: Assembler<()> = Assembler::new(source(), Some(&BinlogPosition::new(FILE, 4)), false, None);
        first.rotate(b"mysql-bin.000001a1Zx", 4);
        assert_eq!(first.at(), "mysql-bin.000001:4");
        // MySQL sends it without a checksum to the driver's @master_binlog_checksum='ALL',
        // whatever binlog_checksum is: the name is whole (it was cut to "binlog.0" before)
        let mysql = SourceContext { flavor: Flavor::MySql, ..source() };
        let mut first: Assembler<()> = Assembler::new(mysql, None, true, None);
        first.rotate(b"binlog.000001", 4);
        assert_eq!(first.at(), "binlog.000001:4");
    }

    #[test]
    fn a_standalone_mariadb_group_is_its_ddl_statement() {
        let state = GtidState::parse("0-1-41").unwrap();
        let mut asm = assembler(Some(state));
        ok(asm.start_event(MARIADB_GTID_EVENT, 300, 50));
        assert_eq!(asm.mariadb_gtid(&gtid_payload(42, 0, true), 1), Ok(Step::Nothing));
        ok(asm.start_event(QUERY_EVENT, 420, 51));
        let (txn, barrier) = committed(asm.query("ALTER TABLE t ADD COLUMN b int", "shop", 51).unwrap());
        assert!(barrier, "a DDL statement on a mapped schema raises the barrier");
        assert_eq!(txn.gtid.as_deref(), Some("0-1-42"));
        assert_eq!(txn.end, BinlogPosition::new(FILE, 420));
        assert_eq!(txn.timestamp, 51);
        let ddl = DdlEvent {
            query: "ALTER TABLE t ADD COLUMN b int".into(),
            default_schema: "shop".into(),
            mysql: false,
            schema_charsets: vec![("shop".into(), "utf8mb4".into())],
            with_rows: false,
        };
        assert_eq!(
            txn.changes,
            vec![RowChange { table_id: 0, op: Op::Ddl, pos: 420, timestamp: 51, key: None, row: Some(ddl.to_row()) }]
        );
    }

    #[test]
    fn ddl_inside_a_group_comes_with_rows_and_in_stream_order() {
        // MariaDB logs CREATE TABLE ... SELECT as one (not standalone) group: the statement, then rows
        let mut asm = assembler(None);
        ok(asm.start_event(MARIADB_GTID_EVENT, 300, 0));
        asm.mariadb_gtid(&gtid_payload(43, 0, false), 1).unwrap();
        begin(&mut asm, 340);
        map(&mut asm, 380, 5, "shop", "t");
        rows(&mut asm, 420, 5, "a");
        ok(asm.start_event(QUERY_EVENT, 500, 0));
        assert_eq!(asm.query("CREATE TABLE shop.c SELECT * FROM shop.t", "", 0), Ok(Step::Nothing));
        let (txn, barrier) = committed(xid_event(&mut asm, 530));
        assert!(barrier);
        assert_eq!(txn.changes.len(), 2);
        assert_eq!(txn.changes[0], insert(7, 420, "a"));
        assert_eq!(txn.changes[1].op, Op::Ddl);
        assert_eq!(txn.changes[1].pos, 500);
        let row = txn.changes[1].row.clone().unwrap();
        assert_eq!(row[4].as_deref(), Some("rows"));
    }

    #[test]
    fn ddl_outside_the_mapped_schemas_is_a_plain_group() {
        let mut asm = assembler(None);
        ok(asm.start_event(QUERY_EVENT, 200, 0));
        let (txn, barrier) = committed(asm.query("CREATE TABLE x (a int)", "other", 0).unwrap());
        assert!(!barrier);
        assert!(txn.changes.is_empty());
        assert_eq!(txn.end, BinlogPosition::new(FILE, 200));
    }

    #[test]
    fn mysql_gtids_move_the_gtid_state() {
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut asm = assembler(Some(GtidState::parse(&format!("{uuid}:1-5")).unwrap()));
        ok(asm.start_event(MYSQL_GTID_EVENT, 100, 0));
        let g = Gtid::MySql { sid: uuid.into(), gno: 6 };
        assert_eq!(asm.mysql_gtid(Some(g)), Ok(Step::Nothing));
        begin(&mut asm, 150);
        let (txn, _) = committed(xid_event(&mut asm, 180));
        assert_eq!(txn.gtid, Some(format!("{uuid}:1-6")));
        // a GTID the driver could not decode stops the reader, naming where
        ok(asm.start_event(MYSQL_GTID_EVENT, 250, 0));
        let err = asm.mysql_gtid(None).unwrap_err();
        assert!(err.message().contains("mysql-bin.000001:250"), "{err:?}");
    }

    #[test]
    fn statement_logged_changes_to_replicated_tables_stop_the_reader() {
        let mut asm = assembler(None);
        begin(&mut asm, 100);
        let e = match asm.query("INSERT INTO t VALUES (1)", "shop", 0) {
            Err(e) => e,
            Ok(_) => panic!("a statement-logged insert was skipped"),
        };
        assert!(e.to_string().contains("shop.t") && e.to_string().contains(&format!("{FILE}:100")), "{e}");
        assert!(e.hint().unwrap_or_default().contains("binlog_format = ROW"));
        for (q, schema) in [
            ("UPDATE other.t SET a = 1", "x"),
            ("/* c */ DELETE FROM `shop`.`t` WHERE id = 1", "x"),
            ("REPLACE INTO shop . t VALUES (1)", ""),
            ("update t2, t set t.a = 1", "shop"),
        ] {
            let mut asm = assembler(None);
            let stops = asm.query(q, schema, 0).is_err();
            assert_eq!(stops, !q.starts_with("UPDATE other"), "{q}");
        }
        // harmless statements, and changes to tables that are not replicated, pass
        for q in [
            "BEGIN",
            "SAVEPOINT s1",
            "ROLLBACK TO SAVEPOINT s1",
            "XA END 'x'",
            "SET @t = 1",
            "INSERT INTO unmapped VALUES (1)",
            "insert into other.t values (1)",
            "COMMIT",
        ] {
            let mut asm = assembler(None);
            assert!(asm.query(q, "shop", 0).is_ok(), "{q}");
        }
    }

    fn xid(gtrid: &str) -> Xid {
        Xid { format_id: 1, gtrid: gtrid.as_bytes().to_vec(), bqual: vec![] }
    }

    /// An XA_PREPARE_LOG_EVENT payload.
    fn prepare_payload(gtrid: &[u8], one_phase: bool) -> Vec<u8> {
        let mut data = vec![u8::from(one_phase)];
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&(gtrid.len() as u32).to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(gtrid);
        data
    }

    fn xa_start(asm: &mut Assembler<()>, log_pos: u32, xid: &str) {
        ok(asm.start_event(QUERY_EVENT, log_pos, 100));
        assert_eq!(asm.query(&format!("XA START {xid}"), "shop", 100), Ok(Step::Nothing));
    }

    fn xa_step(step: Step) -> (SourceTransaction, XaEvent) {
        match step {
            Step::Xa { txn, xa } => (txn, xa),
            other => panic!("expected an XA event group, got {other:?}"),
        }
    }

    #[test]
    fn a_prepared_xa_transaction_is_handed_over_with_its_xid_and_its_outcome_later() {
        let state = GtidState::parse("0-1-41").unwrap();
        let mut asm = assembler(Some(state));
        ok(asm.start_event(MARIADB_GTID_EVENT, 50, 0));
        asm.mariadb_gtid(&gtid_payload(42, 0, false), 1).unwrap();
        xa_start(&mut asm, 100, "X'61',X'',1");
        map(&mut asm, 150, 1, "shop", "t");
        assert!(rows(&mut asm, 200, 1, "a"));
        ok(asm.start_event(QUERY_EVENT, 250, 0));
        assert_eq!(asm.query("XA END X'61',X'',1", "shop", 0), Ok(Step::Nothing));
        assert_eq!(heartbeat(&mut asm), None, "inside the group");
        ok(asm.start_event(XA_PREPARE_EVENT, 300, 0));
        let (txn, xa) = xa_step(asm.xa_prepare(&prepare_payload(b"a", false)).unwrap());
        assert_eq!(xa, XaEvent { xid: xid("a"), phase: XaPhase::Prepare });
        assert_eq!(txn.changes, vec![insert(7, 200, "a")]);
        assert_eq!(txn.end, BinlogPosition::new(FILE, 300));
        assert_eq!(txn.gtid.as_deref(), Some("0-1-42"), "the prepare has its own GTID");
        // other transactions commit meanwhile
        assert_eq!(heartbeat(&mut asm), Some(BinlogPosition::new(FILE, 300)));
        begin(&mut asm, 350);
        map(&mut asm, 360, 1, "shop", "t");
        assert!(rows(&mut asm, 370, 1, "b"));
        assert_eq!(committed(xid_event(&mut asm, 400)).0.changes, vec![insert(7, 370, "b")]);
        // the outcome: a group of its own statement, as the servers write it
        ok(asm.start_event(MARIADB_GTID_EVENT, 450, 0));
        asm.mariadb_gtid(&gtid_payload(43, 0, true), 1).unwrap();
        ok(asm.start_event(QUERY_EVENT, 500, 0));
        let (txn, xa) = xa_step(asm.query("XA COMMIT X'61',X'',1", "shop", 0).unwrap());
        assert_eq!(xa, XaEvent { xid: xid("a"), phase: XaPhase::Commit });
        assert!(txn.changes.is_empty());
        assert_eq!(txn.end, BinlogPosition::new(FILE, 500));
        assert_eq!(txn.gtid.as_deref(), Some("0-1-43"));
        ok(asm.start_event(QUERY_EVENT, 600, 0));
        let (txn, xa) = xa_step(asm.query("xa  rollback 'b'", "shop", 0).unwrap());
        assert_eq!((xa.xid, xa.phase, txn.end.pos), (xid("b"), XaPhase::Rollback, 600));

        // a prepare without replicated rows is handed over too (its outcome must find it)
        xa_start(&mut asm, 700, "'c'");
        map(&mut asm, 750, 2, "shop", "unmapped");
        assert!(!rows(&mut asm, 760, 2, "x"));
        ok(asm.start_event(XA_PREPARE_EVENT, 800, 0));
        let (txn, xa) = xa_step(asm.xa_prepare(&prepare_payload(b"c", false)).unwrap());
        assert!(txn.changes.is_empty() && xa.xid == xid("c") && txn.end.pos == 800);
        // an event the xid cannot be read from: the group's XA START names it; else an error
        xa_start(&mut asm, 900, "'d'");
        ok(asm.start_event(XA_PREPARE_EVENT, 950, 0));
        assert_eq!(xa_step(asm.xa_prepare(&[0, 1]).unwrap()).1.xid, xid("d"));
        begin(&mut asm, 1000);
        ok(asm.start_event(XA_PREPARE_EVENT, 1050, 0));
        let err = asm.xa_prepare(&[0, 1]).unwrap_err();
        assert!(err.message().contains(&format!("{FILE}:1050")), "{err:?}");
        // an outcome naming no xid it can read
        let mut asm = assembler(None);
        ok(asm.start_event(QUERY_EVENT, 100, 0));
        let err = asm.query("XA COMMIT", "shop", 0).unwrap_err();
        assert!(err.message().contains(&format!("{FILE}:100")), "{err:?}");
    }

    #[test]
    fn one_phase_xa_commits_are_ordinary_transactions() {
        // MySQL writes XA COMMIT ... ONE PHASE as an XA_PREPARE event with one_phase set
        let mut asm = assembler(None);
        xa_start(&mut asm, 100, "'a'");
        map(&mut asm, 150, 1, "shop", "t");
        assert!(rows(&mut asm, 200, 1, "a"));
        ok(asm.start_event(XA_PREPARE_EVENT, 300, 0));
        let (txn, _) = committed(asm.xa_prepare(&prepare_payload(b"a", true)).unwrap());
        assert_eq!(txn.changes, vec![insert(7, 200, "a")]);
        // ... or with the statement ending the group of its XA START
        xa_start(&mut asm, 400, "'b'");
        map(&mut asm, 450, 1, "shop", "t");
        assert!(rows(&mut asm, 500, 1, "b"));
        ok(asm.start_event(QUERY_EVENT, 550, 0));
        let (txn, _) = committed(asm.query("XA COMMIT X'62',X'',1 ONE PHASE", "shop", 0).unwrap());
        assert_eq!((txn.changes, txn.end.pos), (vec![insert(7, 500, "b")], 550));
    }

    #[test]
    fn an_xa_transactions_rows_are_kept_whatever_the_tables_consistent_point() {
        // they count at the XA COMMIT, which may come after the point: replay compares that
        let mut asm = assembler_with_point(900);
        asm.format_description();
        xa_start(&mut asm, 100, "'a'");
        map(&mut asm, 150, 5, "shop", "t");
        assert!(rows(&mut asm, 200, 5, "a"));
        ok(asm.start_event(XA_PREPARE_EVENT, 300, 0));
        assert_eq!(xa_step(asm.xa_prepare(&prepare_payload(b"a", false)).unwrap()).0.changes.len(), 1);
        // an ordinary transaction's rows at or before the point are in the table's copy
        begin(&mut asm, 400);
        map(&mut asm, 450, 5, "shop", "t");
        assert!(!rows(&mut asm, 500, 5, "b"));
    }

    #[test]
    fn rows_of_unmapped_tables_are_ignored() {
        let mut asm = assembler(None);
        begin(&mut asm, 100);
        map(&mut asm, 150, 6, "other", "u");
        assert!(!rows(&mut asm, 200, 6, "x"), "a table that is not replicated");
        assert!(!rows(&mut asm, 230, 8, "y"), "a table id without a map");
        let (txn, _) = committed(xid_event(&mut asm, 261));
        assert!(txn.changes.is_empty());
        assert_eq!(txn.end, BinlogPosition::new(FILE, 261));
    }

    #[test]
    fn rows_up_to_a_tables_consistent_point_are_in_its_copy() {
        let mut asm = assembler_with_point(200);
        begin(&mut asm, 100);
        map(&mut asm, 150, 5, "shop", "t");
        assert!(!rows(&mut asm, 200, 5, "copied"));
        assert!(rows(&mut asm, 260, 5, "new"));
        let (txn, _) = committed(xid_event(&mut asm, 291));
        assert_eq!(txn.changes, vec![insert(7, 260, "new")]);
    }

    /// A table map whose check always fails (the table changed outside the binlog).
    fn contradicting_map(asm: &mut Assembler<()>, log_pos: u32, table_id: u64) -> Step {
        ok(asm.start_event(TABLE_MAP_EVENT, log_pos, 100));
        asm.table_map_checked(table_id, ("shop".into(), "t".into()), (), |_, t, name, at| {
            Err(CoreError::binlog(format!("{name} (id {}) changed at {at}", t.id)))
        })
    }

    #[test]
    fn a_contradicting_table_map_stops_its_table_past_its_point_only() {
        // at or before the consistent point (rows in the copy), or while being copied again:
        // not checked, the rows go on as before
        let mut asm = assembler_with_point(200);
        begin(&mut asm, 100);
        assert_eq!(contradicting_map(&mut asm, 150, 5), Step::Nothing);
        let mut src = source();
        src.tables.get_mut(&("shop".to_string(), "t".to_string())).unwrap().awaiting_copy = true;
        let mut copying: Assembler<()> = Assembler::new(src, Some(&BinlogPosition::new(FILE, 4)), false, None);
        begin(&mut copying, 100);
        assert_eq!(contradicting_map(&mut copying, 150, 5), Step::Nothing);
        assert!(rows(&mut copying, 180, 5, "kept"));
        // past it: the table is stopped, with the position, and its rows are no longer decoded,
        // in this group or later ones
        let mut asm = assembler(None);
        begin(&mut asm, 100);
        let error = CoreError::binlog(format!("shop.t (id 7) changed at {FILE}:150"));
        let position = BinlogPosition::new(FILE, 150);
        assert_eq!(contradicting_map(&mut asm, 150, 5), Step::TableStopped { table_id: 7, position, error });
        assert!(!rows(&mut asm, 180, 5, "wrong columns"));
        let (txn, _) = committed(xid_event(&mut asm, 211));
        assert!(txn.changes.is_empty());
        begin(&mut asm, 300);
        map(&mut asm, 350, 6, "shop", "t");
        assert!(!rows(&mut asm, 380, 6, "wrong columns"));
    }

    #[test]
    fn a_map_equal_to_a_checked_one_is_taken_without_a_check() {
        let mut asm = assembler_with_point(200);
        let checks = std::cell::Cell::new(0);
        let checked_map = |asm: &mut Assembler<()>, log_pos: u32| {
            ok(asm.start_event(TABLE_MAP_EVENT, log_pos, 100));
            if asm.table_map_again(5, |_| true) {
                return false;
            }
            let step = asm.table_map_checked(5, ("shop".into(), "t".into()), (), |_, _, _, _| {
                checks.set(checks.get() + 1);
                Ok(())
            });
            assert_eq!(step, Step::Nothing);
            true
        };
        // before the table's point the map is not checked, and looked at again next time
        begin(&mut asm, 100);
        assert!(checked_map(&mut asm, 150));
        assert_eq!(checks.get(), 0);
        committed(xid_event(&mut asm, 180));
        // past it: checked once; the same map in later groups is taken as it is
        begin(&mut asm, 300);
        assert!(checked_map(&mut asm, 350));
        assert!(rows(&mut asm, 380, 5, "a"));
        committed(xid_event(&mut asm, 400));
        begin(&mut asm, 500);
        assert!(!checked_map(&mut asm, 550), "the same map again");
        assert!(rows(&mut asm, 580, 5, "b"));
        committed(xid_event(&mut asm, 600));
        assert_eq!(checks.get(), 1);
        // a different map is checked; a group without a map of the table has no rows of it
        begin(&mut asm, 700);
        ok(asm.start_event(TABLE_MAP_EVENT, 750, 100));
        assert!(!asm.table_map_again(5, |_| false));
        committed(xid_event(&mut asm, 780));
        begin(&mut asm, 800);
        assert!(!rows(&mut asm, 880, 5, "no map in this group"));
    }

    #[test]
    fn discarded_rows_and_decode_errors() {
        let mut asm = assembler(None);
        begin(&mut asm, 100);
        map(&mut asm, 150, 5, "shop", "t");
        ok(asm.start_event(WRITE_ROWS_V2, 200, 0));
        let step = asm.rows(5, |t, _, discarded| {
            discarded.push(DiscardedRow { table_id: t.table.id, pos: t.pos, raw: vec![1], reason: "bad".into() });
            Ok(())
        });
        assert_eq!(step, Ok(Step::Nothing));
        assert_eq!(heartbeat(&mut asm), None);
        let (txn, _) = committed(xid_event(&mut asm, 231));
        assert_eq!(txn.discarded, vec![DiscardedRow { table_id: 7, pos: 200, raw: vec![1], reason: "bad".into() }]);

        begin(&mut asm, 300);
        map(&mut asm, 350, 5, "shop", "t");
        ok(asm.start_event(WRITE_ROWS_V2, 400, 0));
        let err = asm.rows(5, |_, _, _| Err(CoreError::binlog("shop.t: undecodable row event".into()))).unwrap_err();
        assert_eq!(err, CoreError::binlog("at mysql-bin.000001:400: shop.t: undecodable row event".into()));
    }

    #[test]
    fn unreadable_events_are_errors_naming_the_position() {
        let mut asm = assembler(None);
        let err = asm.start_event(166, 400, 0).unwrap_err();
        assert_eq!(err.kind(), crate::core::error::ErrorKind::SourceConfig);
        assert!(err.message().contains("the binlog at mysql-bin.000001:400 holds"), "{err:?}");
        assert!(err.message().contains("mysql-bin.000001:400") && err.message().contains("log_bin_compress"));
        ok(asm.start_event(INCIDENT_EVENT, 450, 0));
        assert!(asm.incident().unwrap_err().message().contains("INCIDENT event at mysql-bin.000001:450"));
        ok(asm.start_event(MARIADB_GTID_EVENT, 500, 0));
        let err = asm.mariadb_gtid(&[1, 2, 3], 1).unwrap_err();
        assert_eq!(err, CoreError::binlog("truncated MariaDB GTID event at mysql-bin.000001:500".into()));
    }

    #[test]
    fn unknown_event_types_are_noted_once() {
        let mut asm = assembler(None);
        ok(asm.start_event(99, 120, 0));
        assert_eq!(
            asm.other(99),
            Step::Note("skipped a binlog event of unknown type 99 at mysql-bin.000001:120".into())
        );
        assert_eq!(asm.other(99), Step::Nothing);
        assert_eq!(asm.other(160), Step::Nothing, "ANNOTATE_ROWS carries nothing for us");
    }

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
        // MySQL 8's compressed transactions are read (the reader expands them)
        assert_eq!(unreadable_event(TRANSACTION_PAYLOAD_EVENT), None);
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
