// Runs the fuzz target over files and directories of inputs, without libFuzzer: what CTest does
// with tests/fuzz/corpus/ on every build, so that inputs which once found a bug stay tests.

#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

// Sanitizers reserve terabytes of address space, so the memory limit below is for plain builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IMAGEGATE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define IMAGEGATE_SANITIZED 1
#endif
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  // An input that makes a parser allocate without end (one did: tests/fuzz/corpus/policy-*comma*)
  // fails here with bad_alloc instead of taking the machine's memory; CTest's timeout ends one
  // that loops without allocating.
#ifndef IMAGEGATE_SANITIZED
  const rlimit memory{4UL << 30, 4UL << 30};
  setrlimit(RLIMIT_AS, &memory);
#endif
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
        if (!entry.is_regular_file()) continue;
        replay(entry.path());
        ++inputs;
      }
    } else {
      replay(path);
      ++inputs;
    }
  }
  if (inputs == 0) {
    std::cerr << "fuzz replay: no inputs given\n";
    return 2;
  }
  std::cout << "fuzz replay: " << inputs << " inputs, no failure\n";
  return 0;
}
