#!/usr/bin/env bash
# scripts/demo builds only the infermeter binary; a plain scripts/build builds everything scripts/test
# needs (issue 9, "A newcomer's first run"). Runs both scripts against a stub cmake on PATH that records
# its arguments, with a stub infermeter, so nothing is compiled.
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/stub" "$tmp/build/bin"
cat > "$tmp/stub/cmake" <<STUB
#!/bin/sh
echo "\$*" >> "$tmp/cmake.log"
STUB
printf '#!/bin/sh\necho "infermeter $*"\n' > "$tmp/build/bin/infermeter"
chmod +x "$tmp/stub/cmake" "$tmp/build/bin/infermeter"
touch "$tmp/build/build.ninja"
export PATH="$tmp/stub:$PATH" BUILD_DIR="$tmp/build" INFERMETER_SKIP_DEPS=1 LLAMA_CPP_DIR="$tmp/llama" BUILD_JOBS=1
unset BUILD_TARGETS

out=$("$src/scripts/demo" --no-db 2>/dev/null)
build_line=$(grep -- '--build' "$tmp/cmake.log" | tail -1)
[[ "$out" == "infermeter evaluate --profile quick"* ]] || { echo "demo did not run infermeter evaluate: $out"; exit 1; }
[[ "$build_line" == *"--target infermeter" ]] || { echo "demo built: $build_line"; exit 1; }

"$src/scripts/build" 2>/dev/null
build_line=$(grep -- '--build' "$tmp/cmake.log" | tail -1)
for t in all llama-bench llama-batched-bench llama-server; do
    [[ " $build_line " == *" $t "* ]] || { echo "scripts/build does not build $t: $build_line"; exit 1; }
done
echo "ok"
