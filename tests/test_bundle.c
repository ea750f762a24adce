/* Model bundles: manifest parsing and validation, the two halves, the codec
 * tables from the encoder, the backbone tail, and the whole pipeline in one
 * process on the committed tiny bundle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "splitwire/splitwire.h"

#define BUNDLE SPW_TEST_DATA "/vectors/bundle/tiny"
#define MODELS SPW_TEST_DATA "/vectors/bundle/models"

static void test_open_and_info(void **state)
{
    (void)state;
    spw_bundle *b;
    assert_int_equal(spw_bundle_open(BUNDLE, &b), 0);
    const spw_bundle_info *in = spw_bundle_get_info(b);
    assert_string_equal(in->name, "tiny-test");
    assert_int_equal(in->input_width, 32);
    assert_int_equal(in->resize, 36);
    assert_int_equal(in->latent_c, 8);
    assert_int_equal(in->split_c, 16);
    assert_int_equal(in->num_classes, 11);
    assert_int_equal(in->label_offset, 1);
    assert_string_equal(in->backbone, "tinynet");
    assert_true(in->bpp < 0); /* not measured */
    spw_bundle_close(b);
}

/* What the last open_edited saw: the manifest (when it opened) and the
 * codec tables' load status (tried even when the encoder failed). */
static spw_bundle_info edited_info;
static int edited_tables_rc;

/* Writes a copy of the tiny manifest with one edit (a literal substitution). */
static int open_edited(const char *from, const char *to, char *dir)
{
    strcpy(dir, "/tmp/spw_bundle_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512], src[512];
    snprintf(src, sizeof(src), "%s/manifest.json", BUNDLE);
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    char text[4096];
    memset(&edited_info, 0, sizeof(edited_info));
    edited_tables_rc = -1;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    assert_non_null(at);
    char edited[4096];
    snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    f = fopen(path, "wb");
    fputs(edited, f);
    fclose(f);
    /* The halves, so load_* can get past the manifest. */
    const char *files[] = {"encoder.onnx", "decoder.onnx"};
    for (int i = 0; i < 2; i++) {
        char a[512], b[512];
        snprintf(a, sizeof(a), "%s/%s", BUNDLE, files[i]);
        snprintf(b, sizeof(b), "%s/%s", dir, files[i]);
        assert_int_equal(symlink(a, b), 0);
    }
    spw_bundle *bundle = NULL;
    int rc = spw_bundle_open(dir, &bundle);
    if (rc == 0) {
        edited_info = *spw_bundle_get_info(bundle);
        spw_codec_tables *t = NULL;
        edited_tables_rc = spw_bundle_load_tables(bundle, &t);
        spw_codec_tables_free(t);
        spw_model *m = NULL;
        rc = spw_bundle_load_encoder(bundle, &m);
        spw_model_free(m);
        spw_bundle_close(bundle);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return rc;
}

static void test_manifest_errors(void **state)
{
    (void)state;
    char dir[64];
    assert_int_equal(open_edited("\"splitwire-bundle\"", "\"other\"", dir), SPW_EFORMAT);
    assert_int_equal(open_edited("\"format_version\": 1", "\"format_version\": 9", dir),
                     SPW_EUNSUPPORTED);
    assert_int_equal(open_edited("\"width\": 32", "\"width\": \"32\"", dir), SPW_EFORMAT);
    assert_non_null(strstr(spw_error_detail(), "'width'"));
    assert_int_equal(open_edited("\"width\": 32", "\"width\": -4", dir), SPW_ERANGE);
    assert_int_equal(open_edited("\"encoder.onnx\"", "\"../encoder.onnx\"", dir), SPW_EFORMAT);
    assert_int_equal(open_edited("\"std\": [", "\"std\": [0, ", dir), SPW_EFORMAT);
    assert_int_equal(open_edited("{", "{{", dir), SPW_EFORMAT);
    /* A manifest that disagrees with the encoder it names. */
    assert_int_equal(open_edited("\"shape\": [\n      8,", "\"shape\": [\n      9,", dir),
                     SPW_EMISMATCH);
    assert_non_null(strstr(spw_error_detail(), "encoder output"));
    spw_bundle *b;
    assert_int_equal(spw_bundle_open("/nonexistent", &b), SPW_ENOENT);
}

/* FNV-1a 64 of the encoder file, against the function's published test
 * vectors: a bundle whose "encoder" holds exactly those bytes (open reads
 * only the manifest). */
static void test_encoder_hash(void **state)
{
    (void)state;
    const char *bytes[] = {"", "a", "foobar"};
    const uint64_t want[] = {0xcbf29ce484222325ull, 0xaf63dc4c8601ec8cull, 0x85944171f73967e8ull};
    char dir[] = "/tmp/spw_bundle_XXXXXX", path[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    assert_int_equal(symlink(BUNDLE "/manifest.json", path), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/encoder.onnx", dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(bytes[i], f);
        fclose(f);
        spw_bundle *b;
        assert_int_equal(spw_bundle_open(dir, &b), 0);
        uint64_t h = 0;
        assert_int_equal(spw_bundle_encoder_hash(b, &h), 0);
        assert_true(h == want[i]);
        spw_bundle_close(b);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* "shared_encoder": parsed and checked against the encoder's bytes when the
 * encoder or its tables load; malformed fields are named. */
static void test_shared_encoder(void **state)
{
    (void)state;
    spw_bundle *b;
    assert_int_equal(spw_bundle_open(BUNDLE, &b), 0);
    assert_int_equal(spw_bundle_get_info(b)->shared_encoder, 0);
    uint64_t h;
    assert_int_equal(spw_bundle_encoder_hash(b, &h), 0);
    spw_bundle_close(b);
    char dir[64], field[256];
    /* upper-case digits read as well */
    snprintf(field, sizeof(field),
             "\"shared_encoder\": {\"owner\": \"tiny-owner\", \"fnv1a64\": \"%016llX\"},\n  "
             "\"files\": {",
             (unsigned long long)h);
    assert_int_equal(open_edited("\"files\": {", field, dir), 0);
    assert_int_equal(edited_tables_rc, 0);
    assert_int_equal(edited_info.shared_encoder, 1);
    assert_string_equal(edited_info.encoder_owner, "tiny-owner");
    assert_true(edited_info.encoder_hash == h);
    spw_bundle_info other = edited_info;
    assert_int_equal(spw_bundle_same_encoder(&edited_info, &other), 1);
    other.encoder_hash ^= 1;
    assert_int_equal(spw_bundle_same_encoder(&edited_info, &other), 0);
    other = edited_info;
    other.latent_c++;
    assert_int_equal(spw_bundle_same_encoder(&edited_info, &other), 0);
    other = edited_info;
    other.shared_encoder = 0;
    assert_int_equal(spw_bundle_same_encoder(&edited_info, &other), 0);
    assert_int_equal(spw_bundle_same_encoder(NULL, &other), 0);

    /* Another encoder than the one declared: refused by both loads. */
    snprintf(field, sizeof(field),
             "\"shared_encoder\": {\"owner\": \"tiny-owner\", \"fnv1a64\": \"%016llx\"},\n  "
             "\"files\": {",
             (unsigned long long)(h ^ 0x100));
    assert_int_equal(open_edited("\"files\": {", field, dir), SPW_EMISMATCH);
    assert_non_null(strstr(spw_error_detail(), "share with 'tiny-owner'"));
    assert_int_equal(edited_tables_rc, SPW_EMISMATCH);

    const char *bad[][2] = {
        {"\"shared_encoder\": 7,", "'shared_encoder'"},
        {"\"shared_encoder\": {\"fnv1a64\": \"0123456789abcdef\"},", "'owner'"},
        {"\"shared_encoder\": {\"owner\": \"x\"},", "'fnv1a64'"},
        {"\"shared_encoder\": {\"owner\": \"x\", \"fnv1a64\": 5},", "'fnv1a64'"},
        {"\"shared_encoder\": {\"owner\": \"x\", \"fnv1a64\": \"0123456789abcde\"},", "16 hex"},
        {"\"shared_encoder\": {\"owner\": \"x\", \"fnv1a64\": \"0123456789abcdef0\"},", "16 hex"},
        {"\"shared_encoder\": {\"owner\": \"x\", \"fnv1a64\": \"0123456789abcdeg\"},", "16 hex"},
        {"\"shared_encoder\": {\"owner\": \"\", \"fnv1a64\": \"0123456789abcdef\"},", "'owner'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(field, sizeof(field), "%s\n  \"files\": {", bad[i][0]);
        assert_int_equal(open_edited("\"files\": {", field, dir), SPW_EFORMAT);
        assert_non_null(strstr(spw_error_detail(), bad[i][1]));
    }
}

static void test_cut(void **state)
{
    (void)state;
    spw_model *full, *tail, *same;
    assert_int_equal(spw_model_load(MODELS "/tinynet.onnx", &full), 0);
    assert_int_equal(spw_model_cut(full, "split", &tail), 0);
    spw_tensor d;
    const char *name;
    assert_int_equal(spw_model_input(tail, 0, &d, &name), 0);
    assert_string_equal(name, "split");
    assert_int_equal(d.ndim, 4);
    assert_int_equal(d.dims[0], -1);
    assert_int_equal(d.dims[1], 16);
    /* Cutting at the input keeps the whole network: same logits. */
    assert_int_equal(spw_model_cut(full, "image", &same), 0);
    float img[2 * 3 * 32 * 32], a[2 * 11], b[2 * 11];
    for (size_t i = 0; i < sizeof(img) / sizeof(img[0]); i++)
        img[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;
    spw_plan *p1, *p2;
    spw_plan_options o = {.backend = "cpu-ref", .batch = 2};
    assert_int_equal(spw_plan_create(full, &o, &p1), 0);
    assert_int_equal(spw_plan_create(same, &o, &p2), 0);
    spw_tensor in = {SPW_F32, SPW_LAYOUT_NCHW, 4, {2, 3, 32, 32}, img};
    spw_tensor oa = {SPW_F32, SPW_LAYOUT_NCHW, 2, {2, 11}, a};
    spw_tensor ob = {SPW_F32, SPW_LAYOUT_NCHW, 2, {2, 11}, b};
    assert_int_equal(spw_plan_run(p1, &in, 1, &oa, 1), 0);
    assert_int_equal(spw_plan_run(p2, &in, 1, &ob, 1), 0);
    assert_memory_equal(a, b, sizeof(a));
    spw_plan_free(p1);
    spw_plan_free(p2);
    spw_model_free(same);
    assert_int_equal(spw_model_cut(full, "nope", &same), SPW_ENOENT);
    assert_int_equal(spw_model_cut(full, "fc.w", &same), SPW_EINVAL);
    spw_model_free(tail);
    spw_model_free(full);
}

/* Image -> encoder -> symbols -> stream -> symbols -> decoder -> tail -> logits. */
static void test_pipeline_in_process(void **state)
{
    (void)state;
    spw_bundle *b;
    spw_model *enc, *dec, *tail;
    spw_codec_tables *tables;
    assert_int_equal(spw_bundle_open(BUNDLE, &b), 0);
    assert_int_equal(spw_bundle_load_encoder(b, &enc), 0);
    assert_int_equal(spw_bundle_load_decoder(b, &dec), 0);
    assert_int_equal(spw_bundle_load_tables(b, &tables), 0);
    assert_int_equal(spw_bundle_load_tail(b, MODELS, &tail), 0);
    assert_int_equal(spw_codec_tables_channels(tables), 8);

    spw_plan *pe, *pd, *pt;
    spw_plan_options o = {.backend = "cpu-ref", .batch = 1};
    assert_int_equal(spw_plan_create(enc, &o, &pe), 0);
    assert_int_equal(spw_plan_create(dec, &o, &pd), 0);
    assert_int_equal(spw_plan_create(tail, &o, &pt), 0);

    /* A committed image with PyTorch's answer for it (tools/make_references.py). */
    json_error_t jerr;
    json_t *root = json_load_file(SPW_TEST_DATA "/vectors/reference/expected.json", 0, &jerr);
    assert_non_null(root);
    json_t *ref = json_array_get(
        json_object_get(json_object_get(json_object_get(root, "bundles"), "tiny"), "images"), 0);
    assert_non_null(ref);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SPW_SOURCE_DIR,
             json_string_value(json_object_get(ref, "file")));
    spw_image image;
    assert_int_equal(spw_image_load(path, &image), 0);
    const spw_bundle_info *in = spw_bundle_get_info(b);
    spw_preprocess pp = {in->resize, in->input_width, in->input_height, {0}, {0}};
    memcpy(pp.mean, in->mean, sizeof(pp.mean));
    memcpy(pp.std, in->std, sizeof(pp.std));
    float img[3 * 32 * 32];
    assert_int_equal(spw_image_to_tensor(&image, &pp, img), 0);
    spw_image_release(&image);
    int32_t sym[8 * 8 * 8], back[8 * 8 * 8];
    float feat[16 * 8 * 8], logits[11];
    spw_tensor ti = {SPW_F32, SPW_LAYOUT_NCHW, 4, {1, 3, 32, 32}, img};
    spw_tensor ts = {SPW_I32, SPW_LAYOUT_NCHW, 4, {1, 8, 8, 8}, sym};
    spw_tensor tb = {SPW_I32, SPW_LAYOUT_NCHW, 4, {1, 8, 8, 8}, back};
    spw_tensor tf = {SPW_F32, SPW_LAYOUT_NCHW, 4, {1, 16, 8, 8}, feat};
    spw_tensor tl = {SPW_F32, SPW_LAYOUT_NCHW, 2, {1, 11}, logits};
    assert_int_equal(spw_plan_run(pe, &ti, 1, &ts, 1), 0);
    /* The image was chosen with no latent near a rounding boundary: the
     * symbols are exact. */
    json_t *js = json_object_get(ref, "symbols");
    long long sum = 0, abs_sum = 0;
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < sizeof(sym) / sizeof(sym[0]); i++) {
        sum += sym[i];
        abs_sum += sym[i] < 0 ? -sym[i] : sym[i];
        for (int k = 0; k < 4; k++)
            h = (h ^ (uint8_t)((uint32_t)sym[i] >> (8 * k))) * 0x01000193u;
    }
    assert_int_equal(sum, json_integer_value(json_object_get(js, "sum")));
    assert_int_equal(abs_sum, json_integer_value(json_object_get(js, "abs_sum")));
    assert_int_equal(h, json_integer_value(json_object_get(js, "fnv1a")));

    spw_codec *codec;
    spw_codec_config cc = {SPW_CODEC_PLAIN, 1, 0};
    assert_int_equal(spw_codec_create(tables, &cc, &codec), 0);
    unsigned char stream[8192];
    size_t len;
    assert_int_equal(spw_codec_encode_buf(codec, sym, 8, 8, 8, stream, sizeof(stream), &len), 0);
    assert_true(len >= 8 && len % 4 == 0);
    assert_int_equal(spw_codec_decode_buf(codec, stream, len, 8, 8, 8, back, NULL), 0);
    assert_memory_equal(sym, back, sizeof(sym));

    assert_int_equal(spw_plan_run(pd, &tb, 1, &tf, 1), 0);
    assert_int_equal(spw_plan_run(pt, &tf, 1, &tl, 1), 0);
    /* fp32 kernels in another order: 1e-4 is ample for logits of size ~1 and
     * far below what a wrong weight, activation or dequantisation gives. */
    json_t *jl = json_object_get(ref, "logits");
    assert_int_equal(json_array_size(jl), 11);
    for (int i = 0; i < 11; i++)
        assert_true(fabs(logits[i] - json_number_value(json_array_get(jl, (size_t)i))) < 1e-4);
    json_decref(root);

    spw_codec_free(codec);
    spw_plan_free(pe);
    spw_plan_free(pd);
    spw_plan_free(pt);
    spw_codec_tables_free(tables);
    spw_model_free(enc);
    spw_model_free(dec);
    spw_model_free(tail);
    spw_bundle_close(b);
}

static void test_tail_missing_backbone(void **state)
{
    (void)state;
    spw_bundle *b;
    spw_model *tail;
    assert_int_equal(spw_bundle_open(BUNDLE, &b), 0);
    assert_int_equal(spw_bundle_load_tail(b, "/nonexistent", &tail), SPW_ENOENT);
    assert_non_null(strstr(spw_error_detail(), "tinynet"));
    spw_bundle_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_info),
        cmocka_unit_test(test_manifest_errors),
        cmocka_unit_test(test_encoder_hash),
        cmocka_unit_test(test_shared_encoder),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_pipeline_in_process),
        cmocka_unit_test(test_tail_missing_backbone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
