/* Helpers every subcommand shares: dispatch, errors, option values, JSON. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/cli.h"

int spw_cli_dispatch(const char *prog, const spw_cli_command *cmds, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: %s <command> [options]\n\ncommands:\n", prog);
        for (const spw_cli_command *c = cmds; c->name; c++)
            fprintf(f, "  %-10s %s\n", c->name, c->summary);
        fprintf(f, "\nRun '%s <command> --help' for a command's options.\n", prog);
        return argc < 2 ? 2 : 0;
    }
    for (const spw_cli_command *c = cmds; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (try '%s --help')\n", prog, argv[1], prog);
    return 2;
}

int spw_cli_fail(int status, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *detail = spw_error_detail();
    if (detail[0])
        fprintf(stderr, "splitwire: %s: %s: %s\n", what, spw_strerror(status), detail);
    else
        fprintf(stderr, "splitwire: %s: %s\n", what, spw_strerror(status));
    return 1;
}

#define MAX_OPTS 64

int spw_cli_parse(const char *prog, int argc, char **argv, const spw_cli_opt *opts, void *ctx,
                  void (*usage)(FILE *f), int *operands)
{
    struct option lo[MAX_OPTS + 2];
    char shorts[2 * MAX_OPTS + 3] = "h";
    size_t ns = 1;
    int n = 0;
    for (; opts[n].name; n++) {
        if (n == MAX_OPTS) {
            fprintf(stderr, "%s: more than %d options\n", prog, MAX_OPTS);
            return 2;
        }
        const spw_cli_opt *o = &opts[n];
        bool arg = o->kind == SPW_CLI_FN ? o->takes_value : o->kind != SPW_CLI_FLAG;
        /* getopt_long reports a long option by its val: the table index,
         * past every character a short option can be. */
        lo[n] = (struct option){o->name, arg ? required_argument : no_argument, NULL, 256 + n};
        if (o->short_name) {
            shorts[ns++] = o->short_name;
            if (arg)
                shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){0, 0, 0, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        int k = c >= 256 ? c - 256 : -1;
        for (int i = 0; k < 0 && i < n; i++)
            if (opts[i].short_name && opts[i].short_name == c)
                k = i;
        if (k < 0) { /* getopt_long said what was wrong */
            usage(stderr);
            return 2;
        }
        const spw_cli_opt *o = &opts[k];
        long v;
        switch (o->kind) {
        case SPW_CLI_FLAG:
            *(bool *)o->dst = true;
            break;
        case SPW_CLI_STR:
            *(const char **)o->dst = optarg;
            break;
        case SPW_CLI_LONG:
        case SPW_CLI_INT:
            if (!spw_cli_parse_int(optarg, o->min, o->max, &v)) {
                fprintf(stderr, "%s: --%s: option value '%s' must be an integer in %ld..%ld\n",
                        prog, o->name, optarg, o->min, o->max);
                usage(stderr);
                return 2;
            }
            if (o->kind == SPW_CLI_LONG)
                *(long *)o->dst = v;
            else
                *(int *)o->dst = (int)v;
            break;
        case SPW_CLI_FN: {
            int rc = o->fn(o->id, o->takes_value ? optarg : NULL, ctx);
            if (rc >= 0) {
                if (rc == 2)
                    usage(stderr);
                return rc;
            }
            break;
        }
        }
    }
    if (operands) {
        *operands = optind;
    } else if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

bool spw_cli_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

void spw_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void spw_cli_json_num(FILE *f, double v, int decimals)
{
    /* JSON has no NaN or Infinity: a non-finite value is written as null. */
    if (isfinite(v))
        fprintf(f, "%.*f", decimals, v);
    else
        fputs("null", f);
}

uint64_t spw_cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double spw_cli_ms_since(uint64_t t0_ns)
{
    return (double)(spw_cli_now_ns() - t0_ns) / 1e6;
}

int spw_cli_read_file(const char *path, void **data, size_t *size)
{
    /* O_NONBLOCK: a FIFO must not wait for a writer before fstat refuses it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    if (!f)
        rc = spw_error_set(errno == ENOENT ? SPW_ENOENT : SPW_EIO, "%s: %s", path, strerror(errno));
    else if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        rc = spw_error_set(SPW_EINVAL, "%s: not a regular file", path);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        rc = spw_error_set(SPW_ENOMEM, "%s: no memory for %lld bytes", path, (long long)st.st_size);
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = spw_error_set(SPW_EIO, "%s: short read", path);
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[st.st_size] = '\0';
    *data = buf;
    *size = (size_t)st.st_size;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double spw_cli_percentile(const double *sorted, int n, double p)
{
    if (n <= 0)
        return NAN;
    /* The epsilon keeps 0.99 * n from rounding up past a whole rank. */
    int k = (int)ceil(p / 100.0 * n - 1e-9);
    return sorted[k < 1 ? 0 : k > n ? n - 1 : k - 1];
}

void spw_cli_stats_of(double *v, int n, spw_cli_stats *out)
{
    out->n = n;
    if (n <= 0) {
        out->min = out->median = out->p99 = out->max = out->mean = NAN;
        return;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    out->min = v[0];
    out->max = v[n - 1];
    out->mean = sum / n;
    out->median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    out->p99 = spw_cli_percentile(v, n, 99);
}

void spw_cli_keys_usage(FILE *f, bool server)
{
    if (server)
        fprintf(f,
                "  --key FILE          this server's private key (from `splitwire keygen NAME`:\n"
                "                      NAME.key); clients are given NAME.pub\n"
                "  --insecure          protocol 1: nothing authenticated or encrypted\n"
                "                      (benchmarks on a trusted link only)\n");
    else
        fprintf(f,
                "  --server-pub FILE   the server's public key (NAME.pub from `splitwire keygen`,\n"
                "                      or its 64 hex digits)\n"
                "  --client-key FILE   this client's private key (default: a new one per run)\n"
                "  --insecure          protocol 1: nothing authenticated or encrypted\n"
                "                      (benchmarks on a trusted link only)\n");
}

int spw_cli_net_keys(spw_cli_keys *k, bool server, const char *prog, spw_net_config *c)
{
    c->private_key = c->server_public_key = NULL;
    c->insecure = 0;
    if (k->insecure) {
        if (k->key || k->server_pub) {
            fprintf(stderr, "%s: --insecure takes no keys\n", prog);
            return 2;
        }
        fprintf(stderr,
                "%s: WARNING: --insecure: wire protocol 1, NOTHING IS AUTHENTICATED OR "
                "ENCRYPTED: anyone who can send to this %s can forge, alter or replay "
                "requests and results. Use it for benchmarks on a trusted link only.\n",
                prog, server ? "server" : "client");
        c->insecure = 1;
        return 0;
    }
    if (server ? !k->key : !k->server_pub) {
        fprintf(stderr,
                server ? "%s: needs --key FILE (a private key from `splitwire keygen NAME`), or "
                         "--insecure for the unauthenticated protocol 1\n"
                       : "%s: needs --server-pub FILE (the server's NAME.pub from `splitwire "
                         "keygen NAME`), or --insecure for the unauthenticated protocol 1\n",
                prog);
        return 2;
    }
    if (server && k->server_pub) {
        fprintf(stderr, "%s: --server-pub is a client option\n", prog);
        return 2;
    }
    int rc;
    if (k->key && (rc = spw_net_key_load_private(k->key, k->priv)))
        return spw_cli_fail(rc, "key %s", k->key);
    if (k->server_pub && (rc = spw_net_key_load_public(k->server_pub, k->pub)))
        return spw_cli_fail(rc, "server public key %s", k->server_pub);
    c->private_key = k->key ? k->priv : NULL;
    c->server_public_key = server ? NULL : k->pub;
    return 0;
}
