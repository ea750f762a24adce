# The CLI: one file per subcommand family under tools/cli/.
file(GLOB SPW_CLI_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/cli/*.c)
add_executable(splitwire ${SPW_CLI_SOURCES})
target_link_libraries(splitwire PRIVATE spw_internal)
include(tools/eval/eval.cmake)
install(TARGETS splitwire RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The embedding example, built against the public headers only.
add_executable(embed_client tools/examples/embed_client.c)
target_link_libraries(embed_client PRIVATE splitwire_static)
