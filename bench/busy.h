/*
 * busy.h - a busy loop beside a benchmark, as another program taking a
 * core would be (bench_encode -l, bench_train -l): a process spinning on
 * the last core from busy_start() to busy_stop().  Include after defining
 * _GNU_SOURCE (for sched_setaffinity).
 */
#ifndef MTL_BENCH_BUSY_H
#define MTL_BENCH_BUSY_H

#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* argv[1] of the busy loop's process (busy_start): no option takes it. */
#define SPIN_ARG "--spin-on-last-core"

/* The busy loop: spins on the last core until killed, after one byte on
 * stdout (a pipe from busy_start) to say it has begun. */
static inline _Noreturn void spin(pid_t parent)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	volatile unsigned long x = 0;
	cpu_set_t set;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */
	if (getppid() != parent)
		_exit(0);
	CPU_ZERO(&set);
	CPU_SET(n > 0 ? n - 1 : 0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	if (write(STDOUT_FILENO, "", 1) != 1)
		_exit(1);
	close(STDOUT_FILENO);
	for (;;)
		x++;
}

/* Ends a busy loop from busy_start (nothing if pid is 0). */
static inline void busy_stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/*
 * A process spinning on the last core until busy_stop(); 0 if it could not
 * be started (then the step runs without it).  It is this program run
 * again by posix_spawn (a vfork and exec), not a fork that goes on
 * spinning: fork marks every page of the benchmark copy-on-write, in its
 * own page tables too, so each page it then wrote faulted, and was
 * copied while the child lived.  That cost a forward more than the lost
 * core, and a training step, which writes every parameter, gradient and
 * moment, four times its quiet time (docs/performance.md, "Threads under
 * load").  The program's main must call busy_main() first.
 */
static inline pid_t busy_start(void)
{
	extern char **environ;
	char parent[32], c, *argv[] = { "busy", SPIN_ARG, parent, NULL };
	posix_spawn_file_actions_t fa;
	int fd[2], ok;
	pid_t pid = 0;

	if (pipe(fd))
		return 0;
	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	ok = !posix_spawn_file_actions_init(&fa);
	ok = ok && !posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO) &&
	     !posix_spawn_file_actions_addclose(&fa, fd[0]) &&
	     !posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd[1]);
	if (ok && read(fd[0], &c, 1) != 1) {
		busy_stop(pid);
		ok = 0;
	}
	close(fd[0]);
	return ok ? pid : 0;
}

/* In the busy loop's process (argv[1] SPIN_ARG): spins, never returns;
 * otherwise returns at once. */
static inline void busy_main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], SPIN_ARG))
		spin((pid_t)atol(argv[2]));
}

#endif
