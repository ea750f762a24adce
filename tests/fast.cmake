# cpu-fast (XNNPACK): zero allocations while plans run, threads, automatic
# backend choice. Its numerics are checked by test_ops on every backend.
spw_add_test(test_cpu_fast test_cpu_fast.c)
