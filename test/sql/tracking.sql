--
-- tracking: what the functions record in schema switchgrid, switchgrid_wait()
-- and switchgrid_webhook()
--
\! python3 test/sim/simctl.py reset

-- everything placed or looked up so far is in the tables
SELECT status, count(*) FROM switchgrid.asks GROUP BY status ORDER BY status;
SELECT count(*) > 0 AS has_orders, bool_and(raw ? 'id') AS raw_kept FROM switchgrid.orders;

-- an order placed and waited for: its rows and its data are stored
SET timezone = 'Europe/Paris';
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-10-27', '2024-10-28'),
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-10-01', '2024-10-08'),
    switchgrid_request('R65_SYNC', ARRAY['98765432109876'], since => '2024-10-01', until => '2024-10-08'))) ->> 'id' AS order_id
\gset
SELECT type, prms, direction, since, until, status IN ('NOT_STARTED', 'PENDING') AS pending,
       fetched_at IS NULL AS not_fetched
FROM switchgrid.requests WHERE order_id = :'order_id' ORDER BY position;
SELECT kind, type FROM switchgrid.pending WHERE order_id = :'order_id' ORDER BY 1, 2;

-- without a worker in this database, switchgrid_wait() polls and downloads itself
SELECT switchgrid_wait(:'order_id', '30 seconds') ->> 'status' AS status;
SELECT status, finished_at IS NOT NULL AS finished, next_poll_at IS NULL AS done_polling
FROM switchgrid.orders WHERE order_id = :'order_id';
SELECT type, status, rows_stored, data IS NOT NULL AS has_data, fetches, error_message
FROM switchgrid.requests WHERE order_id = :'order_id' ORDER BY position;
SELECT count(*) AS pending FROM switchgrid.pending WHERE order_id = :'order_id';

-- the load curve, consolidated per meter and direction
SELECT count(*) AS points, min(ts) AS first, max(ts) AS last
FROM switchgrid.loadcurve
WHERE prm = '09111642617347' AND ts >= '2024-10-27' AND ts < '2024-10-28';
-- identical to what switchgrid_loadcurve() reads
SELECT count(*) AS differences
FROM switchgrid_loadcurve((SELECT request_id FROM switchgrid.requests
                           WHERE order_id = :'order_id' AND type = 'LOADCURVE')) f
FULL JOIN (SELECT * FROM switchgrid.loadcurve
           WHERE prm = '09111642617347' AND ts >= '2024-10-27' AND ts < '2024-10-28') s
       USING (prm, ts)
WHERE f.power_w IS DISTINCT FROM s.power_w;

-- an overlapping later order updates points instead of duplicating them
SELECT switchgrid_wait((switchgrid_order(
    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
                       '2024-10-27 12:00', '2024-10-28 12:00'))->>'id')::uuid) ->> 'status' AS status;
SELECT count(*) AS points, count(DISTINCT request_id) AS written_by
FROM switchgrid.loadcurve
WHERE prm = '09111642617347' AND ts >= '2024-10-27' AND ts < '2024-10-28 12:00';

-- waiting has a deadline
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "delay_ms": 100, "times": -1}'
SELECT switchgrid_order(switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE',
                                           '2024-01-01', '2024-03-01')) ->> 'id' AS slow_order
\gset
SELECT sqlstate_of(format('SELECT switchgrid_wait(%L, %L)', :'slow_order', '300 milliseconds'));
\! python3 test/sim/simctl.py clear-faults
SELECT switchgrid_wait(:'order_id', '0 seconds');
SELECT switchgrid_wait(NULL);

-- webhooks: checked, recorded, and never trusted as data
SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object(
    '_tag', 'order.request_success', 'createdAt', '2024-09-17T10:21:32.262Z',
    'organizationId', 'a0efdd19-de68-480d-a92f-458ffd98f5c2',
    'orderId', :'order_id', 'requestType', 'R65_SYNC',
    'requestId', '00000000-0000-0000-0000-0000000000aa')));
-- a second delivery of the same event is harmless
SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object(
    '_tag', 'order.request_success', 'orderId', :'order_id', 'requestType', 'R65_SYNC',
    'requestId', '00000000-0000-0000-0000-0000000000aa')));
SELECT tag, request_type, order_id = :'order_id' AS same_order, created_at
FROM switchgrid.webhook_events ORDER BY event_id;
-- the order it names was finished: nothing changes
SELECT finished_at IS NOT NULL AS still_finished, next_poll_at IS NULL AS not_polled
FROM switchgrid.orders WHERE order_id = :'order_id';
SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000001"}}');

SELECT switchgrid_webhook('{"event": {"_tag": "order.deleted", "orderId": "00000000-0000-0000-0000-000000000001"}}');
SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted"}}');
SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "42"}}');
SELECT switchgrid_webhook('{"_tag": "ask.accepted"}');
SELECT switchgrid_webhook('[]');
SELECT switchgrid_webhook(NULL);
SELECT count(*) AS events FROM switchgrid.webhook_events;

-- The worker's side of webhooks (it works in another database here, so it is
-- played by hand): an event hurries an Order that is going well, keeps the
-- backoff (and any Retry-After) of one whose last poll failed, and revives
-- one given up on.
CREATE FUNCTION hint(ord uuid) RETURNS bigint LANGUAGE sql AS $$
    SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object(
        '_tag', 'order.request_success', 'orderId', ord)));
    SELECT count(*) FROM switchgrid.take_webhook_events(1000);
$$;
UPDATE switchgrid.orders SET next_poll_at = now() + interval '1 hour', failures = 0,
       updated_at = now() - interval '1 minute' WHERE order_id = :'slow_order';
SELECT hint(:'slow_order') AS unknown_orders;
SELECT next_poll_at <= now() AS hurried FROM switchgrid.orders WHERE order_id = :'slow_order';
UPDATE switchgrid.orders SET next_poll_at = now() + interval '1 hour', failures = 3,
       updated_at = now() - interval '1 minute' WHERE order_id = :'slow_order';
SELECT hint(:'slow_order') AS unknown_orders;
SELECT next_poll_at > now() + interval '50 minutes' AS backoff_kept, failures
FROM switchgrid.orders WHERE order_id = :'slow_order';
UPDATE switchgrid.orders SET next_poll_at = NULL, failures = 50 WHERE order_id = :'slow_order';
SELECT hint(:'slow_order') AS unknown_orders;
SELECT next_poll_at <= now() AS revived, failures
FROM switchgrid.orders WHERE order_id = :'slow_order';
DROP FUNCTION hint(uuid);

RESET timezone;

-- waiting for an order Switchgrid does not know fails at once
SELECT switchgrid_wait('00000000-0000-0000-0000-0000000000bb', '10 seconds');
