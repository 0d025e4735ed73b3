#!/bin/bash
# Configures an NGINX source tree to build this repository's modules as
# dynamic modules into BUILD_DIR.
#
#   scripts/nginx-configure.sh NGINX_SRC BUILD_DIR REPO_DIR
#
# Debian's nginx-dev tree ships conf_flags, the configure arguments of the
# packaged nginx (with --with-compat): they are used so that the modules
# load into Debian's stock nginx.  Any other source tree is configured
# with --with-compat plus $NGINX_CONFIGURE_ARGS.

set -euo pipefail

src=$1
build=$2
repo=$3

cd "$src"

if [ -f conf_flags ]; then
    . ./conf_flags
else
    NGX_CONF_FLAGS=(--with-compat)
fi

# shellcheck disable=SC2086
exec ./configure "${NGX_CONF_FLAGS[@]}" ${NGINX_CONFIGURE_ARGS:-} \
    --add-dynamic-module="$repo" --builddir="$build"
