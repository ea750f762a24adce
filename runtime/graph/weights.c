/* A model's shared weights: built once, counted, handed to every plan. */
#include <string.h>

#include "drivers/backend.h"
#include "runtime/graph/plan.h"

/* Guards the lazy creation of model->weights (models are used const from
 * several threads); everything inside a weights object has its own lock. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

spw_weights *spw__weights_ref(spw_weights *w)
{
    __atomic_add_fetch(&w->refs, 1, __ATOMIC_RELAXED);
    return w;
}

void spw__weights_unref(spw_weights *w)
{
    if (!w || __atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL))
        return;
    for (int i = 0; i < SPW_WEIGHTS_SLOTS; i++) {
        spw_backend *be = w->slot[i].be;
        if (be && w->slot[i].state && be->ops->weights_release)
            be->ops->weights_release(be, w->slot[i].state);
    }
    spw__free(w->picks);
    spw__graph_free(w->folded); /* borrows from graph: goes first */
    spw__graph_free(w->graph);
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->pick_lock);
    spw__free(w);
}

spw_weights *spw__model_weights(const spw_model *model)
{
    spw_model *m = (spw_model *)model; /* logically const: built once, under the lock */
    pthread_mutex_lock(&create_lock);
    spw_weights *w = m->weights;
    if (!w) {
        w = spw__calloc(1, sizeof(*w));
        if (!w) {
            spw__error(SPW_ENOMEM, "out of memory for a model's weights");
        } else {
            w->refs = 1; /* the model's */
            w->graph = m->graph;
            pthread_mutex_init(&w->lock, NULL);
            pthread_mutex_init(&w->pick_lock, NULL);
            m->weights = w;
        }
    }
    pthread_mutex_unlock(&create_lock);
    return w;
}

/* Constant passes once per model: Identity aliases dropped, BatchNorm folded
 * into convolutions. They read constants and structure only, never the batch,
 * so the result holds at every batch; fusion, which compares activation
 * shapes, runs per plan. Constants left without a live reader are not kept
 * twice: the folded graph points at the imported graph's data. */
static int fold(const spw_graph *g, spw_graph **out)
{
    spw_graph *f;
    int rc = spw__graph_share(g, &f);
    if (rc)
        return rc;
    if ((rc = spw__pass_drop_identity(f)) || (rc = spw__pass_fold_batchnorm(f))) {
        spw__graph_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int spw__weights_graph(spw_weights *w, bool fused, const spw_graph **out)
{
    if (!fused) {
        *out = w->graph;
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (!w->folded)
        rc = fold(w->graph, &w->folded);
    *out = w->folded;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int spw__weights_backend(spw_weights *w, spw_backend *be, void **state)
{
    *state = NULL;
    if (!be->ops->weights_create)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    int free_slot = -1, i;
    for (i = 0; i < SPW_WEIGHTS_SLOTS; i++) {
        if (w->slot[i].be == be)
            break;
        if (!w->slot[i].be && free_slot < 0)
            free_slot = i;
    }
    if (i < SPW_WEIGHTS_SLOTS) {
        *state = w->slot[i].state;
    } else if (free_slot < 0) {
        rc = spw__error(SPW_ENOMEM, "weights: no slot left for backend %s", be->ops->name);
    } else if (!(rc = be->ops->weights_create(be, w, &w->slot[free_slot].state))) {
        w->slot[free_slot].be = be;
        *state = w->slot[free_slot].state;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int spw__model_share(const spw_model *model, spw_model **out)
{
    spw_weights *w = spw__model_weights(model);
    if (!w)
        return SPW_ENOMEM;
    spw_model *m = spw__calloc(1, sizeof(*m));
    if (!m)
        return spw__error(SPW_ENOMEM, "out of memory sharing a model");
    m->graph = w->graph;
    m->weights = spw__weights_ref(w);
    *out = m;
    return 0;
}
