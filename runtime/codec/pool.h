/* Worker pool used by the tiled codec. */
#ifndef SPW_CODEC_POOL_H
#define SPW_CODEC_POOL_H

#include "runtime/core/internal.h"

typedef struct spw__pool spw__pool;
typedef void (*spw__pool_fn)(void *ctx, int item);

/* Starts `workers` threads (the caller of spw__pool_run is one more). */
int spw__pool_create(int workers, spw__pool **out);
void spw__pool_free(spw__pool *pool);
/* Runs fn(ctx, i) for i in [0, nitems) and returns when all are done.
 * pool may be NULL (everything runs in the caller). */
void spw__pool_run(spw__pool *pool, spw__pool_fn fn, void *ctx, int nitems);

#endif
