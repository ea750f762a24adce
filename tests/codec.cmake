# Entropy codec tests (runtime/codec).
spw_add_test(test_codec test_codec.c)

# The Python table builder and reference coder, the committed vectors and the
# CLI. Always registered: without python3 or numpy it skips (exit 77) and
# says so, instead of vanishing from the test list.
find_program(SPW_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SPW_PYTHON3)
  set(SPW_PYTHON3 python3)
endif()
add_test(NAME test_codec_py
         COMMAND ${SPW_REQUIRE} --program ${SPW_PYTHON3} --py-module numpy
                 -- ${SPW_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/codec/test_codec_py.py
                 $<TARGET_FILE:splitwire>)
set_tests_properties(test_codec_py PROPERTIES TIMEOUT 120)
