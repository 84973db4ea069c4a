#!/usr/bin/env bash
# Regenerate completions/ from the CLI definition (a test fails when they are stale).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
bin=target/debug/ecomind-admin
mkdir -p completions
$bin completions bash > completions/ecomind-admin.bash
$bin completions zsh > completions/_ecomind-admin
$bin completions fish > completions/ecomind-admin.fish
$bin completions powershell > completions/_ecomind-admin.ps1
$bin completions elvish > completions/ecomind-admin.elv
echo "completions/ regenerated" >&2
