# Netpath (netpath/): wire header, message layer, UDP loopback; DPDK memif and
# af_packet between forked processes when DPDK is built in.
spw_add_test(test_net test_net.c)
if(SPW_NET_HAVE_DPDK)
  spw_add_test(test_net_dpdk test_net_dpdk.c)
  target_compile_definitions(test_net_dpdk PRIVATE SPW_DPDK_PMD_DIR="${SPW_DPDK_PMD_DIR}")
endif()
