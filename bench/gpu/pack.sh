#!/usr/bin/env bash
# Packs what the GPU box (no network, no npm, no SQLite/zlib -dev files) needs to build infermeter
# into the ignored .carry/: llama.cpp's build tree (from third_party/llama.cpp, as fetched by
# scripts/fetch-llama), the Qwen2 vocabulary, the SQLite amalgamation (from the better-sqlite3 npm
# package), zlib's headers and libcurl's headers (from the libcurl4-openssl-dev package; the box has
# the libcurl.so.4 runtime). bench/gpu/run.sh unpacks and uses them there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p .carry
grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
tar -C third_party -cJf .carry/llama-src.tar.xz \
    llama.cpp/CMakeLists.txt llama.cpp/LICENSE llama.cpp/licenses llama.cpp/cmake llama.cpp/ggml llama.cpp/src \
    llama.cpp/include llama.cpp/common llama.cpp/vendor llama.cpp/tools llama.cpp/scripts/ui-assets.cmake \
    llama.cpp/models/ggml-vocab-qwen2.gguf llama.cpp/models/ggml-vocab-llama-bpe.gguf
work=$(mktemp -d)
(cd "$work" && npm pack --silent better-sqlite3@12 >/dev/null && tar -xzf better-sqlite3-*.tgz package/deps/sqlite3)
mkdir -p .carry/sqlite3 .carry/zlib
cp "$work"/package/deps/sqlite3/sqlite3.{c,h} .carry/sqlite3/
cp /usr/include/zlib.h /usr/include/zconf.h .carry/zlib/
# libcurl headers: from the installed -dev package, else from the package file itself.
rm -rf .carry/curl && mkdir -p .carry/curl
curl_inc=$(dpkg -L libcurl4-openssl-dev 2>/dev/null | grep -m1 '/curl/curl.h$' || true)
if [[ -z "$curl_inc" ]]; then
    (cd "$work" && apt-get download libcurl4-openssl-dev >/dev/null && dpkg -x libcurl4-openssl-dev_*.deb curl-dev)
    curl_inc=$(find "$work/curl-dev" -path '*/curl/curl.h' | head -1)
fi
cp -r "$(dirname "$curl_inc")" .carry/curl/
rm -rf "$work"
du -sh .carry/*
