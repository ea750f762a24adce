# Renames the protobuf-c code generated from onnx.proto inside the static
# archive: every global onnx__* symbol becomes spw__onnx__*, in the member that
# defines it and in every member that refers to it, so a program linking
# libsplitwire.a next to its own ONNX (or protobuf-c generated) code sees no
# clash and the archive's globals all carry the project's prefixes.
# Run as: cmake -DARCHIVE=... -DNM=... -DOBJCOPY=... -DRANLIB=... -P this file
execute_process(COMMAND ${NM} -g --defined-only ${ARCHIVE}
                OUTPUT_VARIABLE syms RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm ${ARCHIVE} failed")
endif()
# Sanitizer builds add globals named after the generated ones
# (__odr_asan.onnx__*): renamed the same way.
string(REGEX MATCHALL " [A-Za-z0-9_.]*onnx__[A-Za-z0-9_.]+" found "${syms}")
list(REMOVE_DUPLICATES found)
set(map "")
foreach(s ${found})
  string(STRIP "${s}" s)
  if(s MATCHES "spw__onnx__")
    continue()
  endif()
  string(REPLACE "onnx__" "spw__onnx__" to "${s}")
  string(APPEND map "${s} ${to}\n")
endforeach()
if(map STREQUAL "")
  return()
endif()
get_filename_component(dir ${ARCHIVE} DIRECTORY)
file(WRITE ${dir}/onnx_symbols.map "${map}")
execute_process(COMMAND ${OBJCOPY} --redefine-syms=${dir}/onnx_symbols.map ${ARCHIVE}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "objcopy --redefine-syms on ${ARCHIVE} failed")
endif()
if(RANLIB)
  execute_process(COMMAND ${RANLIB} ${ARCHIVE})
endif()
