#!/bin/bash
# Builds the Debian packages (libnginx-mod-http-ai-*) with Debian's own
# tools, from a clean copy of the repository, and checks them with
# lintian.
#
#   scripts/package.sh [OUT_DIR]       default ./build-deb
#
# The copy holds the files git knows of (tracked, and untracked ones that
# are not ignored: what a commit would hold), never a build directory:
# OUT_DIR/src.  dpkg-buildpackage -b builds there (debian/rules: the
# nginx_mod build system of dh-sequence-nginx and dh_nginx) and leaves the
# .deb files in OUT_DIR; lintian's report goes to OUT_DIR/lintian.txt
# and to stdout.  The exit status is non-zero when the build fails or
# lintian reports an error.
#
# What it needs (Debian 12): scripts/deps.sh --package.  See
# docs/install.md.

set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

out=${1:-build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src

rm -rf "$src"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes "$out"/lintian.txt
mkdir -p "$src"

if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
              # a tracked file deleted in the working tree is left out
              [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
          done \
        | tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
else
    # an unpacked release: everything but build and test directories
    tar -C "$root" --exclude='./build' --exclude='./build-*' \
        --exclude='./t/servroot*' --exclude='./t/sdk/node_modules' \
        --exclude='./run' -cf - . | tar -C "$src" -xf -
fi

jobs=${BUILD_JOBS:-$(nproc)}
start=$SECONDS
echo "package: dpkg-buildpackage -b in $src"
(
    cd "$src"
    unset NGX_AI_TEST_MODULES
    DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -b -us -uc
) > "$out/build.log" 2>&1 || {
    tail -40 "$out/build.log" >&2
    echo "package: dpkg-buildpackage failed, see $out/build.log" >&2
    exit 1
}
echo "package: built in $((SECONDS - start))s:"
ls -1 "$out"/*.deb

if ! command -v lintian >/dev/null; then
    echo "package: lintian is not installed (scripts/deps.sh --package)" >&2
    exit 1
fi

start=$SECONDS
rc=0
lintian --fail-on error "$out"/*.changes > "$out/lintian.txt" 2>&1 || rc=$?
echo "package: lintian ($((SECONDS - start))s), exit $rc:"
cat "$out/lintian.txt"
exit $rc
