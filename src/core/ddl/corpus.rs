//! The corpus: real-world DDL (ORM migrations, online schema change tools, mysqldump,
//! MariaDB forms, statements to skip, hostile names) with the PostgreSQL and models
//! expected, and the no-panic sweep over every statement, its prefixes and garbage.

use super::*;
use crate::core::mysql_source::Flavor;
use std::sync::OnceLock;

pub(super) struct Fixture {
    pub mappings: SchemaMappings,
    pub options: SourceOptions,
    pub tables: HashMap<TableName, TableModel>,
    pub charsets: HashMap<String, String>,
}

const BASE: &[(&str, &str)] = &[
    (
        "shop",
        "CREATE TABLE `users` (`id` bigint(20) NOT NULL AUTO_INCREMENT, `email` varchar(255) NOT NULL, `name` varchar(100) DEFAULT NULL, \
         `status` enum('active','banned') NOT NULL DEFAULT 'active', `created_at` datetime NOT NULL DEFAULT current_timestamp(), \
         PRIMARY KEY (`id`), UNIQUE KEY `index_users_on_email` (`email`), KEY `idx_name` (`name`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ),
    (
        "shop",
        "CREATE TABLE `orders` (`order_id` int(10) unsigned NOT NULL, `user_id` bigint(20) NOT NULL, `total` decimal(10,2) NOT NULL DEFAULT 0.00, \
         `note` text, UNIQUE KEY `uq_order` (`order_id`), KEY `fk_user` (`user_id`), \
         CONSTRAINT `fk_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
    ),
    ("shop", "CREATE TABLE `t` (`id` int(11) NOT NULL, `v` varchar(10) DEFAULT NULL, PRIMARY KEY (`id`))"),
    ("shop", "CREATE TABLE `Mixed Case` (`Id` int(11) NOT NULL, `Grüße` varchar(5) DEFAULT NULL, PRIMARY KEY (`Id`))"),
    ("shop", "CREATE TABLE `nokey` (`a` int(11) DEFAULT NULL, `b` int(11) DEFAULT NULL)"),
    ("app", "CREATE TABLE `app_model` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `title` varchar(200) NOT NULL)"),
];

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
        for (schema, ddl) in BASE {
            let ctx = DdlContext {
                default_schema: schema,
                mappings: &mappings,
                options: &options,
                flavor: Flavor::MariaDb,
                postgis: None,
                tables: &empty,
                schema_charsets: &charsets,
            };
            let m = model_from_create(ddl, &ctx).unwrap();
            tables.insert((m.mysql_schema.clone(), m.mysql_table.clone()), m);
        }
        Fixture { mappings, options, tables, charsets }
    })
}

pub(super) fn ctx(flavor: Flavor) -> DdlContext<'static> {
    let f = fixture();
    DdlContext {
        default_schema: "shop",
        mappings: &f.mappings,
        options: &f.options,
        flavor,
        postgis: None,
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

/// Runs the setup statements (recording their outcome), then the statement.
pub(super) fn run(setup: &[&str], flavor: Flavor, q: &str) -> Result<DdlOutcome, DdlError> {
    let f = fixture();
    let mut tables = f.tables.clone();
    for s in setup {
        let c = DdlContext { tables: &tables, ..ctx(flavor) };
        let o = translate(s, &c).unwrap_or_else(|e| panic!("setup {s}: {e}"));
        apply(&mut tables, &o);
    }
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

/// What a corpus statement must give.
pub(super) enum X {
    /// Skipped (for any reason).
    Skip,
    /// An error about this table.
    Err(Option<(&'static str, &'static str)>),
    /// Applied, with exactly these statements (all steps, in order).
    Sql(&'static [&'static str]),
}

pub(super) struct Case {
    pub setup: &'static [&'static str],
    pub mysql: bool,
    pub q: &'static str,
    pub expect: X,
}

fn flavor_of(c: &Case) -> Flavor {
    if c.mysql {
        Flavor::MySql
    } else {
        Flavor::MariaDb
    }
}

#[test]
fn corpus_gives_the_expected_postgresql() {
    assert!(CASES.len() >= 150, "{} statements", CASES.len());
    let mut failures = Vec::new();
    for c in CASES {
        let got = run(c.setup, flavor_of(c), c.q);
        let ok = match (&c.expect, &got) {
            (X::Skip, Ok(DdlOutcome::Skipped(_))) => true,
            (X::Err(t), Err(e)) => e.table.as_ref().map(|(s, n)| (s.as_str(), n.as_str())) == *t,
            (X::Sql(want), Ok(o @ DdlOutcome::Apply(_))) => sql_of(o) == *want,
            _ => false,
        };
        if !ok {
            failures.push(format!("{}\n  got {got:?}", c.q));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
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
    assert_eq!(f.tables.len(), BASE.len());
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
    assert_eq!(f.tables.len(), BASE.len());
}

#[test]
fn may_affect_decides_from_names() {
    let mapped = |s: &str| s == "shop" || s == "app";
    let yes = [
        ("ALTER TABLE users ADD x int", "shop"),
        ("ALTER TABLE `shop`.`users` ADD x int", ""),
        ("CREATE TABLE app.t (a int)", "other"),
        ("DROP TABLE IF EXISTS other.a, shop.b", "other"),
        ("RENAME TABLE other.a TO shop.a", "other"),
        ("RENAME TABLE shop.a TO other.a", "other"),
        ("TRUNCATE TABLE t", "shop"),
        ("CREATE INDEX i ON t (a)", "shop"),
        ("DROP INDEX i ON app.t", ""),
        ("CREATE DATABASE shop", ""),
        ("DROP SCHEMA app", "other"),
        ("/*!40000 ALTER TABLE `users` DISABLE KEYS */", "shop"),
        ("ALTER TABLE users FROBNICATE", "shop"),
        ("CREATE TABLE shop.broken (", "other"),
        ("ALTER ONLINE TABLE `users` ADD COLUMN `z` int", "shop"),
    ];
    for (q, db) in yes {
        assert!(may_affect(q, db, &mapped), "{q}");
    }
    let no = [
        ("ALTER TABLE users ADD x int", "other"),
        ("ALTER TABLE other.users ADD x int", "shop"),
        ("BEGIN", "shop"),
        ("COMMIT", "shop"),
        ("SAVEPOINT a", "shop"),
        ("XA START 'x'", "shop"),
        ("GRANT ALL ON shop.* TO u", "shop"),
        ("CREATE VIEW v AS SELECT 1", "shop"),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1", "shop"),
        ("CREATE PROCEDURE p() BEGIN ALTER TABLE t ADD c int; END", "shop"),
        ("ANALYZE TABLE t", "shop"),
        ("OPTIMIZE TABLE t", "shop"),
        ("CREATE TEMPORARY TABLE t (a int)", "shop"),
        ("DROP TEMPORARY TABLE t", "shop"),
        ("CREATE DATABASE other", "shop"),
        ("INSERT INTO t VALUES (1)", "shop"),
        ("ALTER TABLE t ADD x int", ""),
        ("", "shop"),
    ];
    for (q, db) in no {
        assert!(!may_affect(q, db, &mapped), "{q}");
    }
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
    let ctx = ctx(Flavor::MariaDb);
    let mut inputs: Vec<String> = garbage.iter().map(|s| s.to_string()).collect();
    for c in CASES {
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
/// The corpus: (setup statements, MySQL 8 flavor, statement, expected outcome).
pub(super) const CASES: &[Case] = &[
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `users2` (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `email` varchar(255) DEFAULT '' NOT NULL, `encrypted_password` varchar(255) DEFAULT '' NOT NULL, `reset_password_token` varchar(255), `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."users2" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "email" character varying(255) NOT NULL DEFAULT ''::character varying(255), "encrypted_password" character varying(255) NOT NULL DEFAULT ''::character varying(255), "reset_password_token" character varying(255), "created_at" timestamp(6) without time zone NOT NULL, "updated_at" timestamp(6) without time zone NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."users2" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"CREATE TABLE `users2` (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `email` varchar(255) DEFAULT '' NOT NULL, `created_at` datetime(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."users2" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "email" character varying(255) NOT NULL DEFAULT ''::character varying(255), "created_at" timestamp(6) without time zone NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."users2" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE UNIQUE INDEX `index_users_on_name` ON `users` (`name`)"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "users_index_users_on_name" ON "shop_pg"."users" ("name")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD `admin` tinyint(1) DEFAULT FALSE"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "admin" smallint DEFAULT '0'::smallint"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD `role` varchar(255) DEFAULT 'member' NOT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "role" character varying(255) NOT NULL DEFAULT 'member'::character varying(255)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` CHANGE `name` `name` varchar(150) DEFAULT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" TYPE character varying(150) USING "name"::character varying(150)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"ALTER TABLE `users` RENAME COLUMN `name` TO `display_name`"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" RENAME COLUMN "name" TO "display_name""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` DROP COLUMN `name`"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" DROP COLUMN "name""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `orders` ADD CONSTRAINT `fk_rails_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)"#,
        expect: X::Sql(&[]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `orders` DROP FOREIGN KEY `fk_user`"#, expect: X::Sql(&[]) },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `schema_migrations` (`version` varchar(255) NOT NULL PRIMARY KEY)"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."schema_migrations" ("version" character varying(255) NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."schema_migrations" ADD PRIMARY KEY ("version")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `ar_internal_metadata` (`key` varchar(255) NOT NULL PRIMARY KEY, `value` varchar(255), `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL)"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."ar_internal_metadata" ("key" character varying(255) NOT NULL, "value" character varying(255), "created_at" timestamp(6) without time zone NOT NULL, "updated_at" timestamp(6) without time zone NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."ar_internal_metadata" ADD PRIMARY KEY ("key")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP TABLE `users`"#,
        expect: X::Sql(&[
            r#"DROP TABLE IF EXISTS "shop_pg"."users""#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD INDEX `index_users_on_created_at` (`created_at`)"#,
        expect: X::Sql(&[r#"CREATE INDEX "users_index_users_on_created_at" ON "shop_pg"."users" ("created_at")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ALTER COLUMN `name` SET DEFAULT 'anon'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" SET DEFAULT 'anon'::character varying(100)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"ALTER TABLE `users` MODIFY `created_at` datetime(6) NOT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" TYPE timestamp(6) without time zone USING "created_at"::timestamp(6) without time zone"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `app`.`app_author` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `name` varchar(100) NOT NULL, `birth` date NULL)"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "app"."app_author" ("id" integer NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" character varying(100) NOT NULL, "birth" date)"#,
            r#"ALTER TABLE "app"."app_author" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` ADD COLUMN `x` integer DEFAULT 0 NOT NULL"#,
        expect: X::Sql(&[r#"ALTER TABLE "app"."app_model" ADD COLUMN "x" integer NOT NULL DEFAULT '0'::integer"#]),
    },
    Case {
        setup: &[r#"ALTER TABLE `app`.`app_model` ADD COLUMN `x` integer DEFAULT 0 NOT NULL"#],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` ALTER COLUMN `x` DROP DEFAULT"#,
        expect: X::Sql(&[r#"ALTER TABLE "app"."app_model" ALTER COLUMN "x" DROP DEFAULT"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` MODIFY `title` varchar(300) NOT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "app"."app_model" ALTER COLUMN "title" DROP DEFAULT"#,
            r#"ALTER TABLE "app"."app_model" ALTER COLUMN "title" TYPE character varying(300) USING "title"::character varying(300)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` ADD COLUMN `author_id` integer NULL , ADD CONSTRAINT `app_model_author_id_fk` FOREIGN KEY (`author_id`) REFERENCES `app_author` (`id`)"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "app"."app_model" ADD COLUMN "author_id" integer"#,
            r#"CREATE INDEX "app_model_app_model_author_id_fk" ON "app"."app_model" ("author_id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE INDEX `app_model_title_idx` ON `app`.`app_model` (`title`)"#,
        expect: X::Sql(&[r#"CREATE INDEX "app_model_app_model_title_idx" ON "app"."app_model" ("title")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` RENAME TO `app`.`app_entry`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "app"."app_model" RENAME TO "app_entry""#,
            r#"ALTER TABLE "app"."app_entry" RENAME CONSTRAINT "app_model_pkey" TO "app_entry_pkey""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` ADD CONSTRAINT `app_model_title_uniq` UNIQUE (`title`)"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "app_model_app_model_title_uniq" ON "app"."app_model" ("title")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` DROP INDEX `app_model_title_uniq`"#,
        expect: X::Skip,
    },
    Case {
        setup: &[r#"ALTER TABLE `app`.`app_model` ADD CONSTRAINT `app_model_title_uniq` UNIQUE (`title`)"#],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` DROP INDEX `app_model_title_uniq`"#,
        expect: X::Sql(&[r#"DROP INDEX IF EXISTS "app"."app_model_app_model_title_uniq""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` CHANGE `title` `headline` varchar(200) NOT NULL"#,
        expect: X::Sql(&[r#"ALTER TABLE "app"."app_model" RENAME COLUMN "title" TO "headline""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `app`.`app_model` ADD COLUMN `flag` bool DEFAULT b'0' NOT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "app"."app_model" ADD COLUMN "flag" smallint NOT NULL DEFAULT '0'::smallint"#,
            r#"ALTER TABLE "app"."app_model" ALTER COLUMN "flag" DROP DEFAULT"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP TABLE `app`.`app_model` CASCADE"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "app"."app_model""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` add `votes` int unsigned not null after `email`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "votes" bigint NOT NULL DEFAULT '0'::bigint"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "votes" DROP DEFAULT"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"create table `password_resets` (`email` varchar(255) not null, `token` varchar(255) not null, `created_at` timestamp null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."password_resets" ("email" character varying(255) NOT NULL, "token" character varying(255) NOT NULL, "created_at" timestamp(0) with time zone)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `password_resets` add index `password_resets_email_index`(`email`)"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` add unique `users_name_unique`(`name`)"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "users_users_name_unique" ON "shop_pg"."users" ("name")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` add `remember_token` varchar(100) null"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "remember_token" character varying(100)"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` modify `email` varchar(191) not null"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "email" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "email" TYPE character varying(191) USING "email"::character varying(191)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` change `email` `email_address` varchar(255) not null"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" RENAME COLUMN "email" TO "email_address""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` drop `status`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" DROP COLUMN "status""#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` add `deleted_at` timestamp null"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "deleted_at" timestamp(0) with time zone"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"alter table `users` comment = 'Application users'"#,
        expect: X::Sql(&[r#"COMMENT ON TABLE "shop_pg"."users" IS 'Application users'"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"create table `failed_jobs` (`id` bigint unsigned not null auto_increment primary key, `uuid` varchar(255) not null, `payload` longtext not null, `failed_at` timestamp default CURRENT_TIMESTAMP not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."failed_jobs" ("id" numeric(20,0) NOT NULL, "uuid" character varying(255) NOT NULL, "payload" text NOT NULL, "failed_at" timestamp(0) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP)"#,
            r#"ALTER TABLE "shop_pg"."failed_jobs" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[
            r#"create table `failed_jobs` (`id` bigint unsigned not null auto_increment primary key, `uuid` varchar(255) not null) default character set utf8mb4"#,
        ],
        mysql: false,
        q: r#"alter table `failed_jobs` add unique `failed_jobs_uuid_unique`(`uuid`)"#,
        expect: X::Sql(&[
            r#"CREATE UNIQUE INDEX "failed_jobs_failed_jobs_uuid_unique" ON "shop_pg"."failed_jobs" ("uuid")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"rename table `users` to `customers`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" RENAME TO "customers""#,
            r#"ALTER TYPE "shop_pg"."users_status" RENAME TO "customers_status""#,
            r#"ALTER INDEX "shop_pg"."users_index_users_on_email" RENAME TO "customers_index_users_on_email""#,
            r#"ALTER INDEX "shop_pg"."users_idx_name" RENAME TO "customers_idx_name""#,
            r#"ALTER TABLE "shop_pg"."customers" RENAME CONSTRAINT "users_pkey" TO "customers_pkey""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"drop table if exists `users`"#,
        expect: X::Sql(&[
            r#"DROP TABLE IF EXISTS "shop_pg"."users""#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."_t_new" ("id" integer NOT NULL, "v" character varying(10))"#,
            r#"ALTER TABLE "shop_pg"."_t_new" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[r#"CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`"#],
        mysql: false,
        q: r#"ALTER TABLE `shop`.`_t_new` ADD COLUMN `c` int(11) NOT NULL DEFAULT 7"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."_t_new" ADD COLUMN "c" integer NOT NULL DEFAULT '7'::integer"#]),
    },
    Case {
        setup: &[
            r#"CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`"#,
            r#"ALTER TABLE `shop`.`_t_new` ADD COLUMN `c` int(11) NOT NULL DEFAULT 7"#,
        ],
        mysql: false,
        q: r#"RENAME TABLE `shop`.`t` TO `shop`.`_t_old`, `shop`.`_t_new` TO `shop`.`t`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."t" RENAME TO "_t_old""#,
            r#"ALTER TABLE "shop_pg"."_t_old" RENAME CONSTRAINT "t_pkey" TO "_t_old_pkey""#,
            r#"ALTER TABLE "shop_pg"."_t_new" RENAME TO "t""#,
            r#"ALTER TABLE "shop_pg"."t" RENAME CONSTRAINT "_t_new_pkey" TO "t_pkey""#,
        ]),
    },
    Case {
        setup: &[
            r#"CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`"#,
            r#"RENAME TABLE `shop`.`t` TO `shop`.`_t_old`, `shop`.`_t_new` TO `shop`.`t`"#,
        ],
        mysql: false,
        q: r#"DROP TABLE IF EXISTS `shop`.`_t_old`"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "shop_pg"."_t_old""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TRIGGER `pt_osc_shop_t_ins` AFTER INSERT ON `shop`.`t` FOR EACH ROW REPLACE INTO `shop`.`_t_new` (`id`, `v`) VALUES (NEW.`id`, NEW.`v`)"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"DROP TRIGGER IF EXISTS `shop`.`pt_osc_shop_t_del`"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"create /* gh-ost */ table `shop`.`_t_gho` like `shop`.`t`"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."_t_gho" ("id" integer NOT NULL, "v" character varying(10))"#,
            r#"ALTER TABLE "shop_pg"."_t_gho" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[r#"create /* gh-ost */ table `shop`.`_t_gho` like `shop`.`t`"#],
        mysql: false,
        q: r#"alter /* gh-ost */ table `shop`.`_t_gho` add column `w` int"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."_t_gho" ADD COLUMN "w" integer"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"create /* gh-ost */ table `shop`.`_t_ghc` (id bigint auto_increment, last_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, hint varchar(64) charset ascii not null, value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint)) auto_increment=256"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."_t_ghc" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "last_update" timestamp(0) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP, "hint" character varying(64) NOT NULL, "value" character varying(4096) NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."_t_ghc" ADD PRIMARY KEY ("id")"#,
            r#"CREATE UNIQUE INDEX "_t_ghc_hint_uidx" ON "shop_pg"."_t_ghc" ("hint")"#,
        ]),
    },
    Case {
        setup: &[
            r#"create /* gh-ost */ table `shop`.`_t_gho` like `shop`.`t`"#,
            r#"alter /* gh-ost */ table `shop`.`_t_gho` add column `w` int"#,
        ],
        mysql: false,
        q: r#"rename /* gh-ost */ table `shop`.`t` to `shop`.`_t_del`, `shop`.`_t_gho` to `shop`.`t`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."t" RENAME TO "_t_del""#,
            r#"ALTER TABLE "shop_pg"."_t_del" RENAME CONSTRAINT "t_pkey" TO "_t_del_pkey""#,
            r#"ALTER TABLE "shop_pg"."_t_gho" RENAME TO "t""#,
            r#"ALTER TABLE "shop_pg"."t" RENAME CONSTRAINT "_t_gho_pkey" TO "t_pkey""#,
        ]),
    },
    Case {
        setup: &[
            r#"create /* gh-ost */ table `shop`.`_t_gho` like `shop`.`t`"#,
            r#"rename /* gh-ost */ table `shop`.`t` to `shop`.`_t_del`, `shop`.`_t_gho` to `shop`.`t`"#,
        ],
        mysql: false,
        q: r#"drop /* gh-ost */ table if exists `shop`.`_t_del`"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "shop_pg"."_t_del""#]),
    },
    Case {
        setup: &[
            r#"create /* gh-ost */ table `shop`.`_t_ghc` (id bigint auto_increment, hint varchar(64) charset ascii not null, primary key(id))"#,
        ],
        mysql: false,
        q: r#"drop /* gh-ost */ table if exists `shop`.`_t_ghc`"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "shop_pg"."_t_ghc""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"/*!40101 SET @saved_cs_client     = @@character_set_client */"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"/*!40101 SET character_set_client = utf8 */"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP TABLE IF EXISTS `orders`"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "shop_pg"."orders""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `invoices` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `order_id` int(10) unsigned NOT NULL,
  `year` smallint(6) NOT NULL,
  `amount` decimal(12,2) NOT NULL DEFAULT 0.00,
  `state` enum('open','paid','void') NOT NULL DEFAULT 'open',
  `memo` varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  PRIMARY KEY (`id`,`year`),
  UNIQUE KEY `uq_order_year` (`order_id`,`year`),
  KEY `idx_state` (`state`),
  CONSTRAINT `fk_inv_order` FOREIGN KEY (`order_id`) REFERENCES `orders` (`order_id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
/*!50100 PARTITION BY RANGE (`year`)
(PARTITION p2020 VALUES LESS THAN (2021) ENGINE = InnoDB,
 PARTITION pmax VALUES LESS THAN MAXVALUE ENGINE = InnoDB) */"#,
        expect: X::Sql(&[
            r#"DROP TYPE IF EXISTS "shop_pg"."invoices_state""#,
            r#"CREATE TYPE "shop_pg"."invoices_state" AS ENUM ('open', 'paid', 'void')"#,
            r#"CREATE TABLE "shop_pg"."invoices" ("id" integer NOT NULL GENERATED BY DEFAULT AS IDENTITY, "order_id" bigint NOT NULL, "year" smallint NOT NULL, "amount" numeric(12,2) NOT NULL DEFAULT '0.00'::numeric(12,2), "state" "shop_pg"."invoices_state" NOT NULL DEFAULT 'open'::"shop_pg"."invoices_state", "memo" character varying(255))"#,
            r#"ALTER TABLE "shop_pg"."invoices" ADD PRIMARY KEY ("id", "year")"#,
            r#"CREATE UNIQUE INDEX "invoices_uq_order_year" ON "shop_pg"."invoices" ("order_id", "year")"#,
            r#"CREATE INDEX "invoices_idx_state" ON "shop_pg"."invoices" ("state")"#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"/*!40000 ALTER TABLE `users` DISABLE KEYS */"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"LOCK TABLES `users` WRITE"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"UNLOCK TABLES"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"#,
        expect: X::Sql(&[r#"CREATE SCHEMA IF NOT EXISTS "shop_pg""#]),
    },
    Case { setup: &[], mysql: false, q: r#"CREATE DATABASE `other`"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP DATABASE IF EXISTS `app`"#,
        expect: X::Sql(&[r#"DROP TABLE IF EXISTS "app"."app_model""#, r#"DROP SCHEMA IF EXISTS "app""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE SCHEMA `app`"#,
        expect: X::Sql(&[r#"CREATE SCHEMA IF NOT EXISTS "app""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER ONLINE TABLE `users` ADD COLUMN `z` int"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "z" integer"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD COLUMN IF NOT EXISTS `name` varchar(10)"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD COLUMN IF NOT EXISTS `nick` varchar(10)"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "nick" character varying(10)"#]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `users` DROP COLUMN IF EXISTS `nope`"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` DROP COLUMN IF EXISTS `name`"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" DROP COLUMN "name""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"/*M!100100 ALTER TABLE `users` ADD COLUMN `m` int */"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "m" integer"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD INDEX IF NOT EXISTS `idx_name` (`name`)"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD INDEX IF NOT EXISTS `idx_email_name` (`email`, `name`)"#,
        expect: X::Sql(&[r#"CREATE INDEX "users_idx_email_name" ON "shop_pg"."users" ("email", "name")"#]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `users` MODIFY COLUMN IF EXISTS `nope` int"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE OR REPLACE TABLE `t` (`id` int NOT NULL PRIMARY KEY, `w` varchar(3))"#,
        expect: X::Sql(&[
            r#"DROP TABLE IF EXISTS "shop_pg"."t""#,
            r#"CREATE TABLE "shop_pg"."t" ("id" integer NOT NULL, "w" character varying(3))"#,
            r#"ALTER TABLE "shop_pg"."t" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD COLUMN `j` json"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "j" text"#]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"ALTER TABLE `users` ADD COLUMN `j` json"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "j" jsonb"#]),
    },
    Case { setup: &[], mysql: false, q: r#"CREATE SEQUENCE `s1` START WITH 1"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD SYSTEM VERSIONING"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` WAIT 10 ADD COLUMN w int"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "w" integer"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP INDEX IF EXISTS `idx_name` ON `users`"#,
        expect: X::Sql(&[r#"DROP INDEX IF EXISTS "shop_pg"."users_idx_name""#]),
    },
    Case { setup: &[], mysql: false, q: r#"CREATE VIEW v AS SELECT * FROM users"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v2` AS select 1 AS `a`"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE DEFINER=`root`@`%` PROCEDURE `p`() BEGIN UPDATE users SET name = 'x'; ALTER TABLE users ADD q int; END"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TRIGGER trg BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name)"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"DROP VIEW IF EXISTS v"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"DROP PROCEDURE IF EXISTS p"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM users"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"GRANT SELECT ON shop.* TO 'u'@'%'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"REVOKE ALL ON shop.* FROM 'u'@'%'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CREATE USER 'u'@'%' IDENTIFIED BY 'p'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"DROP USER 'u'@'%'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER USER 'u'@'%' IDENTIFIED BY 'x'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ANALYZE TABLE users"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"OPTIMIZE TABLE users"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CHECK TABLE users"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"REPAIR TABLE users"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"SET NAMES utf8mb4"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"FLUSH PRIVILEGES"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"SAVEPOINT sp1"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"XA START 'x'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"BEGIN"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"COMMIT"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ENGINE=InnoDB"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"#,
        expect: X::Sql(&[]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users FORCE"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ALGORITHM=INPLACE, LOCK=NONE"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users AUTO_INCREMENT = 1000"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders PARTITION BY HASH(order_id) PARTITIONS 4"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders ADD PARTITION (PARTITION p3 VALUES LESS THAN (2000))"#,
        expect: X::Skip,
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders REORGANIZE PARTITION p0 INTO (PARTITION p0a VALUES LESS THAN (10), PARTITION p0b VALUES LESS THAN (20))"#,
        expect: X::Skip,
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE orders REMOVE PARTITIONING"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders DROP PARTITION p0, p1"#,
        expect: X::Err(Some((r#"shop"#, r#"orders"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders TRUNCATE PARTITION p0"#,
        expect: X::Err(Some((r#"shop"#, r#"orders"#))),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE orders ANALYZE PARTITION p0"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN k int, ALGORITHM=INSTANT"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "k" integer"#]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `other`.`x` ADD COLUMN y int"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE ignored ADD COLUMN y int"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"DROP TABLE other.x"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CREATE TABLE other.x (a int)"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CREATE TEMPORARY TABLE tmp (a int)"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"DROP TEMPORARY TABLE IF EXISTS tmp"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE t3 AS SELECT * FROM users"#,
        expect: X::Err(Some((r#"shop"#, r#"t3"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE t4 SELECT 1 AS a"#,
        expect: X::Err(Some((r#"shop"#, r#"t4"#))),
    },
    Case { setup: &[], mysql: false, q: r#"CREATE TABLE IF NOT EXISTS `users` (`id` int)"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CREATE TABLE t5 LIKE ignored"#, expect: X::Err(Some((r#"shop"#, r#"t5"#))) },
    Case {
        setup: &[],
        mysql: false,
        q: r#"RENAME TABLE users TO other.users"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case { setup: &[], mysql: false, q: r#"RENAME TABLE ignored TO ignored2"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"RENAME TABLE users TO app.users"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" SET SCHEMA "app""#,
            r#"ALTER TYPE "shop_pg"."users_status" SET SCHEMA "app""#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"TRUNCATE users"#, expect: X::Sql(&[r#"TRUNCATE TABLE "shop_pg"."users""#]) },
    Case { setup: &[], mysql: false, q: r#"TRUNCATE TABLE other.x"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `users` ALTER INDEX `idx_name` INVISIBLE"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users DROP CHECK chk"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ADD CONSTRAINT chk CHECK (id > 0)"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `we"ird;$$` (`id` int NOT NULL PRIMARY KEY, `e` enum('x''y','z') NOT NULL)"#,
        expect: X::Sql(&[
            r#"DROP TYPE IF EXISTS "shop_pg"."we""ird;$$_e""#,
            r#"CREATE TYPE "shop_pg"."we""ird;$$_e" AS ENUM ('x''y', 'z')"#,
            r#"CREATE TABLE "shop_pg"."we""ird;$$" ("id" integer NOT NULL, "e" "shop_pg"."we""ird;$$_e" NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."we""ird;$$" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `a_very_long_table_name_that_goes_on_and_on_and_on_past_sixty_three_bytes` (`id` int primary key, `k` int, KEY `k` (`k`))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."a_very_long_table_name_that_goes_on_and_on_and_on_past_sixty_three_bytes" ("id" integer NOT NULL, "k" integer)"#,
            r#"ALTER TABLE "shop_pg"."a_very_long_table_name_that_goes_on_and_on_and_on_past_sixty_three_bytes" ADD PRIMARY KEY ("id")"#,
            r#"CREATE INDEX "a_very_long_table_name_that_goes_on_and_on_and_on_past_49713b74" ON "shop_pg"."a_very_long_table_name_that_goes_on_and_on_and_on_past_sixty_three_bytes" ("k")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `Mixed Case` ADD COLUMN `ÄÖÜ` enum('ä','ö')"#,
        expect: X::Sql(&[
            r#"DROP TYPE IF EXISTS "shop_pg"."Mixed Case_ÄÖÜ""#,
            r#"CREATE TYPE "shop_pg"."Mixed Case_ÄÖÜ" AS ENUM ('ä', 'ö')"#,
            r#"ALTER TABLE "shop_pg"."Mixed Case" ADD COLUMN "ÄÖÜ" "shop_pg"."Mixed Case_ÄÖÜ""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `Mixed Case` RENAME TO `Other Case`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."Mixed Case" RENAME TO "Other Case""#,
            r#"ALTER TABLE "shop_pg"."Other Case" RENAME CONSTRAINT "Mixed Case_pkey" TO "Other Case_pkey""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `MiXeD` (`Id` INT PRIMARY KEY)"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."MiXeD" ("Id" integer NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."MiXeD" ADD PRIMARY KEY ("Id")"#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE `mixed case` ADD c int"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE nokey ADD PRIMARY KEY (a)"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."nokey" ADD PRIMARY KEY ("a")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, v)"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."t" DROP CONSTRAINT IF EXISTS "t_pkey""#,
            r#"ALTER TABLE "shop_pg"."t" ADD PRIMARY KEY ("id", "v")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders MODIFY order_id int(10) unsigned NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."orders" DROP CONSTRAINT IF EXISTS "orders_pkey""#,
            r#"ALTER TABLE "shop_pg"."orders" ALTER COLUMN "order_id" DROP NOT NULL"#,
            r#"CREATE UNIQUE INDEX "orders_uq_order" ON "shop_pg"."orders" ("order_id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY status varchar(20) NOT NULL DEFAULT 'active'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "status" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "status" TYPE character varying(20) USING "status"::text::character varying(20)"#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "status" SET DEFAULT 'active'::character varying(20)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY name enum('a','b')"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" DROP DEFAULT"#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_name""#,
            r#"CREATE TYPE "shop_pg"."users_name" AS ENUM ('a', 'b')"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" TYPE "shop_pg"."users_name" USING "name"::text::"shop_pg"."users_name""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY id int NOT NULL AUTO_INCREMENT"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "id" DROP IDENTITY IF EXISTS"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "id" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "id" TYPE integer USING "id"::integer"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "id" ADD GENERATED BY DEFAULT AS IDENTITY"#,
            r#"SELECT setval(pg_get_serial_sequence('"shop_pg"."users"', '"id"'), coalesce(max("id"), 0) + 1, false) FROM "shop_pg"."users""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders MODIFY total decimal(12,2) NOT NULL DEFAULT 0.00"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."orders" ALTER COLUMN "total" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."orders" ALTER COLUMN "total" TYPE numeric(12,2) USING "total"::numeric(12,2)"#,
            r#"ALTER TABLE "shop_pg"."orders" ALTER COLUMN "total" SET DEFAULT '0.00'::numeric(12,2)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN born date NOT NULL"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "born" date"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "born" SET NOT NULL"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN `flag` bit(1) NOT NULL DEFAULT b'0'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "flag" bit varying(1) NOT NULL DEFAULT '0'::bit varying(1)"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "flag" DROP DEFAULT"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN g geometry"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "g" bytea"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN u inet6"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE weird_types (`id` int NOT NULL PRIMARY KEY, `u` inet6)"#,
        expect: X::Sql(&[]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN total_gen int AS (id * 2) VIRTUAL"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN (a1 int, a2 varchar(5))"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "a1" integer"#,
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "a2" character varying(5)"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN c1 int FIRST, ADD COLUMN c2 int AFTER c1"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "c1" integer"#,
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "c2" integer"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users DROP COLUMN id"#,
        expect: X::Sql(&[
            r#"DROP INDEX IF EXISTS "shop_pg"."users_index_users_on_email""#,
            r#"ALTER TABLE "shop_pg"."users" DROP COLUMN "id""#,
            r#"ALTER TABLE "shop_pg"."users" ADD PRIMARY KEY ("email")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE t DROP COLUMN id"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."t" DROP COLUMN "id""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" SET DEFAULT LOCALTIMESTAMP"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ALTER COLUMN name SET DEFAULT (uuid())"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "name" DROP DEFAULT"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users RENAME KEY idx_name TO by_name"#,
        expect: X::Sql(&[r#"ALTER INDEX "shop_pg"."users_idx_name" RENAME TO "users_by_name""#]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ADD FULLTEXT INDEX ft_name (name)"#, expect: X::Sql(&[]) },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ADD INDEX pfx (email(20))"#, expect: X::Sql(&[]) },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE users ADD INDEX ((lower(name)))"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `counters` (`id` SERIAL, `n` int NOT NULL DEFAULT 0)"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."counters" ("id" numeric(20,0) NOT NULL, "n" integer NOT NULL DEFAULT '0'::integer)"#,
            r#"ALTER TABLE "shop_pg"."counters" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"CREATE TABLE `alltypes` (`id` int unsigned NOT NULL AUTO_INCREMENT, `ti` tinyint, `si` smallint unsigned, `mi` mediumint, `bi` bigint unsigned, `b` boolean, `d` decimal(20,6), `n` numeric, `f` float, `db` double, `dp` double precision, `r` real, `bt` bit(8), `c` char(2), `vc` varchar(40), `nv` national varchar(10), `tt` tinytext, `tx` text, `mt` mediumtext, `lt` longtext, `lv` long varchar, `bn` binary(4), `vb` varbinary(8), `bl` blob, `lb` longblob, `dt` date, `dtm` datetime(3), `ts` timestamp(6) NULL, `tm` time, `y` year, `js` json, `e` enum('x','y'), `st` set('p','q'), `pt` point, PRIMARY KEY (`id`))"#,
        expect: X::Sql(&[
            r#"DROP TYPE IF EXISTS "shop_pg"."alltypes_e""#,
            r#"CREATE TYPE "shop_pg"."alltypes_e" AS ENUM ('x', 'y')"#,
            r#"CREATE TABLE "shop_pg"."alltypes" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "ti" smallint, "si" integer, "mi" integer, "bi" numeric(20,0), "b" smallint, "d" numeric(20,6), "n" numeric(10,0), "f" real, "db" double precision, "dp" double precision, "r" double precision, "bt" bit varying(8), "c" character(2), "vc" character varying(40), "nv" character varying(10), "tt" text, "tx" text, "mt" text, "lt" text, "lv" text, "bn" bytea, "vb" bytea, "bl" bytea, "lb" bytea, "dt" date, "dtm" timestamp(3) without time zone, "ts" timestamp(6) with time zone, "tm" time(0) without time zone, "y" smallint, "js" jsonb, "e" "shop_pg"."alltypes_e", "st" text, "pt" bytea)"#,
            r#"ALTER TABLE "shop_pg"."alltypes" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `shop`.`log` (`id` int unsigned NOT NULL AUTO_INCREMENT, `msg` text CHARACTER SET latin1, `lvl` tinyint(1) NOT NULL DEFAULT 0, PRIMARY KEY (`id`))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."log" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "msg" text, "lvl" smallint NOT NULL DEFAULT '0'::smallint)"#,
            r#"ALTER TABLE "shop_pg"."log" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"CREATE TABLE m8 (`id` int unsigned NOT NULL AUTO_INCREMENT, `ts` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, `j` json, `d` varchar(10) DEFAULT 'x', PRIMARY KEY (`id`))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."m8" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "ts" timestamp(0) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP, "j" jsonb, "d" character varying(10) DEFAULT 'x'::character varying(10))"#,
            r#"ALTER TABLE "shop_pg"."m8" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"ALTER TABLE users RENAME COLUMN name TO nm, ADD COLUMN n2 int"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" RENAME COLUMN "name" TO "nm""#,
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "n2" integer"#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE orders ADD INDEX (note(10))"#, expect: X::Sql(&[]) },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users CHANGE COLUMN `status` `state` enum('active','banned') NOT NULL DEFAULT 'active'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" RENAME COLUMN "status" TO "state""#,
            r#"ALTER TYPE "shop_pg"."users_status" RENAME TO "users_state""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users DROP KEY index_users_on_email"#,
        expect: X::Sql(&[r#"DROP INDEX IF EXISTS "shop_pg"."users_index_users_on_email""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE nokey ADD UNIQUE KEY (a)"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "nokey_a" ON "shop_pg"."nokey" ("a")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case { setup: &[], mysql: false, q: r#"CREATE TABLE"#, expect: X::Err(None) },
    Case { setup: &[], mysql: false, q: r#"ALTER TABLE other.x FROBNICATE"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP TABLE users, orders"#,
        expect: X::Sql(&[
            r#"DROP TABLE IF EXISTS "shop_pg"."users""#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
            r#"DROP TABLE IF EXISTS "shop_pg"."orders""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"DROP DATABASE shop"#,
        expect: X::Sql(&[
            r#"DROP TABLE IF EXISTS "shop_pg"."Mixed Case""#,
            r#"DROP TABLE IF EXISTS "shop_pg"."nokey""#,
            r#"DROP TABLE IF EXISTS "shop_pg"."orders""#,
            r#"DROP TABLE IF EXISTS "shop_pg"."t""#,
            r#"DROP TABLE IF EXISTS "shop_pg"."users""#,
            r#"DROP TYPE IF EXISTS "shop_pg"."users_status""#,
            r#"DROP SCHEMA IF EXISTS "shop_pg""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `shop`.`users` ADD COLUMN `ssn` char(11) COMMENT 'social security number'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "ssn" character(11)"#,
            r#"COMMENT ON COLUMN "shop_pg"."users"."ssn" IS 'social security number'"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY name varchar(100) DEFAULT NULL COMMENT 'shown name'"#,
        expect: X::Sql(&[r#"COMMENT ON COLUMN "shop_pg"."users"."name" IS 'shown name'"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `likes` (`user_id` bigint NOT NULL, `post_id` bigint NOT NULL, UNIQUE KEY `uq` (`user_id`,`post_id`), KEY `post` (`post_id`))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."likes" ("user_id" bigint NOT NULL, "post_id" bigint NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."likes" ADD PRIMARY KEY ("user_id", "post_id")"#,
            r#"CREATE INDEX "likes_post" ON "shop_pg"."likes" ("post_id")"#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"XA COMMIT 'x'"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"RELEASE SAVEPOINT sp1"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"CREATE INDEX idx ON other.x (a)"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD UNIQUE INDEX `uq_name_email` (`name`, `email`) USING BTREE"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "users_uq_name_email" ON "shop_pg"."users" ("name", "email")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users DROP INDEX `PRIMARY`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" DROP CONSTRAINT IF EXISTS "users_pkey""#,
            r#"DROP INDEX IF EXISTS "shop_pg"."users_index_users_on_email""#,
            r#"ALTER TABLE "shop_pg"."users" ADD PRIMARY KEY ("email")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD COLUMN `price` decimal(10,2) unsigned zerofill NOT NULL DEFAULT '0.00' AFTER `id`, ADD KEY `by_price` (`price`), DROP INDEX `idx_name`"#,
        expect: X::Sql(&[
            r#"DROP INDEX IF EXISTS "shop_pg"."users_idx_name""#,
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "price" numeric(10,2) NOT NULL DEFAULT '0.00'::numeric(10,2)"#,
            r#"CREATE INDEX "users_by_price" ON "shop_pg"."users" ("price")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD COLUMN `Notes` TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL DEFAULT NULL COMMENT 'free text' AFTER `name`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "Notes" text"#,
            r#"COMMENT ON COLUMN "shop_pg"."users"."Notes" IS 'free text'"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users CHANGE created_at created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" DROP DEFAULT"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" TYPE timestamp(0) with time zone USING "created_at"::timestamp(0) with time zone"#,
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "created_at" SET DEFAULT CURRENT_TIMESTAMP"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD CONSTRAINT `uq_nm` UNIQUE KEY (`name`), ADD CONSTRAINT `fk_self` FOREIGN KEY (`id`) REFERENCES `users` (`id`) ON DELETE SET NULL ON UPDATE CASCADE"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "users_uq_nm" ON "shop_pg"."users" ("name")"#]),
    },
    Case {
        setup: &[],
        mysql: true,
        q: r#"ALTER TABLE users DROP CONSTRAINT index_users_on_email"#,
        expect: X::Sql(&[r#"DROP INDEX IF EXISTS "shop_pg"."users_index_users_on_email""#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ADD PRIMARY KEY (id)"#,
        expect: X::Err(Some((r#"shop"#, r#"users"#))),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `shop`.`users` RENAME `shop`.`people`"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" RENAME TO "people""#,
            r#"ALTER TYPE "shop_pg"."users_status" RENAME TO "people_status""#,
            r#"ALTER INDEX "shop_pg"."users_index_users_on_email" RENAME TO "people_index_users_on_email""#,
            r#"ALTER INDEX "shop_pg"."users_idx_name" RENAME TO "people_idx_name""#,
            r#"ALTER TABLE "shop_pg"."people" RENAME CONSTRAINT "users_pkey" TO "people_pkey""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users RENAME TO members, ADD COLUMN age int"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" RENAME TO "members""#,
            r#"ALTER TYPE "shop_pg"."users_status" RENAME TO "members_status""#,
            r#"ALTER INDEX "shop_pg"."users_index_users_on_email" RENAME TO "members_index_users_on_email""#,
            r#"ALTER INDEX "shop_pg"."users_idx_name" RENAME TO "members_idx_name""#,
            r#"ALTER TABLE "shop_pg"."members" RENAME CONSTRAINT "users_pkey" TO "members_pkey""#,
            r#"ALTER TABLE "shop_pg"."members" ADD COLUMN "age" integer"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"RENAME TABLE `Mixed Case` TO `app`.`Mixed Case`"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."Mixed Case" SET SCHEMA "app""#]),
    },
    Case {
        setup: &[r#"CREATE TABLE `shop`.`_t_new` LIKE `shop`.`t`"#],
        mysql: false,
        q: r#"RENAME TABLE t TO t_tmp, _t_new TO t, t_tmp TO _t_new"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."t" RENAME TO "t_tmp""#,
            r#"ALTER TABLE "shop_pg"."t_tmp" RENAME CONSTRAINT "t_pkey" TO "t_tmp_pkey""#,
            r#"ALTER TABLE "shop_pg"."_t_new" RENAME TO "t""#,
            r#"ALTER TABLE "shop_pg"."t" RENAME CONSTRAINT "_t_new_pkey" TO "t_pkey""#,
            r#"ALTER TABLE "shop_pg"."t_tmp" RENAME TO "_t_new""#,
            r#"ALTER TABLE "shop_pg"."_t_new" RENAME CONSTRAINT "t_tmp_pkey" TO "_t_new_pkey""#,
        ]),
    },
    Case { setup: &[], mysql: false, q: r#"SELECT 1"#, expect: X::Skip },
    Case { setup: &[], mysql: false, q: r#"INSERT INTO users (id) VALUES (1)"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `app`.`tags` (`id` int NOT NULL AUTO_INCREMENT, `name` varchar(50) NOT NULL, PRIMARY KEY (`id`), UNIQUE KEY (`name`), KEY (`name`, `id`))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "app"."tags" ("id" integer NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" character varying(50) NOT NULL)"#,
            r#"ALTER TABLE "app"."tags" ADD PRIMARY KEY ("id")"#,
            r#"CREATE UNIQUE INDEX "tags_name" ON "app"."tags" ("name")"#,
            r#"CREATE INDEX "tags_name_2" ON "app"."tags" ("name", "id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE t_fk (`id` int NOT NULL PRIMARY KEY, `uid` bigint NOT NULL, FOREIGN KEY (`uid`) REFERENCES users(id))"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."t_fk" ("id" integer NOT NULL, "uid" bigint NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."t_fk" ADD PRIMARY KEY ("id")"#,
            r#"CREATE INDEX "t_fk_uid" ON "shop_pg"."t_fk" ("uid")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY COLUMN `status` enum('active','banned') NOT NULL DEFAULT 'banned'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "status" SET DEFAULT 'banned'::"shop_pg"."users_status""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users ALTER status SET DEFAULT 'banned'"#,
        expect: X::Sql(&[
            r#"ALTER TABLE "shop_pg"."users" ALTER COLUMN "status" SET DEFAULT 'banned'::"shop_pg"."users_status""#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE users MODIFY email varchar(255) NOT NULL COMMENT 'login'"#,
        expect: X::Sql(&[r#"COMMENT ON COLUMN "shop_pg"."users"."email" IS 'login'"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER IGNORE TABLE users ADD UNIQUE KEY uq2 (name)"#,
        expect: X::Sql(&[r#"CREATE UNIQUE INDEX "users_uq2" ON "shop_pg"."users" ("name")"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `x1` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB /*!50100 PARTITION BY HASH (`id`) PARTITIONS 4 */"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."x1" ("id" integer NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."x1" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `x2` (`id` int NOT NULL, `c` varchar(10) NOT NULL, PRIMARY KEY (`id`) USING BTREE, KEY `c` (`c`) USING HASH COMMENT 'x') ENGINE=MEMORY"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."x2" ("id" integer NOT NULL, "c" character varying(10) NOT NULL)"#,
            r#"ALTER TABLE "shop_pg"."x2" ADD PRIMARY KEY ("id")"#,
            r#"CREATE INDEX "x2_c" ON "shop_pg"."x2" ("c")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE TABLE `x3` (`id` int NOT NULL PRIMARY KEY, `c` varchar(10) CHARACTER SET big5) DEFAULT CHARSET=latin1"#,
        expect: X::Sql(&[
            r#"CREATE TABLE "shop_pg"."x3" ("id" integer NOT NULL, "c" character varying(10))"#,
            r#"ALTER TABLE "shop_pg"."x3" ADD PRIMARY KEY ("id")"#,
        ]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE orders MODIFY note text CHARACTER SET utf16"#,
        expect: X::Sql(&[]),
    },
    Case { setup: &[], mysql: false, q: r#"DROP TABLE IF EXISTS `shop`.`nothere`"#, expect: X::Skip },
    Case {
        setup: &[],
        mysql: false,
        q: r#"ALTER TABLE `users` ADD COLUMN `x` int NOT NULL DEFAULT 0, ALGORITHM=INPLACE, LOCK=NONE"#,
        expect: X::Sql(&[r#"ALTER TABLE "shop_pg"."users" ADD COLUMN "x" integer NOT NULL DEFAULT '0'::integer"#]),
    },
    Case {
        setup: &[],
        mysql: false,
        q: r#"CREATE INDEX `idx_multi` ON `users` (`name`, `created_at` DESC) ALGORITHM=INPLACE LOCK=NONE"#,
        expect: X::Sql(&[r#"CREATE INDEX "users_idx_multi" ON "shop_pg"."users" ("name", "created_at")"#]),
    },
];
