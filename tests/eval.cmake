# splitwire eval (tools/cli/cmd_eval.c, eval_*.c): the codec round trips and
# metrics as a unit test, then the command on the committed tiny bundle and
# tiny backbone over a few shared images, and its error paths. Nothing here
# needs the converted MobileNetV2; the one test that uses it is skipped
# without it.
spw_add_test(test_eval test_eval.c ${CMAKE_SOURCE_DIR}/tools/cli/eval_codec.c
             ${CMAKE_SOURCE_DIR}/tools/cli/eval_metrics.c)
target_compile_definitions(test_eval PRIVATE ${SPW_EVAL_CODEC_DEFS})
target_link_libraries(test_eval PRIVATE ${SPW_EVAL_CODEC_LIBS})

set(SPW_EVAL_VAL ${CMAKE_SOURCE_DIR}/../shared/data/imagenette2-224/val)
set(SPW_TINYNET ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models/tinynet.onnx)

# A bundle through the client in local mode: one row, bytes and bpp; the tiny
# network has no ImageNet labels, so the accuracies are not measured.
add_test(NAME eval_tiny_bundle COMMAND $<TARGET_FILE:splitwire> eval --quiet --csv -
  --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models --data ${SPW_EVAL_VAL} --limit 4)
set_tests_properties(eval_tiny_bundle PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "bundle,tiny-test,4,[0-9.]+,[0-9.]+,nan,nan")

# Baselines: the original files and JPEG at two qualities through a backbone
# (the tiny one, images resized to its 32x32 input); the batch of 8 is only
# partly filled at the end.
add_test(NAME eval_tiny_backbone COMMAND $<TARGET_FILE:splitwire> eval --quiet --csv -
  --backbone ${SPW_TINYNET} --data ${SPW_EVAL_VAL} --limit 5 --codec none,jpeg --quality 20,80)
set_tests_properties(eval_tiny_backbone PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "backbone,original,5,[0-9.]+,[0-9.]+,nan,nan,nan,nan\njpeg,20,5,.*\njpeg,80,5,")

# --fidelity: every row against the backbone's own answer on the original
# file. The original files agree with themselves exactly (agree 1, KL 0);
# a bundle row gets both measures too. Also without a backbone row (the
# reference then runs on its own).
add_test(NAME eval_tiny_fidelity COMMAND $<TARGET_FILE:splitwire> eval --quiet --csv - --fidelity
  --backbone ${SPW_TINYNET} --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models --data ${SPW_EVAL_VAL} --limit 5
  --codec none,jpeg --quality 50 --batch 4)
set_tests_properties(eval_tiny_fidelity PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "agree,kl\nbackbone,original,5,[0-9.]+,[0-9.]+,nan,nan,1.0000,0.00000\njpeg,50,5,[^\n]*,[01].[0-9]+,[0-9]+.[0-9]+\nbundle,tiny-test,5,[^\n]*,[01].[0-9]+,[0-9]+.[0-9]+")
add_test(NAME eval_tiny_fidelity_ref_only COMMAND $<TARGET_FILE:splitwire> eval --quiet --json
  --fidelity --backbone ${SPW_TINYNET} --bundle ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/tiny
  --models ${CMAKE_SOURCE_DIR}/tests/vectors/bundle/models --data ${SPW_EVAL_VAL} --limit 3
  --codec jpeg --quality 90)
set_tests_properties(eval_tiny_fidelity_ref_only PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "\"setting\": \"90\", [^\n]*\"agree\": [01].[0-9]+, \"kl\": [0-9.]+}.*\"setting\": \"tiny-test\", [^\n]*\"agree\": [01].[0-9]+")

# --sweep: every available codec at its default qualities (JSON output).
add_test(NAME eval_tiny_sweep COMMAND $<TARGET_FILE:splitwire> eval --quiet --json
  --backbone ${SPW_TINYNET} --data ${SPW_EVAL_VAL} --limit 2 --sweep --batch 4)
set_tests_properties(eval_tiny_sweep PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "\"method\": \"jpeg\", \"setting\": \"95\", \"images\": 2, \"failed\": 0")

# The real accuracy, when the converted MobileNetV2 is there (skipped, exit 77,
# otherwise): 16 images spread over the ten classes, well above chance.
set(SPW_EVAL_MNV2 ${CMAKE_SOURCE_DIR}/build/models/mobilenet_v2_1.0_224.onnx)
add_test(NAME eval_mobilenet_v2 COMMAND sh -c "
  [ -f '${SPW_EVAL_MNV2}' ] || { echo 'skipped: ${SPW_EVAL_MNV2} missing (tools/models/fetch_backbone.sh)'; exit 77; }
  out=$($<TARGET_FILE:splitwire> eval --quiet --csv - --backbone '${SPW_EVAL_MNV2}' --data '${SPW_EVAL_VAL}' --limit 16) || exit 1
  echo \"$out\"
  echo \"$out\" | awk -F, '$1 == \"backbone\" { ok = $3 == 16 && $6 >= 0.5 && $7 >= 0.75 } END { exit !ok }'")
set_tests_properties(eval_mobilenet_v2 PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77
  ENVIRONMENT "${SPW_TEST_ENV}")

# Unreadable images are skipped and counted; the class table is found above
# the data directory. A small set made in the build tree: one real image and
# one that is not a JPEG.
set(SPW_EVAL_MINI ${CMAKE_BINARY_DIR}/eval-mini/val)
file(MAKE_DIRECTORY ${SPW_EVAL_MINI}/n01440764)
file(COPY ${SPW_EVAL_VAL}/n01440764/ILSVRC2012_val_00009111.jpg DESTINATION ${SPW_EVAL_MINI}/n01440764)
file(WRITE ${SPW_EVAL_MINI}/n01440764/broken.jpg "this is text, not a JPEG\n")
file(WRITE ${CMAKE_BINARY_DIR}/eval-mini/classes.tsv "idx\twnid\tname\timagenet1k_idx\n0\tn01440764\ttench\t0\n")
add_test(NAME eval_skips_unreadable COMMAND sh -c
  "$<TARGET_FILE:splitwire> eval --backbone ${SPW_TINYNET} --data ${SPW_EVAL_MINI} --csv - 2>&1")
set_tests_properties(eval_skips_unreadable PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}"
  PASS_REGULAR_EXPRESSION "skipping [^\n]*broken.jpg.*1 images from [^\n]*\\(1 unreadable, skipped\\).*backbone,original,1,")

# Error paths: a message naming the problem and a non-zero exit.
function(spw_eval_fails name pattern)
  string(REPLACE ";" " " args "${ARGN}")
  add_test(NAME ${name} COMMAND sh -c
    "out=$($<TARGET_FILE:splitwire> eval ${args} 2>&1); rc=$?; echo \"$out\"; [ $rc -ne 0 ] && echo \"$out\" | grep -q -e '${pattern}'")
  set_tests_properties(${name} PROPERTIES TIMEOUT 60 ENVIRONMENT "${SPW_TEST_ENV}")
endfunction()
spw_eval_fails(eval_no_data_dir "data directory /nonexistent/val: not found"
  --backbone ${SPW_TINYNET} --data /nonexistent/val)
spw_eval_fails(eval_no_backbone "fetch_backbone.sh"
  --backbone /nonexistent/mobilenet.onnx --data ${SPW_EVAL_MINI})
spw_eval_fails(eval_no_backbone_default "/nonexistent/mobilenet_v2_1.0_224.onnx not found"
  --models /nonexistent --codec jpeg --data ${SPW_EVAL_MINI})
spw_eval_fails(eval_nothing_to_do "nothing to evaluate" --data ${SPW_EVAL_MINI})
spw_eval_fails(eval_no_data_flag "--data DIR is required" --sweep)
spw_eval_fails(eval_bad_quality "--quality takes" --codec jpeg --quality 0 --data ${SPW_EVAL_MINI})
spw_eval_fails(eval_bad_codec "unknown codec .gif." --codec gif --data ${SPW_EVAL_MINI})
spw_eval_fails(eval_no_images "no image could be evaluated"
  --backbone ${SPW_TINYNET} --data ${CMAKE_BINARY_DIR}/eval-mini/bad)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/eval-mini/bad/n01440764)
file(WRITE ${CMAKE_BINARY_DIR}/eval-mini/bad/n01440764/broken.jpg "not a JPEG\n")

# The plot script, where gnuplot is installed.
add_test(NAME eval_plot COMMAND sh -c "
  command -v gnuplot >/dev/null || { echo 'skipped: no gnuplot'; exit 77; }
  d=${CMAKE_BINARY_DIR}/eval-plot && mkdir -p $d &&
  printf 'method,setting,images,mean_bytes,bpp,top1_1000,top1_10\\nbackbone,original,10,11000,1.75,0.8,0.95\\njpeg,10,10,3000,0.48,0.4,0.8\\njpeg,50,10,8000,1.3,0.7,0.9\\nbundle,b1,10,1500,0.24,0.6,0.9\\n' > $d/r.csv &&
  ${CMAKE_SOURCE_DIR}/tools/eval/plot.sh $d/r.csv $d/plot && [ -s $d/plot.png ] && grep -q '<svg' $d/plot.svg &&
  printf 'method,setting,images,mean_bytes,bpp,top1_1000,top1_10,agree,kl\\nbackbone,original,10,11000,1.75,0.8,0.95,1.0,0\\njpeg,10,10,3000,0.48,0.4,0.8,0.5,1.2\\nbundle,b1,10,1500,0.24,0.6,0.9,0.8,0.2\\n' > $d/f.csv &&
  ${CMAKE_SOURCE_DIR}/tools/eval/plot.sh $d/f.csv $d/fid && grep -q 'agreement with the uncompressed backbone' $d/fid.svg &&
  ! grep -q 'agreement with' $d/plot.svg")
set_tests_properties(eval_plot PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)

# tools/eval/share.py: bytes at equal quality and the model issue's target check.
find_program(SPW_EVAL_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SPW_EVAL_PYTHON3)
  add_test(NAME eval_share COMMAND ${SPW_EVAL_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/eval/test_share.py)
  set_tests_properties(eval_share PROPERTIES TIMEOUT 60)
endif()
