/* splitwire device list: backends, Vulkan devices and DRM/accel nodes. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/backend.h"
#include "drivers/drm/drm.h"
#include "tools/cli/cli.h"
#ifdef SPW_HAVE_VULKAN
#include "drivers/vulkan/vk_internal.h"
#endif

static void list_usage(FILE *f)
{
    fprintf(f, "usage: splitwire device list [--json]\n"
               "\n"
               "Lists the registered backends, the Vulkan devices (the one the vulkan\n"
               "backend uses is marked; SPW_VULKAN_DEVICE picks by index, type or name)\n"
               "and the DRM render and /dev/accel nodes.\n"
               "  --json   machine-readable output\n");
}

static void print_backends(bool json)
{
    int n = spw_backend_count();
    printf(json ? "\"backends\":[" : "backends:");
    for (int i = 0; i < n; i++) {
        spw_backend *be = spw__backend_get(i);
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            spw_cli_json_str(stdout, be->ops->name);
            printf(",\"auto\":%s}", be->manual_only ? "false" : "true");
        } else {
            printf(" %s%s", be->ops->name, be->manual_only ? " (by name only)" : "");
        }
    }
    printf(json ? "]" : "\n");
}

#ifdef SPW_HAVE_VULKAN
static void version_str(uint32_t v, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
             VK_API_VERSION_PATCH(v));
}

static void print_vulkan(bool json, const spw_drm_node *nodes, int n_nodes)
{
    spw_vk_device_info *d = NULL;
    int n = 0;
    int rc = spw__vk_list_devices(&d, &n);
    if (rc) {
        if (json) {
            printf(",\"vulkan\":{\"error\":");
            spw_cli_json_str(stdout, spw_error_detail());
            printf(",\"devices\":[]}");
        } else {
            printf("vulkan: %s\n", spw_error_detail());
        }
        return;
    }
    int pick = spw__vk_pick(d, n, getenv("SPW_VULKAN_DEVICE"));
    printf(json ? ",\"vulkan\":{\"devices\":[" : "vulkan devices: %d\n", n);
    for (int i = 0; i < n; i++) {
        const spw_vk_device_info *v = &d[i];
        spw_vk_tuning t;
        spw__vk_tuning(v, &t);
        char api[32];
        version_str(v->api_version, api, sizeof(api));
        int drm = v->has_drm && v->drm_has_render
                      ? spw__drm_find(nodes, n_nodes, v->drm_render_major, v->drm_render_minor)
                      : -1;
        if (json) {
            printf("%s{\"index\":%d,\"name\":", i ? "," : "", i);
            spw_cli_json_str(stdout, v->name);
            printf(",\"type\":\"%s\",\"selected\":%s,\"api\":\"%s\",\"vendor_id\":%u,"
                   "\"device_id\":%u,\"driver\":",
                   spw__vk_type_name(v->type), i == pick ? "true" : "false", api, v->vendor_id,
                   v->device_id);
            spw_cli_json_str(stdout, v->driver_name);
            printf(",\"driver_info\":");
            spw_cli_json_str(stdout, v->driver_info);
            printf(",\"driver_version\":%u,\"subgroup_size\":%u,\"fp16_storage\":%s,"
                   "\"fp16_arith\":%s,\"host_memory_import\":%s,\"unified_memory\":%s,"
                   "\"compute_queue\":%s,\"timestamps\":%s,\"heaps\":[",
                   v->driver_version, v->subgroup_size, v->fp16_storage ? "true" : "false",
                   v->fp16_arith ? "true" : "false", v->ext_host_memory ? "true" : "false",
                   v->unified ? "true" : "false", v->compute_family >= 0 ? "true" : "false",
                   v->timestamp_bits ? "true" : "false");
            for (uint32_t h = 0; h < v->n_heaps; h++)
                printf("%s{\"bytes\":%llu,\"device_local\":%s}", h ? "," : "",
                       (unsigned long long)v->heaps[h].size,
                       (v->heaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? "true" : "false");
            printf(
                "],\"workgroups\":{\"elementwise\":%u,\"conv_lanes\":%u,\"conv_tile_channels\":%u,"
                "\"conv_tile_pixels\":%u,\"gemm\":%u,\"row_conv_lanes\":%u,"
                "\"row_conv_tile_channels\":%u,\"row_conv_tile_pixels\":%u,"
                "\"conv_weight_shuffle\":%s},\"drm\":",
                t.wg_1d, t.wg_conv, t.conv_tile_m, t.conv_tile_p, t.wg_gemm, t.wg_row, t.row_tile_m,
                t.row_tile_p, t.row_wsub ? "true" : "false");
            if (drm >= 0)
                spw_cli_json_str(stdout, nodes[drm].path);
            else
                printf("null");
            printf("}");
        } else {
            printf("  %c[%d] %s\n", i == pick ? '*' : ' ', i, v->name);
            printf("       type %s%s, Vulkan %s, driver %s (%s), ids %04x:%04x\n",
                   spw__vk_type_name(v->type), v->as_discrete ? " (SPW_VULKAN_AS_DISCRETE)" : "",
                   api, v->driver_name[0] ? v->driver_name : "?",
                   v->driver_info[0] ? v->driver_info : "no info", v->vendor_id, v->device_id);
            for (uint32_t h = 0; h < v->n_heaps; h++)
                printf("       heap %u: %.2f GiB%s\n", h,
                       (double)v->heaps[h].size / (1024.0 * 1024.0 * 1024.0),
                       (v->heaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? " device-local"
                                                                             : "");
            printf("       subgroup %u, fp16 storage %s, fp16 arithmetic %s, host import %s, "
                   "unified memory %s, timestamps %s\n",
                   v->subgroup_size, v->fp16_storage ? "yes" : "no", v->fp16_arith ? "yes" : "no",
                   v->ext_host_memory ? "yes" : "no", v->unified ? "yes" : "no",
                   v->timestamp_bits ? "yes" : "no");
            printf("       workgroups: element-wise %u, conv %u lanes x (%u channels x %u pixels), "
                   "gemm %u\n",
                   t.wg_1d, t.wg_conv, t.conv_tile_m, t.conv_tile_p, t.wg_gemm);
            if (t.row_tile_m)
                printf(
                    "       row conv %u lanes x (%u channels x %u pixels of a row), weights %s\n",
                    t.wg_row, t.row_tile_m, t.row_tile_p,
                    t.row_wsub ? "shuffled round the subgroup" : "uniform loads");
            if (v->has_drm)
                printf("       drm: render %lld:%lld%s%s\n", (long long)v->drm_render_major,
                       (long long)v->drm_render_minor, drm >= 0 ? " = " : " (no node)",
                       drm >= 0 ? nodes[drm].path : "");
        }
    }
    printf(json ? "]}" : "");
    spw__free(d);
}
#endif

static void print_drm(bool json, const spw_drm_node *nodes, int n)
{
    printf(json ? ",\"drm\":[" : "drm/accel nodes: %d\n", n);
    for (int i = 0; i < n; i++) {
        const spw_drm_node *d = &nodes[i];
        if (json) {
            printf("%s{\"path\":", i ? "," : "");
            spw_cli_json_str(stdout, d->path);
            printf(",\"kind\":\"%s\",\"driver\":", d->accel    ? "accel"
                                                   : d->render ? "render"
                                                               : "primary");
            spw_cli_json_str(stdout, d->driver);
            printf(",\"version\":\"%d.%d.%d\",\"bus\":\"%s\",\"bus_id\":", d->version[0],
                   d->version[1], d->version[2], spw__drm_bus_name(d->bus));
            spw_cli_json_str(stdout, d->bus_id);
            printf(",\"vendor_id\":%u,\"device_id\":%u}", d->vendor_id, d->device_id);
        } else {
            printf("  %-22s %-7s driver %s %d.%d.%d, %s %s", d->path,
                   d->accel    ? "accel"
                   : d->render ? "render"
                               : "primary",
                   d->driver[0] ? d->driver : "?", d->version[0], d->version[1], d->version[2],
                   spw__drm_bus_name(d->bus), d->bus_id[0] ? d->bus_id : "?");
            if (d->vendor_id)
                printf(" [%04x:%04x]", d->vendor_id, d->device_id);
            printf("\n");
        }
    }
    printf(json ? "]" : "");
}

static int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 'h') {
            list_usage(stdout);
            return 0;
        } else {
            list_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        list_usage(stderr);
        return 2;
    }
    spw_drm_node *nodes = NULL;
    int n_nodes = 0;
    int rc = spw__drm_list(&nodes, &n_nodes);
    if (rc)
        return spw_cli_fail(rc, "listing DRM devices");
    if (json)
        printf("{");
    print_backends(json);
#ifdef SPW_HAVE_VULKAN
    print_vulkan(json, nodes, n_nodes);
#else
    printf(json ? ",\"vulkan\":null" : "vulkan: not built\n");
#endif
    print_drm(json, nodes, n_nodes);
    if (json)
        printf("}\n");
    spw__free(nodes);
    return 0;
}

static const spw_cli_command device_cmds[] = {
    {"list", cmd_list, "list backends, Vulkan devices and DRM/accel nodes"},
    {NULL, NULL, NULL},
};

int spw_cli_device(int argc, char **argv)
{
    return spw_cli_dispatch("splitwire device", device_cmds, argc, argv);
}
