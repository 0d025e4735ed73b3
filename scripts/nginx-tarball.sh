#!/bin/bash
# Prints the path of the NGINX 1.30.4 source tarball the 1.30 build
# uses, or exits 1 when there is none:
#   $NGINX_TARBALL if set, else ../shared/nginx/nginx-1.30.4.tar.gz
#   beside the repository (and, in a git worktree, beside the main one).

set -euo pipefail

cd "$(dirname "$0")/.."

if [ -n "${NGINX_TARBALL:-}" ]; then
    [ -f "$NGINX_TARBALL" ] && realpath "$NGINX_TARBALL" && exit 0
    echo "$0: NGINX_TARBALL=$NGINX_TARBALL not found" >&2
    exit 1
fi

name=shared/nginx/nginx-1.30.4.tar.gz
dirs=("$PWD/..")
if common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
then
    dirs+=("$(dirname "$common")/..")
fi

for d in "${dirs[@]}"; do
    if [ -f "$d/$name" ]; then
        realpath "$d/$name"
        exit 0
    fi
done
exit 1
