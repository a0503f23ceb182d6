# switchgrid.max_requests_per_second holds at every moment, at its default
# of 5 (Enedis' own quota): in the simulator's request log, no one-second
# window holds more than 5 of the worker's requests, wherever it starts.
# (Before the worker was a pipeline, a round began a few ms after the last
# request of the one before, and 6 requests fell within one second.)
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--pending-ms', 100, '--complete-ms', 2000 ]);
my $node = PostgreSQL::Test::Cluster->new('rate');
$node->init;
# max_requests_per_second keeps its default
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '1s',
	'switchgrid.max_concurrency' => 8);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
is($node->safe_psql('postgres', 'SHOW switchgrid.max_requests_per_second'), '5',
	'the default rate is 5 a second');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);

# Ten Orders placed at once: each is polled several times before it is
# finished, then its result downloaded, so the worker always has more to
# send than the rate allows.
my @orders = split /\n/, $node->safe_psql('postgres', q{
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id'
	FROM generate_series(1, 10)});
is(scalar(@orders), 10, 'ten orders placed');
my $in = join(',', map { "'$_'" } @orders);
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM switchgrid.requests WHERE order_id IN ($in) AND fetched_at IS NOT NULL"
			) eq '10';
		},
		120,
		'the ten results to be stored'),
	'the worker finished the ten orders and stored their results');

# The worker's requests after the Orders were placed (the backend only
# POSTed since), as they arrived at the simulator, on either of its servers.
my $log = $sim->control('GET', '/log')->{json};
my ($placed) = sort { $b <=> $a } map { $_->{seq} } grep { $_->{method} eq 'POST' } @$log;
my @at = sort { $a <=> $b }
  map { $_->{at} } grep { $_->{method} eq 'GET' && $_->{seq} > $placed } @$log;
ok(scalar(@at) >= 20, scalar(@at) . " requests of the worker");

# For each request, how many arrived in the second that starts with it.
my ($busiest, $from) = (0, 0);
my $j = 0;
for my $i (0 .. $#at)
{
	$j++ while $j < @at && $at[$j] < $at[$i] + 1.0;
	if ($j - $i > $busiest)
	{
		$busiest = $j - $i;
		$from = $i;
	}
}
cmp_ok($busiest, '<=', 5,
	"no one-second window holds more than 5 requests (busiest: $busiest, from request $from)");

$node->stop;
done_testing();
