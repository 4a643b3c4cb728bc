#!/usr/bin/perl
# mutate.pl - writes a mutated copy of a file, for make fuzz-programs.
#
#   tools/mutate.pl SEED IN OUT [OTHER]
#
# Applies 1 to 8 random edits to the bytes of IN and writes OUT: bit flips,
# bytes set to boundary values, tokens that parsers treat specially (JSON,
# msgpack sizes, UTF-8 edge cases), deleted, repeated or swapped ranges,
# truncation, and a splice from OTHER when given.  The same SEED and files
# give the same output on the same perl, so a finding can be replayed.
use strict;
use warnings;

die "usage: mutate.pl SEED IN OUT [OTHER]\n" unless @ARGV >= 3;
my ($seed, $in, $out, $other) = @ARGV;
srand($seed);

sub slurp {
	my ($path) = @_;
	open(my $f, '<:raw', $path) or die "mutate.pl: cannot open '$path': $!\n";
	local $/;
	my $b = <$f>;
	close($f);
	return defined $b ? $b : '';
}

my $d = slurp($in);
my $o = defined $other ? slurp($other) : $d;

my @bytes = (0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc2, 0xdc, 0xdd,
	     0xde, 0xdf, 0xd9, 0xc4, 0xc7, 0xca, 0xcb, 0xcf, 0xd3, 0x90, 0x80,
	     0x0a, 0x09, 0x0d, 0x22, 0x5c);
my @tokens = (
	'""', '[]', '{}', 'null', 'true', '-1', '0', '1e308', '-1e308', 'NaN',
	'4294967296', '9223372036854775808', '-9223372036854775809', '1.5',
	'"\u0000"', '"\ud800"', "\"\xff\"", '"' . ('A' x 300) . '"', ',', ':',
	'[', '{', '"', "\t", "\n", "\r\n", "\n\n", ' ', '##', '[UNK]',
	'[CLS]', '[SEP]', '[PAD]', '-100', "\xc3", "\xe2\x80", "\xf4\x90\x80\x80",
	"\xcc\x81", "\xef\xbf\xbd", "\x00",
	"\xdd\xff\xff\xff\xff", "\xdc\xff\xff", "\xdf\x00\x10\x00\x00",
	"\xdb\x7f\xff\xff\xff", "\xc6\xff\xff\xff\xff", "\xd9\xff",
	"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
	"\xca\x7f\xc0\x00\x00", "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
	"\xc7\x04\x01\x00\x00\x80\x7f", "\xa0", "\xc0",
);

# half of the edits fall in the first 4 KiB: headers (safetensors, the
# stream header) decide what the rest of a large file means
sub pos_in {
	my ($n) = @_;
	return 0 if $n <= 0;
	return int(rand($n > 4096 && rand() < 0.5 ? 4096 : $n));
}
sub span { my ($n) = @_; my $l = 1 + int(rand(rand() < 0.8 ? 8 : 256)); return $l > $n ? $n : $l }

my $edits = 1 + int(rand(8));
for (1 .. $edits) {
	my $n = length($d);
	my $k = int(rand(10));
	if ($k == 0 && $n) {                   # flip a bit
		my $p = pos_in($n);
		substr($d, $p, 1) = chr(ord(substr($d, $p, 1)) ^ (1 << int(rand(8))));
	} elsif ($k == 1 && $n) {              # a boundary byte
		substr($d, pos_in($n), 1) = chr($bytes[int(rand(@bytes))]);
	} elsif ($k == 2 && $n) {              # a random byte
		substr($d, pos_in($n), 1) = chr(int(rand(256)));
	} elsif ($k == 3) {                    # insert a token
		substr($d, pos_in($n + 1), 0) = $tokens[int(rand(@tokens))];
	} elsif ($k == 4 && $n) {              # replace a range by a token
		my $p = pos_in($n);
		substr($d, $p, span($n - $p)) = $tokens[int(rand(@tokens))];
	} elsif ($k == 5 && $n) {              # delete a range
		my $p = pos_in($n);
		substr($d, $p, span($n - $p)) = '';
	} elsif ($k == 6 && $n) {              # repeat a range
		my $p = pos_in($n);
		my $r = substr($d, $p, span($n - $p));
		substr($d, $p, 0) = $r x (1 + int(rand(rand() < 0.9 ? 4 : 1000)));
	} elsif ($k == 7 && $n) {              # truncate
		$d = substr($d, 0, pos_in($n));
	} elsif ($k == 8 && length($o)) {      # splice from the other file
		my $q = pos_in(length($o));
		substr($d, pos_in($n + 1), 0) = substr($o, $q, span(length($o) - $q));
	} elsif ($n >= 2) {                    # change a number in text
		my @at;
		while ($d =~ /[0-9]+/g) { push @at, [$-[0], $+[0] - $-[0]] }
		if (@at) {
			my $m = $at[int(rand(@at))];
			my @v = (0, 1, -1, 255, 256, 65536, 2147483647, 2147483648,
				 -2147483649, 4294967295, 99999999999999999999);
			substr($d, $m->[0], $m->[1]) = $v[int(rand(@v))];
		}
	}
}
open(my $f, '>:raw', $out) or die "mutate.pl: cannot write '$out': $!\n";
print $f $d;
close($f) or die "mutate.pl: cannot write '$out': $!\n";
