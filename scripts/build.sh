#!/bin/bash
# Builds the modules, the mock provider and the unit tests.
#
#   scripts/build.sh [debian]   into ./build, against NGINX_SRC (default
#                               Debian's nginx-dev tree), for NGINX_BIN
#                               (default Debian's /usr/sbin/nginx)
#   scripts/build.sh 1.30       into ./build-1.30: NGINX 1.30.4 from
#                               ../shared/nginx/nginx-1.30.4.tar.gz (or
#                               $NGINX_TARBALL, see nginx-tarball.sh),
#                               its nginx binary and the modules
#   scripts/build.sh asan       into ./build-asan: the modules and unit
#                               tests with ASan + UBSan, against Debian's
#                               tree (the suites preload the runtime into
#                               /usr/sbin/nginx)
#
# See docs/testing.md.

set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

flavour=${1:-debian}
jobs=${BUILD_JOBS:-$(nproc)}

# what the nginx binary built from a tarball is configured with: the
# static modules of Debian's package (its conf_flags) and the sub filter
# the harness's self-test uses; PCRE2, zlib and OpenSSL from Debian
ngx_tarball_args="--with-debug --with-pcre-jit --with-http_ssl_module
 --with-http_stub_status_module --with-http_realip_module
 --with-http_auth_request_module --with-http_v2_module --with-http_dav_module
 --with-http_slice_module --with-threads --with-http_sub_module"

case $flavour in
debian)
    dir=build
    cmake -S . -B "$dir" -DNGINX_SRC="${NGINX_SRC:-/usr/share/nginx/src}" \
          -DNGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}" >/dev/null
    ;;

1.30)
    dir=build-1.30
    if ! tarball=$(scripts/nginx-tarball.sh); then
        echo "$0: no ../shared/nginx/nginx-1.30.4.tar.gz" \
             "(or set NGINX_TARBALL)" >&2
        exit 1
    fi

    # extracted once; again (with a clean nginx build) when it changes
    src=$root/$dir/src
    sum=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [ "$(cat "$src/.tarball" 2>/dev/null)" != "$sum" ]; then
        echo "build: extracting $tarball"
        rm -rf "$src" "$root/$dir/nginx"
        mkdir -p "$src"
        tar -xzf "$tarball" -C "$src" --strip-components=1
        echo "$sum" > "$src/.tarball"
    fi

    cmake -S . -B "$dir" -DNGINX_SRC="$src" -DNGINX_BUILD_BINARY=ON \
          -DNGINX_CONFIGURE_ARGS="$(echo $ngx_tarball_args)" >/dev/null
    ;;

asan)
    dir=build-asan
    cmake -S . -B "$dir" -DNGINX_SRC="${NGINX_SRC:-/usr/share/nginx/src}" \
          -DNGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}" -DAI_SANITIZE=ON \
          >/dev/null
    ;;

*)
    echo "usage: $0 [debian|1.30|asan]" >&2
    exit 2
    ;;
esac

cmake --build "$dir" -j"$jobs"
