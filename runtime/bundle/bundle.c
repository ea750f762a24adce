/* Model bundles: manifest parsing with jansson, validation, and loading of
 * the two halves, the codec tables and the backbone tail. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>

#include "runtime/graph/plan.h"
#include "splitwire/bundle.h"

struct spw_bundle {
    char *dir;
    spw_bundle_info info;
    char encoder[256], decoder[256]; /* file names inside dir */
    /* The server half, loaded once: every later load (a server loads it
     * per worker) is another handle on the same weights. */
    pthread_mutex_t lock;
    spw_model *decoder_model, *tail_model;
    char tail_path[4096];
};

/* Typed accessors that name the missing or mistyped field. */
static int get_obj(json_t *o, const char *key, json_t **out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v))
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be an object", key);
    *out = v;
    return 0;
}

static int get_int(json_t *o, const char *key, long min, long max, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return spw__error(SPW_ERANGE, "manifest: '%s' = %lld is outside %ld..%ld", key,
                          (long long)x, min, max);
    *out = (int)x;
    return 0;
}

static int get_num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be a number", key);
    *out = json_number_value(v);
    return 0;
}

static int get_str(json_t *o, const char *key, char *dst, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be a string", key);
    const char *s = json_string_value(v);
    if (!*s || strlen(s) >= size)
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be 1..%zu characters", key, size - 1);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_vec3(json_t *o, const char *key, float *dst)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v) || json_array_size(v) != 3)
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be an array of 3 numbers", key);
    for (int i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_number(e))
            return spw__error(SPW_EFORMAT, "manifest: '%s'[%d] must be a number", key, i);
        dst[i] = (float)json_number_value(e);
    }
    return 0;
}

static int get_shape3(json_t *o, const char *key, int *c, int *h, int *w)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v) || json_array_size(v) != 3)
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be [C, H, W]", key);
    int *d[3] = {c, h, w};
    for (int i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 65535)
            return spw__error(SPW_EFORMAT, "manifest: '%s'[%d] must be an integer in 1..65535", key,
                              i);
        *d[i] = (int)json_integer_value(e);
    }
    return 0;
}

/* A file name inside the bundle: no directories, so a manifest cannot point
 * outside its bundle. */
static int get_file(json_t *o, const char *key, char *dst, size_t size)
{
    int rc = get_str(o, key, dst, size);
    if (rc)
        return rc;
    if (strchr(dst, '/') || !strcmp(dst, ".") || !strcmp(dst, ".."))
        return spw__error(SPW_EFORMAT, "manifest: '%s' must be a file name inside the bundle", key);
    return 0;
}

static uint32_t fnv1a(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    h = (h ^ '@') * 16777619u;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* "shared_encoder": {"owner": NAME, "fnv1a64": 16 hex digits}; optional. */
static int parse_shared_encoder(json_t *root, spw_bundle_info *in)
{
    json_t *v = json_object_get(root, "shared_encoder");
    if (!v)
        return 0;
    if (!json_is_object(v))
        return spw__error(SPW_EFORMAT, "manifest: 'shared_encoder' must be an object");
    char hex[32];
    int rc;
    if ((rc = get_str(v, "owner", in->encoder_owner, sizeof(in->encoder_owner))) ||
        (rc = get_str(v, "fnv1a64", hex, sizeof(hex))))
        return rc;
    uint64_t h = 0;
    size_t n = strlen(hex);
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)hex[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            d = -1;
        if (d < 0 || n != 16)
            return spw__error(SPW_EFORMAT, "manifest: 'fnv1a64' must be 16 hex digits, not '%s'",
                              hex);
        h = h << 4 | (uint64_t)d;
    }
    in->encoder_hash = h;
    in->shared_encoder = 1;
    return 0;
}

static int parse_manifest(json_t *root, spw_bundle *b)
{
    spw_bundle_info *in = &b->info;
    json_t *input = NULL, *latent = NULL, *rate = NULL, *backbone = NULL, *split = NULL;
    json_t *files = NULL, *measured;
    int rc, fmt = 0; /* get_int sets it; -O3 cannot see that an error return skips the use */
    char format[64];
    if (!json_is_object(root))
        return spw__error(SPW_EFORMAT, "manifest: top level must be an object");
    if ((rc = get_str(root, "format", format, sizeof(format))))
        return rc;
    if (strcmp(format, "splitwire-bundle"))
        return spw__error(SPW_EFORMAT, "manifest: format is '%s', not 'splitwire-bundle'", format);
    if ((rc = get_int(root, "format_version", 1, INT_MAX, &fmt)))
        return rc;
    if (fmt != SPW_BUNDLE_FORMAT_VERSION)
        return spw__error(SPW_EUNSUPPORTED, "manifest: format_version %d (this build reads %d)",
                          fmt, SPW_BUNDLE_FORMAT_VERSION);
    if ((rc = get_str(root, "name", in->name, sizeof(in->name))) ||
        (rc = get_str(root, "version", in->version, sizeof(in->version))) ||
        (rc = get_obj(root, "input", &input)) || (rc = get_obj(root, "latent", &latent)) ||
        (rc = get_obj(root, "rate_point", &rate)) || (rc = get_obj(root, "backbone", &backbone)) ||
        (rc = get_obj(root, "files", &files)))
        return rc;
    if ((rc = get_int(input, "width", 1, 16384, &in->input_width)) ||
        (rc = get_int(input, "height", 1, 16384, &in->input_height)) ||
        (rc = get_int(input, "resize", 0, 16384, &in->resize)) ||
        (rc = get_vec3(input, "mean", in->mean)) || (rc = get_vec3(input, "std", in->std)))
        return rc;
    for (int c = 0; c < 3; c++)
        if (!(in->std[c] > 0))
            return spw__error(SPW_ERANGE, "manifest: input std[%d] must be positive", c);
    if (!in->resize)
        SPW_LOGW("bundle '%s': input.resize is 0, so photos larger than %dx%d are cropped at "
                 "full resolution, not resized as the backbone expects; set it to %d",
                 in->name, in->input_width, in->input_height,
                 in->input_width < in->input_height ? in->input_width : in->input_height);
    if ((rc = get_shape3(latent, "shape", &in->latent_c, &in->latent_h, &in->latent_w)))
        return rc;
    if ((rc = get_int(rate, "index", 0, 1000, &in->rate_index)) ||
        (rc = get_num(rate, "lambda", &in->lambda)))
        return rc;
    if ((rc = get_str(backbone, "id", in->backbone, sizeof(in->backbone))) ||
        (rc = get_obj(backbone, "split", &split)) ||
        (rc = get_str(split, "value", in->split_value, sizeof(in->split_value))) ||
        (rc = get_shape3(split, "shape", &in->split_c, &in->split_h, &in->split_w)) ||
        (rc = get_int(backbone, "num_classes", 1, 1 << 20, &in->num_classes)) ||
        (rc = get_int(backbone, "label_offset", 0, 1 << 20, &in->label_offset)))
        return rc;
    if (strchr(in->backbone, '/') || in->backbone[0] == '.')
        return spw__error(SPW_EFORMAT, "manifest: backbone id '%s' must be a plain name",
                          in->backbone);
    if ((rc = get_file(files, "encoder", b->encoder, sizeof(b->encoder))) ||
        (rc = get_file(files, "decoder", b->decoder, sizeof(b->decoder))))
        return rc;
    if ((rc = parse_shared_encoder(root, in)))
        return rc;
    in->bpp = in->top1 = -1;
    measured = json_object_get(root, "measured");
    if (json_is_object(measured)) {
        json_t *v = json_object_get(measured, "bpp");
        if (json_is_number(v))
            in->bpp = json_number_value(v);
        v = json_object_get(measured, "top1");
        if (json_is_number(v))
            in->top1 = json_number_value(v);
    }
    uint32_t h = fnv1a(in->name, in->version);
    in->id = (uint16_t)(h ^ (h >> 16)); /* the wire carries 16 bits */
    return 0;
}

int spw_bundle_open(const char *dir, spw_bundle **out)
{
    if (!dir || !out)
        return spw__error(SPW_EINVAL, "bundle_open: NULL argument");
    spw_bundle *b = spw__calloc(1, sizeof(*b));
    if (!b)
        return spw__error(SPW_ENOMEM, "out of memory opening a bundle");
    int rc;
    if (!(b->dir = spw__strdup(dir))) {
        rc = spw__error(SPW_ENOMEM, "out of memory opening a bundle");
        goto fail_bundle;
    }
    pthread_mutex_init(&b->lock, NULL);
    char path[4096];
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    void *text;
    size_t size;
    if ((rc = spw__read_file(path, &text, &size)))
        goto fail_dir;
    json_error_t jerr;
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
    spw__free(text);
    if (!root) {
        rc = spw__error(SPW_EFORMAT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto fail_dir;
    }
    rc = parse_manifest(root, b);
    json_decref(root);
    if (rc) {
        spw__error_context(rc, "%s", path);
        goto fail_dir;
    }
    *out = b;
    return 0;
fail_dir:
    pthread_mutex_destroy(&b->lock);
    spw__free(b->dir);
fail_bundle:
    spw__free(b);
    return rc;
}

void spw_bundle_close(spw_bundle *bundle)
{
    if (!bundle)
        return;
    spw_model_free(bundle->decoder_model);
    spw_model_free(bundle->tail_model);
    pthread_mutex_destroy(&bundle->lock);
    spw__free(bundle->dir);
    spw__free(bundle);
}

const spw_bundle_info *spw_bundle_get_info(const spw_bundle *bundle)
{
    return bundle ? &bundle->info : NULL;
}

const char *spw_bundle_dir(const spw_bundle *bundle)
{
    return bundle ? bundle->dir : NULL;
}

/* Checks a model's single input/output against [N, c, h, w] and dtypes. */
static int check_io(const spw_model *m, const char *what, spw_dtype in_t, const int in_shape[3],
                    spw_dtype out_t, const int out_shape[3])
{
    if (spw_model_num_inputs(m) != 1 || spw_model_num_outputs(m) != 1)
        return spw__error(SPW_EMISMATCH, "%s must have one input and one output", what);
    spw_tensor d;
    const char *name;
    for (int io = 0; io < 2; io++) {
        if (io == 0)
            spw_model_input(m, 0, &d, &name);
        else
            spw_model_output(m, 0, &d, &name);
        const int *s = io ? out_shape : in_shape;
        spw_dtype t = io ? out_t : in_t;
        if (d.dtype != t || d.ndim != 4 || d.dims[1] != s[0] || d.dims[2] != s[1] ||
            d.dims[3] != s[2]) {
            char have[96];
            return spw__error(SPW_EMISMATCH, "%s %s '%s' is %s %s, the manifest says %s Nx%dx%dx%d",
                              what, io ? "output" : "input", name, spw_dtype_name(d.dtype),
                              spw_tensor_shape_str(&d, have, sizeof(have)), spw_dtype_name(t), s[0],
                              s[1], s[2]);
        }
    }
    return 0;
}

static int load_half(const spw_bundle *b, const char *file, spw_model **out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", b->dir, file);
    return spw_model_load(path, out);
}

/* FNV-1a 64 of a file's bytes: enough to tell a different or damaged
 * encoder from the declared one (not a defence against forgery). */
static int file_fnv1a64(const char *path, uint64_t *out)
{
    void *data;
    size_t size;
    int rc = spw__read_file(path, &data, &size);
    if (rc)
        return rc;
    uint64_t h = 14695981039346656037ull;
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    spw__free(data);
    *out = h;
    return 0;
}

int spw_bundle_encoder_hash(const spw_bundle *bundle, uint64_t *out)
{
    if (!bundle || !out)
        return spw__error(SPW_EINVAL, "bundle_encoder_hash: NULL argument");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", bundle->dir, bundle->encoder);
    return file_fnv1a64(path, out);
}

int spw_bundle_same_encoder(const spw_bundle_info *a, const spw_bundle_info *b)
{
    return a && b && a->shared_encoder && b->shared_encoder && a->encoder_hash == b->encoder_hash &&
           a->latent_c == b->latent_c && a->latent_h == b->latent_h && a->latent_w == b->latent_w;
}

/* A bundle that declares a shared encoder must hold exactly that file: its
 * decoder was trained on that encoder's symbols, and a client that encodes
 * once for several bundles relies on it. */
static int check_shared_encoder(const spw_bundle *b)
{
    const spw_bundle_info *in = &b->info;
    if (!in->shared_encoder)
        return 0;
    uint64_t h;
    int rc = spw_bundle_encoder_hash(b, &h);
    if (rc)
        return rc;
    if (h != in->encoder_hash)
        return spw__error(SPW_EMISMATCH,
                          "bundle '%s': %s has fnv1a64 %016llx, not the %016llx of the encoder it "
                          "declares to share with '%s'",
                          in->name, b->encoder, (unsigned long long)h,
                          (unsigned long long)in->encoder_hash, in->encoder_owner);
    return 0;
}

int spw_bundle_load_encoder(const spw_bundle *bundle, spw_model **out)
{
    if (!bundle || !out)
        return spw__error(SPW_EINVAL, "bundle_load_encoder: NULL argument");
    spw_model *m;
    int rc = check_shared_encoder(bundle);
    if (rc || (rc = load_half(bundle, bundle->encoder, &m)))
        return rc;
    const spw_bundle_info *in = &bundle->info;
    int img[3] = {3, in->input_height, in->input_width};
    int lat[3] = {in->latent_c, in->latent_h, in->latent_w};
    if ((rc = check_io(m, "encoder", SPW_F32, img, SPW_I32, lat))) {
        spw_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static int load_decoder(const spw_bundle *bundle, spw_model **out)
{
    spw_model *m;
    int rc = load_half(bundle, bundle->decoder, &m);
    if (rc)
        return rc;
    const spw_bundle_info *in = &bundle->info;
    int lat[3] = {in->latent_c, in->latent_h, in->latent_w};
    int feat[3] = {in->split_c, in->split_h, in->split_w};
    if ((rc = check_io(m, "decoder", SPW_I32, lat, SPW_F32, feat))) {
        spw_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* A constant input of node n, checked for dtype and element count. */
static const void *const_input(const spw_graph *g, const spw_node *n, int k, spw_dtype t,
                               int64_t numel, const char *what)
{
    if (k >= n->n_inputs || n->inputs[k] < 0) {
        spw__error(SPW_EFORMAT, "node '%s': codec table '%s' is missing", n->name, what);
        return NULL;
    }
    const spw_value *v = &g->values[n->inputs[k]];
    if (!(v->flags & SPW_VALUE_CONST) || v->dtype != t ||
        (numel >= 0 && spw__value_numel(v) != numel)) {
        spw__error(SPW_EFORMAT,
                   "node '%s': codec table '%s' must be a constant %s of %lld elements", n->name,
                   what, spw_dtype_name(t), (long long)numel);
        return NULL;
    }
    return v->data;
}

int spw_bundle_load_tables(const spw_bundle *bundle, spw_codec_tables **out)
{
    if (!bundle || !out)
        return spw__error(SPW_EINVAL, "bundle_load_tables: NULL argument");
    spw_model *m;
    int rc = check_shared_encoder(bundle);
    if (rc || (rc = load_half(bundle, bundle->encoder, &m)))
        return rc;
    const spw_graph *g = m->graph;
    const spw_node *q = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == SPW_OP_QUANTIZE)
            q = q ? (const spw_node *)-1 : &g->nodes[i];
    if (!q || q == (const spw_node *)-1) {
        rc = spw__error(SPW_EFORMAT, "encoder must have exactly one ai.splitwire Quantize node");
        goto out;
    }
    int C = bundle->info.latent_c;
    const float *medians = const_input(g, q, 1, SPW_F32, C, "medians");
    const int32_t *lengths = const_input(g, q, 3, SPW_I32, C, "cdf_length");
    const int32_t *offsets = const_input(g, q, 4, SPW_I32, C, "offset");
    if (!medians || !lengths || !offsets) {
        rc = SPW_EFORMAT;
        goto out;
    }
    const spw_value *cdf = q->n_inputs > 2 && q->inputs[2] >= 0 ? &g->values[q->inputs[2]] : NULL;
    if (!cdf || !(cdf->flags & SPW_VALUE_CONST) || cdf->dtype != SPW_I32 || cdf->ndim != 2 ||
        cdf->dims[0] != C) {
        rc = spw__error(SPW_EFORMAT, "node '%s': quantized_cdf must be a constant i32 [%d, L]",
                        q->name, C);
        goto out;
    }
    spw_codec_table_desc desc = {
        .channels = C,
        .cdf_stride = (int)cdf->dims[1],
        .cdf = cdf->data,
        .cdf_length = lengths,
        .offset = offsets,
        .medians = medians,
    };
    rc = spw_codec_tables_create(&desc, out);
out:
    spw_model_free(m);
    return rc;
}

void spw__backbone_path(const char *models_dir, const char *id, char *buf, size_t size)
{
    if (!models_dir || !*models_dir)
        models_dir = getenv("SPW_MODEL_DIR");
    if (!models_dir || !*models_dir)
        models_dir = "build/models";
    snprintf(buf, size, "%s/%s.onnx", models_dir, id);
}

static int load_tail(const spw_bundle *bundle, const char *path, spw_model **out)
{
    spw_model *full;
    int rc = spw_model_load(path, &full);
    if (rc) {
        if (rc == SPW_ENOENT)
            spw__error(rc,
                       "backbone '%s' not found at %s (set SPW_MODEL_DIR or run "
                       "tools/models/fetch_backbone.sh)",
                       bundle->info.backbone, path);
        return rc;
    }
    spw_model *tail;
    rc = spw_model_cut(full, bundle->info.split_value, &tail);
    spw_model_free(full);
    if (rc)
        return spw__error_context(rc, "%s", path);
    const spw_bundle_info *in = &bundle->info;
    spw_tensor d;
    const char *name;
    spw_model_input(tail, 0, &d, &name);
    if (d.ndim != 4 || d.dims[1] != in->split_c || d.dims[2] != in->split_h ||
        d.dims[3] != in->split_w) {
        char have[96];
        rc = spw__error(SPW_EMISMATCH, "split value '%s' of %s is %s, the manifest says Nx%dx%dx%d",
                        name, path, spw_tensor_shape_str(&d, have, sizeof(have)), in->split_c,
                        in->split_h, in->split_w);
        spw_model_free(tail);
        return rc;
    }
    spw_model_output(tail, 0, &d, &name);
    if (d.ndim < 2 || d.dims[d.ndim - 1] != in->num_classes) {
        rc = spw__error(SPW_EMISMATCH, "backbone %s has %lld outputs, the manifest says %d", path,
                        d.ndim ? (long long)d.dims[d.ndim - 1] : 0ll, in->num_classes);
        spw_model_free(tail);
        return rc;
    }
    *out = tail;
    return 0;
}

/* The bundle is const to its users; its cache is behind the lock. */
int spw_bundle_load_decoder(const spw_bundle *bundle, spw_model **out)
{
    if (!bundle || !out)
        return spw__error(SPW_EINVAL, "bundle_load_decoder: NULL argument");
    spw_bundle *b = (spw_bundle *)bundle;
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    if (!b->decoder_model)
        rc = load_decoder(b, &b->decoder_model);
    if (!rc)
        rc = spw__model_share(b->decoder_model, out);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int spw_bundle_load_tail(const spw_bundle *bundle, const char *models_dir, spw_model **out)
{
    if (!bundle || !out)
        return spw__error(SPW_EINVAL, "bundle_load_tail: NULL argument");
    spw_bundle *b = (spw_bundle *)bundle;
    char path[sizeof(b->tail_path)];
    spw__backbone_path(models_dir, b->info.backbone, path, sizeof(path));
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    /* Another models_dir replaces the cached tail (its plans keep theirs). */
    if (b->tail_model && strcmp(b->tail_path, path)) {
        spw_model_free(b->tail_model);
        b->tail_model = NULL;
    }
    if (!b->tail_model && !(rc = load_tail(b, path, &b->tail_model)))
        memcpy(b->tail_path, path, sizeof(path));
    if (!rc)
        rc = spw__model_share(b->tail_model, out);
    pthread_mutex_unlock(&b->lock);
    return rc;
}
