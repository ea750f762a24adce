/* splitwire eval: the baseline codecs' round trips on synthetic images, the
 * top-1 metrics on hand-made scores, the class table, file lists. */
#include <math.h>
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

#include "spw_test.h"

#include "runtime/core/internal.h"
#include "tools/eval/eval.h"

/* Smooth gradients plus a few edges: compressible, but not trivially. */
static spw_image synthetic(int w, int h)
{
    spw_image img = {w, h, malloc((size_t)w * (size_t)h * 3)};
    assert_non_null(img.rgb);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            bool box = x > w / 4 && x < w / 2 && y > h / 3 && y < 2 * h / 3;
            p[0] = (uint8_t)(box ? 230 : 255 * x / w);
            p[1] = (uint8_t)(box ? 40 : 255 * y / h);
            p[2] = (uint8_t)(128 + 100 * sin((x + y) / 9.0));
        }
    return img;
}

static double mean_abs_error(const spw_image *a, const spw_image *b)
{
    double sum = 0;
    size_t n = (size_t)a->width * (size_t)a->height * 3;
    for (size_t i = 0; i < n; i++)
        sum += fabs((double)a->rgb[i] - (double)b->rgb[i]);
    return sum / (double)n;
}

/* Each codec at a high, a middle and a low quality: the size comes back, the
 * error is bounded and grows as the quality falls, and so do the bytes. */
static void roundtrip_codec(spw_eval_codec c)
{
    if (!spw_eval_codec_available(c)) {
        spw_image img = synthetic(16, 16), out;
        size_t bytes;
        assert_int_equal(spw_eval_roundtrip(c, 50, &img, &out, &bytes), SPW_EUNSUPPORTED);
        free(img.rgb);
        spw_skip("%s: built without its library", spw_eval_codec_name(c));
    }
    /* Odd sizes exercise the chroma subsampling edges. */
    spw_image img = synthetic(97, 61);
    const int q[3] = {90, 50, 10};
    size_t bytes[3];
    double err[3];
    for (int i = 0; i < 3; i++) {
        spw_image out;
        assert_int_equal(spw_eval_roundtrip(c, q[i], &img, &out, &bytes[i]), 0);
        assert_int_equal(out.width, img.width);
        assert_int_equal(out.height, img.height);
        err[i] = mean_abs_error(&img, &out);
        print_message("%s q%d: %zu bytes, mean abs error %.2f\n", spw_eval_codec_name(c), q[i],
                      bytes[i], err[i]);
        spw_image_release(&out);
    }
    assert_true(bytes[0] > bytes[1] && bytes[1] > bytes[2] && bytes[2] > 0);
    assert_true(err[0] < 4.0);
    assert_true(err[1] < 8.0);
    assert_true(err[2] < 25.0);
    assert_true(err[0] <= err[2]);
    free(img.rgb);
}

static void test_jpeg(void **state)
{
    (void)state;
    roundtrip_codec(SPW_EVAL_JPEG);
}

static void test_webp(void **state)
{
    (void)state;
    roundtrip_codec(SPW_EVAL_WEBP);
}

static void test_avif(void **state)
{
    (void)state;
    roundtrip_codec(SPW_EVAL_AVIF);
}

static void test_codec_errors(void **state)
{
    (void)state;
    spw_image img = synthetic(8, 8), out;
    size_t bytes;
    assert_int_equal(spw_eval_roundtrip(SPW_EVAL_JPEG, 0, &img, &out, &bytes), SPW_ERANGE);
    assert_int_equal(spw_eval_roundtrip(SPW_EVAL_JPEG, 101, &img, &out, &bytes), SPW_ERANGE);
    assert_int_equal(spw_eval_roundtrip(SPW_EVAL_NONE, 50, &img, &out, &bytes), SPW_EINVAL);
    assert_int_equal(spw_eval_roundtrip(SPW_EVAL_JPEG, 50, NULL, &out, &bytes), SPW_EINVAL);
    spw_image empty = {0, 0, img.rgb};
    assert_int_equal(spw_eval_roundtrip(SPW_EVAL_JPEG, 50, &empty, &out, &bytes), SPW_EINVAL);
    free(img.rgb);

    spw_eval_codec c;
    assert_int_equal(spw_eval_codec_parse("webp", &c), 0);
    assert_int_equal(c, SPW_EVAL_WEBP);
    assert_int_equal(spw_eval_codec_parse("png", &c), -1);
    assert_string_equal(spw_eval_codec_name(SPW_EVAL_AVIF), "avif");
    /* The documented quality -> AV1 quantizer mapping. */
    assert_int_equal(spw_eval_avif_quantizer(100), 0);
    assert_int_equal(spw_eval_avif_quantizer(50), 32);
    assert_int_equal(spw_eval_avif_quantizer(10), 57);
    assert_int_equal(spw_eval_avif_quantizer(0), 63);
}

/* ---- metrics ------------------------------------------------------------- */

static spw_eval_classes three_classes(void)
{
    spw_eval_classes cl = {.n = 3};
    strcpy(cl.wnid[0], "n01440764");
    cl.in1k[0] = 0;
    strcpy(cl.wnid[1], "n02102040");
    cl.in1k[1] = 217;
    strcpy(cl.wnid[2], "n03888257");
    cl.in1k[2] = 701;
    return cl;
}

static void test_top1(void **state)
{
    (void)state;
    float s[1001];
    for (int i = 0; i < 1001; i++)
        s[i] = -5.0f + 0.001f * (float)(i % 7);
    s[0] = 9.0f;       /* background: never a 1000-way answer */
    s[1 + 500] = 4.0f; /* best ImageNet class, not in the set */
    s[1 + 217] = 3.0f; /* best of the set */
    s[1 + 701] = 2.5f;
    spw_eval_classes cl = three_classes();
    assert_int_equal(spw_eval_top1(s, 1001, 1, NULL, 0), 500);
    assert_int_equal(spw_eval_top1(s, 1001, 1, cl.in1k, cl.n), 217);
    /* Without a background output the whole vector counts. */
    assert_int_equal(spw_eval_top1(s + 1, 1000, 0, NULL, 0), 500);
    /* Ties go to the lower index, in both forms. */
    s[1 + 701] = 3.0f;
    int rev[3] = {701, 217, 0};
    assert_int_equal(spw_eval_top1(s, 1001, 1, rev, 3), 217);
    /* Labels outside the scores are ignored; none valid gives -1. */
    int bad[2] = {5000, -7};
    assert_int_equal(spw_eval_top1(s, 1001, 1, bad, 2), -1);
    assert_int_equal(spw_eval_top1(s, 1, 1, NULL, 0), -1);
}

static void test_accumulate(void **state)
{
    (void)state;
    spw_eval_classes cl = three_classes();
    static float s[1001];
    spw_eval_acc a = {0};
    /* Image 1 (truth 217): best overall 500, best of the set 217. */
    memset(s, 0, sizeof(s));
    s[1 + 500] = 5;
    s[1 + 217] = 4;
    spw_eval_acc_add(&a, &cl, s, 1001, 1, 217, 1000, 0.5);
    /* Image 2 (truth 0): right both ways. */
    memset(s, 0, sizeof(s));
    s[1 + 0] = 5;
    spw_eval_acc_add(&a, &cl, s, 1001, 1, 0, 3000, 1.5);
    /* Image 3: unknown truth, counted for the rate only. */
    spw_eval_acc_add(&a, &cl, s, 1001, 1, -1, 2000, 1.0);
    assert_int_equal(a.images, 3);
    assert_int_equal(a.judged, 2);
    assert_int_equal(a.right1000, 1);
    assert_int_equal(a.right10, 2);
    assert_true(fabs(spw_eval_mean_bytes(&a) - 2000.0) < 1e-9);
    assert_true(fabs(spw_eval_mean_bpp(&a) - 1.0) < 1e-9);
    assert_true(fabs(spw_eval_top1_1000(&a) - 0.5) < 1e-9);
    assert_true(fabs(spw_eval_top1_10(&a) - 1.0) < 1e-9);

    /* A model without 1000 ImageNet labels is not judged: NaN accuracy. */
    spw_eval_acc b = {0};
    spw_eval_acc_add(&b, &cl, s, 11, 1, 0, 100, 0.1);
    assert_int_equal(b.images, 1);
    assert_int_equal(b.judged, 0);
    assert_true(isnan(spw_eval_top1_1000(&b)));
    assert_true(isnan(spw_eval_top1_10(&b)));
    spw_eval_acc empty = {0};
    assert_true(isnan(spw_eval_mean_bytes(&empty)));
}

static void test_fidelity(void **state)
{
    (void)state;
    /* log_softmax: probabilities 1/6, 2/6, 3/6, whatever the offset. */
    float x[3] = {5 + logf(1), 5 + logf(2), 5 + logf(3)}, lp[3];
    spw_eval_log_softmax(x, 3, lp);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(exp(lp[i]) - (i + 1) / 6.0) < 1e-6);

    spw_eval_acc a = {0};
    assert_true(isnan(spw_eval_agreement(&a)));
    assert_true(isnan(spw_eval_mean_kl(&a)));
    /* The same distribution, shifted logits: agrees, KL 0. */
    float same[3] = {-1 + logf(1), -1 + logf(2), -1 + logf(3)};
    spw_eval_acc_fidelity(&a, same, 3, 0, lp, 3, 2);
    assert_int_equal(a.compared, 1);
    assert_int_equal(a.agreed, 1);
    assert_true(spw_eval_mean_kl(&a) < 1e-6);

    /* Reference (1/2, 1/2) (top-1 0: ties go low), this (1/4, 3/4):
     * KL = 1/2 ln(4/3); the top-1 labels differ. */
    spw_eval_acc b = {0};
    float half[2] = {0, 0}, ref2[2], q[2] = {logf(1), logf(3)};
    spw_eval_log_softmax(half, 2, ref2);
    spw_eval_acc_fidelity(&b, q, 2, 0, ref2, 2, spw_eval_top1(half, 2, 0, NULL, 0));
    assert_int_equal(b.agreed, 0);
    assert_true(fabs(spw_eval_mean_kl(&b) - 0.5 * log(4.0 / 3.0)) < 1e-6);
    assert_true(fabs(spw_eval_agreement(&b)) < 1e-12);

    /* With a background output (label_offset 1) the label is argmax - 1 and
     * the background never wins, even when it is the largest score; the KL
     * still covers all outputs, as PyTorch's check does. */
    spw_eval_acc c = {0};
    float bg[3] = {9, 1, 2};
    spw_eval_acc_fidelity(&c, bg, 3, 1, lp, 3, 1);
    assert_int_equal(c.agreed, 1);
    assert_true(spw_eval_mean_kl(&c) > 0.1);

    /* Not compared: another output count, or no reference label. */
    spw_eval_acc_fidelity(&c, bg, 2, 1, lp, 3, 1);
    spw_eval_acc_fidelity(&c, bg, 3, 1, lp, 3, -1);
    assert_int_equal(c.compared, 1);
    assert_true(fabs(spw_eval_agreement(&c) - 1.0) < 1e-12);
}

/* ---- class table and files ------------------------------------------------ */

static char tmpdir[256];

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/spw_test_eval_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_classes(void **state)
{
    (void)state;
    put("classes.tsv", "idx\twnid\tname\timagenet1k_idx\n"
                       "0\tn01440764\ttench\t0\n"
                       "1\tn02102040\tEnglish springer\t217\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/classes.tsv", tmpdir);
    spw_eval_classes cl;
    assert_int_equal(spw_eval_classes_load(p, &cl), 0);
    assert_int_equal(cl.n, 2);
    assert_string_equal(cl.wnid[1], "n02102040");
    assert_int_equal(cl.in1k[1], 217);
    assert_int_equal(spw_eval_truth(&cl, "/d/val/n02102040/x.jpg"), 217);
    assert_int_equal(spw_eval_truth(&cl, "val/n01440764/y.JPEG"), 0);
    /* Only the file's own directory counts, and it must match exactly. */
    assert_int_equal(spw_eval_truth(&cl, "/n02102040/other/x.jpg"), -1);
    assert_int_equal(spw_eval_truth(&cl, "/d/n0210204/x.jpg"), -1);
    assert_int_equal(spw_eval_truth(&cl, "x.jpg"), -1);
    assert_int_equal(spw_eval_truth(&cl, "/d/val/n02102040//x.jpg"), 217);

    /* Found from a file two directories below the table, and from its
     * directory; none above an unrelated path. */
    char found[1024], dir[600];
    snprintf(dir, sizeof(dir), "%s/val/n02102040", tmpdir);
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/val", tmpdir);
    mkdir(sub, 0755);
    mkdir(dir, 0755);
    char file[700];
    snprintf(file, sizeof(file), "%s/x.jpg", dir);
    spw_eval_classes cf;
    assert_int_equal(spw_eval_classes_find(file, &cf, found, sizeof(found)), 0);
    assert_int_equal(cf.n, 2);
    assert_int_equal(spw_eval_classes_find(dir, &cf, found, sizeof(found)), 0);
    assert_int_equal(spw_eval_classes_find("/proc/self", &cf, found, sizeof(found)), SPW_ENOENT);

    /* A table of all 1000 ImageNet classes (imagenet-sample-1k's) loads. */
    char big[1024];
    snprintf(big, sizeof(big), "%s/classes1k.tsv", tmpdir);
    FILE *bf = fopen(big, "w");
    assert_non_null(bf);
    fprintf(bf, "idx\twnid\tname\timagenet1k_idx\n");
    for (int i = 0; i < 1000; i++)
        fprintf(bf, "%d\tn%08d\tclass %d\t%d\n", i, i, i, i);
    fclose(bf);
    spw_eval_classes *all = malloc(sizeof(*all));
    assert_non_null(all);
    assert_int_equal(spw_eval_classes_load(big, all), 0);
    assert_int_equal(all->n, 1000);
    assert_int_equal(spw_eval_truth(all, "/x/n00000999/y.jpg"), 999);
    free(all);

    put("bad.tsv", "idx\twnid\tname\timagenet1k_idx\n0\tn1\tx\t1234\n");
    snprintf(p, sizeof(p), "%s/bad.tsv", tmpdir);
    assert_int_equal(spw_eval_classes_load(p, &cl), SPW_EFORMAT);
    put("empty.tsv", "nothing here\n");
    snprintf(p, sizeof(p), "%s/empty.tsv", tmpdir);
    assert_int_equal(spw_eval_classes_load(p, &cl), SPW_EFORMAT);
    snprintf(p, sizeof(p), "%s/missing.tsv", tmpdir);
    assert_int_equal(spw_eval_classes_load(p, &cl), SPW_ENOENT);
}

static void test_files(void **state)
{
    (void)state;
    char p[512];
    const char *dirs[2] = {"b", "a"};
    for (int d = 0; d < 2; d++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, dirs[d]);
        assert_int_equal(mkdir(p, 0755), 0);
        for (int i = 0; i < 5; i++) {
            char rel[64];
            snprintf(rel, sizeof(rel), "%s/%d.jpg", dirs[d], 4 - i);
            put(rel, "x");
        }
    }
    put("a/notes.txt", "not an image");
    put("a/pic.PNG", "x");
    snprintf(p, sizeof(p), "%s", tmpdir);
    spw_eval_files f;
    assert_int_equal(spw_eval_files_collect(p, &f), 0);
    assert_int_equal(f.n, 11);
    /* Sorted: directories in name order, files in name order within. */
    assert_non_null(strstr(f.paths[0], "/a/0.jpg"));
    assert_non_null(strstr(f.paths[5], "/a/pic.PNG"));
    assert_non_null(strstr(f.paths[6], "/b/0.jpg"));
    /* An even spread keeps both directories. */
    spw_eval_files_limit(&f, 4);
    assert_int_equal(f.n, 4);
    int in_a = 0;
    for (int i = 0; i < f.n; i++)
        in_a += strstr(f.paths[i], "/a/") != NULL;
    assert_int_equal(in_a, 2);
    spw_eval_files_limit(&f, 0); /* no-op */
    assert_int_equal(f.n, 4);
    spw_eval_files_free(&f);

    snprintf(p, sizeof(p), "%s/nope", tmpdir);
    assert_int_equal(spw_eval_files_collect(p, &f), SPW_ENOENT);
    snprintf(p, sizeof(p), "%s/a/0.jpg", tmpdir);
    assert_int_equal(spw_eval_files_collect(p, &f), SPW_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_avif),
        cmocka_unit_test(test_codec_errors),
        cmocka_unit_test(test_top1),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_fidelity),
        cmocka_unit_test_setup_teardown(test_classes, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_files, setup_tmp, teardown_tmp),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
