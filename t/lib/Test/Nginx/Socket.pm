package Test::Nginx::Socket;

# A small, self-contained re-implementation of the parts of the CPAN module
# Test::Nginx::Socket that this project needs, built on Debian's Test::Base.
# See the POD at the end of this file for the API, the supported sections and
# how many tests each block produces.

use Test::Base -base;

use strict;
use warnings;

use Cwd ();
use File::Path ();
use File::Spec ();
use File::Basename ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX ();
use Time::HiRes ();
use Text::ParseWords ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Test::More ();
use Test::Base::Filter ();

our $VERSION = '0.01';

our @EXPORT = qw(
    run_tests plan blocks repeat_each no_shuffle workers master_on
    log_level env_to_nginx no_long_string no_root_location
    server_port html_dir server_root done_testing redis_server
    $ServerPort $ServRoot $HtmlDir
);

# ---------------------------------------------------------------------------
# global settings
# ---------------------------------------------------------------------------

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
our $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT}
                                    || File::Spec->catdir('t', 'servroot'));
$ServRoot =~ s{/+$}{};
our $HtmlDir = "$ServRoot/html";
our $NginxBinary = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $MockPort = $ENV{TEST_NGINX_MOCK_PORT} || 1985;

# sanitizer runs (scripts/test.sh asan, docs/testing.md): LD_PRELOAD for
# every nginx of the tests (the ASan runtime), and the directory its
# reports go to; a report that appears during a block fails the block.
#
# ASan writes its reports to files (log_path).  GCC's UBSan runtime is
# a library of its own which writes to stderr whatever UBSAN_OPTIONS
# say, and nginx sends stderr to its error log: the harness takes
# UBSan's reports from there (and files them in the same directory).
# UBSan's log_path must still be ASan's: libubsan sets it through
# __sanitizer_set_report_path(), which resolves to libasan's.  (The
# sanitizer build also preloads t/lib/ngx_ubsan_options.c, without
# which UBSan in a worker would not see UBSAN_OPTIONS at all.)
my $Preload = $ENV{TEST_NGINX_LD_PRELOAD};
my $SanDir = $ENV{TEST_NGINX_SANITIZER_LOGS};
my %SeenReports;
if (defined $SanDir && length $SanDir) {
    $SanDir = File::Spec->rel2abs($SanDir);
    $SanDir =~ s{/+$}{};
    File::Path::make_path($SanDir) unless -d $SanDir;
    # appended: a later log_path overrides an earlier one
    for my $v (qw(ASAN_OPTIONS UBSAN_OPTIONS)) {
        $ENV{$v} = join ':', grep { defined && length }
                   $ENV{$v}, "log_path=$SanDir/asan";
    }
} else {
    undef $SanDir;
}

# make the well-known variables available for substitution and to --- exec
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
# a second port for a server {} of a block's own (listen options)
$ENV{TEST_NGINX_SERVER_PORT2} ||= $ServerPort + 6;
$ENV{TEST_NGINX_SERVROOT} = $ServRoot;
$ENV{TEST_NGINX_HTML_DIR} = $HtmlDir;
$ENV{TEST_NGINX_MOCK_PORT} = $MockPort;
$ENV{TEST_NGINX_BINARY} = $NginxBinary;

# a file that calls redis_server() gets a redis-server of its own for all
# its blocks, on the server port + 8, in SERVROOT/redis; --- exec stops
# and starts it again with $TEST_NGINX_REDIS (t/lib/redis-server)
$ENV{TEST_NGINX_REDIS_PORT} ||= $ServerPort + 8;
$ENV{TEST_NGINX_REDIS_DIR} = "$ServRoot/redis";
$ENV{TEST_NGINX_REDIS} = File::Spec->rel2abs(
    File::Spec->catfile(File::Basename::dirname(__FILE__), File::Spec->updir,
                        File::Spec->updir, 'redis-server'));

my $RepeatEach = 1;
my $Workers = 1;
my $LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'info';
my @EnvToNginx;
my $NoRootLocation = 0;
my $Verbose = $ENV{TEST_NGINX_VERBOSE};

my $StartTimeout = 5;     # seconds to wait for nginx / mock to listen
my $QuitGrace = 3;        # seconds between SIGQUIT and SIGTERM
my $TermGrace = 2;        # seconds between SIGTERM and SIGKILL

my $NginxPid;             # currently running nginx master (our child)
my $MockPid;              # currently running mock provider (our child)
my $MockArgs;             # extra args the running mock was started with
my %WarnedVar;
my $CleanupDone = 0;

my @ErrorMarkers = ('[error]', '[alert]', '[crit]', '[emerg]');
my $CrashRe = qr/exited on signal|exited with fatal code|exited with code [1-9]|core dumped/;

# a sanitizer's report (UBSan's first line; ASan's, if on stderr)
my $SanReportRe = join '|', '^\S+:\d+:\d+: runtime error: ',
                           '==\d+==ERROR: \w*Sanitizer', '^SUMMARY: \w*Sanitizer';
$SanReportRe = qr/$SanReportRe/;

# ---------------------------------------------------------------------------
# exported configuration helpers
# ---------------------------------------------------------------------------

sub repeat_each {
    if (@_) {
        $RepeatEach = shift;
        return;
    }
    return $RepeatEach;
}

sub no_shuffle () { }                 # we never shuffle
sub master_on () { }                  # master_process is always on
sub no_long_string () { }             # no-op (we always show a diff)
sub no_root_location () { $NoRootLocation = 1 }

sub workers ($) { $Workers = shift }
sub log_level ($) { $LogLevel = shift }
sub env_to_nginx (@) { push @EnvToNginx, @_ }

sub server_port () { $ServerPort }
sub html_dir () { $HtmlDir }
sub server_root () { $ServRoot }

sub done_testing { Test::More::done_testing(@_) }

my $RedisArgs;            # redis_server() was called: its arguments
my $RedisStarted;         # the arguments of the one running, joined

sub redis_server (@) { $RedisArgs = [@_] }

# ---------------------------------------------------------------------------
# Filter class: a stricter 'eval' that runs in package main, without
# 'strict', and dies loudly on error instead of returning $@ as the value.
# ---------------------------------------------------------------------------

package Test::Nginx::Socket::Filter;
our @ISA = ('Test::Base::Filter');

sub eval {
    my $self = shift;
    $self->assert_scalar(@_);
    my $code = shift;
    my @ret = Test::Nginx::Socket::_tn_eval_in_main($code);
    if ($@) {
        my $blk = $self->current_block;
        my $name = $blk ? $blk->name : '?';
        my $sec = '...';
        if ($blk) {
            for my $s (@{$blk->{_section_order}[0] || []}) {
                my $v = $blk->{$s};
                if (ref $v eq 'ARRAY' && defined $v->[0] && !ref $v->[0]
                    && $v->[0] eq $code)
                {
                    $sec = $s;
                    last;
                }
            }
        }
        die "$name: error in '--- $sec eval' section: $@\n";
    }
    return @ret;
}

package Test::Nginx::Socket;

sub _tn_eval_in_main {
    package main;
    no strict;
    no warnings;
    return CORE::eval($_[0]);
}

# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------

sub _tn_sec {
    my ($block, $name) = @_;
    return undef unless exists $block->{$name};
    my $v = $block->{$name};
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

sub _tn_has { exists $_[0]->{$_[1]} }

sub _tn_subst {
    my ($v) = @_;
    return $v unless defined $v;
    if (ref $v eq 'ARRAY') {
        return [map { _tn_subst($_) } @$v];
    }
    return $v if ref $v;
    $v =~ s{\$(TEST_NGINX_[A-Z0-9_]+)}{
        if (exists $ENV{$1}) {
            $ENV{$1};
        } else {
            Test::More::diag("WARNING: \$$1 is used but not set in the environment")
                unless $WarnedVar{$1}++;
            "\$$1";
        }
    }ge;
    return $v;
}

# value of a section with $TEST_NGINX_* substituted
sub _tn_val {
    my ($block, $name) = @_;
    return _tn_subst(_tn_sec($block, $name));
}

# for sections that may hold one value per request
sub _tn_indexed {
    my ($v, $i) = @_;
    return undef unless defined $v;
    return $v->[$i] if ref $v eq 'ARRAY';
    return $v;
}

sub _tn_slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    binmode $fh;
    local $/;
    my $d = <$fh>;
    return defined $d ? $d : '';
}

sub _tn_spit {
    my ($file, $data) = @_;
    my $dir = File::Basename::dirname($file);
    File::Path::make_path($dir) unless -d $dir;
    open my $fh, '>', $file or die "cannot write $file: $!\n";
    binmode $fh;
    print $fh $data;
    close $fh or die "cannot write $file: $!\n";
}

sub _tn_tail {
    my ($text, $n) = @_;
    $n ||= 30;
    my @l = split /\n/, $text;
    @l = @l[-$n .. -1] if @l > $n;
    return join '', map { "    $_\n" } @l;
}

# list of check items of an error_log-like section: strings and qr//s
sub _tn_patterns {
    my ($v) = @_;
    return () unless defined $v;
    my @items = ref $v eq 'ARRAY' ? @$v : ($v);
    my @out;
    for my $it (@items) {
        next unless defined $it;
        if (ref $it eq 'Regexp') {
            push @out, $it;
        } elsif (ref $it) {
            push @out, "$it";
        } else {
            push @out, grep { /\S/ } split /\n/, $it;
        }
    }
    return @out;
}

sub _tn_pat_desc {
    my ($p) = @_;
    return ref $p eq 'Regexp' ? "$p" : "\"$p\"";
}

sub _tn_pat_match {
    my ($p, $text) = @_;
    return ref $p eq 'Regexp' ? scalar($text =~ $p) : index($text, $p) >= 0;
}

# header lines of response_headers(_like): list of [name, value, absent]
sub _tn_header_lines {
    my ($v) = @_;
    return () unless defined $v;
    my @out;
    for my $line (split /\n/, $v) {
        next unless $line =~ /\S/;
        next if $line =~ /^\s*#/;
        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            push @out, [$1, undef, 1];
        } elsif ($line =~ /^\s*([^:\s]+)\s*:\s?(.*?)\s*$/) {
            push @out, [$1, $2, 0];
        } else {
            push @out, [$line, undef, 2];     # malformed: reported as failure
        }
    }
    return @out;
}

sub _tn_timeout {
    my ($block, $default) = @_;
    my $t = _tn_val($block, 'timeout');
    return $default unless defined $t && $t =~ /\S/;
    $t =~ s/^\s+|\s+$//g;
    $t =~ s/s$//;
    return $t =~ /^\d+(?:\.\d*)?$/ ? $t : $default;
}

# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

sub _tn_spawn {
    my ($argv, $out_file, $env) = @_;
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        eval {
            POSIX::setpgid(0, 0);
            $SIG{$_} = 'DEFAULT' for qw(INT TERM QUIT PIPE HUP CHLD);
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', $out_file or die "open $out_file: $!";
            open STDERR, '>&', \*STDOUT or die "dup: $!";
            if ($env) { $ENV{$_} = $env->{$_} for keys %$env }
            { no warnings 'exec'; exec { $argv->[0] } @$argv; }
            print STDERR "exec $argv->[0] failed: $!\n";
        };
        print STDERR $@ if $@;
        POSIX::_exit(127);
    }
    return $pid;
}

# returns the wait status if the process has exited, undef otherwise
sub _tn_reaped {
    my ($pid) = @_;
    my $r = waitpid($pid, POSIX::WNOHANG());
    return $? if $r == $pid;
    return -1 if $r == -1;      # not our child any more
    return undef;
}

sub _tn_wait_exit {
    my ($pid, $secs) = @_;
    my $deadline = Time::HiRes::time() + $secs;
    while (1) {
        my $st = _tn_reaped($pid);
        return $st if defined $st;
        return undef if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
}

# stop a process (group) gracefully; returns (wait status, how)
sub _tn_stop_proc {
    my ($pid, $first_sig, $grace1) = @_;
    my $st = _tn_reaped($pid);
    return ($st, 'already exited') if defined $st;
    kill $first_sig, $pid;
    $st = _tn_wait_exit($pid, $grace1);
    if (defined $st) {
        kill 'KILL', -$pid;        # leftovers of the group, if any
        return ($st, $first_sig);
    }
    kill 'TERM', -$pid;
    $st = _tn_wait_exit($pid, $TermGrace);
    if (defined $st) {
        kill 'KILL', -$pid;
        return ($st, 'TERM');
    }
    kill 'KILL', -$pid;
    $st = _tn_wait_exit($pid, 5);
    return ($st, 'KILL');
}

sub _tn_status_str {
    my ($st) = @_;
    return 'unknown' unless defined $st;
    return 'not our child' if $st == -1;
    return 'killed by signal ' . ($st & 127) . (($st & 128) ? ' (core dumped)' : '')
        if $st & 127;
    return 'exit code ' . ($st >> 8);
}

sub _tn_port_listening {
    my ($port) = @_;
    my $hex = sprintf ':%04X', $port;
    my $have_proc = 0;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        $have_proc = 1;
        while (my $l = <$fh>) {
            my @f = split ' ', $l;
            next unless @f > 3;
            return 1 if $f[3] eq '0A' && substr($f[1], -5) eq $hex;
        }
    }
    return 0 if $have_proc;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return $s ? 1 : 0;
}

# wait until $port listens; returns undef on success or an error string
sub _tn_wait_listen {
    my ($pid, $port, $what) = @_;
    my $deadline = Time::HiRes::time() + $StartTimeout;
    while (1) {
        my $st = _tn_reaped($pid);
        if (defined $st) {
            return "$what exited before listening on port $port ("
                   . _tn_status_str($st) . ")";
        }
        return undef if _tn_port_listening($port);
        if (Time::HiRes::time() >= $deadline) {
            return "$what did not listen on port $port within ${StartTimeout}s";
        }
        Time::HiRes::sleep(0.01);
    }
}

sub _tn_wait_port_free {
    my ($port, $secs) = @_;
    my $deadline = Time::HiRes::time() + $secs;
    while (_tn_port_listening($port)) {
        return 0 if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.05);
    }
    return 1;
}

# ---------------------------------------------------------------------------
# mock provider
# ---------------------------------------------------------------------------

sub _tn_stop_mock {
    return unless $MockPid;
    _tn_stop_proc($MockPid, 'TERM', 2);
    undef $MockPid;
    undef $MockArgs;
    _tn_wait_port_free($MockPort, 2);
}

# make sure the mock runs with the args this block wants; undef or error
sub _tn_ensure_mock {
    my ($block) = @_;
    my $bin = $ENV{TEST_AI_MOCK_BIN};
    return undef unless defined $bin && length $bin;
    return "TEST_AI_MOCK_BIN=$bin is not an executable" unless -f $bin && -x _;

    my $want = _tn_has($block, 'mock_args') ? _tn_val($block, 'mock_args') : '';
    $want = '' unless defined $want;
    $want =~ s/^\s+|\s+$//g;
    $want =~ s/\s*\n\s*/ /g;

    if ($MockPid) {
        my $st = _tn_reaped($MockPid);
        if (defined $st) {
            Test::More::diag("mock provider died (" . _tn_status_str($st)
                             . "), restarting it");
            undef $MockPid;
        }
    }
    return undef if $MockPid && defined $MockArgs && $MockArgs eq $want;

    _tn_stop_mock();
    if (!_tn_wait_port_free($MockPort, 2)) {
        return "mock port $MockPort is already in use by another process";
    }
    my @argv = ($bin, '-l', "127.0.0.1:$MockPort", '-w', '1',
                Text::ParseWords::shellwords($want));
    Test::More::diag("starting mock: @argv") if $Verbose;
    $MockPid = _tn_spawn(\@argv, "$ServRoot/logs/mock.log");
    $MockArgs = $want;
    my $err = _tn_wait_listen($MockPid, $MockPort, "mock provider ($bin)");
    if ($err) {
        kill 'KILL', -$MockPid;
        _tn_wait_exit($MockPid, 2);
        undef $MockPid;
        undef $MockArgs;
        return "$err\n--- logs/mock.log:\n"
               . _tn_tail(_tn_slurp("$ServRoot/logs/mock.log"));
    }
    return undef;
}

# ---------------------------------------------------------------------------
# servroot and nginx.conf
# ---------------------------------------------------------------------------

sub _tn_kill_stale_nginx {
    my $pidfile = "$ServRoot/logs/nginx.pid";
    return unless -f $pidfile;
    my $pid = _tn_slurp($pidfile);
    return unless defined $pid && $pid =~ /^\s*(\d+)\s*$/;
    $pid = $1;
    my $cmd = _tn_slurp("/proc/$pid/cmdline");
    return unless $cmd =~ /nginx/ && index($cmd, $ServRoot) >= 0;
    Test::More::diag("killing stale nginx $pid from a previous run");
    kill 'QUIT', $pid;
    for (1 .. 200) {
        last unless kill 0, $pid;
        Time::HiRes::sleep(0.01);
    }
    kill 'KILL', $pid if kill 0, $pid;
}

sub _tn_init_servroot {
    _tn_kill_stale_nginx();
    File::Path::remove_tree($ServRoot) if -d $ServRoot;
    File::Path::make_path(map { "$ServRoot/$_" } qw(conf logs html bin));

    # "nginx" in --- exec is the binary under test, with the preload
    my $q = sub { (my $v = shift) =~ s/'/'\\''/g; "'$v'" };
    my $sh = "#!/bin/sh\n# generated by t/lib/Test/Nginx/Socket.pm: "
             . "the nginx under test\n";
    $sh .= "LD_PRELOAD=" . $q->($Preload) . "\nexport LD_PRELOAD\n"
        if defined $Preload && length $Preload;
    $sh .= "exec " . $q->($NginxBinary) . ' "$@"' . "\n";
    _tn_spit("$ServRoot/bin/nginx", $sh);
    chmod 0755, "$ServRoot/bin/nginx";

    _tn_new_reports();      # earlier files' reports were theirs
}

# which block a report comes from, for its file name: "010-proxy.T7"
sub _tn_report_tag {
    my ($tname) = @_;
    (my $script = File::Basename::basename($0)) =~ s/\.t$//;
    my $n = defined $tname && $tname =~ /^TEST (\d+)/ ? "T$1" : 'after';
    return "$script.$n";
}

# sanitizer report files that appeared since the last call: [name, text];
# with a tag, they are renamed NAME.TAG (a process writing on to one
# still does)
sub _tn_new_reports {
    my ($tag) = @_;
    return () unless defined $SanDir;
    opendir my $dh, $SanDir or return ();
    my @new = sort grep { !/^\./ && !$SeenReports{$_}++ } readdir $dh;
    closedir $dh;
    my @out;
    for my $f (@new) {
        if (defined $tag && rename "$SanDir/$f", "$SanDir/$f.$tag") {
            $f .= ".$tag";
            $SeenReports{$f} = 1;
        }
        push @out, [$f, _tn_slurp("$SanDir/$f")];
    }
    return @out;
}

sub _tn_reports_why {
    my ($tname) = @_;
    my @r = _tn_new_reports(_tn_report_tag($tname));
    return () unless @r;
    return ("sanitizer reports in $SanDir:\n" . join '', map {
        my @l = grep { /\S/ && !/^=+$/ } split /\n/, $_->[1];
        @l = (@l[0 .. 24], '...') if @l > 26;
        "--- $_->[0]:\n" . join('', map { "    $_\n" } @l)
    } @r);
}

# sanitizer reports in nginx's error log and stderr (each with the
# stack lines after it); filed in $SanDir too, as ubsan.TAG, so that
# they are listed with the others
sub _tn_log_reports_why {
    my ($tname, $log) = @_;
    my (@rep, $cur);
    for my $line (split /\n/, $log) {
        if ($line =~ $SanReportRe) {
            push @rep, $cur = $line;
        } elsif (defined $cur && $line =~ /^\s+#\d+ /) {
            $rep[-1] .= "\n$line";
        } else {
            undef $cur;
        }
    }
    return () unless @rep;
    my $text = join("\n", @rep) . "\n";
    if (defined $SanDir) {
        my $f = 'ubsan.' . _tn_report_tag($tname);
        my $n = 1;
        $n++ while -e "$SanDir/$f" . ($n > 1 ? ".$n" : '');
        $f .= ".$n" if $n > 1;
        _tn_spit("$SanDir/$f", "# $0: $tname\n$text");
        $SeenReports{$f} = 1;
    }
    my @l = split /\n/, $text;
    @l = (@l[0 .. 38], '...') if @l > 40;
    return ("sanitizer reports in error.log / nginx stderr:\n"
            . join '', map { "    $_\n" } @l);
}

sub _tn_reset_html {
    File::Path::remove_tree($HtmlDir) if -d $HtmlDir;
    File::Path::make_path($HtmlDir);
}

sub _tn_write_user_files {
    my ($block) = @_;
    return unless _tn_has($block, 'user_files');
    my $uf = _tn_val($block, 'user_files');
    return unless defined $uf;
    my @files;
    if (ref $uf eq 'ARRAY') {
        for my $f (@$uf) {
            die $block->name . ": user_files eval entries must be [name, content]\n"
                unless ref $f eq 'ARRAY';
            push @files, [@$f];
        }
    } else {
        my $cur;
        for my $line (split /^/, $uf) {
            if ($line =~ /^>>>\s+(\S+)(?:\s+(\d+))?\s*$/) {
                $cur = [$1, '', $2];
                push @files, $cur;
            } elsif ($cur) {
                $cur->[1] .= $line;
            } elsif ($line =~ /\S/) {
                die $block->name . ": user_files must start with '>>> name'\n";
            }
        }
    }
    for my $f (@files) {
        my ($name, $content, $mtime) = @$f;
        my $path = "$HtmlDir/$name";
        _tn_spit($path, defined $content ? $content : '');
        utime $mtime, $mtime, $path if defined $mtime;
    }
}

sub _tn_nginx_conf {
    my ($block) = @_;
    my $main = _tn_val($block, 'main_config');
    my $http = _tn_val($block, 'http_config');
    my $conf = _tn_val($block, 'config');
    for ($main, $http, $conf) { $_ = '' unless defined $_ }

    my $out = "# generated by t/lib/Test/Nginx/Socket.pm for: "
              . $block->name . "\n";
    if (my $dir = $ENV{TEST_NGINX_MODULES}) {
        for my $m (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '') {
            my $so = "$dir/$m.so";
            if (-f $so) {
                $out .= "load_module $so;\n";
            } elsif ($Verbose) {
                Test::More::diag("module $so not found, not loading it");
            }
        }
    }
    if ($> == 0 && $main !~ /^\s*user\s/m) {
        $out .= "user root;\n";
    }
    $out .= "pid logs/nginx.pid;\n"
          . "error_log logs/error.log $LogLevel;\n"
          . "worker_processes $Workers;\n"
          . "daemon off;\n"
          . "master_process on;\n";
    $out .= "env $_;\n" for @EnvToNginx;
    $out .= "\n$main\n" if $main =~ /\S/;
    $out .= "events {\n    worker_connections 1024;\n}\n\n";
    $out .= "http {\n"
          . "    access_log logs/access.log;\n"
          . "    default_type text/plain;\n"
          . "    client_body_temp_path $ServRoot/client_body_temp;\n"
          . "    proxy_temp_path $ServRoot/proxy_temp;\n"
          . "    fastcgi_temp_path $ServRoot/fastcgi_temp;\n"
          . "    uwsgi_temp_path $ServRoot/uwsgi_temp;\n"
          . "    scgi_temp_path $ServRoot/scgi_temp;\n\n";
    $out .= "$http\n" if $http =~ /\S/;
    $out .= "    server {\n"
          . "        listen 127.0.0.1:$ServerPort;\n"
          . "        server_name localhost;\n"
          . "\n"
          . "$conf\n";
    unless ($NoRootLocation || $conf =~ m{\blocation\s+/\s*\{}) {
        $out .= "        location / {\n"
              . "            root html;\n"
              . "            index index.html index.htm;\n"
              . "        }\n";
    }
    $out .= "    }\n}\n";
    return $out;
}

# ---------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------

sub _tn_parse_more_headers {
    my ($mh) = @_;
    my @h;
    return () unless defined $mh;
    for my $line (split /\n/, $mh) {
        $line =~ s/\r$//;
        next unless $line =~ /\S/;
        next if $line =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $v = '' unless defined $v;
        push @h, [$k, $v];
    }
    return @h;
}

# returns { bytes => [packets], close => bool, method => 'GET' }
sub _tn_build_request {
    my ($name, $req, $more_headers) = @_;
    $req = '' unless defined $req;
    1 while $req =~ s/^\s*#[^\n]*\n// || $req =~ s/^\s+//;
    my ($first, $body) = split /\n/, $req, 2;
    die "$name: empty --- request\n" unless defined $first && $first =~ /\S/;
    $first =~ s/\r$//;
    my ($meth, $uri, $ver) = split ' ', $first;
    $uri = '/' unless defined $uri;
    $ver = 'HTTP/1.1' unless defined $ver;
    $body = '' unless defined $body;

    my @h = _tn_parse_more_headers($more_headers);
    my %has = map { (lc $_->[0] => 1) } @h;
    my $chunked = grep { lc $_->[0] eq 'transfer-encoding'
                         && $_->[1] =~ /chunked/i } @h;

    my $head = "$meth $uri $ver\r\n";
    $head .= "Host: localhost\r\n" unless $has{host};
    my $close = 1;
    if ($has{connection}) {
        my ($c) = map { $_->[1] } grep { lc $_->[0] eq 'connection' } @h;
        $close = $c =~ /close/i ? 1 : 0;
    } else {
        $head .= "Connection: close\r\n";
    }
    $close = 1 if $ver eq 'HTTP/1.0' && !$has{connection};
    $head .= "$_->[0]: $_->[1]\r\n" for @h;
    if (!$chunked && !$has{'content-length'} && length $body) {
        $body =~ s/^\s+|\s+$//gs;
        $head .= "Content-Length: " . length($body) . "\r\n";
    }
    $head .= "\r\n";
    return { packets => [$head . $body], close => $close, method => $meth };
}

sub _tn_dechunk {
    my ($data) = @_;
    my $out = '';
    my $pos = 0;
    my $len = length $data;
    while (1) {
        my $eol = index($data, "\n", $pos);
        return ($out, 'incomplete chunked body (no terminating 0-size chunk)', 0)
            if $eol < 0;
        my $line = substr($data, $pos, $eol - $pos);
        $line =~ s/\r$//;
        return ($out, "bad chunk-size line \"$line\"", 0)
            unless $line =~ /^([0-9a-fA-F]+)[ \t]*(?:;.*)?$/;
        my $size = hex $1;
        $pos = $eol + 1;
        if ($size == 0) {
            while (1) {
                my $e = index($data, "\n", $pos);
                return ($out, 'incomplete chunked trailer', 0) if $e < 0;
                my $l = substr($data, $pos, $e - $pos);
                $pos = $e + 1;
                $l =~ s/\r$//;
                last if $l eq '';
            }
            return ($out, "garbage after the last chunk", 1) if $pos < $len;
            return ($out, undef, 1);
        }
        if ($len < $pos + $size) {
            $out .= substr($data, $pos);
            return ($out, 'incomplete chunk data', 0);
        }
        $out .= substr($data, $pos, $size);
        $pos += $size;
        my $rest = substr($data, $pos, 2);
        if ($rest eq "\r\n") {
            $pos += 2;
        } elsif (substr($rest, 0, 1) eq "\n") {
            $pos += 1;
        } elsif ($rest eq '' || $rest eq "\r") {
            return ($out, 'incomplete chunked body', 0);
        } else {
            return ($out, 'missing CRLF after chunk data', 0);
        }
    }
}

# parse a raw response; returns a hash ref
sub _tn_parse_response {
    my ($raw, $method) = @_;
    my %r = (raw => $raw, headers => [], hdr => {}, body => '',
             status => undef, errors => [], complete => 0);
    my $data = $raw;
    while (1) {
        my ($pos, $sep) = (index($data, "\r\n\r\n"), 4);
        my $p2 = index($data, "\n\n");
        ($pos, $sep) = ($p2, 2) if $p2 >= 0 && ($pos < 0 || $p2 < $pos);
        if ($pos < 0) {
            $r{head} = $data;
            push @{$r{errors}}, 'incomplete response header';
            $r{body} = '';
            _tn_parse_head(\%r, $data);
            return \%r;
        }
        my $head = substr($data, 0, $pos);
        my $rest = substr($data, $pos + $sep);
        if ($head =~ m{^HTTP/\d\.\d\s+1\d\d\b} && $head !~ m{^HTTP/\d\.\d\s+101\b}) {
            $data = $rest;          # skip interim 1xx responses
            next;
        }
        $r{head} = $head;
        _tn_parse_head(\%r, $head);
        my $te = lc join ',', @{$r{hdr}{'transfer-encoding'} || []};
        my $cl = $r{hdr}{'content-length'};
        my $st = $r{status} || 0;
        if (defined $method && $method eq 'HEAD' || $st == 204 || $st == 304) {
            $r{body} = $rest;
            $r{complete} = 1;
        } elsif ($te =~ /chunked/) {
            my ($body, $err, $done) = _tn_dechunk($rest);
            $r{body} = $body;
            $r{complete} = $done;
            push @{$r{errors}}, $err if defined $err;
        } elsif ($cl) {
            my $n = $cl->[0];
            $r{body} = $rest;
            if (@$cl > 1) {
                push @{$r{errors}}, 'multiple Content-Length headers';
            }
            if ($n !~ /^\d+$/) {
                push @{$r{errors}}, "bad Content-Length \"$n\"";
            } elsif (length($rest) < $n) {
                push @{$r{errors}}, "body shorter than Content-Length ("
                                    . length($rest) . " < $n)";
            } else {
                $r{complete} = 1;
                if (length($rest) > $n) {
                    push @{$r{errors}}, "extra data after the body ("
                                        . length($rest) . " > $n)";
                }
            }
        } else {
            $r{body} = $rest;       # delimited by connection close
        }
        return \%r;
    }
}

sub _tn_parse_head {
    my ($r, $head) = @_;
    my @lines = split /\r?\n/, $head;
    my $sl = shift @lines;
    $sl = '' unless defined $sl;
    $r->{status_line} = $sl;
    if ($sl =~ m{^HTTP/(\d\.\d)\s+(\d{3})\b}) {
        $r->{status} = $2;
    } elsif (length $sl) {
        push @{$r->{errors}}, "bad status line \"$sl\"";
    }
    for my $l (@lines) {
        if ($l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/) {
            push @{$r->{headers}}, [$1, $2];
            push @{$r->{hdr}{lc $1}}, $2;
        } else {
            push @{$r->{errors}}, "bad header line \"$l\"";
        }
    }
}

# send one request (list of packets) and read the response
sub _tn_http {
    my ($req, $timeout, $abort) = @_;
    my %res = (raw => '', timed_out => 0);
    my $deadline = Time::HiRes::time() + $timeout;
    local $SIG{PIPE} = 'IGNORE';

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ServerPort,
                                     Proto => 'tcp',
                                     Timeout => $timeout);
    unless ($sock) {
        $res{error} = "cannot connect to 127.0.0.1:$ServerPort: $!";
        return \%res;
    }
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my $write_err;

    my @packets = @{$req->{packets}};
  PACKET:
    for my $i (0 .. $#packets) {
        my $buf = $packets[$i];
        while (length $buf) {
            my $left = $deadline - Time::HiRes::time();
            if ($left <= 0) { $res{timed_out} = 1; last PACKET }
            next unless $sel->can_write($left);
            my $n = syswrite($sock, $buf);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $write_err = "write failed: $!";
                last PACKET;
            }
            substr($buf, 0, $n, '');
        }
        Time::HiRes::sleep(0.02) if $i < $#packets;
    }

    my $raw = '';
    if (!$res{timed_out}) {
        while (1) {
            my $left = $deadline - Time::HiRes::time();
            if ($left <= 0) { $res{timed_out} = 1; last }
            next unless $sel->can_read($left);
            my $n = sysread($sock, $raw, 65536, length $raw);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $res{read_error} = "read failed: $!";
                last;
            }
            if ($n == 0) { $res{eof} = 1; last }
            if (!$req->{close}) {
                my $p = _tn_parse_response($raw, $req->{method});
                last if $p->{complete};
            }
        }
    }
    close $sock;

    my $p = _tn_parse_response($raw, $req->{method});
    %res = (%res, %$p);
    $res{write_error} = $write_err if $write_err && !length $raw;
    return \%res;
}

# ---------------------------------------------------------------------------
# exec section
# ---------------------------------------------------------------------------

sub _tn_run_exec {
    my ($cmd, $timeout) = @_;
    my $out = "$ServRoot/logs/exec.stdout";
    my $err = "$ServRoot/logs/exec.stderr";
    unlink $out, $err;
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        $SIG{$_} = 'DEFAULT' for qw(INT TERM QUIT PIPE HUP CHLD);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        $ENV{PATH} = "$ServRoot/bin:" . ($ENV{PATH} || '/usr/bin:/bin');
        { no warnings 'exec'; exec '/bin/sh', '-c', $cmd; }
        POSIX::_exit(127);
    }
    my $st = _tn_wait_exit($pid, $timeout);
    my $timed_out = 0;
    unless (defined $st) {
        $timed_out = 1;
        kill 'KILL', -$pid;
        $st = _tn_wait_exit($pid, 5);
    }
    kill 'KILL', -$pid;       # background leftovers
    return { stdout => _tn_slurp($out), stderr => _tn_slurp($err),
             status => $st, timed_out => $timed_out };
}

# ---------------------------------------------------------------------------
# counting
# ---------------------------------------------------------------------------

sub _tn_requests {
    my ($block) = @_;
    my $name = $block->name;
    if (_tn_has($block, 'raw_request')) {
        my $raw = _tn_val($block, 'raw_request');
        $raw = '' unless defined $raw;
        my @packets = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        my $all = join '', @packets;
        my ($meth) = $all =~ /^\s*(\S+)/;
        my $close = $all =~ /^Connection:\s*keep-alive/mi ? 0 : 1;
        return ({ packets => \@packets, close => $close, method => $meth || '' });
    }
    return () unless _tn_has($block, 'request');
    my $req = _tn_val($block, 'request');
    my $mh = _tn_val($block, 'more_headers');
    my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
    my @out;
    for my $i (0 .. $#reqs) {
        push @out, _tn_build_request($name, $reqs[$i], _tn_indexed($mh, $i));
    }
    return @out;
}

sub _tn_count_tests {
    my ($block, $nreq) = @_;
    my $n = 1;      # implicit log check
    if (_tn_has($block, 'must_die')) {
        $n += 1;
        $n += () = _tn_patterns(_tn_val($block, 'error_log'));
        $n += () = _tn_patterns(_tn_val($block, 'no_error_log'));
        return $n;
    }
    my @body_secs = qw(response_body response_body_like response_body_unlike);
    if (_tn_has($block, 'exec')) {
        $n += 1;
        for my $s (@body_secs) {
            $n++ if defined _tn_indexed(_tn_val($block, $s), 0);
        }
    } else {
        for my $i (0 .. $nreq - 1) {
            $n += 1;
            for my $s (qw(response_headers response_headers_like)) {
                $n += () = _tn_header_lines(_tn_indexed(_tn_val($block, $s), $i));
            }
            for my $s (@body_secs) {
                $n++ if defined _tn_indexed(_tn_val($block, $s), $i);
            }
        }
    }
    for my $s (qw(error_log no_error_log access_log access_log_like)) {
        $n += () = _tn_patterns(_tn_val($block, $s));
    }
    return $n;
}

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

sub _tn_short {
    my ($s) = @_;
    return 'undef' unless defined $s;
    my $t = $s;
    $t = substr($t, 0, 300) . '...' if length $t > 300;
    $t =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    return $t;
}

sub _tn_check_body {
    my ($tname, $got, $block, $i) = @_;
    my $exp = _tn_indexed(_tn_val($block, 'response_body'), $i);
    if (defined $exp) {
        if ($got eq $exp) {
            Test::More::pass("$tname - response_body - response is expected");
        } else {
            Test::More::fail("$tname - response_body - response is expected");
            if ($exp =~ /\n./s || $got =~ /\n./s || length $exp > 80
                || length $got > 80) {
                require Text::Diff;
                Test::More::diag("response body differs (- expected, + got):\n"
                    . Text::Diff::diff(\$exp, \$got, { STYLE => 'Unified' }));
            } else {
                Test::More::diag("         got: '" . _tn_short($got) . "'\n"
                                 . "    expected: '" . _tn_short($exp) . "'");
            }
        }
    }
    for my $s (qw(response_body_like response_body_unlike)) {
        my $pat = _tn_indexed(_tn_val($block, $s), $i);
        next unless defined $pat;
        my $re;
        if (ref $pat eq 'Regexp') {
            $re = $pat;
        } else {
            (my $p = $pat) =~ s/\n\z//;
            $re = eval { qr/$p/s };
            unless ($re) {
                Test::More::fail("$tname - $s - bad regex");
                Test::More::diag("bad regex /$p/: $@");
                next;
            }
        }
        my $m = $got =~ $re;
        my $ok = $s eq 'response_body_like' ? $m : !$m;
        Test::More::ok($ok, "$tname - $s - response is expected")
            or Test::More::diag("response body: '" . _tn_short($got) . "'\n"
                                . "     pattern: $re");
    }
}

sub _tn_check_response {
    my ($block, $tname, $res, $want_abort) = @_;
    my $i = $res->{index};
    my $aborted = $res->{timed_out} && $want_abort;
    my $exp_code = _tn_indexed(_tn_val($block, 'error_code'), $i);
    my $explicit_code = defined $exp_code && $exp_code =~ /\S/;
    $exp_code = 200 unless $explicit_code;
    $exp_code =~ s/^\s+|\s+$//g;

    my @why;
    if ($res->{error}) {
        push @why, $res->{error};
    } elsif ($res->{timed_out} && !$want_abort) {
        push @why, "client timed out after $res->{timeout}s waiting for the "
                   . "response (add --- abort if that is expected)";
    }
    if (!$aborted && !$res->{error}) {
        push @why, "read error: $res->{read_error}" if $res->{read_error};
        push @why, "write error: $res->{write_error}" if $res->{write_error};
        push @why, map { "malformed response: $_" } @{$res->{errors} || []};
    }
    my $got = $res->{status};
    if ($aborted && !$explicit_code) {
        Test::More::ok(!@why, "$tname - client aborted after timeout as expected");
    } else {
        push @why, "status code: got " . (defined $got ? $got : 'none')
                   . ", expected $exp_code"
            unless defined $got && $got eq $exp_code;
        Test::More::ok(!@why, "$tname - status code ok");
    }
    if (@why) {
        Test::More::diag(join "\n", @why);
        Test::More::diag("response:\n" . _tn_tail(_tn_short($res->{raw}), 20))
            if defined $res->{raw} && length $res->{raw};
    }

    for my $h (_tn_header_lines(_tn_indexed(_tn_val($block, 'response_headers'), $i))) {
        my ($k, $v, $absent) = @$h;
        my $vals = $res->{hdr}{lc $k};
        my $gotv = $vals ? join(', ', @$vals) : undef;
        if ($absent == 2) {
            Test::More::fail("$tname - response_headers - bad line \"$k\"");
        } elsif ($absent) {
            Test::More::ok(!defined $gotv, "$tname - header $k absent")
                or Test::More::diag("header $k: '$gotv'");
        } elsif ($v eq '') {
            Test::More::ok(!defined $gotv || $gotv eq '',
                           "$tname - header $k empty or absent")
                or Test::More::diag("header $k: '$gotv'");
        } else {
            Test::More::ok(defined $gotv && $gotv eq $v, "$tname - header $k ok")
                or Test::More::diag("header $k: got "
                    . (defined $gotv ? "'$gotv'" : 'nothing') . ", expected '$v'");
        }
    }
    for my $h (_tn_header_lines(_tn_indexed(_tn_val($block, 'response_headers_like'), $i))) {
        my ($k, $v, $absent) = @$h;
        my $vals = $res->{hdr}{lc $k};
        my $gotv = $vals ? join(', ', @$vals) : undef;
        if ($absent == 2) {
            Test::More::fail("$tname - response_headers_like - bad line \"$k\"");
        } elsif ($absent) {
            Test::More::ok(!defined $gotv, "$tname - header $k absent")
                or Test::More::diag("header $k: '$gotv'");
        } else {
            my $re = eval { qr/$v/s };
            Test::More::ok(defined $re && defined $gotv && $gotv =~ $re,
                           "$tname - header $k like /$v/")
                or Test::More::diag($re ? "header $k: "
                        . (defined $gotv ? "'$gotv'" : 'absent')
                        : "bad regex /$v/: $@");
        }
    }
    _tn_check_body($tname, defined $res->{body} ? $res->{body} : '', $block, $i);
}

# error_log / no_error_log / access_log / access_log_like / implicit
sub _tn_check_logs {
    my ($block, $tname, $log, $access, $what) = @_;
    my $showed_tail;
    my $show_tail = sub {
        return if $showed_tail++;
        Test::More::diag("tail of $what:\n" . _tn_tail($log, 25));
    };
    for my $p (_tn_patterns(_tn_val($block, 'error_log'))) {
        Test::More::ok(_tn_pat_match($p, $log),
            "$tname - pattern " . _tn_pat_desc($p) . " should match a line in $what")
            or $show_tail->();
    }
    for my $p (_tn_patterns(_tn_val($block, 'no_error_log'))) {
        my $ok = !_tn_pat_match($p, $log);
        Test::More::ok($ok, "$tname - pattern " . _tn_pat_desc($p)
                            . " should not match any line in $what")
            or Test::More::diag("matching lines:\n" . _tn_tail(join("\n",
                grep { _tn_pat_match($p, $_) } split /\n/, $log), 10));
    }
    return unless defined $access;
    for my $s (qw(access_log access_log_like)) {
        for my $p (_tn_patterns(_tn_val($block, $s))) {
            my $re;
            if ($s eq 'access_log_like' && !ref $p) {
                $re = eval { qr/$p/ };
                unless ($re) {
                    Test::More::fail("$tname - $s - bad regex /$p/");
                    next;
                }
            }
            my $pp = $re || $p;
            Test::More::ok(_tn_pat_match($pp, $access),
                "$tname - $s " . _tn_pat_desc($pp) . " should match a line in access.log")
                or Test::More::diag("access.log:\n" . _tn_tail($access, 10));
        }
    }
}

sub _tn_implicit_check {
    my ($block, $tname, $log, $extra_why) = @_;
    my @allowed_src;
    for my $p (_tn_patterns(_tn_val($block, 'error_log'))) {
        if (ref $p eq 'Regexp') {
            (my $s = "$p") =~ s/\\//g;
            push @allowed_src, $s;
        } else {
            push @allowed_src, $p;
        }
    }
    my $allowed = join "\n", @allowed_src;
    my @bad;
    for my $line (split /\n/, $log) {
        if ($line =~ $CrashRe) {
            push @bad, $line;
            next;
        }
        for my $m (@ErrorMarkers) {
            if (index($line, $m) >= 0 && index($allowed, $m) < 0) {
                push @bad, $line;
                last;
            }
        }
    }
    my @why = @$extra_why;
    push @why, "unexpected lines in error.log:\n" . _tn_tail(join("\n", @bad), 20)
        if @bad;
    Test::More::ok(!@why, "$tname - no unexpected [error]/[alert]/[crit]/[emerg] "
                          . "or crash in error.log")
        or Test::More::diag(join "\n", @why);
}

sub _tn_fail_block {
    my ($tname, $ntests, $msg) = @_;
    Test::More::fail("$tname - nginx/mock started");
    Test::More::diag($msg);
    my $tb = Test::More->builder;
    $tb->skip("$tname: setup failed") for 2 .. $ntests;
}

# ---------------------------------------------------------------------------
# running a block
# ---------------------------------------------------------------------------

sub _tn_stop_nginx {
    return (undef, 'not running') unless $NginxPid;
    my @r = _tn_stop_proc($NginxPid, 'QUIT', $QuitGrace);
    undef $NginxPid;
    return @r;
}

sub _tn_run_block {
    my ($block, $rep) = @_;
    my $tname = $block->name;
    my $must_die = _tn_has($block, 'must_die');

    my @reqs;
    unless ($must_die || _tn_has($block, 'exec')) {
        @reqs = _tn_requests($block);
    }
    my $ntests = _tn_count_tests($block, scalar @reqs);

    if (my $err = _tn_ensure_mock($block) || _tn_ensure_redis($block)) {
        _tn_fail_block($tname, $ntests, $err);
        return;
    }

    _tn_reset_html();
    _tn_write_user_files($block);
    my $conf = _tn_nginx_conf($block);
    _tn_spit("$ServRoot/conf/nginx.conf", $conf);
    Test::More::diag("nginx.conf for $tname:\n$conf") if $Verbose;

    my $elog = "$ServRoot/logs/error.log";
    my $alog = "$ServRoot/logs/access.log";
    my $slog = "$ServRoot/logs/stderr.log";
    unlink $elog, $alog, $slog;

    if (!_tn_wait_port_free($ServerPort, 2)) {
        _tn_fail_block($tname, $ntests, "port $ServerPort is already in use "
            . "by another process (a stale nginx?); cannot start nginx");
        return;
    }

    my @argv = ($NginxBinary, '-p', "$ServRoot/", '-c', 'conf/nginx.conf');
    my $env = defined $Preload && length $Preload
              ? { LD_PRELOAD => $Preload } : undef;
    $NginxPid = _tn_spawn(\@argv, $slog, $env);

    if ($must_die) {
        my $st = _tn_wait_exit($NginxPid, $StartTimeout);
        my $still_running = !defined $st;
        my $how;
        if ($still_running) {
            ($st, $how) = _tn_stop_nginx();
        }
        undef $NginxPid;
        my $log = _tn_slurp($slog) . _tn_slurp($elog);
        my $died_ok = !$still_running && defined $st && $st != -1
                      && !($st & 127) && ($st >> 8) != 0;
        Test::More::ok($died_ok, "$tname - nginx failed to start as expected (must_die)")
            or Test::More::diag($still_running
                ? "nginx started successfully but --- must_die was given"
                : "nginx " . _tn_status_str($st) . "\n" . _tn_tail($log, 20));
        _tn_check_logs($block, $tname, $log, undef, 'nginx stderr + error.log');
        my @why;
        push @why, "nginx " . _tn_status_str($st)
            if defined $st && $st != -1 && ($st & 127);
        my @crash = grep { /$CrashRe/ } split /\n/, $log;
        push @why, "crash lines:\n" . _tn_tail(join("\n", @crash)) if @crash;
        push @why, _tn_log_reports_why($tname, $log), _tn_reports_why($tname);
        Test::More::ok(!@why, "$tname - nginx did not crash")
            or Test::More::diag(join "\n", @why);
        return;
    }

    my $err = _tn_wait_listen($NginxPid, $ServerPort, 'nginx');
    if ($err) {
        my $stderr = _tn_slurp($slog);
        my $log = _tn_slurp($elog);
        if ($NginxPid) {
            my $st = _tn_reaped($NginxPid);
            _tn_stop_nginx() unless defined $st;
            undef $NginxPid;
        }
        _tn_fail_block($tname, $ntests, "$err\n"
            . "--- nginx stderr:\n" . _tn_tail($stderr, 20)
            . "--- tail of logs/error.log:\n" . _tn_tail($log, 20)
            . "--- conf: $ServRoot/conf/nginx.conf"
            . join('', map { "\n$_" } _tn_log_reports_why($tname,
                                                           "$stderr\n$log"),
                                      _tn_reports_why($tname)));
        return;
    }

    my $want_abort = _tn_has($block, 'abort');
    my (@results, $exec_res);
    if (_tn_has($block, 'exec')) {
        my $cmd = _tn_val($block, 'exec');
        $cmd =~ s/\s+\z//;
        my $t = _tn_timeout($block, 60);
        $exec_res = _tn_run_exec($cmd, $t);
        $exec_res->{timeout} = $t;
        $exec_res->{cmd} = $cmd;
        Test::More::diag("exec '$cmd' stdout:\n$exec_res->{stdout}") if $Verbose;
    } else {
        my $t = _tn_timeout($block, 5);
        for my $i (0 .. $#reqs) {
            my $res = _tn_http($reqs[$i], $t, $want_abort);
            $res->{index} = $i;
            $res->{timeout} = $t;
            push @results, $res;
            Test::More::diag("response $i:\n$res->{raw}") if $Verbose;
        }
    }

    my $wait = _tn_val($block, 'wait');
    if (defined $wait && $wait =~ /(\d+(?:\.\d*)?)/) {
        Time::HiRes::sleep($1);
    }

    my ($st, $how) = _tn_stop_nginx();
    my @why;
    if (!defined $st || $st == -1) {
        push @why, "could not reap nginx";
    } elsif ($st & 127) {
        push @why, "nginx master " . _tn_status_str($st)
            . ($how eq 'KILL' ? ' (had to SIGKILL it: it hung on shutdown)' : '');
    } elsif ($st >> 8) {
        push @why, "nginx master exited with " . _tn_status_str($st)
                   . " ($how)";
    }
    if ($how eq 'already exited') {
        push @why, "nginx master exited by itself during the test";
    }

    my $log = _tn_slurp($elog);
    my $stderr = _tn_slurp($slog);
    $log .= $stderr if length $stderr;
    my $access = _tn_slurp($alog);
    push @why, _tn_log_reports_why($tname, $log), _tn_reports_why($tname);

    # response checks
    if ($exec_res) {
        my @ew;
        my $exp = _tn_val($block, 'exec_status');
        $exp = 0 unless defined $exp && $exp =~ /\S/;
        $exp =~ s/^\s+|\s+$//g;
        if ($exec_res->{timed_out}) {
            push @ew, "exec timed out after $exec_res->{timeout}s";
        } elsif (($exec_res->{status} & 127)
                 || ($exec_res->{status} >> 8) != $exp) {
            # the script is in the test file: its first line names it,
            # and the output says where it stopped
            my ($first) = split /\n/, $exec_res->{cmd};
            $first = '' unless defined $first;
            push @ew, "exec '$first ...': "
                      . _tn_status_str($exec_res->{status})
                      . ", expected exit code $exp";
        }
        Test::More::ok(!@ew, "$tname - exec status ok")
            or Test::More::diag(join("\n", @ew) . "\nstdout:\n"
                    . _tn_tail($exec_res->{stdout}, 15)
                    . "stderr:\n" . _tn_tail($exec_res->{stderr}, 30));
        _tn_check_body($tname, $exec_res->{stdout}, $block, 0);
    } else {
        for my $res (@results) {
            my $n = @results > 1 ? "$tname (req $res->{index})" : $tname;
            _tn_check_response($block, $n, $res, $want_abort);
        }
    }

    _tn_check_logs($block, $tname, $log, $access, 'error.log');
    _tn_implicit_check($block, $tname, $log, \@why);
}

# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

sub _tn_cleanup {
    return if $CleanupDone++;
    if ($NginxPid) {
        _tn_stop_proc($NginxPid, 'QUIT', 1);
        undef $NginxPid;
    }
    _tn_stop_mock();
    _tn_stop_redis();
}

sub _tn_redis_ctl {
    my ($cmd, @args) = @_;
    my @argv = ($ENV{TEST_NGINX_REDIS}, $cmd, $ENV{TEST_NGINX_REDIS_DIR},
                $ENV{TEST_NGINX_REDIS_PORT}, @args);
    return system(@argv) == 0;
}

sub _tn_redis_running {
    my $pid = _tn_slurp("$ENV{TEST_NGINX_REDIS_DIR}/redis.pid");
    return defined $pid && $pid =~ /^\s*(\d+)\s*$/ && kill(0, $1);
}

# the redis-server with the args this block wants (--- redis_args, else
# the file's), running: started again if not; undef or an error
sub _tn_ensure_redis {
    my ($block) = @_;
    return undef unless $RedisArgs;

    my @want = @$RedisArgs;
    if (_tn_has($block, 'redis_args')) {
        my $v = _tn_val($block, 'redis_args');
        @want = Text::ParseWords::shellwords(defined $v ? $v : '');
    }
    my $want = join "\0", @want;

    return undef if defined $RedisStarted && $RedisStarted eq $want
                    && _tn_redis_running();

    _tn_redis_ctl('stop') if defined $RedisStarted;
    $RedisStarted = $want;
    if (!_tn_wait_port_free($ENV{TEST_NGINX_REDIS_PORT}, 2)) {
        return "redis port $ENV{TEST_NGINX_REDIS_PORT} is already in use";
    }
    if (!_tn_redis_ctl('start', @want)) {
        return "cannot start redis-server on port $ENV{TEST_NGINX_REDIS_PORT}"
               . "\n--- redis.log:\n"
               . _tn_tail(_tn_slurp("$ENV{TEST_NGINX_REDIS_DIR}/redis.log"));
    }
    return undef;
}

sub _tn_stop_redis {
    return unless defined $RedisStarted;
    undef $RedisStarted;
    _tn_redis_ctl('stop');
}

sub run_tests () {
    my $tb = Test::More->builder;
    Test::Base::plan('no_plan') unless $tb->has_plan;

    local $SIG{INT} = sub { _tn_cleanup(); exit 130 };
    local $SIG{TERM} = sub { _tn_cleanup(); exit 143 };

    # one a killed run left running
    _tn_redis_ctl('stop') if -f "$ENV{TEST_NGINX_REDIS_DIR}/redis.pid";
    _tn_init_servroot();
    $CleanupDone = 0;

    for my $block (Test::Base::blocks()) {
        for my $rep (1 .. $RepeatEach) {
            _tn_run_block($block, $rep);
        }
    }
    _tn_cleanup();

    # a report written after its block ended (an nginx an --- exec left
    # exiting): one more, failing, test
    if (my @why = _tn_reports_why()) {
        Test::More::fail("no sanitizer report after the last block");
        Test::More::diag(join "\n", @why);
    }
}

END {
    _tn_cleanup();
}

1;

__END__

=head1 NAME

Test::Nginx::Socket - minimal Test::Nginx compatible harness (project-local)

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Nginx::Socket 'no_plan';      # or: plan tests => N below
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hi\n"; }
    --- request
    GET /t
    --- response_body
    hi
    --- no_error_log
    [error]

Run with C<prove -I t/lib t/>.  Test files must not run in parallel
(C<prove -j>): they share the ports and the servroot.

=head1 GENERATED CONFIG

nginx runs as C<nginx -p SERVROOT/ -c conf/nginx.conf> (daemon off, master
on, C<worker_processes> from C<workers()>, default 1) in its own process
group.  When run as root, C<user root;> is added (unless main_config has a
C<user> directive) so workers can read the servroot.  The http block has
C<access_log logs/access.log>, C<default_type text/plain> and temp paths under
the servroot; the server listens on 127.0.0.1:$ServerPort with
C<server_name localhost>, and gets a default
C<location / { root html; }> after the block's config unless
C<no_root_location()> was called.  html/ is emptied before each block.
Each block (and each repetition) starts and stops its own nginx.

Note: Perl variables such as C<$ServerPort> are not interpolated into the
__DATA__ sections; use C<$TEST_NGINX_SERVER_PORT> there.

=head1 EXPORTS

C<run_tests>, C<plan>, C<blocks>, C<repeat_each([$n])>, C<no_shuffle>,
C<workers($n)>, C<master_on>, C<log_level($level)> (default C<info>, or
C<$TEST_NGINX_LOG_LEVEL>), C<env_to_nginx(@names)>, C<no_long_string>,
C<no_root_location>, C<server_port>, C<html_dir>, C<server_root>,
C<done_testing>, C<$ServerPort>, C<$ServRoot>, C<$HtmlDir>, and the Test::More
functions exported by Test::Base (ok, is, like, diag, pass, fail, ...).

If no plan was declared, C<run_tests> declares C<no_plan>.

=head1 ENVIRONMENT

TEST_NGINX_BINARY (default /usr/sbin/nginx), TEST_NGINX_SERVER_PORT (1984),
TEST_NGINX_SERVER_PORT2 (the server port + 6, for a server {} of a block's
own), TEST_NGINX_SERVROOT (t/servroot), TEST_NGINX_MODULES + TEST_NGINX_LOAD_MODULES
(dir + space separated names: C<load_module DIR/NAME.so;> for each existing
one), TEST_AI_MOCK_BIN + TEST_NGINX_MOCK_PORT (1985), TEST_NGINX_LOG_LEVEL,
TEST_NGINX_VERBOSE (print config and responses).

A file that calls C<redis_server(@args)> before C<run_tests> gets a
redis-server of its own (C<--save '' --appendonly no>, bound to 127.0.0.1,
with @args) for all its blocks, started with t/lib/redis-server before the
first block and stopped after the last one (also when the run is killed
by INT or TERM, or dies).  A block's C<--- redis_args> (shell words) are
its arguments for that block instead; it is started again before a block
when its arguments change or it is not running (an C<--- exec> stopped
it).  TEST_NGINX_REDIS_PORT (the server port + 8),
TEST_NGINX_REDIS_DIR (SERVROOT/redis: its pid file, log and files) and
TEST_NGINX_REDIS (the script) are always set; C<--- exec> stops and starts
it again with C<$TEST_NGINX_REDIS stop|start|restart $TEST_NGINX_REDIS_DIR
$TEST_NGINX_REDIS_PORT [args]>.

Sanitizer runs (docs/testing.md): TEST_NGINX_LD_PRELOAD is the LD_PRELOAD of
every nginx the tests start; TEST_NGINX_SANITIZER_LOGS is a directory for
sanitizer reports: the harness appends C<log_path=DIR/asan> to ASAN_OPTIONS
and UBSAN_OPTIONS, and a block fails (its implicit check) when a new file
appears there during it (the file is renamed C<NAME.SCRIPT.TN>, block N) or
when nginx's error log or stderr has a sanitizer report (UBSan's
C<file:line:col: runtime error: ...>, with its stack; filed there as
C<ubsan.SCRIPT.TN>).  Sanitizer reports in the logs fail a block even
without TEST_NGINX_SANITIZER_LOGS.

Every C<$TEST_NGINX_FOO> in any section is replaced by C<$ENV{TEST_NGINX_FOO}>;
TEST_NGINX_SERVER_PORT, TEST_NGINX_SERVROOT, TEST_NGINX_HTML_DIR,
TEST_NGINX_MOCK_PORT and TEST_NGINX_BINARY are always set.  The same
variables are in the environment of C<--- exec> commands, whose PATH starts
with SERVROOT/bin, where C<nginx> runs TEST_NGINX_BINARY (with
TEST_NGINX_LD_PRELOAD).

=head1 SECTIONS

Every section accepts Test::Base filters, notably C<eval> (Perl evaluated in
package main; errors abort the file with a message) and C<chomp>.

http_config, main_config, config, request (may be an array ref in eval form:
one connection per request), raw_request (string, or array ref of packets
sent 20 ms apart; use C<eval> so that "\r\n" and the final empty line
survive), more_headers (may be an array ref, one per request), response_body
(exact), response_body_like / response_body_unlike (regex with /s; one
trailing newline of the pattern is dropped), error_code (default 200),
response_headers (C<Name: value> exact, C<!Name> absent, C<Name:> empty or
absent; duplicates are joined with ", "), response_headers_like
(C<Name: regex>), error_log / no_error_log (substring per line, or qr// in
eval form), access_log (substrings) / access_log_like (regexes), timeout
(seconds; total per request, default 5; 60 for exec), abort, wait, user_files
(C<< >>> name [mtime] >> blocks, relative to html/, C<../conf/x> allowed; eval
form: array ref of [name, content]), exec (+ exec_status, default 0),
must_die, mock_args, redis_args, ONLY, SKIP, LAST.

response_* checks accept array refs (one element per request).

Log checks run after nginx has been stopped (QUIT, then TERM after 3 s, then
KILL), so everything is flushed; they look at logs/error.log plus nginx's
stderr.

=head1 NUMBER OF TESTS PER BLOCK

Per repetition (C<repeat_each>), a block contributes:

=over

=item * 1 per request (status code / exec exit status / framing check),

=item * 1 per line of response_headers and response_headers_like (per request),

=item * 1 for each of response_body, response_body_like, response_body_unlike
present (per request),

=item * 1 per line (or array element) of error_log, no_error_log, access_log,
access_log_like,

=item * 1 implicit check: no [error]/[alert]/[crit]/[emerg] in error.log
(a marker is allowed if it appears literally in the block's error_log
section), no worker/master crash, clean nginx exit, no sanitizer report.

=back

A C<must_die> block contributes 1 (nginx exited non-zero) + error_log and
no_error_log lines + 1 (no crash, no sanitizer report).  When nginx or the
mock cannot be started, the block fails its first test and skips the rest,
keeping the count.  A sanitizer report file that appears after the last
block of a file adds one failing test.

So the SYNOPSIS block above is 4 tests (status, body, no_error_log, implicit).

=cut
