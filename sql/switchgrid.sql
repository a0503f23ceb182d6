/* switchgrid.sql: the whole SQL surface of version @EXTVERSION@ */

\echo Use "CREATE EXTENSION switchgrid" to load this file. \quit

-- Contracts

CREATE FUNCTION switchgrid_search_contract(
    name text,
    address text DEFAULT NULL,
    prm text DEFAULT NULL)
RETURNS TABLE(contract_id uuid, prm text, holder text, category text, address jsonb)
AS 'MODULE_PATHNAME', 'switchgrid_search_contract'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_search_contract(text, text, text) IS
'Finds electricity contracts by holder name and address or PRM (GET /search_contract)';

-- Asks (consent requests)

CREATE FUNCTION switchgrid_ask(body jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_ask_body'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_ask(jsonb) IS
'Creates an Ask from a body built by the caller (POST /ask)';

CREATE FUNCTION switchgrid_ask(
    contract_ids uuid[],
    signer jsonb,
    purposes text[] DEFAULT NULL,
    consent_duration text DEFAULT NULL,
    scopes jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_ask'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_ask(uuid[], jsonb, text[], text, jsonb) IS
'Creates an Ask for contracts found by switchgrid_search_contract (POST /ask)';

CREATE FUNCTION switchgrid_ask_status(ask_id uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_ask_status'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_ask_status(uuid) IS
'Returns an Ask with its status and consent ids (GET /ask/{id})';

CREATE FUNCTION switchgrid_asks(status text DEFAULT NULL, prm text DEFAULT NULL)
RETURNS TABLE(ask_id uuid, status text, created_at timestamptz,
              accepted_at timestamptz, prms text[], consent_ids jsonb, ask jsonb)
AS 'MODULE_PATHNAME', 'switchgrid_asks'
LANGUAGE C VOLATILE
ROWS 100;

COMMENT ON FUNCTION switchgrid_asks(text, text) IS
'Lists every Ask, following the API''s paging (GET /ask)';

CREATE FUNCTION switchgrid_cancel_ask(ask_id uuid)
RETURNS void
AS 'MODULE_PATHNAME', 'switchgrid_cancel_ask'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_cancel_ask(uuid) IS
'Cancels an Ask and revokes its consents (DELETE /ask/{id})';

-- Orders

CREATE FUNCTION switchgrid_request(
    type text,
    prms text[] DEFAULT NULL,
    direction text DEFAULT NULL,
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    retry_after_activation boolean DEFAULT false)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_request'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION switchgrid_request(text, text[], text, timestamptz, timestamptz, boolean) IS
'Builds and checks one request object for switchgrid_order; makes no HTTP call';

CREATE FUNCTION switchgrid_order(requests jsonb, consent_id uuid DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_order'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_order(jsonb, uuid) IS
'Orders data (POST /order); every request is checked before anything is sent';

CREATE FUNCTION switchgrid_order_status(order_id uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_order_status'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_order_status(uuid) IS
'Returns an Order with the status of each request (GET /order/{id})';

-- Data

CREATE FUNCTION switchgrid_loadcurve(request_id uuid, period text DEFAULT NULL)
RETURNS TABLE(prm text, ts timestamptz, power_w double precision,
              step_s integer, wh double precision, steps integer, day_steps integer)
AS 'MODULE_PATHNAME', 'switchgrid_loadcurve'
LANGUAGE C VOLATILE
ROWS 1000;

COMMENT ON FUNCTION switchgrid_loadcurve(uuid, text) IS
'Load curve of a LOADCURVE, R63 or R63_SYNC request, one row per step (or per Paris day with period 1d, with the steps it holds out of the steps the day has)';

CREATE FUNCTION switchgrid_data(order_id uuid, request_id uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_data'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_data(uuid, uuid) IS
'Raw Enedis JSON behind a finished request''s dataUrl (R64, R65, R66, R67, C68)';

-- Every function spends API credit or reveals meter data: nobody but the
-- owner runs them until granted.
REVOKE EXECUTE ON FUNCTION
    switchgrid_search_contract(text, text, text),
    switchgrid_ask(jsonb),
    switchgrid_ask(uuid[], jsonb, text[], text, jsonb),
    switchgrid_ask_status(uuid),
    switchgrid_asks(text, text),
    switchgrid_cancel_ask(uuid),
    switchgrid_request(text, text[], text, timestamptz, timestamptz, boolean),
    switchgrid_order(jsonb, uuid),
    switchgrid_order_status(uuid),
    switchgrid_loadcurve(uuid, text),
    switchgrid_data(uuid, uuid)
FROM PUBLIC;

-- ================================================================
-- Durable state: what was placed or looked up, and the fetched data.
-- ================================================================
-- The tables belong to the extension's owner and nobody else can read them
-- until granted.  They are logged (they survive a crash) and marked as
-- configuration tables, so pg_dump keeps their rows.

CREATE SCHEMA switchgrid;
REVOKE ALL ON SCHEMA switchgrid FROM PUBLIC;

CREATE TABLE switchgrid.asks (
    ask_id        uuid PRIMARY KEY,
    status        text NOT NULL,
    created_at    timestamptz,
    accepted_at   timestamptz,
    user_url      text,
    prms          text[],
    consent_ids   jsonb,
    raw           jsonb NOT NULL,             -- the Ask as the API returned it
    first_seen    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    test_env      boolean NOT NULL DEFAULT false, -- created with switchgrid.test_env
    next_poll_at  timestamptz,                -- NULL: nothing left to wait for
    polls         integer NOT NULL DEFAULT 0,
    failures      integer NOT NULL DEFAULT 0, -- failed polls in a row
    last_error    text
);

CREATE TABLE switchgrid.orders (
    order_id      uuid PRIMARY KEY,
    consent_id    uuid,
    status        text NOT NULL,
    created_at    timestamptz,
    finished_at   timestamptz,                -- terminal, and every result stored
    raw           jsonb NOT NULL,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    next_poll_at  timestamptz,
    polls         integer NOT NULL DEFAULT 0,
    failures      integer NOT NULL DEFAULT 0,
    last_error    text
);

CREATE TABLE switchgrid.requests (
    request_id    uuid PRIMARY KEY,
    order_id      uuid NOT NULL REFERENCES switchgrid.orders ON DELETE CASCADE,
    position      integer NOT NULL,           -- index in the order, from 0
    type          text NOT NULL,
    prms          text[],
    direction     text,
    since         text,
    until         text,
    retry_after_activation boolean NOT NULL DEFAULT false,
    status        text NOT NULL,
    ordered_at    timestamptz,
    completed_at  timestamptz,
    data_url      text,
    error_message text,
    raw           jsonb NOT NULL,
    data          jsonb,                      -- payload of requests that are no load curve
    rows_stored   bigint,                     -- points stored, for LOADCURVE, R63, R63_SYNC
    fetched_at    timestamptz,                -- when the result was stored
    next_fetch_at timestamptz,                -- set while a download is due
    fetches       integer NOT NULL DEFAULT 0,
    failures      integer NOT NULL DEFAULT 0,
    last_error    text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON switchgrid.requests (order_id);
-- what the worker looks for at each round
CREATE INDEX ON switchgrid.asks (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX ON switchgrid.orders (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX ON switchgrid.requests (next_fetch_at) WHERE next_fetch_at IS NOT NULL;

CREATE TABLE switchgrid.loadcurve (
    prm           text NOT NULL,
    direction     text NOT NULL,              -- CONSUMPTION or INJECTION
    ts            timestamptz NOT NULL,       -- start of the step
    power_w       double precision,           -- mean power over the step; NULL: no measure
    request_id    uuid NOT NULL,              -- the request that last wrote this point
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    -- the length of the step in seconds (600 for PT10M); NULL: unknown, for
    -- a row kept from 0.1.0 that its neighbours do not tell
    step_s        integer CHECK (step_s > 0),
    -- the energy of the step in Wh: the mean power times the step, kept
    -- consistent with them by the server
    wh            double precision GENERATED ALWAYS AS (power_w * step_s / 3600) STORED,
    PRIMARY KEY (prm, direction, ts)
);

CREATE TABLE switchgrid.webhook_events (
    event_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    tag           text NOT NULL,
    created_at    timestamptz,
    ask_id        uuid,
    order_id      uuid,
    request_id    uuid,
    request_type  text,
    payload       jsonb NOT NULL,
    handled_at    timestamptz                 -- when the worker took the hint; NULL: not yet
);
-- what expires (switchgrid.webhook_retention)
CREATE INDEX ON switchgrid.webhook_events (received_at);
-- the events the worker has not taken yet
CREATE INDEX ON switchgrid.webhook_events (event_id) WHERE handled_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('switchgrid.asks', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.orders', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.requests', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.loadcurve', '');
SELECT pg_catalog.pg_extension_config_dump('switchgrid.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('switchgrid.webhook_events', 'event_id'), '');

-- Whether a switchgrid worker follows Orders in this database: false where
-- nothing will ever poll what switchgrid.pending lists.
CREATE FUNCTION switchgrid.worker_follows()
RETURNS boolean
AS 'MODULE_PATHNAME', 'switchgrid_worker_follows'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- What the worker is waiting on; "followed": whether a worker runs here.
CREATE VIEW switchgrid.pending AS
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

-- ----------------------------------------------------------------
-- Recording.  Called by the C functions and the worker, as the
-- extension's owner; not callable by anyone else.
-- ----------------------------------------------------------------

-- Tells listeners: NOTIFY switchgrid, '<json>'.
CREATE FUNCTION switchgrid.notify(event text, fields jsonb)
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_notify('switchgrid',
        (pg_catalog.jsonb_build_object('event', event) || fields)::text);
$$;

CREATE FUNCTION switchgrid.api_time(s text)
RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s IS NULL OR s = '' THEN NULL ELSE s::timestamptz END;
$$;

-- Upserts an Ask; "poll_in" is when the worker should look at it again if it
-- is still waiting for a signature.
CREATE FUNCTION switchgrid.record_ask(a jsonb, poll_in interval DEFAULT '5 seconds',
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

-- Marks requests and the order as finished once every result is stored,
-- and tells listeners, once.
CREATE FUNCTION switchgrid.check_order_finished(oid_ uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
BEGIN
    SELECT * INTO o FROM switchgrid.orders WHERE order_id = oid_ FOR UPDATE;
    IF NOT FOUND OR o.finished_at IS NOT NULL
       OR o.status NOT IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED') THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM switchgrid.requests
               WHERE order_id = oid_ AND (status NOT IN ('SUCCESS', 'FAILED')
                                          OR (status = 'SUCCESS' AND fetched_at IS NULL))) THEN
        RETURN;
    END IF;
    UPDATE switchgrid.orders SET finished_at = now(), next_poll_at = NULL
    WHERE order_id = oid_;
    PERFORM switchgrid.notify('order.finished',
        jsonb_build_object('order_id', oid_, 'status', o.status,
                           'requests', (SELECT count(*) FROM switchgrid.requests WHERE order_id = oid_),
                           'failed', (SELECT count(*) FROM switchgrid.requests
                                      WHERE order_id = oid_ AND status = 'FAILED')));
END $$;

-- Upserts an Order and its requests.  "sent" is the request array as it was
-- POSTed, if known: the API's answer may not repeat prms, direction and
-- period.  "poll_in" is when to look at the order again if not terminal;
-- "fetch" says whether finished requests should be downloaded.
CREATE FUNCTION switchgrid.record_order(o jsonb, sent jsonb DEFAULT NULL,
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

-- Stores the raw payload of a non-LOADCURVE request.
CREATE FUNCTION switchgrid.store_data(req uuid, payload jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    PERFORM 1 FROM switchgrid.orders
    WHERE order_id = (SELECT order_id FROM switchgrid.requests WHERE request_id = req) FOR UPDATE;
    SELECT * INTO r FROM switchgrid.requests WHERE request_id = req FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % is not recorded', req;
    END IF;
    UPDATE switchgrid.requests
    SET data = payload, failures = 0, fetched_at = now(), next_fetch_at = NULL, last_error = NULL,
        fetches = fetches + 1, updated_at = now()
    WHERE request_id = req;
    IF r.fetched_at IS NULL THEN
        PERFORM switchgrid.notify('request.finished',
            jsonb_build_object('order_id', r.order_id, 'request_id', req, 'type', r.type,
                               'status', 'SUCCESS', 'stored', true));
    END IF;
    PERFORM switchgrid.check_order_finished(r.order_id);
END $$;

-- A failed attempt: kept for switchgrid.pending, retried at "retry_at"
-- (updated_at says when an Ask or Order was last tried).
-- After 50 failures in a row the worker gives up on the item (next_* is
-- cleared, the error stays); switchgrid_order_status() or a webhook revives it.
CREATE FUNCTION switchgrid.record_failure(kind text, id uuid, error text, retry_at timestamptz)
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

CREATE FUNCTION switchgrid.record_ask_cancelled(ask uuid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE switchgrid.asks SET status = 'CANCELLED', next_poll_at = NULL, updated_at = now()
    WHERE ask_id = ask;
$$;

-- Deletes the webhook events received more than "keep" ago, at most "batch"
-- of them (the worker calls it again while it returns "batch").
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
CREATE FUNCTION switchgrid.order_progress(ord uuid)
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA switchgrid FROM PUBLIC;
-- read by switchgrid.pending, for whoever may read it
GRANT EXECUTE ON FUNCTION switchgrid.worker_follows() TO PUBLIC;

-- Following Orders

CREATE FUNCTION switchgrid_wait(order_id uuid, timeout interval DEFAULT '15 minutes')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'switchgrid_wait'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_wait(uuid, interval) IS
'Waits until an Order is finished and its results are stored; returns the Order';

CREATE FUNCTION switchgrid_webhook(payload jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'switchgrid_webhook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION switchgrid_webhook(jsonb) IS
'Takes a Switchgrid webhook delivery: records it and has the Ask or Order polled now';

REVOKE EXECUTE ON FUNCTION switchgrid_wait(uuid, interval), switchgrid_webhook(jsonb) FROM PUBLIC;
