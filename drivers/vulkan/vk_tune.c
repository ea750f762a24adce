/* Measured conv settings: `splitwire bench ops --tune` times every conv
 * layer of a model under a few candidate row-kernel settings and keeps, per
 * conv shape, the fastest; the table lives next to the pipeline cache and
 * spw__vk_conv_choose applies it.
 *
 * File (text, one per device and driver version):
 *   splitwire-vk-tune 1 <vendor> <device> <driver>      (hex)
 *   conv <17 key fields> = <wg_row> <row_tile_m> <row_tile_p> <row_wsub>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/vulkan/vk_internal.h"
#include "splitwire/model.h"

#define TUNE_MAGIC "splitwire-vk-tune"
#define TUNE_VERSION 1
#define KEY_N 17

void spw__vk_tune_key(const spw_vk_conv_shape *s, uint32_t key[KEY_N])
{
    const uint32_t k[KEY_N] = {s->c,     s->h,     s->w,     s->m,          s->kh, s->kw,
                               s->group, s->sh,    s->sw,    s->dh,         s->dw, s->pad_t,
                               s->pad_l, s->pad_b, s->pad_r, s->transposed, 0};
    memcpy(key, k, sizeof(k));
}

/* A tuning run in this thread: the candidate forced on every conv, and the
 * conv steps seen while its plan was built. */
typedef struct tune_session {
    const spw_vk_tuning *force;
    int *steps;
    spw_vk_conv_shape *shapes;
    int n, cap;
    bool oom;
} tune_session;
static _Thread_local tune_session *session;

void spw__vk_tune_note(int step, const spw_vk_conv_shape *s)
{
    tune_session *ts = session;
    if (!ts)
        return;
    if (ts->n == ts->cap) {
        int cap = ts->cap ? 2 * ts->cap : 32;
        int *st = spw__realloc(ts->steps, (size_t)cap * sizeof(*st));
        if (st)
            ts->steps = st;
        spw_vk_conv_shape *sh = st ? spw__realloc(ts->shapes, (size_t)cap * sizeof(*sh)) : NULL;
        if (!st || !sh) {
            ts->oom = true;
            return;
        }
        ts->shapes = sh;
        ts->cap = cap;
    }
    ts->steps[ts->n] = step;
    ts->shapes[ts->n] = *s;
    ts->n++;
}

const spw_vk_tuning *spw__vk_tune_apply(const spw_vk_tuning *t, const spw_vk_conv_shape *s,
                                        spw_vk_tuning *scratch)
{
    if (session && session->force)
        return session->force;
    if (!t->tuned || !t->tuned->n)
        return t;
    uint32_t key[KEY_N];
    spw__vk_tune_key(s, key);
    for (int i = 0; i < t->tuned->n; i++) {
        const spw_vk_tune_entry *e = &t->tuned->e[i];
        if (memcmp(e->key, key, sizeof(key)))
            continue;
        *scratch = *t;
        scratch->wg_row = e->wg_row;
        scratch->row_tile_m = e->row_tile_m;
        scratch->row_tile_p = e->row_tile_p;
        scratch->row_wsub = e->row_wsub;
        return scratch;
    }
    return t;
}

void spw__vk_tune_free(spw_vk_tuned *t)
{
    if (!t)
        return;
    spw__free(t->e);
    spw__free(t);
}

/* Settings the kernels can take on this device: the row kernel's lanes a
 * whole number of subgroups within the device's limit, channel tiles a
 * multiple of 4 up to 64 (0: row kernel off), pixel tiles 1-16, shuffled
 * weights only where compute shaders may shuffle. */
static bool entry_ok(const spw_vk_tune_entry *e, const spw_vk_device_info *info)
{
    const uint32_t sg = info->subgroup_size ? info->subgroup_size : 1;
    const uint32_t max_wg = info->max_wg_invocations ? info->max_wg_invocations : 1024;
    if (e->key[KEY_N - 1] || e->key[15] > 1)
        return false;
    if (e->row_tile_m > 64 || e->row_tile_m % 4 || e->row_wsub > 1)
        return false;
    if (!e->row_tile_m)
        return true;
    return e->wg_row >= sg && e->wg_row <= max_wg && e->wg_row % sg == 0 && e->row_tile_p >= 1 &&
           e->row_tile_p <= 16 && (!e->row_wsub || info->subgroup_shuffle);
}

int spw__vk_tune_load(const char *path, const spw_vk_device_info *info, spw_vk_tuned **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* not tuned yet */
    spw_vk_tuned *t = spw__calloc(1, sizeof(*t));
    char line[512];
    int ln = 0, cap = 0;
    const char *why = NULL;
    unsigned ver = 0, vendor = 0, device = 0, driver = 0;
    if (!t) {
        fclose(f);
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    }
    if (!fgets(line, sizeof(line), f) || ++ln != 1 ||
        sscanf(line, TUNE_MAGIC " %u %x %x %x", &ver, &vendor, &device, &driver) != 4 ||
        ver != TUNE_VERSION) {
        why = "no header";
    } else if (vendor != info->vendor_id || device != info->device_id ||
               driver != info->driver_version) {
        why = "written for another device or driver";
    }
    while (!why && fgets(line, sizeof(line), f)) {
        ln++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        spw_vk_tune_entry e;
        uint32_t *k = e.key;
        int used = 0;
        int got =
            sscanf(line, "conv %u %u %u %u %u %u %u %u %u %u %u %u %u %u %u %u %u = %u %u %u %u%n",
                   &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &k[6], &k[7], &k[8], &k[9], &k[10],
                   &k[11], &k[12], &k[13], &k[14], &k[15], &k[16], &e.wg_row, &e.row_tile_m,
                   &e.row_tile_p, &e.row_wsub, &used);
        if (got != KEY_N + 4 || (line[used] != '\n' && line[used] != '\0')) {
            why = "malformed line";
            break;
        }
        if (!entry_ok(&e, info)) {
            why = "a setting this device cannot run";
            break;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 16;
            spw_vk_tune_entry *ne = spw__realloc(t->e, (size_t)cap * sizeof(*ne));
            if (!ne) {
                fclose(f);
                spw__vk_tune_free(t);
                return spw__error(SPW_ENOMEM, "vulkan: out of memory");
            }
            t->e = ne;
        }
        t->e[t->n++] = e;
    }
    if (!why && ferror(f))
        why = "read error";
    fclose(f);
    if (why) {
        SPW_LOGW("vulkan: ignoring tuning file %s (line %d: %s)", path, ln, why);
        spw__vk_tune_free(t);
        return 0;
    }
    *out = t;
    return 0;
}

int spw__vk_tune_save(const char *path, const spw_vk_device_info *info, const spw_vk_tuned *t)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return spw__error(SPW_EIO, "vulkan: cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, TUNE_MAGIC " %u %x %x %x\n", TUNE_VERSION, info->vendor_id, info->device_id,
            info->driver_version);
    for (int i = 0; t && i < t->n; i++) {
        const spw_vk_tune_entry *e = &t->e[i];
        fprintf(f, "conv");
        for (int k = 0; k < KEY_N; k++)
            fprintf(f, " %u", e->key[k]);
        fprintf(f, " = %u %u %u %u\n", e->wg_row, e->row_tile_m, e->row_tile_p, e->row_wsub);
    }
    bool ok = !ferror(f);
    ok = !fclose(f) && ok;
    if (!ok || rename(tmp, path)) {
        int err = errno;
        unlink(tmp);
        return spw__error(SPW_EIO, "vulkan: cannot write %s: %s", path, strerror(err));
    }
    return 0;
}

void spw__vk_tune_path(const spw_vk_ctx *ctx, char *buf, size_t size)
{
    /* The pipeline cache's name with .tune for .bin: same directory, device
     * and driver version. */
    size_t n = strlen(ctx->cache_path);
    if (n < 4 || strcmp(ctx->cache_path + n - 4, ".bin") || n + 2 > size) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, size, "%.*s.tune", (int)(n - 4), ctx->cache_path);
}

void spw__vk_tune_open(spw_vk_ctx *ctx)
{
    char path[600];
    spw__vk_tune_path(ctx, path, sizeof(path));
    spw_vk_tuned *t = NULL;
    if (path[0] && spw__vk_tune_load(path, &ctx->info, &t) == 0 && t)
        SPW_LOGI("vulkan: %d tuned conv shapes from %s", t->n, path);
    spw_error_clear();
    ctx->tuned = t;
    ctx->tuning.tuned = t;
}

/* ---- the tuning run ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The candidates: the built-in choice first, the row kernel off, channel x
 * pixel tiles around it, and the other weight path where it can shuffle. */
static int candidates(const spw_vk_tuning *t0, const spw_vk_device_info *info, spw_vk_tuning *c,
                      int cap)
{
    int n = 0;
    c[n++] = *t0;
    spw_vk_tuning off = *t0;
    off.row_tile_m = 0;
    if (t0->row_tile_m)
        c[n++] = off;
    static const uint32_t tms[] = {8, 16, 24, 32}, tps[] = {4, 8};
    for (size_t i = 0; i < SPW_ARRAY_SIZE(tms); i++)
        for (size_t j = 0; j < SPW_ARRAY_SIZE(tps) && n < cap; j++) {
            spw_vk_tuning x = *t0;
            x.row_tile_m = tms[i];
            x.row_tile_p = tps[j];
            if (x.row_tile_m == t0->row_tile_m && x.row_tile_p == t0->row_tile_p)
                continue;
            c[n++] = x;
        }
    if (t0->row_tile_m && info->subgroup_shuffle && n < cap) {
        spw_vk_tuning x = *t0;
        x.row_wsub = !t0->row_wsub;
        c[n++] = x;
    }
    for (int i = 0; i < n; i++)
        c[i].tuned = NULL;
    return n;
}

/* Per conv shape: the summed median time of its layers under each candidate. */
typedef struct shape_times {
    uint32_t key[KEY_N];
    spw_vk_conv_shape shape; /* the first layer's */
    double ms[16];
} shape_times;

/* Builds a profiled plan with candidate cand forced, runs it, and adds each
 * conv layer's median to its shape's row. */
static int time_candidate(const spw_model *m, int batch, int iters, const spw_vk_tuning *cand,
                          int ci, shape_times **shapes, int *n_shapes, int *cap_shapes)
{
    tune_session ts = {.force = cand};
    session = &ts;
    spw_plan_options o = {.backend = "vulkan", .batch = batch, .flags = SPW_PLAN_PROFILE};
    spw_plan *plan = NULL;
    int rc = spw_plan_create(m, &o, &plan);
    session = NULL;
    spw_tensor in[8] = {0}, outs[8] = {0};
    int n_in = spw_model_num_inputs(m), n_out = spw_model_num_outputs(m);
    uint64_t *lt = NULL;
    if (rc)
        goto out;
    if (ts.oom || n_in > 8 || n_out > 8) {
        rc = spw__error(ts.oom ? SPW_ENOMEM : SPW_EUNSUPPORTED, "tune: cannot run this model");
        goto out;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? n_out : n_in); i++) {
            spw_tensor *t = pass ? &outs[i] : &in[i];
            if ((rc = pass ? spw_plan_output(plan, i, t) : spw_plan_input(plan, i, t)))
                goto out;
            size_t bytes = spw_tensor_nbytes(t);
            if (!(t->data = spw__calloc(1, bytes ? bytes : 1))) {
                rc = spw__error(SPW_ENOMEM, "tune: out of memory");
                goto out;
            }
        }
    lt = spw__calloc((size_t)iters * (size_t)(ts.n ? ts.n : 1), sizeof(*lt));
    if (!lt) {
        rc = spw__error(SPW_ENOMEM, "tune: out of memory");
        goto out;
    }
    for (int it = -1; it < iters; it++) { /* -1: warm-up */
        memset(plan->step_ns, 0, sizeof(uint64_t) * (size_t)plan->n_steps);
        if ((rc = spw_plan_run(plan, in, n_in, outs, n_out)))
            goto out;
        for (int k = 0; it >= 0 && k < ts.n; k++)
            lt[(size_t)k * (size_t)iters + (size_t)it] = plan->step_ns[ts.steps[k]];
    }
    for (int k = 0; k < ts.n; k++) {
        uint64_t *v = &lt[(size_t)k * (size_t)iters];
        qsort(v, (size_t)iters, sizeof(*v), cmp_u64);
        double med = (double)v[iters / 2] / 1e6;
        uint32_t key[KEY_N];
        spw__vk_tune_key(&ts.shapes[k], key);
        int s = 0;
        while (s < *n_shapes && memcmp((*shapes)[s].key, key, sizeof(key)))
            s++;
        if (s == *n_shapes) {
            if (ci) /* every candidate builds the same layers */
                continue;
            if (*n_shapes == *cap_shapes) {
                int cap = *cap_shapes ? 2 * *cap_shapes : 16;
                shape_times *ns = spw__realloc(*shapes, (size_t)cap * sizeof(*ns));
                if (!ns) {
                    rc = spw__error(SPW_ENOMEM, "tune: out of memory");
                    goto out;
                }
                *shapes = ns;
                *cap_shapes = cap;
            }
            memset(&(*shapes)[s], 0, sizeof(**shapes));
            memcpy((*shapes)[s].key, key, sizeof(key));
            (*shapes)[s].shape = ts.shapes[k];
            (*n_shapes)++;
        }
        (*shapes)[s].ms[ci] += med;
    }
out:
    for (int i = 0; i < 8; i++) {
        spw__free(in[i].data);
        spw__free(outs[i].data);
    }
    spw__free(lt);
    spw__free(ts.steps);
    spw__free(ts.shapes);
    spw_plan_free(plan);
    return rc;
}

int spw__vk_tune_run(void *vctx, const spw_model *m, int batch, int iters, spw_tune_report *out)
{
    spw_vk_ctx *ctx = vctx;
    memset(out, 0, sizeof(*out));
    spw__vk_tune_path(ctx, out->path, sizeof(out->path));
    if (!out->path[0])
        return spw__error(SPW_EUNSUPPORTED,
                          "tune: the pipeline cache directory is off (SPW_VULKAN_CACHE_DIR)");
    if (batch < 1 || iters < 1)
        return spw__error(SPW_EINVAL, "tune: batch %d, iters %d", batch, iters);
    spw_vk_tuning t0 = ctx->tuning, cand[16];
    t0.tuned = NULL;
    const int nc = candidates(&t0, &ctx->info, cand, (int)SPW_ARRAY_SIZE(cand));
    shape_times *shapes = NULL;
    int n_shapes = 0, cap_shapes = 0, rc = 0;
    for (int c = 0; c < nc && !rc; c++)
        rc = time_candidate(m, batch, iters, &cand[c], c, &shapes, &n_shapes, &cap_shapes);
    spw_vk_tuned *t = NULL;
    if (!rc && !(t = spw__calloc(1, sizeof(*t))))
        rc = spw__error(SPW_ENOMEM, "tune: out of memory");
    if (!rc && n_shapes && !(t->e = spw__calloc((size_t)n_shapes, sizeof(*t->e))))
        rc = spw__error(SPW_ENOMEM, "tune: out of memory");
    if (rc)
        goto out;
    out->shapes = n_shapes;
    out->candidates = nc;
    for (int s = 0; s < n_shapes; s++) {
        /* Candidates that give this shape the same kernel and tiles as an
         * earlier one are the same measurement again: only the first
         * counts, so noise between identical runs picks nothing. */
        spw_vk_conv_choice ch[16];
        int best = 0;
        for (int c = 0; c < nc; c++) {
            spw__vk_conv_choose(&cand[c], &shapes[s].shape, &ch[c]);
            bool seen = false;
            for (int d = 0; d < c && !seen; d++)
                seen = !memcmp(&ch[c], &ch[d], sizeof(ch[c]));
            if (!seen && shapes[s].ms[c] < shapes[s].ms[best])
                best = c;
        }
        out->default_ms += shapes[s].ms[0];
        out->tuned_ms += shapes[s].ms[best];
        out->changed += best != 0;
        spw_vk_tune_entry *e = &t->e[t->n++];
        memcpy(e->key, shapes[s].key, sizeof(e->key));
        e->wg_row = cand[best].wg_row;
        e->row_tile_m = cand[best].row_tile_m;
        e->row_tile_p = cand[best].row_tile_p;
        e->row_wsub = cand[best].row_wsub;
    }
    if ((rc = spw__vk_tune_save(out->path, &ctx->info, t)))
        goto out;
    /* Plans built from now on use the table; those built before keep the
     * pipelines they have. */
    pthread_mutex_lock(&ctx->lock);
    spw_vk_tuned *old = ctx->tuned;
    ctx->tuned = t;
    ctx->tuning.tuned = t;
    pthread_mutex_unlock(&ctx->lock);
    t = old;
out:
    spw__vk_tune_free(t);
    spw__free(shapes);
    return rc;
}
