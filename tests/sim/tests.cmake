# The sim tests run the `keel` binary (separate processes must agree on a seed's hash).
if(TARGET keel_sim_tests AND TARGET keel)
  add_dependencies(keel_sim_tests keel)
endif()
