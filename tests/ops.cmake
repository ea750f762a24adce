# Reference kernels: direct kernel tests and the ONNX vectors of tests/vectors/ops
# (made by tools/gen_vectors.py) on the cpu-ref backend.
spw_add_test(test_ops test_ops.c)
if(SPW_HAVE_VULKAN)
  # The vectors again with fp16 activations on Vulkan (exit 77, skipped, when
  # the device has no 16-bit storage).
  add_test(NAME test_ops_fp16 COMMAND test_ops)
  set_tests_properties(test_ops_fp16 PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "${SPW_TEST_ENV};SPW_VULKAN_FP16=1;SPW_DISABLE_BACKENDS=cpu-fast")
endif()
# Every op of SPW_OP_LIST has its row in every op table (docs/ADDING_AN_OP.md).
spw_add_test(test_op_rows test_op_rows.c)
