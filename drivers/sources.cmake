list(APPEND SPW_SOURCES
  drivers/registry.c
  drivers/cpu/cpu_ref.c
  drivers/cpu/cpu_describe.c
  drivers/cpu/ref_ops.c
  drivers/cpu/ref_conv.c
  drivers/cpu/ref_linear.c
  drivers/cpu/ref_layout.c
)
list(APPEND SPW_SOURCES drivers/drm/drm_devices.c)
# libdrm's headers only: the library is opened at run time when present.
pkg_check_modules(SPW_LIBDRM QUIET libdrm)
if(SPW_LIBDRM_FOUND)
  set_source_files_properties(drivers/drm/drm_devices.c PROPERTIES
    INCLUDE_DIRECTORIES "${SPW_LIBDRM_INCLUDE_DIRS}" COMPILE_DEFINITIONS SPW_HAVE_LIBDRM=1)
endif()
if(SPW_HAVE_VULKAN)
  # The plan builder: its helpers, the op table and one file per op family.
  list(APPEND SPW_SOURCES
    drivers/vulkan/vk_build.c
    drivers/vulkan/vk_op_conv.c
    drivers/vulkan/vk_op_copy.c
    drivers/vulkan/vk_op_eltwise.c
    drivers/vulkan/vk_op_gemm.c
    drivers/vulkan/vk_op_norm.c
    drivers/vulkan/vk_op_pool.c
    drivers/vulkan/vk_rows.c
  )
  list(APPEND SPW_SOURCES
    drivers/vulkan/vk_device.c
    drivers/vulkan/vk_memory.c
    drivers/vulkan/vk_pipeline.c
    drivers/vulkan/vk_backend.c
    drivers/vulkan/vk_weights.c
    drivers/vulkan/vk_conv.c
    drivers/vulkan/vk_describe.c
    drivers/vulkan/vk_slots.c
    drivers/vulkan/vk_peak.c
    drivers/vulkan/vk_tune.c
  )
endif()

# cpu-fast: XNNPACK operators plus NHWC kernels of our own. Built when Debian's
# libxnnpack-dev and libpthreadpool-dev are installed; left out otherwise.
find_path(SPW_XNNPACK_INCLUDE xnnpack.h)
find_library(SPW_XNNPACK_LIB XNNPACK)
find_path(SPW_PTHREADPOOL_INCLUDE pthreadpool.h)
find_library(SPW_PTHREADPOOL_LIB pthreadpool)
set(SPW_HAVE_XNNPACK OFF)
if(SPW_XNNPACK_INCLUDE AND SPW_XNNPACK_LIB AND SPW_PTHREADPOOL_INCLUDE AND SPW_PTHREADPOOL_LIB)
  set(SPW_HAVE_XNNPACK ON)
  message(STATUS "splitwire: cpu-fast backend on (${SPW_XNNPACK_LIB}, ${SPW_PTHREADPOOL_LIB})")
  add_compile_definitions(SPW_HAVE_XNNPACK=1)
  list(APPEND SPW_SOURCES
    drivers/cpu/cpu_fast.c
    drivers/cpu/fast_prepare.c
    drivers/cpu/fast_kernels.c
    drivers/cpu/fast_winograd.c
    drivers/cpu/fast_weights.c
  )
  # Its channel loops are meant to vectorise, which -O2 does not always do.
  set_source_files_properties(drivers/cpu/fast_winograd.c PROPERTIES COMPILE_OPTIONS "-O3")
  list(APPEND SPW_PRIVATE_INCLUDES ${SPW_XNNPACK_INCLUDE} ${SPW_PTHREADPOOL_INCLUDE})
  list(APPEND SPW_LINK_LIBS ${SPW_XNNPACK_LIB} ${SPW_PTHREADPOOL_LIB})
  list(APPEND SPW_PC_LIBS_PRIVATE -lXNNPACK -lpthreadpool)
else()
  message(STATUS "splitwire: cpu-fast backend off: XNNPACK or pthreadpool not found "
                 "(apt-get install libxnnpack-dev libpthreadpool-dev)")
endif()
