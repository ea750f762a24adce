/* splitwire eval: image codecs for the baselines, data sets and accuracy
 * metrics. Shared by cmd_eval.c, tests/test_eval.c, serve and classify (file
 * lists, class tables, sidecars, the image decoder) and bench e2e. */
#ifndef SPW_TOOLS_EVAL_H
#define SPW_TOOLS_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "splitwire/splitwire.h"

/* ---- image codecs (eval_codec.c) ----------------------------------------- */

typedef enum spw_eval_codec {
    SPW_EVAL_NONE, /* the original file, as it is */
    SPW_EVAL_JPEG, /* libjpeg-turbo, 4:2:0, standard tables scaled by quality */
    SPW_EVAL_WEBP, /* libwebp lossy, method 4 */
    SPW_EVAL_AVIF, /* libavif + aom, 8-bit 4:2:0, quantizer from quality */
    SPW_EVAL_NCODECS
} spw_eval_codec;

const char *spw_eval_codec_name(spw_eval_codec c);
/* 0 and *out set, or -1 for an unknown name. */
int spw_eval_codec_parse(const char *name, spw_eval_codec *out);
/* false when the CLI was built without the library (libwebp, libavif). */
bool spw_eval_codec_available(spw_eval_codec c);

/* The AV1 quantizer (0 best .. 63 worst) used for AVIF quality q (0..100):
 * round((100 - q) * 63 / 100), the mapping libavif 1.x uses for its own
 * quality setting, so numbers compare with newer tools. */
int spw_eval_avif_quantizer(int quality);
/* libaom speed for AVIF encoding (0 slowest .. 10 fastest). */
#define SPW_EVAL_AVIF_SPEED 8

/*
 * Encodes `in` with codec c at quality 1..100 in memory and decodes it again
 * into *out (release with spw_image_release). *bytes = encoded size. Returns
 * 0 or a negative SPW_E* (SPW_ENOTSUP for a codec left out of the build).
 * SPW_EVAL_NONE is not a round trip: SPW_EINVAL.
 */
int spw_eval_roundtrip(spw_eval_codec c, int quality, const spw_image *in, spw_image *out,
                       size_t *bytes);

/* Encodes `in` with codec c (not SPW_EVAL_NONE) at quality 1..100 into
 * *data (malloc'd; release with free()) of *bytes bytes. */
int spw_eval_encode(spw_eval_codec c, int quality, const spw_image *in, unsigned char **data,
                    size_t *bytes);
/* Decodes an image by its content: WebP, AVIF (when built in), JPEG or PNG. */
int spw_eval_decode(const void *data, size_t size, spw_image *out);

/* ---- data set and metrics (eval_metrics.c) ------------------------------- */

#define SPW_EVAL_MAX_CLASSES 1000

/* The classes of an Imagenette-style set: class directory (WordNet id) ->
 * ImageNet-1k index, from classes.tsv (index, wnid, name, imagenet1k_idx). */
typedef struct spw_eval_classes {
    int n;
    char wnid[SPW_EVAL_MAX_CLASSES][32];
    int in1k[SPW_EVAL_MAX_CLASSES];
} spw_eval_classes;

/* Reads classes.tsv; 0, or a negative SPW_E* with a detail. */
int spw_eval_classes_load(const char *path, spw_eval_classes *out);
/* Finds classes.tsv in `start` (a directory, or a file's directory) or up to
 * two directories above it (class directory, split directory, data set) and
 * loads it; its path goes to found[size]. SPW_ENOENT when there is none. */
int spw_eval_classes_find(const char *start, spw_eval_classes *out, char *found, size_t size);
/* ImageNet-1k index of a file from its class directory (the last directory
 * in path), or -1. */
int spw_eval_truth(const spw_eval_classes *cl, const char *path);

/*
 * Top-1 label from scores[n] (label = index - label_offset). With subset
 * NULL: argmax over every label >= 0, i.e. without a background output.
 * Otherwise argmax over the n_subset labels listed (indices outside the
 * scores are ignored); -1 when none is valid. Ties go to the lower index.
 */
int spw_eval_top1(const float *scores, int n, int label_offset, const int *subset, int n_subset);

/* Running totals of one method at one setting. */
typedef struct spw_eval_acc {
    long images;    /* evaluated */
    long failed;    /* the codec or the model failed on the image */
    long judged;    /* images whose truth was known and comparable */
    long right1000; /* top-1 over the 1000 ImageNet classes */
    long right10;   /* top-1 over the set's classes only */
    double bytes, bpp;
    long compared; /* images also run through the reference (spw_eval_acc_fidelity) */
    long agreed;   /* ... whose top-1 label is the reference's */
    double kl;     /* sum of KL(reference || this) in nats */
} spw_eval_acc;

/*
 * Adds one image: its coded size and bpp, and when truth >= 0 and the model
 * has 1000 labels besides background (n - label_offset == 1000), its
 * 1000-way and set-restricted top-1 against truth.
 */
void spw_eval_acc_add(spw_eval_acc *a, const spw_eval_classes *cl, const float *scores, int n,
                      int label_offset, int truth, size_t bytes, double bpp);

/* log_softmax of x[n] into out[n] (the two may alias). */
void spw_eval_log_softmax(const float *x, int n, float *out);

/*
 * Fidelity of one image's scores[n] to a reference run of the same image
 * (the uncompressed backbone on the original file): ref_logp[n] are the
 * reference's log-probabilities over the same n outputs and ref_top1 its
 * label (argmax - label_offset, background excluded). Counts whether the
 * top-1 labels agree and adds KL(reference || this) over all n outputs. An
 * image whose output count differs from the reference's (ref_n), or without
 * a reference label, is not compared.
 */
void spw_eval_acc_fidelity(spw_eval_acc *a, const float *scores, int n, int label_offset,
                           const float *ref_logp, int ref_n, int ref_top1);

/* Means and accuracies; accuracies are NaN when nothing was judged, the
 * fidelity measures NaN when nothing was compared. */
double spw_eval_mean_bytes(const spw_eval_acc *a);
double spw_eval_mean_bpp(const spw_eval_acc *a);
double spw_eval_top1_1000(const spw_eval_acc *a);
double spw_eval_top1_10(const spw_eval_acc *a);
double spw_eval_agreement(const spw_eval_acc *a);
double spw_eval_mean_kl(const spw_eval_acc *a);

/* Image files (.jpg .jpeg .png by name, what spw_image_decode reads) below dir, sorted,
 * recursing into subdirectories. 0, or SPW_ENOENT when dir is not a readable
 * directory. */
typedef struct spw_eval_files {
    char **paths;
    int n, cap;
} spw_eval_files;

int spw_eval_files_collect(const char *dir, spw_eval_files *out);
/* Appends one path (copied); 0 or SPW_ENOMEM. */
int spw_eval_files_add(spw_eval_files *f, const char *path);
/* Keeps `limit` files spread evenly over the sorted list (every class is
 * represented), or all when limit <= 0 or >= n. */
void spw_eval_files_limit(spw_eval_files *f, int limit);
void spw_eval_files_free(spw_eval_files *f);

/* ---- the uncompressed backbone as a yardstick (eval_reference.c) -------- */

/*
 * The input convention from the importer's sidecar (FILE.json beside
 * FILE.onnx, real = (q - zero_point) * scale for 8-bit pixels q): sets
 * pp->mean/std and, when the sidecar names a background output,
 * *label_offset. false (nothing changed) without a usable sidecar.
 */
bool spw_eval_read_sidecar(const char *onnx, spw_preprocess *pp, int *label_offset);

/*
 * Top-1 label of the uncompressed backbone `onnx` for each file, batch 1 on
 * `backend` (NULL: auto): top1[i] = argmax - label_offset, or -1 where the
 * file cannot be read or preprocessed. pp gives resize and normalisation
 * (the sidecar's convention wins), the crop is the model's input size.
 * 0, or a negative SPW_E* when the model cannot be loaded or run.
 */
int spw_eval_reference_top1(const char *onnx, const spw_preprocess *pp, int label_offset,
                            const char *backend, const spw_eval_files *fl, int *top1);

#endif
