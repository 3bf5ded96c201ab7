// The object that owns the precompiled Catch2 header, which every Catch2
// test program reuses (tests/CMakeLists.txt).
