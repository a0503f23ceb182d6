# An Order placed by consent, without "prms": its meter is the consent's
# (switchgrid.asks.consent_ids), even when the API's request objects do not
# repeat the PRMs (the spec does not promise them; the simulator's
# "omit_prms" setting leaves them out).  Downloads, the typed tables and
# switchgrid.loadcurve all get it.  A consent no recorded Ask holds is named
# in the error, until the Ask is recorded and the Order looked up again.
use strict;
use warnings;

use FindBin;
use JSON::PP;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $prm = '09111642617347';
my $sim = start_simulator();
my $node = PostgreSQL::Test::Cluster->new('by_consent');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.poll_interval' => '100ms');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
my $ask = sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', $prm ] ]);
my $consent;
ok( poll_until(
		sub {
			$consent = $node->safe_psql('postgres',
				"SELECT consent_ids ->> '$prm' FROM switchgrid.asks WHERE ask_id = '$ask'");
			$consent ne '';
		},
		undef,
		'the consent recorded'),
	'the signed Ask and its consent are recorded');

is($sim->control('POST', '/settings', { omit_prms => JSON::PP::true })->{json}{omit_prms},
	1, 'the simulator leaves "prms" out of request objects');

my $requests = q{jsonb_build_array(
	jsonb_build_object('type', 'LOADCURVE', 'direction', 'CONSUMPTION',
	                   'since', '2024-06-12', 'until', '2024-06-15'),
	jsonb_build_object('type', 'R65_SYNC', 'direction', 'SOUTIRAGE',
	                   'since', '2024-06-12', 'until', '2024-06-15'))};
my $order = $node->safe_psql('postgres',
	"SELECT switchgrid_order($requests, '$consent') ->> 'id'");
ok($order, 'an Order by consent, without prms');

# done: each request stored, or given up
my $settled = sub {
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT bool_and(fetched_at IS NOT NULL OR (status = 'SUCCESS' AND next_fetch_at IS NULL))
		FROM switchgrid.requests WHERE order_id = '$id'}) eq 't';
};
ok(poll_until(sub { $settled->($order) }, undef, 'the requests settled'), 'its requests are settled');
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(type || ' ' || array_to_string(prms, ',') || ' '
		                  || (fetched_at IS NOT NULL) || ' ' || COALESCE(last_error, '-'), E'\n' ORDER BY type)
		FROM switchgrid.requests WHERE order_id = '$order'}),
	"LOADCURVE $prm true -\nR65_SYNC $prm true -",
	'each request knows its meter, from the consent, and is stored');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) > 0 AND bool_and(prm = '$prm')
		FROM switchgrid.loadcurve
		WHERE request_id = (SELECT request_id FROM switchgrid.requests
		                    WHERE order_id = '$order' AND type = 'LOADCURVE')}),
	't', 'switchgrid.loadcurve holds the points, under the PRM');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) > 0 FROM switchgrid.daily_energy
		WHERE prm = '$prm' AND request_id = (SELECT request_id FROM switchgrid.requests
		                                     WHERE order_id = '$order' AND type = 'R65_SYNC')}),
	't', 'switchgrid.daily_energy holds the days, under the PRM');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM switchgrid_loadcurve(
		    (SELECT request_id FROM switchgrid.requests WHERE order_id = '$order' AND type = 'LOADCURVE'))
		WHERE prm = '$prm'}) > 0 ? 1 : 0,
	1, 'switchgrid_loadcurve() reads the points under the PRM too');

# A consent that no recorded Ask holds: the error says so, and the hint works.
$node->safe_psql('postgres', "DELETE FROM switchgrid.asks WHERE ask_id = '$ask'");
my $unknown = $node->safe_psql('postgres',
	"SELECT switchgrid_order(jsonb_build_array(jsonb_build_object('type', 'LOADCURVE',"
	  . " 'direction', 'CONSUMPTION', 'since', '2024-06-20', 'until', '2024-06-21')), '$consent') ->> 'id'");
my $lc = $node->safe_psql('postgres', "SELECT request_id FROM switchgrid.requests WHERE order_id = '$unknown'");
ok( poll_until(
		sub {
			$node->safe_psql('postgres', "SELECT last_error FROM switchgrid.requests WHERE request_id = '$lc'")
			  =~ /consent \Q$consent\E is not recorded here, so request \Q$lc\E has no PRM/;
		},
		undef,
		'the download to fail'),
	'a download of an unknown consent fails, naming the consent');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM switchgrid_loadcurve('$lc')");
like($err, qr/consent \Q$consent\E is not recorded here/, 'so does reading it');
like($err, qr/HINT:  Record that Ask/, '... with a hint');

$node->safe_psql('postgres', "SELECT switchgrid_ask_status('$ask')");
$node->safe_psql('postgres', "SELECT switchgrid_order_status('$unknown')");
ok(poll_until(sub { $settled->($unknown) }, undef, 'the request stored'), 'once the Ask is recorded again');
is( $node->safe_psql('postgres', qq{
		SELECT array_to_string(r.prms, ',') || ' ' || (r.fetched_at IS NOT NULL) || ' '
		       || (SELECT count(*) > 0 FROM switchgrid.loadcurve l
		           WHERE l.request_id = r.request_id AND l.prm = '$prm')
		FROM switchgrid.requests r WHERE r.request_id = '$lc'}),
	"$prm true true", 'and the Order looked up again, the request knows its meter and is stored');

$node->stop;
done_testing();
