"""DDL of the event log: the one append-only table that is the source of truth and the history.

The database itself refuses UPDATE, DELETE and TRUNCATE on it (ARCHITECTURE.md invariant 1).
"""

EVENT_LOG_DDL = """
CREATE TABLE event_log (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    version       integer NOT NULL CHECK (version > 0),
    kind          text NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    resource      bytea,
    recorded_at   timestamptz NOT NULL,
    method        text NOT NULL,
    url           text NOT NULL,
    actor         text,
    client_addr   text,
    request_id    text,
    CONSTRAINT event_log_resource_iff_not_deleted CHECK ((kind = 'deleted') = (resource IS NULL)),
    CONSTRAINT event_log_version_unique UNIQUE (resource_type, resource_id, version)
);
CREATE INDEX event_log_type_position ON event_log (resource_type, position);
CREATE INDEX event_log_tx ON event_log (tx_id, position);

CREATE FUNCTION event_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER event_log_no_update_delete BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_refuse_change();
"""

# the gap-free reader of one type (app/events/feed.py) reads in (tx_id, position) order
EVENT_LOG_TYPE_TX_INDEX = "CREATE INDEX IF NOT EXISTS event_log_type_tx ON event_log (resource_type, tx_id, position)"

# the zstd dictionaries the log's compressed resources name by id (app/events/codec.py): part of
# the history, so append-only like the log itself
EVENT_LOG_DICTIONARY_DDL = """
CREATE TABLE IF NOT EXISTS event_log_dictionary (
    id         bigint PRIMARY KEY,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    note       text NOT NULL
);
CREATE OR REPLACE FUNCTION event_log_dictionary_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log_dictionary is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER event_log_dictionary_no_update_delete BEFORE UPDATE OR DELETE ON event_log_dictionary
    FOR EACH ROW EXECUTE FUNCTION event_log_dictionary_refuse_change();
CREATE OR REPLACE TRIGGER event_log_dictionary_no_truncate BEFORE TRUNCATE ON event_log_dictionary
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_dictionary_refuse_change();
"""

# the newest version of a resource the calling statement's snapshot sees (a STABLE function takes
# the caller's snapshot), always by a backward scan of the (type, id, version) index: a write's
# one statement asks for it on every append (app/events/store.py no_later_version_sql), and its
# plan is cached on each connection; planned inline, a log analyzed while empty or small (a new
# database under its first writes) gave a sequential scan or another index's scan plus a sort,
# then kept for every later write of the connection while the log grew (until the next analyze):
# a walk over every event of the type on each write. Every other plan sorts (only that index hands
# the versions of one resource over in order), so sorts disabled for the function's own plan leave
# the backward scan as the one PostgreSQL chooses (one setting: each costs the call a little).
EVENT_LOG_HEAD_DDL = """
CREATE OR REPLACE FUNCTION event_log_head(of_type text, of_id text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
SET enable_sort = off
AS $$
    SELECT o.version FROM event_log o WHERE o.resource_type = of_type AND o.resource_id = of_id
    ORDER BY o.version DESC LIMIT 1
$$;
"""
