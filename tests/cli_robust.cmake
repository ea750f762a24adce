# The CLI against hostile or unlucky input: FIFOs, directories where files
# belong, inputs that all fail, interruption, bad addresses; and its JSON
# staying JSON. Every case checks the exit code (tests/expect.sh).
spw_add_test(test_cli_util test_cli_util.c ${CMAKE_SOURCE_DIR}/tools/cli/util.c)

set(SPW_EXPECT_SH "sh ${CMAKE_SOURCE_DIR}/tests/expect.sh")
set(SPW_ROBUST ${CMAKE_BINARY_DIR}/cli-robust)
set(SPW_ROBUST_TINY --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
    --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models)
string(REPLACE ";" " " SPW_ROBUST_TINY_SH "${SPW_ROBUST_TINY}")
set(SPW_ROBUST_VAL ${SPW_SHARED_DIR}/data/imagenette2-224/val)

# A FIFO named like an image is refused at once, not read forever; with no
# image classified the exit code is 1.
add_test(NAME cli_classify_fifo COMMAND sh -c "
  d=${SPW_ROBUST}/fifo && rm -rf $d && mkdir -p $d && mkfifo $d/photo.jpg &&
  exec ${SPW_EXPECT_SH} --rc 1 --match 'photo.jpg: not a regular file' --match 'no image could be classified' -- \\
    $<TARGET_FILE:splitwire> classify --local ${SPW_ROBUST_TINY_SH} $d/photo.jpg")
set_tests_properties(cli_classify_fifo PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# Every input skipped: a failure, not success.
file(WRITE ${SPW_ROBUST}/text.jpg "this is text, not a JPEG\n")
add_test(NAME cli_classify_all_skipped COMMAND ${SPW_EXPECT} --rc 1
  --match "1 images over local: 0 classified, 0 failed, 1 skipped"
  --match "no image could be classified" --
  $<TARGET_FILE:splitwire> classify --local ${SPW_ROBUST_TINY} ${SPW_ROBUST}/text.jpg)
set_tests_properties(cli_classify_all_skipped PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# A bundle whose encoder.onnx is a directory: a clear error naming it.
add_test(NAME cli_bundle_encoder_is_dir COMMAND sh -c "
  d=${SPW_ROBUST}/dirbundle && rm -rf $d && cp -r ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny $d &&
  rm $d/encoder.onnx && mkdir $d/encoder.onnx &&
  exec ${SPW_EXPECT_SH} --rc 1 --match 'encoder.onnx: not a regular file .a directory.' \\
    --no-match 'out of memory' -- \\
    $<TARGET_FILE:splitwire> classify --local --bundle $d \\
    --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models ${SPW_ROBUST}/text.jpg")
set_tests_properties(cli_bundle_encoder_is_dir PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# A client address that is not one: refused with the address in the message.
add_test(NAME cli_classify_bad_bind COMMAND ${SPW_EXPECT} --rc 1
  --match "address '300.1.1.1:0'" --
  $<TARGET_FILE:splitwire> classify ${SPW_ROBUST_TINY} --bind 300.1.1.1:0
  --server 127.0.0.1:9 --server-pub ${SPW_SOME_PUB} ${SPW_ROBUST}/text.jpg)
set_tests_properties(cli_classify_bad_bind PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# The summary's percentiles come from one formula: p99 >= p50 (two images
# made the old formulas read p99 from the smaller one).
add_test(NAME cli_classify_percentiles COMMAND sh -c "
  [ -d '${SPW_ROBUST_VAL}' ] || { echo 'skipped: ../shared missing'; exit 77; }
  out=$($<TARGET_FILE:splitwire> classify --local --json ${SPW_ROBUST_TINY_SH} \\
        $(ls -d ${SPW_ROBUST_VAL}/n01440764/* | head -2)) || exit 1
  echo \"$out\"
  echo \"$out\" | tail -1 | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)[\"summary\"]
sys.exit(0 if s[\"ok\"] == 2 and s[\"total_ms_p99\"] >= s[\"total_ms_p50\"] > 0 else 1)'")
set_tests_properties(cli_classify_percentiles PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")

# SIGINT while writing to a file: the lines already classified and the
# summary are in the file, valid JSON each, and the exit code is 130.
add_test(NAME cli_classify_interrupt_keeps_results COMMAND sh -c "
  [ -d '${SPW_ROBUST_VAL}' ] || { echo 'skipped: ../shared missing'; exit 77; }
  d=${SPW_ROBUST}/interrupt && rm -rf $d && mkdir -p $d
  $<TARGET_FILE:splitwire> classify --local --json ${SPW_ROBUST_TINY_SH} ${SPW_ROBUST_VAL} > $d/out.json 2> $d/err.txt &
  pid=$!
  i=0
  while [ $i -lt 300 ] && ! grep -q '\"file\"' $d/out.json; do i=$((i + 1)); sleep 0.1; done
  kill -INT $pid; wait $pid; rc=$?
  cat $d/err.txt; echo \"exit $rc\"
  [ $rc -eq 130 ] && grep -q 'interrupted: ' $d/err.txt &&
  /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = rows[-1][\"summary\"]
sys.exit(0 if len(rows) >= 2 and s[\"ok\"] == len(rows) - 1 < 3925 else 1)' $d/out.json")
set_tests_properties(cli_classify_interrupt_keeps_results PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")

# splitwire keygen: a private key only its owner can read, a public key
# beside it, the public key printed; an existing key is never overwritten.
add_test(NAME cli_keygen COMMAND sh -c "
  d=${SPW_ROBUST}/keys && rm -rf $d && mkdir -p $d &&
  ${SPW_EXPECT_SH} --rc 0 --match '(^|\\n)[0-9a-f]{64}(\\n|$)' -- $<TARGET_FILE:splitwire> keygen $d/srv &&
  [ \"$(stat -c %a $d/srv.key)\" = 600 ] && grep -q '^splitwire-public-key [0-9a-f]\\{64\\}$' $d/srv.pub &&
  ${SPW_EXPECT_SH} --rc 1 --match 'exists .not overwritten.' -- $<TARGET_FILE:splitwire> keygen $d/srv &&
  ${SPW_EXPECT_SH} --rc 2 --match 'usage: splitwire keygen NAME' -- $<TARGET_FILE:splitwire> keygen")
set_tests_properties(cli_keygen PROPERTIES TIMEOUT 30 ENVIRONMENT "${SPW_TEST_ENV}")

# Some images fail, others do not: the exit code is 1. The server batches two
# requests and waits 5 s for a partner otherwise: with two in flight, images
# 1 and 2 share a batch and are answered, image 3 waits alone and times out.
add_test(NAME cli_classify_partial_failure COMMAND ${SPW_EXPECT} --rc 1
  --match "3 images over udp: 2 classified, 1 failed, 0 skipped" --
  sh ${CMAKE_SOURCE_DIR}/tests/with_server.sh $<TARGET_FILE:splitwire> ${SPW_ROBUST_TINY}
  --max-batch 2 --max-wait-us 5000000 --
  $<TARGET_FILE:splitwire> classify --server @SERVER@ --server-pub @SERVER_PUB@ --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --inflight 2 --timeout-ms 1000 ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png)
set_tests_properties(cli_classify_partial_failure PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")
