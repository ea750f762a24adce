/* The CPU backends' describe slot: the host processor as one device, its
 * memory the machine's RAM (sysinfo), its features the SIMD extensions the
 * kernels can use (from /proc/cpuinfo) and the threads a plan runs on by
 * default. Nothing is opened but /proc/cpuinfo; without it the device is
 * still described, with a generic name and no extensions listed. */
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "drivers/cpu/cpu_describe.h"
#include "runtime/core/internal.h"

/* The extensions that matter to GEMM and convolution kernels, in the
 * spelling of the kernel's cpuinfo (x86 "flags", Arm "Features"). */
static const char *const isa_names[] = {
    "sse4_2",   "avx",         "avx2",        "fma",      "f16c",  "avx512f", "avx512bw",
    "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "asimddp", "asimdhp",
    "sve",      "sve2",        "i8mm",        "bf16",     "v",     "zvfh",
};

/* Whether the space-separated list holds word. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == list || p[-1] == ' ' || p[-1] == '\t';
        bool end = p[n] == '\0' || p[n] == ' ' || p[n] == '\n' || p[n] == '\t';
        if (start && end)
            return true;
    }
    return false;
}

/* The value after "key<spaces>: " when line starts with key, else NULL. */
static const char *field(const char *line, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) || (line[n] != ' ' && line[n] != '\t' && line[n] != ':'))
        return NULL;
    const char *colon = strchr(line + n, ':');
    if (!colon)
        return NULL;
    colon++;
    while (*colon == ' ' || *colon == '\t')
        colon++;
    return colon;
}

static void read_cpuinfo(spw_device_info *d)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[4096];
    bool named = false, flagged = false;
    while ((!named || !flagged) && fgets(line, sizeof(line), f)) {
        const char *v;
        if (!named && ((v = field(line, "model name")) || (v = field(line, "Hardware")))) {
            snprintf(d->name, sizeof(d->name), "%.*s", (int)strcspn(v, "\n"), v);
            named = d->name[0] != '\0';
        } else if (!flagged && ((v = field(line, "flags")) || (v = field(line, "Features")) ||
                                (v = field(line, "isa")))) {
            size_t used = 0;
            for (size_t i = 0; i < SPW_ARRAY_SIZE(isa_names); i++)
                if (has_word(v, isa_names[i]) && used + strlen(isa_names[i]) + 2 < sizeof(d->isa))
                    used += (size_t)snprintf(d->isa + used, sizeof(d->isa) - used, "%s%s",
                                             used ? " " : "", isa_names[i]);
            flagged = true;
        }
    }
    fclose(f);
}

int spw__cpu_describe(const char *backend, const char *kernels, int threads, spw_device_info **out,
                      int *n)
{
    *out = NULL;
    *n = 0;
    spw_device_info *d = spw__calloc(1, sizeof(*d));
    if (!d)
        return spw__error(SPW_ENOMEM, "out of memory");
    snprintf(d->backend, sizeof(d->backend), "%s", backend);
    d->type = SPW_DEVICE_CPU;
    /* A CPU backend has one device and always runs on it. */
    d->selected = 1;
    /* Plans run in host memory: inputs and outputs are read in place. */
    d->features = SPW_DEVICE_HOST_IMPORT | SPW_DEVICE_UNIFIED_MEMORY | SPW_DEVICE_COMPUTE_QUEUE;
    snprintf(d->driver, sizeof(d->driver), "%s", kernels);
    read_cpuinfo(d);
    if (!d->name[0]) {
        struct utsname u;
        snprintf(d->name, sizeof(d->name), "%s processor", uname(&u) ? "host" : u.machine);
    }
    struct sysinfo si;
    if (!sysinfo(&si)) {
        d->memory_bytes = (uint64_t)si.totalram * (si.mem_unit ? si.mem_unit : 1);
        d->n_heaps = 1;
        d->heaps[0].bytes = d->memory_bytes;
        d->heaps[0].device_local = 1;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d->cpu_cores = cores > 0 ? (int)cores : 1;
    d->threads = threads > 0 ? threads : d->cpu_cores;
    *out = d;
    *n = 1;
    return 0;
}
