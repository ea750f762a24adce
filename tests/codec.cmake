# Entropy codec tests (runtime/codec).
spw_add_test(test_codec test_codec.c)
