# keel_impl_library(NAME): a library of every .cc in the current directory that implements
# src/env/ interfaces (sim/, net/, disk/). Its headers are included as "<dir>/<name>.h"
# through the project root, which only the composition root, tests and benches see.
function(keel_impl_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC keel_env keel_base ${ARG_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE keel_env keel_base ${ARG_DEPS})
  endif()
endfunction()
