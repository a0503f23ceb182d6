# The worker is a pipeline: a slow transfer holds back neither the records
# of the others nor new work.  The first poll of an Order is held back 30 s
# by the simulator; meanwhile the other Order polled with it is recorded,
# and an Order placed afterwards is claimed, polled until it is finished and
# its result downloaded, while the held answer is still outstanding.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 600 ]);
my $node = PostgreSQL::Test::Cluster->new('pipeline');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.timeout' => '60s');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);

my $log = sub { $sim->control('GET', '/log')->{json} };
my $order_sql =
  q{SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id'};
sub recorded
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT polls > 0 FROM switchgrid.orders WHERE order_id = '$id'") eq 't';
}

# The first poll of an Order to arrive is held back 30 s.
$sim->control('POST', '/faults',
	{ method => 'GET', path => '/order/', delay_ms => 30000, times => 1 });

# Both placed in one transaction: the worker claims and polls them together.
my @two = split /\n/, $node->safe_psql('postgres', "BEGIN; $order_sql; $order_sql; COMMIT;");
is(scalar(@two), 2, 'two orders placed together');

# The held poll, as the simulator's log shows it: no status yet.
my $held;
ok( poll_until(
		sub {
			($held) = grep { $_->{method} eq 'GET' && $_->{path} =~ m{/order/} && !defined $_->{status} }
			  @{ $log->() };
			return defined $held;
		},
		20,
		'a poll to be held back'),
	'one poll is held back');
my ($slow) = $held->{path} =~ m{/order/([0-9a-f-]{36})$};
my ($quick) = grep { $_ ne $slow } @two;
ok($slow && $quick, 'the held poll is about one of them');

ok(poll_until(sub { recorded($quick) }, 20, 'the other order recorded'),
	'the other order is recorded');
ok(!defined((grep { $_->{seq} == $held->{seq} } @{ $log->() })[0]{status}),
	'... while the held answer is still outstanding');
ok(!recorded($slow), '... and the held order is not recorded yet');

# An Order placed now is claimed as a slot is free, followed to its end
# and its result stored, all while the held answer is still outstanding.
my $late = $node->safe_psql('postgres', $order_sql);
ok( poll_until(
		sub {
			$node->safe_psql('postgres', qq{
				SELECT o.finished_at IS NOT NULL AND bool_and(r.fetched_at IS NOT NULL)
				FROM switchgrid.orders o JOIN switchgrid.requests r USING (order_id)
				WHERE o.order_id = '$late' GROUP BY o.finished_at}) eq 't';
		},
		20,
		'the later order to finish and its result to be stored'),
	'an order placed later is finished and its result stored');
ok(!defined((grep { $_->{seq} == $held->{seq} } @{ $log->() })[0]{status}),
	'... while the held answer is still outstanding');
ok(!recorded($slow), '... and the held order is still not recorded');

$sim->control('DELETE', '/faults');
$node->stop('immediate');
done_testing();
