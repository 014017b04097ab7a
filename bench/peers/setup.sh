#!/usr/bin/env bash
# Create bench/.venv-peers (Python 3.11) and install bench/peers/requirements.txt into it.
# Idempotent: a stamp file keyed on the requirements' checksum makes a second run instant.
#
#   bench/peers/setup.sh            # then: bench/.venv-peers/bin/python bench/peers/quix.py --help
#
# Environment: PEERS_PYTHON (interpreter that creates the venv, default python3.11),
#              PEERS_VENV (default bench/.venv-peers).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(cd "$here/.." && pwd)"
venv="${PEERS_VENV:-$bench/.venv-peers}"
py="${PEERS_PYTHON:-python3.11}"
req="$here/requirements.txt"
stamp="$venv/.installed-$(cksum <"$req" | cut -d' ' -f1)"

if [[ -f "$stamp" ]]; then
    echo "peers: $venv is up to date"
    exit 0
fi

command -v "$py" >/dev/null || { echo "peers: $py is required (or set PEERS_PYTHON)" >&2; exit 1; }
start=$SECONDS
if [[ ! -x "$venv/bin/python" ]]; then
    echo "peers: creating $venv with $("$py" -V 2>&1)"
    "$py" -m venv "$venv"
fi
# git ignores the venv by itself (as Python 3.13's venv does); the root .gitignore need not know it
printf '*\n' >"$venv/.gitignore"
echo "peers: upgrading pip"
"$venv/bin/python" -m pip install -q --upgrade pip
echo "peers: installing $(grep -cv '^\s*#' "$req") pinned packages from $req"
"$venv/bin/python" -m pip install -q -r "$req"
rm -f "$venv"/.installed-*
touch "$stamp"
echo "peers: done in $((SECONDS - start))s ($venv)"
