/* switchgrid--0.1.0.sql: the whole SQL surface of version 0.1.0 */

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
RETURNS TABLE(prm text, ts timestamptz, power_w double precision)
AS 'MODULE_PATHNAME', 'switchgrid_loadcurve'
LANGUAGE C VOLATILE
ROWS 1000;

COMMENT ON FUNCTION switchgrid_loadcurve(uuid, text) IS
'Load curve of a LOADCURVE request, one row per step (GET /request/{id}/data)';

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
