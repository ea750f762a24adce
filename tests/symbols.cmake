# The libraries' globals: spw_ and spw__ in the static archive (the generated
# ONNX code renamed), the API alone exported by the shared library. Not in the
# fuzz build, whose clang exports the resolvers of multi-versioned functions.
if(NOT SPW_FUZZ)
  add_test(NAME symbols COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/symbols.sh ${CMAKE_NM}
           $<TARGET_FILE:splitwire_static> $<TARGET_FILE:splitwire_shared>)
endif()
