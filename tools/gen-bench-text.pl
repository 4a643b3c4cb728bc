#!/usr/bin/perl
# gen-bench-text.pl - writes MB megabytes of made-up text for the
# tokenizer benchmark (make bench-tokenize): sentences of pseudo-words built
# from syllables, with capitals, numbers, punctuation, some accented Latin
# and Greek, an occasional CJK ideograph and emoji, one sentence a line.
# Deterministic (fixed seed).  With --vocab FILE it also writes a WordPiece
# vocabulary for that text (specials, whole syllable words, ##syllables,
# characters), used when no real model is at hand.
#
# Usage: perl tools/gen-bench-text.pl [--mb 50] [--vocab FILE] >text.txt
use strict;
use warnings;
use utf8;
use Getopt::Long;

my ($mb, $vocab) = (50, undef);
GetOptions('mb=i' => \$mb, 'vocab=s' => \$vocab) or die "usage: $0 [--mb N] [--vocab FILE]\n";
binmode STDOUT, ':encoding(UTF-8)';
srand(20261126);

my @syl = qw(ta ke ri mo su na lo pe vi da ge bu chi ran tor mel ing ed er
	 st th qu an re co pro ex ment tion al ous ly able ize ist);
my @accent = qw(é è ê ü ö ä ñ ç å ø);
my @greek = qw(α β γ δ ε λ μ π σ ω);
my @cjk = qw(中 国 人 日 本 大 学 生);
my @punct = (',', ',', ',', ';', ':', '-', '(', ')', '"', "'");
my @end = ('.', '.', '.', '?', '!');

sub word {
	my $n = 1 + int(rand(3)) + (rand() < 0.2 ? 2 : 0);
	my $w = join '', map { $syl[int(rand(@syl))] } 1 .. $n;
	my $r = rand();
	if ($r < 0.03) { substr($w, int(rand(length $w)), 1) = $accent[int(rand(@accent))] }
	elsif ($r < 0.04) { $w = join '', map { $greek[int(rand(@greek))] } 1 .. 3 + int(rand(4)) }
	elsif ($r < 0.045) { $w = $cjk[int(rand(@cjk))] . $cjk[int(rand(@cjk))] }
	elsif ($r < 0.05) { $w .= "\x{1F600}" }
	elsif ($r < 0.09) { $w = int(rand(100000)) }
	$w = ucfirst $w if rand() < 0.12;
	return $w;
}

my $target = $mb * 1000 * 1000;
my $bytes = 0;
while ($bytes < $target) {
	my @w = map { word() } 1 .. 5 + int(rand(30));
	$w[0] = ucfirst $w[0];
	for my $i (1 .. $#w - 1) { $w[$i] .= $punct[int(rand(@punct))] if rand() < 0.08 }
	my $line = join(' ', @w) . $end[int(rand(@end))] . "\n";
	print $line;
	utf8::encode(my $b = $line);
	$bytes += length $b;
}

if (defined $vocab) {
	open my $v, '>:encoding(UTF-8)', $vocab or die "cannot open '$vocab': $!\n";
	my %seen;
	my @out = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]');
	push @out, $_, "##$_" for @syl;
	for my $a (@syl) { push @out, "$a$_" for @syl }
	push @out, $_, "##$_" for (@accent, @greek, @cjk, 'a' .. 'z', 0 .. 9);
	push @out, @punct, @end, '?', '!';
	print $v "$_\n" for grep { !$seen{$_}++ } @out;
	close $v or die "cannot write '$vocab': $!\n";
}
