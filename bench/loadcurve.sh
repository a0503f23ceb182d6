#!/usr/bin/env bash
#
# bench/loadcurve.sh
#	  How switchgrid_loadcurve() compares with doing the same in SQL over
#	  jsonb, on a 24-month PT10M curve (105,120 steps) from the simulator.
#
# Both ways read the same body; the baseline gets it for free (already in a
# psql variable), switchgrid_loadcurve() pays for the HTTP transfer too.
# Prints ratios (switchgrid / baseline) for time and for the backend's peak
# memory growth, each measured in a fresh session, best of 3 runs.
#
# Usage: bench/loadcurve.sh   (starts the sandbox if needed, leaves it running)

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

psql() { ./dev/sandbox psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

./dev/sandbox start >/dev/null
eval "$(./dev/sandbox psql -X -At -c '\! env | grep -E "^(SWITCHGRID_SIM_READY|PGHOST|PGPORT|PGUSER|PGDATABASE)=" | sed "s/^/export /"')"

# a consent and a 24-month order for the PT10M meter
ask=$(psql -c "SELECT switchgrid_ask(ARRAY(SELECT contract_id FROM switchgrid_search_contract(
	'SARL Les Tanneurs', prm => '30001234567890')), '{\"firstName\": \"A\", \"lastName\": \"B\"}') ->> 'id'")
python3 test/sim/simctl.py accept "$ask" >/dev/null
order=$(psql -c "SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['30001234567890'],
	'CONSUMPTION', '2022-01-01', '2024-01-01')) ->> 'id'")
psql -c "SELECT switchgrid_wait('$order', '5 minutes')" >/dev/null
request=$(psql -c "SELECT request_id FROM switchgrid.requests WHERE order_id = '$order'")
base=$(python3 -c "import json,os; print(json.load(open(os.environ['SWITCHGRID_SIM_READY']))['base_url'])")
bodyfile=$(mktemp)
trap 'rm -f "$bodyfile"' EXIT
curl -s -H "Authorization: Bearer sim-token" "$base/request/$request/data?format=json" >"$bodyfile"
echo "body: $(wc -c <"$bodyfile") bytes, $(psql -c "SELECT count(*) FROM switchgrid_loadcurve('$request')") steps"

# peak RSS growth (kB) and time (ms) of one query in a fresh session
measure()
{
	psql <<-SQL
		\set body \`cat $bodyfile\`
		CREATE TEMP TABLE hwm AS SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint AS kb;
		SELECT clock_timestamp() AS t0 \gset
		$1;
		SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint - kb,
		       round(extract(epoch FROM clock_timestamp() - :'t0') * 1000)
		FROM hwm;
	SQL
}

best()
{
	local i out t m bt= bm=
	for i in 1 2 3; do
		out=$(measure "$1" | tail -1)
		m=${out%%|*} t=${out##*|}
		if [ -z "$bt" ] || [ "$t" -lt "$bt" ]; then bt=$t; fi
		if [ -z "$bm" ] || [ "$m" -lt "$bm" ]; then bm=$m; fi
	done
	echo "$bt $bm"
}

# the HTTP transfer alone (the simulator computes the curve on each request)
xfer_ms=
for i in 1 2 3; do
	t=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer sim-token" \
		"$base/request/$request/data?format=json" | awk '{ printf "%d", $1 * 1000 }')
	if [ -z "$xfer_ms" ] || [ "$t" -lt "$xfer_ms" ]; then xfer_ms=$t; fi
done

read -r base_ms base_kb < <(best "CREATE TEMP TABLE r AS
	SELECT NULL::text AS prm, (b->>'startsAt')::timestamptz + (e.i - 1) * interval '10 minutes' AS ts,
	       (e.v #>> '{}')::float8 AS power_w
	FROM (SELECT :'body'::jsonb AS b) s, jsonb_array_elements(b->'values') WITH ORDINALITY AS e(v, i)")
read -r sg_ms sg_kb < <(best "CREATE TEMP TABLE r AS SELECT * FROM switchgrid_loadcurve('$request')")

echo "HTTP transfer alone (curl):                     ${xfer_ms} ms"
echo "baseline (jsonb in SQL, body already in hand):   ${base_ms} ms, peak memory +${base_kb} kB"
echo "switchgrid_loadcurve() (HTTP + C parser):        ${sg_ms} ms, peak memory +${sg_kb} kB"
awk -v a="$sg_ms" -v b="$base_ms" -v c="$sg_kb" -v d="$base_kb" -v x="$xfer_ms" 'BEGIN {
	printf "time ratio   switchgrid/baseline, with HTTP:          %.2f\n", (b > 0 ? a / b : 0);
	printf "time ratio   switchgrid/baseline, transfer removed:   %.2f\n", (b > 0 ? (a - x) / b : 0);
	printf "memory ratio switchgrid/baseline (peak RSS growth):   %.2f\n", (d > 0 ? c / d : 0) }'
