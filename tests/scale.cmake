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
