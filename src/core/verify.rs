//! The comparison of `verify_tables`, pure: one chunk of a table read on the source (values in
//! the text form the copy writes, `core::value::from_text`), moved forward through the stored
//! change events between the source snapshot and the destination's replay position, then
//! matched with the destination's rows of the same key range (or of the whole table).
//!
//! Rows are matched by their replica key (a table without one: by the whole row, as a
//! multiset). A key on one side only is `missing` (at the destination) or `extra`; a key on
//! both sides whose values differ in text is a `Candidate`: the caller decides each differing
//! value in PostgreSQL's own terms (the source text cast to the column's type, as COPY would
//! store it, compared with the destination's text), so that two spellings of one value (a
//! float's digits, a JSON object's key order) are not a difference and any other difference
//! is. Memory: the chunk's rows, both sides.
//!
//! The fast path of a chunk (`moved_forward_in_key_order`, `chunk_text`): the source rows
//! moved forward, in key order, written as one text, one row a line (`N` for NULL, a number
//! or a time bare, a string after its length); the destination writes the same text of its
//! rows in one aggregate. Equal text is equal rows (the text has one reading); any other
//! outcome goes through the row comparison above, so the fast path can only say `equal` where
//! the row comparison would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A row in text form, one value per column, `None` for NULL.
pub type Row = Vec<Option<String>>;

/// The key range a chunk covers: integer keys `lo < key <= hi` (an open end is `None`), a set
/// of keys (those read in a chunk of a table read in the source's key order, whose ranges
/// PostgreSQL cannot write), or the whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    Whole,
    Int { lo: Option<i128>, hi: Option<i128> },
    Keys(Arc<HashSet<Row>>),
}

impl KeyRange {
    /// Whether a row whose identity (its key values, or the row) is `ident` falls in the range.
    /// A key that is not an integer is outside any integer range.
    pub fn contains(&self, ident: &[Option<String>]) -> bool {
        match self {
            KeyRange::Whole => true,
            KeyRange::Int { lo, hi } => {
                let Some(k) = ident.first().and_then(|v| v.as_deref()).and_then(|s| s.parse::<i128>().ok()) else {
                    return false;
                };
                lo.is_none_or(|lo| k > lo) && hi.is_none_or(|hi| k <= hi)
            }
            KeyRange::Keys(keys) => keys.contains(ident),
        }
    }
}

/// A stored change event of the table (`t_log_replica`), decoded: what moves the source's
/// rows from the snapshot forward to the destination's replay position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Insert(Row),
    /// `old_key`: the replica key before (a keyless table: the whole row before).
    Update {
        old_key: Row,
        row: Row,
    },
    Delete {
        old_key: Row,
    },
}

/// What kind of difference a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// On the source, not at the destination.
    Missing,
    /// At the destination, not on the source.
    Extra,
    /// On both sides with values that differ.
    Different,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Different => "different",
        }
    }
}

/// One differing row: its identity (key values, or the row of a keyless table), the kind, and
/// for `Different` the columns (by index) whose values differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub ident: Row,
    pub kind: DiffKind,
    pub columns: Vec<usize>,
}

/// A row on both sides whose values differ in text: `columns` are those the caller must decide
/// (both values non-NULL, different text); `decided` those that differ whatever their types
/// (NULL on one side only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub ident: Row,
    pub source: Row,
    pub destination: Row,
    pub columns: Vec<usize>,
    pub decided: Vec<usize>,
}

/// The result of matching one chunk: definite differences, and candidates to decide.
#[derive(Debug, Default)]
pub struct Matched {
    pub diffs: Vec<Diff>,
    pub candidates: Vec<Candidate>,
    pub rows_source: u64,
    pub rows_destination: u64,
}

/// One chunk being compared: the source rows (moved forward by `apply`) and the destination
/// rows, each by identity with its multiplicity (1 for a keyed table).
pub struct ChunkCompare {
    key: Vec<usize>,
    range: KeyRange,
    source: HashMap<Row, (Row, i64)>,
    destination: HashMap<Row, (Row, i64)>,
}

impl ChunkCompare {
    /// `key`: the replica key's column indexes (empty: a keyless table, compared as a
    /// multiset of whole rows).
    pub fn new(key: Vec<usize>, range: KeyRange) -> ChunkCompare {
        ChunkCompare { key, range, source: HashMap::new(), destination: HashMap::new() }
    }

    pub fn range(&self) -> &KeyRange {
        &self.range
    }

    fn ident(&self, row: &Row) -> Row {
        if self.key.is_empty() {
            row.clone()
        } else {
            self.key.iter().map(|&i| row.get(i).cloned().flatten()).collect()
        }
    }

    fn put(side: &mut HashMap<Row, (Row, i64)>, keyed: bool, ident: Row, row: Row) {
        let e = side.entry(ident).or_insert_with(|| (row.clone(), 0));
        if keyed {
            // a key is unique: the later row replaces the earlier
            *e = (row, 1);
        } else {
            e.1 += 1;
        }
    }

    /// A source row of the chunk, as read in the snapshot.
    pub fn add_source(&mut self, row: Row) {
        let ident = self.ident(&row);
        Self::put(&mut self.source, !self.key.is_empty(), ident, row);
    }

    /// A destination row of the chunk.
    pub fn add_destination(&mut self, row: Row) {
        let ident = self.ident(&row);
        Self::put(&mut self.destination, !self.key.is_empty(), ident, row);
    }

    fn remove_source(&mut self, ident: Row) {
        if !self.range.contains(&ident) {
            return;
        }
        if self.key.is_empty() {
            // a keyless delete removes one copy of the row; one the snapshot did not have
            // leaves a negative count, which shows as a difference (it cannot happen on a
            // consistent log)
            let e = self.source.entry(ident.clone()).or_insert_with(|| (ident, 0));
            e.1 -= 1;
        } else {
            self.source.remove(&ident);
        }
    }

    fn insert_source(&mut self, row: Row) {
        let ident = self.ident(&row);
        if self.range.contains(&ident) {
            Self::put(&mut self.source, !self.key.is_empty(), ident, row);
        }
    }

    /// Applies one change event that happened after the snapshot (in stream order), to the
    /// rows of the chunk's range.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Insert(row) => self.insert_source(row),
            Change::Update { old_key, row } => {
                self.remove_source(old_key);
                self.insert_source(row);
            }
            Change::Delete { old_key } => self.remove_source(old_key),
        }
    }

    /// The source rows as moved forward (a keyed table: one per key).
    pub fn into_source_rows(self) -> Vec<Row> {
        self.source.into_values().filter(|(_, n)| *n > 0).map(|(r, _)| r).collect()
    }

    /// Matches the two sides.
    pub fn finish(self) -> Matched {
        let mut out = Matched {
            rows_source: self.source.values().map(|(_, n)| (*n).max(0) as u64).sum(),
            rows_destination: self.destination.values().map(|(_, n)| (*n).max(0) as u64).sum(),
            ..Matched::default()
        };
        let keyed = !self.key.is_empty();
        let mut destination = self.destination;
        let mut source: Vec<(Row, (Row, i64))> = self.source.into_iter().collect();
        source.sort_by(|a, b| a.0.cmp(&b.0));
        for (ident, (row, n)) in source {
            let (drow, dn) = destination.remove(&ident).unwrap_or_default();
            if keyed {
                match (n > 0, dn > 0) {
                    (true, false) => out.diffs.push(Diff { ident, kind: DiffKind::Missing, columns: vec![] }),
                    (true, true) => {
                        if let Some(c) = candidate(ident, row, drow) {
                            out.candidates.push(c);
                        }
                    }
                    _ => {}
                }
            } else {
                push_multiset(&mut out.diffs, ident, n - dn);
            }
        }
        let mut rest: Vec<(Row, (Row, i64))> = destination.into_iter().filter(|(_, (_, n))| *n > 0).collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        for (ident, (_, n)) in rest {
            push_multiset(&mut out.diffs, ident, if keyed { -1 } else { -n });
        }
        out
    }
}

/// The integer key of a row (`key`: its column), None when it is NULL or not an integer.
fn int_key(v: Option<&Option<String>>) -> Option<i128> {
    v.and_then(|v| v.as_deref()).and_then(|s| s.parse::<i128>().ok())
}

/// The integer keys a stored change acts on (the old key, the new row's key), parsed once
/// when the change is kept, so that each chunk finds the changes of its range without
/// parsing every change again (`touches`).
pub fn change_keys(c: &Change, key: usize) -> (Option<i128>, Option<i128>) {
    match c {
        Change::Insert(row) => (None, int_key(row.get(key))),
        Change::Update { old_key, row } => (int_key(old_key.first()), int_key(row.get(key))),
        Change::Delete { old_key } => (int_key(old_key.first()), None),
    }
}

/// Whether a change whose keys are `keys` (`change_keys`) acts on a row of `range`.
pub fn touches(keys: (Option<i128>, Option<i128>), range: &KeyRange) -> bool {
    in_int_range(keys.0, range) || in_int_range(keys.1, range)
}

fn in_int_range(k: Option<i128>, range: &KeyRange) -> bool {
    match (k, range) {
        (_, KeyRange::Whole) => true,
        (Some(k), KeyRange::Int { lo, hi }) => lo.is_none_or(|lo| k > lo) && hi.is_none_or(|hi| k <= hi),
        (None, _) | (_, KeyRange::Keys(_)) => false,
    }
}

/// The source rows of an integer-keyed chunk (read in key order) moved forward by the stored
/// changes, as `ChunkCompare::apply` moves them, in key order; the rows as read (Err) when
/// their keys are not integers in increasing order (the caller then compares by rows).
/// `Ok((rows, false))`: no change touches the range, the rows are the rows as read.
pub fn moved_forward_in_key_order<'a>(
    rows: Vec<Row>,
    key: usize,
    range: &KeyRange,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<(Vec<Row>, bool), Vec<Row>> {
    let in_range = |k: Option<i128>| in_int_range(k, range);
    let mut touching = changes.into_iter().filter(|c| touches(change_keys(c, key), range)).peekable();
    let mut previous: Option<i128> = None;
    for r in &rows {
        let Some(k) = int_key(r.get(key)) else { return Err(rows) };
        if previous.is_some_and(|p| p >= k) {
            return Err(rows);
        }
        previous = Some(k);
    }
    if touching.peek().is_none() {
        return Ok((rows, false));
    }
    let mut by_key: BTreeMap<i128, Row> = rows.into_iter().filter_map(|r| Some((int_key(r.get(key))?, r))).collect();
    for c in touching {
        match c {
            Change::Insert(row) => {
                if let Some(k) = int_key(row.get(key)).filter(|k| in_range(Some(*k))) {
                    by_key.insert(k, row.clone());
                }
            }
            Change::Update { old_key, row } => {
                if let Some(k) = int_key(old_key.first()) {
                    by_key.remove(&k);
                }
                if let Some(k) = int_key(row.get(key)).filter(|k| in_range(Some(*k))) {
                    by_key.insert(k, row.clone());
                }
            }
            Change::Delete { old_key } => {
                if let Some(k) = int_key(old_key.first()) {
                    by_key.remove(&k);
                }
            }
        }
    }
    Ok((by_key.into_values().collect(), true))
}

/// The bytes `record_out` quotes a value for (besides an empty value): a quote, a backslash,
/// a parenthesis, a comma, and white space as C's `isspace` sees it.
const QUOTED: [bool; 256] = {
    let mut t = [false; 256];
    let special = *b"\"\\(), \t\n\r\x0b\x0c";
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

/// Rows as PostgreSQL's `record_out` writes a row of text values, one row a line (no line
/// after the last): `(a,,"b c","")` (NULL is empty; a value that is empty or holds a quote,
/// a backslash, a parenthesis, a comma or white space is quoted, its quotes and backslashes
/// doubled). A table without a key counts its rows in this text (`ROW(c1::text, ...)::text`
/// at the destination), and reads a differing row back from it (`parse_record_text`).
pub fn record_text(rows: &[Row]) -> String {
    let mut out: Vec<u8> =
        Vec::with_capacity(rows.iter().map(|r| r.iter().flatten().map(|v| v.len() + 3).sum::<usize>() + 3).sum());
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.push(b'(');
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let Some(v) = v else { continue };
            let v = v.as_bytes();
            if !v.is_empty() && !v.iter().any(|&b| QUOTED[b as usize]) {
                out.extend_from_slice(v);
                continue;
            }
            out.push(b'"');
            // quotes and backslashes are ASCII: doubling them keeps the text UTF-8
            let mut from = 0;
            for (at, &b) in v.iter().enumerate() {
                if b == b'"' || b == b'\\' {
                    out.extend_from_slice(&v[from..=at]);
                    out.push(b);
                    from = at + 1;
                }
            }
            out.extend_from_slice(&v[from..]);
            out.push(b'"');
        }
        out.push(b')');
    }
    // only whole UTF-8 values and ASCII bytes were written
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// How the fast path writes a column's source text so that it is the destination's output
/// text of the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColumnForm {
    /// As converted.
    #[default]
    AsIs,
    /// Padded with spaces to n characters, as PostgreSQL stores (and its output function
    /// writes) a `character(n)` value: the destination then writes that column without the
    /// cast to text that trims the padding.
    Padded(usize),
    /// A date-time or time whose fraction of a second loses its trailing zeros (and its point
    /// when nothing is left), as PostgreSQL writes timestamps and times: MySQL's text protocol
    /// writes a DATETIME(6) `10:11:12.500000`, PostgreSQL `10:11:12.5`. The same value either
    /// way, so an equal text still means an equal value.
    TrimmedFraction,
}

/// How a column's value is delimited in a chunk's text (`chunk_text`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Delimit {
    /// Its length in bytes, a comma, then the value: any text.
    #[default]
    Counted,
    /// The value alone: a type whose text never holds a comma or a line break and is never
    /// `N` (numbers, dates and times, booleans, UUIDs, hex bytea, network addresses).
    Bare,
}

/// How a column is written in a chunk's text: its value's form and its delimiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkColumn {
    pub form: ColumnForm,
    pub delimit: Delimit,
}

/// A date-time's or time's text with its fraction of a second as PostgreSQL writes it: the
/// digits after the first point, up to the first non-digit (a time zone), without trailing
/// zeros.
pub fn trimmed_fraction(v: &str) -> std::borrow::Cow<'_, str> {
    let Some(dot) = v.find('.') else { return v.into() };
    let digits = v[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    let kept = v[dot + 1..dot + 1 + digits].trim_end_matches('0').len();
    if kept == digits {
        return v.into();
    }
    let end = if kept == 0 { dot } else { dot + 1 + kept };
    format!("{}{}", &v[..end], &v[dot + 1 + digits..]).into()
}

/// The text of a chunk's rows, what the destination writes for its rows of the same keys in
/// one aggregate: one row a line (no line after the last); in a row, for each column (column
/// `j` as `cols[j]` says, `Counted` and as converted where `cols` is short), comma-separated:
/// `N` for NULL, else the value (`Bare`), or its length in bytes, a comma and the value
/// (`Counted`). PostgreSQL writes it with `concat_ws(',', CASE WHEN c IS NULL THEN 'N' END,
/// octet_length(c), c, ...)` a row, as fast as it copies the values (`record_out` looks at
/// every character).
///
/// Equal text is equal rows: read left to right, a bare value ends at the next comma or line
/// break and is never `N`, a counted one is as long as its length says and its length is never
/// `N`. None when a source value breaks that (a value of a bare column holding a comma or a
/// line break, or `N`): such a chunk is compared row by row.
pub fn chunk_text(rows: &[Row], cols: &[ChunkColumn]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(
        rows.iter().map(|r| r.iter().map(|v| v.as_ref().map_or(2, |v| v.len() + 5)).sum::<usize>()).sum(),
    );
    let mut digits = String::new();
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let Some(v) = v else {
                out.push(b'N');
                continue;
            };
            let col = cols.get(j).copied().unwrap_or_default();
            let v = match col.form {
                ColumnForm::TrimmedFraction => trimmed_fraction(v),
                _ => std::borrow::Cow::Borrowed(v.as_str()),
            };
            let pad = match col.form {
                ColumnForm::Padded(n) => n.saturating_sub(v.chars().count()),
                _ => 0,
            };
            let v = v.as_bytes();
            match col.delimit {
                Delimit::Bare => {
                    if pad > 0 || v == b"N" || v.iter().any(|&b| b == b',' || b == b'\n') {
                        return None;
                    }
                    out.extend_from_slice(v);
                }
                Delimit::Counted => {
                    digits.clear();
                    use std::fmt::Write;
                    let _ = write!(digits, "{}", v.len() + pad);
                    out.extend_from_slice(digits.as_bytes());
                    out.push(b',');
                    out.extend_from_slice(v);
                    out.resize(out.len() + pad, b' ');
                }
            }
        }
    }
    // only whole UTF-8 values and ASCII bytes were written
    String::from_utf8(out).ok()
}

/// One row of `record_text` read back (what `record_in` reads): an unquoted empty value is
/// NULL; in a quoted one a doubled quote is a quote and a backslash takes the next byte as
/// it is. None when the text is not such a row.
pub fn parse_record_text(s: &str) -> Option<Row> {
    let b = s.strip_prefix('(')?.strip_suffix(')')?.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut v = Vec::new();
            i += 1;
            loop {
                match *b.get(i)? {
                    b'\\' => {
                        v.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    b'"' if b.get(i + 1) == Some(&b'"') => {
                        v.push(b'"');
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    c => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            out.push(Some(String::from_utf8(v).ok()?));
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            out.push((i > start).then(|| String::from_utf8_lossy(&b[start..i]).into_owned()));
        }
        match b.get(i) {
            None => return Some(out),
            Some(b',') => i += 1,
            Some(_) => return None,
        }
    }
}

/// `surplus` copies of a row more on the source (missing at the destination), or fewer (extra).
fn push_multiset(diffs: &mut Vec<Diff>, ident: Row, surplus: i64) {
    let kind = if surplus > 0 { DiffKind::Missing } else { DiffKind::Extra };
    for _ in 0..surplus.unsigned_abs() {
        diffs.push(Diff { ident: ident.clone(), kind, columns: vec![] });
    }
}

/// The same key on both sides: None when every value has the same text.
fn candidate(ident: Row, source: Row, destination: Row) -> Option<Candidate> {
    let mut columns = Vec::new();
    let mut decided = Vec::new();
    let n = source.len().max(destination.len());
    for i in 0..n {
        let s = source.get(i).cloned().flatten();
        let d = destination.get(i).cloned().flatten();
        match (s, d) {
            (Some(a), Some(b)) if a != b => columns.push(i),
            (Some(_), None) | (None, Some(_)) => decided.push(i),
            _ => {}
        }
    }
    (!columns.is_empty() || !decided.is_empty()).then_some(Candidate { ident, source, destination, columns, decided })
}

/// A candidate decided: the columns that really differ (the caller says, for each of
/// `columns`, whether the values are the same value), as a `Diff`, or None when all are equal.
pub fn decide(c: &Candidate, same: &[bool]) -> Option<Diff> {
    let mut cols: Vec<usize> = c.decided.clone();
    cols.extend(c.columns.iter().zip(same).filter(|(_, s)| !**s).map(|(i, _)| *i));
    cols.sort_unstable();
    (!cols.is_empty()).then(|| Diff { ident: c.ident.clone(), kind: DiffKind::Different, columns: cols })
}

/// Counts per kind, kept for a table across its chunks, with a sample of the differing rows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub sample: Vec<Diff>,
    /// The identity of every differing row, while there are at most `REPAIR_KEYS` (what a
    /// repair by key rewrites; beyond that the table is copied again).
    pub idents: Vec<Row>,
}

/// How many differing rows a table's result keeps as its sample.
pub const SAMPLE_ROWS: usize = 100;
/// How many differing rows a repair rewrites by key at most.
pub const REPAIR_KEYS: usize = 10_000;

impl Tally {
    pub fn add(&mut self, diff: Diff) {
        match diff.kind {
            DiffKind::Missing => self.missing += 1,
            DiffKind::Extra => self.extra += 1,
            DiffKind::Different => self.different += 1,
        }
        if self.idents.len() < REPAIR_KEYS {
            self.idents.push(diff.ident.clone());
        }
        if self.sample.len() < SAMPLE_ROWS {
            self.sample.push(diff);
        }
    }

    /// The keys of every differing row, when they were all kept (a table with a key).
    pub fn all_keys(&self) -> Option<&[Row]> {
        (self.idents.len() as u64 == self.total()).then_some(self.idents.as_slice())
    }

    pub fn total(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &[Option<&str>]) -> Row {
        v.iter().map(|x| x.map(str::to_string)).collect()
    }

    fn keyed(range: KeyRange) -> ChunkCompare {
        ChunkCompare::new(vec![0], range)
    }

    #[test]
    fn equal_sides_give_nothing() {
        let mut c = keyed(KeyRange::Whole);
        for i in 1..=3 {
            let row = r(&[Some(&i.to_string()), Some("x"), None]);
            c.add_source(row.clone());
            c.add_destination(row);
        }
        let m = c.finish();
        assert!(m.diffs.is_empty() && m.candidates.is_empty());
        assert_eq!((m.rows_source, m.rows_destination), (3, 3));
    }

    #[test]
    fn missing_extra_and_a_changed_key_are_told_apart() {
        let mut c = keyed(KeyRange::Whole);
        c.add_source(r(&[Some("1"), Some("a")]));
        c.add_source(r(&[Some("2"), Some("b")]));
        c.add_destination(r(&[Some("1"), Some("a")]));
        c.add_destination(r(&[Some("3"), Some("b")])); // key 2 became 3
        let m = c.finish();
        assert_eq!(
            m.diffs,
            vec![
                Diff { ident: r(&[Some("2")]), kind: DiffKind::Missing, columns: vec![] },
                Diff { ident: r(&[Some("3")]), kind: DiffKind::Extra, columns: vec![] },
            ]
        );
    }

    #[test]
    fn a_different_value_is_a_candidate_and_null_is_decided_at_once() {
        let mut c = keyed(KeyRange::Whole);
        c.add_source(r(&[Some("1"), Some("1.5"), Some("x"), None]));
        c.add_destination(r(&[Some("1"), Some("1.50"), None, None]));
        let m = c.finish();
        assert!(m.diffs.is_empty());
        let cand = &m.candidates[0];
        assert_eq!(cand.columns, vec![1]);
        assert_eq!(cand.decided, vec![2]);
        // the caller says 1.5 and 1.50 are the same value: only the NULL remains
        assert_eq!(decide(cand, &[true]).unwrap().columns, vec![2]);
        // trailing spaces are text: the caller would say they differ
        assert_eq!(decide(cand, &[false]).unwrap().columns, vec![1, 2]);
        let only_text = Candidate { decided: vec![], ..cand.clone() };
        assert_eq!(decide(&only_text, &[true]), None);
    }

    #[test]
    fn the_change_log_moves_the_source_forward_within_the_range() {
        // the chunk covers keys 10 < k <= 20
        let mut c = keyed(KeyRange::Int { lo: Some(10), hi: Some(20) });
        c.add_source(r(&[Some("11"), Some("old")]));
        c.add_source(r(&[Some("12"), Some("gone")]));
        c.add_source(r(&[Some("13"), Some("moves")]));
        // after the snapshot: 11 updated, 12 deleted, 13 moved out of the range to 30,
        // 15 inserted, 25 inserted (outside), then 15 updated again
        c.apply(Change::Update { old_key: r(&[Some("11")]), row: r(&[Some("11"), Some("new")]) });
        c.apply(Change::Delete { old_key: r(&[Some("12")]) });
        c.apply(Change::Update { old_key: r(&[Some("13")]), row: r(&[Some("30"), Some("moves")]) });
        c.apply(Change::Insert(r(&[Some("15"), Some("a")])));
        c.apply(Change::Insert(r(&[Some("25"), Some("b")])));
        c.apply(Change::Update { old_key: r(&[Some("15")]), row: r(&[Some("15"), Some("b")]) });
        c.add_destination(r(&[Some("11"), Some("new")]));
        c.add_destination(r(&[Some("15"), Some("b")]));
        let m = c.finish();
        assert!(m.diffs.is_empty() && m.candidates.is_empty(), "{:?} {:?}", m.diffs, m.candidates);
        assert_eq!(m.rows_source, 2);
    }

    #[test]
    fn a_key_moving_into_the_range_is_counted_there() {
        let mut c = keyed(KeyRange::Int { lo: None, hi: Some(5) });
        c.apply(Change::Update { old_key: r(&[Some("9")]), row: r(&[Some("4"), Some("z")]) });
        c.add_destination(r(&[Some("4"), Some("z")]));
        assert!(c.finish().diffs.is_empty());
    }

    #[test]
    fn a_set_of_keys_moves_forward_only_its_own_keys() {
        let keys: HashSet<Row> = [r(&[Some("a"), Some("1")]), r(&[Some("b"), Some("1")])].into_iter().collect();
        let mut c = ChunkCompare::new(vec![0, 1], KeyRange::Keys(Arc::new(keys)));
        c.add_source(r(&[Some("a"), Some("1"), Some("x")]));
        c.add_source(r(&[Some("b"), Some("1"), Some("y")]));
        // deleted since the snapshot, on both sides now
        c.apply(Change::Delete { old_key: r(&[Some("a"), Some("1")]) });
        // inserted since, not in the set: the destination's row is not read for this chunk
        c.apply(Change::Insert(r(&[Some("c"), Some("1"), Some("z")])));
        // a key moving out of the set
        c.apply(Change::Update { old_key: r(&[Some("b"), Some("1")]), row: r(&[Some("d"), Some("1"), Some("y")]) });
        assert!(!c.range().contains(&r(&[Some("c"), Some("1")])));
        let m = c.finish();
        assert!(m.diffs.is_empty() && m.candidates.is_empty(), "{m:?}");
        assert_eq!(m.rows_source, 0);
    }

    #[test]
    fn record_text_reads_back_as_the_row_it_wrote() {
        let rows = [
            r(&[Some("1"), None, Some("")]),
            r(&[Some("a \"quoted\" (x), y"), Some("back\\slash"), Some("é\nline")]),
            r(&[None]),
            r(&[Some("\"\""), Some(" "), None, Some("NULL")]),
        ];
        for row in &rows {
            let text = record_text(std::slice::from_ref(row));
            assert_eq!(parse_record_text(&text).as_ref(), Some(row), "{text}");
        }
        for bad in ["", "(", "(\"a)", "(\"a\"b)", "a,b"] {
            assert_eq!(parse_record_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_are_open_below_and_closed_above() {
        let k = |s: &str| r(&[Some(s)]);
        let range = KeyRange::Int { lo: Some(10), hi: Some(20) };
        assert!(!range.contains(&k("10")));
        assert!(range.contains(&k("11")) && range.contains(&k("20")));
        assert!(!range.contains(&k("21")));
        assert!(KeyRange::Int { lo: None, hi: None }.contains(&k("-170141183460469231731687303715884105728")));
        assert!(!range.contains(&r(&[None])), "a NULL key is in no integer range");
        assert!(!range.contains(&k("x")));
    }

    #[test]
    fn a_keyless_table_is_a_multiset() {
        let mut c = ChunkCompare::new(vec![], KeyRange::Whole);
        let a = r(&[Some("1"), Some("a")]);
        let b = r(&[Some("2"), Some("b")]);
        c.add_source(a.clone());
        c.add_source(b.clone());
        c.add_destination(a.clone());
        c.add_destination(a.clone()); // duplicated at the destination
        c.add_destination(b.clone());
        let m = c.finish();
        assert_eq!(m.diffs, vec![Diff { ident: a.clone(), kind: DiffKind::Extra, columns: vec![] }]);
        assert_eq!((m.rows_source, m.rows_destination), (2, 3));

        // the same row twice on the source, once at the destination: one missing
        let mut c = ChunkCompare::new(vec![], KeyRange::Whole);
        c.add_source(a.clone());
        c.add_source(a.clone());
        c.add_destination(a.clone());
        assert_eq!(c.finish().diffs, vec![Diff { ident: a.clone(), kind: DiffKind::Missing, columns: vec![] }]);

        // a keyless update and delete act on one copy of the whole row
        let mut c = ChunkCompare::new(vec![], KeyRange::Whole);
        c.add_source(a.clone());
        c.add_source(a.clone());
        c.apply(Change::Update { old_key: a.clone(), row: b.clone() });
        c.apply(Change::Delete { old_key: a.clone() });
        c.add_destination(b.clone());
        assert!(c.finish().diffs.is_empty());
    }

    #[test]
    fn record_text_writes_what_record_out_writes() {
        let rows = vec![
            r(&[Some("1"), None, Some("plain"), Some("")]),
            r(&[Some("2"), Some("a b"), Some("q\"x"), Some("b\\s"), Some("(p)"), Some("c,d"), Some("t\tn\nv\u{b}")]),
            r(&[Some("3"), Some("é€")]),
        ];
        assert_eq!(
            record_text(&rows),
            "(1,,plain,\"\")\n(2,\"a b\",\"q\"\"x\",\"b\\\\s\",\"(p)\",\"c,d\",\"t\tn\nv\u{b}\")\n(3,é€)"
        );
        assert_eq!(record_text(&[]), "");
    }

    /// The char-by-char writer `record_text` replaced (byte-wise now): both write the same.
    fn record_text_by_chars(rows: &[Row]) -> String {
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('(');
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let Some(v) = v else { continue };
                let quote = v.is_empty()
                    || v.chars().any(|c| {
                        matches!(c, '"' | '\\' | '(' | ')' | ',' | ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
                    });
                if !quote {
                    out.push_str(v);
                    continue;
                }
                out.push('"');
                for ch in v.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push(ch);
                    }
                    out.push(ch);
                }
                out.push('"');
            }
            out.push(')');
        }
        out
    }

    /// `rows` with one bit of the value in column 1 of one row flipped, for every bit of every
    /// such value that stays valid UTF-8 (a value PostgreSQL could hold), and what was flipped.
    fn one_bit_changes(rows: &[Row]) -> Vec<(String, Vec<Row>)> {
        let mut out = Vec::new();
        for (ri, row) in rows.iter().enumerate() {
            let v = row[1].as_deref().unwrap_or_default();
            for at in 0..v.len() {
                for bit in 0..8 {
                    let mut bytes = v.as_bytes().to_vec();
                    bytes[at] ^= 1 << bit;
                    let Ok(flipped) = String::from_utf8(bytes) else { continue };
                    let mut changed = rows.to_vec();
                    changed[ri][1] = Some(flipped);
                    out.push((format!("{v:?} byte {at} bit {bit}"), changed));
                }
            }
        }
        out
    }

    #[test]
    fn record_text_changes_with_any_one_bit_of_a_value() {
        let values = ["00000000001-abc", "a\"b\\c(d)e,f g", "é€𝄞 x", "", "t\tn\nv\u{b}f\u{c}r\r", "NULL"];
        let rows: Vec<Row> = values.iter().map(|v| r(&[Some("1"), Some(v), None])).collect();
        let base = record_text(&rows);
        assert_eq!(base, record_text_by_chars(&rows));
        for (what, changed) in one_bit_changes(&rows) {
            let text = record_text(&changed);
            assert_ne!(text, base, "{what}");
            assert_eq!(text, record_text_by_chars(&changed));
        }
        // NULL, empty and the text "NULL" are three different texts; so is a value moved to
        // the next column
        let null = vec![r(&[Some("1"), None])];
        let empty = vec![r(&[Some("1"), Some("")])];
        assert_ne!(record_text(&null), record_text(&empty));
        assert_ne!(record_text(&[r(&[Some("a,b")])]), record_text(&[r(&[Some("a"), Some("b")])]));
    }

    fn col(form: ColumnForm, delimit: Delimit) -> ChunkColumn {
        ChunkColumn { form, delimit }
    }

    /// A chunk's text read back, as the delimiting says (the test of its injectivity).
    fn parse_chunk_text(text: &str, cols: &[ChunkColumn], ncols: usize) -> Option<Vec<Row>> {
        let b = text.as_bytes();
        let mut rows = Vec::new();
        let mut at = 0;
        if b.is_empty() {
            return Some(rows);
        }
        loop {
            let mut row = Vec::new();
            for j in 0..ncols {
                let delimit = cols.get(j).copied().unwrap_or_default().delimit;
                let end = b[at..].iter().position(|&c| c == b',' || c == b'\n').map_or(b.len(), |p| at + p);
                let first = &text[at..end];
                if first == "N" {
                    row.push(None);
                    at = end;
                } else if delimit == Delimit::Bare {
                    row.push(Some(first.to_string()));
                    at = end;
                } else {
                    let len: usize = first.parse().ok()?;
                    if b.get(end) != Some(&b',') || end + 1 + len > b.len() {
                        return None;
                    }
                    row.push(Some(text.get(end + 1..end + 1 + len)?.to_string()));
                    at = end + 1 + len;
                }
                let sep = if j + 1 < ncols { b',' } else { b'\n' };
                match b.get(at) {
                    Some(&c) if c == sep => at += 1,
                    None if j + 1 == ncols => {
                        rows.push(row);
                        return Some(rows);
                    }
                    _ => return None,
                }
            }
            rows.push(row);
        }
    }

    #[test]
    fn a_chunk_text_reads_back_as_the_rows_it_wrote() {
        let counted = ChunkColumn::default();
        let bare = col(ColumnForm::AsIs, Delimit::Bare);
        let cols = [bare, counted, counted, bare];
        let values = ["", "N", "0", "12", "a,b", "x\ny", "2,ab", ",", "\n", "é€𝄞", "N,N", "3,abc,"];
        let mut rows = Vec::new();
        for (i, a) in values.iter().enumerate() {
            for b in values {
                rows.push(r(&[Some(&i.to_string()), Some(a), Some(b), Some("2024-01-05 10:11:12")]));
                rows.push(r(&[None, None, Some(b), None]));
                rows.push(r(&[Some("-1.5e+100"), Some(a), None, Some("\\x0aff")]));
            }
        }
        let text = chunk_text(&rows, &cols).expect("every bare value is plain");
        assert_eq!(parse_chunk_text(&text, &cols, 4), Some(rows.clone()));
        // row by row too: no row's text is another's
        let mut seen = HashSet::new();
        for row in &rows {
            let t = chunk_text(std::slice::from_ref(row), &cols).expect("plain");
            assert_eq!(parse_chunk_text(&t, &cols, 4).as_deref(), Some(std::slice::from_ref(row)));
            assert!(seen.insert(t.clone()) || rows.iter().filter(|x| *x == row).count() > 1, "{t}");
        }
        assert_eq!(chunk_text(&[], &cols).as_deref(), Some(""));
        assert_eq!(chunk_text(&[r(&[Some("1"), Some("a,b"), None, Some("t")])], &cols).as_deref(), Some("1,3,a,b,N,t"));
        // a bare value that could be read two ways is no text: the chunk goes row by row
        for bad in ["1,2", "N", "1\n2"] {
            assert_eq!(chunk_text(&[r(&[Some(bad), None, None, None])], &cols), None, "{bad}");
        }
    }

    #[test]
    fn a_chunk_text_changes_with_any_one_bit_of_a_value() {
        let cols = [col(ColumnForm::AsIs, Delimit::Bare), ChunkColumn::default(), ChunkColumn::default()];
        let values = ["00000000001-abc", "a\"b\\c(d)e,f g", "é€𝄞 x", "", "t\tn\nv\u{b}f\u{c}r\r", "N", "4,abcd"];
        let rows: Vec<Row> = values.iter().map(|v| r(&[Some("1"), Some(v), None])).collect();
        let base = chunk_text(&rows, &cols).expect("plain");
        for (what, changed) in one_bit_changes(&rows) {
            assert_ne!(chunk_text(&changed, &cols).expect("plain"), base, "{what}");
        }
        // NULL, empty and the text "N" are three different texts; so is a value moved to the
        // next column, or to the next row
        let one = |v: Option<&str>| chunk_text(&[r(&[Some("1"), v, None])], &cols);
        assert_ne!(one(None), one(Some("")));
        assert_ne!(one(None), one(Some("N")));
        assert_ne!(one(Some("")), one(Some("N")));
        let two = |a: &str, b: &str| chunk_text(&[r(&[Some("1"), Some(a), Some(b)])], &cols);
        assert_ne!(two("a,b", "c"), two("a", "b,c"));
        let lines = chunk_text(&[r(&[Some("1"), Some("a"), Some("b\n1")])], &cols);
        assert_ne!(lines, chunk_text(&[r(&[Some("1"), Some("a"), Some("b")]), r(&[Some("1"), None, None])], &cols));
    }

    #[test]
    fn a_padded_column_is_written_as_character_n_writes_it() {
        let rows = vec![r(&[Some("1"), Some("ab"), Some("x")]), r(&[Some("2"), Some(""), Some("é€")])];
        let bare = col(ColumnForm::AsIs, Delimit::Bare);
        let pads = [bare, col(ColumnForm::Padded(4), Delimit::Counted), col(ColumnForm::Padded(3), Delimit::Counted)];
        // the length is of the padded value, in bytes
        assert_eq!(chunk_text(&rows, &pads).as_deref(), Some("1,4,ab  ,3,x  \n2,4,    ,6,é€ "));
        // a value as long as its width (or longer) is not padded
        let full = vec![r(&[Some("1"), Some("abcd"), Some("abcdef")])];
        assert_eq!(chunk_text(&full, &pads).as_deref(), Some("1,4,abcd,6,abcdef"));
        // one bit of a padded value changes the text
        let base = chunk_text(&rows, &pads);
        for (what, changed) in one_bit_changes(&rows) {
            assert_ne!(chunk_text(&changed, &pads), base, "{what}");
        }
        // a trailing space is padding: "ab " and "ab" are the same character(4)
        let spaced = vec![r(&[Some("1"), Some("ab "), Some("x")]), rows[1].clone()];
        assert_eq!(chunk_text(&spaced, &pads), base);
    }

    #[test]
    fn a_fraction_is_written_as_postgresql_writes_it() {
        for (converted, written) in [
            ("2024-01-05 10:11:12.500000", "2024-01-05 10:11:12.5"),
            ("2024-01-05 10:11:12.000000", "2024-01-05 10:11:12"),
            ("2024-01-05 10:11:12.000001", "2024-01-05 10:11:12.000001"),
            ("2024-01-05 10:11:12.120000+00", "2024-01-05 10:11:12.12+00"),
            ("2024-01-05 10:11:12.000000+00", "2024-01-05 10:11:12+00"),
            ("2024-01-05 10:11:12", "2024-01-05 10:11:12"),
            ("23:59:59.500000", "23:59:59.5"),
            ("-infinity", "-infinity"),
            ("2024-01-05", "2024-01-05"),
        ] {
            assert_eq!(trimmed_fraction(converted), written, "{converted}");
        }
        let bare = col(ColumnForm::AsIs, Delimit::Bare);
        let forms = [bare, col(ColumnForm::TrimmedFraction, Delimit::Bare)];
        let rows = vec![r(&[Some("1"), Some("2024-01-05 10:11:12.500000")]), r(&[Some("2"), None])];
        assert_eq!(chunk_text(&rows, &forms).as_deref(), Some("1,2024-01-05 10:11:12.5\n2,N"));
        // a microsecond more is another text
        let later = vec![r(&[Some("1"), Some("2024-01-05 10:11:12.500001")]), r(&[Some("2"), None])];
        assert_ne!(chunk_text(&later, &forms), chunk_text(&rows, &forms));
    }

    #[test]
    fn moving_forward_in_key_order_is_what_the_row_comparison_does() {
        let range = KeyRange::Int { lo: Some(10), hi: Some(20) };
        let rows = vec![r(&[Some("11"), Some("old")]), r(&[Some("12"), Some("gone")]), r(&[Some("13"), Some("moves")])];
        // nothing touches the range: the rows as read
        let far = vec![Change::Insert(r(&[Some("99"), Some("x")]))];
        assert_eq!(moved_forward_in_key_order(rows.clone(), 0, &range, &far), Ok((rows.clone(), false)));
        let changes = vec![
            Change::Update { old_key: r(&[Some("11")]), row: r(&[Some("11"), Some("new")]) },
            Change::Delete { old_key: r(&[Some("12")]) },
            Change::Update { old_key: r(&[Some("13")]), row: r(&[Some("30"), Some("moves")]) },
            Change::Insert(r(&[Some("15"), Some("a")])),
            Change::Insert(r(&[Some("25"), Some("b")])),
            Change::Update { old_key: r(&[Some("40")]), row: r(&[Some("14"), Some("in")]) },
        ];
        assert_eq!(
            moved_forward_in_key_order(rows.clone(), 0, &range, &changes),
            Ok((vec![r(&[Some("11"), Some("new")]), r(&[Some("14"), Some("in")]), r(&[Some("15"), Some("a")])], true))
        );
        // the same through ChunkCompare
        let mut c = keyed(range.clone());
        rows.into_iter().for_each(|x| c.add_source(x));
        changes.into_iter().for_each(|x| c.apply(x));
        c.add_destination(r(&[Some("11"), Some("new")]));
        c.add_destination(r(&[Some("14"), Some("in")]));
        c.add_destination(r(&[Some("15"), Some("a")]));
        assert!(c.finish().diffs.is_empty());
        // a key that is not an integer, or rows out of order: compared by rows
        let bad = vec![r(&[Some("x")])];
        assert_eq!(moved_forward_in_key_order(bad.clone(), 0, &range, &[]), Err(bad));
        let unordered = vec![r(&[Some("12")]), r(&[Some("11")])];
        assert_eq!(moved_forward_in_key_order(unordered.clone(), 0, &range, &[]), Err(unordered));
    }

    #[test]
    fn a_tally_counts_every_kind_and_keeps_a_bounded_sample() {
        let mut t = Tally::default();
        for i in 0..(SAMPLE_ROWS + 5) {
            let kind = [DiffKind::Missing, DiffKind::Extra, DiffKind::Different][i % 3];
            t.add(Diff { ident: r(&[Some(&i.to_string())]), kind, columns: vec![] });
        }
        assert_eq!(t.total(), (SAMPLE_ROWS + 5) as u64);
        assert_eq!(t.sample.len(), SAMPLE_ROWS);
        assert_eq!((t.missing, t.extra, t.different), (35, 35, 35));
        assert_eq!(t.all_keys().map(<[Row]>::len), Some(SAMPLE_ROWS + 5), "every key kept for a repair by key");
        for i in 0..REPAIR_KEYS {
            t.add(Diff { ident: r(&[Some(&i.to_string())]), kind: DiffKind::Missing, columns: vec![] });
        }
        assert_eq!(t.idents.len(), REPAIR_KEYS);
        assert!(t.all_keys().is_none(), "too many to repair by key");
    }
}
