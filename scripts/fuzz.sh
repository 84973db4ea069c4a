#!/usr/bin/env bash
# Fuzz URL parsing/redaction and email validation with cargo-fuzz (libFuzzer), SECONDS
# each (default 60). Not part of CI. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# on a stable toolchain RUSTC_BOOTSTRAP=1 lets it pass the sanitizer flags.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
for target in url_redaction email; do
    echo "==> fuzzing $target for ${SECS}s" >&2
    mkdir -p "fuzz/corpus/$target"
    cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$SECS" -max_len=4096 2>&1 \
        | grep -E "^(#[0-9]+\s+DONE|Done|==[0-9]+==|SUMMARY)|panicked|survived|stat::" || true
    # libFuzzer exits non-zero on a crash; cargo fuzz leaves the input in fuzz/artifacts.
    if ls "fuzz/artifacts/$target"/crash-* >/dev/null 2>&1; then
        echo "CRASH in $target: see fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "no crashes" >&2
