#!/bin/bash
# Lists the sanitizer reports in DIR (the sanitizer pass's
# TEST_NGINX_SANITIZER_LOGS: asan.PID, ubsan.PID files) and exits 1 if
# there is any.  Each distinct report (kind and first frame in this
# repository's sources) is listed once with how many times it occurred
# and in which test blocks (the harness names the files after them:
# asan.PID.SCRIPT.TN, ubsan.SCRIPT.TN), then one full example of each.
#
#   scripts/sanitizer-reports.sh build-asan/sanitizer

set -euo pipefail

dir=${1:?usage: $0 DIR}
root=$(cd "$(dirname "$0")/.." && pwd)

shopt -s nullglob
files=("$dir"/*)
if [ ${#files[@]} -eq 0 ]; then
    echo "sanitizer: no report in $dir"
    exit 0
fi

perl - "$root" "${files[@]}" <<'PERL'
use strict;
use warnings;

my ($root, @files) = @ARGV;
my (%count, %example, %tests, @order);
my ($added, $test);

sub key_of {
    my ($kind, $frames, $summary) = @_;
    # the first frame in our sources, else the summary, else frame #0
    my ($where) = grep { m{\Q$root\E/\S+\.[ch]:\d+} } @$frames;
    $where = $summary unless defined $where;
    $where = $frames->[0] unless defined $where;
    $where = '?' unless defined $where;
    $where =~ s/^\s*#\d+\s+0x[0-9a-f]+\s+//;
    $where =~ s/\Q$root\E\///g;
    $kind =~ s/\s*\(?0x[0-9a-f]+\)?//g;
    return "$kind\n    at $where";
}

sub add {
    my ($key, $text, $file) = @_;
    $added++;
    push @order, $key unless $count{$key}++;
    $tests{$key}{$test}++ if defined $test;
    $example{$key} = "--- $file:\n$text" unless exists $example{$key};
}

for my $f (@files) {
    open my $fh, '<', $f or next;
    local $/;
    my $t = <$fh>;
    close $fh;
    (my $name = $f) =~ s{.*/}{};
    $added = 0;
    undef $test;
    if ($name =~ /^(?:asan\.\d+|ubsan)\.(.+?)\.(T\d+|after)(?:\.\d+)?$/) {
        $test = $2 eq 'after' ? "$1.t (after its last block)"
                              : "$1.t TEST " . substr($2, 1);
    }

    # UBSan: "file:line:col: runtime error: what" and its stack
    while ($t =~ /^(\S+:\d+:\d+):\ runtime\ error:\ ([^\n]*)\n
                  ((?:\s+\#\d+[^\n]*\n)*)/mgx)
    {
        my ($loc, $what, $stack) = ($1, $2, $3);
        $loc =~ s/\Q$root\E\///g;
        add("$loc: runtime error: $what",
            "$loc: runtime error: $what\n$stack", $name);
    }

    # ASan / LSan: "ERROR: ...Sanitizer: kind" and the stacks after it
    while ($t =~ /^(=+\d+=+ERROR:\ (\w+Sanitizer):\ ([^\n]*?)
                   (?:\ on\ address[^\n]*)?)\n
                  (.*?)(?=^=+\d+=+ERROR|\z)/msgx)
    {
        my ($head, $tool, $kind, $rest) = ($1, $2, $3, $4);
        if ($tool eq 'LeakSanitizer') {
            for my $leak (split /\n(?=(?:Direct|Indirect) leak)/, $rest) {
                next unless $leak =~ /^((?:Direct|Indirect) leak of \d+ byte)/;
                my @frames = $leak =~ /^(\s+#\d+ [^\n]*)/mg;
                add(key_of("LeakSanitizer: $1(s)", \@frames), $leak, $name);
            }
            next;
        }
        my @frames = $rest =~ /^(\s+#\d+ [^\n]*)/mg;
        my ($summary) = $rest =~ /^SUMMARY: \w+Sanitizer: ([^\n]*)/m;
        add(key_of("$tool: $kind", \@frames, $summary), "$head\n$rest",
            $name);
    }

    add("unrecognised report in $name", $t, $name) unless $added;
}

printf "sanitizer: %d report file(s), %d distinct report(s):\n\n",
       scalar @files, scalar @order;
for my $k (@order) {
    printf "  %dx %s\n", $count{$k}, $k;
    my @t = sort keys %{$tests{$k} || {}};
    @t = (@t[0 .. 7], '...') if @t > 9;
    print "    in ", join(', ', @t), "\n" if @t;
}
print "\none example of each:\n\n";
for my $k (@order) {
    my @l = split /\n/, $example{$k};
    @l = (@l[0 .. 39], '    ...') if @l > 41;
    print join("\n", @l), "\n\n";
}
PERL

exit 1
