-- pg_chameleon_rs 0.5.0 -> 0.6.0: the launcher serves every database (chameleon.sources.auto_restart
-- follows). A source can be pointed at another server (alter_source's
-- mysql_url: a new primary after a failover, a rotated password). Table consistent points are
-- cleared once replay has passed them, so no position of one server is compared with another's.
\echo Use "ALTER EXTENSION pg_chameleon_rs UPDATE TO '0.6.0'" to load this file. \quit

ALTER TABLE sch_chameleon.t_sources ADD COLUMN i_moved_after_batch bigint;
ALTER TABLE sch_chameleon.t_sources ADD COLUMN t_position_of text;

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
         WHERE b.i_id_source = s.i_id_source AND NOT b.b_replayed) p ON true
  LEFT JOIN LATERAL (
        SELECT round(coalesce(sum(b.i_events) FILTER (WHERE b.ts_created > now() - interval '1 minute'), 0) / 60.0, 1) AS read_per_s,
               round(coalesce(sum(b.i_events) FILTER (WHERE b.ts_replayed > now() - interval '1 minute'), 0) / 60.0, 1) AS replayed_per_s
          FROM sch_chameleon.t_replica_batch b
         WHERE b.i_id_source = s.i_id_source
           AND (b.ts_created > now() - interval '1 minute' OR b.ts_replayed > now() - interval '1 minute')) rate ON true
 GROUP BY s.i_id_source, r.ts_last_received, l.ts_last_replayed, p.pending_batches, p.pending_events, p.oldest_pending,
          rate.read_per_s, rate.replayed_per_s;

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.6.0'::text AS t_version;

-- discarded_rows holds row contents: not for every pg_monitor member (GRANT it to operators)
REVOKE SELECT ON chameleon.discarded_rows FROM pg_monitor;
