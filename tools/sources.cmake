# The CLI: one file per subcommand family under tools/cli/, with `splitwire
# eval` (the evaluation harness) from tools/eval/ and `splitwire bench` from
# tools/bench/. It is a client of the shared library like any other: public
# headers only (tests/cli.cmake checks its sources and its imports), found at
# run time next to it in the build tree and through $ORIGIN/../lib once
# installed.
file(GLOB SPW_CLI_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/cli/*.c
     ${CMAKE_SOURCE_DIR}/tools/eval/*.c ${CMAKE_SOURCE_DIR}/tools/bench/*.c)
add_executable(splitwire ${SPW_CLI_SOURCES})
target_link_libraries(splitwire PRIVATE splitwire_shared PkgConfig::JPEG PkgConfig::JANSSON Threads::Threads ${MATH_LIB})
target_include_directories(splitwire PRIVATE ${CMAKE_SOURCE_DIR})
# $ORIGIN in the build tree too, so a build directory copied elsewhere still runs.
set_target_properties(splitwire PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"
  BUILD_RPATH "$ORIGIN")
include(tools/eval/eval.cmake)
install(TARGETS splitwire RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The embedding example, built against the public headers only.
add_executable(embed_client tools/examples/embed_client.c)
target_link_libraries(embed_client PRIVATE splitwire_static)
