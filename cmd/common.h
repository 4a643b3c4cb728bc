/*
 * common.h - what every mtl program shares: its name in messages, usage
 * and version output, opening inputs, and the exit codes.
 *
 * Exit codes (every man page lists them):
 *   0  success
 *   1  bad input data or a runtime failure (malformed stream, numerics)
 *   2  usage error (unknown option, missing or bad argument)
 *   3  I/O error on a named file (cannot open, read or write)
 */
#ifndef MTL_CMD_COMMON_H
#define MTL_CMD_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "task.h"

enum { EXIT_DATA = 1, EXIT_USAGE = 2, EXIT_IO = 3 };

/* The exit code for a library status: 3 for MTL_ERR_IO, else 1. */
int cmd_status(int rc);

/* The program name used as the prefix of every message. */
extern const char *cmd_name;
/* Set by --quiet: progress and notes are not printed. */
extern int cmd_quiet;

/*
 * When set, called with the exit code by cmd_die and cmd_usage_error
 * after their message and before exiting: mtl-step-mpi ends the other
 * processes of its job there.
 */
extern void (*cmd_exit_hook)(int code);

/* Prints "NAME: message" to stderr and exits with code. */
void cmd_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Prints "NAME: message" to stderr unless --quiet. */
void cmd_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "NAME: warning: message" to stderr (even with --quiet). */
void cmd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * --help: usage to stdout, exit 0.  A usage error: the message (if any)
 * and the usage to stderr, exit 2.
 */
void cmd_help(const char *usage) __attribute__((noreturn));
void cmd_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void cmd_version(void) __attribute__((noreturn));

/*
 * Opens path for reading ("-" or NULL: stdin), or dies with exit 3.  *name
 * receives the name to use in messages ("<stdin>" for standard input).
 */
FILE *cmd_open_in(const char *path, const char **name);
/* Opens path for writing ("-" or NULL: stdout), or dies with exit 3. */
FILE *cmd_open_out(const char *path);

/*
 * A short option a program does not have (any more), with the option to
 * use instead: { 'm', "--max-tokens" }.  Lists end with { 0, NULL }.
 */
struct cmd_moved {
	int c;
	const char *instead;
};

/*
 * getopt_long, except that getopt's own messages (which name the program
 * by its path) are replaced by a usage error naming the option: an
 * unknown long option gets "did you mean" among longs, a short one listed
 * in moved (may be NULL) says what to use instead; a missing value and an
 * ambiguous abbreviation say so.  Never returns '?' or ':'.
 */
int cmd_getopt(int argc, char **argv, const char *shorts,
	       const struct option *longs, const char *usage,
	       const struct cmd_moved *moved);

/*
 * The value of an option with an optional value (`--errors`, `--errors=5`):
 * optarg, or else the next argument when it is a plain non-negative
 * integer (`--errors 5`), which is then consumed.  NULL when neither.
 */
const char *cmd_optional_value(int argc, char **argv);

/*
 * " (did you mean 'NAME'?)" for the name of names[0..n) closest to typed
 * (mtl_suggest), or "".  The string is valid until the next call.
 */
const char *cmd_hint(const char *typed, const char *const *names, size_t n);
/* cmd_hint over the names of the tasks ts (may be NULL); "" for NULL typed. */
const char *cmd_task_hint(const struct mtl_tasks *ts, const char *typed);

/*
 * Dies with exit 2 when standard output is a terminal and force is not
 * set: binary streams are not for terminals (as gzip refuses).
 */
void cmd_refuse_tty(int force);

/* Parses a non-negative integer option value or dies with a usage error. */
long cmd_parse_long(const char *usage, const char *opt, const char *s,
		    long min, long max);
double cmd_parse_double(const char *usage, const char *opt, const char *s);

/*
 * Flushes and closes stdout; a write error (disk full) is reported and
 * turned into exit 3.  Returns code unchanged otherwise: end main with
 * `return cmd_finish(rc);`.
 */
int cmd_finish(int code);

#endif
