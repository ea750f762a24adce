/* splitwire: model bundles (manifest.json + encoder.onnx + decoder.onnx). */
#ifndef SPLITWIRE_BUNDLE_H
#define SPLITWIRE_BUNDLE_H

#include "splitwire/codec.h"
#include "splitwire/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPW_BUNDLE_FORMAT_VERSION 1
#define SPW_BUNDLE_NAME_MAX 128

/* The manifest, validated. See docs/MODEL_BUNDLE.md. */
typedef struct spw_bundle_info {
    char name[SPW_BUNDLE_NAME_MAX];
    char version[32];
    int input_width, input_height;
    int resize; /* shorter side before the centre crop; 0 = none */
    float mean[3], std[3];
    int latent_c, latent_h, latent_w;
    int rate_index; /* rate point within its family, 0 = highest rate */
    double lambda;
    char backbone[SPW_BUNDLE_NAME_MAX];    /* backbone id, e.g. mobilenet_v2_1.0_224 */
    char split_value[SPW_BUNDLE_NAME_MAX]; /* value in the backbone the decoder restores */
    int split_c, split_h, split_w;
    int num_classes;  /* backbone outputs */
    int label_offset; /* class index = output index - label_offset (1 for a background class) */
    double bpp, top1; /* measured; negative when not measured */
    uint16_t id;      /* stable id of the bundle on the wire (hash of name and version) */
    /* Manifest "shared_encoder": this bundle's encoder is also the encoder of
     * other bundles (e.g. decoders for other backbones behind one client
     * encoder). encoder_owner names the bundle it was trained in,
     * encoder_hash is the FNV-1a 64 of the encoder file's bytes, checked
     * whenever the encoder is read. shared_encoder 0: no such field. */
    int shared_encoder;
    char encoder_owner[SPW_BUNDLE_NAME_MAX];
    uint64_t encoder_hash;
} spw_bundle_info;

typedef struct spw_bundle spw_bundle;

/* Reads and validates dir/manifest.json; the ONNX files load on demand. */
SPW_API int spw_bundle_open(const char *dir, spw_bundle **out);
SPW_API void spw_bundle_close(spw_bundle *bundle);
SPW_API const spw_bundle_info *spw_bundle_get_info(const spw_bundle *bundle);
SPW_API const char *spw_bundle_dir(const spw_bundle *bundle);

/* Loads the client half (input image tensor -> int32 symbols) or the server
 * half (symbols -> split features), checking their shapes against the manifest
 * (and the encoder's bytes against a declared shared_encoder hash:
 * SPW_EMISMATCH when they differ; spw_bundle_load_tables checks the same).
 * The server half (and the tail below) is read once per bundle: later loads
 * return new handles on the same weights, so plans made from each share them.
 * Free every handle with spw_model_free. */
SPW_API int spw_bundle_load_encoder(const spw_bundle *bundle, spw_model **out);
SPW_API int spw_bundle_load_decoder(const spw_bundle *bundle, spw_model **out);

/* FNV-1a 64 of the bundle's encoder file, the hash "shared_encoder" declares.
 * Two bundles whose encoders hash alike produce the same symbols for the same
 * input, so a client can encode once for either. */
SPW_API int spw_bundle_encoder_hash(const spw_bundle *bundle, uint64_t *out);
/* 1 when both bundles declare a shared encoder with the same hash and the
 * same latent shape, else 0 (also for NULL). */
SPW_API int spw_bundle_same_encoder(const spw_bundle_info *a, const spw_bundle_info *b);

/* The entropy coder's tables, read from the initializers of the encoder's
 * ai.splitwire Quantize node (medians, quantized_cdf, cdf_length, offset).
 * Client and server build them from the same file, so they always match. */
SPW_API int spw_bundle_load_tables(const spw_bundle *bundle, spw_codec_tables **out);

/* Finds <models_dir>/<backbone>.onnx (models_dir NULL: $SPW_MODEL_DIR, else
 * build/models under the current directory), and cuts it at the split value. */
SPW_API int spw_bundle_load_tail(const spw_bundle *bundle, const char *models_dir, spw_model **out);
/* The path spw_bundle_load_tail reads for backbone id: "<dir>/<id>.onnx" with
 * dir models_dir, else $SPW_MODEL_DIR, else build/models (NULL or empty
 * counts as unset). SPW_ENOSPC when it does not fit in size bytes. */
SPW_API int spw_backbone_path(const char *models_dir, const char *id, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
