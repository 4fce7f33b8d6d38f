//! Statement structure: our own small AST (`Stmt`) read from the tokens of `normalize`.
//! The forms binlog DDL takes (mysqldump output, ORMs, online schema change tools, MariaDB
//! extensions) are read by hand, since sqlparser's MySqlDialect refuses many of them
//! (`ENGINE=` in ALTER, `RENAME INDEX`, `DROP KEY`, `CONVERT TO`, `FORCE`, `PARTITION BY`,
//! `LONG VARCHAR`, column `CHARSET`, MariaDB `IF [NOT] EXISTS`...); sqlparser reads the
//! expressions inside (DEFAULT, generated columns) to tell literals from expressions.

use super::normalize::{render, Tok};
use sqlparser::dialect::MySqlDialect;

/// A table name as written: schema (if qualified) and table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub schema: Option<String>,
    pub table: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    CreateTable {
        name: Name,
        temporary: bool,
        if_not_exists: bool,
        or_replace: bool,
        body: CreateBody,
    },
    AlterTable {
        name: Name,
        ops: Vec<AlterOp>,
    },
    DropTable {
        temporary: bool,
        if_exists: bool,
        names: Vec<Name>,
    },
    Rename(Vec<(Name, Name)>),
    Truncate(Name),
    CreateIndex {
        table: Name,
        index: IndexSpec,
        if_not_exists: bool,
    },
    DropIndex {
        table: Name,
        name: String,
        if_exists: bool,
    },
    CreateDatabase(String),
    DropDatabase(String),
    /// No structure of a replicated table can change: why.
    Skip(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CreateBody {
    Elements {
        elements: Vec<Element>,
        charset: Option<String>,
        comment: Option<String>,
    },
    Like(Name),
    /// `CREATE TABLE ... [AS] SELECT`: rows we never see as row events of a known table.
    Select,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Element {
    Column(ColumnSpec),
    Index(IndexSpec),
    ForeignKey(ForeignKeySpec),
    /// CHECK constraints and the like: nothing for the replica.
    Ignored,
}

/// A column definition as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ColumnSpec {
    pub name: String,
    /// Type words, lower case and joined by a space (`int`, `double precision`, `long varchar`).
    pub type_name: String,
    /// Numbers between the type's parentheses.
    pub args: Vec<u64>,
    /// ENUM / SET members.
    pub labels: Vec<String>,
    pub unsigned: bool,
    pub zerofill: bool,
    /// NOT NULL (Some(false)), NULL (Some(true)), or not said.
    pub nullable: Option<bool>,
    pub default: Option<DefaultSpec>,
    pub auto_increment: bool,
    pub primary_key: bool,
    pub unique: bool,
    pub comment: Option<String>,
    pub charset: Option<String>,
    /// The character set was implied by the type (`NATIONAL`, `ASCII`, `UNICODE`).
    pub implied_charset: Option<String>,
    /// `ON UPDATE` expression.
    pub on_update: Option<String>,
    /// `VIRTUAL` / `STORED` (MariaDB `PERSISTENT`) generated column.
    pub generated: Option<String>,
    /// SERIAL / SERIAL DEFAULT VALUE: NOT NULL AUTO_INCREMENT UNIQUE.
    pub serial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefaultSpec {
    Null,
    Str(String),
    Num(String),
    /// `CURRENT_TIMESTAMP`, `NOW()`, ... with the fractional digits, if any.
    CurrentTimestamp(Option<u64>),
    /// Another expression (bit/hex literals included), as text.
    Expr(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    Primary,
    Unique,
    Plain,
    Fulltext,
    Spatial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexSpec {
    pub name: Option<String>,
    /// `CONSTRAINT symbol` before it (names a unique index without its own name).
    pub constraint: Option<String>,
    pub kind: IndexKind,
    /// Column names; `None` for an expression part.
    pub columns: Vec<Option<String>>,
    pub prefix: bool,
    /// `USING HASH` / `USING BTREE`.
    pub using: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignKeySpec {
    pub constraint: Option<String>,
    pub index_name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: Name,
    pub ref_columns: Vec<String>,
    pub on_delete: Option<String>,
    pub on_update: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    First,
    After(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AlterOp {
    AddColumn {
        col: ColumnSpec,
        pos: Option<Position>,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    /// CHANGE (old name given) and MODIFY (old name = new name).
    Change {
        old: String,
        col: ColumnSpec,
        pos: Option<Position>,
        if_exists: bool,
    },
    RenameColumn {
        old: String,
        new: String,
    },
    SetDefault {
        col: String,
        default: DefaultSpec,
    },
    DropDefault {
        col: String,
    },
    AddIndex {
        index: IndexSpec,
        if_not_exists: bool,
    },
    DropIndex {
        name: String,
        if_exists: bool,
    },
    DropPrimaryKey,
    RenameIndex {
        old: String,
        new: String,
    },
    AddForeignKey(ForeignKeySpec),
    DropForeignKey {
        name: String,
    },
    /// MySQL 8 `DROP CONSTRAINT x`: a foreign key, a unique index or a check.
    DropConstraint {
        name: String,
    },
    RenameTable(Name),
    TableComment(String),
    /// `[DEFAULT] CHARSET=`: the default of columns added later.
    TableCharset(String),
    /// `CONVERT TO CHARACTER SET`: every character column takes it.
    Convert(String),
    /// A clause with no meaning for the replica (ENGINE=, ALGORITHM=, partitions...).
    Ignored(String),
    /// A clause that changes rows or structure in a way we cannot follow.
    Unsupported(String),
}

/// A statement we could not read: the table it is about, when its header was readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseFail {
    pub table: Option<Name>,
    /// The statement creates or changes tables (so it matters when in a mapped schema).
    pub structural: bool,
    /// Schema names mentioned (qualified names), for deciding whether it matters.
    pub message: String,
}

type PResult<T> = Result<T, String>;

/// A cursor over tokens.
pub(crate) struct P<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl<'a> P<'a> {
    pub(crate) fn new(toks: &'a [Tok]) -> Self {
        P { toks, i: 0 }
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }

    fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.toks.get(self.i + n)
    }

    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    fn done(&self) -> bool {
        // a trailing `;` ends the statement
        self.toks.get(self.i..).is_none_or(|rest| rest.iter().all(|t| t.is_punct(";")))
    }

    fn rest(&self) -> &'a [Tok] {
        self.toks.get(self.i..).unwrap_or(&[])
    }

    fn is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is(kw))
    }

    fn is_at(&self, n: usize, kw: &str) -> bool {
        self.peek_at(n).is_some_and(|t| t.is(kw))
    }

    fn is_punct(&self, p: &str) -> bool {
        self.peek().is_some_and(|t| t.is_punct(p))
    }

    fn eat(&mut self, kw: &str) -> bool {
        if self.is(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_seq(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, k)| self.is_at(n, k)) {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(format!("expected {p} {}", self.here()))
        }
    }

    fn expect(&mut self, kw: &str) -> PResult<()> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(format!("expected {kw} {}", self.here()))
        }
    }

    fn here(&self) -> String {
        match self.peek() {
            Some(t) => format!("at {}", t.render()),
            None => "at the end".into(),
        }
    }

    fn ident(&mut self) -> PResult<String> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                self.i += 1;
                Ok(w.clone())
            }
            // MySQL accepts a string as a name in a few places (ALTER ... RENAME INDEX 'x')
            Some(Tok::Str { value, prefix: None }) => {
                self.i += 1;
                Ok(value.clone())
            }
            _ => Err(format!("expected a name {}", self.here())),
        }
    }

    /// `name`, `schema.name`.
    fn name(&mut self) -> PResult<Name> {
        let first = self.ident()?;
        if self.is_punct(".") {
            self.i += 1;
            let table = self.ident()?;
            return Ok(Name { schema: Some(first), table });
        }
        Ok(Name { schema: None, table: first })
    }

    /// The tokens of a parenthesized group (after its `(`, up to the matching `)`).
    fn group(&mut self) -> PResult<&'a [Tok]> {
        self.expect_punct("(")?;
        let start = self.i;
        let mut depth = 1usize;
        while let Some(t) = self.next() {
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth -= 1;
                if depth == 0 {
                    return Ok(self.toks.get(start..self.i - 1).unwrap_or(&[]));
                }
            }
        }
        Err("unbalanced parentheses".into())
    }

    fn number(&mut self) -> PResult<u64> {
        match self.next() {
            Some(Tok::Num(n)) => n.parse().map_err(|_| format!("bad number {n}")),
            _ => Err(format!("expected a number {}", self.here())),
        }
    }

    /// Skips `[=] value` of a table option.
    fn option_value(&mut self) -> PResult<String> {
        self.eat_punct("=");
        match self.next() {
            Some(Tok::Str { value, .. }) => Ok(value.clone()),
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) | Some(Tok::Num(w)) => Ok(w.clone()),
            _ => Err(format!("expected a value {}", self.here())),
        }
    }
}

/// Splits tokens at top-level commas.
pub(crate) fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if t.is_punct(",") && depth == 0 {
            out.push(toks.get(start..i).unwrap_or(&[]));
            start = i + 1;
        }
    }
    out.push(toks.get(start..).unwrap_or(&[]));
    out
}

/// Reads one statement.
pub(crate) fn statement(toks: &[Tok]) -> Result<Stmt, ParseFail> {
    let mut p = P::new(toks);
    let fail = |table: Option<Name>, structural: bool, message: String| ParseFail { table, structural, message };
    let Some(first) = p.peek() else { return Ok(Stmt::Skip("empty statement".into())) };
    let kw = first.ident().map(str::to_ascii_uppercase).unwrap_or_default();
    if !matches!(first, Tok::Word(_)) {
        return Ok(Stmt::Skip("not a statement about tables".into()));
    }
    p.i += 1;
    match kw.as_str() {
        "CREATE" => create(&mut p),
        "ALTER" => alter(&mut p),
        "DROP" => drop(&mut p),
        "RENAME" => {
            if !(p.eat("TABLE") || p.eat("TABLES")) {
                return Ok(Stmt::Skip("RENAME of something other than tables".into()));
            }
            let mut pairs = Vec::new();
            loop {
                let from = p.name().map_err(|m| fail(None, true, m))?;
                p.expect("TO").map_err(|m| fail(Some(from.clone()), true, m))?;
                let to = p.name().map_err(|m| fail(Some(from.clone()), true, m))?;
                pairs.push((from, to));
                // MariaDB: RENAME TABLE t WAIT n / NOWAIT TO ...
                if !p.eat_punct(",") {
                    break;
                }
            }
            if !p.done() {
                return Err(fail(pairs.first().map(|x| x.0.clone()), true, format!("unexpected {}", p.here())));
            }
            Ok(Stmt::Rename(pairs))
        }
        "TRUNCATE" => {
            p.eat("TABLE");
            let name = p.name().map_err(|m| fail(None, true, m))?;
            Ok(Stmt::Truncate(name))
        }
        other => Ok(Stmt::Skip(format!(
            "{} statement: no structure to replicate",
            if other.is_empty() { "unknown" } else { other }
        ))),
    }
}

fn create(p: &mut P) -> Result<Stmt, ParseFail> {
    let fail = |table: Option<Name>, message: String| ParseFail { table, structural: true, message };
    let or_replace = p.eat_seq(&["OR", "REPLACE"]);
    let temporary = p.eat("TEMPORARY");
    if p.eat("TABLE") {
        let if_not_exists = p.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = p.name().map_err(|m| fail(None, m))?;
        let body = create_body(p).map_err(|m| fail(Some(name.clone()), m))?;
        return Ok(Stmt::CreateTable { name, temporary, if_not_exists, or_replace, body });
    }
    if temporary {
        return Ok(Stmt::Skip("CREATE TEMPORARY something: not replicated".into()));
    }
    let unique = if p.eat("UNIQUE") {
        Some(IndexKind::Unique)
    } else if p.eat("FULLTEXT") {
        Some(IndexKind::Fulltext)
    } else if p.eat("SPATIAL") {
        Some(IndexKind::Spatial)
    } else {
        None
    };
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    if p.eat("INDEX") {
        let if_not_exists = p.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = p.ident().map_err(|m| fail(None, m))?;
        let mut using = None;
        if p.eat("USING") || p.eat("TYPE") {
            using = p.ident().ok();
        }
        p.expect("ON").map_err(|m| fail(None, m))?;
        let table = p.name().map_err(|m| fail(None, m))?;
        let (columns, prefix) = index_columns(p).map_err(|m| fail(Some(table.clone()), m))?;
        if p.eat("USING") || p.eat("TYPE") {
            using = p.ident().ok();
        }
        let index = IndexSpec {
            name: Some(name),
            constraint: None,
            kind: unique.unwrap_or(IndexKind::Plain),
            columns,
            prefix,
            using,
        };
        return Ok(Stmt::CreateIndex { table, index, if_not_exists });
    }
    if unique.is_none() && (p.eat("DATABASE") || p.eat("SCHEMA")) {
        p.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = p.ident().map_err(|m| fail(None, m))?;
        return Ok(Stmt::CreateDatabase(name));
    }
    let what = p.rest().iter().find_map(|t| match t {
        Tok::Word(w)
            if [
                "VIEW",
                "TRIGGER",
                "PROCEDURE",
                "FUNCTION",
                "EVENT",
                "USER",
                "ROLE",
                "SERVER",
                "SEQUENCE",
                "TABLESPACE",
                "LOGFILE",
                "PACKAGE",
                "SYNONYM",
                "RESOURCE",
                "SPATIAL",
            ]
            .contains(&w.to_ascii_uppercase().as_str()) =>
        {
            Some(w.to_ascii_uppercase())
        }
        _ => None,
    });
    Ok(Stmt::Skip(format!("CREATE {}: no table structure to replicate", what.unwrap_or_else(|| "(other)".into()))))
}

fn create_body(p: &mut P) -> PResult<CreateBody> {
    if p.eat("LIKE") {
        return Ok(CreateBody::Like(p.name()?));
    }
    if p.is_punct("(") && p.is_at(1, "LIKE") {
        let g = p.group()?;
        let mut q = P::new(g);
        q.expect("LIKE")?;
        return Ok(CreateBody::Like(q.name()?));
    }
    if p.is_punct("(") && (p.is_at(1, "SELECT") || p.peek_at(1).is_some_and(|t| t.is_punct("("))) {
        return Ok(CreateBody::Select);
    }
    if p.done() {
        return Err("CREATE TABLE without columns".into());
    }
    let mut elements = Vec::new();
    if p.is_punct("(") {
        for part in split_commas(p.group()?) {
            if part.is_empty() {
                return Err("empty element in CREATE TABLE".into());
            }
            elements.push(element(part)?);
        }
    }
    let (charset, comment, select) = table_options(p)?;
    if select {
        return Ok(CreateBody::Select);
    }
    if elements.is_empty() {
        return Err("CREATE TABLE without columns".into());
    }
    Ok(CreateBody::Elements { elements, charset, comment })
}

/// Table options after the element list: the default character set and the comment; true
/// when a SELECT follows (the rows come from a query).
fn table_options(p: &mut P) -> PResult<(Option<String>, Option<String>, bool)> {
    let mut charset = None;
    let mut comment = None;
    while !p.done() {
        if p.eat_punct(",") {
            continue;
        }
        if p.is("AS")
            || p.is("SELECT")
            || p.is("IGNORE")
            || p.is("REPLACE")
            || p.is("WITH")
            || p.is("TABLE")
            || p.is("VALUES")
            || p.is_punct("(")
        {
            if p.is("WITH") && p.is_at(1, "SYSTEM") {
                p.i += 3;
                continue;
            }
            return Ok((charset, comment, true));
        }
        if p.is("PARTITION") || p.is("PARTITIONS") || p.is("SUBPARTITION") {
            // partitioning: nothing for PostgreSQL, and it runs to the end
            break;
        }
        let _ = p.eat("DEFAULT");
        if p.eat_seq(&["CHARACTER", "SET"]) || p.eat("CHARSET") || p.eat_seq(&["CHAR", "SET"]) {
            charset = Some(p.option_value()?.to_ascii_lowercase());
        } else if p.eat("COMMENT") {
            comment = Some(p.option_value()?);
        } else if p.eat_seq(&["DATA", "DIRECTORY"]) || p.eat_seq(&["INDEX", "DIRECTORY"]) {
            p.option_value()?;
        } else if p.eat("UNION") {
            p.eat_punct("=");
            p.group()?;
        } else if p.eat_seq(&["START", "TRANSACTION"]) {
        } else if matches!(p.peek(), Some(Tok::Word(_))) {
            p.i += 1;
            // `KEY [=] value`; a few options are bare words (STORAGE DISK)
            if !p.done() && !p.is_punct(",") {
                p.option_value()?;
            }
        } else {
            return Err(format!("unexpected {} in table options", p.here()));
        }
    }
    Ok((charset, comment, false))
}

/// One element of CREATE TABLE: column, index, foreign key or check.
fn element(toks: &[Tok]) -> PResult<Element> {
    let mut p = P::new(toks);
    let starts = |p: &P, kws: &[&str]| kws.iter().any(|k| p.is(k));
    if starts(
        &p,
        &["PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK", "PERIOD"],
    ) && !p.peek_at(1).is_some_and(|t| matches!(t, Tok::Word(w) if is_type_word(w)))
    {
        return constraint(&mut p);
    }
    Ok(Element::Column(column(&mut p)?))
}

/// An index, foreign key or check constraint (CREATE TABLE element or ALTER ... ADD).
fn constraint(p: &mut P) -> PResult<Element> {
    let mut symbol = None;
    if p.eat("CONSTRAINT") && !(p.is("PRIMARY") || p.is("UNIQUE") || p.is("FOREIGN") || p.is("CHECK")) {
        symbol = Some(p.ident()?);
    }
    if p.eat("CHECK") || p.eat("PERIOD") {
        return Ok(Element::Ignored);
    }
    if p.eat_seq(&["FOREIGN", "KEY"]) {
        p.eat_seq(&["IF", "NOT", "EXISTS"]);
        let index_name = if p.is_punct("(") { None } else { Some(p.ident()?) };
        let columns = name_list(p.group()?)?;
        p.expect("REFERENCES")?;
        let ref_table = p.name()?;
        let ref_columns = if p.is_punct("(") { name_list(p.group()?)? } else { Vec::new() };
        let (mut on_delete, mut on_update) = (None, None);
        while !p.done() {
            if p.eat("MATCH") {
                p.ident()?;
            } else if p.eat_seq(&["ON", "DELETE"]) {
                on_delete = Some(ref_action(p)?);
            } else if p.eat_seq(&["ON", "UPDATE"]) {
                on_update = Some(ref_action(p)?);
            } else {
                return Err(format!("unexpected {} in FOREIGN KEY", p.here()));
            }
        }
        return Ok(Element::ForeignKey(ForeignKeySpec {
            constraint: symbol,
            index_name,
            columns,
            ref_table,
            ref_columns,
            on_delete,
            on_update,
        }));
    }
    let kind = if p.eat_seq(&["PRIMARY", "KEY"]) {
        IndexKind::Primary
    } else if p.eat("UNIQUE") {
        let _ = p.eat("KEY") || p.eat("INDEX");
        IndexKind::Unique
    } else if p.eat("FULLTEXT") {
        let _ = p.eat("KEY") || p.eat("INDEX");
        IndexKind::Fulltext
    } else if p.eat("SPATIAL") {
        let _ = p.eat("KEY") || p.eat("INDEX");
        IndexKind::Spatial
    } else if p.eat("KEY") || p.eat("INDEX") {
        IndexKind::Plain
    } else {
        return Err(format!("expected an index {}", p.here()));
    };
    let index = index_body(p, kind, symbol)?;
    Ok(Element::Index(index))
}

/// `[IF NOT EXISTS] [name] [USING type] (columns) [options]` of an index (IF NOT EXISTS is
/// read by the caller for ALTER).
fn index_body(p: &mut P, kind: IndexKind, constraint: Option<String>) -> PResult<IndexSpec> {
    p.eat_seq(&["IF", "NOT", "EXISTS"]);
    let mut using = None;
    let name = if p.is_punct("(") || p.is("USING") || p.is("TYPE") { None } else { Some(p.ident()?) };
    if p.eat("USING") || p.eat("TYPE") {
        using = Some(p.ident()?.to_ascii_uppercase());
    }
    let (columns, prefix) = index_columns(p)?;
    // index options: USING, KEY_BLOCK_SIZE, COMMENT, VISIBLE, WITH PARSER, IGNORED, CLUSTERING
    while !p.done() {
        if p.eat("USING") || p.eat("TYPE") {
            using = Some(p.ident()?.to_ascii_uppercase());
        } else if p.eat_seq(&["WITH", "PARSER"])
            || p.eat("COMMENT")
            || p.eat("KEY_BLOCK_SIZE")
            || p.eat("CLUSTERING")
            || p.eat("ENGINE_ATTRIBUTE")
            || p.eat("SECONDARY_ENGINE_ATTRIBUTE")
        {
            p.option_value()?;
        } else if p.eat("VISIBLE") || p.eat("INVISIBLE") || p.eat("IGNORED") || p.eat_seq(&["NOT", "IGNORED"]) {
        } else {
            return Err(format!("unexpected {} after an index", p.here()));
        }
    }
    let name = if kind == IndexKind::Primary { Some("PRIMARY".to_string()) } else { name };
    Ok(IndexSpec { name, constraint, kind, columns, prefix, using })
}

/// `(a, b(10) DESC, (expr))`: names (None for expressions) and whether a prefix is used.
fn index_columns(p: &mut P) -> PResult<(Vec<Option<String>>, bool)> {
    let mut cols = Vec::new();
    let mut prefix = false;
    for part in split_commas(p.group()?) {
        let mut q = P::new(part);
        if q.is_punct("(") {
            q.group()?;
            cols.push(None);
        } else {
            cols.push(Some(q.ident()?));
            if q.is_punct("(") {
                q.group()?;
                prefix = true;
            }
        }
        let _ = q.eat("ASC") || q.eat("DESC");
        if !q.done() {
            return Err(format!("unexpected {} in index columns", q.here()));
        }
    }
    if cols.is_empty() {
        return Err("index without columns".into());
    }
    Ok((cols, prefix))
}

fn name_list(toks: &[Tok]) -> PResult<Vec<String>> {
    split_commas(toks)
        .into_iter()
        .map(|part| {
            let mut q = P::new(part);
            let n = q.ident()?;
            if q.is_punct("(") {
                q.group()?;
            }
            let _ = q.eat("ASC") || q.eat("DESC");
            if q.done() {
                Ok(n)
            } else {
                Err(format!("unexpected {} in a column list", q.here()))
            }
        })
        .collect()
}

fn ref_action(p: &mut P) -> PResult<String> {
    for a in [&["SET", "NULL"][..], &["SET", "DEFAULT"], &["NO", "ACTION"], &["CASCADE"], &["RESTRICT"]] {
        if p.eat_seq(a) {
            return Ok(a.join(" "));
        }
    }
    Err(format!("expected a referential action {}", p.here()))
}

/// Words that start a data type (so `KEY` or `INDEX` as a column name followed by a type is
/// a column, not an index).
fn is_type_word(w: &str) -> bool {
    const TYPES: &[&str] = &[
        "int",
        "integer",
        "tinyint",
        "smallint",
        "mediumint",
        "bigint",
        "int1",
        "int2",
        "int3",
        "int4",
        "int8",
        "middleint",
        "bool",
        "boolean",
        "decimal",
        "dec",
        "numeric",
        "fixed",
        "float",
        "double",
        "real",
        "float4",
        "float8",
        "bit",
        "char",
        "character",
        "varchar",
        "nchar",
        "nvarchar",
        "national",
        "varcharacter",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "long",
        "binary",
        "varbinary",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "date",
        "datetime",
        "timestamp",
        "time",
        "year",
        "json",
        "enum",
        "set",
        "serial",
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
        "inet4",
        "inet6",
        "uuid",
        "vector",
        "varchar2",
        "number",
        "raw",
        "clob",
    ];
    TYPES.contains(&w.to_ascii_lowercase().as_str())
}

/// A column definition: name, type, options.
pub(crate) fn column(p: &mut P) -> PResult<ColumnSpec> {
    let mut c = ColumnSpec { name: p.ident()?, ..Default::default() };
    data_type(p, &mut c)?;
    while !p.done() {
        column_option(p, &mut c)?;
    }
    Ok(c)
}

fn data_type(p: &mut P, c: &mut ColumnSpec) -> PResult<()> {
    let mut words: Vec<String> = Vec::new();
    let word = |p: &mut P| match p.peek() {
        Some(Tok::Word(w)) => {
            p.i += 1;
            Ok(w.to_ascii_lowercase())
        }
        _ => Err(format!("expected a data type {}", p.here())),
    };
    let first = word(p)?;
    match first.as_str() {
        "national" => {
            c.implied_charset = Some("utf8mb3".into());
            words.push(word(p)?);
            if p.is("VARYING") {
                p.i += 1;
                words.push("varying".into());
            }
        }
        "nchar" | "nvarchar" => {
            c.implied_charset = Some("utf8mb3".into());
            words.push(first);
            if p.eat("VARYING") {
                words.push("varying".into());
            }
        }
        "double" => {
            words.push(first);
            if p.eat("PRECISION") {
                words.push("precision".into());
            }
        }
        "char" | "character" => {
            words.push(first);
            if p.eat("VARYING") {
                words.push("varying".into());
            }
        }
        "long" => {
            words.push(first);
            if p.is("VARCHAR") || p.is("VARBINARY") || p.is("CHAR") {
                words.push(word(p)?);
                if p.eat("VARYING") {
                    words.push("varying".into());
                }
            }
        }
        _ => words.push(first),
    }
    c.type_name = words.join(" ");
    if p.is_punct("(") {
        for part in split_commas(p.group()?) {
            match part {
                [Tok::Num(n)] => c.args.push(n.parse().map_err(|_| format!("bad length {n}"))?),
                [Tok::Str { value, .. }] => c.labels.push(value.clone()),
                [] => {}
                other => return Err(format!("unexpected {} in a type", render(other))),
            }
        }
    }
    Ok(())
}

fn column_option(p: &mut P, c: &mut ColumnSpec) -> PResult<()> {
    if p.eat("UNSIGNED") {
        c.unsigned = true;
    } else if p.eat("ZEROFILL") {
        c.zerofill = true;
        c.unsigned = true;
    } else if p.eat("SIGNED")
        || p.eat("BINARY")
        || p.eat("BYTE")
        || p.eat("VISIBLE")
        || p.eat("INVISIBLE")
        || p.eat_seq(&["WITHOUT", "SYSTEM", "VERSIONING"])
        || p.eat_seq(&["WITH", "SYSTEM", "VERSIONING"])
    {
    } else if p.eat("ASCII") {
        c.implied_charset = Some("latin1".into());
    } else if p.eat("UNICODE") {
        c.implied_charset = Some("ucs2".into());
    } else if p.eat_seq(&["NOT", "NULL"]) {
        c.nullable = Some(false);
    } else if p.eat("NULL") {
        c.nullable = Some(true);
    } else if p.eat_seq(&["SERIAL", "DEFAULT", "VALUE"]) {
        c.serial = true;
    } else if p.eat("DEFAULT") {
        c.default = Some(default_value(p)?);
    } else if p.eat("AUTO_INCREMENT") {
        c.auto_increment = true;
    } else if p.eat_seq(&["PRIMARY", "KEY"]) || p.eat("KEY") {
        c.primary_key = true;
    } else if p.eat("UNIQUE") {
        p.eat("KEY");
        c.unique = true;
    } else if p.eat("COMMENT") {
        match p.next() {
            Some(Tok::Str { value, .. }) => c.comment = Some(value.clone()),
            _ => return Err("expected a string after COMMENT".into()),
        }
    } else if p.eat_seq(&["ON", "UPDATE"]) {
        c.on_update = Some(expression(p)?);
    } else if p.eat_seq(&["CHARACTER", "SET"]) || p.eat("CHARSET") || p.eat_seq(&["CHAR", "SET"]) {
        c.charset = Some(p.ident()?.to_ascii_lowercase());
    } else if p.eat("COLLATE") {
        p.ident()?;
    } else if p.eat_seq(&["GENERATED", "ALWAYS"]) || p.is("AS") {
        p.expect("AS")?;
        p.group()?;
        c.generated = Some(if p.eat("STORED") || p.eat("PERSISTENT") { "STORED".into() } else { "VIRTUAL".into() });
        p.eat("VIRTUAL");
    } else if p.eat("COLUMN_FORMAT")
        || p.eat("STORAGE")
        || p.eat("SRID")
        || p.eat("ENGINE_ATTRIBUTE")
        || p.eat("SECONDARY_ENGINE_ATTRIBUTE")
        || p.eat("COMPRESSED")
    {
        if p.is_punct("=") || !(p.done() || matches!(p.peek(), Some(Tok::Word(w)) if is_option_start(w))) {
            p.option_value()?;
        }
    } else if p.eat("CONSTRAINT") || p.is("CHECK") {
        if !p.is("CHECK") {
            p.ident()?;
        }
        p.expect("CHECK")?;
        p.group()?;
        let _ = p.eat("ENFORCED") || p.eat_seq(&["NOT", "ENFORCED"]);
    } else if p.eat("REFERENCES") {
        // an inline REFERENCES is parsed and ignored by MySQL
        p.name()?;
        if p.is_punct("(") {
            p.group()?;
        }
        loop {
            if p.eat("MATCH") {
                p.ident()?;
            } else if p.eat_seq(&["ON", "DELETE"]) || p.eat_seq(&["ON", "UPDATE"]) {
                ref_action(p)?;
            } else {
                break;
            }
        }
    } else {
        return Err(format!("unexpected {} in the definition of column {}", p.here(), c.name));
    }
    Ok(())
}

fn is_option_start(w: &str) -> bool {
    [
        "NOT",
        "NULL",
        "DEFAULT",
        "COMMENT",
        "AUTO_INCREMENT",
        "PRIMARY",
        "UNIQUE",
        "KEY",
        "COLLATE",
        "ON",
        "CHECK",
        "FIRST",
        "AFTER",
    ]
    .iter()
    .any(|k| w.eq_ignore_ascii_case(k))
}

/// The value after DEFAULT.
fn default_value(p: &mut P) -> PResult<DefaultSpec> {
    match p.peek() {
        Some(Tok::Str { value, prefix }) => {
            p.i += 1;
            match prefix.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("b") | Some("x") => {
                    Ok(DefaultSpec::Expr(Tok::Str { value: value.clone(), prefix: prefix.clone() }.render()))
                }
                _ => Ok(DefaultSpec::Str(value.clone())),
            }
        }
        Some(Tok::Num(n)) => {
            p.i += 1;
            Ok(DefaultSpec::Num(n.clone()))
        }
        Some(Tok::Punct(s)) if (s == "-" || s == "+") && matches!(p.peek_at(1), Some(Tok::Num(_))) => {
            let sign = if s == "-" { "-" } else { "" };
            p.i += 1;
            let n = p.number_text()?;
            Ok(DefaultSpec::Num(format!("{sign}{n}")))
        }
        Some(t) if t.is("NULL") => {
            p.i += 1;
            Ok(DefaultSpec::Null)
        }
        Some(t) if t.is("TRUE") || t.is("FALSE") => {
            p.i += 1;
            Ok(DefaultSpec::Num(if t.is("TRUE") { "1" } else { "0" }.into()))
        }
        _ => {
            let text = expression(p)?;
            Ok(classify_expression(&text))
        }
    }
}

impl P<'_> {
    fn number_text(&mut self) -> PResult<String> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n.clone()),
            _ => Err("expected a number".into()),
        }
    }
}

/// An expression: a parenthesized group, or a word with an optional argument list.
fn expression(p: &mut P) -> PResult<String> {
    let start = p.i;
    if p.is_punct("(") {
        p.group()?;
    } else if matches!(p.peek(), Some(Tok::Word(_))) {
        p.i += 1;
        if p.is_punct("(") {
            p.group()?;
        }
    } else {
        return Err(format!("expected an expression {}", p.here()));
    }
    Ok(render(p.toks.get(start..p.i).unwrap_or(&[])))
}

/// CURRENT_TIMESTAMP and its synonyms, or another expression (checked by sqlparser; its
/// text is then sqlparser's).
fn classify_expression(text: &str) -> DefaultSpec {
    let parsed = sqlparser::parser::Parser::new(&MySqlDialect {})
        .with_recursion_limit(32)
        .try_with_sql(text)
        .and_then(|mut q| q.parse_expr());
    let canonical = match &parsed {
        Ok(e) => e.to_string(),
        Err(_) => text.to_string(),
    };
    let inner = canonical.trim_start_matches('(').trim_end_matches(')');
    let lower = inner.to_ascii_lowercase();
    let (head, args) = match lower.split_once('(') {
        Some((h, a)) => (h.trim().to_string(), a.trim_end_matches(')').trim().to_string()),
        None => (lower.trim().to_string(), String::new()),
    };
    if matches!(head.as_str(), "current_timestamp" | "now" | "localtime" | "localtimestamp") {
        if args.is_empty() {
            return DefaultSpec::CurrentTimestamp(None);
        }
        if let Ok(n) = args.parse::<u64>() {
            return DefaultSpec::CurrentTimestamp(Some(n));
        }
    }
    DefaultSpec::Expr(canonical)
}

fn alter(p: &mut P) -> Result<Stmt, ParseFail> {
    let fail = |table: Option<Name>, message: String| ParseFail { table, structural: true, message };
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    p.eat("IGNORE");
    if !p.eat("TABLE") {
        let what = p.peek().and_then(Tok::ident).unwrap_or("?").to_ascii_uppercase();
        return Ok(Stmt::Skip(format!("ALTER {what}: no table structure to replicate")));
    }
    p.eat_seq(&["IF", "EXISTS"]);
    let name = p.name().map_err(|m| fail(None, m))?;
    // MariaDB: ALTER TABLE t WAIT n / NOWAIT
    if p.eat("WAIT") {
        let _ = p.number();
    }
    p.eat("NOWAIT");
    let mut ops = Vec::new();
    let rest = p.rest();
    let rest = match rest.last() {
        Some(t) if t.is_punct(";") => rest.get(..rest.len() - 1).unwrap_or(&[]),
        _ => rest,
    };
    let (clauses, partition) = split_partition(rest);
    let clauses = if clauses.is_empty() { Vec::new() } else { split_commas(clauses) };
    for clause in clauses {
        if clause.is_empty() {
            if rest.is_empty() {
                break;
            }
            return Err(fail(Some(name.clone()), "empty ALTER TABLE clause".into()));
        }
        ops.extend(alter_clause(clause).map_err(|m| fail(Some(name.clone()), m))?);
    }
    if let Some(op) = partition {
        ops.push(op);
    }
    Ok(Stmt::AlterTable { name, ops })
}

/// Partition clauses run to the end of ALTER TABLE: the clauses before them, and what the
/// partition clause does.
fn split_partition(toks: &[Tok]) -> (&[Tok], Option<AlterOp>) {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        }
        if depth != 0 {
            continue;
        }
        let at_start = i == 0 || toks.get(i - 1).is_some_and(|t| t.is_punct(","));
        let next = toks.get(i + 1);
        let ends_here = (t.is("PARTITION") && next.is_some_and(|n| n.is("BY")))
            || (t.is("REMOVE") && next.is_some_and(|n| n.is("PARTITIONING")))
            || (at_start
                && next.is_some_and(|n| n.is("PARTITION"))
                && !t.is("ADD")
                && !t.is("DROP")
                && !t.is("CONVERT"))
            || (at_start
                && (t.is("ADD") || t.is("DROP") || t.is("CONVERT"))
                && next.is_some_and(|n| n.is("PARTITION")));
        if ends_here {
            let before = toks.get(..i).unwrap_or(&[]);
            let before = match before.last() {
                Some(c) if c.is_punct(",") => before.get(..before.len() - 1).unwrap_or(&[]),
                _ => before,
            };
            let verb = t.ident().unwrap_or("").to_ascii_uppercase();
            let text = render(toks.get(i..(i + 2).min(toks.len())).unwrap_or(&[]));
            let op = match verb.as_str() {
                // rows leave the table without row events
                "DROP" | "TRUNCATE" | "EXCHANGE" | "CONVERT" | "IMPORT" | "DISCARD" => {
                    AlterOp::Unsupported(format!("{text} changes rows outside the binlog"))
                }
                _ => AlterOp::Ignored(text),
            };
            return (before, Some(op));
        }
    }
    (toks, None)
}

/// Strips a trailing FIRST / AFTER col.
fn position(toks: &[Tok]) -> (&[Tok], Option<Position>) {
    let n = toks.len();
    if n >= 2 && toks.get(n - 1).is_some_and(|t| t.is("FIRST")) {
        return (toks.get(..n - 1).unwrap_or(&[]), Some(Position::First));
    }
    if n >= 3 && toks.get(n - 2).is_some_and(|t| t.is("AFTER")) {
        if let Some(col) = toks.get(n - 1).and_then(Tok::ident) {
            return (toks.get(..n - 2).unwrap_or(&[]), Some(Position::After(col.to_string())));
        }
    }
    (toks, None)
}

fn column_clause(toks: &[Tok]) -> PResult<(ColumnSpec, Option<Position>)> {
    let (def, pos) = position(toks);
    let mut p = P::new(def);
    Ok((column(&mut p)?, pos))
}

const IGNORED_OPTIONS: &[&str] = &[
    "ENGINE",
    "AUTO_INCREMENT",
    "ROW_FORMAT",
    "KEY_BLOCK_SIZE",
    "AVG_ROW_LENGTH",
    "MAX_ROWS",
    "MIN_ROWS",
    "PACK_KEYS",
    "CHECKSUM",
    "TABLE_CHECKSUM",
    "DELAY_KEY_WRITE",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "COMPRESSION",
    "ENCRYPTION",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "PAGE_CHECKSUM",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "TRANSACTIONAL",
    "IETF_QUOTES",
    "INSERT_METHOD",
    "TABLESPACE",
    "STORAGE",
    "SECONDARY_ENGINE",
    "SECONDARY_ENGINE_ATTRIBUTE",
    "ENGINE_ATTRIBUTE",
    "AUTOEXTEND_SIZE",
    "ALGORITHM",
    "LOCK",
    "COLLATE",
    "SEQUENCE",
];

/// One clause of ALTER TABLE (`ADD COLUMN (a int, b int)` gives several).
fn alter_clause(toks: &[Tok]) -> PResult<Vec<AlterOp>> {
    let mut p = P::new(toks);
    let one = |op| Ok(vec![op]);
    let text = render(toks);
    if p.eat("ADD") {
        if p.eat_seq(&["SYSTEM", "VERSIONING"]) {
            return one(AlterOp::Unsupported("ADD SYSTEM VERSIONING adds hidden columns".into()));
        }
        let column_kw = p.eat("COLUMN");
        let if_not_exists = p.eat_seq(&["IF", "NOT", "EXISTS"]);
        let is_index =
            ["PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK", "PERIOD"]
                .iter()
                .any(|k| p.is(k))
                && !p.peek_at(1).is_some_and(|t| matches!(t, Tok::Word(w) if is_type_word(w)));
        if !column_kw && is_index {
            let rest = p.rest();
            // MariaDB: ADD INDEX IF NOT EXISTS name (...)
            let mut q = P::new(rest);
            let mut ine = if_not_exists;
            let cleaned: Vec<Tok>;
            let toks_for_constraint = if let Some(at) = (0..rest.len()).find(|&i| {
                rest.get(i).is_some_and(|t| t.is("IF"))
                    && rest.get(i + 1).is_some_and(|t| t.is("NOT"))
                    && rest.get(i + 2).is_some_and(|t| t.is("EXISTS"))
            }) {
                ine = true;
                cleaned = rest
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !(at..at + 3).contains(i))
                    .map(|(_, t)| t.clone())
                    .collect();
                &cleaned[..]
            } else {
                rest
            };
            q.toks = toks_for_constraint;
            return match constraint(&mut q)? {
                Element::Index(index) => one(AlterOp::AddIndex { index, if_not_exists: ine }),
                Element::ForeignKey(fk) => one(AlterOp::AddForeignKey(fk)),
                _ => one(AlterOp::Ignored(text)),
            };
        }
        if p.is_punct("(") {
            let mut ops = Vec::new();
            for part in split_commas(p.group()?) {
                let mut q = P::new(part);
                match element(part)? {
                    Element::Column(_) => {
                        let col = column(&mut q)?;
                        ops.push(AlterOp::AddColumn { col, pos: None, if_not_exists });
                    }
                    Element::Index(index) => ops.push(AlterOp::AddIndex { index, if_not_exists }),
                    Element::ForeignKey(fk) => ops.push(AlterOp::AddForeignKey(fk)),
                    Element::Ignored => {}
                }
            }
            return Ok(ops);
        }
        let (col, pos) = column_clause(p.rest())?;
        return one(AlterOp::AddColumn { col, pos, if_not_exists });
    }
    if p.eat("CHANGE") {
        p.eat("COLUMN");
        let if_exists = p.eat_seq(&["IF", "EXISTS"]);
        let old = p.ident()?;
        let (col, pos) = column_clause(p.rest())?;
        return one(AlterOp::Change { old, col, pos, if_exists });
    }
    if p.eat("MODIFY") {
        p.eat("COLUMN");
        let if_exists = p.eat_seq(&["IF", "EXISTS"]);
        let (col, pos) = column_clause(p.rest())?;
        return one(AlterOp::Change { old: col.name.clone(), col, pos, if_exists });
    }
    if p.eat("DROP") {
        return drop_clause(&mut p, text).map(|op| vec![op]);
    }
    if p.eat("ALTER") {
        if p.eat("INDEX") || p.eat("KEY") || p.eat("CHECK") || p.eat("CONSTRAINT") {
            return one(AlterOp::Ignored(text));
        }
        p.eat("COLUMN");
        p.eat_seq(&["IF", "EXISTS"]);
        let col = p.ident()?;
        if p.eat_seq(&["SET", "DEFAULT"]) {
            let default = default_value(&mut p)?;
            return one(AlterOp::SetDefault { col, default });
        }
        if p.eat_seq(&["DROP", "DEFAULT"]) {
            return one(AlterOp::DropDefault { col });
        }
        if p.eat("SET") && (p.eat("VISIBLE") || p.eat("INVISIBLE")) {
            return one(AlterOp::Ignored(text));
        }
        return Err(format!("cannot read {text}"));
    }
    if p.eat("RENAME") {
        if p.eat("COLUMN") {
            p.eat_seq(&["IF", "EXISTS"]);
            let old = p.ident()?;
            p.expect("TO")?;
            let new = p.ident()?;
            return one(AlterOp::RenameColumn { old, new });
        }
        if p.eat("INDEX") || p.eat("KEY") {
            p.eat_seq(&["IF", "EXISTS"]);
            let old = p.ident()?;
            p.expect("TO")?;
            let new = p.ident()?;
            return one(AlterOp::RenameIndex { old, new });
        }
        let _ = p.eat("TO") || p.eat("AS");
        let name = p.name()?;
        return one(AlterOp::RenameTable(name));
    }
    if p.eat("CONVERT") {
        p.expect("TO")?;
        if !(p.eat_seq(&["CHARACTER", "SET"]) || p.eat("CHARSET")) {
            return Err(format!("cannot read {text}"));
        }
        let cs = p.ident()?.to_ascii_lowercase();
        return one(AlterOp::Convert(cs));
    }
    let default = p.eat("DEFAULT");
    if p.eat_seq(&["CHARACTER", "SET"]) || p.eat("CHARSET") || p.eat_seq(&["CHAR", "SET"]) {
        let cs = p.option_value()?.to_ascii_lowercase();
        return one(AlterOp::TableCharset(cs));
    }
    if p.eat("COMMENT") {
        return one(AlterOp::TableComment(p.option_value()?));
    }
    if default {
        return one(AlterOp::Ignored(text));
    }
    if p.eat("FORCE")
        || p.eat("ORDER")
        || p.eat_seq(&["ENABLE", "KEYS"])
        || p.eat_seq(&["DISABLE", "KEYS"])
        || p.eat("WITH")
        || p.eat("WITHOUT")
        || p.eat("UNION")
        || p.eat_seq(&["DATA", "DIRECTORY"])
        || p.eat_seq(&["INDEX", "DIRECTORY"])
    {
        return one(AlterOp::Ignored(text));
    }
    if p.eat("DISCARD") || p.eat("IMPORT") {
        return one(AlterOp::Unsupported(format!("{text} changes rows outside the binlog")));
    }
    if IGNORED_OPTIONS.iter().any(|k| p.is(k)) {
        return one(AlterOp::Ignored(text));
    }
    Err(format!("cannot read ALTER TABLE clause {text}"))
}

fn drop_clause(p: &mut P, text: String) -> PResult<AlterOp> {
    if p.eat_seq(&["PRIMARY", "KEY"]) {
        return Ok(AlterOp::DropPrimaryKey);
    }
    if p.eat_seq(&["FOREIGN", "KEY"]) {
        p.eat_seq(&["IF", "EXISTS"]);
        return Ok(AlterOp::DropForeignKey { name: p.ident()? });
    }
    if p.eat("INDEX") || p.eat("KEY") {
        let if_exists = p.eat_seq(&["IF", "EXISTS"]);
        return Ok(AlterOp::DropIndex { name: p.ident()?, if_exists });
    }
    if p.eat("CHECK") || p.eat_seq(&["SYSTEM", "VERSIONING"]) || p.eat("PERIOD") {
        if text.to_ascii_uppercase().contains("SYSTEM VERSIONING") {
            return Ok(AlterOp::Unsupported("DROP SYSTEM VERSIONING removes hidden columns".into()));
        }
        return Ok(AlterOp::Ignored(text));
    }
    if p.eat("CONSTRAINT") {
        p.eat_seq(&["IF", "EXISTS"]);
        return Ok(AlterOp::DropConstraint { name: p.ident()? });
    }
    p.eat("COLUMN");
    let if_exists = p.eat_seq(&["IF", "EXISTS"]);
    let name = p.ident()?;
    let _ = p.eat("RESTRICT") || p.eat("CASCADE");
    if !p.done() {
        return Err(format!("cannot read {text}"));
    }
    Ok(AlterOp::DropColumn { name, if_exists })
}

fn drop(p: &mut P) -> Result<Stmt, ParseFail> {
    let fail = |table: Option<Name>, message: String| ParseFail { table, structural: true, message };
    let temporary = p.eat("TEMPORARY");
    if p.eat("TABLE") || p.eat("TABLES") {
        let if_exists = p.eat_seq(&["IF", "EXISTS"]);
        let mut names = Vec::new();
        loop {
            names.push(p.name().map_err(|m| fail(names.first().cloned(), m))?);
            if !p.eat_punct(",") {
                break;
            }
        }
        return Ok(Stmt::DropTable { temporary, if_exists, names });
    }
    if temporary {
        return Ok(Stmt::Skip("DROP TEMPORARY: not replicated".into()));
    }
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    if p.eat("INDEX") {
        let if_exists = p.eat_seq(&["IF", "EXISTS"]);
        let name = p.ident().map_err(|m| fail(None, m))?;
        p.expect("ON").map_err(|m| fail(None, m))?;
        let table = p.name().map_err(|m| fail(None, m))?;
        return Ok(Stmt::DropIndex { table, name, if_exists });
    }
    if p.eat("DATABASE") || p.eat("SCHEMA") {
        p.eat_seq(&["IF", "EXISTS"]);
        let name = p.ident().map_err(|m| fail(None, m))?;
        return Ok(Stmt::DropDatabase(name));
    }
    let what = p.peek().and_then(Tok::ident).unwrap_or("?").to_ascii_uppercase();
    Ok(Stmt::Skip(format!("DROP {what}: no table structure to replicate")))
}

#[cfg(test)]
mod tests {
    use super::super::normalize::lex;
    use super::*;

    fn st(q: &str) -> Stmt {
        statement(&lex(q)).unwrap()
    }

    #[test]
    fn alter_clauses() {
        let Stmt::AlterTable { name, ops } = st(
            "ALTER TABLE `db`.`t` ADD COLUMN `x` int(11) NOT NULL DEFAULT '0' AFTER `y`, DROP KEY `k`, ENGINE=InnoDB",
        ) else {
            panic!()
        };
        assert_eq!(name, Name { schema: Some("db".into()), table: "t".into() });
        assert_eq!(ops.len(), 3);
        assert!(
            matches!(&ops[0], AlterOp::AddColumn { col, pos: Some(Position::After(a)), .. } if col.type_name == "int" && col.args == vec![11] && a == "y" && col.default == Some(DefaultSpec::Str("0".into())))
        );
        assert_eq!(ops[1], AlterOp::DropIndex { name: "k".into(), if_exists: false });
        assert!(matches!(&ops[2], AlterOp::Ignored(_)));
    }

    #[test]
    fn defaults() {
        let Stmt::CreateTable { body: CreateBody::Elements { elements, .. }, .. } =
            st("CREATE TABLE t (a timestamp(6) DEFAULT CURRENT_TIMESTAMP(6), b int DEFAULT -1, c varchar(5) DEFAULT (uuid()), d bit(1) DEFAULT b'0')")
        else {
            panic!()
        };
        let d: Vec<_> = elements
            .iter()
            .map(|e| match e {
                Element::Column(c) => c.default.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(d[0], Some(DefaultSpec::CurrentTimestamp(Some(6))));
        assert_eq!(d[1], Some(DefaultSpec::Num("-1".into())));
        assert_eq!(d[2], Some(DefaultSpec::Expr("(uuid())".into())));
        assert_eq!(d[3], Some(DefaultSpec::Expr("b'0'".into())));
    }
}
