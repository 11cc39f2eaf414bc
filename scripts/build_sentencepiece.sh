#!/bin/sh
# Builds the sentencepiece C++ library that Kumo links from the source distribution PyPI ships
# (sentencepiece's sources with abseil and protobuf-lite bundled, so nothing else is fetched), into
#   DIR/lib/libkumo_sentencepiece.a  sentencepiece, its trainer and the abseil parts they use, one archive
#   DIR/include                      their headers
#   DIR/bin/spm_train                the same version's trainer, for the training parity tests
# Usage: scripts/build_sentencepiece.sh [DIR] (default .build/sentencepiece); JOBS=N (default 2).
# Does nothing when DIR already holds this version. Needs cmake, a C++17 compiler and pip.
set -eu
version=0.2.2
sha256=3d2b5e824b5622038dc7b490897efe05ebbbb9e7350fc142f3ecc8789ef9bdf6
dir=${1:-.build/sentencepiece}
jobs=${JOBS:-2}

[ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ] && exit 0
if ! command -v cmake >/dev/null; then
    echo "building sentencepiece needs cmake: install it (apt-get install cmake) or run make deps" >&2
    exit 1
fi
rm -rf "$dir"
work="$dir/work"
mkdir -p "$work" "$dir/lib" "$dir/include" "$dir/bin"
work=$(cd "$work" && pwd) # cmake needs absolute paths
python3 -m pip download -q --no-deps --no-binary sentencepiece --no-build-isolation -d "$work" \
    "sentencepiece==$version"
echo "$sha256  $work/sentencepiece-$version.tar.gz" | sha256sum -c --quiet -
tar -xzf "$work/sentencepiece-$version.tar.gz" -C "$work"
src="$work/sentencepiece-$version/sentencepiece"

# Its CMakeLists clones abseil from GitHub into the directory the sdist already fills; instead, an
# unknown provider skips that step and the project-include hook adds the bundled copy as it would.
echo 'add_subdirectory("${CMAKE_SOURCE_DIR}/third_party/abseil-cpp" third_party/abseil-cpp)' >"$work/absl.cmake"
run() { # runs "$@" with its output in $work/$log, shown only on failure
    "$@" >"$work/$log" 2>&1 || { tail -30 "$work/$log" >&2; echo "sentencepiece build failed: see $work/$log" >&2; exit 1; }
}
log=cmake.log run cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=17 \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DSPM_ENABLE_SHARED=OFF -DSPM_ENABLE_TCMALLOC=OFF \
    -DSPM_ABSL_PROVIDER=bundled -DCMAKE_PROJECT_sentencepiece_INCLUDE="$work/absl.cmake" -DABSL_PROPAGATE_CXX_STD=ON
log=build.log run cmake --build "$work/build" --target spm_train generate_installed_headers -j "$jobs"

# One archive, so that the link needs no list of abseil's libraries in dependency order.
{
    echo "CREATE $dir/lib/libkumo_sentencepiece.a"
    find "$work/build" -name '*.a' | sort | sed 's/^/ADDLIB /'
    echo SAVE
    echo END
} | ar -M
cp "$work/build/src/installed_headers/sentencepiece_processor.h" \
    "$work/build/src/installed_headers/sentencepiece_trainer.h" "$dir/include/"
(cd "$src/third_party/abseil-cpp" && find absl -name '*.h' -o -name '*.inc' | tar -cf - -T -) | tar -xf - -C "$dir/include"
cp "$work/build/src/spm_train" "$dir/bin/"
# The marker Sources/CSentencePiece checks for, to say what to run when the library is missing.
echo "// sentencepiece $version, built by scripts/build_sentencepiece.sh" >"$dir/include/kumo_sentencepiece_built.h"
rm -rf "$work"
echo "$version" >"$dir/VERSION"
echo "built sentencepiece $version into $dir"
