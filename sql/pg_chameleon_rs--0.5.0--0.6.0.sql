-- pg_chameleon_rs 0.5.0 -> 0.6.0: the launcher serves every database (chameleon.sources.auto_restart
-- follows). A source can be pointed at another server (alter_source's
-- mysql_url: a new primary after a failover, a rotated password). Table consistent points are
-- cleared once replay has passed them, so no position of one server is compared with another's.
-- Tables without a key are replicated by full row (chameleon.tables.replica_identity).
-- A large source transaction is stored in pieces (t_replica_batch.b_open) in bounded memory.
-- A prepared XA transaction's rows are held under its xid (t_replica_batch.t_xa_xid) until its XA COMMIT.
\echo Use "ALTER EXTENSION pg_chameleon_rs UPDATE TO '0.6.0'" to load this file. \quit

ALTER TABLE sch_chameleon.t_sources ADD COLUMN i_moved_after_batch bigint;
ALTER TABLE sch_chameleon.t_sources ADD COLUMN t_position_of text;

-- a large source transaction is stored in pieces into one batch, open (hidden from replay)
-- until its commit is stored
ALTER TABLE sch_chameleon.t_replica_batch ADD COLUMN b_open boolean NOT NULL DEFAULT false;

-- a prepared XA transaction's rows are stored at XA PREPARE under its xid, kept from replay
-- until its XA COMMIT (which moves them into a new batch) or XA ROLLBACK (which removes them)
ALTER TABLE sch_chameleon.t_replica_batch ADD COLUMN t_xa_xid text;
CREATE UNIQUE INDEX idx_replica_batch_xa ON sch_chameleon.t_replica_batch (i_id_source, t_xa_xid)
    WHERE t_xa_xid IS NOT NULL;

-- alter_source gains mysql_url (default NULL: the server stays)
DROP FUNCTION chameleon.alter_source(text, jsonb, jsonb);
CREATE FUNCTION chameleon."alter_source"(
	"source_name" TEXT,
	"options" jsonb DEFAULT '{}',
	"schema_mappings" jsonb DEFAULT NULL,
	"mysql_url" TEXT DEFAULT NULL
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'alter_source_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.alter_source(text, jsonb, jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.alter_source(text, jsonb, jsonb, text) IS 'Merges options into a source (null removes a key), replaces its schema mappings, points it at another server (mysql_url: new host after a failover, rotated password; the source must be stopped); tables no longer selected stop being replicated, newly selected ones are copied; validated';

-- (the comment said "the replica worker": there are two)
COMMENT ON FUNCTION chameleon.stop_replica(text) IS 'Stops the read and replay workers (and the launcher no longer restarts them); start_replica resumes exactly where they stopped';

-- auto_restart: the launcher serves every database with the extension unless
-- chameleon.database_name restricts it
CREATE OR REPLACE VIEW chameleon.sources AS
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

-- tables without a primary or NOT NULL unique key are replicated by full row: the view says
-- which; those an earlier version copied but left unreplicated stay disabled until
-- sync_tables copies them again (their changes were not read meanwhile)
CREATE OR REPLACE VIEW chameleon.tables AS
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

UPDATE sch_chameleon.t_replica_tables
   SET t_last_error = 'no primary key or NOT NULL unique key: copied by a version that did not replicate such tables; '
                      'sync_tables copies it again, then it is replicated by full row'
 WHERE cardinality(v_replica_key) = 0 AND NOT b_replica_enabled
   AND t_last_error LIKE 'no primary key or NOT NULL unique key%';

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.6.0'::text AS t_version;

-- verify_tables (issue 16)
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
REVOKE ALL ON sch_chameleon.t_verify_runs, sch_chameleon.t_verify_tables FROM PUBLIC;
REVOKE ALL ON SEQUENCE sch_chameleon.t_verify_runs_i_id_run_seq FROM PUBLIC;

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
-- differing_rows holds keys and, for a table without a key, whole rows: like discarded_rows,
-- not for every pg_monitor member (GRANT SELECT on the view to operators); the rest is
GRANT SELECT (run_id, source, mysql_table, pg_table, state, repair, method, chunks, rows_source, rows_destination, rows_per_s, compared_at, missing, extra, different, repaired_rows, reason, started, finished, worker_pid) ON chameleon.verification TO pg_monitor;
REVOKE ALL ON chameleon.verification FROM PUBLIC;
COMMENT ON VIEW chameleon.verification IS 'One row per verification run and table (verify_tables): state, rows compared on each side, rows/s, the position compared at, differing rows by kind with a sample';

-- show_status mentions a running verification
CREATE OR REPLACE FUNCTION chameleon.show_status(source_name text DEFAULT NULL)
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

-- verify_tables and stop_verification (issue 16)
CREATE FUNCTION chameleon."verify_tables"(
	"source_name" TEXT,
	"tables" TEXT[] DEFAULT NULL,
	"repair" bool DEFAULT false,
	"wait" bool DEFAULT false
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'verify_tables_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.verify_tables(text, text[], boolean, boolean) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.verify_tables(text, text[], boolean, boolean) IS 'Compares tables with the source while replication runs, exactly (chunk by chunk at one source position); returns the run id, results in chameleon.verification; repair => true copies a different table again and compares it again';
CREATE FUNCTION chameleon."stop_verification"(
	"run_id" bigint
) RETURNS bool
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stop_verification_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.stop_verification(bigint) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.stop_verification(bigint) IS 'Stops a verification run; its tables not compared yet end failed';

-- discarded_rows holds row contents: not for every pg_monitor member (GRANT it to operators)
REVOKE SELECT ON chameleon.discarded_rows FROM pg_monitor;

-- Copy workers connect to the source before the coordinator takes the global read lock
-- (`connected`), and open their snapshots only once it holds it (`open`): a slow connect or
-- TLS handshake is never made under the lock.
ALTER TABLE sch_chameleon.t_copy_workers DROP CONSTRAINT t_copy_workers_enm_state_check;
ALTER TABLE sch_chameleon.t_copy_workers ADD CONSTRAINT t_copy_workers_enm_state_check
    CHECK (enm_state IN ('starting', 'connected', 'open', 'ready', 'go', 'done', 'failed', 'aborted'));

-- The change log stores chunks of up to 5000 events in one value each (src/core/logchunk.rs)
-- instead of one row per event: the events the previous version stored (batches not replayed
-- yet, and those kept for a running sync's catch-up) are converted, each batch's events in
-- chunks of 5000 in their order.
CREATE FUNCTION sch_chameleon.upgrade_varint(v bigint) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    out bytea := '\x'::bytea;
BEGIN
    WHILE v >= 128 LOOP
        out := out || set_byte('\x00'::bytea, 0, ((v & 127) | 128)::int);
        v := v >> 7;
    END LOOP;
    RETURN out || set_byte('\x00'::bytea, 0, v::int);
END $$;
CREATE FUNCTION sch_chameleon.upgrade_part(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN b IS NULL THEN '\x00'::bytea ELSE sch_chameleon.upgrade_varint(length(b) + 1) || b END $$;
CREATE TABLE sch_chameleon.t_log_upgrade AS
SELECT i_id_batch, min(i_id_event) AS i_id_event, count(*)::integer AS i_events,
       array_agg(DISTINCT i_id_table ORDER BY i_id_table) AS i_tables,
       '\x01'::bytea || string_agg(enc, '\x'::bytea ORDER BY i_id_event) AS b_events, i_log_slot
  FROM (SELECT c.i_id_batch, c.i_id_event, c.i_id_table, c.i_log_slot, c.chunk,
               sch_chameleon.upgrade_varint(c.i_id_table::bigint & 4294967295) || convert_to(c.v_op, 'UTF8')
               || CASE WHEN lag(c.t_binlog_name) OVER w = c.t_binlog_name THEN '\x00'::bytea
                       ELSE sch_chameleon.upgrade_part(convert_to(c.t_binlog_name, 'UTF8')) END
               || sch_chameleon.upgrade_varint(c.i_binlog_position)
               || sch_chameleon.upgrade_part(c.b_key) || sch_chameleon.upgrade_part(c.b_row) AS enc
          FROM (SELECT l.*, (l.i_id_event - 1) / 5000 AS chunk FROM sch_chameleon.t_log_replica l) c
        WINDOW w AS (PARTITION BY c.i_id_batch, c.i_log_slot, c.chunk ORDER BY c.i_id_event)) e
 GROUP BY i_id_batch, i_log_slot, chunk;
DROP TABLE sch_chameleon.t_log_replica;
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
ALTER TABLE sch_chameleon.t_log_replica ALTER COLUMN b_events SET STORAGE EXTERNAL;
INSERT INTO sch_chameleon.t_log_replica (i_id_batch, i_id_event, i_events, i_tables, b_events, i_log_slot)
SELECT i_id_batch, i_id_event, i_events, i_tables, b_events, i_log_slot FROM sch_chameleon.t_log_upgrade;
DROP TABLE sch_chameleon.t_log_upgrade;
REVOKE ALL ON ALL TABLES IN SCHEMA sch_chameleon FROM PUBLIC;   -- (as a fresh catalogue has them)
DROP FUNCTION sch_chameleon.upgrade_part(bytea);
DROP FUNCTION sch_chameleon.upgrade_varint(bigint);
