/* splitwire CLI: shared helpers and the subcommand entry points. */
#ifndef SPW_CLI_H
#define SPW_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "splitwire/splitwire.h"

/* A subcommand: argv[0] is the subcommand's own name. Returns the exit code. */
typedef int (*spw_cli_fn)(int argc, char **argv);

typedef struct spw_cli_command {
    const char *name;
    spw_cli_fn fn;
    const char *summary;
} spw_cli_command;

/* Dispatches argv[1] among cmds (a NULL-named entry ends the table); prints
 * usage for "help", "--help", "-h" or no argument. prog is e.g. "splitwire bench". */
int spw_cli_dispatch(const char *prog, const spw_cli_command *cmds, int argc, char **argv);

/* Prints "splitwire: <what>: <strerror>[: <detail>]" to stderr and returns 1. */
int spw_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options: one parser for every subcommand ---------------------------- */

typedef enum spw_cli_opt_kind {
    SPW_CLI_FLAG, /* no value: *(bool *)dst = true */
    SPW_CLI_STR,  /* *(const char **)dst = the value */
    SPW_CLI_LONG, /* *(long *)dst = the value, an integer in min..max */
    SPW_CLI_INT,  /* *(int *)dst = the value, an integer in min..max */
    SPW_CLI_FN,   /* fn(id, value or NULL, ctx): -1 to go on, else an exit code */
} spw_cli_opt_kind;

typedef struct spw_cli_opt {
    const char *name; /* long name, without the dashes; NULL ends a table */
    spw_cli_opt_kind kind;
    void *dst;
    long min, max;
    /* SPW_CLI_FN: takes_value says whether the option has a value; fn
     * prints why when it refuses one (the parser then adds the usage). */
    int (*fn)(int id, const char *value, void *ctx);
    int id;
    bool takes_value;
    char short_name; /* 0: long form only */
} spw_cli_opt;

/* Table rows. */
#define SPW_CLI_OPT_FLAG(n, d)                        \
    {                                                 \
        .name = (n), .kind = SPW_CLI_FLAG, .dst = (d) \
    }
#define SPW_CLI_OPT_STR(n, d)                        \
    {                                                \
        .name = (n), .kind = SPW_CLI_STR, .dst = (d) \
    }
#define SPW_CLI_OPT_LONG(n, d, lo, hi)                                          \
    {                                                                           \
        .name = (n), .kind = SPW_CLI_LONG, .dst = (d), .min = (lo), .max = (hi) \
    }
#define SPW_CLI_OPT_INT(n, d, lo, hi)                                          \
    {                                                                          \
        .name = (n), .kind = SPW_CLI_INT, .dst = (d), .min = (lo), .max = (hi) \
    }
#define SPW_CLI_OPT_FN(n, f, i, value)                                                \
    {                                                                                 \
        .name = (n), .kind = SPW_CLI_FN, .fn = (f), .id = (i), .takes_value = (value) \
    }
#define SPW_CLI_OPT_END \
    {                   \
        .name = NULL    \
    }

/* Options of argv (argv[0] the subcommand) by the table, getopt_long's way
 * (options and operands in any order, "--" ends the options). --help (-h)
 * prints usage to stdout: returns 0. An unknown option, a missing value or
 * one out of range prints a line that names it, then usage to stderr:
 * returns 2. Otherwise -1, with *operands the index of the first operand;
 * operands NULL: the command takes none, and one is a usage error.
 * prog prefixes the messages ("splitwire bench ops"). */
int spw_cli_parse(const char *prog, int argc, char **argv, const spw_cli_opt *opts, void *ctx,
                  void (*usage)(FILE *f), int *operands);

/* Parses a non-negative integer option value with an end-pointer check. */
bool spw_cli_parse_int(const char *s, long min, long max, long *out);

/* JSON string output with escaping. */
void spw_cli_json_str(FILE *f, const char *s);

/* A JSON number with `decimals` decimals, or null when v is NaN or infinite. */
void spw_cli_json_num(FILE *f, double v, int decimals);

/* Monotonic clock in nanoseconds, and milliseconds since t0 (from it). */
uint64_t spw_cli_now_ns(void);
double spw_cli_ms_since(uint64_t t0_ns);

/* Reads a whole regular file (a FIFO, directory or device is refused without
 * blocking) into *data, NUL-terminated, freed with free(). 0 or SPW_E* with
 * spw_error_detail() set. */
int spw_cli_read_file(const char *path, void **data, size_t *size);

/* Order statistics of n samples, in the samples' unit: the median is the
 * mean of the middle two for even n, percentiles are nearest-rank
 * (ceil(p/100 n)-th smallest). Every field is NaN for n == 0. */
typedef struct spw_cli_stats {
    int n;
    double min, median, p99, max, mean;
} spw_cli_stats;

/* Sorts v[n] ascending in place and summarises it. */
void spw_cli_stats_of(double *v, int n, spw_cli_stats *out);
/* Nearest-rank percentile p (0..100] of v[n], sorted ascending; NaN for n <= 0. */
double spw_cli_percentile(const double *sorted, int n, double p);

/* Directory of Debian's DPDK PMD plugins ($SPW_DPDK_PMD_DIR overrides), or NULL. */
const char *spw_cli_dpdk_pmd_dir(void);

/* Protocol 2 keys of a command that talks to a server or serves: serve takes
 * --key FILE; clients take --server-pub FILE|HEX and --client-key FILE;
 * both take --insecure (protocol 1). */
typedef struct spw_cli_keys {
    const char *key;        /* serve: --key; clients: --client-key (optional) */
    const char *server_pub; /* clients: --server-pub */
    bool insecure;
    unsigned char priv[32], pub[32]; /* loaded keys, pointed to by the config */
} spw_cli_keys;

/* Help text of the key options (server or client side). */
void spw_cli_keys_usage(FILE *f, bool server);
/* Sets c's key fields (the config then points into k). Returns 0, 2 after a
 * usage message (no keys, or keys with --insecure) or 1 when a key cannot be
 * read. --insecure prints a warning. */
int spw_cli_net_keys(spw_cli_keys *k, bool server, const char *prog, spw_net_config *c);

/* Subcommand families. */
int spw_cli_model(int argc, char **argv);
int spw_cli_codec(int argc, char **argv);
int spw_cli_bench(int argc, char **argv);
int spw_cli_bench_codec(int argc, char **argv);
int spw_cli_serve(int argc, char **argv);
int spw_cli_classify(int argc, char **argv);
int spw_cli_demo(int argc, char **argv);
int spw_cli_bench_ops(int argc, char **argv);
int spw_cli_bench_net(int argc, char **argv);
int spw_cli_bench_e2e(int argc, char **argv);
int spw_cli_bench_plans(int argc, char **argv);
int spw_cli_device(int argc, char **argv);
int spw_cli_eval(int argc, char **argv);
int spw_cli_keygen(int argc, char **argv);
int spw_cli_ping(int argc, char **argv);

#endif
