/* Protocol version 2's cryptography (docs/PROTOCOL.md): keys, the Noise IK
 * handshake that gives each session fresh keys, per-frame authenticated
 * encryption with a replay window, and stateless cookies. Not installed.
 *
 * Everything here is a pure function of its inputs (keys, bytes, the time
 * passed in), built on libsodium's X25519, SHA-256, HMAC-SHA-256,
 * ChaCha20-Poly1305 (IETF) and AES-256-GCM; nothing here does I/O or reads a
 * clock.
 */
#ifndef SPW_NETPATH_SESSION_H
#define SPW_NETPATH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPW_KEY_LEN 32
#define SPW_TAG_LEN 16
#define SPW_COOKIE_LEN 16
/* Replay window: counters this far behind the highest one seen are refused. */
#define SPW_REPLAY_WINDOW 2048u

typedef struct spw_keypair {
    uint8_t pub[SPW_KEY_LEN];
    uint8_t priv[SPW_KEY_LEN];
} spw_keypair;

/* Initialises libsodium once; SPW_EUNSUPPORTED when it cannot start. */
int spw__crypto_init(void);
int spw__keypair_generate(spw_keypair *kp);
/* The public key of a private one. */
int spw__keypair_from_private(const uint8_t priv[SPW_KEY_LEN], spw_keypair *kp);

/* Key files. A private key file holds "splitwire-private-key <hex>\n" and is
 * written with mode 0600 (reading refuses one that others may read); a
 * public key file holds "splitwire-public-key <hex>\n". A public key may
 * also be given as its 64 hex digits directly (spw__key_parse_public). */
int spw__key_write_private(const char *path, const spw_keypair *kp);
int spw__key_write_public(const char *path, const uint8_t pub[SPW_KEY_LEN]);
int spw__key_read_private(const char *path, spw_keypair *kp);
int spw__key_read_public(const char *path, uint8_t pub[SPW_KEY_LEN]);
/* A public key from 64 hex digits, or from the file they name. */
int spw__key_parse_public(const char *hex_or_path, uint8_t pub[SPW_KEY_LEN]);
void spw__key_hex(const uint8_t key[SPW_KEY_LEN], char out[2 * SPW_KEY_LEN + 1]);

/* Frame AEADs, as bits of a HELLO's offer and the WELCOME's choice.
 * ChaCha20-Poly1305 is always offered; AES-256-GCM where the CPU has AES-NI
 * and CLMUL (about twice as fast there). */
#define SPW_AEAD_CHACHA20 1u
#define SPW_AEAD_AES256GCM 2u
#define SPW_AEAD_ALL (SPW_AEAD_CHACHA20 | SPW_AEAD_AES256GCM)

/* The AEADs this machine can run (ChaCha20-Poly1305 at least). */
uint32_t spw__aead_available(void);
/* The one an offer and an acceptable set have in common, AES-256-GCM
 * first; 0 when none. */
uint32_t spw__aead_pick(uint32_t offer, uint32_t accept);
const char *spw__aead_name(uint32_t aead);

/* ---- handshake (Noise_IK_25519_ChaChaPoly_SHA256) ------------------------
 *
 *   <- s                          the client knows the server's static key
 *   -> e, es, s, ss, {ts, offer}  HELLO: ephemeral, client static
 *                                 (encrypted), an 8-byte timestamp and the
 *                                 4-byte AEAD offer (encrypted)
 *   <- e, ee, se, {sid, aead}     WELCOME: ephemeral, the 4-byte session id
 *                                 and the 4-byte AEAD chosen
 *
 * The handshake itself always uses ChaCha20-Poly1305; the offer and the
 * choice travel inside its encrypted payloads, so both are authenticated
 * and in the transcript: an altered offer or choice fails the handshake.
 * HELLO payload is 32 + 48 + 28 = 108 bytes, WELCOME's 32 + 24 = 56: the
 * answer is always smaller than the question. */
#define SPW_HELLO_LEN 108u
#define SPW_WELCOME_LEN 56u

/* Keys of one direction of a session, and its counter. */
typedef struct spw_cipher {
    uint8_t key[SPW_KEY_LEN];
    uint64_t next; /* counter of the next frame sealed */
    uint32_t aead; /* SPW_AEAD_* */
} spw_cipher;

/* Which counters of the receiving direction were seen. */
typedef struct spw_replay {
    uint64_t top; /* highest counter accepted + 1; 0 = none yet */
    uint64_t bits[SPW_REPLAY_WINDOW / 64];
} spw_replay;

typedef struct spw_session_keys {
    uint32_t id;
    uint32_t aead; /* SPW_AEAD_*, both directions */
    spw_cipher tx;
    uint8_t rx_key[SPW_KEY_LEN];
    spw_replay replay;
    uint8_t peer_static[SPW_KEY_LEN]; /* the client's key, as the server saw it */
} spw_session_keys;

/* The initiator's state between HELLO and WELCOME. */
typedef struct spw_hs_initiator {
    uint8_t ck[32], h[32], k[32];
    bool has_k;
    uint64_t n;
    spw_keypair e;
    spw_keypair s;
    uint8_t rs[SPW_KEY_LEN];
    uint32_t offer; /* the AEADs the HELLO offered */
} spw_hs_initiator;

/* Writes HELLO (SPW_HELLO_LEN bytes) from the client's static key s to the
 * server whose static key is rs, offering the AEADs of `offer` (SPW_AEAD_*);
 * `timestamp` must grow from one HELLO to the next of the same client key
 * (wall-clock nanoseconds do). */
int spw__hs_hello(spw_hs_initiator *st, const spw_keypair *s, const uint8_t rs[SPW_KEY_LEN],
                  uint64_t timestamp, uint32_t offer, uint8_t out[SPW_HELLO_LEN]);
/* Reads WELCOME; on success the session keys (tx: client to server) with
 * the AEAD the server chose, which must be one of those offered. */
int spw__hs_read_welcome(spw_hs_initiator *st, const uint8_t msg[SPW_WELCOME_LEN],
                         spw_session_keys *out);

/* The server's side, in one step: reads HELLO with its static key s, and on
 * success picks the AEAD (spw__aead_pick of the offer and `accept`), writes
 * WELCOME for session `id` and fills the keys (tx: server to client), the
 * client's static key and its timestamp (the caller refuses one not newer
 * than the last of that key). SPW_EAUTH for anything that does not
 * authenticate, SPW_EUNSUPPORTED when no offered AEAD is acceptable. */
int spw__hs_respond(const spw_keypair *s, const uint8_t msg[SPW_HELLO_LEN], uint32_t id,
                    uint32_t accept, uint8_t out[SPW_WELCOME_LEN], spw_session_keys *keys,
                    uint64_t *timestamp);

/* ---- frames -------------------------------------------------------------
 *
 * A frame's payload is encrypted and authenticated with the header bytes
 * (ad, adlen) as associated data; the 12-byte nonce is the session id
 * (4 bytes, little-endian) then the 64-bit counter (little-endian). */
void spw__frame_nonce(uint32_t id, uint64_t counter, uint8_t nonce[12]);
/* Seals len bytes from src into dst (may be src) with c's AEAD and its next
 * counter, returned in *counter; the tag goes to tag. */
int spw__frame_seal(spw_cipher *c, uint32_t id, const uint8_t *ad, size_t adlen, const uint8_t *src,
                    uint8_t *dst, size_t len, uint8_t tag[SPW_TAG_LEN], uint64_t *counter);
/* Opens in place with AEAD `aead` after checking the replay window; the
 * window moves only when the tag verified. SPW_EAUTH (forged or corrupt) or
 * SPW_EREPLAY. */
int spw__frame_open(uint32_t aead, const uint8_t key[SPW_KEY_LEN], spw_replay *r, uint32_t id,
                    uint64_t counter, const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
                    const uint8_t tag[SPW_TAG_LEN]);

/* Replay window on its own (spw__frame_open uses it). */
bool spw__replay_check(const spw_replay *r, uint64_t counter);
void spw__replay_accept(spw_replay *r, uint64_t counter);

/* ---- cookies -------------------------------------------------------------
 *
 * A stateless cookie proves that a peer receives at its address: HMAC of the
 * address under a secret that changes every period; the current and the
 * previous secret are accepted. */
typedef struct spw_cookie_jar {
    uint8_t secret[2][SPW_KEY_LEN];
    uint64_t epoch; /* period index of secret[0] */
} spw_cookie_jar;

void spw__cookie_jar_init(spw_cookie_jar *j, uint64_t now_period);
/* Rotates the secrets when the period changed. */
void spw__cookie_jar_tick(spw_cookie_jar *j, uint64_t now_period);
void spw__cookie_make(const spw_cookie_jar *j, uint32_t ip, uint16_t port,
                      uint8_t out[SPW_COOKIE_LEN]);
bool spw__cookie_check(const spw_cookie_jar *j, uint32_t ip, uint16_t port,
                       const uint8_t cookie[SPW_COOKIE_LEN]);

#endif
