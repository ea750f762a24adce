# End-to-end runs of the CLI on the committed tiny bundle and shared images.
# Every entry goes through tests/expect.sh, which checks the exact exit code
# and the output together; those that read ../shared go through
# SPW_REQUIRE_SHARED first (exit 77, skipped, without it).
set(SPW_CLI $<TARGET_FILE:splitwire>)
set(SPW_TINY ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny)
set(SPW_TINY_MODELS ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models)
set(SPW_TENCH ${SPW_SHARED_DIR}/data/imagenette2-224/val/n01440764)

set(SPW_TINY_ARGS --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS})
add_test(NAME cli_demo_udp COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "6 images over kernel UDP: 6 classified, 0 failed, 0 skipped"
  -- ${SPW_CLI} demo --transport udp --count 6 ${SPW_TINY_ARGS})
add_test(NAME cli_demo_memif COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "6 images over DPDK net_memif: 6 classified, 0 failed, 0 skipped"
  --no-match "using kernel UDP"
  -- ${SPW_CLI} demo --transport dpdk --count 6 ${SPW_TINY_ARGS})
set_tests_properties(cli_demo_udp cli_demo_memif PROPERTIES
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 120 RUN_SERIAL TRUE ENVIRONMENT "${SPW_TEST_ENV}")

# An unreadable image is skipped and the run goes on (and succeeds).
file(WRITE ${CMAKE_BINARY_DIR}/not_an_image.jpg "this is text, not a JPEG\n")
add_test(NAME cli_classify_skips_bad_image COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "skipping [^\\n]*not_an_image.jpg: [^\\n]*not a JPEG or PNG image"
  --match "\\n2 images over local: 1 classified, 0 failed, 1 skipped\\n"
  -- ${SPW_CLI} classify --local --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} --backend cpu-ref
  ${CMAKE_BINARY_DIR}/not_an_image.jpg ${SPW_TENCH}/ILSVRC2012_val_00009111.jpg)
set_tests_properties(cli_classify_skips_bad_image PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# Rate points: a copy of the tiny bundle under another name as a lower rate
# point (made at configure time). Forced by an objective every point meets,
# the higher rate (rate_index 0) codes every image; the same bundle twice is
# refused.
file(READ ${SPW_TINY}/manifest.json spw_tiny_manifest)
string(REPLACE "\"tiny-test\"" "\"tiny-low\"" spw_low_manifest "${spw_tiny_manifest}")
string(REPLACE "\"index\": 0" "\"index\": 1" spw_low_manifest "${spw_low_manifest}")
file(WRITE ${CMAKE_BINARY_DIR}/tiny-low/manifest.json "${spw_low_manifest}")
file(COPY ${SPW_TINY}/encoder.onnx ${SPW_TINY}/decoder.onnx DESTINATION ${CMAKE_BINARY_DIR}/tiny-low)
add_test(NAME cli_classify_rate_points COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "\"rate_point\": \"tiny-test\""
  --no-match "\"rate_point\": \"tiny-low\""
  --match "\"images\": 2, \"ok\": 2, \"failed\": 0"
  -- ${SPW_CLI} classify --local --bundle ${CMAKE_BINARY_DIR}/tiny-low --rate-bundle ${SPW_TINY}
  --slo-ms 600000 --models ${SPW_TINY_MODELS} --backend cpu-ref --json
  ${SPW_TENCH}/ILSVRC2012_val_00009111.jpg ${SPW_TENCH}/ILSVRC2012_val_00009111.jpg)
add_test(NAME cli_classify_rate_point_twice COMMAND ${SPW_EXPECT} --rc 1
  --match "bundle tiny-test given twice"
  -- ${SPW_CLI} classify --local --bundle ${SPW_TINY} --rate-bundle ${SPW_TINY}
  --models ${SPW_TINY_MODELS} ${CMAKE_BINARY_DIR}/not_an_image.jpg)
set_tests_properties(cli_classify_rate_points cli_classify_rate_point_twice PROPERTIES
  TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# No server: a clear message and exit 1 (a run-time failure, not a usage error).
add_test(NAME cli_classify_unreachable COMMAND ${SPW_EXPECT} --rc 1
  --match "server 127.0.0.1:9 unreachable: timed out"
  -- ${SPW_CLI} classify --bundle ${SPW_TINY} --server 127.0.0.1:9 --timeout-ms 300
  --server-pub ${SPW_SOME_PUB} ${CMAKE_BINARY_DIR}/not_an_image.jpg)
set_tests_properties(cli_classify_unreachable PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# Protocol 2 is the default: no keys and no --insecure is a usage error on
# both sides; --insecure takes no keys and warns loudly on each side.
add_test(NAME cli_serve_needs_key COMMAND ${SPW_EXPECT} --rc 2
  --match "splitwire serve: needs --key FILE .a private key from `splitwire keygen NAME`."
  -- ${SPW_CLI} serve --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS})
add_test(NAME cli_classify_needs_server_pub COMMAND ${SPW_EXPECT} --rc 2
  --match "splitwire classify: needs --server-pub FILE"
  -- ${SPW_CLI} classify --bundle ${SPW_TINY} --server 127.0.0.1:9 x.jpg)
add_test(NAME cli_insecure_with_key COMMAND ${SPW_EXPECT} --rc 2
  --match "--insecure takes no keys"
  -- ${SPW_CLI} classify --bundle ${SPW_TINY} --insecure --server-pub ${SPW_SOME_PUB} x.jpg)
add_test(NAME cli_bad_server_pub COMMAND ${SPW_EXPECT} --rc 1
  --match "server public key /nonexistent.pub"
  -- ${SPW_CLI} ping --server-pub /nonexistent.pub)
add_test(NAME cli_insecure_warns COMMAND ${SPW_EXPECT} --rc 0
  --match "splitwire serve: WARNING: --insecure: wire protocol 1, NOTHING IS AUTHENTICATED"
  --match "splitwire ping: WARNING: --insecure"
  --match "pong from 127.0.0.1:[0-9]+"
  -- sh ${CMAKE_SOURCE_DIR}/tests/with_server.sh ${SPW_CLI} --bundle ${SPW_TINY}
  --models ${SPW_TINY_MODELS} --insecure -- ${SPW_CLI} ping --server @SERVER@ --insecure)
set_tests_properties(cli_serve_needs_key cli_classify_needs_server_pub cli_insecure_with_key
  cli_bad_server_pub cli_insecure_warns PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# Usage errors: exit 2, a line that names the problem, then the usage.
add_test(NAME cli_bad_flag COMMAND ${SPW_EXPECT} --rc 2
  --match "option value '99' must be an integer in 1\\.\\.10\\nusage: splitwire classify "
  -- ${SPW_CLI} classify --top 99 --bundle ${SPW_TINY} x.jpg)
add_test(NAME cli_unknown_flag COMMAND ${SPW_EXPECT} --rc 2
  --match "unrecognized option '--frobnicate'\\nusage: splitwire classify "
  -- ${SPW_CLI} classify --frobnicate --bundle ${SPW_TINY} x.jpg)
add_test(NAME cli_unknown_command COMMAND ${SPW_EXPECT} --rc 2
  --match "unknown command 'frobnicate'"
  -- ${SPW_CLI} frobnicate)
set_tests_properties(cli_bad_flag cli_unknown_flag cli_unknown_command PROPERTIES TIMEOUT 30
  ENVIRONMENT "${SPW_TEST_ENV}")

# The embedding example against a real `splitwire serve` on loopback: the
# client's answer, and both processes exit 0 (the server on SIGTERM).
add_test(NAME example_embed_client COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "ILSVRC2012_val_00009111.jpg: class 4 \\([0-9.]+%\\), 160 bytes"
  --match "client exit 0, server exit 0"
  -- sh -c "
  port=$((30000 + $$ % 20000))
  k=$(mktemp -d); ${SPW_CLI} keygen $k/srv >/dev/null 2>&1
  ${SPW_CLI} serve --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS} --listen 127.0.0.1:$port --key $k/srv.key &
  srv=$!
  i=0; crc=1; out=''
  while [ $i -lt 50 ]; do
    out=$($<TARGET_FILE:embed_client> ${SPW_TINY} 127.0.0.1:$port $k/srv.pub ${SPW_TENCH}/ILSVRC2012_val_00009111.jpg 2>&1) && { crc=0; break; }
    i=$((i + 1)); sleep 0.1
  done
  kill -TERM $srv; wait $srv; src=$?; rm -rf $k
  echo \"$out\"; echo \"client exit $crc, server exit $src\"
  [ $crc -eq 0 ] && [ $src -eq 0 ]")
set_tests_properties(example_embed_client PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# No Vulkan loader: a notice, and the CPU does the work.
add_test(NAME cli_demo_no_vulkan COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "notice: no Vulkan device"
  --match "2 images over kernel UDP: 2 classified, 0 failed, 0 skipped"
  -- ${SPW_CLI} demo --transport udp --count 2 ${SPW_TINY_ARGS})
set_tests_properties(cli_demo_no_vulkan PROPERTIES WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 60
  ENVIRONMENT "SPW_VULKAN_LOADER=libnope.so.1;${SPW_TEST_ENV}")

# DPDK cannot start (its plugins are missing): a notice, then the same demo over UDP.
add_test(NAME cli_demo_dpdk_fallback COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "DPDK could not start; using kernel UDP"
  --match "2 images over kernel UDP: 2 classified, 0 failed, 0 skipped"
  -- ${SPW_CLI} demo --count 2 ${SPW_TINY_ARGS})
set_tests_properties(cli_demo_dpdk_fallback PROPERTIES WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  TIMEOUT 120 RUN_SERIAL TRUE
  ENVIRONMENT "SPW_DPDK_PMD_DIR=/nonexistent;${SPW_TEST_ENV}")

# `cmake --install` into a fresh prefix, then build the example against it with
# pkg-config alone; run without arguments it prints its usage and exits 2.
# (Not in sanitizer builds: their library needs the sanitizer runtime loaded
# first.)
if(NOT SPW_SANITIZE AND NOT SPW_FUZZ AND NOT SPW_TSAN)
  set(SPW_INST ${CMAKE_BINARY_DIR}/install-test)
  add_test(NAME install_and_consume COMMAND ${SPW_EXPECT} --rc 2 --match "usage" -- sh -c "
    rm -rf ${SPW_INST} && ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${SPW_INST} >/dev/null &&
    flags=$(PKG_CONFIG_PATH=${SPW_INST}/${CMAKE_INSTALL_LIBDIR}/pkgconfig pkg-config --cflags --libs splitwire) &&
    cc -std=c11 -Wall -Werror ${CMAKE_SOURCE_DIR}/tools/examples/embed_client.c $flags -o ${SPW_INST}/embed_client || exit 1
    LD_LIBRARY_PATH=${SPW_INST}/${CMAKE_INSTALL_LIBDIR} exec ${SPW_INST}/embed_client")
  set_tests_properties(install_and_consume PROPERTIES TIMEOUT 120)
endif()

# The bundle the demo uses by default, when one is committed: both halves load
# and match the manifest (the backbone is a build artefact, not needed here).
# Without the backbone the local client stops at the tail, after both halves
# and the codec tables loaded: exit 1, and the error names the backbone.
if(EXISTS ${CMAKE_SOURCE_DIR}/models/default/manifest.json)
  add_test(NAME default_bundle_loads COMMAND ${SPW_EXPECT} --rc 1
    --match "cannot start the client: [^\\n]*backbone 'mobilenet_v2_1.0_224' not found"
    -- ${SPW_CLI} classify --bundle ${CMAKE_SOURCE_DIR}/models/default --local --models /nonexistent x.jpg)
  set_tests_properties(default_bundle_loads PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")
endif()

# --reference: the uncompressed backbone runs on the same files and each
# result says whether the split path gave its top-1; an unreadable file is
# skipped by both. The tiny bundle is untrained, so the answers are pinned
# exactly as they come out (split top-1 4, 4, 6; the tiny backbone 9, 9, 2):
# 0 of 3 the same. A reference that ran the split path again, or a
# comparison that always said "same", gives 3 and fails.
function(spw_ref_line var file split backbone)
  set(${var} "${file}\", \"label\": ${split}, [^\\n]*\"backbone_label\": ${backbone}, \"same_as_backbone\": false}" PARENT_SCOPE)
endfunction()
spw_ref_line(spw_ref_a ILSVRC2012_val_00009111.jpg 4 9)
spw_ref_line(spw_ref_b ILSVRC2012_val_00009191.jpg 4 9)
spw_ref_line(spw_ref_c ILSVRC2012_val_00017472.jpg 6 2)
add_test(NAME cli_classify_reference COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "skipping [^\\n]*not_an_image.jpg"
  --match "${spw_ref_a}" --match "${spw_ref_b}" --match "${spw_ref_c}"
  --match "\"backbone\": {\"compared\": 3, \"same_label\": 0, \"judged\": 0"
  --no-match "\"same_as_backbone\": true"
  -- ${SPW_CLI} classify --local --reference --json --bundle ${SPW_TINY} --models ${SPW_TINY_MODELS}
  ${CMAKE_BINARY_DIR}/not_an_image.jpg ${SPW_TENCH}/ILSVRC2012_val_00009111.jpg
  ${SPW_TENCH}/ILSVRC2012_val_00009191.jpg ${SPW_TENCH}/ILSVRC2012_val_00017472.jpg)
set_tests_properties(cli_classify_reference PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")

# bench e2e on the tiny bundle: a real server process, two methods (split
# inference and JPEG offload to the server's whole backbone) and the
# adaptive client over one emulated link; every request answered, one row
# per method.
# Without link emulation built in, the same run over an unshaped link.
set(spw_e2e_link 10mbit,2ms)
if(NOT SPW_NET_EMULATION)
  set(spw_e2e_link none)
endif()
add_test(NAME cli_bench_e2e COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
  --match "\"link\": \"${spw_e2e_link}\", \"method\": \"bundle:tiny-test\", \"images\": 3, \"answered\": 3, \"lost\": 0"
  --match "\"link\": \"${spw_e2e_link}\", \"method\": \"jpeg-q50\", \"images\": 3, \"answered\": 3, \"lost\": 0"
  --match "\"method\": \"adapt-slo5000\", \"images\": 3, \"answered\": 3, \"lost\": 0.*\"slo_misses\": 0"
  --no-match "\"method\": \"(local|original|webp|avif)"
  -- ${SPW_CLI} bench e2e ${SPW_TINY_ARGS} --backbone ${SPW_TINY_MODELS}/tinynet.onnx
  --data ${SPW_TENCH} --count 3 --method bundle --method jpeg --quality 50
  --link ${spw_e2e_link} --adapt --slo-ms 5000 --json --quiet --backend cpu-ref)
set_tests_properties(cli_bench_e2e PROPERTIES
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 120 RUN_SERIAL TRUE ENVIRONMENT "${SPW_TEST_ENV}")

# The adaptive client over a link that steps: requests and misses per step,
# counted by when each request started (all three after the step at 1 ms).
if(SPW_NET_EMULATION)
  add_test(NAME cli_bench_e2e_steps COMMAND ${SPW_REQUIRE_SHARED} ${SPW_EXPECT} --rc 0
    --match "step 0 \\(10 Mbit/s from 0\\.0 s\\): 0 requests, 0 over 5000 ms; after its first second 0 of 0"
    --match "step 1 \\(5 Mbit/s from 0\\.0 s\\): 3 requests, 0 over 5000 ms; after its first second 0 of [0-3]"
    -- ${SPW_CLI} bench e2e ${SPW_TINY_ARGS} --backbone ${SPW_TINY_MODELS}/tinynet.onnx
    --data ${SPW_TENCH} --count 3 --method adapt --slo-ms 5000 --link "10mbit,2ms$<SEMICOLON>5mbit@1ms"
    --quiet --backend cpu-ref)
  set_tests_properties(cli_bench_e2e_steps PROPERTIES
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 120 RUN_SERIAL TRUE ENVIRONMENT "${SPW_TEST_ENV}")
endif()

# A malformed --link is a usage error that says what is wrong.
add_test(NAME cli_serve_bad_link COMMAND ${SPW_EXPECT} --rc 2
  --match "--link: link 'fast': not a preset"
  -- ${SPW_CLI} serve ${SPW_TINY_ARGS} --insecure --link fast)
set_tests_properties(cli_serve_bad_link PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# The CLI is a client of the public API: its sources (tools/cli, tools/eval,
# tools/bench) include only public
# headers and name no spw__ symbol, the binary loads libsplitwire.so and
# imports only spw_ symbols from it; the library exports exactly the SPW_API
# functions of include/splitwire.
add_test(NAME cli_public_sources COMMAND sh ${CMAKE_SOURCE_DIR}/tests/public_api.sh sources
  ${CMAKE_SOURCE_DIR}/tools/cli ${CMAKE_SOURCE_DIR}/tools/eval ${CMAKE_SOURCE_DIR}/tools/bench)
add_test(NAME cli_public_imports COMMAND sh ${CMAKE_SOURCE_DIR}/tests/public_api.sh imports
  ${SPW_CLI} $<TARGET_FILE:splitwire_shared>)
add_test(NAME library_exports COMMAND sh ${CMAKE_SOURCE_DIR}/tests/public_api.sh exports
  $<TARGET_FILE:splitwire_shared> ${CMAKE_SOURCE_DIR}/include/splitwire)
set_tests_properties(cli_public_sources cli_public_imports library_exports PROPERTIES TIMEOUT 30)

# The public calls the CLI is built on, against independent references.
spw_add_test(test_public test_public.c)
