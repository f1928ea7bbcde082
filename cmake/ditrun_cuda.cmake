# Decides whether the CUDA sources are compiled, and for which GPUs, and finds the CUDA
# libraries the backend uses (cuBLASLt, cuDNN; NCCL is found in transport/).
# Hopper gets native sm_90a code; a compute_80 PTX target keeps the binary runnable (JIT) on
# other recent GPUs, so code that needs Hopper or Ada instructions is guarded by __CUDA_ARCH__.
include(CheckLanguage)
set(DITRUN_HAVE_CUDA OFF)
if(NOT DITRUN_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "90a-real;80-virtual")
    endif()
    enable_language(CUDA)
    # The core headers (dtype.h, tensor.h) are C++20, and .cu files include them. CMake 3.25
    # does not know nvcc 13's C++20 flag; tell it.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # One shared CUDA runtime: the libraries (cuBLASLt, cuDNN, NCCL) link the shared one too.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    find_package(CUDAToolkit REQUIRED)
    find_library(DITRUN_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ENV CUDNN_HOME PATH_SUFFIXES lib lib64)
    find_path(DITRUN_CUDNN_INCLUDE_DIR cudnn_graph.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV CUDNN_HOME
              PATH_SUFFIXES include)
    if(NOT DITRUN_CUDNN_LIBRARY OR NOT DITRUN_CUDNN_INCLUDE_DIR)
      message(FATAL_ERROR "CUDA found but not cuDNN 9 (cudnn_graph.h, libcudnn): the CUDA backend needs it")
    endif()
    set(DITRUN_HAVE_CUDA ON)
  elseif(DITRUN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "DITRUN_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

# Compile options of every target that holds .cu files: warnings are errors in host and device
# code, and ptxas refuses a kernel that spills registers to local memory (a spill in a hot
# kernel costs more than any tuning gains; a kernel that must spill says so by moving to a
# target without this flag). --resource-usage prints registers per kernel into the build log.
function(ditrun_cuda_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-warn-spills,-warn-lmem-usage,-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:--resource-usage>
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>
    $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endfunction()

message(STATUS "ditrun: CUDA backend ${DITRUN_HAVE_CUDA} (architectures: ${CMAKE_CUDA_ARCHITECTURES})")
