-- drift 0.4 -> 0.5: .drift segment files (docs/segments.md): export an
-- index's rows with their ids, describe a file, read its rows back, look
-- up an id. Reading and writing server files takes superuser or the
-- pg_read_server_files / pg_write_server_files roles, as COPY does.

\echo Use "ALTER EXTENSION drift UPDATE TO '0.5'" to load this file. \quit

CREATE FUNCTION drift_export_segment(index regclass, path text, id_column name DEFAULT NULL,
    OUT rows bigint, OUT bytes bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION drift_export_segment(regclass, text, name) IS 'writes the rows of a drift index the statement sees, with their ids, centroids and quantizer, to a .drift segment file on the server';

CREATE FUNCTION drift_segment_info(path text,
    OUT format_version int, OUT created timestamptz, OUT index_name text, OUT ids text, OUT id_column text,
    OUT dimension int, OUT metric text, OUT codes text, OUT rows bigint, OUT buckets int,
    OUT file_bytes bigint, OUT hot_bytes bigint, OUT cold_bytes bigint, OUT meta_bytes bigint, OUT bloom_bytes bigint,
    OUT raw_vector_bytes bigint, OUT compression_ratio float8,
    OUT alp_columns bigint, OUT alp_rd_columns bigint, OUT raw_columns bigint,
    OUT checksums_ok bool, OUT problem text)
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION drift_segment_info(text) IS 'the fields, section sizes and compression of a .drift segment file, and whether every checksum holds';

CREATE FUNCTION drift_segment_rows(path text, OUT id bigint, OUT bucket int, OUT embedding real[])
    RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION drift_segment_rows(text) IS 'the rows of a .drift segment file: id, bucket and vector';

CREATE FUNCTION drift_segment_contains(path text, id bigint) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION drift_segment_contains(text, bigint) IS 'false if a .drift segment file certainly holds no row with this id (its Bloom filter)';
