# Attacks on a real `splitwire serve` on loopback (tests/attack.py): forged
# results and errors, replay floods both ways through an attacking relay,
# and the amplification of unauthenticated datagrams.
add_test(NAME net_attack COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/attack.py
  $<TARGET_FILE:splitwire> ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/checker.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/gradient.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/noise.png
  ${CMAKE_SOURCE_DIR}/tests/vectors/reference/tiny/radial.png)
set_tests_properties(net_attack PROPERTIES TIMEOUT 180 ENVIRONMENT "${SPW_TEST_ENV}")
