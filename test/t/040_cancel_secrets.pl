# A request hung in the server ends promptly on pg_cancel_backend(); and the
# API token never reaches the server log, whatever goes wrong.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;
use Time::HiRes qw(time);

my $token = 'sim-secret-token-6b1f0c';
my $sim = start_simulator(token => $token);
my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
configure_node($node, $sim,
	'log_min_messages' => 'debug1',
	'log_min_error_statement' => 'debug1',
	'log_statement' => 'all',
	'log_error_verbosity' => 'verbose');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

# a request that would hang for 30 s
sim_control('POST', '/faults', { method => 'GET', path => '/search_contract', delay_ms => 30000 });
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
	\echo started
	SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
});
my $pid;
ok( poll_until(
		sub {
			$pid = $node->safe_psql('postgres', q{
				SELECT pid FROM pg_stat_activity
				WHERE query LIKE '%switchgrid_search_contract%' AND wait_event = 'Extension'
				  AND pid <> pg_backend_pid()});
			$pid ne '';
		},
		undef, 'the request to be in flight'),
	'the call waits on the simulator');
my $t0 = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND state = 'active'") eq '0';
		},
		10, 'the call to end'),
	'pg_cancel_backend() ends the call');
my $elapsed = time() - $t0;
note sprintf('the call ended %.3f s after pg_cancel_backend()', $elapsed);
cmp_ok($elapsed, '<', 5, 'long before the 30 s delay');
like($session->query('SELECT 1') . ($session->{stderr} // ''),
	qr/canceling statement due to user request/, 'with the usual 57014 error');
$session->quit;
sim_control('DELETE', '/faults');

# Error paths, each of which could leak a token: a refused token, an API that
# echoes it, a redirect, an unreadable token file, a server error.
$node->psql('postgres', "SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')");
sim_control('POST', '/faults', { method => 'GET', path => '/order/', status => 401,
	body => qq({"message": "token $token is not valid"}) });
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')");
like($err, qr/refused the API token/, 'a 401 is reported');
unlike($err, qr/\Q$token\E/, 'the error does not show the token the API echoed');
# a 2xx body that is not JSON: the parser quotes the token it stumbles on
sim_control('DELETE', '/faults');
sim_control('POST', '/faults', { method => 'GET', path => '/order/', status => 200,
	body => qq({"id" "$token"}) });
($ret, $out, $err) = $node->psql('postgres',
	"SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')");
like($err, qr/malformed response.*\n.*DETAIL:  HTTP 200 on GET \/order\/[0-9a-f-]+: Expected ":", but found/,
	'a malformed 2xx body is reported with its status and path');
unlike($err, qr/\Q$token\E/, 'the parser\'s detail does not show the token');
sim_control('DELETE', '/faults');
sim_control('POST', '/faults', { method => 'GET', path => '/order/', status => 500 });
$node->psql('postgres', "SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')");
$node->psql('postgres', q{
	SET switchgrid.api_token_file = '/nonexistent';
	SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')});

my $log = slurp_file($node->logfile);
like($log, qr/switchgrid_order_status/, 'the log has the statements');
unlike($log, qr/\Q$token\E/, 'the token never appears in the server log');
my $sim_log = sim_control('GET', '/log')->{content};
unlike($sim_log, qr/\Q$token\E/, 'nor in what the simulator recorded');

$node->stop;
done_testing();
