#!/bin/sh
# Print the path of a working Python interpreter for NAME (`python3`, `python3.13` or a path), for the Makefile:
# NAME itself where it runs; else the pyenv version that provides the command NAME (pyenv's shim answers "the
# `python3.13' command exists in these Python versions" when that version is not selected); else fail with what to
# install. Usage: tools/find_python.sh NAME
set -eu
name=${1:?usage: tools/find_python.sh NAME (python3, python3.13 or a path)}
probe='import sys, venv; print(sys.executable)'

if exe=$("$name" -c "$probe" 2>/dev/null) && [ -n "$exe" ]; then
    echo "$exe"
    exit 0
fi
case $name in
    */*) ;;  # a path that does not run: no other place to look
    *)
        if command -v pyenv >/dev/null 2>&1; then
            for version in $(pyenv versions --bare 2>/dev/null); do
                candidate="$(pyenv prefix "$version" 2>/dev/null)/bin/$name" || continue
                if [ -x "$candidate" ] && exe=$("$candidate" -c "$probe" 2>/dev/null) && [ -n "$exe" ]; then
                    echo "$exe"
                    exit 0
                fi
            done
        fi
        ;;
esac
version=${name##*/}
version=${version#python}
echo "error: no working Python '$name' (not on PATH, nor in a pyenv version, or it lacks the venv module)." >&2
echo "  Install Python ${version:-3}: 'pyenv install ${version:-3}', or 'apt-get install python${version:-3}" \
     "python${version:-3}-venv'; or pass PYTHON=/path/to/python${version}" >&2
exit 1
