# A model's weights held once: shared by plans of every batch size, every
# thread and every backend's prepared state; calibration once per batch.
# Its threaded case runs under ThreadSanitizer too (the threads label).
spw_add_test(test_weights test_weights.c)
set_tests_properties(test_weights PROPERTIES LABELS threads)
