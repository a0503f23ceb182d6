--
-- init: the extension installs, and its functions are closed to PUBLIC
--
CREATE EXTENSION switchgrid;

SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'switchgrid'
WHERE p.proname LIKE 'switchgrid\_%'
ORDER BY 1, 2;

-- settings and their defaults
SELECT name, boot_val AS default, unit, context FROM pg_settings
WHERE name LIKE 'switchgrid.%' AND name NOT IN ('switchgrid.base_url', 'switchgrid.api_token_file')
ORDER BY name;

-- the simulator starts empty for this run
\! python3 test/sim/simctl.py reset --all

-- A helper for the tests: the error an SQL statement raises, with its
-- SQLSTATE, detail and hint, and uuids (which differ from run to run) masked.
CREATE FUNCTION sqlstate_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    msg text;
    detail text;
    hint text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN regexp_replace(
        state || ': ' || msg
        || CASE WHEN detail <> '' THEN E'\nDETAIL: ' || detail ELSE '' END
        || CASE WHEN hint <> '' THEN E'\nHINT: ' || hint ELSE '' END,
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
END $$;

-- Another: poll an order until it is finished, with a deadline.
CREATE FUNCTION await_order(order_id uuid, deadline interval DEFAULT '30 seconds')
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    o jsonb;
    stop timestamptz := clock_timestamp() + deadline;
BEGIN
    LOOP
        o := switchgrid_order_status(order_id);
        IF o->>'status' IN ('SUCCESS', 'SOME_REQUESTS_FAILED', 'ADDRESS_CHECK_FAILED') THEN
            RETURN o;
        END IF;
        IF clock_timestamp() > stop THEN
            RAISE EXCEPTION 'order % still % after %', order_id, o->>'status', deadline;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

-- One signed Ask covering the catalogue's meters, for the order tests.
SELECT switchgrid_ask(
           ARRAY(SELECT c.contract_id
                 FROM (VALUES ('Jeanne Dupond', '09111642617347'),
                              ('SARL Les Tanneurs', '30001234567890'),
                              ('Marc Sansservice', '12345678901234'),
                              ('Paul Sansmesure', '98765432109876'),
                              ('Lucie Vieuxcompteur', '22222222222222')) AS m(name, prm),
                      LATERAL switchgrid_search_contract(m.name, prm => m.prm) AS c),
           '{"firstName": "Jeanne", "lastName": "Dupond"}') ->> 'id' AS fixture_ask
\gset
\setenv FIXTURE_ASK :fixture_ask
\! python3 test/sim/simctl.py accept "$FIXTURE_ASK"
SELECT a->>'status' AS status, jsonb_object_keys(a->'consentIds') AS prm
FROM switchgrid_ask_status(:'fixture_ask') AS a
ORDER BY 2;
-- kept for the other test files
CREATE TABLE fixture AS SELECT :'fixture_ask'::uuid AS ask_id;
