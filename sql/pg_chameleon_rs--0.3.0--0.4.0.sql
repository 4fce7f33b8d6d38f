-- pg_chameleon_rs 0.3.0 -> 0.4.0: replication can start at a position the DBA gives (binlog
-- file and offset, or GTID) without init_replica; sources can follow the binlog by GTID;
-- sync_tables copies tables again while the source runs; detach_replica ends replication.
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

CREATE OR REPLACE VIEW sch_chameleon.v_version AS SELECT '0.4.0'::text AS t_version;
