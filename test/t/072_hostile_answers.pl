# Answers that carry the token, or that cannot be used after a billable POST:
# the token goes nowhere (client, server log, tables), a field PostgreSQL
# refuses is a protocol violation (08P01), an Order id that is not a uuid is
# neither logged nor handed to the worker, a POST /order whose answer is lost
# warns that the Order may exist and hands over any id it can read, and an
# Order answer has a cap of its own (4 MB).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $token = 'sim-hostile-token-3c7d55';
my $sim = start_simulator(token => $token,
	args => [ '--pending-ms', 50, '--complete-ms', 300 ]);
my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '300ms',
	'switchgrid.timeout' => '5s',
	'switchgrid.max_retries' => 0,
	'log_min_messages' => 'info');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

my $JEANNE = '09111642617347';
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', $JEANNE ] ]);
my $ORDER = "SELECT switchgrid_order(switchgrid_request('C68', ARRAY['$JEANNE']))->>'id'";

# Runs $sql; returns (stdout, stderr) of psql.
sub run
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($out, $err);
}
sub fault { sim_control('DELETE', '/faults'); sim_control('POST', '/faults', $_[0]); }
sub log_since { substr(slurp_file($node->logfile), $_[0]) }

# -- 1. an Order id that is not a uuid ---------------------------------------
my $mark = -s $node->logfile;
fault({ method => 'POST', path => '/order',
		body => qq({"id": "$token", "requests": []}) });
my ($out, $err) = run($ORDER);
like($err, qr/ERROR:  08P01: unexpected response from Switchgrid for a new Order/,
	'an Order id that is not a uuid: 08P01');
like($err, qr/WARNING:  01000: Switchgrid may have placed the order/,
	'... with the WARNING that the Order may exist');
unlike($err, qr/\Q$token\E/, '... and no token for the client');
sim_control('DELETE', '/faults');
# a later Order finishes: the worker has run rounds since
my $later = $node->safe_psql('postgres', $ORDER);
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$later'") eq 't';
		},
		30, 'a later Order to finish'),
	'the worker goes on');
my @bad = grep { $_->{path} =~ m{/order/(?![0-9a-f-]{36}$)} } @{ sim_control('GET', '/log')->{json} };
is(scalar @bad, 0, 'the worker never asked for an Order id that is not a uuid');
my $log = log_since($mark);
unlike($log, qr/placed order (?![0-9a-f-]{36}\b)/, 'no id but a uuid is logged as placed');

# -- 2. the token in fields of well-formed answers -----------------------------
# An Order whose polls meet an answer with the token as its creation date.
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
my $oid = $bg->query_safe($ORDER);
$oid =~ s/\s+$//;
fault({ method => 'GET', path => '/order/', times => -1,
		body => qq({"id": "$oid", "status": "PENDING_REQUESTS", "createdAt": "$token", "requests": []}) });
$bg->query_safe('COMMIT');
$bg->quit;
my $last_error = '';
ok( poll_until(
		sub {
			$last_error = $node->safe_psql('postgres',
				"SELECT coalesce(last_error, '') FROM switchgrid.orders WHERE order_id = '$oid'");
			$last_error ne '';
		},
		30, 'the worker to meet the answer'),
	'the worker records a failure');
like($last_error, qr/unexpected response from Switchgrid/, '... as an unexpected response');
unlike($last_error, qr/\Q$token\E/, '... without the token');

($out, $err) = run("SELECT switchgrid_order_status('$oid')");
like($err, qr/ERROR:  08P01: unexpected response from Switchgrid for an Order/,
	'a field PostgreSQL cannot read: 08P01');
unlike($err, qr/\Q$token\E/, '... without the token');
unlike($err, qr/record_order|CONTEXT/, '... nor the SQL of the record function');

# the same through the list of Asks
fault({ method => 'GET', path => '/ask', times => -1,
		body => qq({"items": [{"id": "$oid", "status": "ACCEPTED", "createdAt": "$token"}], "totalItemsCount": 1}) });
($out, $err) = run('SELECT count(*) FROM switchgrid_asks()');
like($err, qr/ERROR:  08P01: unexpected response from Switchgrid for Ask list/,
	'a date of an Ask that is not one: 08P01');
unlike($err, qr/\Q$token\E/, '... without the token');

# a field that is merely stored
fault({ method => 'GET', path => '/order/', times => -1,
		body => qq({"id": "$oid", "status": "PENDING_REQUESTS", "createdAt": "2024-05-01T10:00:00Z", "note": "$token", "requests": []}) });
($out, $err) = run("SELECT switchgrid_order_status('$oid')->>'note'");
unlike($out . $err, qr/\Q$token\E/, 'the token in any field is blanked for the client');
like($out, qr/^\*+$/m, '... to stars');
is($node->safe_psql('postgres',
		"SELECT raw->>'note' ~ '^[*]+\$' FROM switchgrid.orders WHERE order_id = '$oid'"),
	't', '... and in switchgrid.orders.raw');

# the token spelt in JSON escapes, which only the parser turns back into it
(my $escaped = $token) =~ s/^(.)/sprintf('\\u%04x', ord($1))/e;
fault({ method => 'GET', path => '/order/', times => -1,
		body => qq({"id": "$oid", "status": "PENDING_REQUESTS", "note": "$escaped", "requests": []}) });
($out, $err) = run("SELECT switchgrid_order_status('$oid')->>'note'");
like($err, qr/ERROR:  08P01: unexpected response from Switchgrid/,
	'the token spelt in JSON escapes: 08P01');
unlike($out . $err, qr/\Q$token\E/, '... and it reaches the client nowhere');
unlike($node->safe_psql('postgres', "SELECT coalesce(string_agg(raw::text, ' '), '') FROM switchgrid.orders"),
	qr/\Q$token\E/, '... nor switchgrid.orders');
sim_control('DELETE', '/faults');

# -- 3. a POST /order whose answer cannot be used ------------------------------
$mark = -s $node->logfile;
fault({ method => 'POST', path => '/order', delay_ms => 2500 });
($out, $err) = run("SET statement_timeout = '1s'; $ORDER");
like($err, qr/ERROR:  57014/, 'POST /order cut by statement_timeout: 57014');
like($err, qr/WARNING:  01000: Switchgrid may have placed the order/, '... with the WARNING');

foreach my $spec ({ malformed => JSON::PP::true }, { invalid_utf8 => JSON::PP::true })
{
	my ($name) = keys %$spec;
	$mark = -s $node->logfile;
	my $before = scalar grep { $_->{method} eq 'POST' && $_->{path} =~ m{/order$} }
	  @{ sim_control('GET', '/log')->{json} };
	fault({ method => 'POST', path => '/order', %$spec });
	($out, $err) = run($ORDER);
	like($err, qr/ERROR:  08P01: malformed response from Switchgrid for a new Order/,
		"POST /order, $name: 08P01");
	like($err, qr/WARNING:  01000: Switchgrid may have placed the order/, '... with the WARNING');
	next unless $name eq 'invalid_utf8';
	# the real answer, with a bad string in front: its id is read and handed over
	my ($id) = log_since($mark) =~ /placed order ([0-9a-f-]{36})/;
	ok($id, '... its id is logged');
	like($err, qr/names order \Q$id\E/, '... and named to the client') if $id;
	ok( poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT count(*) FROM switchgrid.orders WHERE order_id = '$id'") eq '1';
			},
			30, 'the worker to record the handed-over Order'),
		'... and the worker records it') if $id;
}
sim_control('DELETE', '/faults');

# -- 4. an Order answer over its own cap -------------------------------------
fault({ method => 'GET', path => '/order/', times => -1, oversize => 5 * 1024 * 1024 });
($out, $err) = run("SELECT switchgrid_order_status('$oid')");
like($err, qr/ERROR:  54000: response from Switchgrid for Order \S+ exceeds 4096 kB/,
	'an Order answer over 4 MB: 54000, whatever switchgrid.max_response_size');
fault({ method => 'POST', path => '/order', oversize => 5 * 1024 * 1024 });
($out, $err) = run($ORDER);
like($err, qr/ERROR:  54000/, 'the answer to POST /order over 4 MB: 54000');
like($err, qr/WARNING:  01000: Switchgrid may have placed the order/, '... with the WARNING');
sim_control('DELETE', '/faults');

# Nothing crashed, and the token went nowhere.
$log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/, 'no backend or worker crashed');
unlike($log, qr/\Q$token\E/, 'the token is not in the server log');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM switchgrid.orders
	WHERE coalesce(last_error, '') LIKE '%$token%' OR raw::text LIKE '%$token%'}),
	'0', 'nor in switchgrid.orders');

$node->stop;
done_testing();
