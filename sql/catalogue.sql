-- pg_chameleon_rs catalogue, version 0.6.0 (a fresh install; upgrades: sql/pg_chameleon_rs--A--B.sql).
-- Schema sch_chameleon: the replication state (sources, tables, batches, log, errors).
-- Schema chameleon (the extension's schema): the SQL functions and the monitoring views.
-- Catalogue tables are readable by no one but the owner (superuser): t_sources holds the
-- MySQL password. Monitoring goes through the views, which never show it.

CREATE SCHEMA sch_chameleon;
REVOKE ALL ON SCHEMA sch_chameleon FROM PUBLIC;
CREATE SCHEMA chameleon;
COMMENT ON SCHEMA chameleon IS 'pg_chameleon_rs: functions and monitoring views';

CREATE TABLE sch_chameleon.t_sources (
    i_id_source         serial PRIMARY KEY,
    t_source            text NOT NULL UNIQUE,
    t_mysql_url         text NOT NULL,          -- with the password: never shown
    t_mysql_url_safe    text NOT NULL,          -- redacted form for views and messages
    jsb_schema_mappings jsonb NOT NULL,
    jsb_options         jsonb NOT NULL DEFAULT '{}',
    enm_status          text NOT NULL DEFAULT 'ready'
        CHECK (enm_status IN ('ready', 'initialising', 'initialised', 'running', 'stopped', 'syncing', 'error')),
    b_want_running      boolean NOT NULL DEFAULT false,
    -- read position: committed together with the batch that ends there
    t_binlog_name       text,
    i_binlog_position   bigint,
    t_gtid              text,
    t_snapshot_gtid     text,
    i_worker_pid        integer,                -- init or read worker
    i_replay_pid        integer,                -- replay worker
    t_last_error        text,
    ts_last_error       timestamptz,
    ts_created          timestamptz NOT NULL DEFAULT now(),
    ts_initialised      timestamptz,
    -- bumped when the source's tables change under running workers (sync_tables, a table
    -- copy finishing): the workers reload their table caches; the read worker acknowledges
    i_table_generation  bigint NOT NULL DEFAULT 0,
    i_reader_generation bigint NOT NULL DEFAULT 0,
    -- DDL statements of the source: translated and applied, or without meaning for the replica
    i_ddl_applied       bigint NOT NULL DEFAULT 0,
    i_ddl_skipped       bigint NOT NULL DEFAULT 0,
    -- alter_source pointed the source at another server (mysql_url): the batches up to this
    -- one were read from earlier servers (a copy's catch-up never compares their positions
    -- with a point taken on this one)
    i_moved_after_batch bigint,
    -- set when the source was pointed at another server without gtid_enable: the redacted
    -- URL of the server the stored file position belongs to; start_replica needs a
    -- start_position on the new server until then
    t_position_of       text
);

CREATE TABLE sch_chameleon.t_replica_tables (
    i_id_table          serial PRIMARY KEY,
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    v_mysql_schema      text NOT NULL,
    v_mysql_table       text NOT NULL,
    v_pg_schema         text NOT NULL,
    v_pg_table          text NOT NULL,
    -- [{"name", "mysql_type", "pg_type", "kind", "nullable"}] in MySQL ordinal order
    jsb_columns         jsonb NOT NULL DEFAULT '[]',
    v_replica_key       text[] NOT NULL DEFAULT '{}',
    enm_state           text NOT NULL DEFAULT 'pending'
        CHECK (enm_state IN ('pending', 'copying', 'failed', 'copied', 'replicating', 'disabled')),
    b_replica_enabled   boolean NOT NULL DEFAULT true,
    -- consistent point: events at or before it are in the copied data
    t_binlog_name       text,
    i_binlog_position   bigint,
    i_rows_copied       bigint NOT NULL DEFAULT 0,
    i_rows_estimated    bigint,
    i_rows_discarded    bigint NOT NULL DEFAULT 0,
    t_last_error        text,
    -- what the copy could not reproduce (skipped indexes, defaults) and why
    t_notes             text[] NOT NULL DEFAULT '{}',
    ts_copied           timestamptz,
    -- indexes ([{"name", "unique", "columns", "kind", "prefix"}], PRIMARY included) and column
    -- defaults/extras ([{"default", "extra", "comment"}], column order): what DDL replication
    -- needs to change the table as the source does
    jsb_indexes         jsonb NOT NULL DEFAULT '[]',
    jsb_extras          jsonb NOT NULL DEFAULT '[]',
    UNIQUE (i_id_source, v_mysql_schema, v_mysql_table)
);

-- Foreign keys of the source tables, recorded by the copy; detach_replica creates them.
CREATE TABLE sch_chameleon.t_foreign_keys (
    i_id_table          integer NOT NULL REFERENCES sch_chameleon.t_replica_tables ON DELETE CASCADE,
    v_name              text NOT NULL,
    v_columns           text[] NOT NULL,
    v_ref_mysql_schema  text NOT NULL,
    v_ref_table         text NOT NULL,
    v_ref_columns       text[] NOT NULL,
    v_on_update         text NOT NULL,
    v_on_delete         text NOT NULL,
    PRIMARY KEY (i_id_table, v_name)
);

-- The copy workers of a running init_replica, one row per worker slot. The init worker
-- (coordinator) creates the rows, waits until every worker is connected ('connected'), takes
-- the global read lock and lets them open their snapshots ('open') until each has ('ready'),
-- then publishes the snapshot's coordinates ('go'). Without the lock
-- privilege each worker takes a consistent point per table (b_per_table_points).
CREATE TABLE sch_chameleon.t_copy_workers (
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    i_slot              integer NOT NULL,
    i_pid               integer,
    enm_state           text NOT NULL DEFAULT 'starting'
        CHECK (enm_state IN ('starting', 'connected', 'open', 'ready', 'go', 'done', 'failed', 'aborted')),
    b_per_table_points  boolean NOT NULL DEFAULT false,
    t_binlog_name       text,
    i_binlog_position   bigint,
    i_id_table          integer,                -- the table being copied now
    t_error             text,
    PRIMARY KEY (i_id_source, i_slot)
);

-- A large table copied by several copy workers at once, in ranges of its integer primary key
-- (all workers share one snapshot). The worker that claims the table creates it and the
-- ranges; any worker copies a pending range in its own transaction; the one that commits the
-- last range builds keys and indexes and records the consistent point.
CREATE TABLE sch_chameleon.t_copy_ranges (
    i_id_table          integer NOT NULL REFERENCES sch_chameleon.t_replica_tables ON DELETE CASCADE,
    i_range             integer NOT NULL,
    v_column            text NOT NULL,
    t_low               text,                   -- inclusive; NULL: from the first row
    t_high              text,                   -- exclusive; NULL: to the last row
    enm_state           text NOT NULL DEFAULT 'pending' CHECK (enm_state IN ('pending', 'copying', 'done')),
    i_slot              integer,
    i_rows              bigint,
    PRIMARY KEY (i_id_table, i_range)
);

CREATE TABLE sch_chameleon.t_replica_batch (
    i_id_batch          bigserial PRIMARY KEY,
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    -- position after the last source transaction of the batch
    t_binlog_name       text NOT NULL,
    i_binlog_position   bigint NOT NULL,
    t_gtid              text,
    i_events            integer NOT NULL,
    i_transactions      integer NOT NULL,
    ts_source           timestamptz,           -- source commit time of the last transaction
    ts_created          timestamptz NOT NULL DEFAULT clock_timestamp(),
    b_replayed          boolean NOT NULL DEFAULT false,
    ts_replayed         timestamptz,
    i_log_slot          smallint NOT NULL DEFAULT 0,  -- the partition of t_log_replica its rows are in
    b_has_ddl           boolean NOT NULL DEFAULT false, -- holds a DDL statement: the reader waits for its replay
    -- a source transaction larger than batch_max_memory being stored in pieces: replay does
    -- not see the batch until its commit closes it (with the read position); a read worker
    -- starting again removes it (the reader re-reads the transaction from the stored position)
    b_open              boolean NOT NULL DEFAULT false,
    -- an XA transaction prepared on the source (its xid, X'gtrid',X'bqual',formatID): its rows
    -- are stored at XA PREPARE in this batch, kept open (hidden from replay, never removed by a
    -- read worker starting again); its XA COMMIT moves them into a new batch at that place of
    -- the stream, its XA ROLLBACK removes it
    t_xa_xid            text
);
CREATE UNIQUE INDEX idx_replica_batch_xa ON sch_chameleon.t_replica_batch (i_id_source, t_xa_xid)
    WHERE t_xa_xid IS NOT NULL;

-- the read and replay rates of chameleon.sources look at the last minute only
CREATE INDEX idx_replica_batch_created ON sch_chameleon.t_replica_batch (i_id_source, ts_created);
CREATE INDEX idx_replica_batch_replayed ON sch_chameleon.t_replica_batch (i_id_source, ts_replayed);

CREATE INDEX idx_replica_batch_pending ON sch_chameleon.t_replica_batch (i_id_source, i_id_batch)
    WHERE NOT b_replayed;

-- The log is kept in 8 rotating partitions ("log slots") so that it never grows without bound
-- and is emptied without DELETE: the batch writer writes into the current slot; maintenance
-- (run_maintenance, or the replay worker with auto_maintenance) moves to the next slot once it
-- is empty and the current one is older than a quarter of the shortest batch_retention, and
-- empties with TRUNCATE a slot whose batches are all replayed and past their retention.
CREATE TABLE sch_chameleon.t_log_slots (
    i_slot              smallint PRIMARY KEY CHECK (i_slot BETWEEN 0 AND 7),
    b_current           boolean NOT NULL DEFAULT false,
    ts_opened           timestamptz
);
INSERT INTO sch_chameleon.t_log_slots (i_slot, b_current, ts_opened)
SELECT s, s = 0, CASE WHEN s = 0 THEN now() END FROM generate_series(0, 7) s;

-- A chunk of consecutive row events of a batch (up to 5000), in one value: b_events holds
-- each event's table, operation, binlog file and position, old key and new row (values in
-- PostgreSQL text form), in the format src/core/logchunk.rs describes. i_id_event: the first
-- event's number in the batch; i_tables: the tables its events change. t_binlog_name and
-- i_binlog_position, when set, are the position of every event of the chunk (the commit of
-- an XA transaction, whose rows were stored at its prepare).
CREATE TABLE sch_chameleon.t_log_replica (
    i_id_batch          bigint NOT NULL REFERENCES sch_chameleon.t_replica_batch ON DELETE CASCADE,
    i_id_event          integer NOT NULL,
    i_events            integer NOT NULL,
    i_tables            integer[] NOT NULL,
    b_events            bytea NOT NULL,
    t_binlog_name       text,
    i_binlog_position   bigint,
    i_log_slot          smallint NOT NULL DEFAULT 0,   -- (the default: workers of the previous version still running during ALTER EXTENSION UPDATE)
    PRIMARY KEY (i_id_batch, i_id_event, i_log_slot)
) PARTITION BY LIST (i_log_slot);
CREATE TABLE sch_chameleon.t_log_replica_0 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (0);
CREATE TABLE sch_chameleon.t_log_replica_1 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (1);
CREATE TABLE sch_chameleon.t_log_replica_2 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (2);
CREATE TABLE sch_chameleon.t_log_replica_3 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (3);
CREATE TABLE sch_chameleon.t_log_replica_4 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (4);
CREATE TABLE sch_chameleon.t_log_replica_5 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (5);
CREATE TABLE sch_chameleon.t_log_replica_6 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (6);
CREATE TABLE sch_chameleon.t_log_replica_7 PARTITION OF sch_chameleon.t_log_replica FOR VALUES IN (7);
-- stored as written: compressing megabytes of row text costs the read worker more than the WAL it saves
ALTER TABLE sch_chameleon.t_log_replica ALTER COLUMN b_events SET STORAGE EXTERNAL;
CREATE INDEX idx_replica_batch_slot ON sch_chameleon.t_replica_batch (i_log_slot);

CREATE TABLE sch_chameleon.t_error_log (
    i_id_error          bigserial PRIMARY KEY,
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    i_id_table          integer,
    ts_error            timestamptz NOT NULL DEFAULT clock_timestamp(),
    t_binlog_name       text,
    i_binlog_position   bigint,
    t_statement         text,
    t_sqlstate          text,
    t_error_message     text NOT NULL
);

CREATE TABLE sch_chameleon.t_discarded_rows (
    i_id_row            bigserial PRIMARY KEY,
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    i_id_table          integer,
    ts_discard          timestamptz NOT NULL DEFAULT clock_timestamp(),
    t_binlog_name       text,
    i_binlog_position   bigint,
    b_row               bytea NOT NULL,        -- exact source bytes, row encoding
    t_reason            text NOT NULL
);

-- Source time up to which everything was received (event time, or now on a heartbeat).
CREATE TABLE sch_chameleon.t_last_received (
    i_id_source         integer PRIMARY KEY REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    ts_last_received    timestamptz NOT NULL,
    ts_written          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Source time of the last replayed transaction.
CREATE TABLE sch_chameleon.t_last_replayed (
    i_id_source         integer PRIMARY KEY REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    ts_last_replayed    timestamptz NOT NULL,
    ts_written          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- verify_tables: one row per verification run, one per table of a run (docs/sql-api.md,
-- chameleon.verification). A run's worker records its pid; a run whose worker is gone
-- without finishing is failed, never equal (the view says so, and the next verify_tables
-- or stop_verification of the source records it).
CREATE TABLE sch_chameleon.t_verify_runs (
    i_id_run            bigserial PRIMARY KEY,
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    enm_state           text NOT NULL DEFAULT 'queued'
                        CHECK (enm_state IN ('queued', 'running', 'done', 'failed', 'stopped')),
    b_repair            boolean NOT NULL DEFAULT false,
    i_worker_pid        integer,
    ts_worker_start     timestamptz,
    ts_created          timestamptz NOT NULL DEFAULT clock_timestamp(),
    ts_finished         timestamptz,
    t_error             text
);

CREATE TABLE sch_chameleon.t_verify_tables (
    i_id_run            bigint NOT NULL REFERENCES sch_chameleon.t_verify_runs ON DELETE CASCADE,
    i_id_table          integer NOT NULL,
    i_order             integer NOT NULL,
    v_mysql_table       text NOT NULL,
    v_pg_table          text NOT NULL,
    enm_state           text NOT NULL DEFAULT 'queued'
                        CHECK (enm_state IN ('queued', 'running', 'equal', 'different', 'repaired', 'failed')),
    t_method            text,
    i_chunks            bigint NOT NULL DEFAULT 0,
    i_rows_source       bigint NOT NULL DEFAULT 0,
    i_rows_destination  bigint NOT NULL DEFAULT 0,
    i_missing           bigint NOT NULL DEFAULT 0,
    i_extra             bigint NOT NULL DEFAULT 0,
    i_different         bigint NOT NULL DEFAULT 0,
    i_repaired          bigint,
    t_position          text,
    jsb_sample          jsonb NOT NULL DEFAULT '[]',
    ts_started          timestamptz,
    ts_finished         timestamptz,
    t_reason            text,
    i_worker_pid        integer,                -- the worker comparing it (a run's workers share its tables)
    PRIMARY KEY (i_id_run, i_id_table)
);

-- The catalogue joined with the live state of the workers, in words: "running" only when the
-- workers really are alive; what to do otherwise.
CREATE FUNCTION chameleon.show_status(source_name text DEFAULT NULL)
RETURNS TABLE (source text, status text, detail text)
LANGUAGE sql STABLE
AS $fn$
SELECT s.name,
       CASE
         WHEN s.status IN ('running', 'syncing') AND s.worker_alive THEN 'running'
         WHEN s.status IN ('running', 'syncing') AND s.auto_restart THEN 'restarting'
         WHEN s.status IN ('running', 'syncing') THEN 'down'
         WHEN s.status = 'initialising' AND NOT coalesce(s.worker_alive, false) THEN 'interrupted'
         ELSE s.status
       END,
       concat_ws('; ',
         CASE
           WHEN s.status IN ('running', 'syncing') AND NOT s.worker_alive AND s.auto_restart
             THEN 'the workers are not running; the launcher restarts them'
           WHEN s.status IN ('running', 'syncing') AND NOT s.worker_alive
             THEN 'the workers are not running: call start_replica (it resumes from the stored position)'
           WHEN s.status = 'initialising' AND NOT coalesce(s.worker_alive, false)
             THEN 'the initial copy stopped: init_replica resumes it'
           WHEN s.status = 'error' THEN 'error: ' || s.last_error || ' (fix the cause, then enable_replica and start_replica)'
           WHEN s.status = 'ready' THEN 'not initialised: init_replica, or start_replica with a start_position'
         END,
         CASE WHEN s.status IN ('running', 'syncing') AND s.worker_alive
              THEN format('read lag %s, replay lag %s, %s row events pending',
                          coalesce(date_trunc('second', s.read_lag)::text, '-'),
                          coalesce(date_trunc('second', s.replay_lag)::text, '-'), s.pending_events) END,
         (SELECT nullif(concat_ws(', ',
                   nullif(count(*) FILTER (WHERE t.state IN ('pending', 'copying')), 0) || ' tables being copied',
                   nullif(count(*) FILTER (WHERE t.state = 'failed'), 0) || ' tables failed to copy',
                   nullif(count(*) FILTER (WHERE t.state = 'disabled' AND t.replica_enabled IS FALSE), 0)
                     || ' tables not replicated (see chameleon.tables)'), '')
            FROM chameleon.tables t WHERE t.source = s.name),
         (SELECT string_agg(format('verification %s running (%s of %s tables compared)', q.run_id, q.done, q.total), ', ')
            FROM (SELECT v.run_id, count(*) FILTER (WHERE v.state NOT IN ('queued', 'running')) AS done, count(*) AS total
                    FROM chameleon.verification v WHERE v.source = s.name GROUP BY v.run_id
                  HAVING bool_or(v.state IN ('queued', 'running'))) q))
  FROM chameleon.sources s
 WHERE source_name IS NULL OR s.name = source_name
 ORDER BY s.name
$fn$;
COMMENT ON FUNCTION chameleon.show_status(text) IS 'Each source''s status in words, joined with the live state of its workers ("running" only when they are alive), and what to do';
GRANT EXECUTE ON FUNCTION chameleon.show_status(text) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION chameleon.show_status(text) FROM PUBLIC;

COMMENT ON COLUMN sch_chameleon.t_sources.t_gtid IS 'GTID position of the source at the stored binlog position';

CREATE VIEW sch_chameleon.v_version AS SELECT '0.6.0'::text AS t_version;

REVOKE ALL ON ALL TABLES IN SCHEMA sch_chameleon FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA sch_chameleon FROM PUBLIC;

-- Monitoring views (owner's rights; readable by pg_monitor; no password anywhere).
CREATE VIEW chameleon.sources AS
SELECT s.t_source                                   AS name,
       s.enm_status                                 AS status,
       s.t_mysql_url_safe                           AS mysql_url,
       coalesce(bool_and(t.enm_state IN ('copied', 'replicating'))
                FILTER (WHERE t.b_replica_enabled), false) AS consistent,
       CASE WHEN r.ts_last_received IS NOT NULL
            THEN greatest(now() - r.ts_last_received, interval '0') END AS read_lag,
       -- nothing pending: replay is as current as reading; otherwise the age of the oldest
       -- stored change not yet applied (its batch's last source commit: a lower bound)
       CASE WHEN p.pending_batches = 0 AND r.ts_last_received IS NOT NULL
            THEN greatest(now() - r.ts_last_received, interval '0')
            WHEN p.pending_batches > 0
            THEN greatest(now() - coalesce(p.oldest_pending, r.ts_last_received), interval '0') END AS replay_lag,
       r.ts_last_received                           AS last_received,
       l.ts_last_replayed                           AS last_replayed,
       s.t_binlog_name                              AS binlog_file,
       s.i_binlog_position                          AS binlog_position,
       s.t_gtid                                     AS gtid,
       p.pending_batches,
       p.pending_events,
       s.i_worker_pid                               AS worker_pid,
       s.i_replay_pid                               AS replay_worker_pid,
       -- every worker the source has is alive (read and replay while running)
       (s.i_worker_pid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = s.i_worker_pid)
        AND (s.enm_status NOT IN ('running', 'syncing')
             OR EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = s.i_replay_pid)))
                                                    AS worker_alive,
       s.b_want_running                             AS want_running,
       -- whether the launcher will restart this source's workers after a server restart
       -- (shared_preload_libraries, and chameleon.database_name unset or this database)
       coalesce((nullif(current_setting('chameleon.database_name', true), '') IS NULL
                 OR current_setting('chameleon.database_name', true) = current_database())
                AND 'pg_chameleon_rs' = ANY (regexp_split_to_array(current_setting('shared_preload_libraries'), '\s*,\s*')),
                false)                              AS auto_restart,
       s.t_last_error                               AS last_error,
       s.ts_last_error                              AS last_error_at,
       -- row events stored (read) and replayed per second over the last minute
       rate.read_per_s                              AS read_events_per_s,
       rate.replayed_per_s                          AS replayed_events_per_s,
       -- DDL statements of mapped schemas applied, and those without meaning for the replica
       s.i_ddl_applied                              AS ddl_applied,
       s.i_ddl_skipped                              AS ddl_skipped
  FROM sch_chameleon.t_sources s
  LEFT JOIN sch_chameleon.t_replica_tables t ON t.i_id_source = s.i_id_source
  LEFT JOIN sch_chameleon.t_last_received r ON r.i_id_source = s.i_id_source
  LEFT JOIN sch_chameleon.t_last_replayed l ON l.i_id_source = s.i_id_source
  LEFT JOIN LATERAL (
        SELECT count(*) AS pending_batches, coalesce(sum(b.i_events), 0)::bigint AS pending_events,
               min(b.ts_source) AS oldest_pending
          FROM sch_chameleon.t_replica_batch b
         WHERE b.i_id_source = s.i_id_source AND NOT b.b_replayed AND b.t_xa_xid IS NULL) p ON true
  LEFT JOIN LATERAL (
        SELECT round(coalesce(sum(b.i_events) FILTER (WHERE b.ts_created > now() - interval '1 minute'), 0) / 60.0, 1) AS read_per_s,
               round(coalesce(sum(b.i_events) FILTER (WHERE b.ts_replayed > now() - interval '1 minute'), 0) / 60.0, 1) AS replayed_per_s
          FROM sch_chameleon.t_replica_batch b
         WHERE b.i_id_source = s.i_id_source
           AND (b.ts_created > now() - interval '1 minute' OR b.ts_replayed > now() - interval '1 minute')) rate ON true
 GROUP BY s.i_id_source, r.ts_last_received, l.ts_last_replayed, p.pending_batches, p.pending_events, p.oldest_pending,
          rate.read_per_s, rate.replayed_per_s;

CREATE VIEW chameleon.tables AS
SELECT s.t_source AS source,
       t.v_mysql_schema || '.' || t.v_mysql_table AS mysql_table,
       quote_ident(t.v_pg_schema) || '.' || quote_ident(t.v_pg_table) AS pg_table,
       t.enm_state AS state,
       t.b_replica_enabled AS replica_enabled,
       t.v_replica_key AS replica_key,
       -- while a table is being copied: the rows stored so far (ranges committed, plus what
       -- the COPY of each worker on it has stored)
       CASE WHEN t.enm_state = 'copying' THEN t.i_rows_copied + coalesce(c.tuples_processed, 0)
            ELSE t.i_rows_copied END AS rows_copied,
       t.i_rows_estimated AS rows_estimated,
       t.i_rows_discarded AS rows_discarded,
       CASE WHEN t.t_binlog_name IS NOT NULL THEN t.t_binlog_name || ':' || t.i_binlog_position END AS consistent_point,
       t.ts_copied AS copied_at,
       t.t_notes AS notes,
       t.t_last_error AS last_error,
       c.pid AS copy_worker_pid,
       -- how replay finds the row an update or delete changes: by the replica key, or (a
       -- table without a primary or NOT NULL unique key) by every column of the row
       CASE WHEN cardinality(t.v_replica_key) > 0 THEN 'key' ELSE 'full row' END AS replica_identity
  FROM sch_chameleon.t_replica_tables t
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  LEFT JOIN LATERAL (
        SELECT min(w.i_pid) AS pid, sum(p.tuples_processed)::bigint AS tuples_processed
          FROM sch_chameleon.t_copy_workers w
          LEFT JOIN pg_stat_progress_copy p ON p.pid = w.i_pid
         WHERE w.i_id_source = t.i_id_source AND w.i_id_table = t.i_id_table
           AND t.enm_state = 'copying' AND w.enm_state = 'go') c ON true;

CREATE VIEW chameleon.errors AS
SELECT e.ts_error AS error_time,
       s.t_source AS source,
       t.v_mysql_schema || '.' || t.v_mysql_table AS mysql_table,
       CASE WHEN e.t_binlog_name IS NOT NULL THEN e.t_binlog_name || ':' || e.i_binlog_position END AS binlog_position,
       e.t_statement AS statement,
       e.t_sqlstate AS sqlstate,
       e.t_error_message AS message
  FROM sch_chameleon.t_error_log e
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  LEFT JOIN sch_chameleon.t_replica_tables t ON t.i_id_table = e.i_id_table;

CREATE VIEW chameleon.discarded_rows AS
SELECT d.ts_discard AS discard_time,
       s.t_source AS source,
       t.v_mysql_schema || '.' || t.v_mysql_table AS mysql_table,
       CASE WHEN d.t_binlog_name IS NOT NULL THEN d.t_binlog_name || ':' || d.i_binlog_position END AS binlog_position,
       encode(d.b_row, 'base64') AS row_encoded,
       d.t_reason AS reason
  FROM sch_chameleon.t_discarded_rows d
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  LEFT JOIN sch_chameleon.t_replica_tables t ON t.i_id_table = d.i_id_table;

-- Each verification run and table: the state (a run whose worker is gone without finishing
-- shows its unfinished tables failed), what was compared, and the differences.
CREATE VIEW chameleon.verification AS
SELECT r.i_id_run                                   AS run_id,
       s.t_source                                   AS source,
       v.v_mysql_table                              AS mysql_table,
       v.v_pg_table                                 AS pg_table,
       CASE WHEN v.enm_state IN ('queued', 'running') AND r.enm_state IN ('queued', 'running') AND NOT EXISTS
                   (SELECT 1 FROM pg_stat_activity a
                     WHERE a.pid = r.i_worker_pid AND a.backend_start = r.ts_worker_start)
                 AND r.ts_worker_start IS NOT NULL
            THEN 'failed'
            WHEN v.enm_state IN ('queued', 'running') AND r.enm_state IN ('failed', 'stopped') THEN 'failed'
            ELSE v.enm_state END                    AS state,
       r.b_repair                                   AS repair,
       v.t_method                                   AS method,
       v.i_chunks                                   AS chunks,
       v.i_rows_source                              AS rows_source,
       v.i_rows_destination                         AS rows_destination,
       CASE WHEN v.ts_started IS NOT NULL
            THEN round(greatest(v.i_rows_source, v.i_rows_destination)
                       / greatest(extract(epoch FROM coalesce(v.ts_finished, clock_timestamp()) - v.ts_started), 0.001), 0)
       END                                          AS rows_per_s,
       v.t_position                                 AS compared_at,
       v.i_missing                                  AS missing,
       v.i_extra                                    AS extra,
       v.i_different                                AS different,
       v.i_repaired                                 AS repaired_rows,
       v.jsb_sample                                 AS differing_rows,
       CASE WHEN v.enm_state IN ('queued', 'running') AND r.enm_state = 'stopped'
            THEN 'stopped by stop_verification'
            WHEN v.enm_state IN ('queued', 'running') AND r.enm_state = 'failed'
            THEN coalesce(r.t_error, 'the verification failed')
            WHEN v.enm_state IN ('queued', 'running') AND r.enm_state IN ('queued', 'running')
                 AND r.ts_worker_start IS NOT NULL AND NOT EXISTS
                   (SELECT 1 FROM pg_stat_activity a
                     WHERE a.pid = r.i_worker_pid AND a.backend_start = r.ts_worker_start)
            THEN 'the verification worker ended before this table was compared (server restart or crash): verify again'
            ELSE v.t_reason END                     AS reason,
       v.ts_started                                 AS started,
       v.ts_finished                                AS finished,
       v.i_worker_pid                               AS worker_pid
  FROM sch_chameleon.t_verify_runs r
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  JOIN sch_chameleon.t_verify_tables v USING (i_id_run);

GRANT USAGE ON SCHEMA chameleon TO pg_monitor;
-- discarded_rows holds row contents: not for every pg_monitor member (GRANT it to operators)
GRANT SELECT ON chameleon.sources, chameleon.tables, chameleon.errors TO pg_monitor;
REVOKE ALL ON chameleon.sources, chameleon.tables, chameleon.errors, chameleon.discarded_rows FROM PUBLIC;
-- differing_rows holds keys and, for a table without a key, whole rows: like discarded_rows,
-- not for every pg_monitor member (GRANT SELECT on the view to operators); the rest is
GRANT SELECT (run_id, source, mysql_table, pg_table, state, repair, method, chunks, rows_source, rows_destination, rows_per_s, compared_at, missing, extra, different, repaired_rows, reason, started, finished, worker_pid) ON chameleon.verification TO pg_monitor;
REVOKE ALL ON chameleon.verification FROM PUBLIC;

COMMENT ON VIEW chameleon.sources IS 'One row per replication source: status, lag, binlog position, backlog, worker';
COMMENT ON VIEW chameleon.tables IS 'One row per replicated table: state, copy progress, consistent point, errors';
COMMENT ON VIEW chameleon.errors IS 'Replay and copy errors with table, binlog position and failing statement';
COMMENT ON VIEW chameleon.discarded_rows IS 'Rows PostgreSQL could not store, with their exact source bytes (base64 of the row encoding) and the reason';
COMMENT ON VIEW chameleon.verification IS 'One row per verification run and table (verify_tables): state, rows compared on each side, rows/s, the position compared at, differing rows by kind with a sample';
