/*
 * avx2only.c - LD_PRELOAD shim: the process (and every thread it starts)
 * sees the CPU as an AVX2-only one, as an AMD Zen 3 is: no AVX-512 of any
 * kind, no AVX-VNNI, no GFNI.  bench-compare --avx2-only runs mtl and ONNX
 * Runtime under it, so that both choose the kernels they would choose on
 * such a machine, on the machine at hand.
 *
 * How: arch_prctl(ARCH_SET_CPUID, 0) makes the CPUID instruction fault
 * (Linux, on CPUs and hypervisors with CPUID faulting: the cpuid_fault
 * flag of /proc/cpuinfo).  The SIGSEGV handler runs the real CPUID with
 * faulting lifted for the moment, clears the bits above and steps over the
 * instruction.  The setting is per thread and inherited by new threads; an
 * execve drops it, and LD_PRELOAD sets it again in the new program.  What
 * ran before the constructor (the dynamic loader's own CPUID for glibc's
 * string functions) saw the real CPU; GLIBC_TUNABLES masks those.
 *
 * Without CPUID faulting the constructor says so and exits 1: a benchmark
 * that silently measured AVX-512 would be worse than none.  A program
 * that installs a SIGSEGV handler of its own which does not hand other
 * faults on crashes at its next CPUID: gcc's cc1 does, and node's
 * WebAssembly trap handler did (bench-compare turns it off).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* CPUID leaf 7 sub-leaf 0 */
#define L7_EBX_OFF (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
/* avx512f dq ifma pf er cd bw vl */
#define L7_ECX_OFF (BIT(1) | BIT(6) | BIT(8) | BIT(11) | BIT(12) | BIT(14))
/* avx512vbmi vbmi2, gfni, avx512vnni bitalg vpopcntdq */
#define L7_EDX_OFF (BIT(2) | BIT(3) | BIT(8) | BIT(23))
/* avx512_4vnniw 4fmaps vp2intersect fp16 */
/* CPUID leaf 7 sub-leaf 1 */
#define L71_EAX_OFF (BIT(4) | BIT(5))
/* avx_vnni, avx512_bf16 */
/* CPUID leaf 0xd sub-leaf 0: the XSAVE state components of AVX-512 */
#define LD_EAX_OFF (BIT(5) | BIT(6) | BIT(7))

static long cpuid_faulting(int on)
{
	return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];
	unsigned a, b, c, d, leaf, sub;

	/* A faulting CPUID is a general protection fault: SI_KERNEL, and
	 * the instruction at RIP is 0f a2.  Anything else is a real crash:
	 * the default action, on the faulting instruction's next try or, for
	 * a signal sent by a program (raise, kill), sent again now. */
	if (si->si_code <= 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	if (si->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
		signal(sig, SIG_DFL);
		return;
	}
	leaf = (unsigned)g[REG_RAX];
	sub = (unsigned)g[REG_RCX];
	cpuid_faulting(0);
	__cpuid_count(leaf, sub, a, b, c, d);
	cpuid_faulting(1);
	if (leaf == 7 && sub == 0) {
		b &= ~L7_EBX_OFF;
		c &= ~L7_ECX_OFF;
		d &= ~L7_EDX_OFF;
	} else if (leaf == 7 && sub == 1) {
		a &= ~L71_EAX_OFF;
	} else if (leaf == 0xd && sub == 0) {
		a &= ~LD_EAX_OFF;
	}
	/* 32-bit results zero the upper halves, as the instruction does */
	g[REG_RAX] = a;
	g[REG_RBX] = b;
	g[REG_RCX] = c;
	g[REG_RDX] = d;
	g[REG_RIP] += 2;
}

__attribute__((constructor)) static void avx2only(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || cpuid_faulting(1) != 0) {
		fprintf(stderr, "avx2only: cannot make CPUID fault (arch_prctl ARCH_SET_CPUID: %s); "
				"this CPU or hypervisor has no CPUID faulting (no cpuid_fault in /proc/cpuinfo)\n",
			strerror(errno));
		_exit(1);
	}
}
