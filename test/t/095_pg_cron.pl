# The README's nightly refresh, for real: pg_cron (Debian's
# postgresql-15-cron, installed by dev/setup) refreshes a materialized view
# over switchgrid.daily_energy. The job is scheduled every minute, so that
# it runs within the test; the test waits for cron.job_run_details to show
# it succeeded, with a deadline. The refresh reads the stored tables only:
# the simulator sees no request while it runs.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 200 ]);
my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
# pg_cron and the data in database "bi"; the switchgrid worker follows
# "postgres", which has no Orders, so that nothing but the test calls the API
# (switchgrid_wait() follows the order here)
configure_node($node, $sim,
	'shared_preload_libraries' => 'switchgrid,pg_cron',
	'cron.database_name' => 'bi',
	# jobs run in background workers: no connection through a TCP port
	'cron.use_background_workers' => 'on',
	'switchgrid.database' => 'postgres');
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE bi');
$node->safe_psql('bi', 'CREATE EXTENSION switchgrid');
$node->safe_psql('bi', 'CREATE EXTENSION pg_cron');

# Daily energies over the spring DST change, stored by switchgrid_wait().
sign_consent($node, 'bi', [ [ 'Jeanne Dupond', '09111642617347' ] ]);
my $order = $node->safe_psql('bi', q{
	SELECT switchgrid_order(switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE',
	    '2024-03-30 00:00 Europe/Paris', '2024-04-02 00:00 Europe/Paris')) ->> 'id'});
is($node->safe_psql('bi', "SELECT switchgrid_wait('$order', '60 seconds') ->> 'status'"),
	'SUCCESS', 'an R65 order stored');
is($node->safe_psql('bi', 'SELECT count(*) FROM switchgrid.daily_energy'),
	'3', 'three days in switchgrid.daily_energy');

# The view of the README, empty until refreshed.
$node->safe_psql('bi', q{
	CREATE MATERIALIZED VIEW monthly_energy AS
	SELECT prm, direction, date_trunc('month', day)::date AS month,
	       count(*) AS days, sum(wh) AS wh
	FROM switchgrid.daily_energy
	GROUP BY 1, 2, 3
	WITH NO DATA});
is($node->safe_psql('bi', q{SELECT relispopulated FROM pg_class WHERE relname = 'monthly_energy'}),
	'f', 'the view is not populated yet');

my $requests_before = scalar @{ sim_control('GET', '/log')->{json} };
my $job = $node->safe_psql('bi', q{
	SELECT cron.schedule('refresh-monthly-energy', '* * * * *',
	                     'REFRESH MATERIALIZED VIEW monthly_energy')});
like($job, qr/^\d+$/, 'the refresh is scheduled');

# pg_cron starts a job at the start of a minute: within about a minute.
ok( poll_until(
		sub {
			$node->safe_psql('bi',
				"SELECT count(*) FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'"
			) > 0;
		},
		150, 'the scheduled refresh to run'),
	'pg_cron ran the refresh');
is($node->safe_psql('bi', q{
	SELECT string_agg(month || ' ' || days || ' ' || wh, ',' ORDER BY month) FROM monthly_energy}),
	$node->safe_psql('bi', q{
	SELECT string_agg(month || ' ' || days || ' ' || wh, ',' ORDER BY month)
	FROM (SELECT date_trunc('month', day)::date AS month, count(*) AS days, sum(wh) AS wh
	      FROM switchgrid.daily_energy GROUP BY 1) x}),
	'the view holds the stored daily energies, by month');
is(scalar @{ sim_control('GET', '/log')->{json} }, $requests_before,
	'the refresh made no API call');

$node->safe_psql('bi', "SELECT cron.unschedule($job)");
$node->stop;
done_testing();
