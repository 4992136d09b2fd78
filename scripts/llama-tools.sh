#!/usr/bin/env bash
# Builds the llama.cpp pieces that the end-to-end tests compare against into
# DEST, from the llama.cpp vendored in the llama-cpp-python source package
# (the same release as the tokenizer test vectors):
#
#   PYTHON=VENV/bin/python scripts/llama-tools.sh DEST
#   . DEST/env.sh        # exports LLAMA_PERPLEXITY and LLAMA_CPP_LIB_PATH
#
#   DEST/bin/llama-perplexity
#   DEST/lib/libllama.so, libggml.so, libggml-base.so, libggml-cpu.so, ...
#       (RUNPATH $ORIGIN: each library finds the others next to it)
#   DEST/env.sh
#
# With PYTHON set, it also installs the Python bindings, llama-cpp-python,
# into that interpreter's environment without building llama.cpp a second
# time (-DLLAMA_BUILD=OFF): they load DEST/lib/libllama.so through
# LLAMA_CPP_LIB_PATH. Without PYTHON, only the tools are built.
#
# Cached: when DEST holds this build (DEST/.stamp) and PYTHON's environment
# has the bindings, it prints the variables at once. The first build takes
# about 6 minutes on 2 cores. The build is portable (no -march=native; AVX2,
# FMA and F16C, no AVX-512), so machines can share DEST. Needs cmake (3.21 or
# newer, for the bindings), ninja and g++. The source package is
# SWITCHYARD_LLAMA_SDIST when set (see scripts/llama-sdist.sh), otherwise
# downloaded into DEST and kept there.
set -euo pipefail

VERSION=0.3.36

if [[ $# -ne 1 ]]; then
    echo "usage: [PYTHON=VENV/bin/python] $0 DEST" >&2
    exit 2
fi
mkdir -p "$1"
DEST=$(cd "$1" && pwd)
SCRIPTS=$(cd "$(dirname "$0")" && pwd)

# Option names from the vendored llama.cpp's CMakeLists.txt and
# ggml/CMakeLists.txt. LLAMA_CURL is gone from this release (passing it only
# warns that it is ignored); LLAMA_OPENSSL is what remains of HTTPS support.
CMAKE_FLAGS=(
    -G Ninja
    -DCMAKE_BUILD_TYPE=Release
    -DBUILD_SHARED_LIBS=ON
    -DLLAMA_BUILD_COMMON=ON
    -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_SERVER=OFF
    -DLLAMA_BUILD_APP=OFF
    -DLLAMA_OPENSSL=OFF
    -DGGML_CCACHE=OFF
    -DGGML_NATIVE=OFF
    -DGGML_SSE42=ON
    -DGGML_AVX=ON
    -DGGML_AVX2=ON
    -DGGML_BMI2=ON
    -DGGML_FMA=ON
    -DGGML_F16C=ON
    -DGGML_AVX512=OFF
    -DGGML_AVX_VNNI=OFF
    # Every binary and library looks for its libraries next to itself and
    # in ../lib, wherever DEST is.
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON
    '-DCMAKE_INSTALL_RPATH=$ORIGIN;$ORIGIN/../lib'
)
TARGETS=(llama llama-perplexity)
stamp_text="llama.cpp from llama-cpp-python $VERSION: ${TARGETS[*]}: ${CMAKE_FLAGS[*]}"

# Written on every call, so a DEST that moved (or is shared from another
# path) still points at itself.
print_env() {
    printf 'export LLAMA_PERPLEXITY=%q\nexport LLAMA_CPP_LIB_PATH=%q\n' \
        "$DEST/bin/llama-perplexity" "$DEST/lib" >"$DEST/env.sh"
    cat "$DEST/env.sh"
}

bindings_installed() {
    [[ -n ${PYTHON:-} ]] || return 0
    "$PYTHON" - "$VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
sys.exit(importlib.metadata.version("llama-cpp-python") != sys.argv[1])
EOF
}

built() {
    [[ -f $DEST/.stamp && $(<"$DEST/.stamp") == "$stamp_text" ]]
}

if built && bindings_installed; then
    echo "llama.cpp tools already in $DEST"
    print_env
    exit 0
fi

for tool in cmake ninja g++; do
    command -v "$tool" >/dev/null || {
        echo "$0: needs $tool (apt-get install cmake ninja-build g++)" >&2
        exit 2
    }
done

sdist=
get_sdist() {
    [[ -n $sdist ]] || sdist=$(bash "$SCRIPTS/llama-sdist.sh" "$DEST")
}

if ! built; then
    start=$SECONDS
    rm -rf "$DEST/.stamp" "$DEST/bin" "$DEST/lib" "$DEST/env.sh" "$DEST/src" "$DEST/build"
    get_sdist
    echo "unpacking llama.cpp from $sdist"
    tar -xzf "$sdist" -C "$DEST" "llama_cpp_python-$VERSION/vendor/llama.cpp"
    mv "$DEST/llama_cpp_python-$VERSION/vendor/llama.cpp" "$DEST/src"
    rm -rf "$DEST/llama_cpp_python-$VERSION"

    log=$DEST/build.log
    echo "building ${TARGETS[*]} (log: $log)"
    if ! { cmake -S "$DEST/src" -B "$DEST/build" "${CMAKE_FLAGS[@]}" &&
        cmake --build "$DEST/build" -j"$(nproc)" --target "${TARGETS[@]}"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "$0: the llama.cpp build failed; the whole log is $log" >&2
        exit 1
    fi

    mkdir -p "$DEST/bin" "$DEST/lib"
    cp -a "$DEST/build/bin/llama-perplexity" "$DEST/bin/"
    cp -a "$DEST/build/bin/"*.so* "$DEST/lib/"
    # Loads every library it links against, from DEST, or fails.
    "$DEST/bin/llama-perplexity" --version >/dev/null 2>&1 || {
        ldd "$DEST/bin/llama-perplexity" >&2
        echo "$0: $DEST/bin/llama-perplexity does not run" >&2
        exit 1
    }
    # The sources and objects are not needed any more: only bin/ and lib/
    # stay in the cache.
    rm -rf "$DEST/src" "$DEST/build"
    echo "$stamp_text" >"$DEST/.stamp"
    echo "llama.cpp tools built in $((SECONDS - start))s"
fi

if ! bindings_installed; then
    get_sdist
    echo "installing llama-cpp-python $VERSION into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    # scikit-build-core is the build backend; with it in the environment (as
    # in tests/e2e/requirements.txt), pip builds with the cmake, ninja and
    # compiler already here instead of fetching its own. LLAMA_BUILD=OFF
    # leaves only a configure step (project() still looks for a C and C++
    # compiler) and packs the Python sources alone.
    isolation=()
    if "$PYTHON" -c 'import scikit_build_core' 2>/dev/null; then
        isolation=(--no-build-isolation)
    fi
    CMAKE_ARGS="-DLLAMA_BUILD=OFF" "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        "${isolation[@]}" "$sdist"
    LLAMA_CPP_LIB_PATH=$DEST/lib "$PYTHON" -c 'import llama_cpp' || {
        echo "$0: llama_cpp does not load $DEST/lib/libllama.so" >&2
        exit 1
    }
fi

print_env
