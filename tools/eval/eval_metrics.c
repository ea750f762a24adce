/* splitwire eval: the data set (files, classes, ground truth) and the
 * accuracy and rate bookkeeping. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/eval/eval.h"

int spw_eval_classes_load(const char *path, spw_eval_classes *out)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "r");
    if (!f)
        return spw_error_set(SPW_ENOENT, "%s: %s", path, strerror(errno));
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        int idx, in1k;
        char wnid[32];
        /* index, wnid, name (may hold spaces), ImageNet-1k index; the header
         * line does not parse and is skipped. */
        if (sscanf(line, "%d\t%31s\t%*[^\t]\t%d", &idx, wnid, &in1k) != 3)
            continue;
        if (out->n == SPW_EVAL_MAX_CLASSES) {
            fclose(f);
            return spw_error_set(SPW_ERANGE, "%s: more than %d classes", path,
                                 SPW_EVAL_MAX_CLASSES);
        }
        if (in1k < 0 || in1k >= 1000) {
            fclose(f);
            return spw_error_set(SPW_EFORMAT, "%s: class %s has ImageNet index %d", path, wnid,
                                 in1k);
        }
        snprintf(out->wnid[out->n], sizeof(out->wnid[0]), "%s", wnid);
        out->in1k[out->n++] = in1k;
    }
    fclose(f);
    if (!out->n)
        return spw_error_set(SPW_EFORMAT,
                             "%s: no 'index<TAB>wnid<TAB>name<TAB>imagenet1k_idx' rows", path);
    return 0;
}

int spw_eval_classes_find(const char *start, spw_eval_classes *out, char *found, size_t size)
{
    struct stat st;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", start);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof(dir), ".");
    }
    const char *up[3] = {"", "/..", "/../.."};
    for (int i = 0; i < 3; i++) {
        snprintf(found, size, "%s%s/classes.tsv", dir, up[i]);
        if (access(found, R_OK) == 0)
            return spw_eval_classes_load(found, out);
    }
    memset(out, 0, sizeof(*out));
    return spw_error_set(SPW_ENOENT, "no classes.tsv in or above %s", dir);
}

int spw_eval_truth(const spw_eval_classes *cl, const char *path)
{
    const char *end = strrchr(path, '/');
    /* "class//file.jpg" (a directory given with a trailing slash) names the
     * same class directory. */
    while (end && end > path && end[-1] == '/')
        end--;
    if (!end || end == path)
        return -1;
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t len = (size_t)(end - start);
    for (int i = 0; i < cl->n; i++)
        if (strlen(cl->wnid[i]) == len && !strncmp(start, cl->wnid[i], len))
            return cl->in1k[i];
    return -1;
}

int spw_eval_top1(const float *s, int n, int label_offset, const int *subset, int n_subset)
{
    int best = -1;
    if (!subset) {
        for (int i = label_offset > 0 ? label_offset : 0; i < n; i++)
            if (best < 0 || s[i] > s[best])
                best = i;
        return best < 0 ? -1 : best - label_offset;
    }
    for (int j = 0; j < n_subset; j++) {
        int i = subset[j] + label_offset;
        if (i < 0 || i >= n)
            continue;
        /* On a tie the lower output index wins, as in the full argmax. */
        if (best < 0 || s[i] > s[best] || (s[i] == s[best] && i < best))
            best = i;
    }
    return best < 0 ? -1 : best - label_offset;
}

void spw_eval_acc_add(spw_eval_acc *a, const spw_eval_classes *cl, const float *scores, int n,
                      int label_offset, int truth, size_t bytes, double bpp)
{
    a->images++;
    a->bytes += (double)bytes;
    a->bpp += bpp;
    /* Imagenette truth is an ImageNet-1k index: only comparable for such a model. */
    if (truth < 0 || !scores || n - label_offset != 1000)
        return;
    a->judged++;
    a->right1000 += spw_eval_top1(scores, n, label_offset, NULL, 0) == truth;
    if (cl)
        a->right10 += spw_eval_top1(scores, n, label_offset, cl->in1k, cl->n) == truth;
}

static double log_sum_exp(const float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    return mx + log(sum);
}

void spw_eval_log_softmax(const float *x, int n, float *out)
{
    if (n <= 0)
        return;
    double lse = log_sum_exp(x, n);
    for (int i = 0; i < n; i++)
        out[i] = (float)(x[i] - lse);
}

void spw_eval_acc_fidelity(spw_eval_acc *a, const float *scores, int n, int label_offset,
                           const float *ref_logp, int ref_n, int ref_top1)
{
    if (!scores || !ref_logp || n != ref_n || n <= 0 || ref_top1 < 0)
        return;
    double lse = log_sum_exp(scores, n), kl = 0;
    for (int i = 0; i < n; i++)
        kl += exp((double)ref_logp[i]) * ((double)ref_logp[i] - ((double)scores[i] - lse));
    a->compared++;
    a->agreed += spw_eval_top1(scores, n, label_offset, NULL, 0) == ref_top1;
    /* Rounding can leave a tiny negative sum for identical distributions. */
    a->kl += kl > 0 ? kl : 0;
}

double spw_eval_mean_bytes(const spw_eval_acc *a)
{
    return a->images ? a->bytes / (double)a->images : NAN;
}

double spw_eval_mean_bpp(const spw_eval_acc *a)
{
    return a->images ? a->bpp / (double)a->images : NAN;
}

double spw_eval_top1_1000(const spw_eval_acc *a)
{
    return a->judged ? (double)a->right1000 / (double)a->judged : NAN;
}

double spw_eval_top1_10(const spw_eval_acc *a)
{
    return a->judged ? (double)a->right10 / (double)a->judged : NAN;
}

double spw_eval_agreement(const spw_eval_acc *a)
{
    return a->compared ? (double)a->agreed / (double)a->compared : NAN;
}

double spw_eval_mean_kl(const spw_eval_acc *a)
{
    return a->compared ? a->kl / (double)a->compared : NAN;
}

/* ---- files --------------------------------------------------------------- */

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char ext[8] = {0};
    for (int i = 0; i < 7 && dot[1 + i]; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

int spw_eval_files_add(spw_eval_files *f, const char *path)
{
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 256;
        char **p = realloc(f->paths, sizeof(char *) * (size_t)cap);
        if (!p)
            return spw_error_set(SPW_ENOMEM, "out of memory for %d file names", cap);
        f->paths = p;
        f->cap = cap;
    }
    if (!(f->paths[f->n] = strdup(path)))
        return spw_error_set(SPW_ENOMEM, "out of memory");
    f->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect(const char *dir, spw_eval_files *f, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return spw_error_set(SPW_ENOENT, "%s: %s", dir, strerror(errno));
    spw_eval_files here = {0};
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char sub[4096];
            if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
                continue;
            rc = spw_eval_files_add(&here, sub);
        }
    closedir(d);
    if (here.n)
        qsort(here.paths, (size_t)here.n, sizeof(char *), cmp_str);
    for (int i = 0; i < here.n && !rc; i++) {
        struct stat st;
        if (stat(here.paths[i], &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8)
                rc = collect(here.paths[i], f, depth + 1);
        } else if (is_image_name(here.paths[i])) {
            rc = spw_eval_files_add(f, here.paths[i]);
        }
    }
    spw_eval_files_free(&here);
    return rc;
}

int spw_eval_files_collect(const char *dir, spw_eval_files *out)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(dir, &st) != 0)
        return spw_error_set(SPW_ENOENT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return spw_error_set(SPW_ENOENT, "%s is not a directory", dir);
    int rc = collect(dir, out, 0);
    if (rc)
        spw_eval_files_free(out);
    return rc;
}

void spw_eval_files_limit(spw_eval_files *f, int limit)
{
    if (limit <= 0 || limit >= f->n)
        return;
    /* Keep the middle file of each of `limit` equal strides of the sorted
     * list: an even spread, so every class directory keeps its share. */
    int kept = 0;
    for (int i = 0; i < f->n; i++) {
        long long pick = ((2LL * kept + 1) * f->n) / (2LL * limit);
        if (kept < limit && i == pick)
            f->paths[kept++] = f->paths[i];
        else
            free(f->paths[i]);
    }
    f->n = kept;
}

void spw_eval_files_free(spw_eval_files *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->paths[i]);
    free(f->paths);
    memset(f, 0, sizeof(*f));
}
