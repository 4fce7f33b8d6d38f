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
       -- nothing pending: replay is as current as reading;

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.6.0'::text AS t_version;
