/* splitwire ping: is a server answering? For health and readiness checks. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: splitwire ping [--server IP:PORT] --server-pub FILE [--timeout-ms N]\n"
               "                      [--count N]\n"
               "\n"
               "Sends protocol PINGs to a server and waits for the PONGs (the library\n"
               "answers them, so a server that pongs is up and serving its socket).\n"
               "Prints the round trips; exit 0 when every ping was answered, 1 when\n"
               "one was not, 2 on bad flags. Usable as a readiness or liveness probe.\n"
               "  --server IP:PORT  the server (default 127.0.0.1:7878)\n"
               "  --timeout-ms N    per ping (default 1000)\n"
               "  --count N         pings (default 1)\n");
    spw_cli_keys_usage(f, false);
}

int spw_cli_ping(int argc, char **argv)
{
    const char *server = "127.0.0.1:7878";
    long timeout = 1000, count = 1;
    spw_cli_keys keys = {0};
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_STR("server", &server),
        SPW_CLI_OPT_LONG("timeout-ms", &timeout, 1, 600000),
        SPW_CLI_OPT_LONG("count", &count, 1, 1000000),
        SPW_CLI_OPT_STR("server-pub", &keys.server_pub),
        SPW_CLI_OPT_STR("client-key", &keys.key),
        SPW_CLI_OPT_FLAG("insecure", &keys.insecure),
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire ping", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    spw_net_config cfg = {.transport = SPW_NET_UDP, .local = "0.0.0.0:0", .peer = server};
    int rc = spw_cli_net_keys(&keys, false, "splitwire ping", &cfg);
    if (rc)
        return rc;
    spw_net *net;
    rc = spw_net_open(&cfg, &net);
    if (rc)
        return spw_cli_fail(rc, "cannot reach %s", server);
    int answered = 0;
    for (long i = 0; i < count; i++) {
        uint64_t token = 0x5057000000000000ull | (uint64_t)i;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((rc = spw_net_ping(net, NULL, token))) {
            spw_cli_fail(rc, "ping %s", server);
            break;
        }
        bool got = false;
        while (!got) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms =
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            if (ms >= (double)timeout)
                break;
            if (spw_net_poll(net, (int64_t)(((double)timeout - ms) * 1000.0) + 1) < 0)
                break;
            spw_net_msg *m;
            while (spw_net_recv(net, &m, 1) == 1) {
                if (m->type == SPW_NET_PONG && m->request_id == token) {
                    got = true;
                    clock_gettime(CLOCK_MONOTONIC, &t1);
                    printf("pong from %s: %.3f ms\n", server,
                           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
                }
                spw_net_msg_free(net, m);
            }
        }
        if (!got)
            printf("no pong from %s within %ld ms\n", server, timeout);
        answered += got;
    }
    spw_net_close(net);
    return answered == count ? 0 : 1;
}
