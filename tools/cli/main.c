/* splitwire CLI entry point: splitwire <subcommand> [options]. */
#include <stdio.h>
#include <string.h>

#include "tools/cli/cli.h"

static const spw_cli_command commands[] = {
    {"demo", spw_cli_demo, "end-to-end demo: server and client classify Imagenette images"},
    {"serve", spw_cli_serve, "serve classification requests"},
    {"classify", spw_cli_classify, "classify images through a server (or --local)"},
    {"model", spw_cli_model, "inspect and run ONNX models"},
    {"codec", spw_cli_codec, "entropy-code latents to rANS streams and back"},
    {"bench", spw_cli_bench, "benchmarks (codec, ...)"},
    {"device", spw_cli_device, "list backends, Vulkan devices and DRM nodes"},
    {"eval", spw_cli_eval, "rate and accuracy of bundles and image codecs on a labelled set"},
    {"ping", spw_cli_ping, "check that a server answers (for health and readiness probes)"},
    {"keygen", spw_cli_keygen, "make a key pair for the authenticated wire protocol"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("splitwire %s\n", spw_version_string());
        return 0;
    }
    return spw_cli_dispatch("splitwire", commands, argc, argv);
}
