# Sets with more classes than Imagenette: imagenet-sample-1k (one photo per
# ImageNet class, aspect kept, short side 256) through eval and classify with
# the converted MobileNetV2 and the default bundle. Skipped (77) without the
# shared data or the converted backbone.
set(SPW_S1K ${SPW_SHARED_DIR}/data/imagenet-sample-1k)
set(SPW_S1K_MNV2 ${SPW_BACKBONE_DIR}/mobilenet_v2_1.0_224.onnx)
set(SPW_S1K_NEEDS "[ -d '${SPW_S1K}/val' ] || { echo 'skipped: ../shared missing'; exit 77; };
  [ -f '${SPW_S1K_MNV2}' ] || { echo 'skipped: ${SPW_S1K_MNV2} missing (tools/models/fetch_backbone.sh)'; exit 77; }")

# The 1000-row class table loads; 1000-way top-1 and fidelity are measured
# for the backbone and a bundle on photos of any size.
add_test(NAME eval_sample1k COMMAND sh -c "${SPW_S1K_NEEDS}
  exec ${CMAKE_SOURCE_DIR}/tests/expect.sh \\
    --match 'backbone,original,12,[0-9.]+,[0-9.]+,0\\.[0-9]+,0\\.[0-9]+,1\\.0000,0\\.00000' \\
    --match 'bundle,svbi-mnv2-s28-l1,12,[0-9.]+,[0-9.]+,0\\.[0-9]+,0\\.[0-9]+,[01]\\.[0-9]+,[0-9.]+' -- \\
    $<TARGET_FILE:splitwire> eval --quiet --csv - --fidelity --backbone ${SPW_S1K_MNV2} \\
    --bundle ${CMAKE_SOURCE_DIR}/models/default --models ${SPW_BACKBONE_DIR} \\
    --data ${SPW_S1K}/val --limit 12")
set_tests_properties(eval_sample1k PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")

# classify finds the set's own class table above the inputs and judges every
# file by it (the shared Imagenette table would judge none of these).
add_test(NAME cli_classify_own_classes COMMAND sh -c "${SPW_S1K_NEEDS}
  exec ${CMAKE_SOURCE_DIR}/tests/expect.sh --match 'top-1: [0-9] of 4 correct' -- \\
    $<TARGET_FILE:splitwire> classify --local --bundle ${CMAKE_SOURCE_DIR}/models/default \\
    --models ${SPW_BACKBONE_DIR} ${SPW_S1K}/val/n01440764/ ${SPW_S1K}/val/n01443537 \\
    ${SPW_S1K}/val/n01484850 ${SPW_S1K}/val/n01491361")
set_tests_properties(cli_classify_own_classes PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")
