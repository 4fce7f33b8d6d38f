-- pg_chameleon_rs 0.1.0 -> 0.2.0: parallel copy workers and live copy progress.
\echo Use "ALTER EXTENSION pg_chameleon_rs UPDATE TO '0.2.0'" to load this file. \quit

-- The copy workers of a running init_replica, one row per worker slot. The init worker
-- (coordinator) creates the rows, holds the global read lock until every worker has opened
-- its snapshot ('ready'), then publishes the snapshot's coordinates ('go'). Without the lock
-- privilege each worker takes a consistent point per table (b_per_table_points).
CREATE TABLE sch_chameleon.t_copy_workers (
    i_id_source         integer NOT NULL REFERENCES sch_chameleon.t_sources ON DELETE CASCADE,
    i_slot              integer NOT NULL,
    i_pid               integer,
    enm_state           text NOT NULL DEFAULT 'starting'
        CHECK (enm_state IN ('starting', 'ready', 'go', 'done', 'failed', 'aborted')),
    b_per_table_points  boolean NOT NULL DEFAULT false,
    t_binlog_name       text,
    i_binlog_position   bigint,
    i_id_table          integer,                -- the table being copied now
    t_error             text,
    PRIMARY KEY (i_id_source, i_slot)
);

REVOKE ALL ON sch_chameleon.t_copy_workers FROM PUBLIC;

-- a table whose copy failed is 'failed' until init_replica copies it again
ALTER TABLE sch_chameleon.t_replica_tables DROP CONSTRAINT t_replica_tables_enm_state_check;
ALTER TABLE sch_chameleon.t_replica_tables ADD CONSTRAINT t_replica_tables_enm_state_check
    CHECK (enm_state IN ('pending', 'copying', 'failed', 'copied', 'replicating', 'disabled'));

CREATE OR REPLACE VIEW chameleon.tables AS
SELECT s.t_source AS source,
       t.v_mysql_schema || '.' || t.v_mysql_table AS mysql_table,
       quote_ident(t.v_pg_schema) || '.' || quote_ident(t.v_pg_table) AS pg_table,
       t.enm_state AS state,
       t.b_replica_enabled AS replica_enabled,
       t.v_replica_key AS replica_key,
       -- while a table is being copied: the rows its copy worker's COPY has stored so far
       coalesce(CASE WHEN t.enm_state = 'copying' THEN c.tuples_processed END, t.i_rows_copied) AS rows_copied,
       t.i_rows_estimated AS rows_estimated,
       t.i_rows_discarded AS rows_discarded,
       CASE WHEN t.t_binlog_name IS NOT NULL THEN t.t_binlog_name || ':' || t.i_binlog_position END AS consistent_point,
       t.ts_copied AS copied_at,
       t.t_notes AS notes,
       t.t_last_error AS last_error,
       c.pid AS copy_worker_pid
  FROM sch_chameleon.t_replica_tables t
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  LEFT JOIN LATERAL (
        SELECT w.i_pid AS pid, p.tuples_processed
          FROM sch_chameleon.t_copy_workers w
          LEFT JOIN pg_stat_progress_copy p ON p.pid = w.i_pid
         WHERE w.i_id_source = t.i_id_source AND w.i_id_table = t.i_id_table
           AND t.enm_state = 'copying' AND w.enm_state = 'go'
         LIMIT 1) c ON true;

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.2.0'::text AS t_version;

-- init_replica gains resume (default true: an interrupted copy keeps the tables it finished)
DROP FUNCTION chameleon.init_replica(text, boolean);
CREATE FUNCTION chameleon."init_replica"(
	"source_name" TEXT,
	"wait" bool DEFAULT false,
	"resume" bool DEFAULT true
) RETURNS TEXT
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'init_replica_wrapper';
REVOKE EXECUTE ON FUNCTION chameleon.init_replica(text, boolean, boolean) FROM PUBLIC;
COMMENT ON FUNCTION chameleon.init_replica(text, boolean, boolean) IS 'Initial copy with a consistent snapshot by copy_workers background workers; wait => true blocks and raises on failure; resume => false copies again the tables an interrupted copy finished';
