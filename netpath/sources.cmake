# The netpath: transports (kernel UDP, DPDK, in-process) under one message layer.
# SPW_WITH_DPDK: AUTO builds the DPDK transport when pkg-config finds libdpdk,
# ON requires it, OFF leaves it out.
set(SPW_WITH_DPDK AUTO CACHE STRING "Build the DPDK transport (AUTO, ON, OFF)")
set_property(CACHE SPW_WITH_DPDK PROPERTY STRINGS AUTO ON OFF)

# SPW_NET_EMULATION: link emulation (rate, delay, loss on transmit) and
# fault injection on receive, used by benchmarks and tests; a deployment may
# leave it out, and configurations that ask for it are then refused.
option(SPW_NET_EMULATION "Build link emulation and fault injection into the netpath" ON)

list(APPEND SPW_SOURCES
  netpath/proto.c
  netpath/bufpool.c
  netpath/udp.c
  netpath/memory.c
  netpath/table.c
  netpath/msgpool.c
  netpath/rx.c
  netpath/tx.c
  netpath/emulate.c
  netpath/secure.c
  netpath/session.c
  netpath/net.c
)
# Protocol version 2's cryptography: libsodium (X25519, SHA-256, HMAC,
# ChaCha20-Poly1305), a maintained library rather than code of our own.
pkg_check_modules(SODIUM REQUIRED libsodium)
list(APPEND SPW_LINK_LIBS ${SODIUM_LINK_LIBRARIES})
list(APPEND SPW_PRIVATE_INCLUDES ${SODIUM_INCLUDE_DIRS})
list(APPEND SPW_PC_REQUIRES_PRIVATE libsodium)
if(SPW_NET_EMULATION)
  set_source_files_properties(netpath/emulate.c PROPERTIES COMPILE_DEFINITIONS SPW_NET_EMULATION=1)
endif()

set(SPW_NET_HAVE_DPDK OFF)
if(NOT SPW_WITH_DPDK STREQUAL "OFF")
  pkg_check_modules(DPDK libdpdk)
  if(DPDK_FOUND)
    set(SPW_NET_HAVE_DPDK ON)
  elseif(SPW_WITH_DPDK STREQUAL "ON")
    message(FATAL_ERROR "SPW_WITH_DPDK=ON but pkg-config cannot find libdpdk (apt-get install libdpdk-dev)")
  endif()
endif()

if(SPW_NET_HAVE_DPDK)
  message(STATUS "netpath: DPDK ${DPDK_VERSION} transport enabled")
  list(APPEND SPW_SOURCES netpath/dpdk.c)
  # DPDK's flags (its include paths, -include rte_config.h, -march) stay on
  # the one file that includes its headers.
  set_source_files_properties(netpath/dpdk.c PROPERTIES COMPILE_OPTIONS "${DPDK_CFLAGS}")
  set_source_files_properties(netpath/net.c PROPERTIES COMPILE_DEFINITIONS SPW_HAVE_DPDK=1)
  # Where Debian keeps the PMD plugins, for the EAL -d arguments of tests and
  # the benchmark.
  file(GLOB SPW_DPDK_PMD_DIRS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/dpdk/pmds-* /usr/lib/*/dpdk/pmds-*)
  list(GET SPW_DPDK_PMD_DIRS 0 SPW_DPDK_PMD_DIR_FOUND)
  set(SPW_DPDK_PMD_DIR "${SPW_DPDK_PMD_DIR_FOUND}" CACHE PATH "Directory of the DPDK PMD plugins")
  list(APPEND SPW_LINK_LIBS ${DPDK_LINK_LIBRARIES})
  list(APPEND SPW_PC_REQUIRES_PRIVATE libdpdk)
else()
  message(STATUS "netpath: DPDK not found or disabled: building the UDP transport only")
endif()
