// Test runner entry point (Catch2 v2). Tags: [cpu] always runs; [gpu] needs a CUDA device and reports a visible
// skip without one; [slow]; [real-data] reads ../shared/data when present.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
