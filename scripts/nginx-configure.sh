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
#
# A release tarball has ./configure; a tree from the repository (or
# GitHub's source archive) has auto/configure only: whichever exists is
# run, from the top of the tree as both expect.
#
# $NGINX_CC_OPT and $NGINX_LD_OPT, when set, become --with-cc-opt and
# --with-ld-opt (the sanitizer build passes -fsanitize=... this way);
# --with-cc-opt is -g -O2 otherwise.

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

if [ -x configure ]; then
    configure=./configure
elif [ -f auto/configure ]; then
    configure=auto/configure
else
    echo "$0: $src has neither ./configure nor auto/configure" >&2
    exit 1
fi

# NGINX's configure alone compiles with -O; Debian compiles its nginx and
# its module packages with -O2 (nginx -V): so are these, unless the
# caller says otherwise ($NGINX_CC_OPT: the sanitizer build; or a
# --with-cc-opt in the flags or in $NGINX_CONFIGURE_ARGS)
opts=()
if [ -n "${NGINX_CC_OPT:-}" ]; then
    opts+=("--with-cc-opt=$NGINX_CC_OPT")
elif [[ " ${NGX_CONF_FLAGS[*]} ${NGINX_CONFIGURE_ARGS:-} " \
        != *" --with-cc-opt="* ]]
then
    opts+=("--with-cc-opt=-g -O2")
fi
[ -n "${NGINX_LD_OPT:-}" ] && opts+=("--with-ld-opt=$NGINX_LD_OPT")

# shellcheck disable=SC2086
exec sh "$configure" "${NGX_CONF_FLAGS[@]}" ${NGINX_CONFIGURE_ARGS:-} \
    "${opts[@]}" --add-dynamic-module="$repo" --builddir="$build"
