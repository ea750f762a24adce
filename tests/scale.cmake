# Scale-out on one host: two server processes share a UDP port
# (SO_REUSEPORT) and split the requests of 8 client flows between them.
add_test(NAME serve_reuseport COMMAND sh ${CMAKE_SOURCE_DIR}/tests/reuseport.sh
  $<TARGET_FILE:splitwire> ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png)
set_tests_properties(serve_reuseport PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE
  ENVIRONMENT "${SPW_TEST_ENV}")

# The health probe: a serving server pongs (exit 0), a silent port does not
# (exit 1), and a bad flag is a usage error (exit 2).
add_test(NAME cli_ping COMMAND ${SPW_EXPECT} --rc 0 --match "pong from 127.0.0.1:[0-9]+: [0-9.]+ ms" --
  sh ${CMAKE_SOURCE_DIR}/tests/with_server.sh $<TARGET_FILE:splitwire>
  --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models --
  $<TARGET_FILE:splitwire> ping --server @SERVER@ --server-pub @SERVER_PUB@ --count 3)
add_test(NAME cli_ping_silent COMMAND ${SPW_EXPECT} --rc 1 --match "no pong from 127.0.0.1:9 within 200 ms" --
  $<TARGET_FILE:splitwire> ping --server 127.0.0.1:9 --server-pub ${SPW_SOME_PUB} --timeout-ms 200)
add_test(NAME cli_ping_bad_flag COMMAND ${SPW_EXPECT} --rc 2 --match "usage: splitwire ping" --
  $<TARGET_FILE:splitwire> ping --count 0)
set_tests_properties(cli_ping cli_ping_silent cli_ping_bad_flag PROPERTIES TIMEOUT 60
  ENVIRONMENT "${SPW_TEST_ENV}")

# The deployment files (deploy/): checked as far as this machine allows.
add_test(NAME deploy_files COMMAND ${SPW_EXPECT} --rc 0 --match "check.py: all checks hold" --
  /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tools/deploy/check.py $<TARGET_FILE:splitwire>)
set_tests_properties(deploy_files PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# Graceful drain and failover: SIGTERM one of two servers mid-run; the client
# (given both) finishes every image once, with the labels --local gives.
add_test(NAME serve_drain COMMAND sh ${CMAKE_SOURCE_DIR}/tests/drain.sh
  $<TARGET_FILE:splitwire> ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png)
set_tests_properties(serve_drain PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE
  ENVIRONMENT "${SPW_TEST_ENV}")

# The real thing in network namespaces: three servers behind an nftables
# DNAT balancer, three clients; one server killed, one drained mid-run. Every
# image answered once, as --local labels it. Skips without root, ip netns or nft.
add_test(NAME serve_netns_lb COMMAND sh ${CMAKE_SOURCE_DIR}/tests/netns_lb.sh
  $<TARGET_FILE:splitwire> ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png)
set_tests_properties(serve_netns_lb PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")

# DPDK serve --queues 2 over net_memif: each queue pair, served by its own
# thread, answers a share of the requests of a client sending on both.
if(SPW_NET_HAVE_DPDK)
  add_test(NAME serve_dpdk_queues COMMAND sh ${CMAKE_SOURCE_DIR}/tests/dpdk_queues.sh
    $<TARGET_FILE:splitwire> ${SPW_DPDK_PMD_DIR} ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
    ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
    ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
    ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
    ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
    ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png)
  set_tests_properties(serve_dpdk_queues PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE
    ENVIRONMENT "${SPW_TEST_ENV}")
endif()

# Flags of scale-out: usage errors (exit 2) with a clear message.
add_test(NAME cli_serve_queues_needs_dpdk COMMAND ${SPW_EXPECT} --rc 2
  --match "--queues is for --transport dpdk" --
  $<TARGET_FILE:splitwire> serve --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny --insecure --queues 2)
add_test(NAME cli_classify_empty_server_list COMMAND ${SPW_EXPECT} --rc 2
  --match "--server needs an address" --
  $<TARGET_FILE:splitwire> classify --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --server , x.png)
add_test(NAME cli_classify_bad_failover_probes COMMAND ${SPW_EXPECT} --rc 2
  --match "--failover-probes needs an integer in 0..1000" --
  $<TARGET_FILE:splitwire> classify --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --failover-probes -1 x.png)
set_tests_properties(cli_serve_queues_needs_dpdk cli_classify_empty_server_list
  cli_classify_bad_failover_probes PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")
