# weftTesting.cmake: how every test in the tree is registered with ctest.
#
# WEFT_TEST_PROPERTIES holds the properties every test gets: a hard timeout
# (120 s, longer in the slow builds, yet short enough that a hung test does
# not stall a run for long) and WEFT_TEST_TIMEOUT_SCALE, which tests multiply
# their own waits by (1 normally, 3 with gcov counters, 5 under sanitizers
# and emulation, 20 under Valgrind).
# WEFT_TEST_EMULATOR is the command every test program runs under: empty
# normally, Valgrind in a WEFT_VALGRIND build. In a cross build whose
# toolchain file names an emulator (cmake/aarch64-linux-gnu.cmake: qemu
# user mode), ctest runs every test program under it, the timeouts grow
# as under sanitizers, and WEFT_TEST_EMULATOR_ENV hands the emulator to the
# tests that start programs themselves (apps/common/testing/weft_app.py).

if(WEFT_VALGRIND)
  set(WEFT_TEST_TIMEOUT_SCALE 20)
  set(WEFT_TEST_TIMEOUT 300)
elseif(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR)
  # Under emulation the scripts that cross-build programs of their own
  # (test_install, test_new_app) take 3-4 minutes on a loaded machine.
  set(WEFT_TEST_TIMEOUT_SCALE 5)
  set(WEFT_TEST_TIMEOUT 600)
elseif(WEFT_SANITIZE)
  set(WEFT_TEST_TIMEOUT_SCALE 5)
  set(WEFT_TEST_TIMEOUT 240)
elseif(WEFT_COVERAGE)
  # gcov's counters, shared by every thread, slow the stress tests most.
  set(WEFT_TEST_TIMEOUT_SCALE 3)
  set(WEFT_TEST_TIMEOUT 180)
else()
  set(WEFT_TEST_TIMEOUT_SCALE 1)
  set(WEFT_TEST_TIMEOUT 120)
endif()

set(WEFT_TEST_PROPERTIES
    TIMEOUT ${WEFT_TEST_TIMEOUT}
    ENVIRONMENT WEFT_TEST_TIMEOUT_SCALE=${WEFT_TEST_TIMEOUT_SCALE})

set(WEFT_TEST_EMULATOR "")
set(WEFT_TEST_EMULATOR_ENV "")
if(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR AND NOT WEFT_VALGRIND)
  string(REPLACE ";" " " _weft_emulator "${CMAKE_CROSSCOMPILING_EMULATOR}")
  set(WEFT_TEST_EMULATOR_ENV "WEFT_TEST_EMULATOR=${_weft_emulator}")
  # The test programs see it too: one that starts itself again
  # (test_error_log) must go through the emulator.
  set(WEFT_TEST_EMULATOR env "${WEFT_TEST_EMULATOR_ENV}" ${CMAKE_CROSSCOMPILING_EMULATOR})
endif()
if(WEFT_VALGRIND)
  # Any error Valgrind finds, or a definite leak, fails the test with exit
  # code 99, so that ctest reports it like any other failure.
  set(WEFT_TEST_EMULATOR
      ${WEFT_VALGRIND_PROGRAM}
      --error-exitcode=99
      --leak-check=full
      --errors-for-leak-kinds=definite
      --show-leak-kinds=definite
      --track-fds=no
      --quiet)
endif()

# weft_add_test(NAME name TARGET target [LABELS label...] [ARGS arg...])
#
# Registers the executable target as the ctest test name, run under
# WEFT_TEST_EMULATOR with WEFT_TEST_PROPERTIES.
function(weft_add_test)
  cmake_parse_arguments(arg "" "NAME;TARGET" "LABELS;ARGS" ${ARGN})
  if(WEFT_TEST_EMULATOR)
    set_property(TARGET ${arg_TARGET} PROPERTY
                 CROSSCOMPILING_EMULATOR "${WEFT_TEST_EMULATOR}")
  endif()
  add_test(NAME ${arg_NAME} COMMAND ${arg_TARGET} ${arg_ARGS})
  set_tests_properties(${arg_NAME} PROPERTIES ${WEFT_TEST_PROPERTIES})
  if(arg_LABELS)
    set_tests_properties(${arg_NAME} PROPERTIES LABELS "${arg_LABELS}")
  endif()
endfunction()
