//! The corpus: real-world DDL (ORM migrations, online schema change tools, mysqldump,
//! MariaDB forms, statements to skip, hostile names) with the PostgreSQL expected, the models
//! expected, and the no-panic sweep over every statement, its prefixes and garbage.
//!
//! The statements and their expected outcomes are data files in `corpus/` (the format is in
//! `corpus/README.md`): `*.cases` (one file per origin), `base_tables.txt` (the tables every
//! case starts from) and `may_affect.txt`. This module reads them and runs the checks; each
//! check reports every failing case with its file and line.

use super::*;
use crate::core::mysql_source::Flavor;
use std::path::PathBuf;
use std::sync::OnceLock;

/// At least this many cases must load from `corpus/*.cases`, so that a mistake in the files or
/// in the loader cannot drop cases silently.
const MIN_CASES: usize = 215;
/// At least this many lines must load from `corpus/may_affect.txt`.
const MIN_MAY_AFFECT: usize = 33;
const BASE_TABLES: &str = "base_tables.txt";
const MAY_AFFECT: &str = "may_affect.txt";
const CASES_EXTENSION: &str = "cases";

pub(super) struct Fixture {
    pub mappings: SchemaMappings,
    pub options: SourceOptions,
    pub tables: HashMap<TableName, TableModel>,
    pub charsets: HashMap<String, String>,
}

pub(super) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mappings = SchemaMappings::from_json(&serde_json::json!({"shop": "shop_pg", "app": "app"})).unwrap();
        let options = SourceOptions::from_json(&serde_json::json!({})).unwrap();
        let empty = HashMap::new();
        let mut charsets = HashMap::new();
        charsets.insert("shop".to_string(), "utf8mb4".to_string());
        charsets.insert("app".to_string(), "utf8mb4".to_string());
        let mut tables = HashMap::new();
        for (schema, ddl) in base_tables() {
            let ctx = DdlContext {
                default_schema: &schema,
                mappings: &mappings,
                options: &options,
                flavor: Flavor::MariaDb,
                extensions: &NO_EXTENSIONS,
                tables: &empty,
                schema_charsets: &charsets,
            };
            let m = model_from_create(&ddl, &ctx).unwrap_or_else(|e| panic!("{BASE_TABLES}: {ddl}: {e}"));
            tables.insert((m.mysql_schema.clone(), m.mysql_table.clone()), m);
        }
        Fixture { mappings, options, tables, charsets }
    })
}

static NO_EXTENSIONS: crate::core::types::Extensions = crate::core::types::Extensions { postgis: None, pgvector: None };

pub(super) fn ctx(flavor: Flavor) -> DdlContext<'static> {
    let f = fixture();
    DdlContext {
        default_schema: "shop",
        mappings: &f.mappings,
        options: &f.options,
        flavor,
        extensions: &NO_EXTENSIONS,
        tables: &f.tables,
        schema_charsets: &f.charsets,
    }
}

/// Every statement of the outcome, in order.
pub(super) fn sql_of(o: &DdlOutcome) -> Vec<String> {
    match o {
        DdlOutcome::Apply(steps) => steps.iter().flat_map(|s| s.sql.clone()).collect(),
        DdlOutcome::Skipped(_) => vec![],
    }
}

#[test]
#[ignore]
fn dump() {
    let q = std::env::var("DDL").unwrap_or_default();
    let flavor = if std::env::var("MYSQL").is_ok() { Flavor::MySql } else { Flavor::MariaDb };
    for one in q.split("\n;;\n") {
        println!("== {one}");
        match translate(one, &ctx(flavor)) {
            Ok(DdlOutcome::Skipped(r)) => println!("SKIP {r}"),
            Ok(DdlOutcome::Apply(steps)) => {
                for s in steps {
                    println!(
                        "STEP {:?} action={}",
                        s.table,
                        match &s.action {
                            TableAction::Create { model, problem } => format!(
                                "Create key={:?} problem={problem:?} cols={:?}",
                                model.key,
                                model.columns.iter().map(|c| (&c.name, &c.column_type, c.nullable)).collect::<Vec<_>>()
                            ),
                            TableAction::Alter { from, model } => format!(
                                "Alter from={from:?} to={}.{} key={:?} cols={:?} idx={:?}",
                                model.mysql_schema,
                                model.mysql_table,
                                model.key,
                                model.columns.iter().map(|c| (&c.name, &c.column_type, c.nullable)).collect::<Vec<_>>(),
                                model.indexes.iter().map(|i| (&i.name, &i.columns)).collect::<Vec<_>>()
                            ),
                            other => format!("{other:?}"),
                        }
                    );
                    for q in &s.sql {
                        println!("  {q}");
                    }
                    for n in &s.notes {
                        println!("  -- {n}");
                    }
                }
            }
            Err(e) => println!("ERR {e}"),
        }
    }
}

/// Applies what the caller records: created, altered (renamed), dropped tables.
pub(super) fn apply(tables: &mut HashMap<TableName, TableModel>, o: &DdlOutcome) {
    let DdlOutcome::Apply(steps) = o else { return };
    for s in steps {
        match &s.action {
            TableAction::Create { model, .. } => {
                tables.insert((model.mysql_schema.clone(), model.mysql_table.clone()), model.clone());
            }
            TableAction::Alter { from, model } => {
                tables.remove(from);
                tables.insert((model.mysql_schema.clone(), model.mysql_table.clone()), model.clone());
            }
            TableAction::Drop(t) => {
                tables.remove(t);
            }
            _ => {}
        }
    }
}

/// The fixture's tables after the setup statements, each translated and its outcome recorded.
fn tables_after(setup: &[&str], flavor: Flavor) -> Result<HashMap<TableName, TableModel>, String> {
    let mut tables = fixture().tables.clone();
    for s in setup {
        let c = DdlContext { tables: &tables, ..ctx(flavor) };
        let o = translate(s, &c).map_err(|e| format!("setup {s}: {e}"))?;
        apply(&mut tables, &o);
    }
    Ok(tables)
}

/// Runs the setup statements (recording their outcome), then the statement.
pub(super) fn run(setup: &[&str], flavor: Flavor, q: &str) -> Result<DdlOutcome, DdlError> {
    let tables = tables_after(setup, flavor).unwrap_or_else(|e| panic!("{e}"));
    let c = DdlContext { tables: &tables, ..ctx(flavor) };
    translate(q, &c)
}

/// Prints the outcome of each block of the file named by DDL_FILE as JSON lines (blocks
/// separated by `;;` lines; `@mysql` and `@setup <statement>` lines before the statement).
#[test]
#[ignore]
fn dump_file() {
    let Ok(path) = std::env::var("DDL_FILE") else { return };
    let text = std::fs::read_to_string(path).unwrap();
    for block in text.split("\n;;\n") {
        let mut setup = Vec::new();
        let mut flavor = Flavor::MariaDb;
        let mut q = Vec::new();
        for line in block.lines() {
            if let Some(s) = line.strip_prefix("@setup ") {
                setup.push(s.to_string());
            } else if line.trim() == "@mysql" {
                flavor = Flavor::MySql;
            } else {
                q.push(line);
            }
        }
        let q = q.join("\n");
        let q = q.trim();
        if q.is_empty() {
            continue;
        }
        let setup_refs: Vec<&str> = setup.iter().map(String::as_str).collect();
        let o = run(&setup_refs, flavor, q);
        let v = match &o {
            Ok(DdlOutcome::Skipped(r)) => serde_json::json!({"kind": "skip", "reason": r}),
            Ok(a @ DdlOutcome::Apply(steps)) => serde_json::json!({
                "kind": "apply", "sql": sql_of(a),
                "notes": steps.iter().flat_map(|s| s.notes.clone()).collect::<Vec<_>>(),
                "actions": steps.iter().map(|s| match &s.action {
                    TableAction::Create { model, problem } => format!("create {}.{} key={:?} problem={problem:?}", model.mysql_schema, model.mysql_table, model.key),
                    TableAction::Alter { from, model } => format!("alter {}.{} -> {}.{} key={:?} cols={:?}", from.0, from.1, model.mysql_schema, model.mysql_table, model.key, model.columns.iter().map(|c| format!("{} {}{}", c.name, c.column_type, if c.nullable { "" } else { " NOT NULL" })).collect::<Vec<_>>()),
                    other => format!("{other:?}"),
                }).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"kind": "err", "table": e.table, "message": e.message}),
        };
        println!("JSON {}", serde_json::json!({"setup": setup, "mysql": flavor == Flavor::MySql, "q": q, "out": v}));
    }
}

/// What a case must give.
enum Expect {
    /// Skipped (for any reason): `skip`.
    Skip,
    /// An error about this table, or about none: `error: schema.table`, `error: (no table)`.
    Err(Option<TableName>),
    /// Applied, with exactly these statements (all steps, in order): `pg:` lines, `pg: (none)`.
    Sql(Vec<String>),
}

/// One case of a `corpus/*.cases` file.
struct Case {
    /// `file:line` of its statement, for failure reports.
    place: String,
    /// Statements translated and recorded first, in order.
    setup: Vec<String>,
    flavor: Flavor,
    q: String,
    expect: Expect,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/core/ddl/corpus")
}

/// `file:line` of a line of a data file, as a path from the crate root.
fn place(file: &str, line: usize) -> String {
    format!("src/core/ddl/corpus/{file}:{line}")
}

fn read_data_file(file: &str) -> String {
    let path = corpus_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of a data file with `#` comment lines dropped and `| ` continuation lines joined
/// to the line before by a newline: (number of the first line, text), None for a blank line.
fn logical_lines(file: &str, text: &str, problems: &mut Vec<String>) -> Vec<(usize, Option<String>)> {
    let mut lines: Vec<(usize, Option<String>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with('#') {
            continue;
        }
        if let Some(rest) = raw.strip_prefix('|') {
            match lines.last_mut() {
                Some((_, Some(before))) => {
                    before.push('\n');
                    before.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                }
                _ => problems.push(format!("{}: a `|` line continues no line", place(file, i + 1))),
            }
        } else if raw.trim().is_empty() {
            lines.push((i + 1, None));
        } else {
            lines.push((i + 1, Some(raw.to_string())));
        }
    }
    lines
}

/// The runs of non-blank logical lines of a data file.
fn blocks(lines: Vec<(usize, Option<String>)>) -> Vec<Vec<(usize, String)>> {
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    for (number, line) in lines {
        match line {
            Some(text) => block.push((number, text)),
            None if !block.is_empty() => blocks.push(std::mem::take(&mut block)),
            None => {}
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// The table of an `error:` line: `schema.table`, or `(no table)`.
fn error_table(value: &str) -> Result<Option<TableName>, String> {
    if value == "(no table)" {
        return Ok(None);
    }
    match value.split_once('.') {
        Some((s, t)) if !s.is_empty() && !t.is_empty() => Ok(Some((s.to_string(), t.to_string()))),
        _ => Err("names no schema.table (nor `(no table)`)".to_string()),
    }
}

/// One case from its block: `setup:` lines, one `mariadb:` or `mysql:` statement, then its
/// expectation (`pg:` lines, `pg: (none)`, `skip` or `error:`).
fn case_of(file: &str, block: &[(usize, String)]) -> Result<Case, String> {
    let mut setup = Vec::new();
    let mut statement: Option<(usize, Flavor, String)> = None;
    let mut expect: Option<Expect> = None;
    let mut pg_none = false;
    for (number, line) in block {
        let bad = |what: &str| format!("{}: {what}: {line}", place(file, *number));
        let (key, value) = match line.split_once(": ") {
            Some((key, value)) => (key, Some(value)),
            None => (line.as_str(), None),
        };
        match (key, value) {
            ("setup" | "mariadb" | "mysql", Some(_)) if statement.is_some() => {
                return Err(bad("a second statement, or setup after the statement"))
            }
            ("setup", Some(s)) => setup.push(s.to_string()),
            ("mariadb", Some(q)) => statement = Some((*number, Flavor::MariaDb, q.to_string())),
            ("mysql", Some(q)) => statement = Some((*number, Flavor::MySql, q.to_string())),
            ("pg" | "skip" | "error", _) if statement.is_none() => {
                return Err(bad("an expectation before the statement"))
            }
            ("pg", Some("(none)")) if expect.is_none() => {
                expect = Some(Expect::Sql(vec![]));
                pg_none = true;
            }
            ("pg", Some(s)) if s != "(none)" && !pg_none => match &mut expect {
                None => expect = Some(Expect::Sql(vec![s.to_string()])),
                Some(Expect::Sql(sql)) => sql.push(s.to_string()),
                Some(_) => return Err(bad("a second expectation")),
            },
            ("skip", None) if expect.is_none() => expect = Some(Expect::Skip),
            ("error", Some(t)) if expect.is_none() => expect = Some(Expect::Err(error_table(t).map_err(|e| bad(&e))?)),
            ("pg" | "error", Some(_)) | ("skip", None) => return Err(bad("a second expectation")),
            _ => return Err(bad("not a case line (setup:, mariadb:, mysql:, pg:, skip, error:)")),
        }
    }
    let first = block.first().map_or(0, |(n, _)| *n);
    let Some((number, flavor, q)) = statement else {
        return Err(format!("{}: a case without a `mariadb:` or `mysql:` statement", place(file, first)));
    };
    let Some(expect) = expect else {
        return Err(format!("{}: a case without `pg:`, `skip` or `error:`", place(file, number)));
    };
    Ok(Case { place: place(file, number), setup, flavor, q, expect })
}

/// Every case of every `corpus/*.cases` file (in file name order), and the problems found
/// reading them.
fn load_cases() -> (Vec<Case>, Vec<String>) {
    let dir = corpus_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|x| x == CASES_EXTENSION))
        .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let lines = logical_lines(file, &read_data_file(file), &mut problems);
        for block in blocks(lines) {
            match case_of(file, &block) {
                Ok(case) => cases.push(case),
                Err(problem) => problems.push(problem),
            }
        }
    }
    (cases, problems)
}

/// The tables of `corpus/base_tables.txt`: (default schema, CREATE TABLE statement).
fn base_tables() -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let lines = logical_lines(BASE_TABLES, &read_data_file(BASE_TABLES), &mut problems);
    let mut tables = Vec::new();
    for (number, line) in lines {
        match line.as_deref().map(|l| l.split_once(": ")) {
            None => {}
            Some(Some((schema, ddl))) => tables.push((schema.to_string(), ddl.to_string())),
            Some(None) => problems.push(format!("{}: not `schema: CREATE TABLE ...`", place(BASE_TABLES, number))),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    tables
}

/// An expectation written as the lines of a case file.
fn expectation_lines(expect: &Expect) -> String {
    match expect {
        Expect::Skip => "skip".to_string(),
        Expect::Err(Some((s, t))) => format!("error: {s}.{t}"),
        Expect::Err(None) => "error: (no table)".to_string(),
        Expect::Sql(sql) if sql.is_empty() => "pg: (none)".to_string(),
        Expect::Sql(sql) => {
            sql.iter().map(|s| format!("pg: {}", s.replace('\n', "\n| "))).collect::<Vec<_>>().join("\n")
        }
    }
}

/// An outcome written as the expectation lines of a case, with the skip reason or error
/// message as a comment (ready to paste into a case file once reviewed).
fn outcome_lines(got: &Result<DdlOutcome, DdlError>) -> String {
    match got {
        Ok(DdlOutcome::Skipped(reason)) => format!("skip\n# {reason}"),
        Ok(o @ DdlOutcome::Apply(_)) => expectation_lines(&Expect::Sql(sql_of(o))),
        Err(e) => format!("{}\n# {}", expectation_lines(&Expect::Err(e.table.clone())), e.message),
    }
}

/// What is wrong with a case's outcome, or None when it gives what it expects.
fn check(case: &Case) -> Option<String> {
    let setup: Vec<&str> = case.setup.iter().map(String::as_str).collect();
    let tables = match tables_after(&setup, case.flavor) {
        Ok(tables) => tables,
        Err(e) => return Some(format!("{}: {e}", case.place)),
    };
    let got = translate(&case.q, &DdlContext { tables: &tables, ..ctx(case.flavor) });
    let ok = match (&case.expect, &got) {
        (Expect::Skip, Ok(DdlOutcome::Skipped(_))) => true,
        (Expect::Err(t), Err(e)) => e.table == *t,
        (Expect::Sql(want), Ok(o @ DdlOutcome::Apply(_))) => sql_of(o) == *want,
        _ => false,
    };
    let indent = |s: String| s.replace('\n', "\n    ");
    (!ok).then(|| {
        let (want, got) = (indent(expectation_lines(&case.expect)), indent(outcome_lines(&got)));
        format!("{}: {}\n  expected:\n    {want}\n  got:\n    {got}", case.place, case.q)
    })
}

#[test]
fn corpus_gives_the_expected_postgresql() {
    let (cases, mut failures) = load_cases();
    if cases.len() < MIN_CASES {
        failures.push(format!(
            "{} cases loaded from {}, expected at least {MIN_CASES}",
            cases.len(),
            corpus_dir().display()
        ));
    }
    failures.extend(cases.iter().filter_map(check));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn loader_reads_the_format_and_reports_what_it_cannot_read() {
    let load = |text: &str| {
        let mut problems = Vec::new();
        let cases: Vec<Case> = blocks(logical_lines("t.cases", text, &mut problems))
            .iter()
            .filter_map(|b| case_of("t.cases", b).map_err(|e| problems.push(e)).ok())
            .collect();
        (cases, problems)
    };
    let (cases, problems) =
        load("# c\nsetup: s1\nmysql: a\n| b\npg: c\n|\n| d\npg: e\n\n\nmariadb: x\nerror: (no table)\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(cases.len(), 2);
    assert_eq!((cases[0].place.as_str(), cases[0].q.as_str()), ("src/core/ddl/corpus/t.cases:3", "a\nb"));
    assert_eq!((cases[0].setup.clone(), cases[0].flavor == Flavor::MySql), (vec!["s1".to_string()], true));
    assert!(matches!(&cases[0].expect, Expect::Sql(sql) if *sql == ["c\n\nd", "e"]));
    assert!(matches!(cases[1].expect, Expect::Err(None)) && cases[1].flavor == Flavor::MariaDb);
    for bad in [
        "| x",
        "mariadb: x\nskipp",
        "pg: y\nmariadb: x",
        "mariadb: x",
        "setup: s",
        "mariadb: x\nmysql: y\nskip",
        "mariadb: x\npg: (none)\npg: y",
        "mariadb: x\npg: y\npg: (none)",
        "mariadb: x\nskip\nerror: shop.t",
        "mariadb: x\nerror: t",
        "mariadb: x\nskip\nsetup: s",
    ] {
        let (cases, problems) = load(bad);
        assert!(cases.is_empty() && problems.len() == 1, "{bad:?}: {problems:?}");
        assert!(problems[0].starts_with("src/core/ddl/corpus/t.cases:"), "{problems:?}");
    }
}

/// The last step's model after `q` (with `setup` recorded first).
fn model_after(setup: &[&str], q: &str) -> (TableModel, Vec<String>) {
    match run(setup, Flavor::MariaDb, q) {
        Ok(DdlOutcome::Apply(steps)) => {
            let s = steps.last().unwrap();
            match &s.action {
                TableAction::Create { model, .. } | TableAction::Alter { model, .. } => {
                    (model.clone(), s.notes.clone())
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        other => panic!("{q}: {other:?}"),
    }
}

fn names(m: &TableModel) -> Vec<&str> {
    m.columns.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn models_follow_mysql() {
    // column order follows FIRST / AFTER (rows are decoded by position)
    let (m, _) = model_after(&[], "alter table `users` add `votes` int unsigned not null after `email`");
    assert_eq!(names(&m), ["id", "email", "votes", "name", "status", "created_at"]);
    assert_eq!((m.columns[2].column_type.as_str(), m.columns[2].nullable), ("int(10) unsigned", false));
    let (m, _) = model_after(&[], "ALTER TABLE users CHANGE `name` `full_name` varchar(200) NOT NULL DEFAULT '' FIRST");
    assert_eq!(names(&m), ["full_name", "id", "email", "status", "created_at"]);
    assert_eq!(m.extras[0].default.as_deref(), Some("''"));
    assert_eq!(m.indexes.iter().find(|i| i.name == "idx_name").unwrap().columns, ["full_name"]);
    // the replica key follows the primary key
    let (m, notes) = model_after(&[], "ALTER TABLE t DROP PRIMARY KEY");
    assert!(m.key.is_empty());
    assert!(notes.iter().any(|n| n.contains("no primary key or NOT NULL unique key any more")));
    let (m, _) = model_after(&[], "ALTER TABLE users DROP PRIMARY KEY");
    assert_eq!(m.key, ["email"]);
    let (m, _) = model_after(&[], "ALTER TABLE nokey ADD PRIMARY KEY (a)");
    assert_eq!((m.key.clone(), m.columns[0].nullable), (vec!["a".to_string()], false));
    // foreign keys are recorded only
    let (m, _) = model_after(&[], "ALTER TABLE `orders` DROP FOREIGN KEY `fk_user`");
    assert!(m.foreign_keys.is_empty());
    let (m, _) = model_after(&[], "ALTER TABLE `orders` ADD CONSTRAINT `fk_rails_1` FOREIGN KEY (`user_id`) REFERENCES `app`.`users` (`id`) ON DELETE CASCADE");
    let fk = m.foreign_keys.iter().find(|f| f.name == "fk_rails_1").unwrap();
    assert_eq!(
        (fk.ref_schema.as_str(), fk.ref_table.as_str(), fk.on_delete.as_str(), fk.on_update.as_str()),
        ("app", "users", "CASCADE", "RESTRICT")
    );
    // character sets: column, table default, schema default, CONVERT TO
    let (m, _) = model_after(&[], "CREATE TABLE cs (`id` int PRIMARY KEY, a varchar(5), b varchar(5) CHARACTER SET latin1, c blob) DEFAULT CHARSET=ascii");
    let cs: Vec<Option<&str>> = m.columns.iter().map(|c| c.charset.as_deref()).collect();
    assert_eq!(cs, [None, Some("ascii"), Some("latin1"), None]);
    let (m, _) = model_after(&[], "CREATE TABLE cs (`id` int PRIMARY KEY, a varchar(5))");
    assert_eq!(m.columns[1].charset.as_deref(), Some("utf8mb4"));
    let (m, _) = model_after(&[], "ALTER TABLE orders CONVERT TO CHARACTER SET utf8mb4");
    assert_eq!(m.columns[3].charset.as_deref(), Some("utf8mb4"));
    let (m, _) = model_after(&[], "ALTER TABLE orders ADD COLUMN extra varchar(3)");
    assert_eq!(m.columns[4].charset.as_deref(), Some("latin1"));
    // renames move the model
    let (m, _) = model_after(&[], "RENAME TABLE users TO app.users");
    assert_eq!((m.mysql_schema.as_str(), m.pg_schema.as_str(), m.pg_table.as_str()), ("app", "app", "users"));
    // pt-online-schema-change, recorded step by step
    let (m, _) = model_after(
        &[
            "CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`",
            "ALTER TABLE `shop`.`_t_new` ADD COLUMN `c` int(11) NOT NULL DEFAULT 7",
        ],
        "RENAME TABLE `shop`.`t` TO `shop`.`_t_old`, `shop`.`_t_new` TO `shop`.`t`",
    );
    assert_eq!((m.mysql_table.as_str(), names(&m)), ("t", vec!["id", "v", "c"]));
    // MySQL 8 information_schema forms
    let f = fixture();
    let c = DdlContext { ..ctx(Flavor::MySql) };
    let m = model_from_create("CREATE TABLE m (`id` int unsigned NOT NULL PRIMARY KEY, `d` varchar(3) DEFAULT 'x', `t` timestamp DEFAULT CURRENT_TIMESTAMP)", &c).unwrap();
    assert_eq!(m.columns[0].column_type, "int unsigned");
    assert_eq!((m.extras[1].default.as_deref(), m.extras[2].extra.as_str()), (Some("x"), "DEFAULT_GENERATED"));
    assert_eq!(f.tables.len(), base_tables().len());
}

#[test]
fn type_override_and_problems() {
    let f = fixture();
    let options = SourceOptions::from_json(&serde_json::json!({
        "type_override": {"tinyint(1)": {"override_to": "boolean", "override_tables": ["*"]}},
        "skip_tables": ["shop.secret"]
    }))
    .unwrap();
    let c = DdlContext { options: &options, ..ctx(Flavor::MariaDb) };
    let o = translate("ALTER TABLE users ADD COLUMN active tinyint(1) NOT NULL DEFAULT 1", &c).unwrap();
    assert_eq!(
        sql_of(&o),
        [r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "active" boolean NOT NULL DEFAULT 'true'::boolean"#]
    );
    let o = translate("ALTER TABLE t MODIFY v tinyint(1)", &c).unwrap();
    assert_eq!(
        sql_of(&o),
        [
            r#"ALTER TABLE "shop_pg"."t" ALTER COLUMN "v" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."t" ALTER COLUMN "v" TYPE boolean USING "v"::boolean"#
        ]
    );
    assert!(matches!(translate("CREATE TABLE secret (id int primary key)", &c), Ok(DdlOutcome::Skipped(_))));
    assert!(translate("RENAME TABLE t TO secret", &c).unwrap_err().message.contains("leave out"));
    assert_eq!(f.tables.len(), base_tables().len());
}

/// A line of `corpus/may_affect.txt`: `<yes|no> <default schema or -> <statement>`.
fn may_affect_line(line: &str) -> Option<(bool, &str, &str)> {
    let (want, rest) = line.split_once(' ')?;
    let want = match want {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    let rest = rest.trim_start();
    let (db, q) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((want, if db == "-" { "" } else { db }, q.trim_start()))
}

#[test]
fn may_affect_decides_from_names() {
    let mapped = |s: &str| s == "shop" || s == "app";
    let mut failures = Vec::new();
    let lines = logical_lines(MAY_AFFECT, &read_data_file(MAY_AFFECT), &mut failures);
    let mut count = 0;
    for (number, line) in lines {
        let Some(line) = line else { continue };
        count += 1;
        match may_affect_line(&line) {
            Some((want, db, q)) if may_affect(q, db, &mapped) == want => {}
            Some((want, _, _)) => {
                failures.push(format!("{}: {line}: may_affect gave {}", place(MAY_AFFECT, number), !want))
            }
            None => {
                failures.push(format!("{}: not `<yes|no> <schema|-> <statement>`: {line}", place(MAY_AFFECT, number)))
            }
        }
    }
    if count < MIN_MAY_AFFECT {
        failures.push(format!("{count} lines loaded from {MAY_AFFECT}, expected at least {MIN_MAY_AFFECT}"));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn nothing_panics() {
    let mapped = |s: &str| s == "shop" || s == "app";
    let garbage = [
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
        "ALTER TABLE t ADD c int DEFAULT ((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))",
        "CREATE TABLE t (a enum('", "ALTER TABLE `", "'", "`", "/*!", "/*M!1", "*/", "-- ", "#", "\\", "\u{0}", "ALTER TABLE t ADD c int(99999999999999999999999)",
        "CREATE TABLE t (a decimal(99,99))", "ALTER TABLE t CHANGE", "ALTER TABLE users ADD COLUMN a int AFTER", "RENAME TABLE a TO", "DROP TABLE ,,,",
        "CREATE TABLE t (a int, PRIMARY KEY ())", "ALTER TABLE users ADD PRIMARY KEY (nope)", "ALTER TABLE users MODIFY nope int", "ALTER TABLE users RENAME COLUMN nope TO x",
        "ALTER TABLE users ADD c int AFTER nope", "CREATE TABLE é (ü int)", "ALTER TABLE users ADD `x` bit(99)", "ALTER TABLE users ADD x char(0)", "ALTER TABLE users ADD x datetime(9)",
    ];
    let (cases, problems) = load_cases();
    assert!(problems.is_empty() && cases.len() >= MIN_CASES, "{} cases; {}", cases.len(), problems.join("\n"));
    let ctx = ctx(Flavor::MariaDb);
    let mut inputs: Vec<String> = garbage.iter().map(|s| s.to_string()).collect();
    for c in &cases {
        for (i, _) in c.q.char_indices() {
            inputs.push(c.q[..i].to_string());
        }
        inputs.push(c.q.to_string());
        inputs.push(c.q.replace('`', ""));
    }
    for q in &inputs {
        let _ = translate(q, &ctx);
        let _ = may_affect(q, "shop", &mapped);
    }
    assert!(inputs.len() > 1000);
}
