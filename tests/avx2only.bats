#!/usr/bin/env bats
# bench/avx2only.c, the LD_PRELOAD shim behind bench-compare --avx2-only:
# under it a program (and its threads) sees a CPU without AVX-512, and a
# crash is still a crash.  Built here with the system compiler, apart from
# the (possibly sanitized) build, whose runtime would refuse a preload.

load helper

setup() {
	grep -qw cpuid_fault /proc/cpuinfo || skip "this CPU or hypervisor has no CPUID faulting"
	grep -qw avx512f /proc/cpuinfo || skip "this CPU has no AVX-512 to hide"
	cd "$BATS_TEST_TMPDIR"
	# the compiler without any shim (cc1's own SIGSEGV handler would
	# take the CPUID faults: see avx2only.c)
	unset LD_PRELOAD
	cc -O2 -shared -fPIC -o avx2only.so "$MTL_ROOT/bench/avx2only.c"
	cat >probe.c <<'C'
#include <pthread.h>
#include <stdio.h>
static unsigned leaf7_ebx(void)
{
	unsigned a = 7, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return b;
}
static void *thread(void *p)
{
	printf("thread avx512f %u\n", leaf7_ebx() >> 16 & 1);
	return p;
}
int main(void)
{
	pthread_t t;

	printf("main avx512f %d avx2 %d\n", !!__builtin_cpu_supports("avx512f"),
	       !!__builtin_cpu_supports("avx2"));
	pthread_create(&t, NULL, thread, NULL);
	pthread_join(t, NULL);
	return 0;
}
C
	cc -O2 -pthread -o probe probe.c
}

@test "avx2only: AVX-512 hidden from the program and its threads, AVX2 kept" {
	run -0 ./probe
	assert_line 'main avx512f 1 avx2 1'
	run -0 env LD_PRELOAD="$PWD/avx2only.so" ./probe
	assert_line 'main avx512f 0 avx2 1'
	assert_line 'thread avx512f 0'
}

@test "avx2only: a crash under it is still a crash" {
	run -139 env LD_PRELOAD="$PWD/avx2only.so" bash -c 'kill -SEGV $$'
	cat >crash.c <<'C'
int main(void) { return *(volatile int *)8; }
C
	cc -O0 -o crash crash.c
	run -139 env LD_PRELOAD="$PWD/avx2only.so" ./crash
}
