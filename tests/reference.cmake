# End-to-end results against independent references: expected top-1 labels,
# probabilities and stream sizes computed with PyTorch from the same weights
# (tools/make_references.py -> tests/vectors/reference/expected.json). The
# remote paths are compared with the references, not with local mode, so a
# fault shared by both (decoder, softmax, top-k) is caught too.
spw_add_test(test_reference test_reference.c)
target_link_libraries(test_reference PRIVATE PkgConfig::JANSSON)
add_test(NAME test_reference_default COMMAND test_reference default)
set_tests_properties(test_reference_default PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "SPW_MODEL_DIR=${SPW_BACKBONE_DIR};${SPW_TEST_ENV}")

find_program(SPW_REF_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SPW_REF_PYTHON3)
  set(SPW_REF_CLI $<TARGET_FILE:splitwire>)
  set(SPW_REF_DIR ${CMAKE_SOURCE_DIR}/tests/vectors/reference)
  set(SPW_REF_VAL ${SPW_SHARED_DIR}/data/imagenette2-224/val)
  set(SPW_REF_MNV2 ${SPW_BACKBONE_DIR}/mobilenet_v2_1.0_224.onnx)
  # The demo's six images (`--count 6`), classified by name.
  set(SPW_REF_SHARED ${SPW_REF_VAL}/n01440764/n01440764_8052.jpg
    ${SPW_REF_VAL}/n02979186/n02979186_2312.jpg ${SPW_REF_VAL}/n03028079/n03028079_16111.jpg
    ${SPW_REF_VAL}/n03394916/n03394916_57922.jpg ${SPW_REF_VAL}/n03425413/n03425413_19020.jpg
    ${SPW_REF_VAL}/n03888257/n03888257_12900.jpg)
  set(SPW_REF_BUNDLE_tiny --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny)
  set(SPW_REF_MODELS_tiny --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models)
  set(SPW_REF_BUNDLE_default --bundle ${CMAKE_SOURCE_DIR}/models/default)
  set(SPW_REF_MODELS_default --models ${SPW_BACKBONE_DIR})

  # spw_ref_test(name bundle set count cmd...): run cmd through the checker
  # and expect.sh (exit code, a match line, 77 = skip without the backbone).
  function(spw_ref_test name bundle set count)
    set(need)
    if(bundle STREQUAL "default")
      set(need --need ${SPW_REF_MNV2})
    endif()
    set(eval)
    if(name MATCHES "eval")
      set(eval --eval)
    endif()
    add_test(NAME ${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/expect.sh --skip-rc 77
      --match "check_reference: ${count} of ${count} images match" --
      ${SPW_REF_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/check_reference.py --bundle ${bundle}
      --set ${set} ${eval} ${need} -- ${ARGN})
    set_tests_properties(${name} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      ENVIRONMENT "SPLITWIRE_SHARED=${SPW_SHARED_DIR};${SPW_TEST_ENV}")
  endfunction()

  foreach(b tiny default)
    file(GLOB imgs ${SPW_REF_DIR}/${b}/*.png)
    list(LENGTH imgs n)
    math(EXPR all "${n} + 6")
    set(args ${SPW_REF_BUNDLE_${b}} --json ${imgs} ${SPW_REF_SHARED})
    spw_ref_test(ref_${b}_classify_local ${b} all ${all}
      ${SPW_REF_CLI} classify --local ${SPW_REF_MODELS_${b}} ${args})
    # A real server, batches of 4 filled by 12 requests in flight, both
    # stream formats.
    foreach(fmt plain tiled)
      set(flag)
      if(fmt STREQUAL "tiled")
        set(flag --tiled)
      endif()
      spw_ref_test(ref_${b}_classify_server_${fmt} ${b} all ${all}
        ${CMAKE_SOURCE_DIR}/tests/with_server.sh ${SPW_REF_CLI} ${SPW_REF_BUNDLE_${b}}
        ${SPW_REF_MODELS_${b}} --max-batch 4 --max-wait-us 50000 --
        ${SPW_REF_CLI} classify --server @SERVER@ --server-pub @SERVER_PUB@ --inflight 12 --timeout-ms 30000 ${flag} ${args})
    endforeach()
    spw_ref_test(ref_${b}_demo ${b} shared 6 ${SPW_REF_CLI} demo --transport udp --count 6
      --no-reference --json ${SPW_REF_BUNDLE_${b}} ${SPW_REF_MODELS_${b}})
    spw_ref_test(ref_${b}_demo_tiled ${b} shared 6 ${SPW_REF_CLI} demo --transport udp --count 6
      --tiled --no-reference --json ${SPW_REF_BUNDLE_${b}} ${SPW_REF_MODELS_${b}})
    spw_ref_test(ref_${b}_eval ${b} shared 6 ${SPW_REF_CLI} eval --quiet --csv -
      ${SPW_REF_BUNDLE_${b}} ${SPW_REF_MODELS_${b}} --data ${SPW_REF_VAL} --limit 6)
  endforeach()
endif()

# test_bundle's pipeline test checks its symbols and logits against the references.
target_link_libraries(test_bundle PRIVATE PkgConfig::JANSSON)
