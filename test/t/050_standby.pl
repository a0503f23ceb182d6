# The worker runs on a primary only: a standby has none until it is promoted.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator();

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
configure_node($primary, $sim, 'switchgrid.database' => 'postgres');
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

my $worker_count = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'};
ok($primary->poll_query_until('postgres', $worker_count, '1'), 'the primary runs the worker');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# give a wrongly started worker every chance to show up: wait for a WAL
# record replayed after the standby is up, then look
$primary->safe_psql('postgres', 'CREATE TABLE marker ()');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $worker_count), '0', 'the standby runs none');

$standby->promote;
ok($standby->poll_query_until('postgres', $worker_count, '1'), 'promotion starts it');

$standby->stop;
$primary->stop;
done_testing();
