/* The service internals a client or tool built on the library may use. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/core/internal.h"
#include "runtime/service/service_internal.h"

int spw_topk(const float *scores, int n, int label_offset, int k, spw_result *r)
{
    if (!scores || !r || n < 1 || k < 1)
        return spw__error(SPW_EINVAL, "spw_topk: %d scores, k %d", n, k);
    spw__topk(scores, n, label_offset, k, r);
    return 0;
}

int spw_result_unpack(const void *buf, size_t len, spw_result *r, uint32_t *server_us)
{
    if (!buf || !r)
        return spw__error(SPW_EINVAL, "spw_result_unpack: no buffer or result");
    uint32_t us = 0;
    int rc = spw__result_unpack(buf, len, r, &us);
    if (!rc && server_us)
        *server_us = us;
    return rc;
}

int spw_backbone_path(const char *models_dir, const char *id, char *buf, size_t size)
{
    if (!id || !buf || !size)
        return spw__error(SPW_EINVAL, "spw_backbone_path: no id or buffer");
    if (!models_dir || !*models_dir)
        models_dir = getenv("SPW_MODEL_DIR");
    if (!models_dir || !*models_dir)
        models_dir = "build/models";
    int n = snprintf(buf, size, "%s/%s.onnx", models_dir, id);
    if (n < 0 || (size_t)n >= size)
        return spw__error(SPW_ENOSPC, "backbone path longer than %zu bytes", size);
    return 0;
}

int spw_image_request_send(spw_net *net, uint64_t request_id, const void *data, size_t len,
                           uint32_t timeout_ms)
{
    if (!net || (!data && len) || len > UINT32_MAX)
        return spw__error(SPW_EINVAL, "spw_image_request_send: no net or data (%zu bytes)", len);
    spw_net_msg hdr = {.type = SPW_NET_REQUEST,
                       .flags = SPW_REQ_IMAGE,
                       .request_id = request_id,
                       .timeout_ms = timeout_ms};
    /* u32 length, the image, zeros to a whole word. */
    uint8_t head[SPW_IMAGE_REQ_HEADER] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                                          (uint8_t)(len >> 24)};
    static const uint8_t zeros[4] = {0};
    spw_net_seg seg[3] = {
        {head, sizeof(head)}, {(void *)data, len}, {(void *)zeros, (4 - len % 4) % 4}};
    return spw_net_sendv(net, &hdr, seg, seg[2].size ? 3 : 2);
}
