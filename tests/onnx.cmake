# ONNX import and shape inference (models built in the test with protobuf-c,
# plus tests/vectors/onnx made by tools/onnx_testgen.py).
spw_add_test(test_onnx test_onnx.c)
