/* splitwire CLI: shared helpers and the subcommand entry points. */
#ifndef SPW_CLI_H
#define SPW_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

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
