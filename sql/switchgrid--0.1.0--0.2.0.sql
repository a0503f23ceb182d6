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

-- Webhooks are hints the worker takes after commit: an event records when
-- the worker took it.  Events kept from 0.1.0 were acted on when they were
-- received.
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
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
END $$;

-- The worker's side of webhooks.  Takes up to "max" committed events not
-- taken yet and marks them handled.  An Ask or Order they name that is still
-- followed (or an Order given up on, which is revived) is polled now, but at
-- most once a second whatever the number of events: one never polled, or
-- not recorded or polled in the last second.  Rows another transaction holds are skipped,
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

    -- An item whose last attempt failed keeps its backoff (and a
    -- Retry-After): a webhook hurries only what is going well.
    UPDATE switchgrid.asks SET next_poll_at = now()
    WHERE ask_id IN (SELECT ask_id FROM switchgrid.asks
                     WHERE ask_id = ANY (ask_ids) AND next_poll_at > now() AND failures = 0
                       AND (polls = 0 OR updated_at < now() - interval '1 second')
                     FOR NO KEY UPDATE SKIP LOCKED);
    -- An Order given up on (next_poll_at NULL, not finished) is revived, and
    -- its failures counted afresh.
    UPDATE switchgrid.orders
    SET failures = CASE WHEN next_poll_at IS NULL THEN 0 ELSE failures END,
        next_poll_at = now()
    WHERE order_id IN (SELECT order_id FROM switchgrid.orders
                       WHERE order_id = ANY (order_ids) AND finished_at IS NULL
                         AND (next_poll_at IS NULL
                              OR (next_poll_at > now() AND failures = 0
                                  AND (polls = 0 OR updated_at < now() - interval '1 second')))
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
-- or 'request' (a download).  Returns false for a download stored meanwhile
-- (by switchgrid_wait(), say): it is not stored twice.
CREATE FUNCTION switchgrid.lock_for_record(kind text, id uuid)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored boolean;
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
        SELECT fetched_at IS NOT NULL INTO stored
        FROM switchgrid.requests WHERE request_id = id FOR UPDATE NOWAIT;
        RETURN NOT coalesce(stored, false);
    END IF;
    RETURN true;
END $$;

-- The worker never waits on a row another transaction holds, and an answer
-- older than the one recorded changes nothing.
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

-- Upserts an Ask; "poll_in" is when the worker should look at it again if it
-- is still waiting for a signature.
CREATE OR REPLACE FUNCTION switchgrid.record_ask(a jsonb, poll_in interval DEFAULT '5 seconds',
                                      in_test_env boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_status text;
    id uuid := (a->>'id')::uuid;
    waiting boolean := a->>'status' IN ('CREATED', 'PENDING_ADDRESS_CHECK',
                                          'PREPARING_CONSENT_COLLECTION', 'PENDING_USER_ACTION');
BEGIN
    SELECT status INTO old_status FROM switchgrid.asks WHERE ask_id = id FOR UPDATE;
    INSERT INTO switchgrid.asks AS t (ask_id, status, created_at, accepted_at, user_url,
                                      prms, consent_ids, raw, next_poll_at, test_env)
    VALUES (id, a->>'status', switchgrid.api_time(a->>'createdAt'),
            switchgrid.api_time(a->>'acceptedAt'),
            a->'consentCollectionDetails'->>'userUrl',
            COALESCE(ARRAY(SELECT c->>'prm' FROM jsonb_array_elements(
                               CASE WHEN jsonb_typeof(a->'contracts') = 'array'
                                    THEN a->'contracts' ELSE '[]' END) c
                           WHERE c->>'prm' IS NOT NULL), '{}'),
            a->'consentIds', a,
            CASE WHEN waiting THEN now() + poll_in END, COALESCE(in_test_env, false))
    ON CONFLICT (ask_id) DO UPDATE
    SET status = EXCLUDED.status, created_at = EXCLUDED.created_at,
        accepted_at = EXCLUDED.accepted_at,
        user_url = COALESCE(EXCLUDED.user_url, t.user_url),
        prms = CASE WHEN EXCLUDED.prms = '{}' THEN t.prms ELSE EXCLUDED.prms END,
        consent_ids = EXCLUDED.consent_ids, raw = EXCLUDED.raw, updated_at = now(),
        next_poll_at = EXCLUDED.next_poll_at, last_error = NULL, polls = t.polls + 1,
        failures = 0, test_env = COALESCE(in_test_env, t.test_env)
    -- an answer older than the one recorded (two look-ups racing) changes nothing
    WHERE NOT (t.status NOT IN ('CREATED', 'PENDING_ADDRESS_CHECK',
                                'PREPARING_CONSENT_COLLECTION', 'PENDING_USER_ACTION')
               AND waiting);

    IF a->>'status' = 'ACCEPTED' AND old_status IS DISTINCT FROM 'ACCEPTED' THEN
        PERFORM switchgrid.notify('ask.accepted',
            jsonb_build_object('ask_id', id, 'status', a->>'status'));
    END IF;
END $$;

-- Upserts an Order and its requests.  "sent" is the request array as it was
-- POSTed, if known: the API's answer may not repeat prms, direction and
-- period.  "poll_in" is when to look at the order again if not terminal;
-- "fetch" says whether finished requests should be downloaded.
CREATE OR REPLACE FUNCTION switchgrid.record_order(o jsonb, sent jsonb DEFAULT NULL,
                                        consent uuid DEFAULT NULL,
                                        poll_in interval DEFAULT '1 second',
                                        do_fetch boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id uuid := (o->>'id')::uuid;
    terminal boolean := o->>'status' IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED');
    r jsonb;
    s jsonb;
    pos integer := 0;
    old record;
BEGIN
    INSERT INTO switchgrid.orders AS t (order_id, consent_id, status, created_at, raw, next_poll_at)
    VALUES (id, consent, o->>'status', switchgrid.api_time(o->>'createdAt'), o,
            CASE WHEN NOT terminal THEN now() + poll_in END)
    ON CONFLICT (order_id) DO UPDATE
    SET status = EXCLUDED.status,
        consent_id = COALESCE(t.consent_id, EXCLUDED.consent_id),
        created_at = COALESCE(EXCLUDED.created_at, t.created_at),
        raw = EXCLUDED.raw, updated_at = now(), last_error = NULL, polls = t.polls + 1,
        failures = 0,
        next_poll_at = CASE WHEN t.finished_at IS NULL AND NOT terminal
                            THEN EXCLUDED.next_poll_at END
    -- an answer older than the one recorded (two look-ups racing) changes nothing
    WHERE NOT (t.status IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED')
               AND NOT terminal);

    FOR r IN SELECT * FROM jsonb_array_elements(COALESCE(o->'requests', '[]')) LOOP
        s := CASE WHEN jsonb_typeof(sent) = 'array' THEN sent->pos
                  WHEN jsonb_typeof(sent) = 'object' AND pos = 0 THEN sent END;
        SELECT status, fetched_at INTO old FROM switchgrid.requests
        WHERE request_id = (r->>'id')::uuid FOR UPDATE;

        INSERT INTO switchgrid.requests AS t
            (request_id, order_id, position, type, prms, direction, since, until,
             retry_after_activation, status, ordered_at, completed_at, data_url,
             error_message, raw, next_fetch_at)
        VALUES ((r->>'id')::uuid, id, pos, r->>'type',
                ARRAY(SELECT jsonb_array_elements_text(COALESCE(r->'prms', s->'prms', '[]'))),
                COALESCE(r->>'direction', s->>'direction'),
                COALESCE(r->>'since', s->>'since'), COALESCE(r->>'until', s->>'until'),
                COALESCE((r->>'enedisRetryAfterLoadcurveActivation')::boolean,
                         (s->>'enedisRetryAfterLoadcurveActivation')::boolean, false),
                r->>'status', switchgrid.api_time(r->>'orderedAt'),
                switchgrid.api_time(r->>'completedAt'), r->>'dataUrl', r->>'errorMessage', r,
                CASE WHEN r->>'status' = 'SUCCESS' AND do_fetch THEN now() END)
        ON CONFLICT (request_id) DO UPDATE
        SET status = EXCLUDED.status, completed_at = EXCLUDED.completed_at,
            ordered_at = EXCLUDED.ordered_at, data_url = EXCLUDED.data_url,
            error_message = EXCLUDED.error_message, raw = EXCLUDED.raw,
            prms = CASE WHEN EXCLUDED.prms = '{}' THEN t.prms ELSE EXCLUDED.prms END,
            direction = COALESCE(EXCLUDED.direction, t.direction),
            since = COALESCE(EXCLUDED.since, t.since), until = COALESCE(EXCLUDED.until, t.until),
            updated_at = now(),
            next_fetch_at = CASE WHEN t.fetched_at IS NULL AND EXCLUDED.status = 'SUCCESS'
                                 THEN COALESCE(t.next_fetch_at, EXCLUDED.next_fetch_at) END,
            -- a download given up on starts afresh when the order is looked up again
            failures = CASE WHEN t.next_fetch_at IS NULL THEN 0 ELSE t.failures END
        WHERE NOT (t.status IN ('SUCCESS', 'FAILED')
                   AND EXCLUDED.status NOT IN ('SUCCESS', 'FAILED'));

        IF r->>'status' = 'FAILED' AND old.status IS DISTINCT FROM 'FAILED' THEN
            PERFORM switchgrid.notify('request.finished',
                jsonb_build_object('order_id', id, 'request_id', r->>'id', 'type', r->>'type',
                                   'status', 'FAILED'));
        ELSIF r->>'status' = 'SUCCESS' AND NOT do_fetch AND old.status IS DISTINCT FROM 'SUCCESS' THEN
            PERFORM switchgrid.notify('request.finished',
                jsonb_build_object('order_id', id, 'request_id', r->>'id', 'type', r->>'type',
                                   'status', 'SUCCESS', 'stored', false));
        END IF;
        pos := pos + 1;
    END LOOP;

    IF do_fetch THEN
        PERFORM switchgrid.check_order_finished(id);
    ELSIF terminal THEN
        UPDATE switchgrid.orders SET next_poll_at = NULL WHERE order_id = id;
    END IF;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA switchgrid FROM PUBLIC;

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

-- Orders handed over to the worker by backends (billed Orders whose record
-- was rolled back, Orders switchgrid_wait() asked it to follow), made
-- durable as soon as the worker has them: each gets a placeholder row,
-- status HANDED_OVER and raw '{}', due now, unless it is recorded already
-- (a placeholder given up on is revived).  It is then followed like any
-- other Order; its first answer replaces the placeholder (record_order),
-- and a 404 gives it up, keeping the row and its last_error.  Returns the
-- ids it could not write now (another transaction is inserting the same
-- Order): the worker tries them again.
CREATE FUNCTION switchgrid.record_handed_over(ids uuid[])
RETURNS SETOF uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id uuid;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        BEGIN
            INSERT INTO switchgrid.orders AS t (order_id, status, raw, next_poll_at)
            VALUES (id, 'HANDED_OVER', '{}', now())
            ON CONFLICT (order_id) DO UPDATE SET next_poll_at = now(), failures = 0
            WHERE t.status = 'HANDED_OVER' AND t.next_poll_at IS NULL;
        EXCEPTION WHEN lock_not_available THEN
            RETURN NEXT id;
        END;
    END LOOP;
END $$;

-- The state of an Order as switchgrid_wait() sees it; NULL if it is not
-- recorded.
CREATE OR REPLACE FUNCTION switchgrid.order_progress(ord uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'finished', o.finished_at IS NOT NULL,
        'status', o.status,
        'order', o.raw,
        'xmin', o.xmin::text,
        'requests', (SELECT count(*) FROM switchgrid.requests r WHERE r.order_id = o.order_id),
        'done', (SELECT count(*) FROM switchgrid.requests r
                 WHERE r.order_id = o.order_id
                   AND (r.status = 'FAILED' OR r.fetched_at IS NOT NULL)),
        -- whether the worker still means to do something about it
        'followed', o.next_poll_at IS NOT NULL
                    OR EXISTS (SELECT 1 FROM switchgrid.requests r
                               WHERE r.order_id = o.order_id AND r.next_fetch_at IS NOT NULL))
    FROM switchgrid.orders o
    -- a placeholder (record_handed_over) is not a record
    WHERE o.order_id = ord AND o.status <> 'HANDED_OVER';
$$;

REVOKE ALL ON FUNCTION switchgrid.record_handed_over(uuid[]) FROM PUBLIC;

-- Load curves: each point says its step and the energy of the step (R63
-- files give each point its own step, which can change within a day).  The
-- step of a row kept from 0.1.0 (always a LOADCURVE at one period) is the
-- shorter distance to its neighbours in the series, when that is an Enedis
-- step (5, 10, 15, 30 or 60 minutes); otherwise it stays NULL, and so does
-- its energy.  No row is removed.
ALTER TABLE switchgrid.loadcurve ADD COLUMN step_s integer CHECK (step_s > 0);
WITH d AS (
    SELECT prm, direction, ts,
           extract(epoch FROM lead(ts) OVER w - ts)::integer AS next_s,
           extract(epoch FROM ts - lag(ts) OVER w)::integer AS prev_s
    FROM switchgrid.loadcurve
    WINDOW w AS (PARTITION BY prm, direction ORDER BY ts))
UPDATE switchgrid.loadcurve l
SET step_s = LEAST(CASE WHEN d.next_s IN (300, 600, 900, 1800, 3600) THEN d.next_s END,
                   CASE WHEN d.prev_s IN (300, 600, 900, 1800, 3600) THEN d.prev_s END)
FROM d
WHERE l.prm = d.prm AND l.direction = d.direction AND l.ts = d.ts;
ALTER TABLE switchgrid.loadcurve
    ADD COLUMN wh double precision GENERATED ALWAYS AS (power_w * step_s / 3600) STORED;

DROP FUNCTION switchgrid.store_loadcurve(uuid, text[], timestamptz[], double precision[]);
-- Stores a downloaded load curve (LOADCURVE, R63, R63_SYNC): one
-- consolidated series per meter and direction, so an overlapping later order
-- updates points in place.  in_ts is the start of each step, in_step its
-- length in seconds.
CREATE FUNCTION switchgrid.store_loadcurve(req uuid, in_prms text[], in_ts timestamptz[],
                                           in_step integer[], in_power double precision[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    -- orders before requests, as record_order() locks them
    PERFORM 1 FROM switchgrid.orders
    WHERE order_id = (SELECT order_id FROM switchgrid.requests WHERE request_id = req) FOR UPDATE;
    SELECT * INTO r FROM switchgrid.requests WHERE request_id = req FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % is not recorded', req;
    END IF;
    INSERT INTO switchgrid.loadcurve AS t (prm, direction, ts, power_w, request_id, step_s)
    SELECT DISTINCT ON (u.p, u.t)
           u.p, CASE r.direction WHEN 'INJECTION' THEN 'INJECTION' ELSE 'CONSUMPTION' END,
           u.t, u.w, req, u.s
    FROM unnest(in_prms, in_ts, in_power, in_step) WITH ORDINALITY AS u(p, t, w, s, i)
    ORDER BY u.p, u.t, u.i DESC
    ON CONFLICT (prm, direction, ts) DO UPDATE
    SET power_w = EXCLUDED.power_w, request_id = EXCLUDED.request_id, fetched_at = now(),
        step_s = EXCLUDED.step_s;
    GET DIAGNOSTICS n = ROW_COUNT;

    UPDATE switchgrid.requests
    SET rows_stored = n, fetched_at = now(), next_fetch_at = NULL, last_error = NULL,
        fetches = fetches + 1, failures = 0, updated_at = now()
    WHERE request_id = req;
    IF r.fetched_at IS NULL THEN
        PERFORM switchgrid.notify('request.finished',
            jsonb_build_object('order_id', r.order_id, 'request_id', req, 'type', r.type,
                               'status', 'SUCCESS', 'stored', true, 'rows', n));
    END IF;
    PERFORM switchgrid.check_order_finished(r.order_id);
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION switchgrid.store_loadcurve(uuid, text[], timestamptz[], integer[],
                                            double precision[]) FROM PUBLIC;

-- switchgrid_loadcurve() gains columns: its result type changes, so it is
-- dropped and created again.  A view of yours over it would be lost with
-- it, so the update stops and says so instead.  What was granted on it is
-- not granted again here: a GRANT run by this script would count as the
-- extension's own initial privilege, which pg_dump leaves out, so a dump
-- would lose it.  A WARNING gives the GRANT to run again after the update.
DO $$
DECLARE
    f regprocedure := 'switchgrid_loadcurve(uuid, text)'::regprocedure;
    deps text;
    grantees text;
BEGIN
    SELECT string_agg(DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                                    THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                                    ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END,
                      ', ')
    INTO deps
    FROM pg_depend d
    LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
    WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = f AND d.deptype = 'n';
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'cannot update switchgrid: switchgrid_loadcurve() is used by %', deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'Version 0.2.0 adds columns to switchgrid_loadcurve(), which is dropped and created again.',
                  HINT = 'Drop them, run ALTER EXTENSION switchgrid UPDATE, then create them again (over the stored table switchgrid.loadcurve, a REFRESH makes no API call).';
    END IF;
    SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(ro.rolname) END,
                      ', ')
    INTO grantees
    FROM pg_proc p, aclexplode(p.proacl) a
    LEFT JOIN pg_roles ro ON ro.oid = a.grantee
    WHERE p.oid = f AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;
    IF grantees IS NOT NULL THEN
        RAISE WARNING 'switchgrid_loadcurve() is created again: EXECUTE on it is no longer granted to %', grantees
            USING DETAIL = 'Version 0.2.0 adds columns to switchgrid_loadcurve(), which is dropped and created again.',
                  HINT = format('After the update, run: GRANT EXECUTE ON FUNCTION switchgrid_loadcurve(uuid, text) TO %s;', grantees);
    END IF;
END $$;

DROP FUNCTION switchgrid_loadcurve(uuid, text);
CREATE FUNCTION switchgrid_loadcurve(request_id uuid, period text DEFAULT NULL)
RETURNS TABLE(prm text, ts timestamptz, power_w double precision,
              step_s integer, wh double precision, steps integer, day_steps integer)
AS 'MODULE_PATHNAME', 'switchgrid_loadcurve'
LANGUAGE C VOLATILE
ROWS 1000;

COMMENT ON FUNCTION switchgrid_loadcurve(uuid, text) IS
'Load curve of a LOADCURVE, R63 or R63_SYNC request, one row per step (or per Paris day with period 1d, with the steps it holds out of the steps the day has)';

REVOKE EXECUTE ON FUNCTION switchgrid_loadcurve(uuid, text) FROM PUBLIC;

