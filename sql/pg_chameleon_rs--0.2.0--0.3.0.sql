-- pg_chameleon_rs 0.2.0 -> 0.3.0: a large table copied by several workers in primary-key ranges.
\echo Use "ALTER EXTENSION pg_chameleon_rs UPDATE TO '0.3.0'" to load this file. \quit

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

REVOKE ALL ON sch_chameleon.t_copy_ranges FROM PUBLIC;

-- rows_copied adds up the ranges committed and every worker copying the table
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
       c.pid AS copy_worker_pid
  FROM sch_chameleon.t_replica_tables t
  JOIN sch_chameleon.t_sources s USING (i_id_source)
  LEFT JOIN LATERAL (
        SELECT min(w.i_pid) AS pid, sum(p.tuples_processed)::bigint AS tuples_processed
          FROM sch_chameleon.t_copy_workers w
          LEFT JOIN pg_stat_progress_copy p ON p.pid = w.i_pid
         WHERE w.i_id_source = t.i_id_source AND w.i_id_table = t.i_id_table
           AND t.enm_state = 'copying' AND w.enm_state = 'go') c ON true;

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.3.0'::text AS t_version;
