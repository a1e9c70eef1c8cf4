#!/usr/bin/env bash
# Build the wheel (hatch-jupyter-builder runs the lab extension's JS build), install it
# into a fresh virtual environment, and check that with Node.js absent from PATH Jupyter
# reports the prebuilt lab extension and the server extension as enabled and OK.
#
# Usage: scripts/check_wheel.sh [--full]
#   default  the venv sees the system site-packages (JupyterLab and the dependencies
#            come from there; the wheel itself is installed into the venv, --no-deps),
#            so the check takes seconds after the build;
#   --full   a venv with nothing inherited: pip installs the wheel and JupyterLab
#            with all their dependencies from the index (slow, needs the network).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

full=0
if [[ "${1:-}" == "--full" ]]; then full=1; fi

echo "== building the wheel"
"$PYTHON" -m pip wheel --no-deps --wheel-dir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log"
  echo "wheel build failed" >&2
  exit 1
}
wheel="$(ls "$WORK"/dist/ollama_nb-*.whl)"
echo "built $(basename "$wheel")"

echo "== checking the wheel's contents"
"$PYTHON" - "$wheel" <<'PY'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
data = "ollama_nb-{}.data/data/".format(sys.argv[1].split("-")[1])
need = [
    data + "share/jupyter/labextensions/ollama_nb/package.json",
    data + "share/jupyter/labextensions/ollama_nb/install.json",
    data + "share/jupyter/labextensions/ollama_nb/schemas/ollama_nb/plugin.json",
    data + "etc/jupyter/jupyter_server_config.d/ollama_nb.json",
    "ollama_nb/jupyter_server_ext/__init__.py",
    "ollama_nb/notebooks/01_quickstart.ipynb",  # python -m ollama_nb.quickstart, any directory
]
missing = [n for n in need if n not in names]
static = [n for n in names if n.startswith(data + "share/jupyter/labextensions/ollama_nb/static/")]
if missing or not any(n.endswith("remoteEntry." + n.split("remoteEntry.")[-1]) for n in static if "remoteEntry." in n):
    sys.exit(f"wheel is missing: {missing or 'static/remoteEntry.*.js'}")
print(f"ok: {len(static)} static files, server config and schema present")
PY

echo "== installing into a fresh venv"
if [[ $full == 1 ]]; then
  "$PYTHON" -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q "$wheel" jupyterlab
else
  "$PYTHON" -m venv --system-site-packages "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --no-deps "$wheel"
fi

# Nothing but the venv on PATH: no node, no npm, no jlpm from elsewhere.
# Run from $WORK so that the source tree's ollama_nb/ is not importable from the cwd.
# Colours are stripped so the checks below can read the listings.
run() {
  (cd "$WORK" && env -i HOME="$WORK/home" LANG=C.UTF-8 PATH="$WORK/venv/bin" JUPYTER_PLATFORM_DIRS=1 "$@" 2>&1) |
    sed 's/\x1b\[[0-9;]*m//g'
}
if [[ -n "$(PATH="$WORK/venv/bin" type -P node || true)" ]]; then
  echo "node is still on PATH" >&2
  exit 1
fi
where="$(run "$WORK/venv/bin/python" -c 'import ollama_nb, sys; print(ollama_nb.__file__.startswith(sys.prefix))')"
[[ "$where" == "True" ]] || { echo "ollama_nb is not imported from the venv" >&2; exit 1; }

status=0
# The module forms of `jupyter labextension list` / `jupyter server extension list`:
# with --system-site-packages the `jupyter-*` scripts are not in the venv's bin.
labext="$(run "$WORK/venv/bin/python" -m jupyterlab.labextensions list)"
echo "$labext"
grep -Eq '^\s*ollama_nb v[0-9][^ ]* enabled .*OK' <<<"$labext" || {
  echo "FAIL: the lab extension is not listed as enabled and OK" >&2
  status=1
}
serverext="$(run "$WORK/venv/bin/python" -m jupyter_server.extension.serverextension list)"
echo "$serverext"
grep -Eq '^\s*ollama_nb\.jupyter_server_ext\s+enabled' <<<"$serverext" &&
  grep -Eq '^\s*ollama_nb\.jupyter_server_ext\s+OK' <<<"$serverext" || {
  echo "FAIL: the server extension is not listed as enabled and OK" >&2
  status=1
}
[[ $status == 0 ]] && echo "wheel check: lab extension and server extension enabled and OK"
exit $status
