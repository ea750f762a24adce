# The tests that run threads of the library's own (server workers, the codec
# pool), for the ThreadSanitizer stage of tools/test.sh (ctest -L threads).
set_tests_properties(test_codec test_service test_reference example_embed_client
  ref_tiny_classify_server_plain ref_tiny_demo PROPERTIES LABELS threads)
