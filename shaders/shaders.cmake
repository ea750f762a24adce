# Vulkan compute shaders: GLSL compiled by glslc at build time and embedded in
# the library as SPIR-V arrays. The backend needs the Vulkan headers and glslc
# only to build; at run time it opens libvulkan.so.1 itself and registers
# nothing when that or a device is missing.
option(SPW_VULKAN "Build the Vulkan compute backend (needs Vulkan headers and glslc)" ON)
set(SPW_HAVE_VULKAN OFF)
if(SPW_VULKAN)
  find_program(SPW_GLSLC glslc)
  find_path(SPW_VULKAN_INCLUDE vulkan/vulkan.h)
  if(SPW_GLSLC AND SPW_VULKAN_INCLUDE)
    set(SPW_HAVE_VULKAN ON)
  else()
    message(STATUS "splitwire: Vulkan backend off (glslc: ${SPW_GLSLC}, vulkan.h: ${SPW_VULKAN_INCLUDE})")
  endif()
endif()

if(SPW_HAVE_VULKAN)
  add_compile_definitions(SPW_HAVE_VULKAN=1)
  # Order fixes the SPW_VK_SH_* enum the backend indexes. Every shader is
  # built twice: fp32 storage, and fp16 storage (-DSPW_FP16, named *_f16,
  # enum SPW_VK_SH_*_F16 at a fixed distance from its fp32 twin).
  set(SPW_SHADER_NAMES conv conv1x1 pool gpool gemm eltwise copy softmax gdn channel pad cvt convrow convrows conv1x1s peak)
  set(SPW_SHADER_DIR ${CMAKE_SOURCE_DIR}/shaders)
  set(SPW_SPV_DIR ${SPW_GEN_DIR}/shaders)
  file(MAKE_DIRECTORY ${SPW_SPV_DIR})
  file(GLOB SPW_SHADER_INCLUDES ${SPW_SHADER_DIR}/*.glsl)
  set(SPW_SPV_FILES "")
  set(SPW_SPV_NAMES "")
  foreach(variant fp32 fp16)
    foreach(name ${SPW_SHADER_NAMES})
      if(variant STREQUAL "fp16")
        set(out ${name}_f16)
        set(defs -DSPW_FP16)
      else()
        set(out ${name})
        set(defs "")
      endif()
      add_custom_command(
        OUTPUT ${SPW_SPV_DIR}/${out}.spv
        COMMAND ${SPW_GLSLC} -O --target-env=vulkan1.1 ${defs} -I${SPW_SHADER_DIR}
                ${SPW_SHADER_DIR}/${name}.comp -o ${SPW_SPV_DIR}/${out}.spv
        DEPENDS ${SPW_SHADER_DIR}/${name}.comp ${SPW_SHADER_INCLUDES}
        COMMENT "glslc ${name}.comp (${variant})")
      list(APPEND SPW_SPV_FILES ${SPW_SPV_DIR}/${out}.spv)
      list(APPEND SPW_SPV_NAMES ${out})
    endforeach()
  endforeach()
  # Commas, not semicolons: the list passes through a shell.
  string(REPLACE ";" "," SPW_SHADER_LIST "${SPW_SPV_NAMES}")
  add_custom_command(
    OUTPUT ${SPW_SPV_DIR}/spw_vk_shaders.c ${SPW_SPV_DIR}/spw_vk_shaders.h
    COMMAND ${CMAKE_COMMAND} -DSPV_DIR=${SPW_SPV_DIR} -DNAMES=${SPW_SHADER_LIST}
            -DOUT_C=${SPW_SPV_DIR}/spw_vk_shaders.c -DOUT_H=${SPW_SPV_DIR}/spw_vk_shaders.h
            -P ${SPW_SHADER_DIR}/embed.cmake
    DEPENDS ${SPW_SPV_FILES} ${SPW_SHADER_DIR}/embed.cmake
    COMMENT "embedding SPIR-V")
  list(APPEND SPW_SOURCES ${SPW_SPV_DIR}/spw_vk_shaders.c)
endif()
