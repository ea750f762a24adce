# Backend conformance (every op on every registered backend against the CPU
# reference) and device discovery. Vulkan runs on whatever device the machine
# has; on lavapipe (CPU) the shapes are small to keep the test quick.
spw_add_test(test_conformance test_conformance.c)
spw_add_test(test_drm test_drm.c)
