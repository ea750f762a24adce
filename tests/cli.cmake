# End-to-end runs of the CLI on the committed tiny bundle and shared images.
set(SPW_CLI $<TARGET_FILE:splitwire>)
set(SPW_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared)
set(SPW_TINY ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny)
set(SPW_TINY_MODELS ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models)

set(SPW_TINY_ARGS --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS})
add_test(NAME cli_demo_udp COMMAND ${SPW_CLI} demo --transport udp --count 6 ${SPW_TINY_ARGS})
add_test(NAME cli_demo_memif COMMAND ${SPW_CLI} demo --transport dpdk --count 6 ${SPW_TINY_ARGS})
set_tests_properties(cli_demo_udp cli_demo_memif PROPERTIES
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 120 RUN_SERIAL TRUE
  ENVIRONMENT "SPLITWIRE_SHARED=${SPW_SHARED_DIR};${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "6 images over [^:]*: 6 classified, 0 failed, 0 skipped")

# An unreadable image is skipped and the run goes on.
file(WRITE ${CMAKE_BINARY_DIR}/not_an_image.jpg "this is text, not a JPEG\n")
add_test(NAME cli_classify_skips_bad_image COMMAND ${SPW_CLI} classify --local
  --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} --backend cpu-ref
  ${CMAKE_BINARY_DIR}/not_an_image.jpg ${SPW_SHARED_DIR}/data/imagenette2-224/val/n01440764/ILSVRC2012_val_00009111.jpg)
set_tests_properties(cli_classify_skips_bad_image PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "2 images over local: 1 classified, 0 failed, 1 skipped")

# No server: a clear message and a non-zero exit.
add_test(NAME cli_classify_unreachable COMMAND ${SPW_CLI} classify --bundle ${SPW_TINY}
  --server 127.0.0.1:9 --timeout-ms 300 ${CMAKE_BINARY_DIR}/not_an_image.jpg)
set_tests_properties(cli_classify_unreachable PROPERTIES TIMEOUT 60 WILL_FAIL TRUE
  ENVIRONMENT "${SPW_TEST_ENV}")
add_test(NAME cli_classify_unreachable_message COMMAND sh -c
  "${SPW_CLI} classify --bundle ${SPW_TINY} --server 127.0.0.1:9 --timeout-ms 300 x.jpg 2>&1 | grep -q 'unreachable: timed out'")
set_tests_properties(cli_classify_unreachable_message PROPERTIES TIMEOUT 60
  ENVIRONMENT "${SPW_TEST_ENV}")

# Bad flags: usage and exit code 2.
add_test(NAME cli_bad_flag COMMAND ${SPW_CLI} classify --top 99 --bundle ${SPW_TINY} x.jpg)
set_tests_properties(cli_bad_flag PROPERTIES WILL_FAIL TRUE)

# The embedding example against a real `splitwire serve` on loopback.
add_test(NAME example_embed_client COMMAND sh -c "
  port=$((30000 + $$ % 20000))
  ${SPW_CLI} serve --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} --listen 127.0.0.1:$port &
  srv=$!
  i=0; out=''
  while [ $i -lt 50 ]; do
    out=$($<TARGET_FILE:embed_client> ${SPW_TINY} 127.0.0.1:$port ${SPW_SHARED_DIR}/data/imagenette2-224/val/n01440764/ILSVRC2012_val_00009111.jpg 2>&1) && break
    i=$((i + 1)); sleep 0.1
  done
  kill -TERM $srv; wait $srv
  echo \"$out\"; echo \"$out\" | grep -q 'bytes'")
set_tests_properties(example_embed_client PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# No Vulkan loader: a notice, and the CPU does the work.
add_test(NAME cli_demo_no_vulkan COMMAND ${SPW_CLI} demo --transport udp --count 2 ${SPW_TINY_ARGS})
set_tests_properties(cli_demo_no_vulkan PROPERTIES WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 60
  ENVIRONMENT "SPLITWIRE_SHARED=${SPW_SHARED_DIR};SPW_VULKAN_LOADER=libnope.so.1;${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "notice: no Vulkan device")

# DPDK cannot start (its plugins are missing): a notice, then the same demo over UDP.
add_test(NAME cli_demo_dpdk_fallback COMMAND sh -c
  "out=$(${SPW_CLI} demo --count 2 --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} 2>&1); echo \"$out\"; echo \"$out\" | grep -q 'using kernel UDP' && echo \"$out\" | grep -q '2 images over kernel UDP: 2 classified'")
set_tests_properties(cli_demo_dpdk_fallback PROPERTIES WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  TIMEOUT 120 RUN_SERIAL TRUE
  ENVIRONMENT "SPLITWIRE_SHARED=${SPW_SHARED_DIR};SPW_DPDK_PMD_DIR=/nonexistent;${SPW_TEST_ENV}")

# `cmake --install` into a fresh prefix, then build the example against it with
# pkg-config alone. (Not in sanitizer builds: their library needs the sanitizer
# runtime loaded first.)
if(NOT SPW_SANITIZE AND NOT SPW_FUZZ)
  set(SPW_INST ${CMAKE_BINARY_DIR}/install-test)
  add_test(NAME install_and_consume COMMAND sh -c "
    rm -rf ${SPW_INST} && ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${SPW_INST} >/dev/null &&
    flags=$(PKG_CONFIG_PATH=${SPW_INST}/${CMAKE_INSTALL_LIBDIR}/pkgconfig pkg-config --cflags --libs splitwire) &&
    cc -std=c11 -Wall -Werror ${CMAKE_SOURCE_DIR}/tools/examples/embed_client.c $flags -o ${SPW_INST}/embed_client &&
    LD_LIBRARY_PATH=${SPW_INST}/${CMAKE_INSTALL_LIBDIR} ${SPW_INST}/embed_client 2>&1 | grep -q usage")
  set_tests_properties(install_and_consume PROPERTIES TIMEOUT 120)
endif()

# The bundle the demo uses by default, when one is committed: both halves load
# and match the manifest (the backbone is a build artefact, not needed here).
if(EXISTS ${CMAKE_SOURCE_DIR}/models/default/manifest.json)
  add_test(NAME default_bundle_loads COMMAND ${SPW_CLI} classify --bundle ${CMAKE_SOURCE_DIR}/models/default
    --local --models /nonexistent x.jpg)
  # Without the backbone the local client stops at the tail, after both halves
  # and the codec tables loaded: the error must name the backbone.
  set_tests_properties(default_bundle_loads PROPERTIES TIMEOUT 60
    PASS_REGULAR_EXPRESSION "backbone 'mobilenet_v2_1.0_224' not found")
endif()

# --reference: the uncompressed backbone runs on the same files and each
# result says whether the split path gave its top-1; an unreadable file is
# skipped by both.
set(SPW_TENCH ${SPW_SHARED_DIR}/data/imagenette2-224/val/n01440764)
add_test(NAME cli_classify_reference COMMAND sh -c "
  files=$(ls -d ${SPW_TENCH}/* | head -3)
  out=$(${SPW_CLI} classify --local --reference --json --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} ${CMAKE_BINARY_DIR}/not_an_image.jpg $files 2>&1) || exit 1
  echo \"$out\"
  [ $(echo \"$out\" | grep -c '\"same_as_backbone\": ') -eq 3 ] &&
  echo \"$out\" | grep -q '\"backbone\": {\"compared\": 3, \"same_label\": [0-3], \"judged\": 0'")
set_tests_properties(cli_classify_reference PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")
