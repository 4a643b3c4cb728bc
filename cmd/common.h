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
/*
 * When f reads from a pipe, asks for a pipe of `bytes` (Linux's
 * F_SETPIPE_SZ), so that the program writing into it can run that far
 * ahead while this one computes; elsewhere, or when the system refuses,
 * nothing changes.
 */
void cmd_pipe_ahead(FILE *f, int bytes);
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

struct mtl_mp_writer;
/*
 * Ends the stream w with its end record (mtl_mp_finish): call it when the
 * output is complete.  Dies with exit 3 on a write error.
 */
void cmd_end_stream(struct mtl_mp_writer *w);

/*
 * Options in a table, in the manner of git's parse-options: each entry
 * names a long option (and maybe a short one), the kind of its value and
 * where the value goes.  Integer kinds check min..max; a value outside,
 * or a number that does not parse, is a usage error naming "--NAME".
 * CMD_OPT_CALL passes the argument to call(value, arg) (for values with
 * their own syntax, or options given several times).
 */
enum cmd_opt_kind {
	CMD_OPT_KIND_STRING, /* const char * */
	CMD_OPT_KIND_FLAG,   /* int, set to 1; no argument */
	CMD_OPT_KIND_INT, CMD_OPT_KIND_LONG, CMD_OPT_KIND_U64,
	CMD_OPT_KIND_FLOAT, CMD_OPT_KIND_DOUBLE,
	CMD_OPT_KIND_CALL,
	CMD_OPT_KIND_MOVED   /* a short option no longer had: name says what to use */
};

struct cmd_opt {
	const char *name; /* without "--"; NULL ends the table */
	int short_name;   /* or 0 */
	enum cmd_opt_kind kind;
	void *value;
	long min, max;    /* integer kinds */
	void (*call)(void *value, const char *arg);
};

/* The entries of a table: short name (or 0), long name, where the value
 * goes (of the type the kind says), and the range of an integer. */
#define CMD_OPT_(k, s, l, v) .name = (l), .short_name = (s), .kind = CMD_OPT_KIND_##k, .value = (v)
#define CMD_OPT_STRING(s, l, v) { CMD_OPT_(STRING, s, l, v) }
#define CMD_OPT_FLAG(s, l, v) { CMD_OPT_(FLAG, s, l, v) }
#define CMD_OPT_INT(s, l, v, lo, hi) { CMD_OPT_(INT, s, l, v), .min = (lo), .max = (hi) }
#define CMD_OPT_LONG(s, l, v, lo, hi) { CMD_OPT_(LONG, s, l, v), .min = (lo), .max = (hi) }
#define CMD_OPT_U64(s, l, v, lo, hi) { CMD_OPT_(U64, s, l, v), .min = (lo), .max = (hi) }
#define CMD_OPT_FLOAT(s, l, v) { CMD_OPT_(FLOAT, s, l, v) }
#define CMD_OPT_DOUBLE(s, l, v) { CMD_OPT_(DOUBLE, s, l, v) }
#define CMD_OPT_CALL(s, l, v, fn) { CMD_OPT_(CALL, s, l, v), .call = (fn) }
#define CMD_OPT_MOVED(s, instead) { CMD_OPT_(MOVED, s, instead, NULL) }
#define CMD_OPT_END { .name = NULL }

/*
 * Parses argv over opts and the options every program has (-q/--quiet,
 * -h/--help, -V/--version) in the order given; returns the index of the
 * first operand.  An unknown option or a bad value prints the usage to
 * stderr and exits 2, as cmd_getopt says (a CMD_OPT_MOVED short option
 * names what to use instead).
 */
int cmd_parse_options(const char *usage, const struct cmd_opt *opts,
		      int argc, char **argv);

/*
 * Flushes and closes stdout; a write error (disk full) is reported and
 * turned into exit 3.  Returns code unchanged otherwise: end main with
 * `return cmd_finish(rc);`.
 */
int cmd_finish(int code);

#endif
