# Entropy codec tests (runtime/codec).
spw_add_test(test_codec test_codec.c)

# The Python table builder and reference coder, the committed vectors and the CLI.
find_program(SPW_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SPW_PYTHON3)
  execute_process(COMMAND ${SPW_PYTHON3} -c "import numpy" RESULT_VARIABLE SPW_HAVE_NUMPY
                  OUTPUT_QUIET ERROR_QUIET)
  if(SPW_HAVE_NUMPY EQUAL 0)
    add_test(NAME test_codec_py
             COMMAND ${SPW_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/codec/test_codec_py.py
                     $<TARGET_FILE:splitwire>)
    set_tests_properties(test_codec_py PROPERTIES TIMEOUT 120)
  endif()
endif()
