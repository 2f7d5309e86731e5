-- The hash of the DDL each projection's active generation was built with:
-- a projection whose tables changed shape is rebuilt (blue/green) at start.
ALTER TABLE projection_active ADD COLUMN ddl_hash TEXT;
