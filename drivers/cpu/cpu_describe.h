/* The CPU backends' describe slot (cpu_describe.c). Not installed. */
#ifndef SPW_DRIVERS_CPU_DESCRIBE_H
#define SPW_DRIVERS_CPU_DESCRIBE_H

#include "splitwire/device.h"

/* The host processor as backend `backend`'s one device: kernels names its
 * kernels (spw_device_info.driver), threads the threads a plan runs on by
 * default (0: every online core). *out is allocated with spw__malloc. */
int spw__cpu_describe(const char *backend, const char *kernels, int threads, spw_device_info **out,
                      int *n);

#endif
