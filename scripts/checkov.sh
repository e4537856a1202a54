#!/usr/bin/env bash
# Run checkov on the CloudFormation templates in cfn/, offline, with JSON output on stdout.
#
# checkov lives in its own venv (.venv-checkov): its pins (boto3, cloudsplaining -> policy-sentry)
# conflict with the project's test dependencies. The venv is created on first use (~60 s).
# --skip-download keeps it offline (no Prisma Cloud guideline download).
# Every skipped finding is recorded in the template itself as Metadata.checkov.skip with a comment.
#
# Usage: scripts/checkov.sh [extra checkov args]   (exit 1 when a check fails)
# Env:   CHECKOV_VENV (default .venv-checkov), PYTHON (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="3.3.30"
VENV="${CHECKOV_VENV:-.venv-checkov}"
PYTHON="${PYTHON:-python3}"

if ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
    echo "creating $VENV with checkov==$CHECKOV_VERSION" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
fi

exec "$VENV/bin/checkov" \
    --framework cloudformation \
    --skip-download \
    --directory cfn \
    --output json \
    "$@"
