# ONNX import and shape inference (models built in the test with protobuf-c,
# plus tests/vectors/onnx made by tools/onnx_testgen.py). The test builds its
# models with its own copy of the generated code: the archive's copy is
# renamed spw__onnx__* (cmake/prefix_onnx_symbols.cmake).
spw_add_test(test_onnx test_onnx.c $<TARGET_OBJECTS:spw_onnx_proto>)
