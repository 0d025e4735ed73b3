#!/bin/bash
# Installs what is missing, builds, and runs every test: the C unit tests
# and the Test::Nginx-format suites (which include the OpenAI and
# Anthropic SDK checks), all through ctest.

set -euo pipefail

cd "$(dirname "$0")/.."

scripts/deps.sh --test
scripts/build.sh

# the official SDKs, pinned, into t/sdk/node_modules
if [ ! -d t/sdk/node_modules/openai ] \
   || [ t/sdk/package-lock.json -nt t/sdk/node_modules ]
then
    (cd t/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi

ctest --test-dir build --output-on-failure "$@"
