# ctest helper: run the example on the test recording and compare its lines with expected.txt
execute_process(COMMAND ${EXE} ${VEC}/recording.bin OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "example exited with ${rc}")
endif()
file(READ ${VEC}/expected.txt want)
if(NOT out STREQUAL want)
  message(FATAL_ERROR "results differ from test_vectors/expected.txt")
endif()
