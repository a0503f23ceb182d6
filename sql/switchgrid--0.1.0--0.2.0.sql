/* switchgrid--0.1.0--0.2.0.sql: from version 0.1.0 to 0.2.0 */

\echo Use "ALTER EXTENSION switchgrid UPDATE TO '0.2.0'" to load this file. \quit

-- Each change below is also in sql/switchgrid.sql, so that an updated
-- database and a fresh install of 0.2.0 have the same schema (checked by
-- test/t/060_upgrade.pl).  New columns go at the end of their table in both.

-- Webhooks are hints the worker takes after commit (issue 9): an event
-- records when the worker took it.  Events kept from 0.1.0 were acted on
-- when they were received.
ALTER TABLE switchgrid.webhook_events ADD COLUMN handled_at timestamptz;
UPDATE switchgrid.webhook_events SET handled_at = received_at;
CREATE INDEX ON switchgrid.webhook_events (event_id) WHERE handled_at IS NULL;

DROP FUNCTION switchgrid.record_webhook(jsonb, text, timestamptz, uuid, uuid, uuid, text);
-- A webhook event, from the receiving transaction: only kept.  It is a hint
-- that the worker takes once the transaction has committed
-- (switchgrid.take_webhook_events); nothing else is touched here, so a
-- webhook never locks an Order or Ask row, and a rolled-back one costs
-- nothing.
CREATE FUNCTION switchgrid.record_webhook(payload jsonb, tag text, created timestamptz,
                                          ask uuid, ord uuid, req uuid, req_type text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO switchgrid.webhook_events (tag, created_at, ask_id, order_id, request_id,
                                           request_type, payload)
    VALUES (tag, created, ask, ord, req, req_type, payload);
$$;

-- The worker's side of webhooks.  Takes up to "max" committed events not
-- taken yet and marks them handled.  An Ask or Order they name that is still
-- followed (or an Order given up on, which is revived) is polled now, but at
-- most once a second whatever the number of events: one not recorded or
-- polled in the last second.  Rows another transaction holds are skipped,
-- never waited for.  Returns the distinct Orders named that are not recorded
-- here: the worker looks them up, within its budget.
CREATE FUNCTION switchgrid.take_webhook_events(max integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ask_ids uuid[];
    order_ids uuid[];
BEGIN
    WITH taken AS (
        UPDATE switchgrid.webhook_events SET handled_at = now()
        WHERE event_id IN (SELECT event_id FROM switchgrid.webhook_events
                           WHERE handled_at IS NULL ORDER BY event_id LIMIT max
                           FOR UPDATE SKIP LOCKED)
        RETURNING ask_id, order_id)
    SELECT array_agg(DISTINCT ask_id) FILTER (WHERE ask_id IS NOT NULL),
           array_agg(DISTINCT order_id) FILTER (WHERE order_id IS NOT NULL)
    INTO ask_ids, order_ids
    FROM taken;

    UPDATE switchgrid.asks SET next_poll_at = now()
    WHERE ask_id IN (SELECT ask_id FROM switchgrid.asks
                     WHERE ask_id = ANY (ask_ids) AND next_poll_at > now()
                       AND updated_at < now() - interval '1 second'
                     FOR NO KEY UPDATE SKIP LOCKED);
    UPDATE switchgrid.orders SET next_poll_at = now(), failures = 0
    WHERE order_id IN (SELECT order_id FROM switchgrid.orders
                       WHERE order_id = ANY (order_ids) AND finished_at IS NULL
                         AND (next_poll_at IS NULL OR next_poll_at > now())
                         AND updated_at < now() - interval '1 second'
                       FOR NO KEY UPDATE SKIP LOCKED);

    RETURN QUERY
        SELECT o FROM unnest(order_ids) AS o
        WHERE NOT EXISTS (SELECT 1 FROM switchgrid.orders WHERE order_id = o);
END $$;

-- Takes, without waiting, the row locks that recording an item needs, in the
-- documented order: an Order's row, then its requests' rows.  Raises
-- lock_not_available (55P03) if another transaction holds one: the worker
-- calls it first in each of its record transactions, so that a user's
-- transaction holding a row delays that item only.  "kind" is 'order', 'ask'
-- or 'request' (a download).
CREATE FUNCTION switchgrid.lock_for_record(kind text, id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kind = 'ask' THEN
        PERFORM 1 FROM switchgrid.asks WHERE ask_id = id FOR UPDATE NOWAIT;
    ELSIF kind = 'order' THEN
        PERFORM 1 FROM switchgrid.orders WHERE order_id = id FOR UPDATE NOWAIT;
        PERFORM 1 FROM switchgrid.requests WHERE order_id = id FOR UPDATE NOWAIT;
    ELSE
        PERFORM 1 FROM switchgrid.orders
        WHERE order_id = (SELECT r.order_id FROM switchgrid.requests r WHERE r.request_id = id)
        FOR UPDATE NOWAIT;
        PERFORM 1 FROM switchgrid.requests WHERE request_id = id FOR UPDATE NOWAIT;
    END IF;
END $$;

-- A failed attempt: kept for switchgrid.pending, retried at "retry_at"
-- (updated_at says when an Ask or Order was last tried).
-- After 50 failures in a row the worker gives up on the item (next_* is
-- cleared, the error stays); switchgrid_order_status() or a webhook revives it.
CREATE OR REPLACE FUNCTION switchgrid.record_failure(kind text, id uuid, error text, retry_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kind = 'ask' THEN
        UPDATE switchgrid.asks SET last_error = error, failures = failures + 1,
               next_poll_at = CASE WHEN failures + 1 < 50 THEN retry_at END,
               updated_at = now()
        WHERE ask_id = id;
    ELSIF kind = 'order' THEN
        UPDATE switchgrid.orders SET last_error = error, failures = failures + 1,
               next_poll_at = CASE WHEN failures + 1 < 50 THEN retry_at END,
               updated_at = now()
        WHERE order_id = id;
    ELSE
        UPDATE switchgrid.requests SET last_error = error, failures = failures + 1,
               next_fetch_at = CASE WHEN failures + 1 < 50 THEN retry_at END
        WHERE request_id = id;
    END IF;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA switchgrid FROM PUBLIC;
