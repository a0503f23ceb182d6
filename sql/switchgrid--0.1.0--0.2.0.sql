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

-- (replaced by its 0.2.0 form below, with the load-curve storage)
DROP FUNCTION switchgrid.store_loadcurve(uuid, text[], timestamptz[], double precision[]);

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


-- ================================================================
-- Every Enedis dataset as typed, consolidated tables; the test
-- environment's rows apart, in schema switchgrid_test; requests.since and
-- until as timestamptz; comments on every table and column.
-- ================================================================

-- A since/until as the API writes it (2024-12-10, 2024-12-10T00:00:00,
-- ...Z, ...+01:00, ...[Europe/Paris]; no offset means UTC) as timestamptz;
-- NULL if it is none of these: an answer is recorded even then.
CREATE FUNCTION switchgrid.api_instant(s text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    zone text := substring(s from '\[([^]]+)\]$');
    t text := regexp_replace(s, '\[[^]]+\]$', '');
BEGIN
    IF s IS NULL OR s = '' THEN
        RETURN NULL;
    ELSIF t ~ 'T.*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN
        RETURN t::timestamptz;
    ELSE
        RETURN t::timestamp AT TIME ZONE COALESCE(zone, 'UTC');
    END IF;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

-- Whether a consent comes from an Ask of the test environment (as recorded here).
CREATE FUNCTION switchgrid.consent_test_env(consent uuid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(bool_or(a.test_env), false)
    FROM switchgrid.asks a,
         jsonb_each_text(CASE WHEN jsonb_typeof(a.consent_ids) = 'object'
                              THEN a.consent_ids ELSE '{}' END) AS c
    WHERE lower(c.value) = consent::text;
$$;

-- since and until were the API's text; every value 0.1.0 recorded is one
-- of the forms switchgrid.api_instant() reads.
ALTER TABLE switchgrid.requests
    ALTER COLUMN since TYPE timestamptz USING switchgrid.api_instant(since),
    ALTER COLUMN until TYPE timestamptz USING switchgrid.api_instant(until);

-- An Order of the test environment: from its consent's Ask, as recorded.
-- (0.1.0 did not record whether switchgrid.test_env was on when an Order
-- was placed.)
ALTER TABLE switchgrid.orders ADD COLUMN test_env boolean NOT NULL DEFAULT false;
UPDATE switchgrid.orders SET test_env = true
WHERE consent_id IS NOT NULL AND switchgrid.consent_test_env(consent_id);

-- ----------------------------------------------------------------
-- Typed datasets: one consolidated series per meter, whatever the order
-- that brought it.  A later order over the same days updates rows in
-- place; request_id says which request last wrote a row.  Rows of the test
-- environment (dummy data) go to the same tables in schema switchgrid_test.
-- ----------------------------------------------------------------

-- A time-of-day range, for off-peak hours ([22:30, 24:00) and [00:00, 06:30)).
CREATE TYPE switchgrid.timerange AS RANGE (subtype = time);

CREATE TABLE switchgrid.daily_energy (
    prm           text NOT NULL,
    direction     text NOT NULL,
    day           date NOT NULL,
    wh            bigint NOT NULL,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prm, direction, day)
);

CREATE TABLE switchgrid.max_power (
    prm           text NOT NULL,
    direction     text NOT NULL,
    day           date NOT NULL,
    va            integer NOT NULL,
    reached_at    timestamptz NOT NULL,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prm, direction, day)
);

CREATE TABLE switchgrid.indexes (
    prm           text NOT NULL,
    direction     text NOT NULL,
    read_at       timestamptz NOT NULL,
    cadran        text NOT NULL,
    day           date NOT NULL,
    total         boolean NOT NULL,
    calendar      text,
    calendar_label text,
    class_id      text,
    class_label   text,
    wh            bigint NOT NULL,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prm, direction, read_at, cadran)
);

CREATE TABLE switchgrid.billing (
    prm           text NOT NULL,
    direction     text NOT NULL,
    class         text NOT NULL,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    wh            bigint NOT NULL,
    nature        text,
    nature_label  text,
    class_label   text,
    calendar      text,
    calendar_label text,
    reading_reason text,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prm, direction, class, period_start)
);

CREATE TABLE switchgrid.contracts (
    prm           text NOT NULL PRIMARY KEY,
    contract_state text,
    segment       text,
    tariff        text,
    subscribed_kva numeric,
    connection_kva numeric,
    injection_connection_kva numeric,
    voltage_domain text,
    meter_type    text,
    off_peak_hours text,
    off_peak      switchgrid.timerange[],
    address       text,
    postal_code   text,
    city          text,
    raw           jsonb NOT NULL,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now()
);

-- Every table and column says what it holds, with its unit: BI tools show it.
COMMENT ON TABLE switchgrid.asks IS 'Asks (consent requests) created or looked up here, as last seen';
COMMENT ON COLUMN switchgrid.asks.ask_id IS 'Ask id (uuid)';
COMMENT ON COLUMN switchgrid.asks.status IS 'Ask status: CREATED, PENDING_USER_ACTION, ACCEPTED, ... (CANCELLED once cancelled here)';
COMMENT ON COLUMN switchgrid.asks.created_at IS 'When the Ask was created';
COMMENT ON COLUMN switchgrid.asks.accepted_at IS 'When the Ask was signed; NULL until then';
COMMENT ON COLUMN switchgrid.asks.user_url IS 'The consent form the end user signs';
COMMENT ON COLUMN switchgrid.asks.prms IS 'Delivery points (PRMs) the Ask covers';
COMMENT ON COLUMN switchgrid.asks.consent_ids IS 'Consent id of each PRM, {"<prm>": "<uuid>"}';
COMMENT ON COLUMN switchgrid.asks.raw IS 'The Ask as the API last returned it';
COMMENT ON COLUMN switchgrid.asks.first_seen IS 'When the Ask was first recorded here';
COMMENT ON COLUMN switchgrid.asks.updated_at IS 'When the Ask was last looked up';
COMMENT ON COLUMN switchgrid.asks.test_env IS 'Created with switchgrid.test_env (switchgrid-test-env header): its consents give dummy data';
COMMENT ON COLUMN switchgrid.asks.next_poll_at IS 'When the worker looks at it again; NULL: nothing left to wait for';
COMMENT ON COLUMN switchgrid.asks.polls IS 'Successful look-ups, a count';
COMMENT ON COLUMN switchgrid.asks.failures IS 'Failed look-ups in a row, a count';
COMMENT ON COLUMN switchgrid.asks.last_error IS 'The last look-up''s error; NULL after a success';

COMMENT ON TABLE switchgrid.orders IS 'Orders placed or looked up here, as last seen';
COMMENT ON COLUMN switchgrid.orders.order_id IS 'Order id (uuid)';
COMMENT ON COLUMN switchgrid.orders.consent_id IS 'Consent the Order was placed with; NULL if placed with PRMs';
COMMENT ON COLUMN switchgrid.orders.status IS 'Order status: PENDING_REQUESTS, SUCCESS, SOME_REQUESTS_FAILED, ...';
COMMENT ON COLUMN switchgrid.orders.created_at IS 'When the Order was created';
COMMENT ON COLUMN switchgrid.orders.finished_at IS 'When the Order was terminal and every result stored; NULL until then';
COMMENT ON COLUMN switchgrid.orders.raw IS 'The Order as the API last returned it';
COMMENT ON COLUMN switchgrid.orders.first_seen IS 'When the Order was first recorded here';
COMMENT ON COLUMN switchgrid.orders.updated_at IS 'When the Order was last looked up';
COMMENT ON COLUMN switchgrid.orders.next_poll_at IS 'When the worker looks at it again; NULL: nothing left to wait for';
COMMENT ON COLUMN switchgrid.orders.polls IS 'Successful look-ups, a count';
COMMENT ON COLUMN switchgrid.orders.failures IS 'Failed look-ups in a row, a count';
COMMENT ON COLUMN switchgrid.orders.last_error IS 'The last look-up''s error; NULL after a success';

COMMENT ON TABLE switchgrid.requests IS 'Requests of the recorded Orders, their status and their downloaded data';
COMMENT ON COLUMN switchgrid.requests.request_id IS 'Request id (uuid)';
COMMENT ON COLUMN switchgrid.requests.order_id IS 'The Order it belongs to';
COMMENT ON COLUMN switchgrid.requests.position IS 'Index in the Order''s requests, from 0';
COMMENT ON COLUMN switchgrid.requests.type IS 'Request type: LOADCURVE, R63, R64, R65, R66, R67, C68, ... (with _SYNC/_ASYNC variants)';
COMMENT ON COLUMN switchgrid.requests.prms IS 'Delivery points (PRMs) of the request';
COMMENT ON COLUMN switchgrid.requests.direction IS 'Direction as the request called it: CONSUMPTION, SOUTIRAGE or INJECTION; NULL: the default';
COMMENT ON COLUMN switchgrid.requests.since IS 'Start of the requested period';
COMMENT ON COLUMN switchgrid.requests.until IS 'End of the requested period';
COMMENT ON COLUMN switchgrid.requests.retry_after_activation IS 'Ordered with enedisRetryAfterLoadcurveActivation';
COMMENT ON COLUMN switchgrid.requests.status IS 'Request status: NOT_STARTED, PENDING, SUCCESS, FAILED, ...';
COMMENT ON COLUMN switchgrid.requests.ordered_at IS 'When the request was ordered';
COMMENT ON COLUMN switchgrid.requests.completed_at IS 'When the request completed at Switchgrid';
COMMENT ON COLUMN switchgrid.requests.data_url IS 'Where its raw data is (dataUrl)';
COMMENT ON COLUMN switchgrid.requests.error_message IS 'Why it failed, as Switchgrid or Enedis says (often in French)';
COMMENT ON COLUMN switchgrid.requests.raw IS 'The request object as the API last returned it';
COMMENT ON COLUMN switchgrid.requests.data IS 'The raw Enedis JSON of a non-load-curve request, as downloaded';
COMMENT ON COLUMN switchgrid.requests.rows_stored IS 'Rows written to its dataset table (switchgrid.loadcurve, switchgrid.daily_energy, ...), a count; NULL: none';
COMMENT ON COLUMN switchgrid.requests.fetched_at IS 'When its result was stored; NULL: not yet';
COMMENT ON COLUMN switchgrid.requests.next_fetch_at IS 'When the worker downloads it; NULL: nothing to download';
COMMENT ON COLUMN switchgrid.requests.fetches IS 'Downloads stored, a count';
COMMENT ON COLUMN switchgrid.requests.failures IS 'Failed downloads in a row, a count';
COMMENT ON COLUMN switchgrid.requests.last_error IS 'The last download''s error, or why its data could not be read into its dataset table';
COMMENT ON COLUMN switchgrid.requests.updated_at IS 'When the row last changed';

COMMENT ON TABLE switchgrid.loadcurve IS
'Load curves (LOADCURVE, R63, R63_SYNC): one consolidated series per meter and direction; test-environment rows are in switchgrid_test.loadcurve';
COMMENT ON COLUMN switchgrid.loadcurve.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.loadcurve.direction IS 'CONSUMPTION or INJECTION';
COMMENT ON COLUMN switchgrid.loadcurve.ts IS 'Start of the step (UTC instant)';
COMMENT ON COLUMN switchgrid.loadcurve.power_w IS 'Mean active power over the step, in W; NULL: no measure';
COMMENT ON COLUMN switchgrid.loadcurve.request_id IS 'The request that last wrote this point (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.loadcurve.fetched_at IS 'When this point was last written';
COMMENT ON COLUMN switchgrid.loadcurve.step_s IS 'Length of the step, in seconds (600 for PT10M); NULL: unknown (a row kept from 0.1.0 that its neighbours do not tell)';
COMMENT ON COLUMN switchgrid.loadcurve.wh IS 'Energy of the step, in Wh: power_w times step_s / 3600';

COMMENT ON TABLE switchgrid.webhook_events IS 'Webhook deliveries received by switchgrid_webhook(), kept switchgrid.webhook_retention';
COMMENT ON COLUMN switchgrid.webhook_events.event_id IS 'Arrival order';
COMMENT ON COLUMN switchgrid.webhook_events.received_at IS 'When it was received';
COMMENT ON COLUMN switchgrid.webhook_events.tag IS 'Event tag: ask.accepted, order.request_success, order.request_failed';
COMMENT ON COLUMN switchgrid.webhook_events.created_at IS 'When Switchgrid created the event';
COMMENT ON COLUMN switchgrid.webhook_events.ask_id IS 'The Ask it names, if any';
COMMENT ON COLUMN switchgrid.webhook_events.order_id IS 'The Order it names, if any';
COMMENT ON COLUMN switchgrid.webhook_events.request_id IS 'The request it names, if any';
COMMENT ON COLUMN switchgrid.webhook_events.request_type IS 'The type of the request it names, if any';
COMMENT ON COLUMN switchgrid.webhook_events.payload IS 'The delivery as received';
COMMENT ON COLUMN switchgrid.webhook_events.handled_at IS 'When the worker took it; NULL: not yet';


COMMENT ON TABLE switchgrid.daily_energy IS
'Daily energy of a meter (R65, R65_SYNC): one row per meter, direction and Paris day; test-environment rows are in switchgrid_test.daily_energy';
COMMENT ON COLUMN switchgrid.daily_energy.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.daily_energy.direction IS 'CONSUMPTION (soutirage) or INJECTION';
COMMENT ON COLUMN switchgrid.daily_energy.day IS 'The Enedis day: a calendar date in Europe/Paris (23 or 25 hours on DST days)';
COMMENT ON COLUMN switchgrid.daily_energy.wh IS 'Active energy over the day, in Wh (difference of the day''s indexes)';
COMMENT ON COLUMN switchgrid.daily_energy.request_id IS 'The request that last wrote this row (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.daily_energy.fetched_at IS 'When this row was last written';

COMMENT ON TABLE switchgrid.max_power IS
'Daily maximum apparent power of a meter (R66, R66_SYNC): one row per meter, direction and Paris day; test-environment rows are in switchgrid_test.max_power';
COMMENT ON COLUMN switchgrid.max_power.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.max_power.direction IS 'CONSUMPTION (soutirage) or INJECTION';
COMMENT ON COLUMN switchgrid.max_power.day IS 'The Enedis day: a calendar date in Europe/Paris';
COMMENT ON COLUMN switchgrid.max_power.va IS 'Maximum apparent power reached during the day, in VA';
COMMENT ON COLUMN switchgrid.max_power.reached_at IS 'When the maximum was reached (Enedis gives Paris local time)';
COMMENT ON COLUMN switchgrid.max_power.request_id IS 'The request that last wrote this row (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.max_power.fetched_at IS 'When this row was last written';

COMMENT ON TABLE switchgrid.indexes IS
'Daily meter indexes (R64, R64_SYNC): one row per meter, direction, reading time and register (cadran); test-environment rows are in switchgrid_test.indexes';
COMMENT ON COLUMN switchgrid.indexes.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.indexes.direction IS 'CONSUMPTION (soutirage) or INJECTION';
COMMENT ON COLUMN switchgrid.indexes.read_at IS 'When the index was read (Enedis gives Paris local time, usually midnight)';
COMMENT ON COLUMN switchgrid.indexes.cadran IS 'Register code (codeCadran), e.g. IDX_EAS_F1; the totaliser is IDX_EAS_T (IDX_EAI_T for injection)';
COMMENT ON COLUMN switchgrid.indexes.day IS 'The Paris calendar date of read_at';
COMMENT ON COLUMN switchgrid.indexes.total IS 'True for the totaliser (cadranTotalisateur), which counts every class';
COMMENT ON COLUMN switchgrid.indexes.calendar IS 'Calendar id (idCalendrier); NULL for the totaliser';
COMMENT ON COLUMN switchgrid.indexes.calendar_label IS 'Calendar label (libelleCalendrier); NULL for the totaliser';
COMMENT ON COLUMN switchgrid.indexes.class_id IS 'Tariff class id (idClasseTemporelle), e.g. HP, HC, BASE; NULL for the totaliser';
COMMENT ON COLUMN switchgrid.indexes.class_label IS 'Tariff class label (libelleClasseTemporelle), e.g. Heures Creuses';
COMMENT ON COLUMN switchgrid.indexes.wh IS 'Cumulative index of the register, in Wh';
COMMENT ON COLUMN switchgrid.indexes.request_id IS 'The request that last wrote this row (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.indexes.fetched_at IS 'When this row was last written';

COMMENT ON TABLE switchgrid.billing IS
'Billing quantities (R67): energy per tariff class and billing period; test-environment rows are in switchgrid_test.billing';
COMMENT ON COLUMN switchgrid.billing.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.billing.direction IS 'CONSUMPTION (soutirage) or INJECTION';
COMMENT ON COLUMN switchgrid.billing.class IS 'Tariff class id (idClasseTemporelle), e.g. HP, HC, BASE';
COMMENT ON COLUMN switchgrid.billing.period_start IS 'First day of the period (dbtMesure), a Paris calendar date';
COMMENT ON COLUMN switchgrid.billing.period_end IS 'End of the period, exclusive (finMesure), a Paris calendar date';
COMMENT ON COLUMN switchgrid.billing.wh IS 'Active energy of the class over the period, in Wh';
COMMENT ON COLUMN switchgrid.billing.nature IS 'Nature of the quantity (codeNature): REEL, ESTIME, ...';
COMMENT ON COLUMN switchgrid.billing.nature_label IS 'Label of the nature (libelleNature)';
COMMENT ON COLUMN switchgrid.billing.class_label IS 'Tariff class label (libelleClasseTemporelle)';
COMMENT ON COLUMN switchgrid.billing.calendar IS 'Calendar code (codeCalendrier)';
COMMENT ON COLUMN switchgrid.billing.calendar_label IS 'Calendar label (libelleCalendrier)';
COMMENT ON COLUMN switchgrid.billing.reading_reason IS 'Why the meter was read (idMotifReleve), e.g. CYC for the cyclic reading';
COMMENT ON COLUMN switchgrid.billing.request_id IS 'The request that last wrote this row (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.billing.fetched_at IS 'When this row was last written';

COMMENT ON TABLE switchgrid.contracts IS
'Contractual data of a meter (C68, C68_ASYNC): one row per PRM, the latest known; test-environment rows are in switchgrid_test.contracts';
COMMENT ON COLUMN switchgrid.contracts.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.contracts.contract_state IS 'Contract state code (etatContractuel), e.g. SERVC: in service';
COMMENT ON COLUMN switchgrid.contracts.segment IS 'Enedis customer segment, e.g. C5 (up to 36 kVA), C4';
COMMENT ON COLUMN switchgrid.contracts.tariff IS 'Distribution tariff code (formule tarifaire d''acheminement, FTA), e.g. BTINFCUST';
COMMENT ON COLUMN switchgrid.contracts.subscribed_kva IS 'Subscribed power (puissance souscrite), in kVA';
COMMENT ON COLUMN switchgrid.contracts.connection_kva IS 'Connection power for consumption (puissance de raccordement soutirage), in kVA';
COMMENT ON COLUMN switchgrid.contracts.injection_connection_kva IS 'Connection power for injection, in kVA; NULL without injection';
COMMENT ON COLUMN switchgrid.contracts.voltage_domain IS 'Voltage domain code (domaineTension), e.g. BTINF (low voltage up to 36 kVA)';
COMMENT ON COLUMN switchgrid.contracts.meter_type IS 'Meter type code (typeComptage), e.g. LINKY';
COMMENT ON COLUMN switchgrid.contracts.off_peak_hours IS 'Off-peak hours as Enedis gives them (plageHeuresCreuses), e.g. HC (22H30-6H30)';
COMMENT ON COLUMN switchgrid.contracts.off_peak IS 'Off-peak hours as local (Paris) time-of-day ranges, split at midnight: {[22:30,24:00),[00:00,06:30)}';
COMMENT ON COLUMN switchgrid.contracts.address IS 'Installation address: street, postal code and town';
COMMENT ON COLUMN switchgrid.contracts.postal_code IS 'Postal code of the installation';
COMMENT ON COLUMN switchgrid.contracts.city IS 'Town of the installation';
COMMENT ON COLUMN switchgrid.contracts.raw IS 'The contract object as Enedis gave it';
COMMENT ON COLUMN switchgrid.contracts.request_id IS 'The request that last wrote this row (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.contracts.fetched_at IS 'When this row was last written';

-- The test environment: an Order whose data is dummy (orders.test_env)
-- stores its rows here, in tables shaped like switchgrid's, so that they
-- never overwrite, mix with or hide a meter's real rows.  Queries on
-- switchgrid.* see real data only; test data is read by naming
-- switchgrid_test.*.  switchgrid_test.loadcurve follows switchgrid.loadcurve:
-- a change to one is a change to both.
CREATE SCHEMA switchgrid_test;
REVOKE ALL ON SCHEMA switchgrid_test FROM PUBLIC;
COMMENT ON SCHEMA switchgrid_test IS
'Rows of the test environment (dummy data of Orders flagged test_env), in tables shaped like those of schema switchgrid';
CREATE TABLE switchgrid_test.loadcurve (LIKE switchgrid.loadcurve INCLUDING ALL);
CREATE TABLE switchgrid_test.daily_energy (LIKE switchgrid.daily_energy INCLUDING ALL);
CREATE TABLE switchgrid_test.max_power (LIKE switchgrid.max_power INCLUDING ALL);
CREATE TABLE switchgrid_test.indexes (LIKE switchgrid.indexes INCLUDING ALL);
CREATE TABLE switchgrid_test.billing (LIKE switchgrid.billing INCLUDING ALL);
CREATE TABLE switchgrid_test.contracts (LIKE switchgrid.contracts INCLUDING ALL);
COMMENT ON TABLE switchgrid_test.loadcurve IS 'Load curves of the test environment (dummy data); see switchgrid.loadcurve';
COMMENT ON TABLE switchgrid_test.daily_energy IS 'Daily energies of the test environment (dummy data); see switchgrid.daily_energy';
COMMENT ON TABLE switchgrid_test.max_power IS 'Daily maximum powers of the test environment (dummy data); see switchgrid.max_power';
COMMENT ON TABLE switchgrid_test.indexes IS 'Daily indexes of the test environment (dummy data); see switchgrid.indexes';
COMMENT ON TABLE switchgrid_test.billing IS 'Billing quantities of the test environment (dummy data); see switchgrid.billing';
COMMENT ON TABLE switchgrid_test.contracts IS 'Contractual data of the test environment (dummy data); see switchgrid.contracts';

SELECT pg_catalog.pg_extension_config_dump('switchgrid.daily_energy', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.max_power', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.indexes', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.billing', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.contracts', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.loadcurve', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.daily_energy', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.max_power', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.indexes', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.billing', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.contracts', '');

-- The typed datasets of a finished request, read without storing them:
-- the columns of the dataset's table but request_id and fetched_at.
CREATE FUNCTION switchgrid_daily_energy(order_id uuid, request_id uuid)
RETURNS TABLE(prm text, direction text, day date, wh bigint)
AS 'MODULE_PATHNAME', 'switchgrid_daily_energy'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION switchgrid_daily_energy(uuid, uuid) IS
'Daily energies in Wh of a finished R65 or R65_SYNC request, as rows of switchgrid.daily_energy; stores nothing';

CREATE FUNCTION switchgrid_max_power(order_id uuid, request_id uuid)
RETURNS TABLE(prm text, direction text, day date, va integer, reached_at timestamptz)
AS 'MODULE_PATHNAME', 'switchgrid_max_power'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION switchgrid_max_power(uuid, uuid) IS
'Daily maximum powers in VA of a finished R66 or R66_SYNC request, as rows of switchgrid.max_power; stores nothing';

CREATE FUNCTION switchgrid_indexes(order_id uuid, request_id uuid)
RETURNS TABLE(prm text, direction text, read_at timestamptz, cadran text, day date,
              total boolean, calendar text, calendar_label text, class_id text,
              class_label text, wh bigint)
AS 'MODULE_PATHNAME', 'switchgrid_indexes'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION switchgrid_indexes(uuid, uuid) IS
'Daily indexes in Wh of a finished R64 or R64_SYNC request, as rows of switchgrid.indexes; stores nothing';

CREATE FUNCTION switchgrid_billing(order_id uuid, request_id uuid)
RETURNS TABLE(prm text, direction text, class text, period_start date, period_end date,
              wh bigint, nature text, nature_label text, class_label text, calendar text,
              calendar_label text, reading_reason text)
AS 'MODULE_PATHNAME', 'switchgrid_billing'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION switchgrid_billing(uuid, uuid) IS
'Billing quantities in Wh of a finished R67 request, as rows of switchgrid.billing; stores nothing';

CREATE FUNCTION switchgrid_contracts(order_id uuid, request_id uuid)
RETURNS TABLE(prm text, contract_state text, segment text, tariff text, subscribed_kva numeric,
              connection_kva numeric, injection_connection_kva numeric, voltage_domain text,
              meter_type text, off_peak_hours text, off_peak switchgrid.timerange[],
              address text, postal_code text, city text, raw jsonb)
AS 'MODULE_PATHNAME', 'switchgrid_contracts'
LANGUAGE C VOLATILE
ROWS 10;

COMMENT ON FUNCTION switchgrid_contracts(uuid, uuid) IS
'Contractual data of a finished C68 or C68_ASYNC request, as rows of switchgrid.contracts; stores nothing';

REVOKE EXECUTE ON FUNCTION
    switchgrid_daily_energy(uuid, uuid),
    switchgrid_max_power(uuid, uuid),
    switchgrid_indexes(uuid, uuid),
    switchgrid_billing(uuid, uuid),
    switchgrid_contracts(uuid, uuid)
FROM PUBLIC;

COMMENT ON VIEW switchgrid.pending IS 'What the worker is waiting on: Asks to sign, Orders to finish, results to download';
COMMENT ON COLUMN switchgrid.pending.kind IS 'ask, order or download';
COMMENT ON COLUMN switchgrid.pending.id IS 'Ask, Order or request id';
COMMENT ON COLUMN switchgrid.pending.order_id IS 'The Order (for an order or a download)';
COMMENT ON COLUMN switchgrid.pending.type IS 'Request type of a download';
COMMENT ON COLUMN switchgrid.pending.status IS 'Status as last seen';
COMMENT ON COLUMN switchgrid.pending.waiting_since IS 'Since when it has been waited on';
COMMENT ON COLUMN switchgrid.pending.next_attempt_at IS 'When the worker tries it next';
COMMENT ON COLUMN switchgrid.pending.attempts IS 'Look-ups or downloads so far, a count';
COMMENT ON COLUMN switchgrid.pending.last_error IS 'The last attempt''s error';
COMMENT ON COLUMN switchgrid.pending.followed IS 'Whether a switchgrid worker follows this database';
COMMENT ON COLUMN switchgrid.orders.test_env IS
'Dummy data of the test environment (placed with switchgrid.test_env, or with a consent of a test Ask): its rows go to schema switchgrid_test';

-- The load-curve points of test-environment Orders move to switchgrid_test.
WITH moved AS (
    DELETE FROM switchgrid.loadcurve l
    USING switchgrid.requests r, switchgrid.orders o
    WHERE l.request_id = r.request_id AND r.order_id = o.order_id AND o.test_env
    RETURNING l.*)
INSERT INTO switchgrid_test.loadcurve (prm, direction, ts, power_w, request_id, fetched_at, step_s)
SELECT prm, direction, ts, power_w, request_id, fetched_at, step_s FROM moved;

DROP FUNCTION switchgrid.record_order(jsonb, jsonb, uuid, interval, boolean);
-- Upserts an Order and its requests.  "sent" is the request array as it was
-- POSTed, if known: the API's answer may not repeat prms, direction and
-- period.  "poll_in" is when to look at the order again if not terminal;
-- "fetch" says whether finished requests should be downloaded.
-- "in_test_env" says whether it was placed with switchgrid.test_env (NULL:
-- unknown); an Order whose consent comes from a test Ask is of the test
-- environment too, and stays so.
CREATE FUNCTION switchgrid.record_order(o jsonb, sent jsonb DEFAULT NULL,
                                        consent uuid DEFAULT NULL,
                                        poll_in interval DEFAULT '1 second',
                                        do_fetch boolean DEFAULT true,
                                        in_test_env boolean DEFAULT NULL)
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
    cprms jsonb;
BEGIN
    INSERT INTO switchgrid.orders AS t (order_id, consent_id, status, created_at, raw, next_poll_at,
                                        test_env)
    VALUES (id, consent, o->>'status', switchgrid.api_time(o->>'createdAt'), o,
            CASE WHEN NOT terminal THEN now() + poll_in END,
            COALESCE(in_test_env, false)
            OR (consent IS NOT NULL AND switchgrid.consent_test_env(consent)))
    ON CONFLICT (order_id) DO UPDATE
    SET status = EXCLUDED.status, test_env = t.test_env OR EXCLUDED.test_env,
        consent_id = COALESCE(t.consent_id, EXCLUDED.consent_id),
        created_at = COALESCE(EXCLUDED.created_at, t.created_at),
        raw = EXCLUDED.raw, updated_at = now(), last_error = NULL, polls = t.polls + 1,
        failures = 0,
        next_poll_at = CASE WHEN t.finished_at IS NULL AND NOT terminal
                            THEN EXCLUDED.next_poll_at END
    -- an answer older than the one recorded (two look-ups racing) changes nothing
    WHERE NOT (t.status IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED')
               AND NOT terminal);
    -- a request of an Order by consent may name no PRM: its meter is the consent's
    SELECT switchgrid.consent_prms(t.consent_id) INTO cprms
    FROM switchgrid.orders t WHERE t.order_id = id;

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
                ARRAY(SELECT jsonb_array_elements_text(COALESCE(r->'prms', s->'prms', cprms, '[]'))),
                COALESCE(r->>'direction', s->>'direction'),
                switchgrid.api_instant(COALESCE(r->>'since', s->>'since')),
                switchgrid.api_instant(COALESCE(r->>'until', s->>'until')),
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


DROP FUNCTION switchgrid.store_data(uuid, jsonb);
-- ----------------------------------------------------------------
-- Payload readers: the raw Enedis JSON of a request as rows of its dataset
-- table.  Written once, used both to store a request
-- (switchgrid.store_data) and to read one without storing it
-- (switchgrid_daily_energy() and the like).  A payload that does not have
-- the shape its type promises raises protocol_violation (08P01), naming
-- the request and what is wrong.
-- ----------------------------------------------------------------

-- Raises the error for a payload that is not what its type promises; typed
-- like "hint" so that it can stand where a value is expected.  Volatile, so
-- that it is never evaluated ahead of the CASE that guards it.
CREATE FUNCTION switchgrid.malformed(req uuid, detail text, hint anyelement)
RETURNS anyelement
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'malformed data of request %', req
        USING ERRCODE = 'protocol_violation', DETAIL = detail;
END $$;

-- "v" if it is a JSON array; '[]' if it is absent and "optional"; raises otherwise.
CREATE FUNCTION switchgrid.payload_array(v jsonb, what text, req uuid,
                                         optional boolean DEFAULT false)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN v
                WHEN optional AND (v IS NULL OR jsonb_typeof(v) = 'null') THEN '[]'::jsonb
                WHEN v IS NULL THEN switchgrid.malformed(req, format('%s is missing.', what), NULL::jsonb)
                ELSE switchgrid.malformed(req, format('%s is a JSON %s, not an array.', what,
                                                      jsonb_typeof(v)),
                                          NULL::jsonb) END;
$$;

-- A JSON string that is a PRM (14 digits).
CREATE FUNCTION switchgrid.payload_prm(v jsonb, req uuid)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'string' AND v #>> '{}' ~ '^[0-9]{14}$' THEN v #>> '{}'
                WHEN v IS NULL THEN switchgrid.malformed(req, 'A PRM (idPrm or id) is missing.', NULL::text)
                ELSE switchgrid.malformed(req, format('The PRM %s is not 14 digits.', v::text),
                                          NULL::text) END;
$$;

-- A JSON string (NULL if absent and "optional").
CREATE FUNCTION switchgrid.payload_text(v jsonb, what text, req uuid, optional boolean DEFAULT false)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}'
                WHEN optional AND (v IS NULL OR jsonb_typeof(v) = 'null') THEN NULL
                ELSE switchgrid.malformed(req, format('%s is %s, not a string.', what,
                                                      COALESCE(v::text, 'missing')),
                                          NULL::text) END;
$$;

-- An integer, given as a JSON number or as a string of digits (Enedis
-- writes both), times "scale" (1000 for a value in kWh or kVA).
CREATE FUNCTION switchgrid.payload_int(v jsonb, what text, req uuid, scale integer DEFAULT 1)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) IN ('number', 'string') AND v #>> '{}' ~ '^\s*-?[0-9]{1,15}\s*$'
                THEN (v #>> '{}')::bigint * scale
                ELSE switchgrid.malformed(req, format('%s is %s, not an integer.', what,
                                                      COALESCE(v::text, 'missing')),
                                          NULL::bigint) END;
$$;

-- A decimal number, given as a JSON number or a string; NULL if absent.
CREATE FUNCTION switchgrid.payload_numeric(v jsonb, what text, req uuid)
RETURNS numeric
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v IS NULL OR jsonb_typeof(v) = 'null' THEN NULL
                WHEN jsonb_typeof(v) IN ('number', 'string')
                     AND v #>> '{}' ~ '^\s*-?[0-9]{1,12}([.,][0-9]{1,6})?\s*$'
                THEN replace(v #>> '{}', ',', '.')::numeric
                ELSE switchgrid.malformed(req, format('%s is %s, not a number.', what, v::text),
                                          NULL::numeric) END;
$$;

-- How many base units one unit of "unite" is: 1 for "base" (or no unit
-- given), 1000 for k<base>; raises for anything else.
CREATE FUNCTION switchgrid.payload_scale(unite jsonb, base text, req uuid)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN unite IS NULL OR jsonb_typeof(unite) = 'null' OR unite #>> '{}' = base THEN 1
                WHEN unite #>> '{}' = 'k' || base THEN 1000
                ELSE switchgrid.malformed(req, format('The unit is %s, not %s.', unite::text, base),
                                          NULL::integer) END;
$$;

-- CONSUMPTION or INJECTION, from Enedis' grandeurMetier (CONS, PROD).
CREATE FUNCTION switchgrid.payload_direction(v jsonb, req uuid)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE v #>> '{}' WHEN 'CONS' THEN 'CONSUMPTION' WHEN 'PROD' THEN 'INJECTION'
                ELSE switchgrid.malformed(req, format('grandeurMetier is %s, not CONS or PROD.',
                                                      COALESCE(v::text, 'missing')),
                                          NULL::text) END;
$$;

-- A calendar date, "YYYY-MM-DD" (anything after the date, a time, is ignored).
CREATE FUNCTION switchgrid.payload_date(v jsonb, what text, req uuid)
RETURNS date
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(v) = 'string' AND v #>> '{}' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}($|[ T])' THEN
        RETURN left(v #>> '{}', 10)::date;
    END IF;
    RETURN switchgrid.malformed(req, format('%s is %s, not a date.', what,
                                            COALESCE(v::text, 'missing')), NULL::date);
EXCEPTION WHEN data_exception THEN
    -- the shape of a date, but none that exists (2024-02-30)
    RETURN switchgrid.malformed(req, format('%s is %s, not a date.', what, v::text), NULL::date);
END $$;

-- An Enedis time stamp: Paris local time without an offset
-- ("2023-04-01 09:13:20"), or with one.  An hour repeated when DST ends is
-- read as the first of the two.
CREATE FUNCTION switchgrid.payload_time(v jsonb, what text, req uuid)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(v) <> 'string'
       OR v #>> '{}' !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$' THEN
        RETURN switchgrid.malformed(req, format('%s is %s, not a date and time.', what,
                                                COALESCE(v::text, 'missing')), NULL::timestamptz);
    ELSIF v #>> '{}' ~ '(Z|[+-][0-9]{2}:?[0-9]{2})$' THEN
        RETURN (v #>> '{}')::timestamptz;
    END IF;
    RETURN (v #>> '{}')::timestamp AT TIME ZONE 'Europe/Paris';
EXCEPTION WHEN data_exception THEN
    -- the shape of a date and time, but none that exists (2024-02-30 25:61)
    RETURN switchgrid.malformed(req, format('%s is %s, not a date and time.', what, v::text),
                                NULL::timestamptz);
END $$;

-- Off-peak hours as Enedis writes them, "HC (22H30-6H30)" or
-- "HC (1H30-7H30;12H30-14H30)", as time-of-day ranges; a range across
-- midnight is split in two.  NULL if none can be read.
CREATE FUNCTION switchgrid.off_peak_ranges(s text)
RETURNS switchgrid.timerange[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NULLIF(array_agg(r ORDER BY lower(r)), '{}')
    FROM (SELECT make_time(m[1]::int, COALESCE(m[2], '0')::int, 0) AS a,
                 make_time(m[3]::int, COALESCE(m[4], '0')::int, 0) AS b
          FROM regexp_matches(upper(s), '([0-9]{1,2})H([0-9]{2})?\s*-\s*([0-9]{1,2})H([0-9]{2})?', 'g') m
          WHERE m[1]::int < 24 AND m[3]::int <= 24 AND COALESCE(m[2], '0')::int < 60
            AND COALESCE(m[4], '0')::int < 60) x,
         LATERAL (SELECT switchgrid.timerange(a, b) WHERE a < b
                  UNION ALL SELECT switchgrid.timerange(a, '24:00') WHERE a > b
                  UNION ALL SELECT switchgrid.timerange('00:00', b) WHERE a > b AND b > '00:00') AS y(r);
$$;

-- R65, R65_SYNC: {"mesures": [{"idPrm", "grandeur": [{"grandeurMetier",
-- "unite", "points": [{"v": "22125", "d": "2023-04-01"}]}]}]}
CREATE FUNCTION switchgrid.daily_energy_rows(payload jsonb, req uuid)
RETURNS TABLE(prm text, direction text, day date, wh bigint, request_id uuid)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT switchgrid.payload_prm(m->'idPrm', req),
           switchgrid.payload_direction(g->'grandeurMetier', req),
           switchgrid.payload_date(p->'d', 'A point''s "d"', req),
           switchgrid.payload_int(p->'v', 'A point''s "v"', req,
                                  switchgrid.payload_scale(g->'unite', 'Wh', req)),
           req
    FROM jsonb_array_elements(switchgrid.payload_array(payload->'mesures', '"mesures"', req)) m,
         jsonb_array_elements(switchgrid.payload_array(m->'grandeur', '"grandeur"', req)) g,
         jsonb_array_elements(switchgrid.payload_array(g->'points', '"points"', req)) p;
$$;

-- R66, R66_SYNC: as R65, "d" being when the maximum was reached.
CREATE FUNCTION switchgrid.max_power_rows(payload jsonb, req uuid)
RETURNS TABLE(prm text, direction text, day date, va integer, reached_at timestamptz,
              request_id uuid)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT switchgrid.payload_prm(m->'idPrm', req),
           switchgrid.payload_direction(g->'grandeurMetier', req),
           switchgrid.payload_date(p->'d', 'A point''s "d"', req),
           switchgrid.payload_int(p->'v', 'A point''s "v"', req,
                                  switchgrid.payload_scale(g->'unite', 'VA', req))::integer,
           switchgrid.payload_time(p->'d', 'A point''s "d"', req),
           req
    FROM jsonb_array_elements(switchgrid.payload_array(payload->'mesures', '"mesures"', req)) m,
         jsonb_array_elements(switchgrid.payload_array(m->'grandeur', '"grandeur"', req)) g,
         jsonb_array_elements(switchgrid.payload_array(g->'points', '"points"', req)) p;
$$;

-- R64, R64_SYNC: per context and quantity, the classes of each calendar
-- and the totaliser (cadranTotalisateur), each with its readings.
CREATE FUNCTION switchgrid.indexes_rows(payload jsonb, req uuid)
RETURNS TABLE(prm text, direction text, read_at timestamptz, cadran text, day date,
              total boolean, calendar text, calendar_label text, class_id text,
              class_label text, wh bigint, request_id uuid)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT switchgrid.payload_prm(m->'idPrm', req),
           switchgrid.payload_direction(g->'grandeurMetier', req),
           switchgrid.payload_time(x.v->'d', 'An index''s "d"', req),
           switchgrid.payload_text(x.cadran, '"codeCadran"', req),
           switchgrid.payload_date(x.v->'d', 'An index''s "d"', req),
           x.total,
           switchgrid.payload_text(x.cal->'idCalendrier', '"idCalendrier"', req, true),
           switchgrid.payload_text(x.cal->'libelleCalendrier', '"libelleCalendrier"', req, true),
           switchgrid.payload_text(x.cl->'idClasseTemporelle', '"idClasseTemporelle"', req, true),
           switchgrid.payload_text(x.cl->'libelleClasseTemporelle', '"libelleClasseTemporelle"', req, true),
           switchgrid.payload_int(x.v->'v', 'An index''s "v"', req,
                                  switchgrid.payload_scale(g->'unite', 'Wh', req)),
           req
    FROM jsonb_array_elements(switchgrid.payload_array(payload->'mesures', '"mesures"', req)) m,
         jsonb_array_elements(switchgrid.payload_array(m->'contexte', '"contexte"', req)) c,
         jsonb_array_elements(switchgrid.payload_array(c->'grandeur', '"grandeur"', req)) g,
         LATERAL (
             SELECT cal, cl, cl->'codeCadran' AS cadran, false AS total, v
             FROM jsonb_array_elements(switchgrid.payload_array(g->'calendrier', '"calendrier"', req, true)) cal,
                  jsonb_array_elements(switchgrid.payload_array(cal->'classeTemporelle', '"classeTemporelle"', req)) cl,
                  jsonb_array_elements(switchgrid.payload_array(cl->'valeur', '"valeur"', req)) v
             UNION ALL
             SELECT NULL, NULL, g->'cadranTotalisateur'->'codeCadran', true, v
             FROM jsonb_array_elements(switchgrid.payload_array(g->'cadranTotalisateur'->'valeur',
                                                                '"cadranTotalisateur"."valeur"', req,
                                                                g->'cadranTotalisateur' IS NULL)) v
         ) x;
$$;

-- R67: per context and quantity, the classes of each calendar, each with
-- its quantities over billing periods.
CREATE FUNCTION switchgrid.billing_rows(payload jsonb, req uuid)
RETURNS TABLE(prm text, direction text, class text, period_start date, period_end date,
              wh bigint, nature text, nature_label text, class_label text, calendar text,
              calendar_label text, reading_reason text, request_id uuid)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT switchgrid.payload_prm(m->'idPrm', req),
           switchgrid.payload_direction(g->'grandeurMetier', req),
           switchgrid.payload_text(cl->'idClasseTemporelle', '"idClasseTemporelle"', req),
           switchgrid.payload_date(q->'dbtMesure', '"dbtMesure"', req),
           switchgrid.payload_date(q->'finMesure', '"finMesure"', req),
           switchgrid.payload_int(q->'quantite', '"quantite"', req,
                                  switchgrid.payload_scale(g->'unite', 'Wh', req)),
           switchgrid.payload_text(q->'codeNature', '"codeNature"', req, true),
           switchgrid.payload_text(q->'libelleNature', '"libelleNature"', req, true),
           switchgrid.payload_text(cl->'libelleClasseTemporelle', '"libelleClasseTemporelle"', req, true),
           switchgrid.payload_text(cal->'codeCalendrier', '"codeCalendrier"', req, true),
           switchgrid.payload_text(cal->'libelleCalendrier', '"libelleCalendrier"', req, true),
           switchgrid.payload_text(c->'idMotifReleve', '"idMotifReleve"', req, true),
           req
    FROM jsonb_array_elements(switchgrid.payload_array(payload->'mesures', '"mesures"', req)) m,
         jsonb_array_elements(switchgrid.payload_array(m->'contexte', '"contexte"', req)) c,
         jsonb_array_elements(switchgrid.payload_array(c->'grandeur', '"grandeur"', req)) g,
         jsonb_array_elements(switchgrid.payload_array(g->'calendrier', '"calendrier"', req)) cal,
         jsonb_array_elements(switchgrid.payload_array(cal->'classeTemporelle', '"classeTemporelle"', req)) cl,
         jsonb_array_elements(switchgrid.payload_array(cl->'quantite', '"quantite"', req)) q;
$$;

-- C68: {"point": {...}} (an array of them for several PRMs); C68_ASYNC: an
-- array of {"idPrm", ..., "situationsContractuelles": [...]}, whose last
-- contractual situation is the current one.
CREATE FUNCTION switchgrid.contracts_rows(payload jsonb, req uuid)
RETURNS TABLE(prm text, contract_state text, segment text, tariff text, subscribed_kva numeric,
              connection_kva numeric, injection_connection_kva numeric, voltage_domain text,
              meter_type text, off_peak_hours text, off_peak switchgrid.timerange[],
              address text, postal_code text, city text, raw jsonb, request_id uuid)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT switchgrid.payload_prm(COALESCE(p->'id', p->'idPrm'), req),
           switchgrid.payload_text(p->'donneesGenerales'->'etatContractuel'->'code', '"etatContractuel"', req, true),
           switchgrid.payload_text(p->'donneesGenerales'->'segment'->'code', '"segment"', req, true),
           switchgrid.payload_text(t->'formuleTarifaireAcheminement'->'code', '"formuleTarifaireAcheminement"', req, true),
           switchgrid.payload_numeric(t->'puissanceSouscriteMax'->'valeur', '"puissanceSouscriteMax"', req)
               * switchgrid.payload_scale(t->'puissanceSouscriteMax'->'unite', 'kVA', req),
           switchgrid.payload_numeric(a->'puissanceRaccordementSoutirage'->'valeur', '"puissanceRaccordementSoutirage"', req)
               * switchgrid.payload_scale(a->'puissanceRaccordementSoutirage'->'unite', 'kVA', req),
           switchgrid.payload_numeric(a->'puissanceRaccordementInjection'->'valeur', '"puissanceRaccordementInjection"', req)
               * switchgrid.payload_scale(a->'puissanceRaccordementInjection'->'unite', 'kVA', req),
           switchgrid.payload_text(a->'domaineTension'->'code', '"domaineTension"', req, true),
           switchgrid.payload_text(p->'situationComptage'->'dispositifComptage'->'typeComptage'->'code', '"typeComptage"', req, true),
           hc,
           switchgrid.off_peak_ranges(hc),
           NULLIF(concat_ws(' ', ad->>'numeroEtNomVoie', ad->>'codePostal', ad->'commune'->>'libelle'), ''),
           ad->>'codePostal', ad->'commune'->>'libelle',
           p, req
    FROM jsonb_array_elements(CASE jsonb_typeof(payload)
                                  WHEN 'array' THEN payload
                                  WHEN 'object' THEN jsonb_build_array(payload)
                                  ELSE switchgrid.malformed(req, 'The payload is neither an object nor an array.',
                                                            NULL::jsonb) END) e,
         LATERAL (SELECT CASE WHEN jsonb_typeof(e) <> 'object'
                              THEN switchgrid.malformed(req, 'A contract is not an object.', NULL::jsonb)
                              ELSE COALESCE(e->'point', e) END AS p) pt,
         LATERAL (SELECT COALESCE(p->'situationContractuelle'->'structureTarifaire',
                                  switchgrid.payload_array(p->'situationsContractuelles',
                                                           '"situationsContractuelles"', req, true)
                                      -> -1 -> 'structureTarifaire') AS t,
                         p->'situationAlimentation'->'alimentationPrincipale' AS a,
                         p->'donneesGenerales'->'adresseInstallation' AS ad,
                         switchgrid.payload_text(p->'situationComptage'->'dispositifComptage'->'relais'->'plageHeuresCreuses',
                                                 '"plageHeuresCreuses"', req, true) AS hc) f;
$$;

-- Writes the rows of a request's payload into the table of its dataset
-- (daily_energy, max_power, indexes, billing or contracts) in schema
-- "target" (switchgrid, or switchgrid_test for the test environment), as
-- one statement: a later order over the same keys updates rows in place.
-- The key is the table's primary key; every other column but fetched_at
-- comes from switchgrid.<dataset>_rows().  Returns the rows written.
CREATE FUNCTION switchgrid.store_rows(req uuid, payload jsonb, dataset text, target name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tab regclass := format('switchgrid.%I', dataset)::regclass;
    keys text;
    cols text;
    sets text;
    n bigint;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) INTO keys
    FROM pg_index x, unnest(x.indkey) WITH ORDINALITY AS k(attnum, i), pg_attribute a
    WHERE x.indrelid = tab AND x.indisprimary AND a.attrelid = tab AND a.attnum = k.attnum;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum)
    INTO cols, sets
    FROM pg_attribute a
    WHERE a.attrelid = tab AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'fetched_at';
    EXECUTE format('INSERT INTO %I.%I AS t (%s) '
                   'SELECT DISTINCT ON (%s) %s FROM switchgrid.%I($1, $2) ORDER BY %s '
                   'ON CONFLICT (%s) DO UPDATE SET %s, fetched_at = now()',
                   target, dataset, cols, keys, cols, dataset || '_rows', keys, keys, sets)
    USING payload, req;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Stores the raw payload of a non-LOADCURVE request and, when its type has
-- one, its rows in the table of its dataset: all of them or none.  A
-- payload that does not have the shape its type promises is kept raw, and
-- last_error says why it has no rows; it is not downloaded again (the same
-- file would fail the same way).
CREATE FUNCTION switchgrid.store_data(req uuid, payload jsonb, dataset text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n bigint;
    err text;
    msg text;
    detail text;
    target name;
BEGIN
    PERFORM 1 FROM switchgrid.orders
    WHERE order_id = (SELECT order_id FROM switchgrid.requests WHERE request_id = req) FOR UPDATE;
    SELECT * INTO r FROM switchgrid.requests WHERE request_id = req FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % is not recorded', req;
    END IF;
    IF dataset IS NOT NULL THEN
        target := CASE WHEN (SELECT o.test_env FROM switchgrid.orders o WHERE o.order_id = r.order_id)
                       THEN 'switchgrid_test' ELSE 'switchgrid' END;
        BEGIN
            n := switchgrid.store_rows(req, payload, dataset, target);
        EXCEPTION WHEN protocol_violation OR data_exception THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
            err := msg || CASE WHEN detail <> '' THEN ': ' || detail ELSE '' END;
            RAISE WARNING '%', msg
                USING DETAIL = CASE WHEN detail <> '' THEN detail || ' ' ELSE '' END
                               || format('Its payload is kept in switchgrid.requests.data, without rows in %I.%I.',
                                         target, dataset);
        END;
    END IF;
    UPDATE switchgrid.requests
    SET data = payload, rows_stored = n, failures = 0, fetched_at = now(), next_fetch_at = NULL,
        last_error = err, fetches = fetches + 1, updated_at = now()
    WHERE request_id = req;
    IF r.fetched_at IS NULL THEN
        PERFORM switchgrid.notify('request.finished',
            jsonb_build_object('order_id', r.order_id, 'request_id', req, 'type', r.type,
                               'status', 'SUCCESS', 'stored', true)
            || CASE WHEN n IS NOT NULL THEN jsonb_build_object('rows', n) ELSE '{}' END
            || CASE WHEN err IS NOT NULL THEN jsonb_build_object('error', err) ELSE '{}' END);
    END IF;
    PERFORM switchgrid.check_order_finished(r.order_id);
END $$;

-- Orders by consent: the meter of a request that names none
-- The PRMs of a consent, as a JSON array, from the Asks recorded here
-- (switchgrid.asks.consent_ids); NULL if no recorded Ask holds it.  The
-- meter of an Order placed by consent, when its requests name none.
CREATE FUNCTION switchgrid.consent_prms(consent uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_agg(DISTINCT c.key)
    FROM switchgrid.asks a,
         jsonb_each_text(CASE WHEN jsonb_typeof(a.consent_ids) = 'object'
                              THEN a.consent_ids ELSE '{}' END) AS c
    WHERE lower(c.value) = consent::text;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA switchgrid FROM PUBLIC;
GRANT EXECUTE ON FUNCTION switchgrid.worker_follows() TO PUBLIC;

-- ----------------------------------------------------------------
-- Load curves kept one row per meter, direction and Paris day, the points
-- in arrays (switchgrid.loadcurve_days), about 30 bytes a point where a
-- row a point took 160; switchgrid.loadcurve and switchgrid_test.loadcurve
-- become views with the same columns (and "day").  Every point moves,
-- with the request and the time that wrote it.  A view, rule or foreign
-- key of yours on the tables would be dropped with them, so the update
-- stops and says so instead; what was granted on them is named in a
-- WARNING, to be granted again on the views (see switchgrid_loadcurve()
-- above for why the script does not do it).
-- ----------------------------------------------------------------
DO $$
DECLARE
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
    LEFT JOIN pg_constraint c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
    LEFT JOIN pg_attrdef a ON d.classid = 'pg_attrdef'::regclass AND a.oid = d.objid
    WHERE d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN ('switchgrid.loadcurve'::regclass, 'switchgrid_test.loadcurve'::regclass)
      AND d.deptype = 'n'
      -- the tables' own CHECK and generated column go with them
      AND COALESCE(c.conrelid, a.adrelid, 0) <> d.refobjid;
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'cannot update switchgrid: table switchgrid.loadcurve is used by %', deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'Version 0.2.0 keeps load curves in switchgrid.loadcurve_days; switchgrid.loadcurve becomes a view with the same columns.',
                  HINT = 'Drop them, run ALTER EXTENSION switchgrid UPDATE, then create them again: they work unchanged over the view.';
    END IF;
    SELECT string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(ro.rolname) END,
                      ', ')
    INTO grantees
    FROM pg_class c, aclexplode(c.relacl) a
    LEFT JOIN pg_roles ro ON ro.oid = a.grantee
    WHERE c.oid = 'switchgrid.loadcurve'::regclass AND a.privilege_type = 'SELECT'
      AND a.grantee <> c.relowner;
    IF grantees IS NOT NULL THEN
        RAISE WARNING 'switchgrid.loadcurve becomes a view: SELECT on it is no longer granted to %', grantees
            USING DETAIL = 'Version 0.2.0 keeps load curves in switchgrid.loadcurve_days; switchgrid.loadcurve becomes a view with the same columns.',
                  HINT = format('After the update, run: GRANT SELECT ON switchgrid.loadcurve TO %s;', grantees);
    END IF;
END $$;

-- Load curves, one row per meter, direction and Enedis day (a Paris date),
-- with the day's points in parallel arrays: about 20 bytes a point with the
-- index, where a row a point took 160.  switchgrid.loadcurve is the view of
-- one row per point.  ts holds each step's start, ascending; a point whose
-- measure is missing has a NULL power_w element.  A day is written by
-- one or more requests: request_ids and fetched_ats say which and when
-- (oldest write first), source gives each point's index in them, NULL when
-- a single write made the whole day.  The rows fit a page: no TOAST, no
-- compression to undo when reading.
CREATE TABLE switchgrid.loadcurve_days (
    prm           text NOT NULL,
    direction     text NOT NULL,              -- CONSUMPTION or INJECTION
    day           date NOT NULL,              -- the Paris day of the steps' starts
    request_ids   uuid[] NOT NULL,
    fetched_ats   timestamptz[] NOT NULL,
    ts            timestamptz[] NOT NULL,
    step_s        integer[] NOT NULL,
    power_w       double precision[] NOT NULL,
    source        smallint[],
    PRIMARY KEY (prm, direction, day),
    CHECK (cardinality(step_s) = cardinality(ts)
           AND cardinality(power_w) = cardinality(ts)
           AND cardinality(fetched_ats) = cardinality(request_ids))
) WITH (toast_tuple_target = 8160);
-- a day of the whole fleet
CREATE INDEX ON switchgrid.loadcurve_days (day);
-- (commented before switchgrid_test's copy is made, which takes the comments)
COMMENT ON COLUMN switchgrid.loadcurve_days.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.loadcurve_days.direction IS 'CONSUMPTION or INJECTION';
COMMENT ON COLUMN switchgrid.loadcurve_days.day IS 'The Paris day (Enedis day) of the steps'' starts';
COMMENT ON COLUMN switchgrid.loadcurve_days.request_ids IS 'The requests whose writes hold points of the day, oldest write first (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.loadcurve_days.fetched_ats IS 'When each of request_ids wrote them';
COMMENT ON COLUMN switchgrid.loadcurve_days.ts IS 'Start of each step (UTC instants), ascending';
COMMENT ON COLUMN switchgrid.loadcurve_days.step_s IS 'Length of each step, in seconds; NULL: unknown (a row kept from 0.1.0)';
COMMENT ON COLUMN switchgrid.loadcurve_days.power_w IS 'Mean active power over each step, in W; NULL: no measure';
COMMENT ON COLUMN switchgrid.loadcurve_days.source IS 'Index in request_ids of the write of each point; NULL: all of request_ids[1]';

CREATE TABLE switchgrid_test.loadcurve_days (LIKE switchgrid.loadcurve_days INCLUDING ALL)
    WITH (toast_tuple_target = 8160);
-- The points of a day of switchgrid.loadcurve_days ("old_*", as stored)
-- with those of one more write ("new_*", by new_id at new_at) laid over
-- them: a point of the new write replaces the stored one that starts at
-- the same instant, the others stay.  The writes are renumbered oldest
-- first; those left without a point are dropped.
CREATE FUNCTION switchgrid.loadcurve_merge(
    old_ids uuid[], old_ats timestamptz[], old_source smallint[],
    old_ts timestamptz[], old_step integer[], old_power double precision[],
    new_id uuid, new_at timestamptz,
    new_ts timestamptz[], new_step integer[], new_power double precision[],
    OUT request_ids uuid[], OUT fetched_ats timestamptz[], OUT source smallint[],
    OUT ts timestamptz[], OUT step_s integer[], OUT power_w double precision[])
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pts AS (
        SELECT DISTINCT ON (a.o) a.o, a.s, a.w, a.rid, a.fat
        FROM (SELECT n.o, n.s, n.w, new_id AS rid, new_at AS fat, 0 AS k
              FROM unnest(new_ts, new_step, new_power) AS n(o, s, w)
              UNION ALL
              SELECT x.o, x.s, x.w, old_ids[COALESCE(x.i, 1)], old_ats[COALESCE(x.i, 1)], 1
              FROM unnest(old_ts, old_step, old_power, old_source) AS x(o, s, w, i)) a
        ORDER BY a.o, a.k),
    writes AS (
        SELECT rid, fat, (row_number() OVER (ORDER BY fat, rid))::smallint AS i
        FROM pts GROUP BY rid, fat)
    SELECT (SELECT array_agg(rid ORDER BY i) FROM writes),
           (SELECT array_agg(fat ORDER BY i) FROM writes),
           CASE WHEN (SELECT count(*) FROM writes) > 1 THEN array_agg(w.i ORDER BY p.o) END,
           array_agg(p.o ORDER BY p.o), array_agg(p.s ORDER BY p.o), array_agg(p.w ORDER BY p.o)
    FROM pts p JOIN writes w USING (rid, fat);
$$;

-- Writes load-curve points into target.loadcurve_days ("target" is
-- switchgrid or switchgrid_test) as one write of request "req" at "at",
-- merged day by day with the points already there (a point of this write
-- replaces the one stored at the same instant; of two points of this
-- write at the same instant, the later in the arrays wins).  Returns the
-- points written.
CREATE FUNCTION switchgrid.loadcurve_write(target text, req uuid, at timestamptz,
                                           in_direction text, in_prms text[],
                                           in_ts timestamptz[], in_step integer[],
                                           in_power double precision[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
    WITH pts AS MATERIALIZED (
        SELECT DISTINCT ON (u.p, u.t) u.p, u.t, u.s, u.w,
               (u.t AT TIME ZONE 'Europe/Paris')::date AS day
        FROM unnest($1, $2, $3, $4) WITH ORDINALITY AS u(p, t, s, w, i)
        ORDER BY u.p, u.t, u.i DESC),
    ins AS (
        INSERT INTO %I.loadcurve_days AS d
            (prm, direction, day, request_ids, fetched_ats, ts, step_s, power_w)
        SELECT p, $5, day, ARRAY[$6], ARRAY[$7],
               array_agg(t ORDER BY t), array_agg(s ORDER BY t), array_agg(w ORDER BY t)
        FROM pts GROUP BY p, day
        ON CONFLICT (prm, direction, day) DO UPDATE
        SET (request_ids, fetched_ats, source, ts, step_s, power_w) =
            (SELECT * FROM switchgrid.loadcurve_merge(
                d.request_ids, d.fetched_ats, d.source, d.ts, d.step_s, d.power_w,
                EXCLUDED.request_ids[1], EXCLUDED.fetched_ats[1],
                EXCLUDED.ts, EXCLUDED.step_s, EXCLUDED.power_w)))
    SELECT count(*) FROM pts
    $q$, target)
    INTO n
    USING in_prms, in_ts, in_step, in_power, in_direction, req, at;
    RETURN n;
END $$;

-- every point, write by write: each (request, time) of a series is one
-- write, laid over the days in the order they were made
DO $$
DECLARE
    w record;
BEGIN
    FOR w IN
        SELECT 'switchgrid' AS target, request_id, fetched_at, direction,
               array_agg(prm ORDER BY prm, ts) AS prms, array_agg(ts ORDER BY prm, ts) AS ts,
               array_agg(step_s ORDER BY prm, ts) AS steps,
               array_agg(power_w ORDER BY prm, ts) AS powers
        FROM switchgrid.loadcurve GROUP BY request_id, fetched_at, direction
        UNION ALL
        SELECT 'switchgrid_test', request_id, fetched_at, direction,
               array_agg(prm ORDER BY prm, ts), array_agg(ts ORDER BY prm, ts),
               array_agg(step_s ORDER BY prm, ts), array_agg(power_w ORDER BY prm, ts)
        FROM switchgrid_test.loadcurve GROUP BY request_id, fetched_at, direction
        ORDER BY fetched_at, request_id
    LOOP
        PERFORM switchgrid.loadcurve_write(w.target, w.request_id, w.fetched_at, w.direction,
                                           w.prms, w.ts, w.steps, w.powers);
    END LOOP;
END $$;
-- out of the extension first: that also takes them out of its list of
-- configuration tables (a DROP TABLE alone would leave their oids there)
ALTER EXTENSION switchgrid DROP TABLE switchgrid.loadcurve;
ALTER EXTENSION switchgrid DROP TABLE switchgrid_test.loadcurve;
DROP TABLE switchgrid.loadcurve;
DROP TABLE switchgrid_test.loadcurve;
-- One row per point, with the columns of the 0.1.0 table (and its Paris
-- day, last: a filter on "day" lets the planner use the table's indexes).
CREATE VIEW switchgrid.loadcurve AS
SELECT p.prm, p.direction, p.ts, p.power_w,
       p.request_ids[COALESCE(p.source, 1)] AS request_id,
       p.fetched_ats[COALESCE(p.source, 1)] AS fetched_at,
       p.step_s, p.power_w * p.step_s / 3600 AS wh, p.day
FROM (SELECT d.prm, d.direction, d.day, d.request_ids, d.fetched_ats,
             unnest(d.ts) AS ts, unnest(d.step_s) AS step_s,
             unnest(d.power_w) AS power_w, unnest(d.source) AS source
      FROM switchgrid.loadcurve_days d) p;

CREATE VIEW switchgrid_test.loadcurve AS
SELECT p.prm, p.direction, p.ts, p.power_w,
       p.request_ids[COALESCE(p.source, 1)] AS request_id,
       p.fetched_ats[COALESCE(p.source, 1)] AS fetched_at,
       p.step_s, p.power_w * p.step_s / 3600 AS wh, p.day
FROM (SELECT d.prm, d.direction, d.day, d.request_ids, d.fetched_ats,
             unnest(d.ts) AS ts, unnest(d.step_s) AS step_s,
             unnest(d.power_w) AS power_w, unnest(d.source) AS source
      FROM switchgrid_test.loadcurve_days d) p;
COMMENT ON VIEW switchgrid.loadcurve IS
'Load curves (LOADCURVE, R63, R63_SYNC), one row per point: one consolidated series per meter and direction, kept in switchgrid.loadcurve_days; test-environment rows are in switchgrid_test.loadcurve';
COMMENT ON COLUMN switchgrid.loadcurve.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.loadcurve.direction IS 'CONSUMPTION or INJECTION';
COMMENT ON COLUMN switchgrid.loadcurve.ts IS 'Start of the step (UTC instant)';
COMMENT ON COLUMN switchgrid.loadcurve.power_w IS 'Mean active power over the step, in W; NULL: no measure';
COMMENT ON COLUMN switchgrid.loadcurve.request_id IS 'The request that last wrote this point (switchgrid.requests)';
COMMENT ON COLUMN switchgrid.loadcurve.fetched_at IS 'When this point was last written';
COMMENT ON COLUMN switchgrid.loadcurve.step_s IS 'Length of the step, in seconds (600 for PT10M); NULL: unknown (a row kept from 0.1.0 that its neighbours do not tell)';
COMMENT ON COLUMN switchgrid.loadcurve.wh IS 'Energy of the step, in Wh: power_w times step_s / 3600';
COMMENT ON COLUMN switchgrid.loadcurve.day IS 'The Paris day of the step''s start (Enedis day), as kept in switchgrid.loadcurve_days: a filter on it uses that table''s indexes';
COMMENT ON TABLE switchgrid.loadcurve_days IS
'Load curves as stored: one row per meter, direction and Paris day, the points in parallel arrays; read them through the view switchgrid.loadcurve';

COMMENT ON VIEW switchgrid_test.loadcurve IS 'Load curves of the test environment (dummy data); see switchgrid.loadcurve';
COMMENT ON TABLE switchgrid_test.loadcurve_days IS 'Load curves of the test environment as stored; see switchgrid.loadcurve_days';
SELECT pg_catalog.pg_extension_config_dump('switchgrid.loadcurve_days', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid_test.loadcurve_days', '');

-- Stores a downloaded load curve (LOADCURVE, R63, R63_SYNC): one
-- consolidated series per meter and direction, so an overlapping later order
-- updates points in place.  in_ts is the start of each step, in_step its
-- length in seconds.  The points of an Order of the test environment go to
-- switchgrid_test.loadcurve.
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
    n := switchgrid.loadcurve_write(
        CASE WHEN (SELECT o.test_env FROM switchgrid.orders o WHERE o.order_id = r.order_id)
             THEN 'switchgrid_test' ELSE 'switchgrid' END,
        req, now(), CASE r.direction WHEN 'INJECTION' THEN 'INJECTION' ELSE 'CONSUMPTION' END,
        in_prms, in_ts, in_step, in_power);

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
REVOKE ALL ON FUNCTION switchgrid.loadcurve_write(text, uuid, timestamptz, text, text[],
                                                  timestamptz[], integer[], double precision[])
    FROM PUBLIC;
REVOKE ALL ON FUNCTION switchgrid.loadcurve_merge(uuid[], timestamptz[], smallint[], timestamptz[],
                                                  integer[], double precision[], uuid, timestamptz,
                                                  timestamptz[], integer[], double precision[])
    FROM PUBLIC;
-- A look-up that changes nothing is not written (issue 10)

-- Whether recording this answer of GET /order/{id} would change nothing: the
-- row holds the same answer, there is no failure to clear, no download given
-- up that a look-up starts afresh, and nothing left for check_order_finished().
-- switchgrid_order_status(), switchgrid_wait() and the worker's polls ask it
-- first and then write nothing at all (no row lock, no new row version, no
-- WAL): updated_at and polls only move when an answer changes something.  It
-- takes no lock: an answer racing with another look-up is "older" or "the
-- same", and either way record_order() would leave the row as it is.
CREATE FUNCTION switchgrid.order_unchanged(o jsonb, do_fetch boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- plpgsql, not sql: its plan is kept for the session, not made per call
    RETURN COALESCE((
        SELECT t.raw = o AND t.failures = 0 AND t.last_error IS NULL
               -- a terminal answer clears next_poll_at
               AND NOT (t.next_poll_at IS NOT NULL
                        AND o->>'status' IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED'))
               -- every request recorded as this answer has it
               AND (SELECT count(*) FROM switchgrid.requests q WHERE q.order_id = t.order_id)
                   = jsonb_array_length(CASE WHEN jsonb_typeof(o->'requests') = 'array'
                                             THEN o->'requests' ELSE '[]' END)
               AND NOT EXISTS (
                   SELECT 1 FROM switchgrid.requests q
                   WHERE q.order_id = t.order_id
                     AND (q.raw IS DISTINCT FROM o->'requests'->q.position
                          -- a request without its meter, whose consent is known now
                          OR (t.consent_id IS NOT NULL AND COALESCE(cardinality(q.prms), 0) = 0
                              AND switchgrid.consent_prms(t.consent_id) IS NOT NULL)
                          OR (q.next_fetch_at IS NULL
                              AND (q.failures <> 0
                                   OR (do_fetch AND q.status = 'SUCCESS'
                                       AND q.fetched_at IS NULL)))))
               -- a finished order that is not marked so yet
               AND NOT (do_fetch AND t.finished_at IS NULL
                        AND t.status IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED')
                        AND NOT EXISTS (
                            SELECT 1 FROM switchgrid.requests q
                            WHERE q.order_id = t.order_id
                              AND (q.status NOT IN ('SUCCESS', 'FAILED')
                                   OR (q.status = 'SUCCESS' AND q.fetched_at IS NULL))))
        FROM switchgrid.orders t
        WHERE t.order_id = (o->>'id')::uuid), false);
END $$;

REVOKE ALL ON FUNCTION switchgrid.order_unchanged(jsonb, boolean) FROM PUBLIC;
COMMENT ON COLUMN switchgrid.orders.updated_at IS 'When an answer last changed the row (a look-up that finds nothing new writes nothing)';
COMMENT ON COLUMN switchgrid.orders.polls IS 'Look-ups whose answer changed the row, a count';
COMMENT ON COLUMN switchgrid.orders.next_poll_at IS 'When the worker looks at it again (a poll that changed nothing is put off in the worker''s memory instead); NULL: nothing left to wait for';

-- ----------------------------------------------------------------
-- Keeping meters up to date: what is stored (switchgrid.coverage), which
-- consents are live (switchgrid.consents), and ordering only what is
-- missing (switchgrid_sync).  Days are Enedis days: Europe/Paris dates.
-- ----------------------------------------------------------------

-- The request types as the C code knows them (sg_request_types[] in
-- src/request.c): the dataset each stores into, how far back the API keeps
-- its data, the longest span one request may cover, and whether
-- switchgrid_sync() orders it for its dataset.
CREATE FUNCTION switchgrid.request_types()
RETURNS TABLE(type text, dataset text, directions text[], dated boolean,
              history_months integer, max_span_days integer, sync boolean)
AS 'MODULE_PATHNAME', 'switchgrid_request_types'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Whether the load-curve rows of one meter, direction and environment
-- cover the Paris day [ds, de) whole: sorted by ts, no step starts after
-- the end of those before it, the first starts at ds, the last ends at de,
-- and every step has a known length.  Exact for any mix of steps, even
-- overlapping ones (a day read once at PT10M and once at PT30M).  It runs
-- as the owner: a role that may read switchgrid.coverage (granted SELECT on
-- the view) need not read the load-curve tables, the view's own, nor schema
-- switchgrid_test; it says no more than the view does.
CREATE FUNCTION switchgrid.curve_day_complete(p text, dir text, test boolean,
                                              ds timestamptz, de timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(min(ts) = ds AND max(ends) >= de AND NOT COALESCE(bool_or(hole), false)
                    AND bool_and(step_s IS NOT NULL), false)
    FROM (SELECT ts, step_s, ends,
                 ts > max(ends) OVER (ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS hole
          FROM (SELECT ts, step_s, ts + step_s * interval '1 second' AS ends
                FROM switchgrid.loadcurve
                WHERE NOT test AND prm = p AND direction = dir AND ts >= ds AND ts < de
                  AND day = (ds AT TIME ZONE 'Europe/Paris')::date
                UNION ALL
                SELECT ts, step_s, ts + step_s * interval '1 second'
                FROM switchgrid_test.loadcurve
                WHERE test AND prm = p AND direction = dir AND ts >= ds AND ts < de
                  AND day = (ds AT TIME ZONE 'Europe/Paris')::date) r) w;
$$;

-- One row per meter, dataset, direction, environment and Paris day that has
-- rows, and whether the day is complete.  A load-curve day is complete when
-- its steps [ts, ts + step_s) cover the whole day: 46, 48 or 50 half-hours
-- at PT30M, 138, 144 or 150 steps at PT10M, and exactly so on a day whose
-- step changes; a step of unknown length (step_s NULL, kept from 0.1.0)
-- leaves its day incomplete.  A step whose power_w is NULL is stored
-- (Enedis has no measure for it): ordering the day again would not fill it.
-- The usual day, of one step that divides an hour, is judged from counts:
-- its steps start on the step's grid (Paris midnights are whole UTC
-- hours), so they cannot overlap, and it is complete when they add up to
-- the day's length.  Any other day is judged step by step
-- (switchgrid.curve_day_complete).  A load-curve day is one row of
-- switchgrid.loadcurve_days: its counts come from its arrays, with no
-- grouping of points.
-- A daily dataset's day is complete when it has its row (indexes: the
-- totaliser's reading of that day); a billing day when a billing period of
-- any class covers it; contracts, a snapshot, have the day of their fetch.
CREATE VIEW switchgrid.coverage_days AS
    SELECT false AS test_env, d.prm, 'loadcurve'::text AS dataset, d.direction, d.day,
           CASE WHEN x.smin = x.smax AND x.nstep = x.n AND 3600 % x.smin = 0 AND x.aligned
                THEN x.n * x.smin
                     = date_part('epoch', ((d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris')
                                          - (d.day::timestamp AT TIME ZONE 'Europe/Paris'))
                ELSE switchgrid.curve_day_complete(d.prm, d.direction, false,
                                                   d.day::timestamp AT TIME ZONE 'Europe/Paris',
                                                   (d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris')
           END AS complete
    FROM switchgrid.loadcurve_days d,
         LATERAL (SELECT min(u.s) AS smin, max(u.s) AS smax, count(u.s) AS nstep, count(*) AS n,
                         bool_and(date_part('epoch', u.t)::bigint % u.s = 0) AS aligned
                  FROM unnest(d.ts, d.step_s) AS u(t, s)) x
    UNION ALL
    SELECT true, d.prm, 'loadcurve', d.direction, d.day,
           CASE WHEN x.smin = x.smax AND x.nstep = x.n AND 3600 % x.smin = 0 AND x.aligned
                THEN x.n * x.smin
                     = date_part('epoch', ((d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris')
                                          - (d.day::timestamp AT TIME ZONE 'Europe/Paris'))
                ELSE switchgrid.curve_day_complete(d.prm, d.direction, true,
                                                   d.day::timestamp AT TIME ZONE 'Europe/Paris',
                                                   (d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris')
           END
    FROM switchgrid_test.loadcurve_days d,
         LATERAL (SELECT min(u.s) AS smin, max(u.s) AS smax, count(u.s) AS nstep, count(*) AS n,
                         bool_and(date_part('epoch', u.t)::bigint % u.s = 0) AS aligned
                  FROM unnest(d.ts, d.step_s) AS u(t, s)) x
    UNION ALL
    SELECT false, prm, 'daily_energy', direction, day, true FROM switchgrid.daily_energy
    UNION ALL
    SELECT true, prm, 'daily_energy', direction, day, true FROM switchgrid_test.daily_energy
    UNION ALL
    SELECT false, prm, 'max_power', direction, day, true FROM switchgrid.max_power
    UNION ALL
    SELECT true, prm, 'max_power', direction, day, true FROM switchgrid_test.max_power
    UNION ALL
    SELECT DISTINCT false, prm, 'indexes', direction, day, true FROM switchgrid.indexes WHERE total
    UNION ALL
    SELECT DISTINCT true, prm, 'indexes', direction, day, true FROM switchgrid_test.indexes WHERE total
    UNION ALL
    SELECT DISTINCT false, prm, 'billing', direction, g::date, true
    FROM switchgrid.billing,
         generate_series(period_start::timestamp, (period_end - 1)::timestamp, interval '1 day') g
    UNION ALL
    SELECT DISTINCT true, prm, 'billing', direction, g::date, true
    FROM switchgrid_test.billing,
         generate_series(period_start::timestamp, (period_end - 1)::timestamp, interval '1 day') g
    UNION ALL
    SELECT false, prm, 'contracts', NULL, (fetched_at AT TIME ZONE 'Europe/Paris')::date, true
    FROM switchgrid.contracts
    UNION ALL
    SELECT true, prm, 'contracts', NULL, (fetched_at AT TIME ZONE 'Europe/Paris')::date, true
    FROM switchgrid_test.contracts;

COMMENT ON VIEW switchgrid.coverage_days IS
'Each Paris day stored per meter, dataset, direction and environment, and whether it is complete';

-- The missing ranges between "first" and "last" (both included) of a
-- sorted list of complete days: [first, last] minus those days, as ranges.
CREATE FUNCTION switchgrid.missing_ranges(first date, last date, complete date[])
RETURNS daterange[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(array_agg(daterange(prev + 1, d) ORDER BY d), '{}')
    FROM (SELECT d, lag(d, 1, first - 1) OVER (ORDER BY d) AS prev
          FROM unnest(COALESCE(complete, '{}') || (last + 1)) AS d) x
    WHERE d > prev + 1;
$$;

CREATE VIEW switchgrid.coverage AS
    SELECT prm, dataset, direction, test_env,
           min(day) AS first_day, max(day) AS last_day,
           count(*) AS days,
           count(*) FILTER (WHERE complete) AS complete_days,
           switchgrid.missing_ranges(min(day), max(day),
                                     array_agg(day ORDER BY day) FILTER (WHERE complete)) AS missing
    FROM switchgrid.coverage_days
    GROUP BY prm, dataset, direction, test_env;

COMMENT ON VIEW switchgrid.coverage IS
'What is stored per meter, dataset and direction: first and last Paris day, complete days, and the missing ranges between them';
COMMENT ON COLUMN switchgrid.coverage.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.coverage.dataset IS 'loadcurve, daily_energy, max_power, indexes, billing or contracts (the table the rows are in)';
COMMENT ON COLUMN switchgrid.coverage.direction IS 'CONSUMPTION or INJECTION; NULL for contracts';
COMMENT ON COLUMN switchgrid.coverage.test_env IS 'Rows of the test environment (schema switchgrid_test): dummy data, never mixed with real rows';
COMMENT ON COLUMN switchgrid.coverage.first_day IS 'First Paris day with rows';
COMMENT ON COLUMN switchgrid.coverage.last_day IS 'Last Paris day with rows (contracts: the day of the snapshot)';
COMMENT ON COLUMN switchgrid.coverage.days IS 'Paris days with rows, complete or not, a count';
COMMENT ON COLUMN switchgrid.coverage.complete_days IS 'Complete days, a count (a load-curve day: every step of the day, 46, 48 or 50 at PT30M)';
COMMENT ON COLUMN switchgrid.coverage.missing IS 'Ranges of days between first_day and last_day that are not complete, [start, end)';

-- One row per meter and consent (or Ask waiting for its signature), with
-- the Ask, when it was accepted and when it expires: acceptedAt plus the
-- consentDuration the Ask was created with (createArgs), none if it had
-- none.  "state" says whether Orders can use it.
CREATE VIEW switchgrid.consents AS
    SELECT p.prm,
           CASE WHEN jsonb_typeof(a.consent_ids) = 'object'
                     AND a.consent_ids->>p.prm ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                THEN (a.consent_ids->>p.prm)::uuid END AS consent_id,
           a.ask_id, a.status AS ask_status, a.accepted_at,
           a.raw->'createArgs'->>'consentDuration' AS duration,
           a.accepted_at + d.duration AS expires_at,
           CASE WHEN a.status = 'CANCELLED' AND a.accepted_at IS NOT NULL THEN 'revoked'
                WHEN a.status = 'CANCELLED' THEN 'cancelled'
                WHEN a.status = 'ADDRESS_CHECK_FAILED' THEN 'refused'
                WHEN a.status <> 'ACCEPTED' OR a.consent_ids->>p.prm IS NULL THEN 'pending'
                WHEN a.accepted_at + d.duration <= now() THEN 'expired'
                ELSE 'live' END AS state,
           a.test_env
    FROM switchgrid.asks a
    CROSS JOIN LATERAL (
        SELECT CASE WHEN a.raw->'createArgs'->>'consentDuration'
                         ~ '^[1-9][0-9]{0,2} (day|week|month|year)s?$'
                    THEN (a.raw->'createArgs'->>'consentDuration')::interval END AS duration) d
    CROSS JOIN LATERAL (
        SELECT DISTINCT x AS prm
        FROM unnest(COALESCE(a.prms, '{}')
                    || ARRAY(SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(a.consent_ids) = 'object'
                                                           THEN a.consent_ids ELSE '{}' END))) AS x) p;

COMMENT ON VIEW switchgrid.consents IS
'One row per meter and consent (or unsigned Ask): its Ask, when it was accepted, when it expires, and whether Orders can use it';
COMMENT ON COLUMN switchgrid.consents.prm IS 'Delivery point (PRM, 14 digits)';
COMMENT ON COLUMN switchgrid.consents.consent_id IS 'Consent id (consentIds of the Ask); NULL until the Ask is signed';
COMMENT ON COLUMN switchgrid.consents.ask_id IS 'The Ask (switchgrid.asks)';
COMMENT ON COLUMN switchgrid.consents.ask_status IS 'Status of the Ask as last seen: ACCEPTED, PENDING_USER_ACTION, ... (CANCELLED once cancelled here)';
COMMENT ON COLUMN switchgrid.consents.accepted_at IS 'When the Ask was signed';
COMMENT ON COLUMN switchgrid.consents.duration IS 'The consentDuration the Ask asked for, e.g. 3 years; NULL: none';
COMMENT ON COLUMN switchgrid.consents.expires_at IS 'accepted_at plus duration; NULL: no end known';
COMMENT ON COLUMN switchgrid.consents.state IS 'live (Orders can use it), expired, revoked (cancelled after signing), cancelled (before), refused (address check failed) or pending (not signed yet)';
COMMENT ON COLUMN switchgrid.consents.test_env IS 'A consent of the test environment: its Orders give dummy data, stored in schema switchgrid_test';

-- switchgrid_sync(), under names of its own (see there).
CREATE FUNCTION switchgrid.sync(p_prms text[], p_datasets text[], p_since date, p_until date,
                                p_dry_run boolean)
RETURNS TABLE(prm text, dataset text, direction text, since date, until date,
              order_id uuid, skipped text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    today date := (now() AT TIME ZONE 'Europe/Paris')::date;
    v_until date;
    v_prms text[];
    v_datasets text[];
    known text;
    t record;
    c record;
    g record;
    r record;
    p text;
    ds text;
    dir text;
    dirs text[];
    reason text;
    s date;
    e date;
    -- the requests planned for one meter, and what to say about each
    reqs jsonb[];
    rows_ds text[];
    rows_dir text[];
    rows_since date[];
    rows_until date[];
    ord uuid;
    i integer;
    j integer;
    chunk jsonb;
BEGIN
    -- everything is checked before any HTTP call
    SELECT string_agg(x.dataset, ', ' ORDER BY x.n) INTO known
    FROM switchgrid.request_types() WITH ORDINALITY AS x(type, dataset, directions, dated,
                                                          history_months, max_span_days, sync, n)
    WHERE x.sync;
    IF p_prms IS NULL THEN
        RAISE EXCEPTION 'prms must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF p_datasets IS NULL THEN
        RAISE EXCEPTION 'datasets must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF p_since IS NULL THEN
        RAISE EXCEPTION 'since must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give the first Paris day to keep up to date, such as current_date - 30.';
    ELSIF p_dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Say true to see what would be ordered, false to order it.';
    ELSIF array_ndims(p_prms) > 1 OR array_ndims(p_datasets) > 1 THEN
        RAISE EXCEPTION 'prms and datasets must be one-dimensional arrays'
            USING ERRCODE = 'array_subscript_error';
    ELSIF cardinality(p_prms) = 0 THEN
        RAISE EXCEPTION 'prms is empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'List the PRMs to keep up to date.';
    ELSIF cardinality(p_datasets) = 0 THEN
        RAISE EXCEPTION 'datasets is empty' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Datasets: %s.', known);
    ELSIF array_position(p_prms, NULL) IS NOT NULL OR array_position(p_datasets, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'prms and datasets must not contain nulls'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH p IN ARRAY p_prms LOOP
        IF p !~ '^[0-9]{14}$' THEN
            RAISE EXCEPTION 'invalid PRM "%"', left(p, 40) USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'A PRM (point de livraison) is exactly 14 digits.';
        END IF;
    END LOOP;
    FOREACH ds IN ARRAY p_datasets LOOP
        IF NOT EXISTS (SELECT 1 FROM switchgrid.request_types() x WHERE x.dataset = ds AND x.sync) THEN
            RAISE EXCEPTION 'unknown dataset "%"', left(ds, 40) USING ERRCODE = 'invalid_parameter_value',
                DETAIL = format('Datasets: %s.', known);
        END IF;
    END LOOP;
    v_until := LEAST(COALESCE(p_until, today), today);
    IF p_until IS NOT NULL AND p_since >= p_until THEN
        RAISE EXCEPTION '"since" must be earlier than "until"' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('since is %s and until is %s; until is excluded.', p_since, p_until);
    ELSIF p_since >= today THEN
        RAISE EXCEPTION '"since" must be earlier than today' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Enedis publishes the data of a day the next morning: the last day to order is %s.',
                            today - 1);
    END IF;
    FOR t IN SELECT x.dataset, x.type, x.history_months FROM switchgrid.request_types() x
             WHERE x.sync AND x.dataset = ANY (p_datasets) AND x.history_months > 0
             ORDER BY x.history_months LOOP
        IF p_since < today - make_interval(months => t.history_months) THEN
            RAISE EXCEPTION '"since" is older than the % data the API keeps', t.dataset
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('%s data (%s) goes back %s months, to %s.', t.dataset, t.type,
                                      t.history_months,
                                      (today - make_interval(months => t.history_months))::date),
                      HINT = format('Use a since of %s or later.',
                                    (today - make_interval(months => t.history_months))::date);
        END IF;
    END LOOP;
    SELECT array_agg(x ORDER BY x) INTO v_prms FROM (SELECT DISTINCT x FROM unnest(p_prms) x) y;
    SELECT array_agg(x ORDER BY n) INTO v_datasets
    FROM (SELECT x, min(n) AS n FROM unnest(p_datasets) WITH ORDINALITY AS u(x, n) GROUP BY x) y;

    FOREACH p IN ARRAY v_prms LOOP
        -- the consent to order with: the latest live one
        SELECT * INTO c FROM switchgrid.consents k
        WHERE k.prm = p AND k.state = 'live' ORDER BY k.accepted_at DESC LIMIT 1;
        IF NOT FOUND THEN
            SELECT CASE k.state
                       WHEN 'expired' THEN format('consent expired on %s',
                                                  (k.expires_at AT TIME ZONE 'Europe/Paris')::date)
                       WHEN 'revoked' THEN 'consent revoked'
                       WHEN 'cancelled' THEN 'consent cancelled before it was signed'
                       WHEN 'refused' THEN 'Ask failed its address check'
                       WHEN 'pending' THEN format('consent not signed yet (Ask %s is %s)', k.ask_id, k.ask_status)
                   END INTO reason
            FROM switchgrid.consents k WHERE k.prm = p
            ORDER BY k.state = 'pending', k.accepted_at DESC NULLS LAST LIMIT 1;
            FOREACH ds IN ARRAY v_datasets LOOP
                prm := p; dataset := ds; direction := NULL; since := p_since; until := v_until;
                order_id := NULL;
                skipped := 'no live consent: ' || COALESCE(reason, 'no Ask recorded for this meter');
                RETURN NEXT;
            END LOOP;
            CONTINUE;
        END IF;

        -- injection only where the meter is known to have it
        dirs := ARRAY['CONSUMPTION'];
        IF EXISTS (SELECT 1 FROM switchgrid.coverage_days x
                   WHERE x.prm = p AND x.direction = 'INJECTION' AND x.test_env = c.test_env)
           OR EXISTS (SELECT 1 FROM switchgrid.contracts x
                      WHERE NOT c.test_env AND x.prm = p AND x.injection_connection_kva IS NOT NULL)
           OR EXISTS (SELECT 1 FROM switchgrid_test.contracts x
                      WHERE c.test_env AND x.prm = p AND x.injection_connection_kva IS NOT NULL) THEN
            dirs := dirs || 'INJECTION'::text;
        END IF;

        reqs := '{}'; rows_ds := '{}'; rows_dir := '{}'; rows_since := '{}'; rows_until := '{}';
        FOREACH ds IN ARRAY v_datasets LOOP
            SELECT * INTO t FROM switchgrid.request_types() x WHERE x.dataset = ds AND x.sync;
            FOREACH dir IN ARRAY CASE WHEN t.dated THEN dirs ELSE ARRAY[NULL::text] END LOOP
                -- not published yet
                IF t.dated AND p_until > today THEN
                    prm := p; dataset := ds; direction := dir; since := today; until := p_until;
                    order_id := NULL;
                    skipped := 'not published yet: Enedis publishes a day''s data the next morning';
                    RETURN NEXT;
                END IF;
                -- each Paris day of [since, until): stored (complete), ordered
                -- and not stored yet, or missing; then as ranges
                FOR g IN
                    WITH cov AS MATERIALIZED (
                        SELECT x.day FROM switchgrid.coverage_days x
                        WHERE x.prm = p AND x.dataset = ds AND x.direction IS NOT DISTINCT FROM dir
                          AND x.test_env = c.test_env AND x.complete
                          AND x.day >= p_since),
                    pend AS MATERIALIZED (
                        SELECT rq.order_id,
                               (COALESCE(rq.since, rq.ordered_at - interval '7 days', o.first_seen - interval '7 days')
                                AT TIME ZONE 'Europe/Paris')::date AS s,
                               (COALESCE(rq.until, rq.ordered_at, o.first_seen)
                                AT TIME ZONE 'Europe/Paris')::date AS e
                        FROM switchgrid.requests rq JOIN switchgrid.orders o ON o.order_id = rq.order_id
                        WHERE rq.type IN (SELECT x.type FROM switchgrid.request_types() x WHERE x.dataset = ds)
                          AND (p = ANY (rq.prms) OR (rq.prms IS NULL AND o.consent_id = c.consent_id))
                          AND (dir IS NULL
                               OR (CASE WHEN rq.direction = 'INJECTION' THEN 'INJECTION'
                                        ELSE 'CONSUMPTION' END) = dir)
                          AND o.test_env = c.test_env
                          AND rq.fetched_at IS NULL AND rq.status <> 'FAILED'
                          AND o.finished_at IS NULL AND o.status <> 'ADDRESS_CHECK_FAILED'),
                    days AS (
                        SELECT d::date AS day FROM generate_series(
                            p_since::timestamp,
                            CASE WHEN t.dated THEN v_until - 1 ELSE p_since END::timestamp,
                            interval '1 day') d),
                    st AS (
                        SELECT days.day,
                               CASE WHEN t.dated AND EXISTS (SELECT 1 FROM cov WHERE cov.day = days.day)
                                    THEN 'stored'
                                    WHEN NOT t.dated AND EXISTS (SELECT 1 FROM cov) THEN 'stored'
                                    ELSE (SELECT 'ordered, not stored yet (order ' || pend.order_id || ')'
                                          FROM pend
                                          WHERE NOT t.dated OR (days.day >= pend.s AND days.day < pend.e)
                                          ORDER BY pend.order_id LIMIT 1)
                               END AS state
                        FROM days)
                    SELECT st.state, min(st.day) AS s, max(st.day) + 1 AS e
                    FROM (SELECT st.*, st.day - (row_number() OVER (PARTITION BY st.state ORDER BY st.day))::integer AS grp
                          FROM st) st
                    WHERE st.state IS DISTINCT FROM 'stored'
                    GROUP BY st.state, st.grp
                    ORDER BY 2
                LOOP
                    IF g.state IS NOT NULL THEN
                        prm := p; dataset := ds; direction := dir; order_id := NULL; skipped := g.state;
                        since := CASE WHEN t.dated THEN g.s END;
                        until := CASE WHEN t.dated THEN g.e END;
                        RETURN NEXT;
                        CONTINUE;
                    END IF;
                    -- missing: as few requests as the span of one allows
                    s := g.s;
                    LOOP
                        e := CASE WHEN t.max_span_days > 0 THEN LEAST(g.e, s + t.max_span_days) ELSE g.e END;
                        reqs := reqs || CASE WHEN t.dated
                            THEN @extschema@.switchgrid_request(
                                     t.type, ARRAY[p],
                                     CASE WHEN dir = 'INJECTION' THEN 'INJECTION' ELSE t.directions[1] END,
                                     s::timestamp AT TIME ZONE 'Europe/Paris',
                                     e::timestamp AT TIME ZONE 'Europe/Paris')
                            ELSE @extschema@.switchgrid_request(t.type, ARRAY[p]) END;
                        rows_ds := rows_ds || ds;
                        rows_dir := rows_dir || dir;
                        rows_since := rows_since || CASE WHEN t.dated THEN s END;
                        rows_until := rows_until || CASE WHEN t.dated THEN e END;
                        s := e;
                        EXIT WHEN NOT t.dated OR s >= g.e;
                    END LOOP;
                END LOOP;
            END LOOP;
        END LOOP;

        -- one Order per meter, with its consent; at most 100 requests an
        -- Order (switchgrid_order's limit), so a longer list makes several.
        -- An Order the API refuses (a consent revoked elsewhere, say) skips
        -- this meter only; any other error (the budget, the API down) ends
        -- the run, the Orders placed before it kept (switchgrid_order).
        i := 1;
        WHILE i <= cardinality(reqs) LOOP
            ord := NULL;
            reason := NULL;
            IF NOT p_dry_run THEN
                SELECT jsonb_agg(x ORDER BY n) INTO chunk
                FROM unnest(reqs[i:i + 99]) WITH ORDINALITY AS u(x, n);
                BEGIN
                    ord := (@extschema@.switchgrid_order(chunk, c.consent_id) ->> 'id')::uuid;
                EXCEPTION WHEN invalid_parameter_value THEN
                    GET STACKED DIAGNOSTICS reason = MESSAGE_TEXT;
                    reason := 'the API refused the Order: ' || reason;
                END;
            END IF;
            FOR j IN i .. LEAST(i + 99, cardinality(reqs)) LOOP
                prm := p; dataset := rows_ds[j]; direction := rows_dir[j];
                since := rows_since[j]; until := rows_until[j]; order_id := ord; skipped := reason;
                RETURN NEXT;
            END LOOP;
            i := i + 100;
        END LOOP;
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION switchgrid.sync(text[], text[], date, date, boolean) FROM PUBLIC;

CREATE FUNCTION switchgrid_sync(prms text[], datasets text[], since date,
                                until date DEFAULT NULL, dry_run boolean DEFAULT true)
RETURNS TABLE(prm text, dataset text, direction text, since date, until date,
              order_id uuid, skipped text)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM switchgrid.sync($1, $2, $3, $4, $5);
$$;

COMMENT ON FUNCTION switchgrid_sync(text[], text[], date, date, boolean) IS
'Orders what switchgrid.coverage says is missing, one Order per meter with a live consent; a dry run (the default) places nothing';

REVOKE EXECUTE ON FUNCTION switchgrid_sync(text[], text[], date, date, boolean) FROM PUBLIC;
