# One encoder, two backbones: the MobileNetV2 and MobileNetV1 mb bundles share
# their client encoder; one server with both answers each model id with its
# own decoder and tail, equal to a local cpu-ref run of that bundle. Skipped
# (77) without the converted backbones (tools/models/fetch_backbone.sh).
spw_add_test(test_shared_encoder test_shared_encoder.c)
set_tests_properties(test_shared_encoder PROPERTIES
  ENVIRONMENT "SPW_MODEL_DIR=${SPW_BACKBONE_DIR};${SPW_TEST_ENV}")
set_tests_properties(test_shared_encoder PROPERTIES TIMEOUT 900)

# The MobileNetV1 bundle end to end: demo's server and client over UDP, the
# uncompressed MobileNetV1 beside it for the agreement line.
set(SPW_MNV1_ONNX ${SPW_BACKBONE_DIR}/mobilenet_v1_0.75_192_at224.onnx)
add_test(NAME demo_mnv1 COMMAND sh -c "
  [ -d '${SPW_SHARED_DIR}/data/imagenette2-224/val' ] || { echo 'skipped: ../shared missing'; exit 77; }
  [ -f '${SPW_MNV1_ONNX}' ] || { echo 'skipped: ${SPW_MNV1_ONNX} missing (tools/models/fetch_backbone.sh)'; exit 77; }
  exec ${CMAKE_SOURCE_DIR}/tests/expect.sh --match '3 classified, 0 failed' \\
    --match 'the uncompressed backbone on the same images: [0-3] of 3' \\
    --match 'same top-1 as the uncompressed backbone: [0-3] of 3' -- \\
    $<TARGET_FILE:splitwire> demo --transport udp --count 3 \\
    --bundle ${CMAKE_SOURCE_DIR}/models/mb-mnv1-s28-l32 --models ${SPW_BACKBONE_DIR}")
set_tests_properties(demo_mnv1 PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")
