# tests/tooling: the build's own guards, each shown to bite (included by tests/CMakeLists.txt).
find_package(Python3 COMPONENTS Interpreter QUIET)
keel_require_package(Python3_FOUND "python3" "Python 3 (determinism lint)")
set(keel_tooling_dir ${CMAKE_CURRENT_LIST_DIR})

# The determinism lint passes on the tree as it is...
add_test(NAME tooling.lint_tree
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/lint_determinism.py
                 ${PROJECT_SOURCE_DIR}/src)
# ...fails, naming file, line and rule, when a forbidden call of each family is added to a
# copy of src/, and stays quiet on legitimate code (comments, strings, member calls).
foreach(case clock thread sleep io random unordered process layering clean)
  add_test(NAME tooling.lint_${case}
           COMMAND ${Python3_EXECUTABLE} ${keel_tooling_dir}/lint_test.py ${case})
endforeach()

# The dependency rule: a library compiled like every src/ library (linking keel_env, so it
# sees only src/ as include root) cannot include sim/, net/ or disk/ headers. The probes are
# EXCLUDE_FROM_ALL; each test builds its probe. The positive control shows the setup builds,
# so the failing probe fails for its include and nothing else.
add_library(keel_tooling_probe_env STATIC EXCLUDE_FROM_ALL ${keel_tooling_dir}/probe/includes_env.cc)
target_link_libraries(keel_tooling_probe_env PRIVATE keel_env)
add_library(keel_tooling_probe_sim STATIC EXCLUDE_FROM_ALL ${keel_tooling_dir}/probe/includes_sim.cc)
target_link_libraries(keel_tooling_probe_sim PRIVATE keel_env)
add_test(NAME tooling.include_rule_control
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR}
                 -DTARGET=keel_tooling_probe_env -DEXPECT=pass
                 -P ${keel_tooling_dir}/check_build.cmake)
add_test(NAME tooling.include_rule_src_cannot_include_sim
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR}
                 -DTARGET=keel_tooling_probe_sim -DEXPECT=fail
                 "-DREGEX=sim/scheduler\\.h'?:? (No such file or directory|file not found)"
                 -P ${keel_tooling_dir}/check_build.cmake)
# Two builds in one build tree at once would race on Ninja's logs.
set_tests_properties(tooling.include_rule_control tooling.include_rule_src_cannot_include_sim
                     PROPERTIES RESOURCE_LOCK keel_build_tree)

# scripts/deps.sh installs exactly the missing packages, through sudo when not root, and
# does nothing when all are present (with stand-ins for dpkg-query, apt-get, sudo and id).
add_test(NAME tooling.deps_script COMMAND bash ${keel_tooling_dir}/deps_test.sh)
# The Makefile wires them in: `make lint` and `make format-check` fail on a copy of the tree
# with a forbidden call or a misformatted file, and `make test` runs both before building.
add_test(NAME tooling.make_checks_fail COMMAND bash ${keel_tooling_dir}/make_checks_test.sh)
