#!/usr/bin/env bash
# Checks that libinfp.so exports exactly the functions declared in include/infp.h:
# every declared function is a defined dynamic symbol, and every exported (global) symbol is
# declared. Usage: tools/check_exports.sh [include/infp.h] [path/to/libinfp.so]
set -euo pipefail
cd "$(dirname "$0")/.."
header=${1:-include/infp.h}
lib=${2:-.build-release/release/libinfp.so}
CC=${CC:-cc}

[ -f "$header" ] || { echo "check_exports: no header $header" >&2; exit 1; }
[ -f "$lib" ] || { echo "check_exports: no library $lib (run make lib)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Declared functions: preprocess the header alone, split into statements at ';', drop typedefs
# (function pointer types), and take every infp_* name followed by '('.
printf '#include "%s"\n' "$(realpath "$header")" | "$CC" -E -P -x c - \
    | tr '\n' ' ' | tr ';' '\n' \
    | grep -v -E '^[[:space:]]*typedef' \
    | grep -o -E '\binfp_[A-Za-z0-9_]+[[:space:]]*\(' \
    | sed -E 's/[[:space:]]*\($//' | sort -u > "$tmp/declared"

# Exported symbols: defined dynamic symbols with global binding (upper-case nm type). Local
# entries (lower case, like the TLS symbol the static libdispatch leaves in .dynsym) are not
# visible to users and are skipped.
nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 ~ /^[A-Z]$/ { sub(/@.*/, "", $3); print $3 }' \
    | sort -u > "$tmp/exported"
nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 ~ /^[A-Z]$/ && $2 != "T" { print }' > "$tmp/not_functions"

status=0
if [ ! -s "$tmp/declared" ]; then
    echo "check_exports: found no function declarations in $header" >&2
    exit 1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "check_exports: declared in $header but not exported by $lib:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    status=1
fi
if [ -n "$extra" ]; then
    echo "check_exports: exported by $lib but not declared in $header:" >&2
    echo "$extra" | sed 's/^/  /' >&2
    status=1
fi
if [ -s "$tmp/not_functions" ]; then
    echo "check_exports: exported symbols that are not functions:" >&2
    sed 's/^/  /' "$tmp/not_functions" >&2
    status=1
fi
if [ $status = 0 ]; then
    echo "check_exports: $(wc -l < "$tmp/declared") functions declared in $header, all exported, nothing else exported"
fi
exit $status
