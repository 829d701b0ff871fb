/* SPDX-License-Identifier: MIT */
/* shmctl-tool: command line, dispatch, exit status. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring/mpmc.h"
#include "shmctl.h"
#include "shmring.h"

enum {
	O_JSON = 1 << 0, O_DIR = 1 << 1, O_MATCH = 1 << 2, O_INTERVAL = 1 << 3,
	O_COUNT = 1 << 4, O_HEX = 1 << 5, O_TEXT = 1 << 6, O_BYTES = 1 << 7,
	O_KIND = 1 << 8, O_CAPACITY = 1 << 9, O_MAXMSG = 1 << 10, O_MODE = 1 << 11,
	O_FORCE = 1 << 12, O_MINAGE = 1 << 13, O_DRYRUN = 1 << 14, O_VERBOSE = 1 << 15,
	O_STALL = 1 << 16, O_TEXTFILE = 1 << 17, O_LISTEN = 1 << 18, O_FIXED = 1 << 19,
};

struct command {
	const char *name;
	int (*fn)(const struct opts *);
	bool takes_uri;
	unsigned allowed;
	const char *synopsis;
};

static const struct command commands[] = {
	{ "list", cmd_list, false, O_JSON | O_DIR | O_MATCH,
	  "list [--json] [--dir DIR]... [--match GLOB]" },
	{ "info", cmd_info, true, O_JSON, "info URI [--json]" },
	{ "watch", cmd_watch, true, O_INTERVAL | O_COUNT | O_JSON,
	  "watch URI [--interval S] [--count N] [--json]" },
	{ "dump", cmd_dump, true, O_JSON | O_COUNT | O_HEX | O_TEXT | O_BYTES,
	  "dump URI [--count N] [--hex|--text] [--bytes N] [--json]" },
	{ "create", cmd_create, true, O_KIND | O_CAPACITY | O_MAXMSG | O_MODE | O_STALL | O_FIXED,
	  "create URI [--kind spsc|mpmc|bcast] [--capacity SIZE] [--max-msg SIZE] [--mode M] "
	  "[--stall-ms N] [--fixed]" },
	{ "rm", cmd_rm, true, O_FORCE, "rm URI [--force]" },
	{ "check", cmd_check, true, O_JSON, "check URI [--json]" },
	{ "gc", cmd_gc, false, O_JSON | O_DIR | O_MATCH | O_MINAGE | O_DRYRUN | O_VERBOSE,
	  "gc [--min-age DURATION] [--dry-run] [--dir DIR]... [--match GLOB] [--verbose] [--json]" },
	{ "metrics", cmd_metrics, false, O_DIR | O_MATCH | O_TEXTFILE | O_LISTEN,
	  "metrics [--dir DIR]... [--match GLOB] [--textfile PATH | --listen ADDRESS:PORT]" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: %s COMMAND [OPTIONS]\n\ncommands:\n", TOOL_NAME);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s %s\n", TOOL_NAME, commands[i].synopsis);
	fprintf(f, "\nURI: shm:NAME, NAME (both /dev/shm/NAME) or file:PATH (read-only commands).\n"
		   "SIZE: 4096, 64K, 16M, 1G.  DURATION: 30s, 10m, 2h, 1d (a bare number is seconds).\n"
		   "Exit status: 0 fine, 1 problems found, 2 usage or system error.\n"
		   "See shmctl-tool(1).\n");
}

/* Every option: its name, whether it takes a value, its getopt code and
 * its bit in struct command's allowed. */
static const struct opt_def {
	const char *name;
	int has_arg;
	int val;
	unsigned bit;
} opt_defs[] = {
	{ "json", no_argument, 'j', O_JSON },
	{ "dir", required_argument, 'd', O_DIR },
	{ "match", required_argument, 'M', O_MATCH },
	{ "interval", required_argument, 'i', O_INTERVAL },
	{ "count", required_argument, 'n', O_COUNT },
	{ "hex", no_argument, 'x', O_HEX },
	{ "text", no_argument, 't', O_TEXT },
	{ "bytes", required_argument, 'b', O_BYTES },
	{ "kind", required_argument, 'k', O_KIND },
	{ "capacity", required_argument, 'c', O_CAPACITY },
	{ "max-msg", required_argument, 'm', O_MAXMSG },
	{ "mode", required_argument, 'o', O_MODE },
	{ "stall-ms", required_argument, 'S', O_STALL },
	{ "fixed", no_argument, 'F', O_FIXED },
	{ "force", no_argument, 'f', O_FORCE },
	{ "min-age", required_argument, 'a', O_MINAGE },
	{ "dry-run", no_argument, 'D', O_DRYRUN },
	{ "verbose", no_argument, 'v', O_VERBOSE },
	{ "textfile", required_argument, 'T', O_TEXTFILE },
	{ "listen", required_argument, 'L', O_LISTEN },
	{ "help", no_argument, 'h', 0 },
};
#define NOPTS (sizeof(opt_defs) / sizeof(opt_defs[0]))

/* opt_defs as getopt_long() wants them, ended by a zero entry */
static const struct option *long_opts(void)
{
	static struct option l[NOPTS + 1];
	for (size_t i = 0; i < NOPTS; i++)
		l[i] = (struct option){ opt_defs[i].name, opt_defs[i].has_arg, NULL,
					opt_defs[i].val };
	return l;
}

static unsigned opt_bit(int c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opt_defs[i].val == c)
			return opt_defs[i].bit;
	return 0;
}

static const char *opt_name(int c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opt_defs[i].val == c)
			return opt_defs[i].name;
	return "?";
}

static int bad_value(const struct command *cmd, int c, const char *arg, const char *want)
{
	return fail(EXIT_ERROR, cmd->name, "--%s '%s': %s", opt_name(c), arg, want);
}

/* The create command's ring options (--kind, --capacity, --max-msg,
 * --mode, --stall-ms): 0, or the exit status after a message. */
static int set_ring_option(const struct command *cmd, int c, struct opts *o)
{
	switch (c) {
	case 'F':
		o->fixed = true;
		break;
	case 'k':
		if (!strcmp(optarg, "spsc"))
			o->kind = SHMRING_SPSC;
		else if (!strcmp(optarg, "mpmc"))
			o->kind = SHMRING_MPMC;
		else if (!strcmp(optarg, "bcast"))
			o->kind = SHMRING_BCAST;
		else
			return bad_value(cmd, c, optarg, "expected spsc, mpmc or bcast");
		o->have_kind = true;
		break;
	case 'c':
		if (parse_size(optarg, &o->capacity) < 0 || o->capacity == 0)
			return bad_value(cmd, c, optarg, "expected a size, e.g. 64K, 16M or 1G");
		o->have_capacity = true;
		break;
	case 'm':
		if (parse_size(optarg, &o->max_msg) < 0 || o->max_msg == 0)
			return bad_value(cmd, c, optarg, "expected a size, e.g. 4K");
		o->have_max_msg = true;
		break;
	case 'o':
		if (parse_mode(optarg, &o->mode) < 0)
			return bad_value(cmd, c, optarg, "expected octal permission bits, e.g. 0600");
		if (o->mode & ~0666u)
			return bad_value(cmd, c, optarg, "only read and write bits (at most 0666): "
					 "no execute, setuid, setgid or sticky bit");
		o->have_mode = true;
		break;
	case 'S': {
		uint64_t ms;
		if (parse_count(optarg, &ms) < 0)
			return bad_value(cmd, c, optarg, "expected milliseconds, e.g. 1000");
		if (ms < 1 || ms > MPMC_STALL_MAX_MS)
			return bad_value(cmd, c, optarg, "must be between 1 and 3600000 (1 hour)");
		o->stall_ms = (uint32_t)ms;
		o->have_stall = true;
		break;
	}
	}
	return 0;
}

/* One option the command allows, with its value in optarg: 0, or the exit
 * status after a message. */
static int set_option(const struct command *cmd, int c, struct opts *o)
{
	switch (c) {
	case 'j': o->json = true; break;
	case 'x': o->hex = true; break;
	case 't': o->text = true; break;
	case 'f': o->force = true; break;
	case 'D': o->dry_run = true; break;
	case 'v': o->verbose = true; break;
	case 'M': o->match = optarg; break;
	case 'T':
		if (!*optarg)
			return bad_value(cmd, c, optarg, "empty file name");
		o->textfile = optarg;
		break;
	case 'L': o->listen = optarg; break;
	case 'd':
		if (o->ndirs >= MAX_DIRS)
			return fail(EXIT_ERROR, cmd->name, "at most %d --dir options", MAX_DIRS);
		if (!*optarg)
			return bad_value(cmd, c, optarg, "empty directory name");
		o->dirs[o->ndirs++] = optarg;
		break;
	case 'i':
		if (parse_duration(optarg, &o->interval_ns) < 0)
			return bad_value(cmd, c, optarg, "expected seconds, e.g. 1, 0.5 or 500ms");
		if (o->interval_ns < 10000000ull || o->interval_ns > 3600000000000ull)
			return bad_value(cmd, c, optarg, "must be between 10ms and 1h");
		break;
	case 'n':
		if (parse_count(optarg, &o->count) < 0)
			return bad_value(cmd, c, optarg, "expected a whole number");
		o->have_count = true;
		break;
	case 'b':
		if (parse_size(optarg, &o->bytes) < 0 || o->bytes == UINT64_MAX)
			return bad_value(cmd, c, optarg, "expected a size, e.g. 256 or 4K");
		break;
	case 'a':
		if (parse_duration(optarg, &o->min_age_ns) < 0)
			return bad_value(cmd, c, optarg, "expected a duration, e.g. 30s, 10m or 2h");
		break;
	default:
		return set_ring_option(cmd, c, o);
	}
	return 0;
}

/* After the options: the combinations refused, then the URI operand. */
static int check_operands(const struct command *cmd, int argc, char **argv, struct opts *o)
{
	if (o->hex && o->text)
		return fail(EXIT_ERROR, cmd->name, "--hex and --text exclude each other");
	if (o->textfile && o->listen)
		return fail(EXIT_ERROR, cmd->name, "--textfile and --listen exclude each other");
	if (o->have_stall && o->kind != SHMRING_MPMC && o->kind != SHMRING_BCAST)
		return fail(EXIT_ERROR, cmd->name, "--stall-ms applies to --kind mpmc and bcast only");
	if (o->fixed && ((o->have_kind && o->kind != SHMRING_SPSC) || !o->have_max_msg))
		return fail(EXIT_ERROR, cmd->name, "--fixed applies to --kind spsc, with --max-msg "
			    "the length of every message");
	int left = argc - optind;
	if (cmd->takes_uri) {
		if (left < 1)
			return fail(EXIT_ERROR, cmd->name, "missing URI; usage: %s %s", TOOL_NAME,
				    cmd->synopsis);
		o->uri = argv[optind++];
		left--;
	}
	if (left > 0)
		return fail(EXIT_ERROR, cmd->name, "unexpected argument '%s'; usage: %s %s",
			    argv[optind], TOOL_NAME, cmd->synopsis);
	return 0;
}

static int parse_args(const struct command *cmd, int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->min_age_ns = 600ull * 1000000000ull;       /* 10 minutes */
	o->interval_ns = 1000000000ull;
	o->bytes = UINT64_MAX;                        /* dump's default */
	opterr = 0;
	optind = 1;
	int c, rc;
	while ((c = getopt_long(argc, argv, ":vh", long_opts(), NULL)) != -1) {
		if (c == 'h') {
			printf("usage: %s %s\n", TOOL_NAME, cmd->synopsis);
			exit(finish_output(EXIT_OK));
		}
		if (c == '?') {
			if (optopt)
				return fail(EXIT_ERROR, cmd->name, "unknown option -%c; try '%s --help'",
					    optopt, TOOL_NAME);
			return fail(EXIT_ERROR, cmd->name, "unknown option %s; try '%s --help'",
				    argv[optind - 1], TOOL_NAME);
		}
		if (c == ':')
			return fail(EXIT_ERROR, cmd->name, "option %s needs a value", argv[optind - 1]);
		unsigned bit = opt_bit(c);
		if (!(cmd->allowed & bit))
			return fail(EXIT_ERROR, cmd->name, "option --%s is not valid for %s; "
				    "usage: %s %s", opt_name(c), cmd->name, TOOL_NAME, cmd->synopsis);
		if ((rc = set_option(cmd, c, o)) != 0)
			return rc;
	}
	return check_operands(cmd, argc, argv, o);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return fail(EXIT_ERROR, NULL, "missing command; try '%s --help'", TOOL_NAME);
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return finish_output(EXIT_OK);
	}
	if (!strcmp(name, "--version")) {
		printf("%s (shmring) %d.%d.%d\n", TOOL_NAME, SHMRING_VERSION_MAJOR,
		       SHMRING_VERSION_MINOR, SHMRING_VERSION_PATCH);
		return finish_output(EXIT_OK);
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(name, commands[i].name))
			continue;
		struct opts o;
		int rc = parse_args(&commands[i], argc - 1, argv + 1, &o);
		if (rc)
			return rc;
		return commands[i].fn(&o);
	}
	return fail(EXIT_ERROR, NULL, "unknown command '%s'; try '%s --help'", name, TOOL_NAME);
}
