# Reference kernels: direct kernel tests and the ONNX vectors of tests/vectors/ops
# (made by tools/gen_vectors.py) on the cpu-ref backend.
spw_add_test(test_ops test_ops.c)
