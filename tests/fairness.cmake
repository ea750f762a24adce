# Fairness across peers on a real `splitwire serve` on loopback
# (tests/fairness.py): one client floods far beyond its share while another
# classifies; the second loses nothing, is never refused as busy, and gets
# the answers of classify --local.
add_test(NAME serve_fairness COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/fairness.py
  $<TARGET_FILE:splitwire> ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/shapes.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/stripes.png)
set_tests_properties(serve_fairness PROPERTIES TIMEOUT 300 ENVIRONMENT "${SPW_TEST_ENV}")
