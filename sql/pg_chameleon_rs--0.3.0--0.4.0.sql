-- pg_chameleon_rs 0.3.0 -> 0.4.0: replication can start at a position the DBA gives (binlog
-- file and offset, or GTID) without init_replica; sources can follow the binlog by GTID;
-- sync_tables copies tables again while the source runs; detach_replica ends replication;
-- the log is partitioned and maintained (run_maintenance, auto_maintenance, batch_retention).
\echo Use "ALTER EXTENSION pg_chameleon_rs UPDATE TO '0.4.0'" to load this file. \quit

-- start_replica gains start_position (default NULL: the stored position)
DROP FUNCTION chameleon.start_replica(text);
CREATE FUNCTION chameleon."start_replica"(
	"source_name" TEXT,
	"start_position" TEXT DEFAULT NULL
) RETURNS TEXT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'start_replica_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.start_replica(text, text) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.start_replica(text, text) IS 'Starts the read and replay workers; start_position (file:offset or GTID) starts there without init_replica, for data loaded by other means';

-- t_sources.t_gtid now holds the source's whole GTID position after the stored position (every
-- MariaDB domain, or the MySQL executed set), not only the last transaction's GTID.
COMMENT ON COLUMN sch_chameleon.t_sources.t_gtid IS 'GTID position of the source at the stored binlog position';

-- sync_tables: tables copied again while the source runs; the workers reload their table
-- caches when the generation moves, the read worker acknowledges
ALTER TABLE sch_chameleon.t_sources ADD COLUMN i_table_generation bigint NOT NULL DEFAULT 0;
ALTER TABLE sch_chameleon.t_sources ADD COLUMN i_reader_generation bigint NOT NULL DEFAULT 0;

CREATE FUNCTION chameleon."sync_tables"(
	"source_name" TEXT,
	"tables" TEXT[] DEFAULT NULL
) RETURNS TEXT[]
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'sync_tables_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.sync_tables(text, text[]) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.sync_tables(text, text[]) IS 'Copies the named tables (MySQL schema.table), or every one not replicating, again at a new consistent point while the source keeps replicating; returns their names, the copy runs after commit';

CREATE FUNCTION chameleon."detach_replica"(
	"source_name" TEXT
) RETURNS TEXT
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'detach_replica_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.detach_replica(text) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.detach_replica(text) IS 'Ends replication: stops the workers, replays what is stored, sets sequences past their maximum, creates the recorded foreign keys, drops the source; the tables stay as ordinary tables';

-- The log moves into 8 rotating partitions emptied by TRUNCATE (run_maintenance,
-- auto_maintenance, batch_retention); the rows stored so far go to slot 0.
ALTER TABLE sch_chameleon.t_replica_batch ADD COLUMN i_log_slot smallint NOT NULL DEFAULT 0;
CREATE TABLE sch_chameleon.t_log_slots (
    i_slot              smallint PRIMARY KEY CHECK (i_slot BETWEEN 0 AND 7),
    b_current           boolean NOT NULL DEFAULT false,
    ts_opened           timestamptz
);
INSERT INTO sch_chameleon.t_log_slots (i_slot, b_current, ts_opened)
SELECT s, s = 0, CASE WHEN s = 0 THEN now() END FROM generate_series(0, 7) s;
ALTER TABLE sch_chameleon.t_log_replica RENAME TO t_log_replica_old;
ALTER TABLE sch_chameleon.t_log_replica_old RENAME CONSTRAINT t_log_replica_pkey TO t_log_replica_old_pkey;
ALTER TABLE sch_chameleon.t_log_replica_old RENAME CONSTRAINT t_log_replica_i_id_batch_fkey TO t_log_replica_old_i_id_batch_fkey;
ALTER TABLE sch_chameleon.t_log_replica_old RENAME CONSTRAINT t_log_replica_v_op_check TO t_log_replica_old_v_op_check;
CREATE TABLE sch_chameleon.t_log_replica (
    i_id_batch          bigint NOT NULL REFERENCES sch_chameleon.t_replica_batch ON DELETE CASCADE,
    i_id_event          integer NOT NULL,
    i_id_table          integer NOT NULL,
    v_op                text NOT NULL CHECK (v_op IN ('I', 'U', 'D')),
    t_binlog_name       text NOT NULL,
    i_binlog_position   bigint NOT NULL,
    i_event_time        bigint NOT NULL,
    b_key               bytea,
    b_row               bytea,
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
INSERT INTO sch_chameleon.t_log_replica
SELECT i_id_batch, i_id_event, i_id_table, v_op, t_binlog_name, i_binlog_position, i_event_time, b_key, b_row, 0
  FROM sch_chameleon.t_log_replica_old;
DROP TABLE sch_chameleon.t_log_replica_old;
CREATE INDEX idx_replica_batch_slot ON sch_chameleon.t_replica_batch (i_log_slot);
REVOKE ALL ON sch_chameleon.t_log_slots, sch_chameleon.t_log_replica, sch_chameleon.t_log_replica_0,
    sch_chameleon.t_log_replica_1, sch_chameleon.t_log_replica_2, sch_chameleon.t_log_replica_3,
    sch_chameleon.t_log_replica_4, sch_chameleon.t_log_replica_5, sch_chameleon.t_log_replica_6,
    sch_chameleon.t_log_replica_7 FROM PUBLIC;

CREATE FUNCTION chameleon."run_maintenance"(
	"source_name" TEXT
) RETURNS TEXT
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'run_maintenance_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.run_maintenance(text) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.run_maintenance(text) IS 'Removes replayed batches past batch_retention by emptying whole log partitions (TRUNCATE); serves every source of the database';

CREATE FUNCTION chameleon."refresh_schema"(
	"source_name" TEXT,
	"schema_name" TEXT
) RETURNS TEXT[]
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'refresh_schema_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.refresh_schema(text, text) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.refresh_schema(text, text) IS 'Copies a mapped MySQL schema again as it is now on the source (new tables added, gone ones no longer replicated) while the source keeps replicating; returns the tables, the copy runs after commit';

-- alter_source gains schema_mappings (and applies filter and mapping changes to the tables)
DROP FUNCTION chameleon.alter_source(text, jsonb);
CREATE FUNCTION chameleon."alter_source"(
	"source_name" TEXT,
	"options" jsonb DEFAULT '{}',
	"schema_mappings" jsonb DEFAULT NULL
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'alter_source_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.alter_source(text, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.alter_source(text, jsonb, jsonb) IS 'Merges options into a source (null removes a key) and replaces its schema mappings; tables no longer selected stop being replicated, newly selected ones are copied; validated';

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
            FROM chameleon.tables t WHERE t.source = s.name))
  FROM chameleon.sources s
 WHERE source_name IS NULL OR s.name = source_name
 ORDER BY s.name
$fn$;
COMMENT ON FUNCTION chameleon.show_status(text) IS 'Each source''s status in words, joined with the live state of its workers ("running" only when they are alive), and what to do';
GRANT EXECUTE ON FUNCTION chameleon.show_status(text) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION chameleon.show_status(text) FROM PUBLIC;

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.4.0'::text AS t_version;
