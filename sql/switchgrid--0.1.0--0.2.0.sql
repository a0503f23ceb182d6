/* switchgrid--0.1.0--0.2.0.sql: from version 0.1.0 to 0.2.0 */

\echo Use "ALTER EXTENSION switchgrid UPDATE TO '0.2.0'" to load this file. \quit

-- Each change below is also in sql/switchgrid.sql, so that an updated
-- database and a fresh install of 0.2.0 have the same schema (checked by
-- test/t/060_upgrade.pl).  New columns go at the end of their table in both.

-- Webhook events expire (switchgrid.webhook_retention); a huge payload is
-- refused.
CREATE INDEX ON switchgrid.webhook_events (received_at);

CREATE FUNCTION switchgrid.expire_webhook_events(keep interval, batch integer DEFAULT 10000)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM switchgrid.webhook_events
        WHERE event_id IN (SELECT event_id FROM switchgrid.webhook_events
                           WHERE received_at < now() - keep
                           ORDER BY received_at LIMIT batch
                           FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM gone;
$$;
REVOKE ALL ON FUNCTION switchgrid.expire_webhook_events(interval, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION switchgrid.record_webhook(payload jsonb, tag text, created timestamptz,
                                          ask uuid, ord uuid, req uuid, req_type text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known boolean;
BEGIN
    -- an event is a few hundred bytes: a huge one is not kept
    IF pg_column_size(payload) > 65536 THEN
        RAISE EXCEPTION 'webhook payload is too large'
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('It takes %s bytes as jsonb; the limit is 65536 bytes.',
                                  pg_column_size(payload));
    END IF;
    INSERT INTO switchgrid.webhook_events (tag, created_at, ask_id, order_id, request_id,
                                           request_type, payload)
    VALUES (tag, created, ask, ord, req, req_type, payload);
    IF ask IS NOT NULL THEN
        UPDATE switchgrid.asks SET next_poll_at = now()
        WHERE ask_id = ask AND next_poll_at IS NOT NULL;
        known := EXISTS (SELECT 1 FROM switchgrid.asks WHERE ask_id = ask);
    ELSE
        UPDATE switchgrid.orders SET next_poll_at = now(), failures = 0
        WHERE order_id = ord AND finished_at IS NULL;
        known := EXISTS (SELECT 1 FROM switchgrid.orders WHERE order_id = ord);
    END IF;
    RETURN known;
END $$;

-- switchgrid.pending says whether a worker follows this database.
CREATE FUNCTION switchgrid.worker_follows()
RETURNS boolean
AS 'MODULE_PATHNAME', 'switchgrid_worker_follows'
LANGUAGE C STABLE PARALLEL RESTRICTED;
GRANT EXECUTE ON FUNCTION switchgrid.worker_follows() TO PUBLIC;

CREATE OR REPLACE VIEW switchgrid.pending AS
    SELECT 'ask' AS kind, ask_id AS id, NULL::uuid AS order_id, NULL::text AS type,
           status, first_seen AS waiting_since, next_poll_at AS next_attempt_at,
           polls AS attempts, last_error, switchgrid.worker_follows() AS followed
    FROM switchgrid.asks WHERE next_poll_at IS NOT NULL
    UNION ALL
    SELECT 'order', order_id, order_id, NULL, status, first_seen, next_poll_at, polls, last_error,
           switchgrid.worker_follows()
    FROM switchgrid.orders WHERE next_poll_at IS NOT NULL
    UNION ALL
    SELECT 'download', request_id, order_id, type, status, completed_at, next_fetch_at, fetches, last_error,
           switchgrid.worker_follows()
    FROM switchgrid.requests WHERE next_fetch_at IS NOT NULL;
