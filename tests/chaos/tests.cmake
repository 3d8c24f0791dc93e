# The chaos scenarios at scale: `keel sim` over many seeds (issue 4: at least 1,000 in
# `make test`; fewer under the sanitizers, which run ~3x slower), and the planted bugs.
if(KEEL_SANITIZE)
  set(keel_sim_seeds 100)
else()
  set(keel_sim_seeds 1000)
endif()
add_test(NAME sim_seeds COMMAND keel sim --seeds ${keel_sim_seeds} --jobs 2)
set_tests_properties(sim_seeds PROPERTIES TIMEOUT 1800)
if(NOT KEEL_SANITIZE)
  add_test(NAME planted_bugs
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/planted_bugs.sh ${PROJECT_SOURCE_DIR}
                   ${PROJECT_BINARY_DIR}/plant-build)
  set_tests_properties(planted_bugs PROPERTIES TIMEOUT 1800)
endif()
