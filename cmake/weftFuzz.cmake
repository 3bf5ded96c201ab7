# weftFuzz.cmake: fuzz targets, replayed by ctest in every build and built
# as libFuzzer binaries with -DWEFT_FUZZ=ON under clang (see `make fuzz`).
#
# weft_fuzz_target(NAME name TEST test SOURCES src... CORPUS dir
#                  [LIBS lib...] [DEFINITIONS def...] [INSTRUMENT target...])
#
# The sources define LLVMFuzzerTestOneInput(). Every build links them with
# fuzz/fuzz_replay_main.c into name_replay, which replays the seed corpus
# (the files of dir) as the ctest test `test`. With WEFT_FUZZ=ON the same
# sources also become the libFuzzer binary `name`, and the INSTRUMENT
# libraries (the parsers under test) are built with coverage
# instrumentation so that the fuzzer sees their branches.

option(WEFT_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(WEFT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WEFT_FUZZ=ON needs clang: configure with CC=clang "
                        "CXX=clang++ (and libclang-rt-dev for libFuzzer)")
  endif()
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
  check_c_source_compiles(
    "#include <stddef.h>
     #include <stdint.h>
     int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
    WEFT_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(NOT WEFT_HAVE_LIBFUZZER)
    message(FATAL_ERROR "WEFT_FUZZ=ON: clang cannot link -fsanitize=fuzzer "
                        "(install libclang-rt-dev for this clang)")
  endif()
  # Every libFuzzer binary, for `make fuzz`.
  add_custom_target(weft_fuzz_all)
endif()

set(WEFT_FUZZ_REPLAY_MAIN ${CMAKE_CURRENT_LIST_DIR}/../fuzz/fuzz_replay_main.c)

function(weft_fuzz_target)
  cmake_parse_arguments(arg "" "NAME;TEST;CORPUS"
                        "SOURCES;LIBS;DEFINITIONS;INSTRUMENT" ${ARGN})
  add_executable(${arg_NAME}_replay ${arg_SOURCES} ${WEFT_FUZZ_REPLAY_MAIN})
  target_compile_definitions(${arg_NAME}_replay PRIVATE ${arg_DEFINITIONS}
                             WEFT_FUZZ_CORPUS_DIR="${arg_CORPUS}")
  target_link_libraries(${arg_NAME}_replay PRIVATE ${arg_LIBS})
  weft_add_test(NAME ${arg_TEST} TARGET ${arg_NAME}_replay LABELS unit)
  if(WEFT_FUZZ)
    foreach(_target ${arg_INSTRUMENT})
      if(TARGET ${_target})
        target_compile_options(${_target} PRIVATE -fsanitize=fuzzer-no-link)
      endif()
    endforeach()
    add_executable(${arg_NAME} ${arg_SOURCES})
    target_compile_definitions(${arg_NAME} PRIVATE ${arg_DEFINITIONS})
    target_compile_options(${arg_NAME} PRIVATE -fsanitize=fuzzer)
    target_link_options(${arg_NAME} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${arg_NAME} PRIVATE ${arg_LIBS})
    # `make fuzz` runs every binary of fuzz/, each from its seed corpus
    # (named in NAME.corpus next to it).
    add_dependencies(weft_fuzz_all ${arg_NAME})
    set_target_properties(${arg_NAME} PROPERTIES
                          RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    file(WRITE ${CMAKE_BINARY_DIR}/fuzz/${arg_NAME}.corpus "${arg_CORPUS}\n")
  endif()
endfunction()
