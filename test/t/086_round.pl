# A slow transfer does not hold back what the rest of the worker's round
# brought: each answer is recorded as soon as it is in.  Two Orders are
# polled in one round; the answer about one is held back 30 s by the
# simulator, and the other is recorded meanwhile.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 60000 ]);
my $node = PostgreSQL::Test::Cluster->new('round');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.timeout' => '60s');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);

# Both placed in one transaction, so both are due in the same round.
my ($slow, $quick) = split /\n/, $node->safe_psql('postgres', q{
	BEGIN;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id';
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id';
	COMMIT;});
ok($slow && $quick, 'two orders placed together');
$sim->control('POST', '/faults', { method => 'GET', path => "/order/$slow", delay_ms => 30000 });

my $log = sub { $sim->control('GET', '/log')->{json} };
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT polls > 0 FROM switchgrid.orders WHERE order_id = '$quick'") eq 't';
		},
		25,
		'the quick order recorded'),
	'the quick order is recorded');
my @held = grep { $_->{path} =~ /\Q$slow\E$/ && $_->{method} eq 'GET' } @{ $log->() };
ok(@held >= 1, 'the slow order was polled');
ok(!defined $held[-1]{status}, '... and its answer was still held back when the quick one was recorded');
is($node->safe_psql('postgres', "SELECT polls FROM switchgrid.orders WHERE order_id = '$slow'"),
	'0', '... so the slow one is not recorded yet');

$sim->control('DELETE', '/faults');
$node->stop('immediate');
done_testing();
