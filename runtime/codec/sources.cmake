list(APPEND SPW_SOURCES
  runtime/codec/tables.c
  runtime/codec/rans.c
  runtime/codec/tiled.c
  runtime/codec/codec.c
  runtime/codec/crc32c.c
  runtime/codec/pool.c
)
