# switchgrid.max_requests_per_second holds across the worker's rounds, not
# only within one: with 4 a second, no two of the worker's requests start
# less than 250 ms apart, even where one round ends and the next begins
# (before, the next round started a few ms after the last request).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--pending-ms', 100, '--complete-ms', 1500 ]);
my $node = PostgreSQL::Test::Cluster->new('rate');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '1s',
	'switchgrid.max_concurrency' => 8,
	'switchgrid.max_requests_per_second' => 4);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);

# Six Orders placed at once: each is polled several times before it is
# finished, so the worker's rounds follow each other closely.
my @orders = split /\n/, $node->safe_psql('postgres', q{
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id'
	FROM generate_series(1, 6)});
is(scalar(@orders), 6, 'six orders placed');
my $in = join(',', map { "'$_'" } @orders);
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM switchgrid.orders WHERE order_id IN ($in) AND finished_at IS NOT NULL"
			) eq '6';
		},
		120,
		'the six orders finished'),
	'the worker finished the six orders');

# The worker's GETs after the Orders were placed (the backend only POSTed
# since), in the order they arrived.
my $log = $sim->control('GET', '/log')->{json};
my ($placed) = sort { $b <=> $a } map { $_->{seq} } grep { $_->{method} eq 'POST' } @$log;
my @at = map { $_->{at} }
  grep { $_->{server} eq 'api' && $_->{method} eq 'GET' && $_->{seq} > $placed } @$log;
ok(scalar(@at) >= 12, scalar(@at) . ' polls, over several rounds');
my $min_gap;
for my $i (1 .. $#at)
{
	my $gap = $at[$i] - $at[ $i - 1 ];
	$min_gap = $gap if !defined $min_gap || $gap < $min_gap;
}
# 250 ms apart at 4 a second; what arrives can be early by the scheduling
# jitter of two processes, never by a round's worth
cmp_ok($min_gap, '>=', 0.2, sprintf('no two polls closer than 200 ms (closest: %.0f ms)', $min_gap * 1000));

$node->stop;
done_testing();
