# One encoder, two backbones: the MobileNetV2 and MobileNetV1 mb bundles share
# their client encoder; one server with both answers each model id with its
# own decoder and tail, equal to a local cpu-ref run of that bundle. Skipped
# (77) without the converted backbones (tools/models/fetch_backbone.sh).
spw_add_test(test_shared_encoder test_shared_encoder.c)
set_tests_properties(test_shared_encoder PROPERTIES
  ENVIRONMENT "SPW_MODEL_DIR=${SPW_BACKBONE_DIR};${SPW_TEST_ENV}")
set_tests_properties(test_shared_encoder PROPERTIES TIMEOUT 900)
