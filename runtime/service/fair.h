/* Fair admission and batch forming across peers: the server's request
 * queue. Not installed.
 *
 * A peer is what sends requests: a protocol 2 session, or a protocol 1
 * source address and port. Two rules (docs/SERVICE.md, "Fairness"):
 *
 * - Admission, a dynamic threshold: of `cap` requests the server holds
 *   (admitted and not yet answered, queued or computing), a peer may add one
 *   while it holds fewer than the free room, held(peer) < cap - held(all).
 *   One flooder stops near cap/2 and k flooders near cap/(k+1) each, so
 *   there is always room for a peer that holds little, without a fixed
 *   per-peer split that would idle the server when one peer is alone.
 * - Batches are formed when a worker is free, round robin over the peers
 *   with queued requests (deficit round robin with a quantum of one request:
 *   every request of a bundle costs the same batch slot), so a peer with one
 *   request waits for at most the batch running and its own.
 *
 * Pure: the caller passes times and does the I/O; nothing here allocates
 * after spw__fair_init. Not thread-safe (the serving thread owns it).
 */
#ifndef SPW_SERVICE_FAIR_H
#define SPW_SERVICE_FAIR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct spw_fair_item {
    void *msg;
    uint64_t t_arrival;
    int peer;  /* the peer's slot: pass to spw__fair_release once answered */
    int queue; /* bundle (or the image queue); -1: slot free */
    int next;  /* next item of the same peer, or the free list; -1: none */
} spw_fair_item;

typedef struct spw_fair_peer {
    uint64_t key;
    int held;   /* admitted, not yet released; 0: the slot is free */
    int queued; /* of those, still waiting for a batch */
    int head, tail;
} spw_fair_peer;

typedef struct spw_fair {
    int cap, n_queues;
    spw_fair_item *items; /* cap */
    int free_item;
    spw_fair_peer *peers; /* cap: a peer holds at least one request */
    int *ring;            /* peers with queued requests, in serving order */
    int n_ring, cursor;   /* the next batch starts at ring[cursor] */
    int held, queued;
    int *queued_in;   /* per queue */
    uint64_t *oldest; /* per queue: scratch of spw__fair_pick */
} spw_fair;

/* The admission rule alone. */
bool spw__fair_admits(int held_by_peer, int held_total, int cap);

int spw__fair_init(spw_fair *f, int cap, int n_queues);
void spw__fair_fini(spw_fair *f);

/* Queues msg from peer `key` for `queue`: 0, or SPW_EBUSY when the peer is
 * over its share (f unchanged; answer "busy"). */
int spw__fair_push(spw_fair *f, uint64_t key, int queue, void *msg, uint64_t t_arrival);

/* The queue whose batch should be formed now: one with max_batch requests
 * waiting, or whose oldest has waited max_wait (the oldest first); -1 when
 * none. *wake (may be NULL): when the next queue becomes due, UINT64_MAX
 * when nothing waits. */
int spw__fair_pick(spw_fair *f, int max_batch, uint64_t now, uint64_t max_wait, uint64_t *wake);

/* Takes up to max requests of `queue`, one per peer per round, continuing
 * the round where the last batch stopped; returns how many (in out). They
 * stay held by their peers until released. */
int spw__fair_take(spw_fair *f, int queue, int max, spw_fair_item *out);

/* A request taken earlier was answered (or dropped). */
void spw__fair_release(spw_fair *f, int peer);

/* How many requests peer `key` holds (0 for one not known). */
int spw__fair_held(const spw_fair *f, uint64_t key);

#endif
