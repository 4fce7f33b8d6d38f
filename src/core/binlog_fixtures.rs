//! Tests on real binlog files written by MySQL 5.7, 8.0, 8.4, 9.x and MariaDB servers
//! (docs/testing.md, "Binlog fixture tests"): every event of every file goes through the same
//! `reader::dispatch` and assembler as the socket loop, and the decoded values are checked
//! against what the SQL that wrote them put in.
//!
//! The files under a permissive license are in `tests/fixtures/binlogs/` (README there); the
//! GPL-2 ones (MariaDB's test data, which holds a MySQL 8.0.40 binlog with a compressed
//! transaction and a partial JSON update) are fetched by `scripts/setup.sh` into
//! `.cache/binlog-fixtures/`; their tests say so and pass without checking when absent.
//!
//! The replicated tables are built from the files' own table maps (column types and MySQL 8's
//! optional metadata: signedness, character sets, ENUM and SET strings, column names, primary
//! key), since no server's information_schema is at hand.

use crate::core::assembler::{Assembler, SourceContext, Step, TABLE_MAP_EVENT, TRANSACTION_PAYLOAD_EVENT};
use crate::core::binlog_file::{self, FileEvents};
use crate::core::change::{Op, Row, SourceTransaction};
use crate::core::error::CoreResult;
use crate::core::gtid::GtidState;
use crate::core::mysql_source::Flavor;
use crate::core::position::BinlogPosition;
use crate::core::reader::{dispatch, ReaderTable};
use crate::core::types::{Charset, ValueKind, ZeroDates};
use mysql::binlog::events::{Event, OptionalMetadataField, TableMapEvent};
use mysql::consts::ColumnType;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/binlogs")
}

fn gpl_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/binlog-fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A file of the fetched GPL-2 test data, or None (with a message) when it is absent.
fn read_gpl(name: &str) -> Option<Vec<u8>> {
    match std::fs::read(gpl_dir().join(name)) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("SKIPPED: {name} is not in .cache/binlog-fixtures (make setup fetches it)");
            None
        }
    }
}

const LATIN1_COLLATIONS: &[u16] = &[5, 8, 15, 31, 47, 48, 49, 94];
const BINARY_COLLATION: u16 = 63;

/// The value kinds, names and key of a table as its table map describes it.
fn table_from_map(id: i32, tme: &TableMapEvent<'_>) -> Result<ReaderTable, std::io::Error> {
    let n = tme.columns_count() as usize;
    let mut unsigned = vec![false; n];
    let mut charsets: Vec<Option<u16>> = vec![None; n];
    let mut names: Vec<String> = (1..=n).map(|i| format!("@{i}")).collect();
    let mut enums: Vec<Vec<String>> = Vec::new();
    let mut sets: Vec<Vec<String>> = Vec::new();
    let mut key: Vec<usize> = Vec::new();
    let types: Vec<Option<ColumnType>> = (0..n).map(|i| tme.get_column_type(i).ok().flatten()).collect();
    let character = |t: Option<ColumnType>| {
        use ColumnType::*;
        matches!(t, Some(MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_STRING | MYSQL_TYPE_BLOB))
    };
    for field in tme.iter_optional_meta() {
        match field? {
            OptionalMetadataField::Signedness(bits) => {
                let numeric_cols: Vec<usize> =
                    (0..n).filter(|&i| types[i].is_some_and(crate::core::tablemap::is_numeric)).collect();
                for (col, bit) in numeric_cols.iter().zip(bits.iter()) {
                    unsigned[*col] = *bit;
                }
            }
            OptionalMetadataField::DefaultCharset(d) => {
                let mut explicit = HashMap::new();
                for c in d.iter_non_default() {
                    let c = c?;
                    explicit.insert(c.column_index() as usize, c.charset());
                }
                let chars: Vec<usize> = (0..n).filter(|&i| character(types[i])).collect();
                for (k, col) in chars.iter().enumerate() {
                    charsets[*col] = Some(*explicit.get(&k).unwrap_or(&d.default_charset()));
                }
            }
            OptionalMetadataField::ColumnCharset(c) => {
                let chars: Vec<usize> = (0..n).filter(|&i| character(types[i])).collect();
                for (col, cs) in chars.iter().zip(c.iter_charsets()) {
                    charsets[*col] = Some(cs?);
                }
            }
            OptionalMetadataField::ColumnName(c) => {
                names = c.iter_names().map(|x| x.map(|x| x.name().into_owned())).collect::<Result<_, _>>()?;
            }
            OptionalMetadataField::EnumStrValue(e) => {
                enums = e
                    .iter_values()
                    .map(|v| v.map(|v| v.values().iter().map(|s| s.value().into_owned()).collect()))
                    .collect::<Result<_, _>>()?;
            }
            OptionalMetadataField::SetStrValue(s) => {
                sets = s
                    .iter_values()
                    .map(|v| v.map(|v| v.values().iter().map(|s| s.value().into_owned()).collect()))
                    .collect::<Result<_, _>>()?;
            }
            OptionalMetadataField::SimplePrimaryKey(k) => {
                key = k.iter_indexes().map(|x| x.map(|x| x as usize)).collect::<Result<_, _>>()?;
            }
            OptionalMetadataField::PrimaryKeyWithPrefix(k) => {
                key = k.iter_keys().map(|x| x.map(|x| x.column_index() as usize)).collect::<Result<_, _>>()?;
            }
            _ => {}
        }
    }
    let (mut enum_i, mut set_i) = (0, 0);
    let kinds = (0..n)
        .map(|i| {
            use ColumnType::*;
            let meta = tme.get_column_metadata(i).unwrap_or(&[]);
            let int = |bits| ValueKind::Int { bits, unsigned: unsigned[i] };
            match types[i] {
                Some(MYSQL_TYPE_TINY) => int(8),
                Some(MYSQL_TYPE_SHORT) => int(16),
                Some(MYSQL_TYPE_INT24) => int(24),
                Some(MYSQL_TYPE_LONG) => int(32),
                Some(MYSQL_TYPE_LONGLONG) => int(64),
                Some(MYSQL_TYPE_FLOAT) => ValueKind::Float,
                Some(MYSQL_TYPE_DOUBLE) => ValueKind::Double,
                Some(MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL) => ValueKind::Decimal,
                Some(MYSQL_TYPE_YEAR) => ValueKind::Year,
                Some(MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE) => ValueKind::Date(ZeroDates::Discard),
                Some(MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2) => ValueKind::DateTime(ZeroDates::Discard),
                Some(MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2) => ValueKind::Timestamp(ZeroDates::Discard),
                Some(MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2) => ValueKind::Time,
                Some(MYSQL_TYPE_BIT) => {
                    let bits = meta.first().copied().unwrap_or(0) as u32 + 8 * meta.get(1).copied().unwrap_or(0) as u32;
                    ValueKind::Bit(bits.max(1))
                }
                Some(MYSQL_TYPE_JSON) => ValueKind::Json,
                Some(MYSQL_TYPE_ENUM) => {
                    enum_i += 1;
                    ValueKind::Enum(enums.get(enum_i - 1).cloned().unwrap_or_default())
                }
                Some(MYSQL_TYPE_SET) => {
                    set_i += 1;
                    ValueKind::Set(sets.get(set_i - 1).cloned().unwrap_or_default())
                }
                Some(MYSQL_TYPE_GEOMETRY) => ValueKind::Spatial { postgis: false },
                Some(MYSQL_TYPE_VECTOR) => ValueKind::Vector { pgvector: true },
                _ => match charsets[i] {
                    Some(BINARY_COLLATION) => ValueKind::Binary,
                    Some(c) if LATIN1_COLLATIONS.contains(&c) => ValueKind::Text(Charset::Latin1),
                    _ => ValueKind::Text(Charset::Utf8),
                },
            }
        })
        .collect();
    if key.is_empty() {
        // binlog_row_metadata=MINIMAL has no primary key: every fixture's first column is its key
        key = vec![0];
    }
    Ok(ReaderTable { id, kinds, names, key, skip: vec![], point: None, awaiting_copy: false })
}

/// The events of a file, with those of its compressed transactions after them.
fn all_events(bytes: &[u8]) -> CoreResult<Vec<Event>> {
    let mut out = Vec::new();
    for item in FileEvents::new(bytes)? {
        let (_, event) = item?;
        if event.header().event_type_raw() == TRANSACTION_PAYLOAD_EVENT {
            out.extend(binlog_file::payload_events(&event).map_err(crate::core::error::CoreError::binlog)?);
        }
        out.push(event);
    }
    Ok(out)
}

/// What reading a file gave: its committed transactions, notes, and the tables by name.
#[derive(Debug, Default)]
struct Decoded {
    txns: Vec<SourceTransaction>,
    notes: Vec<String>,
    /// table id -> "schema.table"
    tables: HashMap<i32, String>,
    /// table id -> column names
    columns: HashMap<i32, Vec<String>>,
    /// errors `decode_past` read past
    errors: Vec<crate::core::error::CoreError>,
    /// tables stopped because their table map contradicts their definition
    stopped: Vec<(i32, crate::core::error::CoreError)>,
}

impl Decoded {
    /// The rows written, updated or deleted in `table` ("schema.table"), as (op, key, row).
    fn changes(&self, table: &str) -> Vec<(Op, Option<Row>, Option<Row>)> {
        let id = self.tables.iter().find(|(_, n)| n.as_str() == table).map(|(id, _)| *id);
        self.txns
            .iter()
            .flat_map(|t| &t.changes)
            .filter(|c| Some(c.table_id) == id)
            .map(|c| (c.op, c.key.clone(), c.row.clone()))
            .collect()
    }

    fn inserted(&self, table: &str) -> Vec<Vec<Option<String>>> {
        self.changes(table).into_iter().filter(|c| c.0 == Op::Insert).filter_map(|c| c.2).collect()
    }

    fn discarded(&self) -> Vec<String> {
        self.txns
            .iter()
            .flat_map(|t| &t.discarded)
            .map(|d| format!("{}:{} {}", self.tables[&d.table_id], d.pos, d.reason))
            .collect()
    }
}

/// Reads a whole file through `reader::dispatch` and the assembler, every table replicated.
fn decode(name: &str, bytes: &[u8], gtid: Option<GtidState>) -> CoreResult<Decoded> {
    decode_past(name, bytes, gtid, &[])
}

/// Decodes the file as `decode` does, except that an error at an event ending at one of `past`
/// is recorded in `errors` and reading goes on with the next event (what a DBA does by moving
/// the replica past it).
fn decode_past(name: &str, bytes: &[u8], gtid: Option<GtidState>, past: &[u64]) -> CoreResult<Decoded> {
    decode_as(name, bytes, gtid, past, &|_, _| {})
}

/// Decodes the file as `decode_past` does, with the replica's definition of each table (built
/// from its table map) first changed by `known` (given "schema.table" and the definition).
fn decode_as(
    name: &str,
    bytes: &[u8],
    gtid: Option<GtidState>,
    past: &[u64],
    known: &dyn Fn(&str, &mut ReaderTable),
) -> CoreResult<Decoded> {
    let mut tables = HashMap::new();
    let mut out = Decoded::default();
    for event in all_events(bytes)? {
        if event.header().event_type_raw() != TABLE_MAP_EVENT {
            continue;
        }
        let tme: TableMapEvent<'_> =
            event.read_event().map_err(|e| crate::core::error::CoreError::binlog(e.to_string()))?;
        let key = (tme.database_name().into_owned(), tme.table_name().into_owned());
        if !tables.contains_key(&key) {
            let id = tables.len() as i32 + 1;
            let table = table_from_map(id, &tme)
                .map_err(|e| crate::core::error::CoreError::binlog(format!("table map: {e}")))?;
            out.tables.insert(id, format!("{}.{}", key.0, key.1));
            out.columns.insert(id, table.names.clone());
            let mut table = table;
            known(&format!("{}.{}", key.0, key.1), &mut table);
            tables.insert(key, table);
        }
    }
    let source = SourceContext {
        tables,
        mapped_schemas: vec![],
        flavor: Flavor::MySql,
        schema_charsets: vec![],
        crc: None,
        piece_bytes: usize::MAX,
    };
    let mut asm = Assembler::new(source, Some(&BinlogPosition::new(name, 4)), false, gtid);
    for item in FileEvents::new(bytes)? {
        let (_, event) = item?;
        let mut steps = Vec::new();
        let dispatched = dispatch(&mut asm, &event, &mut |step| {
            steps.push(step);
            true
        });
        for step in steps {
            match step {
                Step::Transaction { txn, .. } | Step::Xa { txn, .. } => out.txns.push(txn),
                Step::Note(n) | Step::Abandon(n) => out.notes.push(n),
                Step::TableStopped { table_id, error, .. } => out.stopped.push((table_id, error)),
                // (pieces are off here: piece_bytes is usize::MAX)
                Step::Piece(_) | Step::Nothing | Step::Heartbeat(_) => {}
            }
        }
        match dispatched {
            Err(e) if past.contains(&(event.header().log_pos() as u64)) => out.errors.push(e),
            other => {
                other?;
            }
        }
    }
    Ok(out)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn every_committed_fixture_decodes_without_error() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/binlogs")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md")
        .collect();
    names.sort();
    assert!(names.len() >= 18, "{names:?}");
    for name in names {
        let bytes = read(&name);
        let result = decode(&name, &bytes, None);
        match name.as_str() {
            // cut short by their makers: an error naming the offset, never a panic
            "binlog_truncated_event.000001" | "binlog_truncated_prev_gtid_event.000001" => {
                let err = result.unwrap_err();
                assert!(err.message().contains("at offset"), "{name}: {err:?}");
            }
            // a partial JSON update logged with binlog_row_image=MINIMAL: no before image of
            // the document to apply the diff to, so the rows are refused with the reason
            "json.binlog.000001" => {
                let d = result.unwrap();
                let discarded = d.discarded();
                assert_eq!(discarded.len(), 6, "{discarded:?}");
                assert!(discarded.iter().all(|r| r.starts_with("mysql.t:3980") && r.contains("binlog_row_image=FULL")));
            }
            // binlog_row_image=MINIMAL: the insert leaves out a column it did not set, whose
            // default the binlog does not say: refused with the reason, not guessed
            "minimal_row_metadata.000001" => {
                let discarded = result.unwrap().discarded();
                assert_eq!(
                    discarded,
                    vec!["noria.t1:420 column 2 is missing from the row image: set binlog_row_image=FULL"]
                );
            }
            // TIME '-507:48:27' (a negative TIME2): PostgreSQL's time has no such value
            "time_issue.000001" => {
                let discarded = result.unwrap().discarded();
                assert_eq!(
                    discarded,
                    vec!["noria.t:397 column \"@1\": negative TIME -507:48:27 has no PostgreSQL time equivalent"]
                );
            }
            _ => {
                let d = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert!(d.discarded().is_empty(), "{name}: {:?}", d.discarded());
                assert!(d.stopped.is_empty(), "{name}: {:?}", d.stopped);
            }
        }
    }
}

#[test]
fn truncated_and_corrupted_files_give_errors_not_panics() {
    let mut files: Vec<(String, Vec<u8>)> = [
        "json.binlog.000001",
        "transaction_compression.000001",
        "mysql-bin.compressed",
        "vector.binlog",
        "mysql-enum-string-set.000001",
        "mariadb-bin.000001",
    ]
    .iter()
    .map(|n| (n.to_string(), read(n)))
    .collect();
    if let Some(b) = read_gpl("mdev35643_mysql_80_binlog.000001") {
        files.push(("mdev35643".into(), b));
    }
    let mut errors = 0;
    for (name, bytes) in &files {
        // every cut: an error, or (cut at an event boundary) fewer events
        for cut in (0..bytes.len()).step_by(29) {
            let r = std::panic::catch_unwind(|| decode(name, &bytes[..cut], None).map(|_| ()));
            assert!(r.is_ok(), "{name} cut at {cut} panicked");
            errors += r.unwrap().is_err() as usize;
        }
        // every byte flipped, one at a time
        for at in (4..bytes.len()).step_by(17) {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            let r = std::panic::catch_unwind(|| decode(name, &b, None).map(|_| ()));
            assert!(r.is_ok(), "{name} with byte {at} flipped panicked");
            let res = r.unwrap();
            // CRC32 checksums (every file here has them) catch every flip
            assert!(res.is_err(), "{name}: byte {at} flipped went unnoticed");
        }
    }
    assert!(errors > 0);
}

#[test]
fn mysql80_compressed_transaction_and_partial_json_update() {
    let Some(bytes) = read_gpl("mdev35643_mysql_80_binlog.000001") else { return };
    // the test inserts t2's row with binlog_format=statement: a change to a replicated table
    // logged as a statement stops the source there, naming table and position
    let err = decode("master-bin.000001", &bytes, None).unwrap_err();
    assert!(err.message().contains("master-bin.000001:3159") && err.message().contains("test.t2"), "{err:?}");
    // past it, the rest of the file (the compressed transaction, the partial update) decodes
    let d = decode_past("master-bin.000001", &bytes, None, &[3159]).unwrap();
    assert_eq!(d.errors.len(), 1);
    assert!(d.discarded().is_empty(), "{:?}", d.discarded());
    let t1 = d.inserted("test.t1");
    // rpl_from_mysql80.test: 5 plain inserts and 100 in one compressed transaction
    assert_eq!(t1.len(), 105);
    assert_eq!(t1[0], vec![s("1"), s("0"), s("")]);
    assert_eq!(t1[1], vec![s("2"), s("0"), s("hulu")]);
    assert_eq!(t1[3], vec![s("4"), s("0"), s("skip")]);
    for i in 0..100 {
        // mysqltest sends "\\/", which MySQL reads as an unknown escape: "/"
        let expected = format!("--{i}--{}--", "/".repeat(100));
        assert_eq!(t1[4 + i], vec![Some((1000 + i).to_string()), Some(i.to_string()), Some(expected)]);
    }
    assert_eq!(t1[104], vec![s("5"), s("0"), s("after compressed")]);
    // the 100 inserts are one transaction, ending where the payload event ends
    let big = d.txns.iter().find(|t| t.changes.len() == 100).expect("the compressed transaction");
    assert!(big.changes.iter().all(|c| c.pos == big.end.pos));
    // the partial JSON update: JSON_REPLACE(b, '$.b', REPEAT("oOo", 50)) on the inserted document
    let t2 = d.changes("test.t2");
    let (op, key, row) = t2.last().cloned().expect("the update of t2");
    assert_eq!(op, Op::Update);
    // no primary key in MINIMAL table map metadata: the whole before image is the key
    assert_eq!(key.unwrap()[0], s("1"));
    let row = row.unwrap();
    let doc: serde_json::Value = serde_json::from_str(row[1].as_deref().unwrap()).unwrap();
    assert_eq!(doc, serde_json::json!({"a": "hulu", "b": "oOo".repeat(50), "c": "bulu"}));
}

#[test]
fn mysql_values_decode_as_the_sql_wrote_them() {
    // json-opaque.binlog (MySQL 9.0.1): one JSON document per insert; opaque scalars print as
    // MySQL prints them, a DECIMAL inside JSON stays a number with its scale
    let d = decode("json-opaque.binlog", &read("json-opaque.binlog"), None).unwrap();
    let docs: Vec<String> = d
        .txns
        .iter()
        .flat_map(|t| &t.changes)
        .filter_map(|c| c.row.as_ref().and_then(|r| r.last().cloned().flatten()))
        .collect();
    assert_eq!(
        docs,
        vec![
            r#"{"a": "base64:type15:VQ=="}"#,
            r#"{"b": "2012-03-18"}"#,
            r#"{"c": "2012-03-18 11:30:45.000000"}"#,
            r#"{"c": "87:31:46.654321"}"#,
            r#"{"d": 123.456}"#,
            r#"{"e": 9.00}"#,
            r#"{"e": [0, 1, true, false]}"#,
            r#"{"e": null}"#,
        ]
    );
    // mysql_type_bit.000001: BIT values as bit strings
    let d = decode("bit", &read("mysql_type_bit.000001"), None).unwrap();
    let rows: Vec<_> = d.txns.iter().flat_map(|t| &t.changes).filter_map(|c| c.row.clone()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], s("foo"));
    assert!(rows[0][0].as_deref().unwrap().ends_with("100"), "{rows:?}");
    assert!(rows[0][2].as_deref().unwrap().ends_with("100000"), "{rows:?}");
    // vector.binlog (MySQL 9.0.1): VECTOR(3) [1.1, 2.2, 3.3] as little-endian float32s
    let d = decode("vector.binlog", &read("vector.binlog"), None).unwrap();
    let first = d.txns.iter().flat_map(|t| &t.changes).find_map(|c| c.row.clone()).unwrap();
    assert_eq!(first, vec![s("1"), s("[1.1,2.2,3.3]")]);
}

#[test]
fn tagged_gtids_move_the_gtid_state() {
    // binlog_transaction_with_GTID_TAG.000001 (MySQL 9.6.0): the previous GTIDs are
    // 55778904-0299-11f1-b1b8-4ef0c4956feb:1-13 and its tag mytag:1-2; one tagged transaction
    let uuid = "55778904-0299-11f1-b1b8-4ef0c4956feb";
    let state = GtidState::parse(&format!("{uuid}:1-13,{uuid}:mytag:1-2")).unwrap();
    let d = decode("tag", &read("binlog_transaction_with_GTID_TAG.000001"), Some(state)).unwrap();
    let gtids: Vec<_> = d.txns.iter().filter_map(|t| t.gtid.clone()).collect();
    assert!(gtids.iter().any(|g| g.contains("mytag:1-3")), "{gtids:?}");
    let rows: Vec<_> = d.txns.iter().flat_map(|t| &t.changes).filter(|c| c.op == Op::Insert).collect();
    assert_eq!(rows.len(), 1);
}

/// The replica's definition of a table with its first integer column's signedness flipped;
/// false when it has none.
fn flip_first_int(t: &mut ReaderTable) -> bool {
    for k in t.kinds.iter_mut() {
        if let ValueKind::Int { unsigned, .. } = k {
            *unsigned = !*unsigned;
            return true;
        }
    }
    false
}

#[test]
fn a_table_map_naming_other_columns_stops_that_table_only() {
    // binlog_row_metadata=FULL: the table maps name the columns
    for (name, table) in [("binlog-invisible-columns.000001", "mysql.t1"), ("mysql-enum-string-set.000001", "mysql.t")]
    {
        let bytes = read(name);
        let whole = decode(name, &bytes, None).unwrap();
        assert!(!whole.changes(table).is_empty(), "{name}");
        // a column renamed outside the binlog: the replica still knows it as f2
        let renamed = decode_as(name, &bytes, None, &[], &|t, def| {
            if t == table {
                def.names[1] = "f2_before".into();
            }
        })
        .unwrap();
        assert_eq!(renamed.stopped.len(), 1, "{name}: {:?}", renamed.stopped);
        let (id, err) = &renamed.stopped[0];
        assert_eq!(renamed.tables[id], table);
        let msg = err.message();
        assert!(
            msg.starts_with(&format!("table {table} changed on the source outside what the replica saw (at {name}:")),
            "{msg}"
        );
        assert!(
            msg.contains("the binlog names the columns (f1, f2,") && msg.contains("the replica knows (f1, f2_before,"),
            "{msg}"
        );
        assert!(err.hint().unwrap().contains("sync_tables"), "{err:?}");
        // none of its rows is decoded into the wrong columns
        assert!(renamed.changes(table).is_empty(), "{name}");
        assert!(renamed.discarded().is_empty(), "{name}");
        // a column the replica does not know (one more in the binlog)
        let fewer = decode_as(name, &bytes, None, &[], &|t, def| {
            if t == table {
                def.names.pop();
                def.kinds.pop();
            }
        })
        .unwrap();
        assert_eq!(fewer.stopped.len(), 1, "{name}");
        assert!(fewer.changes(table).is_empty(), "{name}");
        // the same names in another case: MySQL's column names ignore case
        let upper = decode_as(name, &bytes, None, &[], &|t, def| {
            if t == table {
                def.names.iter_mut().for_each(|n| *n = n.to_uppercase());
            }
        })
        .unwrap();
        assert!(upper.stopped.is_empty(), "{name}: {:?}", upper.stopped);
        assert_eq!(upper.changes(table), whole.changes(table), "{name}");
    }
}

#[test]
fn a_table_map_with_another_signedness_stops_the_table() {
    // MINIMAL and FULL both give the signedness of numeric columns
    for (name, table) in [("minimal_row_metadata.000001", "noria.t1"), ("binlog-invisible-columns.000001", "mysql.t1")]
    {
        let bytes = read(name);
        let flipped = decode_as(name, &bytes, None, &[], &|t, def| {
            if t == table {
                assert!(flip_first_int(def), "{name} has an integer column");
            }
        })
        .unwrap();
        assert_eq!(flipped.stopped.len(), 1, "{name}: {:?}", flipped.stopped);
        let msg = flipped.stopped[0].1.message();
        assert!(msg.contains("signed in the binlog but") && msg.contains("for the replica"), "{msg}");
        assert!(flipped.changes(table).is_empty(), "{name}");
    }
}

#[test]
fn a_table_map_with_other_enum_or_set_labels_stops_the_table() {
    // binlog_row_metadata=FULL gives the labels: mysql.t has f3 ENUM('var1', 'variant2', 'foo')
    // and f4 SET('one', 'two', 'three', 'four')
    let (name, table) = ("mysql-enum-string-set.000001", "mysql.t");
    let bytes = read(name);
    let whole = decode(name, &bytes, None).unwrap();
    assert!(whole.stopped.is_empty() && !whole.changes(table).is_empty());
    let relabel = |what: &str, edit: &dyn Fn(&mut ReaderTable)| {
        let out = decode_as(name, &bytes, None, &[], &|t, def| {
            if t == table {
                edit(def)
            }
        })
        .unwrap();
        assert_eq!(out.stopped.len(), 1, "{what}: {:?}", out.stopped);
        assert!(out.changes(table).is_empty(), "{what}");
        out.stopped[0].1.message().to_string()
    };
    // a label added at the end outside the binlog: the numbers of the old ones still hold, but
    // the replica's definition is not the source's any more
    let msg = relabel("enum", &|def| {
        if let ValueKind::Enum(l) = &mut def.kinds[2] {
            l.insert(0, "new".into());
        }
    });
    assert!(
        msg.contains(
            "column \"f3\" is ENUM('var1','variant2','foo') in the binlog but ENUM('new','var1','variant2','foo')"
        ),
        "{msg}"
    );
    let msg = relabel("set", &|def| {
        if let ValueKind::Set(l) = &mut def.kinds[3] {
            l.swap(0, 1);
        }
    });
    assert!(
        msg.contains("column \"f4\" is SET('one','two','three','four') in the binlog but SET('two','one',"),
        "{msg}"
    );
    // an ENUM the replica has as text (a column whose type changed unseen)
    let msg = relabel("enum count", &|def| def.kinds[2] = ValueKind::Text(crate::core::types::Charset::Utf8));
    assert!(msg.contains("the binlog has 1 ENUM columns but the replica 0"), "{msg}");
}

#[test]
fn without_column_names_renamed_columns_decode_as_before() {
    // binlog_row_metadata=MINIMAL: no names to check; the rows decode by position as they always did
    let name = "minimal_row_metadata.000001";
    let bytes = read(name);
    let whole = decode(name, &bytes, None).unwrap();
    let renamed = decode_as(name, &bytes, None, &[], &|_, def| {
        def.names.iter_mut().enumerate().for_each(|(i, n)| *n = format!("renamed_{i}"));
    })
    .unwrap();
    assert!(renamed.stopped.is_empty(), "{:?}", renamed.stopped);
    assert_eq!(renamed.changes("noria.t1"), whole.changes("noria.t1"));
    assert!(!whole.changes("noria.t1").is_empty() || !whole.discarded().is_empty());
}
