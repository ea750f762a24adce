/* Protocol version 2's cryptography: the Noise IK handshake, frame sealing
 * with a replay window, cookies and key files, on libsodium's primitives.
 * The handshake follows the Noise Protocol Framework (revision 34), pattern
 * IK with 25519, ChaChaPoly and SHA256; docs/PROTOCOL.md says why IK. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "netpath/proto.h"
#include "netpath/session.h"
#include "splitwire/net.h"
#include "runtime/core/internal.h"

#define HASHLEN 32
#define DHLEN 32

static const char protocol_name[] = "Noise_IK_25519_ChaChaPoly_SHA256";
static const char prologue[] = "splitwire wire protocol 2";

int spw__crypto_init(void)
{
    /* sodium_init is idempotent and thread-safe: 1 means already done. */
    if (sodium_init() < 0)
        return spw__error(SPW_EUNSUPPORTED, "libsodium cannot initialise");
    return 0;
}

uint32_t spw__aead_available(void)
{
    /* Needs sodium_init first (CPU feature detection). */
    if (spw__crypto_init())
        return SPW_AEAD_CHACHA20;
    return SPW_AEAD_CHACHA20 | (crypto_aead_aes256gcm_is_available() ? SPW_AEAD_AES256GCM : 0u);
}

uint32_t spw__aead_pick(uint32_t offer, uint32_t accept)
{
    uint32_t common = offer & accept;
    if (common & SPW_AEAD_AES256GCM)
        return SPW_AEAD_AES256GCM;
    return common & SPW_AEAD_CHACHA20;
}

const char *spw__aead_name(uint32_t aead)
{
    switch (aead) {
    case SPW_AEAD_CHACHA20:
        return "chacha20-poly1305";
    case SPW_AEAD_AES256GCM:
        return "aes-256-gcm";
    }
    return "none";
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int spw__keypair_generate(spw_keypair *kp)
{
    int rc = spw__crypto_init();
    if (rc)
        return rc;
    randombytes_buf(kp->priv, SPW_KEY_LEN);
    return spw__keypair_from_private(kp->priv, kp);
}

int spw__keypair_from_private(const uint8_t priv[SPW_KEY_LEN], spw_keypair *kp)
{
    int rc = spw__crypto_init();
    if (rc)
        return rc;
    if (kp->priv != priv)
        memcpy(kp->priv, priv, SPW_KEY_LEN);
    if (crypto_scalarmult_base(kp->pub, kp->priv) != 0)
        return spw__error(SPW_EINVAL, "not a usable X25519 private key");
    return 0;
}

/* ---- symmetric state (Noise section 5.2) ---------------------------------- */

typedef struct symmetric {
    uint8_t ck[HASHLEN], h[HASHLEN], k[32];
    bool has_k;
    uint64_t n;
} symmetric;

static void hmac(const uint8_t key[HASHLEN], const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen, uint8_t out[HASHLEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, HASHLEN);
    crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen)
        crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

/* HKDF with two outputs (Noise section 4.3). */
static void hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikmlen,
                  uint8_t out1[HASHLEN], uint8_t out2[HASHLEN])
{
    uint8_t temp[HASHLEN], one = 1, two[HASHLEN + 1];
    hmac(ck, ikm, ikmlen, NULL, 0, temp);
    hmac(temp, &one, 1, NULL, 0, out1);
    memcpy(two, out1, HASHLEN);
    two[HASHLEN] = 2;
    hmac(temp, two, sizeof(two), NULL, 0, out2);
    sodium_memzero(temp, sizeof(temp));
    sodium_memzero(two, sizeof(two));
}

static void mix_hash(symmetric *s, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, s->h, HASHLEN);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, s->h);
}

static void mix_key(symmetric *s, const uint8_t *ikm, size_t len)
{
    uint8_t k[HASHLEN];
    hkdf2(s->ck, ikm, len, s->ck, k);
    memcpy(s->k, k, 32);
    s->has_k = true;
    s->n = 0;
    sodium_memzero(k, sizeof(k));
}

static void symmetric_init(symmetric *s, const uint8_t responder_static[SPW_KEY_LEN])
{
    memset(s, 0, sizeof(*s));
    /* The name is exactly HASHLEN bytes: h is the name itself. */
    memcpy(s->h, protocol_name, HASHLEN);
    memcpy(s->ck, s->h, HASHLEN);
    mix_hash(s, (const uint8_t *)prologue, sizeof(prologue) - 1);
    mix_hash(s, responder_static, SPW_KEY_LEN); /* pre-message: <- s */
}

static void noise_nonce(uint64_t n, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* EncryptAndHash with a key set (always so where this is used). */
static void encrypt_and_hash(symmetric *s, const uint8_t *pt, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    noise_nonce(s->n++, nonce);
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, len, s->h, HASHLEN, NULL, nonce,
                                              s->k);
    mix_hash(s, out, len + SPW_TAG_LEN);
}

static int decrypt_and_hash(symmetric *s, const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    noise_nonce(s->n++, nonce);
    unsigned long long plen;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, ct, len + SPW_TAG_LEN, s->h,
                                                  HASHLEN, nonce, s->k) != 0)
        return SPW_EAUTH;
    mix_hash(s, ct, len + SPW_TAG_LEN);
    return 0;
}

static int dh(const uint8_t priv[DHLEN], const uint8_t pub[DHLEN], uint8_t out[DHLEN])
{
    /* libsodium refuses a low-order point (an all-zero shared secret). */
    return crypto_scalarmult(out, priv, pub) == 0 ? 0 : SPW_EAUTH;
}

static void split(const symmetric *s, uint8_t k1[32], uint8_t k2[32])
{
    hkdf2(s->ck, NULL, 0, k1, k2);
}

/* ---- handshake ------------------------------------------------------------ */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int spw__hs_hello(spw_hs_initiator *st, const spw_keypair *s, const uint8_t rs[SPW_KEY_LEN],
                  uint64_t timestamp, uint32_t offer, uint8_t out[SPW_HELLO_LEN])
{
    int rc = spw__keypair_generate(&st->e);
    if (rc)
        return rc;
    symmetric sym;
    symmetric_init(&sym, rs);
    uint8_t shared[DHLEN], payload[12];
    /* -> e */
    memcpy(out, st->e.pub, SPW_KEY_LEN);
    mix_hash(&sym, st->e.pub, SPW_KEY_LEN);
    /* es */
    if ((rc = dh(st->e.priv, rs, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    /* s */
    encrypt_and_hash(&sym, s->pub, SPW_KEY_LEN, out + 32);
    /* ss */
    if ((rc = dh(s->priv, rs, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    /* payload: the timestamp and the AEAD offer */
    put64(payload, timestamp);
    put32(payload + 8, offer);
    encrypt_and_hash(&sym, payload, sizeof(payload), out + 32 + 48);
    st->offer = offer;
    memcpy(st->ck, sym.ck, HASHLEN);
    memcpy(st->h, sym.h, HASHLEN);
    memcpy(st->k, sym.k, 32);
    st->has_k = sym.has_k;
    st->n = sym.n;
    st->s = *s;
    memcpy(st->rs, rs, SPW_KEY_LEN);
out:
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(&sym, sizeof(sym));
    return rc ? spw__error(rc, "handshake: the server key is not usable") : 0;
}

static void keys_from_split(const symmetric *sym, bool initiator, uint32_t id, uint32_t aead,
                            spw_session_keys *out)
{
    uint8_t k1[32], k2[32];
    split(sym, k1, k2);
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->aead = out->tx.aead = aead;
    /* k1 protects initiator -> responder, k2 the way back. */
    memcpy(out->tx.key, initiator ? k1 : k2, 32);
    memcpy(out->rx_key, initiator ? k2 : k1, 32);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
}

int spw__hs_read_welcome(spw_hs_initiator *st, const uint8_t msg[SPW_WELCOME_LEN],
                         spw_session_keys *out)
{
    symmetric sym;
    memcpy(sym.ck, st->ck, HASHLEN);
    memcpy(sym.h, st->h, HASHLEN);
    memcpy(sym.k, st->k, 32);
    sym.has_k = st->has_k;
    sym.n = st->n;
    uint8_t shared[DHLEN], payload[8];
    int rc;
    /* <- e */
    const uint8_t *re = msg;
    mix_hash(&sym, re, SPW_KEY_LEN);
    /* ee */
    if ((rc = dh(st->e.priv, re, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    /* se: the responder's ephemeral with our static */
    if ((rc = dh(st->s.priv, re, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    if ((rc = decrypt_and_hash(&sym, msg + 32, sizeof(payload), payload)))
        goto out;
    /* The choice authenticated: it must be exactly one AEAD we offered. */
    uint32_t aead = get32(payload + 4);
    if (!aead || aead != spw__aead_pick(aead, st->offer)) {
        rc = SPW_EAUTH;
        goto out;
    }
    keys_from_split(&sym, true, get32(payload), aead, out);
    memcpy(out->peer_static, st->rs, SPW_KEY_LEN);
out:
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(&sym, sizeof(sym));
    /* One WELCOME per HELLO: the state, private keys included, is spent. */
    sodium_memzero(st, sizeof(*st));
    return rc ? spw__error(SPW_EAUTH, "handshake: the server's answer does not authenticate") : 0;
}

int spw__hs_respond(const spw_keypair *s, const uint8_t msg[SPW_HELLO_LEN], uint32_t id,
                    uint32_t accept, uint8_t out[SPW_WELCOME_LEN], spw_session_keys *keys,
                    uint64_t *timestamp)
{
    int rc = spw__crypto_init();
    if (rc)
        return rc;
    symmetric sym;
    symmetric_init(&sym, s->pub);
    uint8_t shared[DHLEN], rs[SPW_KEY_LEN], hello[12], payload[8];
    uint32_t aead = 0;
    spw_keypair e;
    memset(&e, 0, sizeof(e));
    /* <- e */
    const uint8_t *re = msg;
    mix_hash(&sym, re, SPW_KEY_LEN);
    /* es */
    if ((rc = dh(s->priv, re, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    /* s */
    if ((rc = decrypt_and_hash(&sym, msg + 32, SPW_KEY_LEN, rs)))
        goto out;
    /* ss */
    if ((rc = dh(s->priv, rs, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    if ((rc = decrypt_and_hash(&sym, msg + 32 + 48, sizeof(hello), hello)))
        goto out;
    if (!(aead = spw__aead_pick(get32(hello + 8), accept))) {
        rc = SPW_EUNSUPPORTED;
        goto out;
    }
    /* -> e, ee, se */
    if ((rc = spw__keypair_generate(&e)))
        goto out;
    memcpy(out, e.pub, SPW_KEY_LEN);
    mix_hash(&sym, e.pub, SPW_KEY_LEN);
    if ((rc = dh(e.priv, re, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    if ((rc = dh(e.priv, rs, shared)))
        goto out;
    mix_key(&sym, shared, DHLEN);
    put32(payload, id);
    put32(payload + 4, aead);
    encrypt_and_hash(&sym, payload, sizeof(payload), out + 32);
    keys_from_split(&sym, false, id, aead, keys);
    memcpy(keys->peer_static, rs, SPW_KEY_LEN);
    *timestamp = get64(hello);
out:
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(&sym, sizeof(sym));
    sodium_memzero(&e, sizeof(e));
    if (rc == SPW_EUNSUPPORTED)
        return spw__error(rc, "handshake: no AEAD in common (offered 0x%x, accepted 0x%x)",
                          get32(hello + 8), accept);
    return rc ? spw__error(SPW_EAUTH, "handshake: HELLO does not authenticate") : 0;
}

/* ---- frames --------------------------------------------------------------- */

void spw__frame_nonce(uint32_t id, uint64_t counter, uint8_t nonce[12])
{
    for (int i = 0; i < 4; i++)
        nonce[i] = (uint8_t)(id >> (8 * i));
    put64(nonce + 4, counter);
}

int spw__frame_seal(spw_cipher *c, uint32_t id, const uint8_t *ad, size_t adlen, const uint8_t *src,
                    uint8_t *dst, size_t len, uint8_t tag[SPW_TAG_LEN], uint64_t *counter)
{
    /* A counter must never repeat under one key: the session ends first. */
    if (c->next == UINT64_MAX)
        return spw__error(SPW_ERANGE, "session counter exhausted");
    uint8_t nonce[12];
    *counter = c->next++;
    spw__frame_nonce(id, *counter, nonce);
    unsigned long long maclen;
    if (c->aead == SPW_AEAD_AES256GCM)
        crypto_aead_aes256gcm_encrypt_detached(dst, tag, &maclen, src, len, ad, adlen, NULL, nonce,
                                               c->key);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(dst, tag, &maclen, src, len, ad, adlen,
                                                           NULL, nonce, c->key);
    return 0;
}

bool spw__replay_check(const spw_replay *r, uint64_t counter)
{
    if (counter >= r->top)
        return true;
    if (r->top - counter > SPW_REPLAY_WINDOW)
        return false;
    uint64_t bit = counter % SPW_REPLAY_WINDOW;
    return !(r->bits[bit / 64] & (1ull << (bit % 64)));
}

void spw__replay_accept(spw_replay *r, uint64_t counter)
{
    if (counter >= r->top) {
        /* Clear the bits of the counters skipped over (they are now inside
         * the window, unseen), at most the whole window. */
        uint64_t from = r->top, gap = counter + 1 - r->top;
        if (gap >= SPW_REPLAY_WINDOW)
            memset(r->bits, 0, sizeof(r->bits));
        else
            for (uint64_t c = from; c <= counter; c++) {
                uint64_t b = c % SPW_REPLAY_WINDOW;
                r->bits[b / 64] &= ~(1ull << (b % 64));
            }
        r->top = counter + 1;
    }
    uint64_t bit = counter % SPW_REPLAY_WINDOW;
    r->bits[bit / 64] |= 1ull << (bit % 64);
}

int spw__frame_open(uint32_t aead, const uint8_t key[SPW_KEY_LEN], spw_replay *r, uint32_t id,
                    uint64_t counter, const uint8_t *ad, size_t adlen, uint8_t *buf, size_t len,
                    const uint8_t tag[SPW_TAG_LEN])
{
    if (!spw__replay_check(r, counter))
        return SPW_EREPLAY;
    uint8_t nonce[12];
    spw__frame_nonce(id, counter, nonce);
    int bad = aead == SPW_AEAD_AES256GCM
                  ? crypto_aead_aes256gcm_decrypt_detached(buf, NULL, buf, len, tag, ad, adlen,
                                                           nonce, key)
                  : crypto_aead_chacha20poly1305_ietf_decrypt_detached(buf, NULL, buf, len, tag, ad,
                                                                       adlen, nonce, key);
    if (bad)
        return SPW_EAUTH;
    spw__replay_accept(r, counter);
    return 0;
}

/* ---- cookies -------------------------------------------------------------- */

void spw__cookie_jar_init(spw_cookie_jar *j, uint64_t now_period)
{
    spw__crypto_init();
    randombytes_buf(j->secret[0], SPW_KEY_LEN);
    randombytes_buf(j->secret[1], SPW_KEY_LEN);
    j->epoch = now_period;
}

void spw__cookie_jar_tick(spw_cookie_jar *j, uint64_t now_period)
{
    if (now_period == j->epoch)
        return;
    if (now_period == j->epoch + 1) {
        memcpy(j->secret[1], j->secret[0], SPW_KEY_LEN);
    } else {
        /* More than a period passed: the old secret is stale too. */
        randombytes_buf(j->secret[1], SPW_KEY_LEN);
    }
    randombytes_buf(j->secret[0], SPW_KEY_LEN);
    j->epoch = now_period;
}

static void cookie_with(const uint8_t secret[SPW_KEY_LEN], uint32_t ip, uint16_t port,
                        uint8_t out[SPW_COOKIE_LEN])
{
    uint8_t addr[6] = {(uint8_t)(ip >> 24), (uint8_t)(ip >> 16),  (uint8_t)(ip >> 8),
                       (uint8_t)ip,         (uint8_t)(port >> 8), (uint8_t)port};
    uint8_t mac[HASHLEN];
    hmac(secret, addr, sizeof(addr), NULL, 0, mac);
    memcpy(out, mac, SPW_COOKIE_LEN);
}

void spw__cookie_make(const spw_cookie_jar *j, uint32_t ip, uint16_t port,
                      uint8_t out[SPW_COOKIE_LEN])
{
    cookie_with(j->secret[0], ip, port, out);
}

bool spw__cookie_check(const spw_cookie_jar *j, uint32_t ip, uint16_t port,
                       const uint8_t cookie[SPW_COOKIE_LEN])
{
    for (int i = 0; i < 2; i++) {
        uint8_t want[SPW_COOKIE_LEN];
        cookie_with(j->secret[i], ip, port, want);
        if (sodium_memcmp(want, cookie, SPW_COOKIE_LEN) == 0)
            return true;
    }
    return false;
}

/* ---- key files ------------------------------------------------------------ */

static const char private_tag[] = "splitwire-private-key";
static const char public_tag[] = "splitwire-public-key";

void spw__key_hex(const uint8_t key[SPW_KEY_LEN], char out[2 * SPW_KEY_LEN + 1])
{
    sodium_bin2hex(out, 2 * SPW_KEY_LEN + 1, key, SPW_KEY_LEN);
}

static int parse_hex(const char *hex, size_t len, uint8_t key[SPW_KEY_LEN])
{
    size_t got = 0;
    const char *end = NULL;
    if (len != 2 * SPW_KEY_LEN ||
        sodium_hex2bin(key, SPW_KEY_LEN, hex, len, NULL, &got, &end) != 0 || got != SPW_KEY_LEN)
        return SPW_EFORMAT;
    return 0;
}

static int write_key(const char *path, const char *tag, const uint8_t key[SPW_KEY_LEN], mode_t mode)
{
    char hex[2 * SPW_KEY_LEN + 1];
    spw__key_hex(key, hex);
    /* O_EXCL: never overwrite a key by accident. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return spw__error(errno == EEXIST ? SPW_EINVAL : SPW_EIO, "%s: %s", path,
                          errno == EEXIST ? "exists (not overwritten)" : strerror(errno));
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %s\n", tag, hex);
    sodium_memzero(hex, sizeof(hex));
    ssize_t w = write(fd, line, (size_t)n);
    sodium_memzero(line, sizeof(line));
    if (close(fd) != 0 || w != n)
        return spw__error(SPW_EIO, "%s: write failed", path);
    return 0;
}

int spw__key_write_private(const char *path, const spw_keypair *kp)
{
    return write_key(path, private_tag, kp->priv, 0600);
}

int spw__key_write_public(const char *path, const uint8_t pub[SPW_KEY_LEN])
{
    return write_key(path, public_tag, pub, 0644);
}

static int read_key(const char *path, const char *tag, bool secret, uint8_t key[SPW_KEY_LEN])
{
    void *data;
    size_t size;
    int rc = spw__read_file(path, &data, &size);
    if (rc)
        return rc;
    if (secret) {
        struct stat st;
        if (stat(path, &st) == 0 && (st.st_mode & 077)) {
            sodium_memzero(data, size);
            spw__free(data);
            return spw__error(SPW_EINVAL, "%s: readable by others (chmod 600 it)", path);
        }
    }
    const char *p = data;
    size_t taglen = strlen(tag);
    rc = SPW_EFORMAT;
    if (size > taglen + 1 && !strncmp(p, tag, taglen) && p[taglen] == ' ') {
        const char *hex = p + taglen + 1;
        size_t len = strcspn(hex, "\r\n");
        rc = parse_hex(hex, len, key);
    }
    sodium_memzero(data, size);
    spw__free(data);
    if (rc)
        return spw__error(rc, "%s: not a '%s' file", path, tag);
    return 0;
}

int spw__key_read_private(const char *path, spw_keypair *kp)
{
    int rc = read_key(path, private_tag, true, kp->priv);
    return rc ? rc : spw__keypair_from_private(kp->priv, kp);
}

int spw__key_read_public(const char *path, uint8_t pub[SPW_KEY_LEN])
{
    return read_key(path, public_tag, false, pub);
}

int spw__key_parse_public(const char *hex_or_path, uint8_t pub[SPW_KEY_LEN])
{
    if (!hex_or_path)
        return spw__error(SPW_EINVAL, "no public key given");
    if (parse_hex(hex_or_path, strlen(hex_or_path), pub) == 0)
        return 0;
    return spw__key_read_public(hex_or_path, pub);
}

int spw_net_keygen(const char *private_path, const char *public_path, char *pub_hex)
{
    spw_keypair kp;
    int rc = spw__keypair_generate(&kp);
    if (!rc && private_path)
        rc = spw__key_write_private(private_path, &kp);
    if (!rc && public_path && (rc = spw__key_write_public(public_path, kp.pub)) && private_path)
        unlink(private_path); /* half a pair is of no use */
    if (!rc && pub_hex)
        spw__key_hex(kp.pub, pub_hex);
    sodium_memzero(&kp, sizeof(kp));
    return rc;
}

int spw_net_keypair(uint8_t private_key[32], uint8_t public_key[32])
{
    if (!private_key || !public_key)
        return spw__error(SPW_EINVAL, "spw_net_keypair: NULL argument");
    spw_keypair kp;
    int rc = spw__keypair_generate(&kp);
    if (!rc) {
        memcpy(private_key, kp.priv, SPW_KEY_LEN);
        memcpy(public_key, kp.pub, SPW_KEY_LEN);
    }
    sodium_memzero(&kp, sizeof(kp));
    return rc;
}

int spw_net_key_load_private(const char *path, uint8_t private_key[32])
{
    if (!path || !private_key)
        return spw__error(SPW_EINVAL, "spw_net_key_load_private: NULL argument");
    spw_keypair kp;
    int rc = spw__key_read_private(path, &kp);
    if (!rc)
        memcpy(private_key, kp.priv, SPW_KEY_LEN);
    sodium_memzero(&kp, sizeof(kp));
    return rc;
}

int spw_net_key_load_public(const char *hex_or_path, uint8_t public_key[32])
{
    if (!public_key)
        return spw__error(SPW_EINVAL, "spw_net_key_load_public: NULL argument");
    return spw__key_parse_public(hex_or_path, public_key);
}
