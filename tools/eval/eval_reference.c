/* The uncompressed backbone as a yardstick: its input convention (from the
 * importer's sidecar) and its top-1 on a list of files. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval/eval.h"

bool spw_eval_read_sidecar(const char *onnx, spw_preprocess *pp, int *label_offset)
{
    char path[4096];
    size_t len = strlen(onnx);
    if (len < 5 || strcmp(onnx + len - 5, ".onnx") ||
        snprintf(path, sizeof(path), "%.*s.json", (int)(len - 5), onnx) >= (int)sizeof(path))
        return false;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return false;
    json_t *in = json_object_get(root, "input"), *out = json_object_get(root, "output");
    json_t *zp = json_object_get(in, "zero_point"), *sc = json_object_get(in, "scale");
    json_t *bg = json_object_get(out, "background_index");
    bool ok = json_is_number(zp) && json_is_number(sc) && json_number_value(sc) > 0;
    if (ok) {
        /* real = (q - zero_point) * scale for 8-bit q: mean = zp / 255, std = 1 / (255 scale). */
        for (int c = 0; c < 3; c++) {
            pp->mean[c] = (float)(json_number_value(zp) / 255.0);
            pp->std[c] = (float)(1.0 / (255.0 * json_number_value(sc)));
        }
        if (json_is_integer(bg))
            *label_offset = json_integer_value(bg) == 0 ? 1 : 0;
    }
    json_decref(root);
    return ok;
}

int spw_eval_reference_top1(const char *onnx, const spw_preprocess *pp_default, int label_offset,
                            const char *backend, const spw_eval_files *fl, int *top1)
{
    spw_model *model = NULL;
    spw_plan *plan = NULL;
    float *input = NULL, *scores = NULL;
    int rc = spw_model_load(onnx, &model);
    if (rc)
        return rc;
    spw_tensor in;
    if ((rc = spw_model_input(model, 0, &in, NULL)))
        goto fail_model;
    if (in.ndim != 4 || in.dims[1] != 3 || in.dims[2] <= 0 || in.dims[3] <= 0) {
        rc = spw_error_set(SPW_ESHAPE, "%s: input is not [N, 3, H, W]", onnx);
        goto fail_model;
    }
    spw_preprocess pp = *pp_default;
    pp.crop_h = (int)in.dims[2];
    pp.crop_w = (int)in.dims[3];
    spw_eval_read_sidecar(onnx, &pp, &label_offset);
    spw_plan_options po = {.backend = backend, .batch = 1};
    if ((rc = spw_plan_create(model, &po, &plan)))
        goto fail_model;
    spw_tensor in_desc, out_desc;
    spw_plan_input(plan, 0, &in_desc);
    spw_plan_output(plan, 0, &out_desc);
    int classes = (int)spw_tensor_numel(&out_desc);
    input = calloc((size_t)spw_tensor_numel(&in_desc), sizeof(float));
    scores = calloc((size_t)classes, sizeof(float));
    if (!input || !scores) {
        rc = spw_error_set(SPW_ENOMEM, "out of memory");
        goto fail_plan;
    }
    in_desc.dtype = out_desc.dtype = SPW_F32;
    in_desc.data = input;
    out_desc.data = scores;
    for (int i = 0; i < fl->n; i++) {
        spw_image img;
        top1[i] = -1;
        if (spw_image_load(fl->paths[i], &img))
            continue; /* the caller reports unreadable files itself */
        int st = spw_image_to_tensor(&img, &pp, input);
        spw_image_release(&img);
        if (st)
            continue;
        if ((rc = spw_plan_run(plan, &in_desc, 1, &out_desc, 1)))
            goto fail_plan;
        top1[i] = spw_eval_top1(scores, classes, label_offset, NULL, 0);
    }
fail_plan:
    free(scores);
    free(input);
    spw_plan_free(plan);
fail_model:
    spw_model_free(model);
    return rc;
}
