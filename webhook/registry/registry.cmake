# The registry client: included by webhook/CMakeLists.txt into the imagegate_registry module.
target_sources(imagegate_registry PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/registry.cc
  ${CMAKE_CURRENT_LIST_DIR}/digest.cc
  ${CMAKE_CURRENT_LIST_DIR}/url.cc
  ${CMAKE_CURRENT_LIST_DIR}/manifest.cc
  ${CMAKE_CURRENT_LIST_DIR}/auth.cc
  ${CMAKE_CURRENT_LIST_DIR}/registry_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/http_client.cc
  ${CMAKE_CURRENT_LIST_DIR}/distribution_registry.cc)
target_link_libraries(imagegate_registry PUBLIC
  Boost::headers OpenSSL::SSL OpenSSL::Crypto nlohmann_json::nlohmann_json
  ${IMAGEGATE_YAML_TARGET} Threads::Threads)
