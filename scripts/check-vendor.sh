#!/usr/bin/env bash
# The vendored sqlx crates (vendor/*) must differ from their crates.io releases by
# exactly the hunks in vendor/<crate>/PATCH.diff, each cited in its PATCHED.md. Fetches
# the releases with cargo (the registry only), extracts them and compares. Run by
# scripts/test.sh. `scripts/check-vendor.sh --write` rewrites the PATCH.diff files.
set -euo pipefail
cd "$(dirname "$0")/.."
write=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crates=(sqlx-core sqlx-postgres)
version() { sed -n 's/^version = "\(.*\)"/\1/p' "vendor/$1/Cargo.toml" | head -1; }

mkdir -p "$work/fetch/src"
: > "$work/fetch/src/lib.rs"
{
    printf '[package]\nname = "vendor-check"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n'
    for c in "${crates[@]}"; do printf '%s = "=%s"\n' "$c" "$(version "$c")"; done
} > "$work/fetch/Cargo.toml"
cargo fetch -q --manifest-path "$work/fetch/Cargo.toml"

status=0
for c in "${crates[@]}"; do
    v=$(version "$c")
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$c-$v.crate" 2>/dev/null | head -1)
    [[ -n "$crate" ]] || { echo "check-vendor: $c-$v.crate not in cargo's cache" >&2; exit 1; }
    tar -xzf "$crate" -C "$work"
    # The release's packaging files and ours are not part of the comparison.
    actual=$(cd "$work" && diff -ru \
        --exclude=.cargo_vcs_info.json --exclude=Cargo.toml.orig --exclude=Cargo.lock \
        --exclude=README.md --exclude=PATCHED.md --exclude=PATCH.diff \
        "$c-$v" "$OLDPWD/vendor/$c" \
        | sed -E -e '/^diff -ru /d' \
                 -e 's#^(---|\+\+\+) ([^\t]*)\t.*#\1 \2#' \
                 -e "s#$OLDPWD/vendor/$c#b#g" -e "s#$c-$v#a#g" || true)
    if [[ "$write" == "--write" ]]; then
        printf '%s\n' "$actual" > "vendor/$c/PATCH.diff"
        echo "check-vendor: wrote vendor/$c/PATCH.diff" >&2
    elif ! diff -u "vendor/$c/PATCH.diff" <(printf '%s\n' "$actual") >&2; then
        echo "check-vendor: vendor/$c differs from $c $v on crates.io by more (or less) than vendor/$c/PATCH.diff" >&2
        status=1
    fi
done
[[ $status -eq 0 ]] && echo "check-vendor: vendor/ = crates.io releases + PATCH.diff" >&2
exit $status
