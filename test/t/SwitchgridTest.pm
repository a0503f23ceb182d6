
# test/t/SwitchgridTest.pm
#	  Test fixtures for switchgrid's TAP tests: the simulator, and a node
#	  that preloads the library and points at it.

=pod

=head1 NAME

SwitchgridTest - the API simulator and a preloaded library, for TAP tests

=head1 SYNOPSIS

  use PostgreSQL::Test::Cluster;
  use PostgreSQL::Test::Utils;
  use Test::More;
  use FindBin;
  use lib $FindBin::RealBin;
  use SwitchgridTest;

  my $sim = start_simulator(args => [ '--auto-accept-ms', 200 ]);

  my $node = PostgreSQL::Test::Cluster->new('main');
  $node->init;
  configure_node($node, $sim, 'switchgrid.timeout' => '5s');
  $node->start;

  my $res = sim_control('POST', '/reset');
  ok(poll_until(sub { sim_control('GET', '/health')->{status} == 200 },
		undef, 'the simulator'), 'simulator answers');

=head1 DESCRIPTION

Each test gets its own simulator (test/sim/switchgrid_sim.py, found from this
file's directory: test/t/../..), on ports of its own, with its files in a directory
from PostgreSQL::Test::Utils::tempdir. Simulators still running are stopped
when their object goes away, and at the latest in an END block.

Starting a simulator sets C<$ENV{SWITCHGRID_SIM_READY}> to its ready file, so
test/sim/simctl.py, run from the test, talks to it.

This module is not about what the tests check: it only sets things up.

=cut

package SwitchgridTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(start_simulator configure_node sim_control poll_until sign_consent);

# The tree's root, where test/sim lives: this file is in test/t/.
my $tree_root = abs_path(dirname(__FILE__) . '/../..');

# pid => 1 for every simulator started and not yet stopped, for END.
my %running;

# The simulator sim_control() talks to: the one started last.
my $current;

=pod

=head1 FUNCTIONS

=over

=item tree_root()

The root of the source tree (the directory holding test/t/ and test/sim/).

=cut

sub tree_root
{
	return $tree_root;
}

=pod

=item start_simulator(%opts)

Starts a simulator and waits (up to C<timeout> seconds, by default
$PostgreSQL::Test::Utils::timeout_default) until it has written its ready
file; dies, showing its log, if it exits or times out first. Options:

=over

=item args => [ ... ]: more command-line options (C<--latency-ms>, ...)

=item token => '...': the token it accepts (default C<sim-token>)

=item timeout => seconds

=back

Returns a SwitchgridTest::Simulator: a hash with C<base_url>, C<data_url>,
C<control_url> (from the ready file), C<token>, C<token_file> (mode 0600,
holding the token), C<ready_file>, C<log_file>, C<dir> and C<pid>. It becomes
the simulator that sim_control() talks to.

=cut

sub start_simulator
{
	my (%opts) = @_;
	my $token = $opts{token} // 'sim-token';
	my $timeout = $opts{timeout} // $PostgreSQL::Test::Utils::timeout_default;
	my @args = @{ $opts{args} // [] };
	my $python = $ENV{PYTHON} // 'python3';
	my $script = "$tree_root/test/sim/switchgrid_sim.py";

	die "no simulator at $script\n" unless -f $script;

	my $dir = PostgreSQL::Test::Utils::tempdir('switchgrid_sim');
	my $sim = bless {
		dir => $dir,
		token => $token,
		token_file => "$dir/token",
		ready_file => "$dir/switchgrid_sim.ready",
		log_file => "$dir/sim.log",
	}, 'SwitchgridTest::Simulator';

	# The server insists on a token file that only its owner can read.
	sysopen(my $fh, $sim->{token_file}, POSIX::O_WRONLY | POSIX::O_CREAT | POSIX::O_EXCL, 0600)
	  or die "could not create $sim->{token_file}: $!";
	print $fh $token;
	close $fh;

	my @cmd = (
		$python, $script,
		'--listen' => '127.0.0.1:0',
		'--data-listen' => '127.0.0.1:0',
		'--token' => $token,
		'--ready-file' => $sim->{ready_file},
		'--quiet', @args);
	note "starting simulator: @cmd";

	my $pid = fork();
	die "could not fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# The child must never return into the test (END blocks, Test::More).
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $sim->{log_file})
		  or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT);
		no warnings 'exec';
		exec { $cmd[0] } @cmd;
		print STDERR "could not run $cmd[0]: $!\n";
		POSIX::_exit(127);
	}
	$sim->{pid} = $pid;
	$running{$pid} = 1;
	# dev/test looks for this name to stop simulators a killed test left.
	append_to_file("$dir/switchgrid_sim.pid", "$pid\n");

	my $exited = 0;
	my $ready = poll_until(
		sub {
			if (waitpid($pid, WNOHANG) == $pid)
			{
				$exited = 1;
				delete $running{$pid};
				return 1;
			}
			return 0 unless -s $sim->{ready_file};
			# Written atomically, but be lenient with a half-written file.
			my $info = eval { decode_json(slurp_file($sim->{ready_file})) };
			return 0 unless $info && $info->{base_url};
			$sim->{$_} = $info->{$_} for qw(base_url data_url control_url);
			return 1;
		},
		$timeout,
		'the simulator\'s ready file');

	if ($exited || !$ready)
	{
		my $log = -f $sim->{log_file} ? slurp_file($sim->{log_file}) : '';
		$sim->stop;
		die(($exited ? "the simulator exited before it was ready"
			  : "the simulator was not ready within $timeout s")
			  . ", its log:\n$log");
	}

	note "simulator ready at $sim->{base_url} (pid $pid)";
	$ENV{SWITCHGRID_SIM_READY} = $sim->{ready_file};
	$current = $sim;
	return $sim;
}

=pod

=item configure_node($node, $sim, %gucs)

Appends to the (initialized, not yet started) node's postgresql.conf:
C<shared_preload_libraries = 'switchgrid'>, C<switchgrid.base_url> and
C<switchgrid.api_token_file> pointing at C<$sim>, then each extra setting
given as C<< name => value >> (these come last, so they can override the
first three).

=cut

sub configure_node
{
	my ($node, $sim, %gucs) = @_;
	my $conf =
	    "shared_preload_libraries = 'switchgrid'\n"
	  . "switchgrid.base_url = " . _conf_literal($sim->{base_url}) . "\n"
	  . "switchgrid.api_token_file = " . _conf_literal($sim->{token_file}) . "\n";

	# Later lines win, so %gucs can also override the three above.
	$conf .= "$_ = " . _conf_literal($gucs{$_}) . "\n" foreach sort keys %gucs;
	$node->append_conf('postgresql.conf', $conf);
	return;
}

# A postgresql.conf string literal.
sub _conf_literal
{
	my ($value) = @_;
	$value =~ s/'/''/g;
	return "'$value'";
}

=pod

=item sim_control($method, $path [, $body [, $sim]])

Calls the control API of C<$sim> (by default the simulator started last):
C<$path> is relative to its C<control_url> (C<'/health'>, C<'/reset'>, ...).
C<$body> is a string, or a reference that is sent as JSON. Returns
C<{ status, content, json }>, C<json> being the decoded body when it is JSON.
Never dies on an HTTP error: the test looks at C<status>.

=cut

sub sim_control
{
	my ($method, $path, $body, $sim) = @_;
	$sim //= $current;
	die "no simulator started\n" unless $sim;
	return $sim->control($method, $path, $body);
}

=pod

=item poll_until($code, $timeout, $what)

Calls C<$code> every 100 ms until it returns true or C<$timeout> seconds
(default $PostgreSQL::Test::Utils::timeout_default) have passed. Returns 1 if
it did, else notes what it was waiting for and returns 0.

=cut

sub poll_until
{
	my ($code, $timeout, $what) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;

	while (1)
	{
		return 1 if $code->();
		last if time() >= $deadline;
		sleep(0.1);
	}
	diag("timed out after $timeout s waiting for " . ($what // 'a condition'));
	return 0;
}

=pod

=item sign_consent($node, $dbname, [ [ $holder, $prm ], ... ])

Creates an Ask in C<$dbname> for the catalogue contracts of the given holders and
PRMs (found with switchgrid_search_contract) and signs it through the simulator's
control API. Returns the Ask id.

=cut

sub sign_consent
{
	my ($node, $dbname, $contracts) = @_;
	my $values = join(', ', map { "('$_->[0]', '$_->[1]')" } @$contracts);
	my $ask_id = $node->safe_psql($dbname, qq{
		SELECT switchgrid_ask(ARRAY(
		    SELECT c.contract_id FROM (VALUES $values) AS m(name, prm),
		         LATERAL switchgrid_search_contract(m.name, prm => m.prm) AS c),
		    '{"firstName": "Jeanne", "lastName": "Dupond"}') ->> 'id'});
	my $res = sim_control('POST', "/asks/$ask_id/accept");
	die "could not sign Ask $ask_id: HTTP $res->{status}" unless $res->{status} == 200;
	return $ask_id;
}

# Stop what the test left running, keeping the test's exit status.
END
{
	local $?;
	foreach my $pid (keys %running)
	{
		SwitchgridTest::Simulator::_stop_pid($pid);
	}
}

package SwitchgridTest::Simulator;

use strict;
use warnings;

use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

=pod

=back

=head1 SwitchgridTest::Simulator METHODS

=over

=item $sim->control($method, $path [, $body])

As sim_control(), for this simulator.

=cut

sub control
{
	my ($self, $method, $path, $body) = @_;
	my $url = $path =~ m{^https?://} ? $path : $self->{control_url} . $path;
	my %req = (headers => { Accept => 'application/json' });

	if (defined $body)
	{
		$req{content} = ref $body ? JSON::PP::encode_json($body) : $body;
		$req{headers}{'Content-Type'} = 'application/json';
	}
	my $res = HTTP::Tiny->new(timeout => 30)->request($method, $url, \%req);
	my $json = eval { JSON::PP::decode_json($res->{content}) };
	return {
		status => $res->{status},
		content => $res->{content},
		json => $json,
	};
}

=pod

=item $sim->stop

Stops the simulator (SIGTERM, then SIGKILL after 10 s). Called by itself
when the object goes away.

=back

=cut

sub stop
{
	my ($self) = @_;
	_stop_pid($self->{pid}) if $self->{pid};
	delete $self->{pid};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local $?;
	$self->stop;
}

sub _stop_pid
{
	my ($pid) = @_;

	return unless delete $running{$pid};
	kill 'TERM', $pid;
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		return if waitpid($pid, WNOHANG) != 0;
		sleep(0.1);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return;
}

1;
