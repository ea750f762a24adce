/* Socket errors reach spw_net_stats by cause, with the last errno: a send to
 * the broadcast address without SO_BROADCAST fails with EACCES every time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "splitwire/net.h"

static void broadcast_refused_is_counted(void **state)
{
    (void)state;
    spw_net_config c = {.transport = SPW_NET_UDP,
                        .local = "127.0.0.1:0",
                        .peer = "255.255.255.255:9",
                        .insecure = 1};
    spw_net *n;
    assert_int_equal(spw_net_open(&c, &n), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(spw_net_ping(n, NULL, (uint64_t)i), 0);
    spw_net_stats st;
    spw_net_stats_get(n, &st);
    assert_int_equal(st.tx_errors, 3);
    assert_int_equal(st.err_perm, 3);
    assert_int_equal(st.last_errno, EACCES);
    assert_int_equal(st.tx_drops, 3);
    assert_int_equal(st.tx_packets, 0);
    assert_int_equal(st.rx_errors, 0);
    assert_int_equal(st.err_other + st.err_again + st.err_nobufs + st.err_refused + st.err_unreach +
                         st.err_msgsize,
                     0);
    spw_net_close(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broadcast_refused_is_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
