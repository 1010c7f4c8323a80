# Helpers shared by bench/async.sh and bench/saturation.sh (sourced, not run).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port_of() {  # LOG: waits for "listening on http://HOST:PORT", prints PORT
    for _ in $(seq 300); do
        local line
        line=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$1" 2>/dev/null | head -1 || true)
        if [[ -n $line ]]; then echo "${line##*:}"; return 0; fi
        sleep 0.1
    done
    echo "no listening line in $1" >&2
    return 1
}

chorus_config() {  # DATA_DIR FAKE_PORT: a chorus.yaml with the models `fake` and `fake-pair` on the fake upstream
    cat <<YAML
http: {host: 127.0.0.1, port: 0}
data_dir: $1
conversations: {checkpoint_seconds: 5}
models:
  fake:
    provider: openai
    base_url: http://127.0.0.1:$2/v1
    upstream_model: fake-model
    retries: 0
  fake-pair:  # the same upstream as two deployments: what routing itself costs
    provider: openai
    upstream_model: fake-model
    retries: 0
    deployments:
      - {base_url: http://127.0.0.1:$2/v1}
      - {base_url: http://127.0.0.1:$2/v1, weight: 2}
YAML
}
