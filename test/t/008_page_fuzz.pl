# Page fuzzing: many small indexes (several buckets, L0 rows, a retired
# chain), each with one page mutated in its file while the server is
# stopped: random bit flips, special-space fields (next link, chain id,
# type, page ID), header counts, metapage fields, directory entries, TIDs,
# pd_lower/pd_upper. Then, per index, drift_verify, an ordered scan, an
# insert, VACUUM, drift_maintain, drift_verify again and drift_index_stats,
# each under statement_timeout = 5s. The server never crashes or hangs, and
# every outcome is a correct answer or an ERROR; outcomes are counted by
# mutation kind, and other ERRORs than "is corrupt" are listed.
#
# Environment: DRIFT_FUZZ_SEED (default: random, printed), DRIFT_FUZZ_TRIALS
# (default 500; thousands for a manual run), DRIFT_FUZZ_INDEXES (indexes per
# round, default 125), DRIFT_FUZZ_PRELOAD_TRIALS (a second, smaller run with
# the janitor in shared_preload_libraries, not deterministic; default 40,
# 0 = skip), DRIFT_FUZZ_GUARD (seconds without progress before an operation
# counts as hung, default 20; the hung backend's wait event and, with gdb,
# its drift stack frames are reported), DRIFT_FUZZ_STRICT=1 (also fail on
# internal errors), DRIFT_FUZZ_SELFTEST=1 (check that the harness detects a
# timeout, a hang, a lost session and a crash).
#
# The indexes are built once; the stopped data directory is kept and every
# round starts from a copy of it, so a trial depends only on the seed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use DriftTest;

my $seed = $ENV{DRIFT_FUZZ_SEED} // (int(time * 1000) ^ $$) % 1_000_000_007;
my $trials = $ENV{DRIFT_FUZZ_TRIALS} // 500;
my $per_round = $ENV{DRIFT_FUZZ_INDEXES} // 125;
my $preload_trials = $ENV{DRIFT_FUZZ_PRELOAD_TRIALS} // 40;
my $guard = $ENV{DRIFT_FUZZ_GUARD} // 20;
my $strict = $ENV{DRIFT_FUZZ_STRICT} // 0;
diag("page fuzz: seed $seed, $trials trials (+ $preload_trials with the janitor); "
      . "reproduce with DRIFT_FUZZ_SEED=$seed DRIFT_FUZZ_TRIALS=$trials DRIFT_FUZZ_PRELOAD_TRIALS=$preload_trials");
srand($seed);

my $BLCKSZ = 8192;
my $INVALID = 0xFFFFFFFF;
my $SPECIAL = $BLCKSZ - 16;    # next u32, chain u32, type u16, page_id u16
my $DIM = 8;
my %TYPE_NAME = (1 => 'meta', 2 => 'blob', 3 => 'dir', 4 => 'hot', 5 => 'cold', 6 => 'l0', 7 => 'free');
# verify0: drift_verify before the others, to see what it detects; verify: after them.
my @OPS = qw(verify0 scan insert vacuum maintain verify stats);
my @OUTCOMES = qw(ok corrupt error flagged wrong timeout hang crash lost);
my %FAILURE = map { $_ => 1 } qw(wrong timeout hang crash lost);

sub rint { my ($n) = @_; return int(rand($n)); }
sub pick { return $_[ rint(scalar @_) ]; }

# ---------------------------------------------------------------------------
# The indexes.

# Table k: lists = 4 over 600 rows, or (every 4th) lists = 2 over 1300 rows
# so buckets span two hot pages; 150 more rows, a DELETE, VACUUM and
# drift_maintain (L0 flushed, its chain retired), then 100-300 more rows in
# L0 (one or two pages).
sub table_spec {
    my ($k) = @_;
    my $n0 = $k % 4 == 0 ? 1300 : 600;
    return { n0 => $n0, lists => ($k % 4 == 0 ? 2 : 4), last => $n0 + 150 + 100 * (1 + $k % 3) };
}

sub vec_expr {
    my ($k) = @_;
    return "(SELECT array_agg(sin(i * 0.37 + j * 1.7 + ((i + $k) % 11) * j + $k * 0.1)::real ORDER BY j) "
      . "FROM generate_series(1, $DIM) j)";
}

# Whether id may be in table k (rows deleted by the setup are not).
sub id_valid {
    my ($k, $id) = @_;
    my $s = table_spec($k);
    return 1 if $id >= 100001 && $id <= 100003;    # the fuzz inserts
    return 0 if $id < 1 || $id > $s->{last};
    return !($id % 5 == 0 && $id <= $s->{n0} + 150);
}

sub setup_sql {
    my ($k) = @_;
    my $s = table_spec($k);
    my $v = vec_expr($k);
    my $mid = $s->{n0} + 150;
    return "CREATE TABLE f$k (id int, v real[]);
INSERT INTO f$k SELECT i, $v FROM generate_series(1, $s->{n0}) i;
CREATE INDEX f${k}_idx ON f$k USING drift (v) WITH (lists = $s->{lists});
INSERT INTO f$k SELECT i, $v FROM generate_series($s->{n0} + 1, $mid) i;
DELETE FROM f$k WHERE id % 5 = 0;
VACUUM f$k;
SELECT count(*) FROM drift_maintain('f${k}_idx');
INSERT INTO f$k SELECT i, $v FROM generate_series($mid + 1, $s->{last}) i;
";
}

# ---------------------------------------------------------------------------
# Pages.

sub u16 { my ($p, $off) = @_; return unpack('S', substr($p, $off, 2)); }
sub u32 { my ($p, $off) = @_; return unpack('L', substr($p, $off, 4)); }

sub page_type {
    my ($p) = @_;
    return 0 if $p eq "\0" x $BLCKSZ;
    return u16($p, $SPECIAL + 8);
}

# Reads an index file: its pages, their types, the chain ids in it, and the
# metapage capacities and layout.
sub read_index {
    my ($path) = @_;
    open(my $fh, '<', $path) or die "open $path: $!";
    binmode $fh;
    my @pages;
    while (read($fh, my $p, $BLCKSZ) == $BLCKSZ) { push @pages, $p; }
    close $fh;
    my %chains;
    $chains{ u32($_, $SPECIAL + 4) } = 1 for @pages;
    my $meta = $pages[0];
    my $version = u32($meta, 28);
    return {
        pages   => \@pages,
        types   => [ map { page_type($_) } @pages ],
        chains  => [ sort { $a <=> $b } keys %chains ],
        hot_cap => u16($meta, 48), cold_cap => u16($meta, 50), dir_cap => u16($meta, 52),
        nbuckets => u32($meta, 40), nretired => u32($meta, 108), version => $version,
        # DriftRetired entries: after requantized (180) in format 2; after
        # released_xid_hi/lo (184, 188) in format 3.
        retired_off => ($version == 2 ? 184 : $version == 3 ? 192 : undef),
    };
}

sub blocks_of_type {
    my ($ix, @types) = @_;
    my %want = map { $_ => 1 } @types;
    return grep { $want{ $ix->{types}[$_] } } 0 .. $#{ $ix->{types} };
}

# Values for a field: a block number, a count, a chain id, float bits.
sub block_value {
    my ($ix, $old, $self) = @_;
    my $n = scalar @{ $ix->{pages} };
    return pick($INVALID, 0, $self, $n, $n - 1, rint($n), rint($n), ($old + 1) & $INVALID, rint(2**32));
}

sub u32_value {
    my ($ix, $old, @extra) = @_;
    my $n = scalar @{ $ix->{pages} };
    return pick(0, 1, $INVALID, $n, ($old + 1) & $INVALID, ($old - 1) & $INVALID, rint(2**32), 0x7FFFFFFF, 0x80000000, @extra);
}

sub u16_value {
    my ($old, @extra) = @_;
    return pick(0, 1, 0xFFFF, ($old + 1) & 0xFFFF, ($old - 1) & 0xFFFF, rint(65536), 0x8000, @extra);
}

sub chain_value {
    my ($ix, $old) = @_;
    return pick(0, $INVALID, ($old + 1) & $INVALID, ($old - 1) & $INVALID, rint(2**32), @{ $ix->{chains} }, @{ $ix->{chains} });
}

# 0, 1, -1, +inf, -inf, NaN, 1e30, random bits.
sub float_bits { return pick(0, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7149F2CA, rint(2**32)); }

# One field set: ($name, $offset, $format, $value), format L/S/Q.
sub set_field {
    my ($pref, $off, $fmt, $val) = @_;
    my $len = { L => 4, S => 2, Q => 8 }->{$fmt};
    substr($$pref, $off, $len) = pack($fmt, $val);
}

# The metapage's fields: name, offset in the page, kind of value.
my @META_FIELDS = (
    [ magic => 24, 'L' ], [ version => 28, 'L' ], [ dim => 32, 'L' ], [ metric => 36, 'S' ], [ flags => 38, 'S' ],
    [ nbuckets => 40, 'L' ], [ generation => 44, 'L' ], [ hot_cap => 48, 'S' ], [ cold_cap => 50, 'S' ],
    [ dir_cap => 52, 'S' ], [ unused => 54, 'S' ], [ quant_head => 56, 'B' ], [ dir_head => 60, 'B' ],
    [ l0_head => 64, 'B' ], [ l0_tail => 68, 'B' ], [ opt_lists => 72, 'L' ], [ opt_clip_pct => 76, 'F' ],
    [ build_rows => 80, 'Q' ], [ target_bucket => 88, 'L' ], [ live_buckets => 92, 'L' ], [ next_chain => 96, 'C' ],
    [ l0_chain => 100, 'C' ], [ l0_pages => 104, 'L' ], [ nretired => 108, 'L' ], [ flushes => 112, 'Q' ],
    [ flushed_rows => 120, 'Q' ], [ splits => 128, 'Q' ], [ merges => 136, 'Q' ], [ compactions => 144, 'Q' ],
    [ stolen => 152, 'Q' ], [ last_maintenance => 160, 'Q' ], [ quant_chain => 168, 'C' ],
    [ old_quant_chain => 172, 'C' ], [ old_quant_head => 176, 'B' ], [ requantized => 180, 'L' ],);

# Sets a field of kind B (block), C (chain id), F (float), L, S, Q.
sub set_typed {
    my ($ix, $pref, $blk, $off, $kind) = @_;
    my ($fmt, $val);
    if ($kind eq 'S') { ($fmt, $val) = ('S', u16_value(u16($$pref, $off))); }
    elsif ($kind eq 'Q') {
        $fmt = 'Q';
        $val = pick(0, 1, $INVALID, ~0, 1 << 63, rint(2**32) * 65536 + rint(65536), u32($$pref, $off) + 1);
    }
    else {
        my $old = u32($$pref, $off);
        $fmt = 'L';
        $val = $kind eq 'B' ? block_value($ix, $old, $blk) : $kind eq 'C' ? chain_value($ix, $old) : $kind eq 'F' ? float_bits()
          : u32_value($ix, $old);
    }
    set_field($pref, $off, $fmt, $val);
    return sprintf('%s=0x%x', $fmt, $val);
}

# Header fields by page type: [name, offset, kind]; caps as extra values.
sub header_fields {
    my ($ix, $type) = @_;
    return ([ bucket => 24, 'L' ], [ nslots => 28, 'S' ], [ nlive => 30, 'S' ], [ ncold => 32, 'S' ], [ unused => 34, 'S' ],
        map { [ "cold[$_]" => 36 + 4 * $_, 'B' ] } 0 .. 3) if $type == 4;
    return ([ nslots => 24, 'S' ], [ nlive => 26, 'S' ]) if $type == 5 || $type == 6;
    return ([ nentries => 24, 'L' ]) if $type == 3;
    return ([ nbytes => 24, 'L' ]) if $type == 2;
    return ([ xid_hi => 24, 'L' ], [ xid_lo => 28, 'L' ]);
}

# Mutates one page of index $ix; returns (kind, description, block, new page).
my @KINDS = (('bitflip') x 3, 'next:random', 'next:self', 'next:other', 'next:invalid', 'chain', 'type', 'page_id',
    ('counts') x 3, ('meta') x 3, 'bounds', ('dirent') x 2, 'tid');

sub mutate {
    my ($ix) = @_;
    my $pages = $ix->{pages};
    my $n = scalar @$pages;
    my $kind = pick(@KINDS);
    $kind = 'bitflip' if $kind eq 'dirent' && !blocks_of_type($ix, 3);
    $kind = 'bitflip' if $kind eq 'tid' && !blocks_of_type($ix, 4, 5, 6);
    my $blk = rint($n);
    my $p = $pages->[$blk];
    my $desc;
    if ($kind eq 'bitflip') {
        my @bits = map { rint($BLCKSZ * 8) } 1 .. 1 + rint(8);
        for my $bit (@bits) {
            my $byte = int($bit / 8);
            substr($p, $byte, 1) = chr(ord(substr($p, $byte, 1)) ^ (1 << ($bit % 8)));
        }
        $desc = 'bits ' . join(',', @bits);
    }
    elsif ($kind =~ /^next:(\w+)/) {
        my $how = $1;
        if ($how eq 'invalid') {    # cut a chain short: a page that has a next
            my @linked = grep { u32($pages->[$_], $SPECIAL) != $INVALID } 0 .. $n - 1;
            $blk = pick(@linked) if @linked;
            $p = $pages->[$blk];
        }
        my $old = u32($p, $SPECIAL);
        my $val = $how eq 'self' ? $blk : $how eq 'invalid' ? $INVALID : $how eq 'other' ? pick(grep { $_ != $blk } 0 .. $n - 1)
          : pick(rint(2**32), $n, $n + rint(100), 0x7FFFFFFF);
        set_field(\$p, $SPECIAL, 'L', $val);
        $desc = sprintf('next %s -> %s', $old == $INVALID ? 'none' : $old, $val == $INVALID ? 'none' : $val);
    }
    elsif ($kind eq 'chain') {
        my $old = u32($p, $SPECIAL + 4);
        my $val = chain_value($ix, $old);
        set_field(\$p, $SPECIAL + 4, 'L', $val);
        $desc = "chain $old -> $val";
    }
    elsif ($kind eq 'type') {
        my $old = u16($p, $SPECIAL + 8);
        my $val = pick(grep { $_ != $old } 0 .. 8, 0xFFFF);
        set_field(\$p, $SPECIAL + 8, 'S', $val);
        $desc = "type $old -> $val";
    }
    elsif ($kind eq 'page_id') {
        my $val = pick(0, 0xFD16, 0xFD18, 0x17FD, rint(65536));
        $val = 0 if $val == 0xFD17;
        set_field(\$p, $SPECIAL + 10, 'S', $val);
        $desc = sprintf('page_id -> 0x%x', $val);
    }
    elsif ($kind eq 'counts') {
        my @cand = grep { $_ != 0 } 0 .. $n - 1;
        $blk = pick(@cand);
        $p = $pages->[$blk];
        my $type = $ix->{types}[$blk];
        my ($name, $off, $fkind) = @{ pick(header_fields($ix, $type)) };
        my $old = $fkind eq 'S' ? u16($p, $off) : u32($p, $off);
        my $val;
        if ($fkind eq 'S') {
            my $cap = $type == 4 ? $ix->{hot_cap} : $ix->{cold_cap};
            $val = $name eq 'ncold' ? pick(0 .. 5, 0xFFFF) : u16_value($old, $cap, $cap + 1);
            set_field(\$p, $off, 'S', $val);
        }
        else {
            $val = $fkind eq 'B' ? block_value($ix, $old, $blk)
              : $name eq 'nentries' ? pick(0, 1, $old + 1, $old - 1, $ix->{dir_cap}, $ix->{dir_cap} + 1, $INVALID, rint(2**32))
              : $name eq 'bucket' ? pick(0 .. $ix->{nbuckets} + 1, $INVALID)
              : u32_value($ix, $old, 8152, 8153);
            $val &= $INVALID;
            set_field(\$p, $off, 'L', $val);
        }
        $desc = "$TYPE_NAME{$type} $name $old -> $val";
    }
    elsif ($kind eq 'meta') {
        $blk = 0;
        $p = $pages->[0];
        my @fields = @META_FIELDS;
        if (defined $ix->{retired_off}) {
            push @fields, [ released_xid_hi => 184, 'L' ], [ released_xid_lo => 188, 'L' ] if $ix->{version} == 3;
            for my $i (0 .. $ix->{nretired}) {    # one past the end too
                my $o = $ix->{retired_off} + 12 * $i;
                push @fields, [ "retired[$i].chain" => $o, 'C' ], [ "retired[$i].xid_hi" => $o + 4, 'L' ],
                  [ "retired[$i].xid_lo" => $o + 8, 'L' ];
            }
        }
        my ($name, $off, $fkind) = @{ pick(@fields) };
        $desc = "meta $name " . set_typed($ix, \$p, 0, $off, $fkind);
    }
    elsif ($kind eq 'bounds') {
        my ($lower, $upper, $special) = (u16($p, 12), u16($p, 14), u16($p, 16));
        my $how = pick(qw(random lower upper swap zero));
        my ($l, $u) =
            $how eq 'random' ? (rint(65536), rint(65536))
          : $how eq 'lower'  ? (24 + rint($upper - 24 + 1), $upper)
          : $how eq 'upper'  ? ($lower, $lower + rint($special - $lower + 1))
          : $how eq 'swap'   ? ($upper, $lower)
          :                    (0, 0);
        set_field(\$p, 12, 'S', $l);
        set_field(\$p, 14, 'S', $u);
        $desc = "bounds $how: lower $lower -> $l, upper $upper -> $u";
    }
    elsif ($kind eq 'dirent') {
        my @dirs = blocks_of_type($ix, 3);
        $blk = pick(@dirs);
        $p = $pages->[$blk];
        my $stride = 8 * int((36 + 4 * $DIM + 7) / 8);
        my $ne = u32($p, 24);
        my $i = rint($ne + 1);
        my $base = 24 + 8 + $stride * $i;
        my ($name, $off, $fkind) = @{ pick([ head => 0, 'B' ], [ tail => 4, 'B' ], [ chain => 8, 'C' ], [ chain => 8, 'C' ],
                [ quant => 12, 'C' ], [ nlive => 16, 'L' ], [ ndead => 20, 'L' ], [ radius => 24, 'F' ],
                [ temperature => 28, 'F' ], [ moved => 32, 'F' ], [ centroid => 36 + 4 * rint($DIM), 'F' ]) };
        $desc = "dir entry $i/$ne $name " . set_typed($ix, \$p, $blk, $base + $off, $fkind);
    }
    elsif ($kind eq 'tid') {
        my @slotted = grep {
            my $t = $ix->{types}[$_];
            ($t == 4 ? u16($pages->[$_], 28) : ($t == 5 || $t == 6) ? u16($pages->[$_], 24) : 0) > 0
        } 0 .. $n - 1;
        @slotted = blocks_of_type($ix, 4, 5, 6) unless @slotted;
        $blk = pick(@slotted);
        $p = $pages->[$blk];
        my $hot = $ix->{types}[$blk] == 4;
        my $nslots = ($hot ? u16($p, 28) : u16($p, 24)) || 1;
        my $stride = 8 * int((8 + 4 * $DIM + 7) / 8);
        my $at = sub { my ($s) = @_; return $hot ? 52 + 6 * $s : 32 + $stride * $s; };
        my $s = rint($nslots);
        my $how = pick(qw(block posid invalid copy random));
        my $tid =
            $how eq 'block'   ? pack('S S', rint(4), rint(65536)) . substr($p, $at->($s) + 4, 2)
          : $how eq 'posid'   ? substr($p, $at->($s), 4) . pack('S', pick(0, 1 + rint(300), 0xFFFF))
          : $how eq 'invalid' ? pack('S S S', 0xFFFF, 0xFFFF, 0)
          : $how eq 'copy'    ? substr($p, $at->(rint($nslots)), 6)
          :                     pack('S S S', rint(65536), rint(65536), rint(65536));
        substr($p, $at->($s), 6) = $tid;
        $desc = "$TYPE_NAME{$ix->{types}[$blk]} slot $s/$nslots tid $how";
    }
    return ($kind, $desc, $blk, $p);
}

sub write_block {
    my ($path, $blk, $page) = @_;
    open(my $fh, '+<', $path) or die "open $path: $!";
    binmode $fh;
    seek($fh, $blk * $BLCKSZ, 0) or die;
    print $fh $page;
    close $fh;
}

# ---------------------------------------------------------------------------
# Running the operations.

sub op_sql {
    my ($item) = @_;
    my ($k, $op, $q) = ($item->{k}, $item->{op}, $item->{q});
    return "\\unset r\nSELECT coalesce(string_agg(id::text, ','), '') AS r FROM "
      . "(SELECT id FROM f$k ORDER BY v <-> '$q' LIMIT 10) s \\gset\n\\warn \@\@res :r\n" if $op eq 'scan';
    return "INSERT INTO f$k SELECT i, " . vec_expr($k + 7) . " FROM generate_series(100001, 100003) i;\n" if $op eq 'insert';
    return "VACUUM f$k;\n" if $op eq 'vacuum';
    return "SELECT * FROM drift_maintain('f${k}_idx');\n" if $op eq 'maintain';
    return "\\unset r\nSELECT count(*) AS r FROM drift_verify('f${k}_idx') \\gset\n\\warn \@\@res :r\n" if $op =~ /^verify/;
    # self-test operations of the harness (DRIFT_FUZZ_SELFTEST)
    return "SELECT pg_sleep(30);\n" if $op eq 'sleep';
    return "SET statement_timeout = 0;\nSELECT pg_sleep(120);\n" if $op eq 'nocancel';
    return "SELECT pg_terminate_backend(pg_backend_pid());\nSELECT 1;\n" if $op eq 'terminate';
    return "SELECT pg_backend_pid() AS pid \\gset\n\\setenv FUZZ_PID :pid\n\\! kill -SEGV \$FUZZ_PID\nSELECT pg_sleep(1);\n"
      if $op eq 'segv';
    return "SELECT * FROM drift_index_stats('f${k}_idx');\n" if $op eq 'stats';
    die $op;
}

# Waits until the server accepts connections again (after a crash the
# postmaster restarts by itself, with restart_after_crash); starts it if it
# shut down, kills and restarts it if it does not come back.
sub wait_up {
    my ($node) = @_;
    for (1 .. 300) {
        unless (-e $node->data_dir . '/postmaster.pid') {
            select(undef, undef, undef, 0.5);
            diag('the server shut down after a crash: started again');
            $node->start;
            return;
        }
        my $ok = IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', 'SELECT 1' ], '>', \my $o, '2>', \my $e);
        return if $ok && $o =~ /1/;
        select(undef, undef, undef, 0.1);
    }
    diag('the server did not come back after a crash: killed and restarted');
    crash_restart($node);
}

# Where the hung backend waits: its wait event and (with gdb) the drift
# functions on its stack.
sub where_stuck {
    my ($node) = @_;
    my ($o, $e) = ('', '');
    eval {
        IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
                "SELECT pid, coalesce(wait_event_type, '-'), coalesce(wait_event, '-') FROM pg_stat_activity WHERE application_name = 'drift_fuzz'" ],
            '>', \$o, '2>', \$e, IPC::Run::timeout(10));
    };
    my ($pid, $type, $event) = split /\|/, (split /\n/, $o)[0] // '';
    return '' unless $pid;
    my $where = "; waiting on $type/$event";
    if (system('which gdb >/dev/null 2>&1') == 0) {
        my $bt = '';
        eval { IPC::Run::run([ 'gdb', '-p', $pid, '-batch', '-ex', 'bt' ], '>', \$bt, '2>', \my $gerr, IPC::Run::timeout(30)); };
        my @frames = $bt =~ /^#\d+\s+(?:0x\w+ in )?(\S+) \(.*?\)(?: at (\S+))?$/mg;
        my @mine;
        while (my ($f, $at) = splice(@frames, 0, 2)) { push @mine, $f . ($at ? " ($at)" : '') if ($at // '') =~ m{src/}; }
        $where .= '; stack: ' . join(' < ', @mine[ 0 .. ($#mine < 3 ? $#mine : 3) ]) if @mine;
    }
    return $where;
}

# Classifies the stderr text of one operation.
sub classify {
    my ($item, $text, $res) = @_;
    if ($text =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}): ([^\n]*)/) {
        my ($state, $msg) = ($1, $2);
        $item->{sqlstate} = $state;
        $item->{message} = $msg;
        return 'timeout' if $state eq '57014';
        return 'corrupt' if $msg =~ /is corrupt/;
        return 'flagged'
          if $state eq 'XX000' || $msg =~ /floating-point exception|invalid memory alloc request size|could not read block/;
        return 'error';
    }
    if ($item->{op} eq 'scan') {
        return 'wrong' unless defined $res && $res ne ':r';
        my @ids = grep { $_ ne '' } split /,/, $res;
        my %seen;
        $item->{message} = "rows: $res";
        return 'wrong' if @ids > 10 || grep { !id_valid($item->{k}, $_) } @ids;
        $item->{dups} = scalar(grep { $seen{$_}++ } @ids);
    }
    if ($item->{op} =~ /^verify/) {
        return 'wrong' unless defined $res && $res =~ /^\d+$/;
        $item->{problems} = $res;
    }
    return 'ok';
}

# Runs the operations @$items in psql sessions, one operation under
# statement_timeout at a time; a session that makes no progress for $guard
# seconds is a hang (the server is killed and restarted), a lost connection a
# crash. Sets outcome (and message) of every item.
sub run_items {
    my ($node, $items) = @_;
    my $start = 0;
    while ($start < @$items) {
        my $script = "SET enable_seqscan = off;\nSET drift.probes = 100;\nSET statement_timeout = '5s';\n";
        $script .= "\\warn \@\@op $_\n" . op_sql($items->[$_]) for $start .. $#$items;
        $script .= "\\warn \@\@op " . scalar(@$items) . "\n\\q\n";
        # (a file, not stdin: IPC::Run keeps stdin open until finish)
        my $file = $node->basedir . '/fuzz.sql';
        open(my $fh, '>', $file) or die "open $file: $!";
        print $fh $script;
        close $fh;
        my $logpos = -s $node->logfile;
        my ($out, $err) = ('', '');
        my $timer = IPC::Run::timeout($guard, exception => 'fuzz guard');
        my $h = IPC::Run::start(
            [ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres') . ' application_name=drift_fuzz', '-f', $file ],
            '>', \$out, '2>', \$err, $timer);
        my ($markers, $hung) = (0, 0);
        while ($h->pumpable) {
            eval { $h->pump; };
            if ($@) {
                die $@ unless $timer->is_expired;
                $hung = 1;
                last;
            }
            my $m = () = $err =~ /^\@\@op /mg;
            if ($m != $markers) { $markers = $m; $timer->start($guard); }
        }
        if ($hung) { $h->kill_kill; }
        else { $h->finish; }

        # Split stderr by operation.
        my ($cur, %text, %res) = (undef);
        for my $line (split /\n/, $err) {
            if ($line =~ /^\@\@op (\d+)$/) { $cur = $1; $text{$cur} //= ''; next; }
            if ($line =~ /^\@\@res ?(.*)$/) { $res{$cur} = $1; next; }
            $text{ $cur // $start } .= "$line\n";
        }
        my $last = $cur // $start;
        $last = $start if $last < $start;
        for my $i ($start .. ($last < @$items ? $last - 1 : $#$items)) {
            $items->[$i]{outcome} = classify($items->[$i], $text{$i} // '', $res{$i});
        }
        return if $last >= @$items;
        # The session ended inside operation $last.
        my $item = $items->[$last];
        my $t = $text{$last} // '';
        if ($hung) {
            $item->{outcome} = 'hang';
            $item->{message} = "no progress for $guard s (statement_timeout did not end it)" . where_stuck($node);
            crash_restart($node);
        }
        else {
            wait_up($node);
            my $log = substr(slurp_file($node->logfile), $logpos);
            my ($sig) = $log =~ /(terminated by signal[^\n]*)/;
            my ($running) = $log =~ /Failed process was running: ([^\n]*)/;
            $item->{outcome} = $sig ? 'crash' : 'lost';
            $item->{message} = $sig ? "$sig; running: " . ($running // '?') : ($t =~ s/\s+/ /gr);
        }
        $start = $last + 1;
    }
}

# ---------------------------------------------------------------------------
# One part: build, then rounds of mutate, start, run, stop.

my (%by_kind, %by_op, %kind_trials, %errors, %flagged, @failures, %detect, %dups);
my $done = 0;

sub fuzz {
    my ($name, $ntrials, %params) = @_;
    return if $ntrials <= 0;
    my $node = new_node("fuzz_$name", preload => $params{preload},
        conf => "autovacuum = off\nrestart_after_crash = on\n" . ($params{conf} // ''));
    my $nidx = $ntrials < $per_round ? $ntrials : $per_round;
    my $t0 = time;
    $node->safe_psql('postgres', join('', map { setup_sql($_) } 1 .. $nidx));
    my $stats = $node->safe_psql('postgres', join(' UNION ALL ', map {
                "SELECT l0_entries, retired_chains, lists FROM drift_index_stats('f${_}_idx')" } 1 .. $nidx));
    my @st = map { [ split /\|/ ] } split /\n/, $stats;
    my $with_l0 = grep { $_->[0] > 0 } @st;
    my $with_retired = grep { $_->[1] > 0 } @st;
    my $buckets = grep { $_->[2] >= 2 } @st;
    note("$name: built $nidx indexes in " . sprintf('%.1f', time - $t0) . " s: $with_l0 with L0 rows, "
          . "$with_retired with a retired chain, $buckets with 2+ buckets");
    is($with_l0, $nidx, "$name: every index has rows in L0") unless $params{preload};
    cmp_ok($with_retired, '>', 0, "$name: indexes have retired chains") unless $params{preload};  # (the janitor releases them)
    my %path = map { $_ => $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('f${_}_idx')") } 1 .. $nidx;
    $node->safe_psql('postgres', 'CHECKPOINT');
    $node->stop;
    my %ix = map { $_ => read_index($path{$_}) } 1 .. $nidx;
    my $pristine = $node->basedir . '/pristine';
    system('cp', '-a', $node->data_dir, $pristine) == 0 or die 'cp failed';

    my $left = $ntrials;
    my $round = 0;
    while ($left > 0) {
        $round++;
        my $n = $left < $nidx ? $left : $nidx;
        $left -= $n;
        if ($round > 1) {
            system('rm', '-rf', $node->data_dir) == 0 or die;
            system('cp', '-a', $pristine, $node->data_dir) == 0 or die;
        }
        my @items;
        for my $k (1 .. $n) {
            my ($kind, $desc, $blk, $page) = mutate($ix{$k});
            write_block($path{$k}, $blk, $page);
            my $q = '{' . join(',', map { sprintf('%.3f', rand(2) - 1) } 1 .. $DIM) . '}';
            my $trial = { part => $name, round => $round, k => $k, kind => $kind, blk => $blk,
                type => $TYPE_NAME{ $ix{$k}{types}[$blk] } // $ix{$k}{types}[$blk], desc => $desc };
            push @items, { %$trial, op => $_, q => $q, trial => $trial } for @OPS;
        }
        my $t1 = time;
        $node->start;
        run_items($node, \@items);
        {
            local $ENV{PGCTLTIMEOUT} = 30;
            unless ($node->stop('fast', fail_ok => 1)) {
                push @failures, { part => $name, round => $round, k => '-', kind => '-', desc => '', blk => '-', type => '-',
                    op => 'shutdown', outcome => 'hang', message => 'fast shutdown did not finish in 30 s' };
                crash_restart($node);
                $node->stop('immediate');
            }
        }
        for my $it (@items) {
            my $o = $it->{outcome} // 'lost';
            $by_kind{ $it->{kind} }{$o}++;
            $by_op{ $it->{op} }{$o}++;
            $kind_trials{ $it->{kind} }++ if $it->{op} eq 'scan';
            my $where = "$it->{part} round $it->{round} index f$it->{k} block $it->{blk} ($it->{type}) $it->{kind} [$it->{desc}]";
            if ($o eq 'error' || $o eq 'flagged') {
                my $norm = ($it->{sqlstate} // '') . ' ' . (($it->{message} // '') =~ s/\d+/N/gr =~ s/"[^"]*"/"…"/gr);
                my $bucket = $o eq 'flagged' ? \%flagged : \%errors;
                $bucket->{$norm}{n}++;
                $bucket->{$norm}{ops}{ $it->{op} }++;
                $bucket->{$norm}{example} //= "$it->{op}: $where: $it->{message}";
            }
            push @failures, { %$it, outcome => $o } if $FAILURE{$o};
            if ($it->{op} =~ /^verify/) {
                $detect{ $it->{kind} }{ $it->{op} . ($o ne 'ok' ? '_error' : $it->{problems} > 0 ? '_reported' : '_silent') }++;
            }
            $dups{ $it->{kind} } += 1 if $it->{op} eq 'scan' && ($it->{dups} // 0) > 0;
        }
        for my $i (0 .. $n - 1) {
            my @ops = @items[ @OPS * $i .. @OPS * $i + $#OPS ];
            note("$name round $round f$ops[0]{k} block $ops[0]{blk} ($ops[0]{type}) $ops[0]{kind} [$ops[0]{desc}]: "
                  . join(', ', map { "$_->{op} " . ($_->{outcome} // 'lost') . ($_->{op} =~ /^verify/ && defined $_->{problems} ? "($_->{problems})" : '') } @ops));
        }
        $done += $n;
        note(sprintf('%s round %d: %d trials in %.1f s', $name, $round, $n, time - $t1));
    }
    my $log = slurp_file($node->logfile);
    # (signal 9: the kill of a hung server, not a crash)
    my @signals = grep { !/signal 9:/ } $log =~ /(terminated by signal[^\n]*)/g;
    is(scalar(@signals), scalar(grep { $_->{part} eq $name && $_->{outcome} eq 'crash' } @failures),
        "$name: every crash in the server log is one counted by an operation");
}

my $t_start = time;
fuzz('plain', $trials);
fuzz('janitor', $preload_trials, preload => 1, conf => "drift.l0_flush_rows = 100000\n");
is($done, $trials + $preload_trials, 'every trial ran');

# DRIFT_FUZZ_SELFTEST=1: the harness itself classifies a statement timeout,
# an operation that ignores it, a terminated session and a crashed backend,
# and goes on after each.
if ($ENV{DRIFT_FUZZ_SELFTEST}) {
    my $node = new_node('fuzz_selftest', conf => "autovacuum = off\nrestart_after_crash = on\n");
    $node->safe_psql('postgres', setup_sql(1));
    my @expect = ([ sleep => 'timeout' ], [ scan => 'ok' ], [ nocancel => 'hang' ], [ scan => 'ok' ], [ terminate => 'lost' ],
        [ scan => 'ok' ], [ segv => 'crash' ], [ scan => 'ok' ]);
    my @items = map { { k => 1, op => $_->[0], q => '{0,0,0,0,0,0,0,0}' } } @expect;
    my $t = time;
    run_items($node, \@items);
    is($items[$_]{outcome}, $expect[$_][1], "self-test: $expect[$_][0] is classified $expect[$_][1] (" . ($items[$_]{message} // '') . ')')
      for 0 .. $#expect;
    note(sprintf('self-test took %.0f s', time - $t));
    $node->stop('immediate');
}

# ---------------------------------------------------------------------------
# Report.

sub ops_list { my ($ops) = @_; return join(',', map { "$_=$ops->{$_}" } sort keys %$ops); }

sub table {
    my ($title, $rows, $extra) = @_;
    my @cols = (@OUTCOMES);
    my $s = sprintf("%-14s %6s " . ('%8s' x @cols) . "\n", $title, 'trials', @cols);
    for my $r (sort keys %$rows) {
        $s .= sprintf("%-14s %6s " . ('%8d' x @cols) . "\n", $r, $extra->($r), map { $rows->{$r}{$_} // 0 } @cols);
    }
    return $s;
}
diag(sprintf("%d trials in %.0f s, seed %s. Operations by mutation kind and outcome:\n", $done, time - $t_start, $seed)
      . table('kind', \%by_kind, sub { $kind_trials{ $_[0] } }));
diag("Operations by outcome:\n" . table('operation', \%by_op, sub { $done }));
diag("drift_verify before the other operations (reported = one or more problems, silent = none, ERROR) | after them:\n"
      . join('', map {
            my $d = $detect{$_};
            sprintf("  %-14s reported %4d silent %4d ERROR %4d | reported %4d silent %4d ERROR %4d%s\n", $_,
                map({ $d->{$_} // 0 } qw(verify0_reported verify0_silent verify0_error verify_reported verify_silent verify_error)),
                $dups{$_} ? "  (scans with duplicate rows: $dups{$_})" : '') } sort keys %detect));
for my $set ([ 'Other ERRORs (allowed)', \%errors ], [ 'FLAGGED ERRORs (XX000, floating-point, memory alloc, could not read block)', \%flagged ]) {
    my ($title, $h) = @$set;
    next unless %$h;
    diag("$title, distinct messages:\n" . join('', map {
                sprintf("  %4d x %s   [%s]\n       e.g. %s\n", $h->{$_}{n}, $_, ops_list($h->{$_}{ops}),
                    $h->{$_}{example}) } sort { $h->{$b}{n} <=> $h->{$a}{n} } keys %$h));
}
if (@failures) {
    my @show = @failures > 60 ? @failures[ 0 .. 59 ] : @failures;
    diag("FAILURES (" . scalar(@failures) . ", first " . scalar(@show) . "):\n" . join('', map {
                "  $_->{outcome}: $_->{op} on $_->{part} round $_->{round} index f$_->{k} block $_->{blk} ($_->{type}) "
                  . "$_->{kind} [$_->{desc}]: " . ($_->{message} // '') . "\n" } @show));
}
my $count = sub { my %want = map { $_ => 1 } @_; return scalar(grep { $want{ $_->{outcome} } } @failures); };
is($count->('crash', 'lost'), 0, 'no operation crashed the server or lost its connection');
is($count->('hang', 'timeout'), 0, 'no operation hung (statement timeout or no answer)');
is($count->('wrong'), 0, 'every scan returned at most 10 rows of the table');
if ($strict) {
    is(scalar(keys %flagged), 0, 'no internal errors (DRIFT_FUZZ_STRICT)');
}
done_testing();
