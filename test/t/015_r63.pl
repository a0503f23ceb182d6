# R63 and R63_SYNC: the worker reads Enedis' raw file at the request's
# dataUrl and stores it in switchgrid.loadcurve as LOADCURVE rows (UTC, start
# of the step), with each point's step and energy: exact values, the DST
# days, a meter whose step changes mid-day, overlapping orders, and a
# malformed file of each kind (kept out, a clear last_error, nothing half
# stored, the worker goes on).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 300, '--long-complete-ms', 600 ]);
my $node = PostgreSQL::Test::Cluster->new('r63');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '1s',
	'timezone' => 'Europe/Paris');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres',
	[
		[ 'Jeanne Dupond', '09111642617347' ],
		[ 'Lefevre', '25946599093143' ],
		[ 'Nina Changepas', '33333333333333' ],
		[ 'SARL Les Tanneurs', '30001234567890' ]
	]);

# Places an order and waits until the worker has finished it; returns its id.
sub order_done
{
	my ($requests) = @_;
	my $id = $node->safe_psql('postgres',
		"SELECT switchgrid_order(jsonb_build_array($requests)) ->> 'id'");
	ok( poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$id'")
				  eq 't';
			},
			undef, "order $id to finish"),
		'order finishes');
	return $id;
}

sub rows
{
	my ($prm, $since, $until) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*), count(DISTINCT ts),
		       to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
		       to_char(max(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
		FROM switchgrid.loadcurve
		WHERE prm = '$prm' AND direction = 'CONSUMPTION'
		  AND ts >= '$since' AND ts < '$until'});
}

my $order = order_done(q{
	switchgrid_request('R63', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-31', '2024-04-01'),
	switchgrid_request('R63_SYNC', ARRAY['25946599093143'], 'SOUTIRAGE', '2024-10-27', '2024-10-28'),
	switchgrid_request('R63', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-10-27', '2024-10-28'),
	switchgrid_request('R63', ARRAY['33333333333333'], 'SOUTIRAGE', '2024-06-04', '2024-06-05')});
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(type || ':' || status || ':' || rows_stored, ',' ORDER BY position)
		FROM switchgrid.requests WHERE order_id = '$order'}),
	'R63:SUCCESS:46,R63_SYNC:SUCCESS:50,R63:SUCCESS:49,R63:SUCCESS:95',
	'every R63 stored, row counts as in the files');

# read from the dataUrl, never from /request/{id}/data
my $log = sim_control('GET', '/log')->{json};
is(scalar(grep { $_->{path} =~ m{/request/[^/]+/data} } @$log), 0, 'no GET /request/{id}/data');
is(scalar(grep { $_->{server} eq 'data' && $_->{path} =~ m{^/files/} } @$log), 4,
	'four files downloaded from the data server');

is(rows('09111642617347', '2024-03-31 00:00', '2024-04-01 00:00'),
	'46|46|2024-03-30 23:00|2024-03-31 21:30', 'spring: 46 half-hours, UTC start of each step');
is(rows('25946599093143', '2024-10-27 00:00', '2024-10-28 00:00'),
	'50|50|2024-10-26 22:00|2024-10-27 22:30', 'autumn: 50 distinct half-hours');

# exact values: those of the simulator's LOADCURVE over the same days (a gap
# is a missing point in R63, a NULL value in LOADCURVE)
for my $case ([ '09111642617347', '2024-03-30T23:00:00Z', '2024-03-31T22:00:00Z' ],
	[ '25946599093143', '2024-10-26T22:00:00Z', '2024-10-27T23:00:00Z' ],
	[ '09111642617347', '2024-10-26T22:00:00Z', '2024-10-27T23:00:00Z' ])
{
	my ($prm, $since, $until) = @$case;
	my $expected = sim_control('GET',
		"/expected/loadcurve?prm=$prm&direction=CONSUMPTION&since=$since&until=$until")->{json};
	my $step = 1800 * 1_000_000;
	my @want;
	my $i = 0;
	for my $v (@{ $expected->{values} })
	{
		push @want, $i . ':' . $v if defined $v;
		$i++;
	}
	my $got = $node->safe_psql('postgres', qq{
		SELECT string_agg(((extract(epoch FROM ts - '$since'::timestamptz) / 1800)::int) || ':' ||
		                  power_w::bigint, ',' ORDER BY ts)
		FROM switchgrid.loadcurve
		WHERE prm = '$prm' AND ts >= '$since' AND ts < '$until'});
	is($got, join(',', @want), "$prm $since: every value and instant equals the simulator's");
}
is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE step_s <> 1800), count(*) FILTER (WHERE wh <> power_w / 2)
		FROM switchgrid.loadcurve WHERE prm IN ('09111642617347', '25946599093143')}),
	'0|0', 'PT30M steps: step_s 1800, wh = W / 2');

# the step that changes at 12:00 Paris: 72 PT10M steps then 24 PT30M, one gap
is( $node->safe_psql('postgres', q{
		SELECT string_agg(step_s || 'x' || n, ',' ORDER BY first) FROM (
		    SELECT step_s, count(*) AS n, min(ts) AS first FROM switchgrid.loadcurve
		    WHERE prm = '33333333333333' GROUP BY step_s) s}),
	'600x71,1800x24', 'step change: 71 PT10M points (one gap) then 24 PT30M');
is( $node->safe_psql('postgres', q{
		SELECT to_char(max(ts) FILTER (WHERE step_s = 600) AT TIME ZONE 'UTC', 'HH24:MI') || ' ' ||
		       to_char(min(ts) FILTER (WHERE step_s = 1800) AT TIME ZONE 'UTC', 'HH24:MI')
		FROM switchgrid.loadcurve WHERE prm = '33333333333333'}),
	'09:50 10:00', 'the last PT10M step starts at 09:50 UTC, the first PT30M at 10:00');
my $file = sim_control('GET',
	'/expected/r63?prm=33333333333333&since=2024-06-04T00:00:00%5BEurope/Paris%5D'
	  . '&until=2024-06-05T00:00:00%5BEurope/Paris%5D')->{json};
my $wh = 0;
$wh += $_->{v} * ($_->{p} eq 'PT10M' ? 600 : 1800) / 3600
  foreach @{ $file->{mesures}[0]{grandeur}[0]{points} };
is( $node->safe_psql('postgres', q{
		SELECT round(sum(wh)::numeric, 3) FROM switchgrid.loadcurve WHERE prm = '33333333333333'}),
	sprintf('%.3f', $wh), 'the day\'s energy is each value over its own step');
is( $node->safe_psql('postgres', q{
		SELECT steps || '/' || day_steps FROM switchgrid_loadcurve(
		    (SELECT request_id FROM switchgrid.requests WHERE prms = '{33333333333333}' LIMIT 1), '1d')}),
	'95/96', 'switchgrid_loadcurve(1d) of the step-change day: 95 steps held of 96');

# an overlapping order (and a LOADCURVE over the same day) updates in place
my $again = order_done(q{
	switchgrid_request('R63', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-31 12:00', '2024-04-01 06:00'),
	switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-03-31 18:00', '2024-04-01')});
is(rows('09111642617347', '2024-03-31 00:00', '2024-04-01 00:00'),
	'46|46|2024-03-30 23:00|2024-03-31 21:30', 'overlapping orders: no duplicate');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM switchgrid.loadcurve l JOIN switchgrid.requests r USING (request_id)
		WHERE l.prm = '09111642617347' AND r.order_id = '$again'}),
	'36', 'the later order wrote the points it covers (36 of the day, 12:00-24:00)');

# malformed files: one of each kind; the request keeps no row, says why, and
# the worker goes on with the next order
my @bad = (
	[ '{"header": {}}', 'has no "mesures" array' ],
	[ '{"mesures": [{"idPrm": "09111642617347", "grandeur": [{"unite": "kW", "points": []}]}]}',
		'is not in W' ],
	[ '{"mesures": [{"idPrm": "09111642617347", "grandeur": [{"points": [{"v": "1", "d": "2024-03-31 02:30:00", "p": "PT30M"}]}]}]}',
		'does not exist in Paris' ],
	[ '{"mesures": [{"idPrm": "09111642617347", "grandeur": [{"points": [{"v": "1", "d": "2024-03-31 01:00:00", "p": "PT30M"}, {"v": "2", "d": "2024-03-31 01:00:00", "p": "PT30M"}]}]}]}',
		'overlaps the point before it' ],
	[ '{"mesures": [{"idPrm": "09111642617347", "grandeur": [{"points": [{"v": "1", "d": "2024-03-31 01:00:00", "p": "PT30M"}, {"v": "x", "d": "2024-03-31 01:30:00", "p": "PT30M"}]}]}]}',
		'"v" that is not a number' ],
	[ '{"mesures": [{"idPrm": "09111642617347", "grandeur": [{"points": [{"v": "1", "d": "2024-03-31 01:00:00", "p": "P1D"}]}]}]}',
		'no load-curve step' ]);
for my $case (@bad)
{
	my ($body, $why) = @$case;
	sim_control('POST', '/faults',
		{ server => 'data', path => '/files/', times => -1, status => 200, body => $body });
	my $id = $node->safe_psql('postgres', q{
		SELECT switchgrid_order(switchgrid_request('R63', ARRAY['09111642617347'], 'SOUTIRAGE',
		    '2024-01-10', '2024-01-11')) -> 'requests' -> 0 ->> 'id'});
	ok( poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT last_error IS NOT NULL FROM switchgrid.requests WHERE request_id = '$id'")
				  eq 't';
			},
			undef, 'the malformed file to be reported'),
		'malformed file reported');
	my $err = $node->safe_psql('postgres',
		"SELECT last_error FROM switchgrid.requests WHERE request_id = '$id'");
	like($err, qr/malformed R63 file.*\Q$why\E/s, "last_error says why: $why");
	is( $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM switchgrid.loadcurve WHERE request_id = '$id') || '|' ||
			       coalesce(rows_stored::text, 'none')
			FROM switchgrid.requests WHERE request_id = '$id'}),
		'0|none', 'nothing stored, not even half');
	sim_control('DELETE', '/faults');
}
# and the worker goes on
my $after = order_done(q{
	switchgrid_request('R63', ARRAY['30001234567890'], 'INJECTION', '2024-06-04', '2024-06-05')});
is( $node->safe_psql('postgres', qq{
		SELECT rows_stored > 0 FROM switchgrid.requests WHERE order_id = '$after'}),
	't', 'the worker stores the next R63 (injection) after the malformed ones');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE direction <> 'INJECTION' OR step_s <> 600)
		FROM switchgrid.loadcurve WHERE prm = '30001234567890'}),
	'0', 'injection, PT10M');

done_testing();
