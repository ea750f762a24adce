/* splitwire: split inference runtime. Umbrella header. */
#ifndef SPLITWIRE_H
#define SPLITWIRE_H

#define SPW_VERSION_MAJOR 0
#define SPW_VERSION_MINOR 1
#define SPW_VERSION_PATCH 0

#include "splitwire/status.h"
#include "splitwire/tensor.h"
#include "splitwire/model.h"
#include "splitwire/device.h"
#include "splitwire/image.h"
#include "splitwire/codec.h"
#include "splitwire/bundle.h"
#include "splitwire/net.h"
#include "splitwire/service.h"

#ifdef __cplusplus
extern "C" {
#endif

SPW_API const char *spw_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
