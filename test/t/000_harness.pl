
# t/000_harness.pl
#	  The TAP harness itself: a simulator starts and answers, and a node
#	  preloads switchgrid pointed at it. When this fails, look here before
#	  reading the failures of the other t/*.pl.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use SwitchgridTest;

my $sim = start_simulator();
like($sim->{base_url}, qr{^http://127\.0\.0\.1:\d+/enedis/v2$},
	'simulator reports its base URL');

my $res = sim_control('GET', '/health');
is($res->{status}, 200, 'simulator answers on /_sim/health');

is(sprintf('%04o', (stat $sim->{token_file})[2] & 07777),
	'0600', 'token file is private to its owner');

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
configure_node($node, $sim);
$node->start;

like(
	$node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	qr/\bswitchgrid\b/,
	'switchgrid is preloaded');
is($node->safe_psql('postgres', 'SHOW switchgrid.base_url'),
	$sim->{base_url}, 'switchgrid.base_url points at the simulator');

$node->stop;
my $sim_pid = $sim->{pid};
$sim->stop;
ok(!kill(0, $sim_pid), 'simulator stopped');

done_testing();
