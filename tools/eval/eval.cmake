# `splitwire eval`: the baseline codecs. libjpeg comes with the library;
# libwebp and libavif are linked into the CLI only, and each is left out
# (with a notice) when its -dev package is missing.
pkg_check_modules(SPW_WEBP QUIET IMPORTED_TARGET libwebp)
pkg_check_modules(SPW_AVIF QUIET IMPORTED_TARGET libavif)
set(SPW_EVAL_CODEC_LIBS "")
set(SPW_EVAL_CODEC_DEFS "")
if(SPW_WEBP_FOUND)
  list(APPEND SPW_EVAL_CODEC_LIBS PkgConfig::SPW_WEBP)
  list(APPEND SPW_EVAL_CODEC_DEFS SPW_EVAL_HAVE_WEBP=1)
else()
  message(STATUS "splitwire: eval without WebP (libwebp-dev not found)")
endif()
if(SPW_AVIF_FOUND)
  list(APPEND SPW_EVAL_CODEC_LIBS PkgConfig::SPW_AVIF)
  list(APPEND SPW_EVAL_CODEC_DEFS SPW_EVAL_HAVE_AVIF=1)
else()
  message(STATUS "splitwire: eval without AVIF (libavif-dev not found)")
endif()
set_source_files_properties(${CMAKE_SOURCE_DIR}/tools/cli/eval_codec.c PROPERTIES
  COMPILE_DEFINITIONS "${SPW_EVAL_CODEC_DEFS}")
target_link_libraries(splitwire PRIVATE ${SPW_EVAL_CODEC_LIBS})
