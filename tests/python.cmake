# The Python tools under tools/: one package (tests/check_py_package.py reads
# every module: no sys.path edits, package imports only, documented commands
# still run as files), and the training code's self-test, which needs torch
# (not among tools/setup.sh's packages: it skips where torch is missing).
find_program(SPW_PKG_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SPW_PKG_PYTHON3)
  set(SPW_PKG_PYTHON3 python3)
endif()
add_test(NAME py_package COMMAND ${SPW_REQUIRE} --program ${SPW_PKG_PYTHON3}
         -- ${SPW_PKG_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/check_py_package.py)
set_tests_properties(py_package PROPERTIES TIMEOUT 60)
add_test(NAME py_train_selftest
         COMMAND ${SPW_REQUIRE} --py-module torch --py-module numpy --py-module onnx
                 -- ${SPW_PKG_PYTHON3} -m tools.train.selftest
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(py_train_selftest PROPERTIES TIMEOUT 600 ENVIRONMENT
                     "SPLITWIRE_WORK=${CMAKE_BINARY_DIR}/ml-selftest")
