list(APPEND SPW_SOURCES
  drivers/registry.c
  drivers/cpu/cpu_ref.c
  drivers/cpu/ref_ops.c
  drivers/cpu/ref_conv.c
  drivers/cpu/ref_linear.c
  drivers/cpu/ref_layout.c
)
