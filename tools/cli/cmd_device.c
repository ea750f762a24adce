/* splitwire device list: backends, their devices and DRM/accel nodes. */
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli.h"

static void list_usage(FILE *f)
{
    fprintf(f, "usage: splitwire device list [--json]\n"
               "\n"
               "Lists the registered backends, the processor the CPU backends run on\n"
               "(memory, SIMD extensions, threads), the Vulkan devices (the one the vulkan\n"
               "backend uses is marked; SPW_VULKAN_DEVICE picks by index, type or name)\n"
               "and the DRM render and /dev/accel nodes.\n"
               "  --json   machine-readable output\n");
}

static void print_backends(bool json)
{
    int n = spw_backend_count();
    printf(json ? "\"backends\":[" : "backends:");
    for (int i = 0; i < n; i++) {
        bool by_name = !spw_backend_automatic(i);
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            spw_cli_json_str(stdout, spw_backend_name(i));
            printf(",\"auto\":%s}", by_name ? "false" : "true");
        } else {
            printf(" %s%s", spw_backend_name(i), by_name ? " (by name only)" : "");
        }
    }
    printf(json ? "]" : "\n");
}

static const char *yes(const spw_device_info *v, unsigned feature, bool json)
{
    return (v->features & feature) ? (json ? "true" : "yes") : (json ? "false" : "no");
}

static void print_device_json(const spw_device_info *v, bool first)
{
    const spw_device_kernels *t = &v->kernels;
    printf("%s{\"index\":%d,\"name\":", first ? "" : ",", v->index);
    spw_cli_json_str(stdout, v->name);
    printf(",\"type\":\"%s\",\"selected\":%s,\"api\":\"%u.%u.%u\",\"vendor_id\":%u,"
           "\"device_id\":%u,\"driver\":",
           spw_device_type_name(v->type), v->selected ? "true" : "false", v->api_version[0],
           v->api_version[1], v->api_version[2], v->vendor_id, v->device_id);
    spw_cli_json_str(stdout, v->driver);
    printf(",\"driver_info\":");
    spw_cli_json_str(stdout, v->driver_info);
    printf(",\"driver_version\":%u,\"subgroup_size\":%u,\"fp16_storage\":%s,"
           "\"fp16_arith\":%s,\"host_memory_import\":%s,\"unified_memory\":%s,"
           "\"compute_queue\":%s,\"timestamps\":%s,\"heaps\":[",
           v->driver_version, v->subgroup_size, yes(v, SPW_DEVICE_FP16_STORAGE, true),
           yes(v, SPW_DEVICE_FP16_ARITH, true), yes(v, SPW_DEVICE_HOST_IMPORT, true),
           yes(v, SPW_DEVICE_UNIFIED_MEMORY, true), yes(v, SPW_DEVICE_COMPUTE_QUEUE, true),
           yes(v, SPW_DEVICE_TIMESTAMPS, true));
    for (int h = 0; h < v->n_heaps; h++)
        printf("%s{\"bytes\":%llu,\"device_local\":%s}", h ? "," : "",
               (unsigned long long)v->heaps[h].bytes, v->heaps[h].device_local ? "true" : "false");
    printf("],\"workgroups\":{\"elementwise\":%u,\"conv_lanes\":%u,\"conv_tile_channels\":%u,"
           "\"conv_tile_pixels\":%u,\"gemm\":%u,\"row_conv_lanes\":%u,"
           "\"row_conv_tile_channels\":%u,\"row_conv_tile_pixels\":%u,"
           "\"conv_weight_shuffle\":%s},\"drm\":",
           t->elementwise, t->conv_lanes, t->conv_tile_channels, t->conv_tile_pixels, t->gemm,
           t->row_conv_lanes, t->row_conv_tile_channels, t->row_conv_tile_pixels,
           t->conv_weight_shuffle ? "true" : "false");
    if (v->drm_node[0])
        spw_cli_json_str(stdout, v->drm_node);
    else
        printf("null");
    printf("}");
}

static void print_device_text(const spw_device_info *v)
{
    const spw_device_kernels *t = &v->kernels;
    printf("  %c[%d] %s\n", v->selected ? '*' : ' ', v->index, v->name);
    printf("       type %s%s, Vulkan %u.%u.%u, driver %s (%s), ids %04x:%04x\n",
           spw_device_type_name(v->type),
           (v->features & SPW_DEVICE_AS_DISCRETE) ? " (SPW_VULKAN_AS_DISCRETE)" : "",
           v->api_version[0], v->api_version[1], v->api_version[2], v->driver[0] ? v->driver : "?",
           v->driver_info[0] ? v->driver_info : "no info", v->vendor_id, v->device_id);
    for (int h = 0; h < v->n_heaps; h++)
        printf("       heap %d: %.2f GiB%s\n", h,
               (double)v->heaps[h].bytes / (1024.0 * 1024.0 * 1024.0),
               v->heaps[h].device_local ? " device-local" : "");
    printf("       subgroup %u, fp16 storage %s, fp16 arithmetic %s, host import %s, "
           "unified memory %s, timestamps %s\n",
           v->subgroup_size, yes(v, SPW_DEVICE_FP16_STORAGE, false),
           yes(v, SPW_DEVICE_FP16_ARITH, false), yes(v, SPW_DEVICE_HOST_IMPORT, false),
           yes(v, SPW_DEVICE_UNIFIED_MEMORY, false), yes(v, SPW_DEVICE_TIMESTAMPS, false));
    printf("       workgroups: element-wise %u, conv %u lanes x (%u channels x %u pixels), "
           "gemm %u\n",
           t->elementwise, t->conv_lanes, t->conv_tile_channels, t->conv_tile_pixels, t->gemm);
    if (t->row_conv_tile_channels)
        printf("       row conv %u lanes x (%u channels x %u pixels of a row), weights %s\n",
               t->row_conv_lanes, t->row_conv_tile_channels, t->row_conv_tile_pixels,
               t->conv_weight_shuffle ? "shuffled round the subgroup" : "uniform loads");
    if (v->has_drm)
        printf("       drm: render %lld:%lld%s%s\n", (long long)v->drm_render_major,
               (long long)v->drm_render_minor, v->drm_node[0] ? " = " : " (no node)", v->drm_node);
}

static void print_vulkan(bool json, const spw_device_list *l)
{
    const char *detail;
    int rc = spw_device_list_status(l, "vulkan", &detail);
    if (rc == SPW_ENOENT) {
        printf(json ? ",\"vulkan\":null" : "vulkan: not built\n");
        return;
    }
    if (rc) {
        if (json) {
            printf(",\"vulkan\":{\"error\":");
            spw_cli_json_str(stdout, detail);
            printf(",\"devices\":[]}");
        } else {
            printf("vulkan: %s\n", detail);
        }
        return;
    }
    int n = 0;
    for (int i = 0; i < spw_device_count(l); i++) {
        spw_device_info v;
        n += !spw_device_get(l, i, &v) && !strcmp(v.backend, "vulkan");
    }
    printf(json ? ",\"vulkan\":{\"devices\":[" : "vulkan devices: %d\n", n);
    bool first = true;
    for (int i = 0; i < spw_device_count(l); i++) {
        spw_device_info v;
        if (spw_device_get(l, i, &v) || strcmp(v.backend, "vulkan"))
            continue;
        if (json)
            print_device_json(&v, first);
        else
            print_device_text(&v);
        first = false;
    }
    printf(json ? "]}" : "");
}

/* The CPU backends' devices: the host processor once per backend. */
static void print_cpus(bool json, const spw_device_list *l)
{
    printf(json ? ",\"cpu\":[" : "");
    bool first = true;
    for (int i = 0; i < spw_device_count(l); i++) {
        spw_device_info v;
        if (spw_device_get(l, i, &v) || v.type != SPW_DEVICE_CPU || strncmp(v.backend, "cpu", 3))
            continue;
        if (json) {
            printf("%s{\"backend\":", first ? "" : ",");
            spw_cli_json_str(stdout, v.backend);
            printf(",\"name\":");
            spw_cli_json_str(stdout, v.name);
            printf(",\"type\":\"cpu\",\"kernels\":");
            spw_cli_json_str(stdout, v.driver);
            printf(",\"memory_bytes\":%llu,\"cores\":%d,\"threads\":%d,\"isa\":",
                   (unsigned long long)v.memory_bytes, v.cpu_cores, v.threads);
            spw_cli_json_str(stdout, v.isa);
            printf("}");
        } else {
            printf("%s: %s, %.2f GiB, %d cores, %s, %d thread%s per plan by default\n"
                   "       SIMD: %s\n",
                   v.backend, v.name, (double)v.memory_bytes / (1024.0 * 1024.0 * 1024.0),
                   v.cpu_cores, v.driver, v.threads, v.threads == 1 ? "" : "s",
                   v.isa[0] ? v.isa : "none listed");
        }
        first = false;
    }
    printf(json ? "]" : "");
}

static void print_nodes(bool json, const spw_device_list *l)
{
    int n = spw_device_node_count(l);
    printf(json ? ",\"drm\":[" : "drm/accel nodes: %d\n", n);
    for (int i = 0; i < n; i++) {
        spw_device_node d;
        if (spw_device_node_get(l, i, &d))
            continue;
        if (json) {
            printf("%s{\"path\":", i ? "," : "");
            spw_cli_json_str(stdout, d.path);
            printf(",\"kind\":\"%s\",\"driver\":", d.kind);
            spw_cli_json_str(stdout, d.driver);
            printf(",\"version\":\"%d.%d.%d\",\"bus\":\"%s\",\"bus_id\":", d.version[0],
                   d.version[1], d.version[2], d.bus);
            spw_cli_json_str(stdout, d.bus_id);
            printf(",\"vendor_id\":%u,\"device_id\":%u}", d.vendor_id, d.device_id);
        } else {
            printf("  %-22s %-7s driver %s %d.%d.%d, %s %s", d.path, d.kind,
                   d.driver[0] ? d.driver : "?", d.version[0], d.version[1], d.version[2], d.bus,
                   d.bus_id[0] ? d.bus_id : "?");
            if (d.vendor_id)
                printf(" [%04x:%04x]", d.vendor_id, d.device_id);
            printf("\n");
        }
    }
    printf(json ? "]" : "");
}

static int cmd_list(int argc, char **argv)
{
    bool json = false;
    const spw_cli_opt opts[] = {
        {.name = "json", .kind = SPW_CLI_FLAG, .dst = &json, .short_name = 'j'},
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire device list", argc, argv, opts, NULL, list_usage, NULL);
    if (prc >= 0)
        return prc;
    spw_device_list *l;
    int rc = spw_device_list_open(&l);
    if (rc)
        return spw_cli_fail(rc, "listing devices");
    if (json)
        printf("{");
    print_backends(json);
    print_cpus(json, l);
    print_vulkan(json, l);
    print_nodes(json, l);
    if (json)
        printf("}\n");
    spw_device_list_free(l);
    return 0;
}

static const spw_cli_command device_cmds[] = {
    {"list", cmd_list, "list backends, CPU and Vulkan devices, DRM/accel nodes"},
    {NULL, NULL, NULL},
};

int spw_cli_device(int argc, char **argv)
{
    return spw_cli_dispatch("splitwire device", device_cmds, argc, argv);
}
