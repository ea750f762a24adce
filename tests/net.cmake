# Netpath (netpath/): wire header, message layer, UDP loopback; DPDK memif and
# af_packet between forked processes when DPDK is built in.
spw_add_test(test_net test_net.c)
# No allocation per message once the pools are warm: a counting allocator,
# and malloc, calloc and realloc wrapped at link time for direct libc calls.
spw_add_test(test_net_alloc test_net_alloc.c)
target_link_options(test_net_alloc PRIVATE -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc)
# ACKs, measured RTO, deadlines and the NACK budget on an injected clock.
spw_add_test(test_net_rtx test_net_rtx.c)
# Link emulation: link specs, shaper timing (injected clock), UDP ratio.
spw_add_test(test_link test_link.c)
# Protocol 2 cryptography: handshake, frames, replay window, cookies, keys.
spw_add_test(test_session test_session.c)
# Protocol 2 on the wire: handshake, sealed frames, forgeries and replays
# dropped, no answers without a session, cookies, restart (injected clock).
spw_add_test(test_net_v2 test_net_v2.c)
# Socket errors counted by cause (spw_net_stats).
spw_add_test(test_net_errno test_net_errno.c)
if(SPW_NET_HAVE_DPDK)
  spw_add_test(test_net_dpdk test_net_dpdk.c)
  target_compile_definitions(test_net_dpdk PRIVATE SPW_DPDK_PMD_DIR="${SPW_DPDK_PMD_DIR}")
endif()
