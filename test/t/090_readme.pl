# Every ```sql block of README.md runs, as a user would run it: in order, in
# one psql session on a database set up like the sandbox's (dev/sandbox: the
# worker follows it, sessions in Europe/Paris, extension created), against
# the simulator, from the root of the tree (the blocks call
# test/sim/simctl.py). The output of each block, after the block's own text,
# is compared with test/expected/readme.out, so editing an example without
# updating the expected output fails here.
#
# What differs from run to run is masked in the output (not in the blocks'
# text): uuids, the simulator's ports, and timestamps near the time of the
# run (creation and completion times; the data's own dates are in 2024).
# psql prints in unaligned mode (-A), so that a masked value cannot change a
# column's width. LISTEN's notifications arrive whenever the worker commits:
# they are taken out of the comparison, and checked apart.
#
# On a difference, the new output is in tmp_check/readme.out: if it is
# right, copy it to test/expected/readme.out.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Compare qw(compare);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;
use Time::Local qw(timegm);

my $root = SwitchgridTest::tree_root();

# The blocks, as README.md has them.
my @blocks;
my $block;
my $lineno = 0;
for my $line (split /^/m, slurp_file("$root/README.md"))
{
	$lineno++;
	if (!defined $block && $line =~ /^```sql\s*$/)
	{
		$block = { line => $lineno, text => '' };
	}
	elsif (defined $block && $line =~ /^```\s*$/)
	{
		push @blocks, $block;
		undef $block;
	}
	elsif (defined $block)
	{
		$block->{text} .= $line;
	}
}
ok(!defined $block, 'every ```sql block of README.md is closed');
cmp_ok(scalar(@blocks), '>=', 10, scalar(@blocks) . ' ```sql blocks in README.md');

# A cluster set up as dev/sandbox sets one up.
my $sim = start_simulator();
my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
configure_node(
	$node, $sim,
	'switchgrid.database' => 'sandbox',
	'switchgrid.poll_interval' => '5s',
	'timezone' => 'Europe/Paris',
	# the README's nightly refresh (dev/sandbox preloads pg_cron too)
	'shared_preload_libraries' => 'switchgrid,pg_cron',
	'cron.database_name' => 'sandbox');
# the worker's database exists before the server starts
my ($out, $err);
IPC::Run::run(
	[
		'postgres', '--single', '-D', $node->data_dir,
		'-c', 'shared_preload_libraries=', 'postgres'
	],
	'<', \"CREATE DATABASE sandbox\n",
	'>', \$out, '2>', \$err)
  or die "could not create database sandbox: $err";
$node->start;
$node->safe_psql('sandbox', 'CREATE EXTENSION switchgrid');

# One script: each block after a marker line, then a statement of the test's
# own, after which psql shows the notifications that came last.
my $script = '';
for my $i (0 .. $#blocks)
{
	$script .= "\\echo '<<<README block " . ($i + 1) . ">>>'\n$blocks[$i]{text}";
}
$script .= "\\echo '<<<end>>>'\nSELECT 'end of README' AS done;\n";

chdir $root or die "could not enter $root: $!";
{
	local $ENV{PGTZ};
	delete $ENV{PGTZ};
	IPC::Run::run(
		[
			'psql', '-X', '-A', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('sandbox'), '-f', '-'
		],
		'<', \$script, '>', \$out, '2>', \$err);
}
my $rc = $? >> 8;
is($rc, 0, 'psql ran every block without an error');
unlike($err, qr/\b(?:ERROR|WARNING|FATAL):/, 'no error or warning on stderr')
  or diag($err);

# Notifications, out of the comparison.
my @notifications = $out =~ /^Asynchronous notification "switchgrid" with payload "(.*)" received from server process with PID \d+\.$/mg;
$out =~ s/^Asynchronous notification .*\n//mg;
ok((grep { /"event": "order\.finished"/ } @notifications),
	'LISTEN switchgrid got an order.finished notification')
  or diag(join("\n", @notifications));

# Timestamps within 10 days of now are the run's own.
my $now = time();
sub mask_time
{
	my ($stamp, $y, $m, $d) = @_;
	my $t = eval { timegm(0, 0, 0, $d, $m - 1, $y) };
	return (defined $t && abs($t - $now) < 10 * 86400) ? '<now>' : $stamp;
}

sub mask
{
	my ($s) = @_;
	$s =~ s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g;
	$s =~ s{http://127\.0\.0\.1:\d+}{http://127.0.0.1:<port>}g;
	$s =~ s/((\d{4})-(\d\d)-(\d\d)[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?)/mask_time($1, $2, $3, $4)/ge;
	return $s;
}

# Each block's text as README.md has it, then its masked output.
my @parts = split /^<<<(README block \d+|end)>>>\n/m, $out;
my $actual = '';
$actual .= mask(shift @parts) if @parts && $parts[0] ne '';
shift @parts if @parts && $parts[0] eq '';
while (@parts)
{
	my ($marker, $output) = splice(@parts, 0, 2);
	$output //= '';
	if ($marker =~ /^README block (\d+)$/)
	{
		my $blk = $blocks[ $1 - 1 ];
		$actual .= "==== README.md, block $1 ====\n$blk->{text}---- output ----\n";
	}
	else
	{
		$actual .= "==== end ====\n";
	}
	$actual .= mask($output);
}

my $expected_file = "$root/test/expected/readme.out";
my $actual_file = "$PostgreSQL::Test::Utils::tmp_check/readme.out";
open(my $fh, '>', $actual_file) or die "could not write $actual_file: $!";
print $fh $actual;
close $fh;
if (!ok(-f $expected_file && compare($actual_file, $expected_file) == 0,
		'the output of the README examples is test/expected/readme.out'))
{
	my ($diff, $derr);
	IPC::Run::run([ 'diff', '-u', $expected_file, $actual_file ], '>', \$diff, '2>', \$derr);
	diag("the output differs (new output in $actual_file):\n" . ($diff // '') . ($derr // ''));
}

$node->stop;
done_testing();
