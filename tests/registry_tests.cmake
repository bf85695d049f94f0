# Registry client tests: pure parsers and protocol logic (unit), and a real docker-registry
# (integration, below).
imagegate_test(registry_digest_test SOURCES unit/registry/digest_test.cc DEPS imagegate_registry_formats)
imagegate_test(registry_url_test SOURCES unit/registry/url_test.cc DEPS imagegate_registry_formats)
imagegate_test(registry_manifest_test SOURCES unit/registry/manifest_test.cc DEPS imagegate_registry_formats)
imagegate_test(registry_auth_test SOURCES unit/registry/auth_test.cc DEPS imagegate_registry_formats)
imagegate_test(registry_config_test SOURCES unit/registry/registry_config_test.cc DEPS imagegate_registry_formats)
imagegate_test(registry_distribution_test SOURCES unit/registry/distribution_registry_test.cc
  DEPS imagegate_registry)
imagegate_test(registry_http_client_test SOURCES unit/registry/http_client_test.cc
  DEPS imagegate_registry)
# Images on disk (oci:, docker-archive:), layouts and archives built by the test.
imagegate_test(registry_local_sources_test SOURCES unit/registry/local_sources_test.cc
  DEPS imagegate_registry LibArchive::LibArchive PkgConfig::ZSTD)

# The integration test starts real registries (tests/fixtures/registry) once per suite and builds
# the test images once per run, so it is one CTest test running the whole binary: with
# gtest_discover_tests (imagegate_test) every case would be its own process and would build the
# images and start and fill a registry again, ten times the run time.
add_executable(registry_integration_test integration/registry_integration_test.cc)
target_include_directories(registry_integration_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(registry_integration_test PRIVATE
  imagegate_registry GTest::gtest GTest::gmock imagegate_warnings)
target_compile_definitions(registry_integration_test PRIVATE IMAGEGATE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_test(NAME registry_integration_test COMMAND registry_integration_test)
set_tests_properties(registry_integration_test PROPERTIES LABELS integration TIMEOUT 900)

# The real imagegate binary (check, and serve and review with --registry-config) against real
# registries: one CTest test running the whole binary, for the same reason as above.
add_executable(image_facts_integration_test integration/image_facts_integration_test.cc)
target_include_directories(image_facts_integration_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(image_facts_integration_test PRIVATE
  GTest::gtest GTest::gmock nlohmann_json::nlohmann_json imagegate_warnings)
target_compile_definitions(image_facts_integration_test PRIVATE
  IMAGEGATE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  IMAGEGATE_BINARY="$<TARGET_FILE:imagegate>")
add_dependencies(image_facts_integration_test imagegate)
add_test(NAME image_facts_integration_test COMMAND image_facts_integration_test)
set_tests_properties(image_facts_integration_test PROPERTIES LABELS integration TIMEOUT 600)

# The real imagegate binary against a hostile registry (tests/fixtures/registry/hostile_registry.py,
# started once per test process in well under a second): endless chunked replies, Retry-After
# beyond the deadline, a registry that never answers, credentials echoed in error messages.
imagegate_test(hostile_registry_test SOURCES integration/hostile_registry_test.cc
  DEPS nlohmann_json::nlohmann_json LABEL integration)

# Every review answered within its ?timeout= (+100 ms) against a registry that never answers, one
# that drips the layer at 1 KB/s (tests/fixtures/registry/drip_registry.py) and one that is down;
# a scan that outlives its review fills the cache for the next one.
imagegate_test(review_deadline_test SOURCES integration/review_deadline_test.cc
  DEPS nlohmann_json::nlohmann_json LABEL integration)
