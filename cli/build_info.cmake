# Run by the build at every invocation (cli/CMakeLists.txt): writes the commit
# the tool is built from, and whether the tree differed from it, into OUT. The
# file is rewritten only when that changes, so an unchanged tree rebuilds
# nothing. Outside a git checkout the commit is "unknown".
# Inputs: SOURCE_DIR, IN (the template), OUT, VERSION, BUILD_TYPE.
set(DSO_GIT_COMMIT "unknown")
set(DSO_GIT_DIRTY "std::nullopt")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" rev-parse HEAD
                  OUTPUT_VARIABLE commit RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0)
    set(DSO_GIT_COMMIT "${commit}")
    # Untracked files count: the build compiles every source file it finds.
    execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" status --porcelain
                    OUTPUT_VARIABLE changes RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(rc EQUAL 0)
      if(changes STREQUAL "")
        set(DSO_GIT_DIRTY "false")
      else()
        set(DSO_GIT_DIRTY "true")
      endif()
    endif()
  endif()
endif()
set(DSO_VERSION "${VERSION}")
set(DSO_BUILD_TYPE "${BUILD_TYPE}")
configure_file("${IN}" "${OUT}" @ONLY)
