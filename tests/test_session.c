/* Protocol version 2's cryptography (netpath/session.c): the Noise IK
 * handshake, frame sealing and the replay window, cookies and key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "netpath/session.h"
#include "splitwire/status.h"

static spw_keypair server, client;

static int setup(void **state)
{
    (void)state;
    if (spw__keypair_generate(&server) || spw__keypair_generate(&client))
        return -1;
    return 0;
}

/* Runs a whole handshake with the client offering `offer` and the server
 * accepting `accept`; returns both sides' keys. */
static void handshake_with(spw_session_keys *ck, spw_session_keys *sk, uint64_t ts, uint32_t offer,
                           uint32_t accept)
{
    spw_hs_initiator st;
    uint8_t hello[SPW_HELLO_LEN], welcome[SPW_WELCOME_LEN];
    assert_int_equal(spw__hs_hello(&st, &client, server.pub, ts, offer, hello), 0);
    uint64_t got_ts = 0;
    assert_int_equal(spw__hs_respond(&server, hello, 0x01020304u, accept, welcome, sk, &got_ts), 0);
    assert_int_equal(got_ts, ts);
    assert_memory_equal(sk->peer_static, client.pub, SPW_KEY_LEN);
    assert_int_equal(spw__hs_read_welcome(&st, welcome, ck), 0);
    assert_int_equal(ck->id, 0x01020304u);
    assert_int_equal(ck->aead, sk->aead);
    assert_int_equal(ck->tx.aead, ck->aead);
    assert_int_equal(sk->tx.aead, sk->aead);
}

static void handshake(spw_session_keys *ck, spw_session_keys *sk, uint64_t ts)
{
    handshake_with(ck, sk, ts, SPW_AEAD_CHACHA20, SPW_AEAD_ALL);
}

static void handshake_agrees_on_keys(void **state)
{
    (void)state;
    spw_session_keys ck, sk;
    handshake(&ck, &sk, 1000);
    /* Each side's sending key is the other's receiving key, and the two
     * directions differ. */
    assert_memory_equal(ck.tx.key, sk.rx_key, SPW_KEY_LEN);
    assert_memory_equal(sk.tx.key, ck.rx_key, SPW_KEY_LEN);
    assert_memory_not_equal(ck.tx.key, sk.tx.key, SPW_KEY_LEN);
    /* A second handshake of the same two keys gives fresh session keys
     * (ephemeral keys: forward secrecy). */
    spw_session_keys ck2, sk2;
    handshake(&ck2, &sk2, 1001);
    assert_memory_not_equal(ck.tx.key, ck2.tx.key, SPW_KEY_LEN);
}

static void handshake_refuses_tampering_and_wrong_keys(void **state)
{
    (void)state;
    spw_hs_initiator st;
    uint8_t hello[SPW_HELLO_LEN], welcome[SPW_WELCOME_LEN];
    spw_session_keys k;
    uint64_t ts;
    assert_int_equal(spw__hs_hello(&st, &client, server.pub, 5, SPW_AEAD_ALL, hello), 0);
    /* Any flipped bit of HELLO fails at the server. */
    for (size_t i = 0; i < SPW_HELLO_LEN; i += 7) {
        uint8_t bad[SPW_HELLO_LEN];
        memcpy(bad, hello, sizeof(bad));
        bad[i] ^= 0x10;
        assert_int_equal(spw__hs_respond(&server, bad, 1, SPW_AEAD_ALL, welcome, &k, &ts),
                         SPW_EAUTH);
    }
    /* A HELLO meant for another server does not open with this one's key. */
    spw_keypair other;
    assert_int_equal(spw__keypair_generate(&other), 0);
    assert_int_equal(spw__hs_respond(&other, hello, 1, SPW_AEAD_ALL, welcome, &k, &ts), SPW_EAUTH);
    /* A forged WELCOME (another responder's) fails at the client. */
    assert_int_equal(spw__hs_respond(&server, hello, 1, SPW_AEAD_ALL, welcome, &k, &ts), 0);
    uint8_t bad[SPW_WELCOME_LEN];
    memcpy(bad, welcome, sizeof(bad));
    bad[40] ^= 1;
    spw_hs_initiator copy = st;
    assert_int_equal(spw__hs_read_welcome(&copy, bad, &k), SPW_EAUTH);
    assert_int_equal(spw__hs_read_welcome(&st, welcome, &k), 0);
}

static void frames_under(uint32_t aead)
{
    spw_session_keys ck, sk;
    handshake_with(&ck, &sk, 77, aead, SPW_AEAD_ALL);
    assert_int_equal(sk.aead, aead);
    uint8_t hdr[70], msg[64], buf[64], tag[SPW_TAG_LEN];
    for (int i = 0; i < 70; i++)
        hdr[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)(200 - i);
    uint64_t ctr;
    assert_int_equal(
        spw__frame_seal(&ck.tx, ck.id, hdr, sizeof(hdr), msg, buf, sizeof(buf), tag, &ctr), 0);
    assert_int_equal(ctr, 0);
    assert_memory_not_equal(buf, msg, sizeof(msg)); /* encrypted */
    uint8_t copy[64];
    memcpy(copy, buf, sizeof(copy));
    /* A flipped bit anywhere (header as associated data, payload, tag,
     * counter) fails, and the window does not move. */
    uint8_t t2[SPW_TAG_LEN];
    memcpy(t2, tag, sizeof(t2));
    hdr[3] ^= 1;
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr, hdr, sizeof(hdr),
                                     buf, sizeof(buf), tag),
                     SPW_EAUTH);
    hdr[3] ^= 1;
    memcpy(buf, copy, sizeof(buf));
    buf[10] ^= 4;
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr, hdr, sizeof(hdr),
                                     buf, sizeof(buf), tag),
                     SPW_EAUTH);
    memcpy(buf, copy, sizeof(buf));
    t2[0] ^= 1;
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr, hdr, sizeof(hdr),
                                     buf, sizeof(buf), t2),
                     SPW_EAUTH);
    memcpy(buf, copy, sizeof(buf));
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr + 1, hdr,
                                     sizeof(hdr), buf, sizeof(buf), tag),
                     SPW_EAUTH);
    assert_int_equal(sk.replay.top, 0);
    /* (A failed open wipes the buffer, so the frame is restored each time.) */
    memcpy(buf, copy, sizeof(buf));
    /* The genuine frame opens to the plaintext, once. */
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr, hdr, sizeof(hdr),
                                     buf, sizeof(buf), tag),
                     0);
    assert_memory_equal(buf, msg, sizeof(msg));
    memcpy(buf, copy, sizeof(buf));
    assert_int_equal(spw__frame_open(sk.aead, sk.rx_key, &sk.replay, sk.id, ctr, hdr, sizeof(hdr),
                                     buf, sizeof(buf), tag),
                     SPW_EREPLAY);
    /* The other direction's key cannot open it. */
    memcpy(buf, copy, sizeof(buf));
    spw_replay fresh = {0};
    assert_int_equal(spw__frame_open(ck.aead, ck.rx_key, &fresh, ck.id, ctr, hdr, sizeof(hdr), buf,
                                     sizeof(buf), tag),
                     SPW_EAUTH);
    /* The frame is the named AEAD's, as libsodium defines it (nonce: id LE,
     * counter LE), and not the other's. */
    uint8_t nonce[12], out[64], other[64];
    for (int i = 0; i < 4; i++)
        nonce[i] = (uint8_t)(sk.id >> (8 * i));
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
    bool is_aes = aead == SPW_AEAD_AES256GCM;
    int aes = crypto_aead_aes256gcm_decrypt_detached(is_aes ? out : other, NULL, copy, sizeof(copy),
                                                     tag, hdr, sizeof(hdr), nonce, sk.rx_key);
    int chacha = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        is_aes ? other : out, NULL, copy, sizeof(copy), tag, hdr, sizeof(hdr), nonce, sk.rx_key);
    assert_int_equal(is_aes ? aes : chacha, 0);
    assert_int_not_equal(is_aes ? chacha : aes, 0);
    assert_memory_equal(out, msg, sizeof(msg));
}

static void frames_seal_open_and_refuse_replays(void **state)
{
    (void)state;
    frames_under(SPW_AEAD_CHACHA20);
    if (!(spw__aead_available() & SPW_AEAD_AES256GCM))
        skip(); /* no AES-NI: ChaCha20-Poly1305 alone checked */
    frames_under(SPW_AEAD_AES256GCM);
}

/* The server picks AES-256-GCM when both sides take it, else
 * ChaCha20-Poly1305; the offer and the choice are authenticated, and a
 * choice the client did not offer is refused. */
static void aead_negotiation(void **state)
{
    (void)state;
    const uint32_t C = SPW_AEAD_CHACHA20, A = SPW_AEAD_AES256GCM, ALL = SPW_AEAD_ALL;
    assert_int_equal(spw__aead_pick(ALL, ALL), A);
    assert_int_equal(spw__aead_pick(ALL, C), C);
    assert_int_equal(spw__aead_pick(C, ALL), C);
    assert_int_equal(spw__aead_pick(A, ALL), A);
    assert_int_equal(spw__aead_pick(A, C), 0);
    assert_int_equal(spw__aead_pick(0, ALL), 0);
    assert_int_equal(spw__aead_pick(0x80u | C, ALL), C); /* unknown bits ignored */
    assert_true(spw__aead_available() & C);

    spw_session_keys ck, sk;
    handshake_with(&ck, &sk, 10, ALL, ALL);
    assert_int_equal(ck.aead, A);
    handshake_with(&ck, &sk, 11, ALL, C); /* a server without AES-NI */
    assert_int_equal(ck.aead, C);
    handshake_with(&ck, &sk, 12, C, ALL); /* a client without it */
    assert_int_equal(ck.aead, C);

    spw_hs_initiator st;
    uint8_t hello[SPW_HELLO_LEN], welcome[SPW_WELCOME_LEN];
    spw_session_keys k;
    uint64_t ts;
    /* Nothing in common: no WELCOME. */
    assert_int_equal(spw__hs_hello(&st, &client, server.pub, 13, A, hello), 0);
    assert_int_equal(spw__hs_respond(&server, hello, 1, C, welcome, &k, &ts), SPW_EUNSUPPORTED);
    /* An offer altered on the way (its encrypted bytes are 88..91): the HELLO
     * does not authenticate, so no downgrade can be slipped in. */
    assert_int_equal(spw__hs_hello(&st, &client, server.pub, 14, ALL, hello), 0);
    for (int i = 88; i < 92; i++) {
        uint8_t bad[SPW_HELLO_LEN];
        memcpy(bad, hello, sizeof(bad));
        bad[i] ^= 0x02;
        assert_int_equal(spw__hs_respond(&server, bad, 1, ALL, welcome, &k, &ts), SPW_EAUTH);
    }
    /* A choice altered on the way (its encrypted bytes are 36..39). */
    assert_int_equal(spw__hs_respond(&server, hello, 1, ALL, welcome, &k, &ts), 0);
    assert_int_equal(k.aead, A);
    for (int i = 36; i < 40; i++) {
        uint8_t bad[SPW_WELCOME_LEN];
        memcpy(bad, welcome, sizeof(bad));
        bad[i] ^= 0x03;
        spw_hs_initiator copy = st;
        assert_int_equal(spw__hs_read_welcome(&copy, bad, &k), SPW_EAUTH);
    }
    /* A server that authenticates a choice the client did not offer (it saw
     * an offer other than the one sent) is refused by the client. */
    st.offer = C;
    assert_int_equal(spw__hs_read_welcome(&st, welcome, &k), SPW_EAUTH);
}

static void replay_window(void **state)
{
    (void)state;
    spw_replay r = {0};
    assert_true(spw__replay_check(&r, 0));
    spw__replay_accept(&r, 0);
    assert_false(spw__replay_check(&r, 0));
    /* Out of order inside the window: each accepted once. */
    spw__replay_accept(&r, 10);
    assert_true(spw__replay_check(&r, 5));
    spw__replay_accept(&r, 5);
    assert_false(spw__replay_check(&r, 5));
    assert_false(spw__replay_check(&r, 10));
    assert_true(spw__replay_check(&r, 9));
    /* A jump forward: what fell out of the window is refused, what is still
     * inside and unseen is not. */
    uint64_t far = 10 + SPW_REPLAY_WINDOW + 5;
    spw__replay_accept(&r, far);
    assert_false(spw__replay_check(&r, 9));
    assert_false(spw__replay_check(&r, far - SPW_REPLAY_WINDOW));
    assert_true(spw__replay_check(&r, far - SPW_REPLAY_WINDOW + 1));
    assert_true(spw__replay_check(&r, far - 1));
    assert_false(spw__replay_check(&r, far));
    /* A slot reused by a newer counter is free again after the jump. */
    spw__replay_accept(&r, far + 1);
    assert_true(spw__replay_check(&r, far - 2));
    /* A jump past a whole window clears every slot. */
    spw__replay_accept(&r, far + 10 * SPW_REPLAY_WINDOW);
    assert_true(spw__replay_check(&r, far + 10 * SPW_REPLAY_WINDOW - 1));
    assert_false(spw__replay_check(&r, far + 1));
}

static void cookies(void **state)
{
    (void)state;
    spw_cookie_jar j;
    spw__cookie_jar_init(&j, 100);
    uint8_t c[SPW_COOKIE_LEN];
    spw__cookie_make(&j, 0x7f000001, 4000, c);
    assert_true(spw__cookie_check(&j, 0x7f000001, 4000, c));
    assert_false(spw__cookie_check(&j, 0x7f000001, 4001, c)); /* another port */
    assert_false(spw__cookie_check(&j, 0x7f000002, 4000, c)); /* another host */
    /* One period later still accepted, two periods later not. */
    spw__cookie_jar_tick(&j, 101);
    assert_true(spw__cookie_check(&j, 0x7f000001, 4000, c));
    spw__cookie_jar_tick(&j, 102);
    assert_false(spw__cookie_check(&j, 0x7f000001, 4000, c));
    spw__cookie_make(&j, 0x7f000001, 4000, c);
    spw__cookie_jar_tick(&j, 105); /* a long pause forgets both secrets */
    assert_false(spw__cookie_check(&j, 0x7f000001, 4000, c));
}

static void key_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/spw_keys_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char priv[256], pub[256], bad[256];
    snprintf(priv, sizeof(priv), "%s/server.key", dir);
    snprintf(pub, sizeof(pub), "%s/server.pub", dir);
    snprintf(bad, sizeof(bad), "%s/bad.key", dir);
    assert_int_equal(spw__key_write_private(priv, &server), 0);
    assert_int_equal(spw__key_write_public(pub, server.pub), 0);
    struct stat st;
    assert_int_equal(stat(priv, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never overwritten. */
    assert_int_equal(spw__key_write_private(priv, &client), SPW_EINVAL);
    spw_keypair back;
    assert_int_equal(spw__key_read_private(priv, &back), 0);
    assert_memory_equal(back.priv, server.priv, SPW_KEY_LEN);
    assert_memory_equal(back.pub, server.pub, SPW_KEY_LEN);
    uint8_t p[SPW_KEY_LEN];
    assert_int_equal(spw__key_read_public(pub, p), 0);
    assert_memory_equal(p, server.pub, SPW_KEY_LEN);
    /* As a file or as its hex digits. */
    char hex[2 * SPW_KEY_LEN + 1];
    spw__key_hex(server.pub, hex);
    memset(p, 0, sizeof(p));
    assert_int_equal(spw__key_parse_public(hex, p), 0);
    assert_memory_equal(p, server.pub, SPW_KEY_LEN);
    assert_int_equal(spw__key_parse_public(pub, p), 0);
    /* A private key others can read is refused; so is a public key file
     * given as a private one, and garbage. */
    assert_int_equal(chmod(priv, 0644), 0);
    assert_int_equal(spw__key_read_private(priv, &back), SPW_EINVAL);
    assert_int_equal(chmod(pub, 0600), 0);
    assert_int_equal(spw__key_read_private(pub, &back), SPW_EFORMAT);
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("splitwire-public-key 12zz\n", f);
    fclose(f);
    assert_int_equal(spw__key_read_public(bad, p), SPW_EFORMAT);
    assert_int_equal(spw__key_parse_public("0123", p), SPW_ENOENT);
    unlink(priv);
    unlink(pub);
    unlink(bad);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_agrees_on_keys),
        cmocka_unit_test(handshake_refuses_tampering_and_wrong_keys),
        cmocka_unit_test(frames_seal_open_and_refuse_replays),
        cmocka_unit_test(aead_negotiation),
        cmocka_unit_test(replay_window),
        cmocka_unit_test(cookies),
        cmocka_unit_test(key_files),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
