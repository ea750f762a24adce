/* splitwire bench <what>: benchmarks, one entry per area. */
#include "tools/cli/cli.h"

static const spw_cli_command benches[] = {
    {"codec", spw_cli_bench_codec, "entropy codec throughput and compression (rANS)"},
    {"ops", spw_cli_bench_ops, "per-layer and whole-model times on every backend"},
    {"net", spw_cli_bench_net, "netpath round trips: DPDK memif, af_packet, kernel UDP"},
    {"e2e", spw_cli_bench_e2e, "end-to-end latency: bundles vs codec offload vs local, per link"},
    {"plans", spw_cli_bench_plans, "plan creation per batch size and worker (shared weights)"},
    {NULL, NULL, NULL},
};

int spw_cli_bench(int argc, char **argv)
{
    return spw_cli_dispatch("splitwire bench", benches, argc, argv);
}
