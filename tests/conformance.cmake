# Backend conformance (every op on every registered backend against the CPU
# reference) and device discovery. Vulkan runs on whatever device the machine
# has; on lavapipe (CPU) the shapes are small to keep the test quick.
spw_add_test(test_conformance test_conformance.c)
if(SPW_HAVE_VULKAN)
  # The same cases with fp16 activations on Vulkan; exits 77 (skipped) when
  # the device has no 16-bit storage. cpu-fast is covered by the entry above.
  add_test(NAME test_conformance_fp16 COMMAND test_conformance)
  set_tests_properties(test_conformance_fp16 PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "${SPW_TEST_ENV};SPW_VULKAN_FP16=1;SPW_DISABLE_BACKENDS=cpu-fast")
  # The same cases with the device taken for a discrete GPU: device-local
  # arena and weights behind staging copies, the GPU tuning. A CPU Vulkan
  # implementation otherwise never runs those paths.
  add_test(NAME test_conformance_discrete COMMAND test_conformance)
  set_tests_properties(test_conformance_discrete PROPERTIES TIMEOUT 300
                       ENVIRONMENT "${SPW_TEST_ENV};SPW_VULKAN_AS_DISCRETE=1")
  # The same cases with the row-tiled conv kernel off: the generic and
  # pointwise kernels it falls back to keep their coverage.
  add_test(NAME test_conformance_generic COMMAND test_conformance)
  set_tests_properties(test_conformance_generic PROPERTIES TIMEOUT 300
                       ENVIRONMENT "${SPW_TEST_ENV};SPW_VULKAN_CONV=generic;SPW_DISABLE_BACKENDS=cpu-fast")
  # Conv kernel and tile choice (no device needed).
  spw_add_test(test_vk_conv test_vk_conv.c)
  # Batches in flight: server halves on concurrent threads against cpu-ref,
  # and the stage times showing transfers during another slot's compute;
  # again with the device taken for a discrete GPU (staged transfers; fp32
  # activations, so the bound stays fp32's).
  spw_add_test(test_vk_slots test_vk_slots.c)
  add_test(NAME test_vk_slots_discrete COMMAND test_vk_slots)
  set_tests_properties(test_vk_slots_discrete PROPERTIES TIMEOUT 300
                       ENVIRONMENT "${SPW_TEST_ENV};SPW_VULKAN_AS_DISCRETE=1;SPW_VULKAN_FP16=0")
  # Conv tuning files (read, written, applied, malformed ones ignored), a
  # tuning run of the tiny encoder, and the peak calibration.
  spw_add_test(test_vk_tune test_vk_tune.c)
  # Exit-time teardown with a plan still alive (skipped without a device).
  spw_add_test(test_vk_teardown test_vk_teardown.c)
  set_tests_properties(test_vk_teardown PROPERTIES SKIP_RETURN_CODE 77)
  # The device's pipeline cache: a second plan compiles nothing (skipped
  # without a device).
  spw_add_test(test_vk_pipes test_vk_pipes.c)
endif()
# Automatic backend choice: every candidate ranked first once (calibration
# steered by a test hook), with lavapipe taken for a discrete GPU.
spw_add_test(test_plan_pick test_plan_pick.c)
spw_add_test(test_drm test_drm.c)
