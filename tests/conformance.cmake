# Backend conformance (every op on every registered backend against the CPU
# reference) and device discovery. Vulkan runs on whatever device the machine
# has; on lavapipe (CPU) the shapes are small to keep the test quick.
spw_add_test(test_conformance test_conformance.c)
spw_add_test(test_drm test_drm.c)
# Keep the pipeline cache inside the build tree, not in the user's home.
set_tests_properties(test_conformance PROPERTIES ENVIRONMENT
  "CMOCKA_MESSAGE_OUTPUT=stdout;SPW_LOG=error;SPW_VULKAN_CACHE_DIR=${CMAKE_BINARY_DIR}/vkcache;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp")
