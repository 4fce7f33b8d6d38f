//! From a parsed statement to steps: which tables it is about (mapped schemas, replicated
//! tables, options' table selection), their new models, and the PostgreSQL of each step.
//! Statements with several tables (DROP, RENAME) are applied one table after the other on a
//! private view of the tables, so `RENAME TABLE t TO t_old, t_new TO t` works.

use super::model::{self, Env};
use super::normalize::lex;
use super::parse::{self, AlterOp, CreateBody, Element, Name, Stmt};
use super::pgsql;
use super::{DdlContext, DdlError, DdlOutcome, DdlStep, TableAction, TableModel, TableName};
use crate::core::schema::ColumnExtra;
use crate::core::types::MySqlColumn;
use std::collections::HashMap;

/// The tables as the statement changes them.
struct Tables<'a> {
    base: &'a HashMap<TableName, TableModel>,
    changed: HashMap<TableName, Option<TableModel>>,
}

impl Tables<'_> {
    fn get(&self, n: &TableName) -> Option<&TableModel> {
        match self.changed.get(n) {
            Some(m) => m.as_ref(),
            None => self.base.get(n),
        }
    }

    fn set(&mut self, n: TableName, m: Option<TableModel>) {
        self.changed.insert(n, m);
    }
}

/// Steps and the reasons of what was skipped.
#[derive(Default)]
struct Out {
    steps: Vec<DdlStep>,
    skipped: Vec<String>,
}

impl Out {
    fn finish(self) -> DdlOutcome {
        if self.steps.is_empty() {
            let reason = if self.skipped.is_empty() { "nothing to do".to_string() } else { self.skipped.join("; ") };
            DdlOutcome::Skipped(reason)
        } else {
            DdlOutcome::Apply(self.steps)
        }
    }
}

fn err(table: &TableName, message: impl Into<String>) -> DdlError {
    DdlError { table: Some(table.clone()), message: message.into() }
}

fn resolve(n: &Name, ctx: &DdlContext) -> TableName {
    (n.schema.clone().unwrap_or_else(|| ctx.default_schema.to_string()), n.table.clone())
}

fn pg_schema(ctx: &DdlContext, mysql_schema: &str) -> Option<String> {
    if mysql_schema.is_empty() {
        return None;
    }
    ctx.mappings.target(mysql_schema).map(str::to_string)
}

fn show(t: &TableName) -> String {
    format!("{}.{}", t.0, t.1)
}

pub(crate) fn translate(query: &str, ctx: &DdlContext) -> Result<DdlOutcome, DdlError> {
    let toks = lex(query);
    let stmt = match parse::statement(&toks) {
        Ok(s) => s,
        Err(fail) => return unreadable(fail, &toks, ctx),
    };
    let mut tables = Tables { base: ctx.tables, changed: HashMap::new() };
    let mut out = Out::default();
    match stmt {
        Stmt::Skip(reason) => return Ok(DdlOutcome::Skipped(reason)),
        Stmt::CreateTable { name, temporary, if_not_exists, or_replace, body } => {
            if temporary {
                return Ok(DdlOutcome::Skipped("temporary table: not replicated".into()));
            }
            create_table(ctx, &mut tables, &mut out, &name, if_not_exists, or_replace, &body)?
        }
        Stmt::AlterTable { name, ops } => alter_table(ctx, &mut tables, &mut out, &name, &ops)?,
        Stmt::DropTable { temporary, if_exists, names } => {
            if temporary {
                return Ok(DdlOutcome::Skipped("temporary table: not replicated".into()));
            }
            for n in &names {
                drop_table(ctx, &mut tables, &mut out, n, if_exists);
            }
        }
        Stmt::Rename(pairs) => {
            for (from, to) in &pairs {
                rename(ctx, &mut tables, &mut out, from, to)?;
            }
        }
        Stmt::Truncate(n) => {
            let t = resolve(&n, ctx);
            match replicated(ctx, &tables, &t) {
                Ok(m) => out.steps.push(DdlStep {
                    table: Some(t.clone()),
                    action: TableAction::Truncate(t.clone()),
                    sql: vec![format!("TRUNCATE TABLE {}", pgsql::table_ref(m))],
                    notes: vec![],
                }),
                Err(reason) => out.skipped.push(reason),
            }
        }
        Stmt::CreateIndex { table, index, if_not_exists } => {
            alter_table(ctx, &mut tables, &mut out, &table, &[AlterOp::AddIndex { index, if_not_exists }])?
        }
        Stmt::DropIndex { table, name, if_exists } => {
            alter_table(ctx, &mut tables, &mut out, &table, &[AlterOp::DropIndex { name, if_exists }])?
        }
        Stmt::CreateDatabase(s) => match pg_schema(ctx, &s) {
            Some(pg) => out.steps.push(DdlStep {
                table: None,
                action: TableAction::CreateSchema(pg.clone()),
                sql: vec![format!("CREATE SCHEMA IF NOT EXISTS {}", crate::core::sql::quote_ident(&pg))],
                notes: vec![],
            }),
            None => out.skipped.push(format!("database {s} is not mapped")),
        },
        Stmt::DropDatabase(s) => drop_database(ctx, &mut out, &s),
    }
    Ok(out.finish())
}

/// A statement we could not read: an error when it is about a mapped schema.
fn unreadable(
    fail: parse::ParseFail,
    toks: &[super::normalize::Tok],
    ctx: &DdlContext,
) -> Result<DdlOutcome, DdlError> {
    let creates = toks.first().is_some_and(|t| t.is("CREATE"));
    match fail.table.map(|n| resolve(&n, ctx)) {
        Some(t) if pg_schema(ctx, &t.0).is_some() => {
            let matters = ctx.tables.contains_key(&t) || (creates && ctx.options.table_selected(&t.0, &t.1));
            if matters {
                Err(err(&t, format!("cannot read the statement: {}", fail.message)))
            } else {
                Ok(DdlOutcome::Skipped(format!("{}: not replicated (statement not read: {})", show(&t), fail.message)))
            }
        }
        Some(t) => Ok(DdlOutcome::Skipped(format!("{} is outside the mapped schemas", show(&t)))),
        None => {
            let mentions = toks.iter().filter_map(|t| t.ident()).any(|w| ctx.mappings.target(w).is_some());
            if mentions || pg_schema(ctx, ctx.default_schema).is_some() {
                Err(DdlError { table: None, message: format!("cannot read the statement: {}", fail.message) })
            } else {
                Ok(DdlOutcome::Skipped("statement not read, outside the mapped schemas".into()))
            }
        }
    }
}

/// The model of a replicated table, or why the statement is skipped for it.
fn replicated<'t>(ctx: &DdlContext, tables: &'t Tables, t: &TableName) -> Result<&'t TableModel, String> {
    if pg_schema(ctx, &t.0).is_none() {
        return Err(format!("{} is outside the mapped schemas", show(t)));
    }
    tables.get(t).ok_or_else(|| format!("{}: not replicated", show(t)))
}

fn env<'a>(ctx: &'a DdlContext, t: &'a TableName, charset: Option<String>) -> Env<'a> {
    let charset = charset.or_else(|| ctx.schema_charsets.get(&t.0).cloned());
    Env { flavor: ctx.flavor, options: ctx.options, schema: &t.0, table: &t.1, charset, extensions: ctx.extensions }
}

fn empty_model(t: &TableName, pg: &str) -> TableModel {
    TableModel {
        mysql_schema: t.0.clone(),
        mysql_table: t.1.clone(),
        pg_schema: pg.to_string(),
        pg_table: t.1.clone(),
        columns: vec![],
        extras: vec![],
        indexes: vec![],
        key: vec![],
        foreign_keys: vec![],
    }
}

/// A model from CREATE TABLE elements.
pub(crate) fn model_from_elements(
    ctx: &DdlContext,
    t: &TableName,
    pg: &str,
    elements: &[Element],
    charset: Option<String>,
) -> Result<(TableModel, Vec<String>), String> {
    let mut m = empty_model(t, pg);
    let mut notes = Vec::new();
    let e = env(ctx, t, charset);
    let mut inline = Vec::new();
    for el in elements {
        if let Element::Column(spec) = el {
            if model::find_column(&m, &spec.name).is_some() {
                return Err(format!("duplicate column {}", spec.name));
            }
            let (c, x) = model::column(spec, &e)?;
            inline.push((spec.clone(), c.name.clone()));
            m.columns.push(c);
            m.extras.push(x);
        }
    }
    for (spec, name) in &inline {
        if spec.primary_key {
            let ix = crate::core::schema::IndexDef {
                name: "PRIMARY".into(),
                unique: true,
                columns: vec![name.clone()],
                kind: "BTREE".into(),
                prefix: false,
            };
            model::add_index(&mut m, ix)?;
        }
    }
    let mut fk_count = 0;
    for el in elements {
        match el {
            Element::Index(spec) => match model::index(spec, &m.indexes) {
                Some(ix) => model::add_index(&mut m, ix)?,
                None => notes.push(format!("index {} on an expression: skipped", spec.name.as_deref().unwrap_or("?"))),
            },
            Element::ForeignKey(fk) => {
                fk_count += 1;
                let (def, ix) = model::foreign_key(fk, &m, fk_count);
                m.foreign_keys.push(def);
                if let Some(ix) = ix {
                    model::add_index(&mut m, ix)?;
                }
            }
            _ => {}
        }
    }
    for (spec, name) in &inline {
        if spec.unique || spec.serial || spec.type_name == "serial" {
            let ix = crate::core::schema::IndexDef {
                name: name.clone(),
                unique: true,
                columns: vec![name.clone()],
                kind: "BTREE".into(),
                prefix: false,
            };
            if !m.indexes.iter().any(|i| i.unique && i.columns == ix.columns) {
                let named = crate::core::schema::IndexDef { name: unique_index_name(&m, name), ..ix };
                model::add_index(&mut m, named)?;
            }
        }
    }
    model::refresh_key(&mut m);
    Ok((m, notes))
}

fn unique_index_name(m: &TableModel, base: &str) -> String {
    let taken = |n: &str| m.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(n));
    if !taken(base) {
        return base.to_string();
    }
    (2..).map(|k| format!("{base}_{k}")).find(|n| !taken(n)).unwrap_or_default()
}

/// The step that creates a table from its model.
fn create_step(ctx: &DdlContext, m: TableModel, comment: Option<&str>, mut notes: Vec<String>) -> DdlStep {
    let t = (m.mysql_schema.clone(), m.mysql_table.clone());
    match pgsql::mapped_columns(&m) {
        Ok(mapped) => {
            let problem = pgsql::problem(&m, &mapped);
            let (sql, more) = pgsql::create_table(ctx.flavor, &m, &mapped, comment);
            notes.extend(more);
            DdlStep { table: Some(t), action: TableAction::Create { model: m, problem }, sql, notes }
        }
        Err(e) => {
            DdlStep { table: Some(t), action: TableAction::Create { model: m, problem: Some(e) }, sql: vec![], notes }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn create_table(
    ctx: &DdlContext,
    tables: &mut Tables,
    out: &mut Out,
    name: &Name,
    if_not_exists: bool,
    or_replace: bool,
    body: &CreateBody,
) -> Result<(), DdlError> {
    let t = resolve(name, ctx);
    let Some(pg) = pg_schema(ctx, &t.0) else {
        out.skipped.push(format!("{} is outside the mapped schemas", show(&t)));
        return Ok(());
    };
    if !ctx.options.table_selected(&t.0, &t.1) {
        out.skipped.push(format!("{}: left out by limit_tables / skip_tables", show(&t)));
        return Ok(());
    }
    if let Some(existing) = tables.get(&t) {
        if if_not_exists {
            out.skipped.push(format!("{}: already exists (IF NOT EXISTS)", show(&t)));
            return Ok(());
        }
        if or_replace {
            let sql = pgsql::drop_table(existing);
            out.steps.push(DdlStep {
                table: Some(t.clone()),
                action: TableAction::Drop(t.clone()),
                sql,
                notes: vec![],
            });
            tables.set(t.clone(), None);
        }
    }
    let step = match body {
        CreateBody::Select => {
            return Err(err(&t, "CREATE TABLE ... SELECT: its rows are not in the binlog as rows of a table we know"))
        }
        CreateBody::Like(other) => {
            let o = resolve(other, ctx);
            let Some(src) = tables.get(&o) else {
                return Err(err(
                    &t,
                    format!(
                        "CREATE TABLE ... LIKE {}: that table is not replicated, so its definition is unknown",
                        show(&o)
                    ),
                ));
            };
            let mut m = src.clone();
            m.mysql_schema = t.0.clone();
            m.mysql_table = t.1.clone();
            m.pg_table = t.1.clone();
            m.pg_schema = pg;
            m.foreign_keys.clear();
            for c in m.columns.iter_mut() {
                c.pg_override = ctx.options.override_for(&t.0, &t.1, &c.column_type);
            }
            create_step(ctx, m, None, vec![])
        }
        CreateBody::Elements { elements, charset, comment } => {
            let (m, notes) = model_from_elements(ctx, &t, &pg, elements, charset.clone()).map_err(|e| err(&t, e))?;
            create_step(ctx, m, comment.as_deref(), notes)
        }
    };
    if let TableAction::Create { model, .. } = &step.action {
        tables.set(t, Some(model.clone()));
    }
    out.steps.push(step);
    Ok(())
}

fn drop_table(ctx: &DdlContext, tables: &mut Tables, out: &mut Out, n: &Name, if_exists: bool) {
    let t = resolve(n, ctx);
    match replicated(ctx, tables, &t) {
        Ok(m) => {
            let sql = pgsql::drop_table(m);
            out.steps.push(DdlStep {
                table: Some(t.clone()),
                action: TableAction::Drop(t.clone()),
                sql,
                notes: vec![],
            });
            tables.set(t, None);
        }
        Err(reason) => out.skipped.push(if if_exists { format!("{reason} (IF EXISTS)") } else { reason }),
    }
}

fn drop_database(ctx: &DdlContext, out: &mut Out, s: &str) {
    let Some(pg) = pg_schema(ctx, s) else {
        out.skipped.push(format!("database {s} is not mapped"));
        return;
    };
    let mut names: Vec<&TableName> = ctx.tables.keys().filter(|k| k.0 == s).collect();
    names.sort();
    for t in names {
        if let Some(m) = ctx.tables.get(t) {
            out.steps.push(DdlStep {
                table: Some(t.clone()),
                action: TableAction::Drop(t.clone()),
                sql: pgsql::drop_table(m),
                notes: vec![],
            });
        }
    }
    out.steps.push(DdlStep {
        table: None,
        action: TableAction::DropSchema(pg.clone()),
        sql: vec![format!("DROP SCHEMA IF EXISTS {}", crate::core::sql::quote_ident(&pg))],
        notes: vec![],
    });
}

/// Checks the destination of a rename of a replicated table: its PostgreSQL schema.
fn rename_target(ctx: &DdlContext, from: &TableName, to: &TableName) -> Result<String, DdlError> {
    let Some(pg) = pg_schema(ctx, &to.0) else {
        return Err(err(from, format!("renamed to {}: moved out of the mapped schemas", show(to))));
    };
    if !ctx.options.table_selected(&to.0, &to.1) {
        return Err(err(from, format!("renamed to {}, which limit_tables / skip_tables leave out", show(to))));
    }
    Ok(pg)
}

fn rename(ctx: &DdlContext, tables: &mut Tables, out: &mut Out, from: &Name, to: &Name) -> Result<(), DdlError> {
    let f = resolve(from, ctx);
    let t = resolve(to, ctx);
    let m = match replicated(ctx, tables, &f) {
        Ok(m) => m.clone(),
        Err(reason) => {
            let into = if pg_schema(ctx, &t.0).is_some() {
                format!(", renamed to {} which is therefore not replicated either", show(&t))
            } else {
                String::new()
            };
            out.skipped.push(format!("{reason}{into}"));
            return Ok(());
        }
    };
    let pg = rename_target(ctx, &f, &t)?;
    let sql = pgsql::rename_table(&m, &pg, &t.1);
    let new = renamed_model(&m, &t, &pg);
    tables.set(f.clone(), None);
    tables.set(t.clone(), Some(new.clone()));
    out.steps.push(DdlStep {
        table: Some(f.clone()),
        action: TableAction::Alter { from: f, model: new },
        sql,
        notes: vec![],
    });
    Ok(())
}

fn renamed_model(m: &TableModel, t: &TableName, pg: &str) -> TableModel {
    let mut new = m.clone();
    new.mysql_schema = t.0.clone();
    new.mysql_table = t.1.clone();
    new.pg_table = t.1.clone();
    new.pg_schema = pg.to_string();
    new
}

/// Where each column of the table before the ALTER is now (None: dropped).
struct Fates(Vec<(String, Option<String>)>);

impl Fates {
    fn rename(&mut self, old: &str, new: &str) {
        for f in self.0.iter_mut() {
            if f.1.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(old)) {
                f.1 = Some(new.to_string());
            }
        }
    }

    fn drop(&mut self, name: &str) {
        for f in self.0.iter_mut() {
            if f.1.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(name)) {
                f.1 = None;
            }
        }
    }

    /// The current name of a column of the old table.
    fn now(&self, old: &str) -> Option<String> {
        self.0.iter().find(|f| f.0.eq_ignore_ascii_case(old)).and_then(|f| f.1.clone())
    }
}

/// The working state of one ALTER TABLE.
struct Alter<'a> {
    ctx: &'a DdlContext<'a>,
    t: TableName,
    m: TableModel,
    fates: Fates,
    charset: Option<String>,
    sql: Vec<String>,
    tail: Vec<String>,
    notes: Vec<String>,
    meaningful: bool,
}

fn alter_table(
    ctx: &DdlContext,
    tables: &mut Tables,
    out: &mut Out,
    name: &Name,
    ops: &[AlterOp],
) -> Result<(), DdlError> {
    let t = resolve(name, ctx);
    let old = match replicated(ctx, tables, &t) {
        Ok(m) => m.clone(),
        Err(reason) => {
            out.skipped.push(reason);
            return Ok(());
        }
    };
    if ops.iter().all(model::is_ignored) {
        let what: Vec<String> =
            ops.iter().filter_map(|o| if let AlterOp::Ignored(s) = o { Some(s.clone()) } else { None }).collect();
        out.skipped.push(format!("{}: no meaning for the replica ({})", show(&t), what.join(", ")));
        return Ok(());
    }
    let mut pre = Vec::new();
    let mut m = old.clone();
    let mut new_name = t.clone();
    for op in ops {
        if let AlterOp::RenameTable(n) = op {
            // an unqualified new name is in the default schema, as in MySQL
            let target = resolve(n, ctx);
            let pg = rename_target(ctx, &t, &target)?;
            pre.extend(pgsql::rename_table(&m, &pg, &target.1));
            m = renamed_model(&m, &target, &pg);
            new_name = target;
        }
    }
    let charset = m.columns.iter().find(|c| model::is_character(c)).and_then(|c| c.charset.clone());
    let fates = Fates(old.columns.iter().map(|c| (c.name.clone(), Some(c.name.clone()))).collect());
    let mut a = Alter {
        ctx,
        t: t.clone(),
        m,
        fates,
        charset,
        sql: vec![],
        tail: vec![],
        notes: vec![],
        meaningful: !pre.is_empty(),
    };
    for op in ops {
        a.apply(op)?;
    }
    model::refresh_key(&mut a.m);
    check_columns(&a.m, &old).map_err(|e| err(&t, e))?;
    if !a.meaningful {
        out.skipped.push(format!("{}: nothing changes for the replica", show(&t)));
        return Ok(());
    }
    let (drops, adds) = key_and_index_diff(&old, &a.m, &a.fates, &mut a.notes);
    if a.m.key.is_empty() && !old.key.is_empty() {
        a.notes.push(
            "no primary key or NOT NULL unique key any more: updates and deletes are matched by the full row from here on"
                .into(),
        );
    }
    let mut sql = pre;
    sql.extend(drops);
    sql.extend(a.sql);
    sql.extend(adds);
    sql.extend(a.tail);
    if new_name != t {
        tables.set(t.clone(), None);
    }
    tables.set(new_name, Some(a.m.clone()));
    out.steps.push(DdlStep {
        table: Some(t.clone()),
        action: TableAction::Alter { from: t, model: a.m },
        sql,
        notes: a.notes,
    });
    Ok(())
}

/// A column type the change stream cannot follow, in the new model.
fn check_columns(m: &TableModel, old: &TableModel) -> Result<(), String> {
    let mapped = pgsql::mapped_columns(m)?;
    if let Some(p) = pgsql::problem(m, &mapped) {
        let before = pgsql::mapped_columns(old).ok().and_then(|mo| pgsql::problem(old, &mo));
        if before.as_ref() != Some(&p) {
            return Err(p);
        }
    }
    Ok(())
}

/// Statements that bring the primary key and the secondary indexes from what PostgreSQL has
/// (the old model, with columns renamed and dropped as PostgreSQL does) to the new model:
/// those to run before the column changes, and those after.
fn key_and_index_diff(
    old: &TableModel,
    new: &TableModel,
    fates: &Fates,
    notes: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut base = new.clone();
    let now = |c: &String| fates.now(c);
    base.indexes = old
        .indexes
        .iter()
        .filter_map(|ix| {
            let cols: Option<Vec<String>> = ix.columns.iter().map(now).collect();
            cols.map(|columns| crate::core::schema::IndexDef { columns, ..ix.clone() })
        })
        .collect();
    let base_key: Option<Vec<String>> = old.key.iter().map(now).collect();
    base.key = base_key.unwrap_or_default();
    let (before, _) = pgsql::pg_indexes(&base);
    let (after, skipped) = pgsql::pg_indexes(new);
    let old_skipped = pgsql::pg_indexes(old).1;
    notes.extend(skipped.into_iter().filter(|n| !old_skipped.contains(n)));
    let mut drops = Vec::new();
    let mut adds = Vec::new();
    let table = pgsql::table_ref(new);
    if base.key != new.key && !base.key.is_empty() {
        drops.push(format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
            crate::core::sql::quote_ident(&pgsql::pkey_name(&new.mysql_table))
        ));
    }
    let same_def = |a: &crate::core::schema::IndexDef, b: &crate::core::schema::IndexDef| {
        a.unique == b.unique && a.columns == b.columns && a.kind == b.kind && a.prefix == b.prefix
    };
    let mut renamed_to = Vec::new();
    for b in &before {
        if after.iter().any(|a| a.pg_name == b.pg_name && a.sql == b.sql) {
            continue;
        }
        let target = after.iter().find(|a| {
            same_def(&a.def, &b.def)
                && !before.iter().any(|x| x.pg_name == a.pg_name)
                && !renamed_to.contains(&a.pg_name)
        });
        match target {
            Some(a) if !after.iter().any(|x| x.pg_name == b.pg_name) => {
                drops.push(format!(
                    "ALTER INDEX IF EXISTS {} RENAME TO {}",
                    crate::core::sql::qualified(&new.pg_schema, &b.pg_name),
                    crate::core::sql::quote_ident(&a.pg_name)
                ));
                renamed_to.push(a.pg_name.clone());
            }
            _ => {
                drops.push(format!("DROP INDEX IF EXISTS {}", crate::core::sql::qualified(&new.pg_schema, &b.pg_name)))
            }
        }
    }
    if base.key != new.key && !new.key.is_empty() {
        adds.push(crate::core::sql::add_primary_key(&new.pg_schema, &new.mysql_table, &new.key));
    }
    for a in &after {
        if before.iter().any(|b| b.pg_name == a.pg_name && b.sql == a.sql) || renamed_to.contains(&a.pg_name) {
            continue;
        }
        adds.push(a.sql.clone());
    }
    (drops, adds)
}

impl Alter<'_> {
    fn fail(&self, message: impl Into<String>) -> DdlError {
        err(&self.t, message)
    }

    fn column_of(&self, spec: &parse::ColumnSpec) -> Result<(MySqlColumn, ColumnExtra), DdlError> {
        let t = (self.m.mysql_schema.clone(), self.m.mysql_table.clone());
        let e = env(self.ctx, &t, self.charset.clone());
        let e = Env { charset: spec.charset.clone().or(e.charset.clone()), ..e };
        model::column(spec, &e).map_err(|m| self.fail(m))
    }

    fn apply(&mut self, op: &AlterOp) -> Result<(), DdlError> {
        match op {
            AlterOp::Ignored(_) | AlterOp::RenameTable(_) => {}
            AlterOp::Unsupported(what) => return Err(self.fail(what.clone())),
            AlterOp::AddColumn { col, pos, if_not_exists } => self.add_column(col, pos, *if_not_exists)?,
            AlterOp::DropColumn { name, if_exists } => self.drop_column(name, *if_exists)?,
            AlterOp::Change { old, col, pos, if_exists } => self.change(old, col, pos, *if_exists)?,
            AlterOp::RenameColumn { old, new } => self.rename_column(old, new)?,
            AlterOp::SetDefault { col, default } => self.default(col, Some(default))?,
            AlterOp::DropDefault { col } => self.default(col, None)?,
            AlterOp::AddIndex { index, if_not_exists } => self.add_index(index, *if_not_exists)?,
            AlterOp::DropIndex { name, if_exists } => self.drop_index(name, *if_exists),
            AlterOp::DropPrimaryKey => self.drop_index("PRIMARY", false),
            AlterOp::RenameIndex { old, new } => {
                match self.m.indexes.iter_mut().find(|i| i.name.eq_ignore_ascii_case(old)) {
                    Some(ix) => {
                        ix.name = new.clone();
                        self.meaningful = true;
                    }
                    None => self.notes.push(format!("RENAME INDEX {old}: no such index known")),
                }
            }
            AlterOp::AddForeignKey(spec) => {
                let n = self.m.foreign_keys.len() + 1;
                let (fk, ix) = model::foreign_key(spec, &self.m, n);
                self.m.foreign_keys.push(fk);
                if let Some(ix) = ix {
                    model::add_index(&mut self.m, ix).map_err(|e| self.fail(e))?;
                }
                self.meaningful = true;
            }
            AlterOp::DropForeignKey { name } => {
                self.m.foreign_keys.retain(|fk| fk.name != *name);
                self.meaningful = true;
            }
            AlterOp::DropConstraint { name } => {
                if self.m.foreign_keys.iter().any(|fk| fk.name == *name) {
                    self.m.foreign_keys.retain(|fk| fk.name != *name);
                    self.meaningful = true;
                } else if self.m.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(name)) {
                    self.drop_index(name, true);
                }
            }
            AlterOp::TableComment(c) => {
                self.tail.push(pgsql::comment_on_table(&self.m, c));
                self.meaningful = true;
            }
            AlterOp::TableCharset(cs) => self.charset = Some(cs.clone()),
            AlterOp::Convert(cs) => {
                self.charset = Some(cs.clone());
                for c in self.m.columns.iter_mut().filter(|c| model::is_character(c)) {
                    if c.charset.as_deref() != Some(cs.as_str()) {
                        c.charset = Some(cs.clone());
                        self.meaningful = true;
                    }
                }
                if self.meaningful {
                    self.notes.push(format!("character columns are now in {cs}"));
                }
            }
        }
        Ok(())
    }

    fn add_column(
        &mut self,
        spec: &parse::ColumnSpec,
        pos: &Option<parse::Position>,
        if_not_exists: bool,
    ) -> Result<(), DdlError> {
        if model::find_column(&self.m, &spec.name).is_some() {
            if if_not_exists {
                self.notes.push(format!("column {} exists already (IF NOT EXISTS)", spec.name));
                return Ok(());
            }
            return Err(self.fail(format!("column {} exists already", spec.name)));
        }
        let (c, x) = self.column_of(spec)?;
        if spec.generated.is_some() {
            return Err(self.fail(format!(
                "generated column {} added: the values MySQL computed for the existing rows are not in the binlog",
                c.name
            )));
        }
        if matches!(&spec.default, Some(parse::DefaultSpec::Expr(e)) if !e.ends_with('\'')) {
            self.notes
                .push(format!("column {}: its default expression is evaluated by MySQL for the existing rows", c.name));
        }
        let name = c.name.clone();
        let at = model::insert_column(&mut self.m, c, x, pos).map_err(|e| self.fail(e))?;
        let sql = pgsql::add_column(self.ctx.flavor, &self.m, at, &mut self.notes).map_err(|e| self.fail(e))?;
        self.sql.extend(sql);
        self.inline_indexes(spec, &name)?;
        self.meaningful = true;
        Ok(())
    }

    /// PRIMARY KEY / UNIQUE written in a column definition.
    fn inline_indexes(&mut self, spec: &parse::ColumnSpec, name: &str) -> Result<(), DdlError> {
        let mk = |n: &str, cols: &[&str]| crate::core::schema::IndexDef {
            name: n.to_string(),
            unique: true,
            columns: cols.iter().map(|c| c.to_string()).collect(),
            kind: "BTREE".into(),
            prefix: false,
        };
        if spec.primary_key {
            model::add_index(&mut self.m, mk("PRIMARY", &[name])).map_err(|e| self.fail(e))?;
        }
        if spec.unique || spec.serial || spec.type_name == "serial" {
            let n = unique_index_name(&self.m, name);
            model::add_index(&mut self.m, mk(&n, &[name])).map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn drop_column(&mut self, name: &str, if_exists: bool) -> Result<(), DdlError> {
        let Some(at) = model::find_column(&self.m, name) else {
            if if_exists {
                self.notes.push(format!("column {name} does not exist (IF EXISTS)"));
                return Ok(());
            }
            return Err(self.fail(format!("DROP COLUMN {name}: no such column known")));
        };
        if let Some((c, _)) = model::remove_column(&mut self.m, at) {
            self.sql.extend(pgsql::drop_column(&self.m, &c));
            self.fates.drop(&c.name);
        }
        self.meaningful = true;
        Ok(())
    }

    fn change(
        &mut self,
        old: &str,
        spec: &parse::ColumnSpec,
        pos: &Option<parse::Position>,
        if_exists: bool,
    ) -> Result<(), DdlError> {
        let Some(at) = model::find_column(&self.m, old) else {
            if if_exists {
                self.notes.push(format!("column {old} does not exist (IF EXISTS)"));
                return Ok(());
            }
            return Err(self.fail(format!("column {old}: no such column known")));
        };
        let renamed =
            !old.eq_ignore_ascii_case(&spec.name) || self.m.columns.get(at).is_some_and(|c| c.name != spec.name);
        if renamed && !old.eq_ignore_ascii_case(&spec.name) && model::find_column(&self.m, &spec.name).is_some() {
            return Err(self.fail(format!("column {} exists already", spec.name)));
        }
        let (mut c, x) = self.column_of(spec)?;
        if spec.generated.is_some() {
            return Err(self.fail(format!(
                "generated column {}: the values MySQL computes for the existing rows are not in the binlog",
                c.name
            )));
        }
        let (Some(oc), Some(ox)) = (self.m.columns.get(at).cloned(), self.m.extras.get(at).cloned()) else {
            return Err(self.fail("column out of range"));
        };
        let in_pk = self
            .m
            .indexes
            .iter()
            .any(|i| i.name == "PRIMARY" && i.columns.iter().any(|n| n.eq_ignore_ascii_case(&oc.name)));
        if in_pk {
            c.nullable = false;
        }
        self.m.columns.remove(at);
        self.m.extras.remove(at);
        if renamed {
            model::rename_column_refs(&mut self.m, &oc.name, &c.name);
            self.fates.rename(&oc.name, &c.name);
        }
        let new_at = match pos {
            None => {
                self.m.columns.insert(at, c.clone());
                self.m.extras.insert(at, x.clone());
                at
            }
            Some(_) => model::insert_column(&mut self.m, c.clone(), x.clone(), pos).map_err(|e| self.fail(e))?,
        };
        let _ = new_at;
        let sql = pgsql::change_column(self.ctx.flavor, &self.m, (&oc, &ox), (&c, &x), &mut self.notes)
            .map_err(|e| self.fail(e))?;
        self.sql.extend(sql);
        self.inline_indexes(spec, &c.name)?;
        self.meaningful = true;
        Ok(())
    }

    fn rename_column(&mut self, old: &str, new: &str) -> Result<(), DdlError> {
        let Some(at) = model::find_column(&self.m, old) else {
            return Err(self.fail(format!("RENAME COLUMN {old}: no such column known")));
        };
        let Some(oc) = self.m.columns.get(at).cloned() else { return Err(self.fail("column out of range")) };
        self.sql.extend(pgsql::rename_column(&self.m, &oc, new));
        if let Some(c) = self.m.columns.get_mut(at) {
            c.name = new.to_string();
        }
        model::rename_column_refs(&mut self.m, &oc.name, new);
        self.fates.rename(&oc.name, new);
        self.meaningful = true;
        Ok(())
    }

    fn default(&mut self, col: &str, d: Option<&parse::DefaultSpec>) -> Result<(), DdlError> {
        let Some(at) = model::find_column(&self.m, col) else {
            return Err(self.fail(format!("ALTER COLUMN {col}: no such column known")));
        };
        let flavor = self.ctx.flavor;
        let (Some(c), Some(x)) = (self.m.columns.get(at).cloned(), self.m.extras.get_mut(at)) else {
            return Err(self.fail("column out of range"));
        };
        let mut spec = parse::ColumnSpec { default: d.cloned(), ..Default::default() };
        spec.name = c.name.clone();
        let (default, generated) = model_default(&spec, flavor, c.nullable);
        x.default = default;
        let mut words: Vec<&str> = x.extra.split_whitespace().filter(|w| *w != "DEFAULT_GENERATED").collect();
        if generated {
            words.insert(0, "DEFAULT_GENERATED");
        }
        x.extra = words.join(" ");
        let x = x.clone();
        let sql = pgsql::set_default(flavor, &self.m, &c, &x, &mut self.notes).map_err(|e| self.fail(e))?;
        self.sql.extend(sql);
        self.meaningful = true;
        Ok(())
    }

    fn add_index(&mut self, spec: &parse::IndexSpec, if_not_exists: bool) -> Result<(), DdlError> {
        let Some(ix) = model::index(spec, &self.m.indexes) else {
            self.notes.push(format!("index {} on an expression: skipped", spec.name.as_deref().unwrap_or("?")));
            return Ok(());
        };
        if if_not_exists && self.m.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&ix.name)) {
            self.notes.push(format!("index {} exists already (IF NOT EXISTS)", ix.name));
            return Ok(());
        }
        let cols: Vec<String> = ix
            .columns
            .iter()
            .map(|c| {
                model::find_column(&self.m, c)
                    .and_then(|i| self.m.columns.get(i))
                    .map(|col| col.name.clone())
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        model::add_index(&mut self.m, crate::core::schema::IndexDef { columns: cols, ..ix })
            .map_err(|e| self.fail(e))?;
        self.meaningful = true;
        Ok(())
    }

    fn drop_index(&mut self, name: &str, if_exists: bool) {
        let before = self.m.indexes.len();
        self.m.indexes.retain(|i| !i.name.eq_ignore_ascii_case(name));
        if self.m.indexes.len() == before {
            self.notes
                .push(format!("index {name}: no such index known{}", if if_exists { " (IF EXISTS)" } else { "" }));
        } else {
            self.meaningful = true;
        }
    }
}

/// The default of ALTER COLUMN SET DEFAULT in the flavor's information_schema form.
fn model_default(
    spec: &parse::ColumnSpec,
    flavor: crate::core::mysql_source::Flavor,
    nullable: bool,
) -> (Option<String>, bool) {
    let options = crate::core::options::SourceOptions::default();
    let env = Env { flavor, options: &options, schema: "", table: "", charset: None, extensions: &Default::default() };
    let probe = parse::ColumnSpec { type_name: "int".into(), nullable: Some(nullable), ..spec.clone() };
    match model::column(&probe, &env) {
        Ok((_, x)) => {
            let generated = x.extra.contains("DEFAULT_GENERATED");
            let default = if spec.default.is_none() { None } else { x.default };
            (default, generated)
        }
        Err(_) => (None, false),
    }
}
