"""`/metrics` from the outside: `metrics.port` (a listener of its own, `/metrics` only, no
credentials) and the connection gauges sampled at each scrape, embedded and distributed."""

from __future__ import annotations

import httpx

from conftest import FakeUpstream, fake_model_yaml, start_chorus, unique_tag
from distributed import (  # noqa: F401 - fixtures are found by name in this module
    Cluster,
    cluster,
    free_port,
    postgres_server,
    redis_server,
)


def series(text: str) -> dict[str, float]:
    """`name{labels} value` lines of a Prometheus text scrape."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_port_serves_only_metrics_without_credentials(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path):
    port = free_port()
    instance = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url),
                            config={"metrics": {"port": port}})
    try:
        assert instance.chat(f"{unique_tag()} metrics [[fake tokens=3]]").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as scraper:
            scrape = scraper.get("/metrics")
            assert scrape.status_code == 200, scrape.text
            assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
            values = series(scrape.text)
            assert values['chorus_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}'] == 1
            assert values['chorus_db_connections_max{pool="sqlite_readers"}'] == 2
            assert values['chorus_db_connections_max{pool="sqlite_writer"}'] == 1
            assert 'chorus_db_connections_in_use{pool="sqlite_writer"}' in values
            # Nothing else is served there, with or without credentials.
            assert scraper.get("/v1/models", headers=instance.auth_headers).status_code == 404
            assert scraper.get("/healthz").status_code == 404
        # The API's own /metrics still needs its permission.
        with httpx.Client(base_url=instance.url, timeout=10) as anonymous:
            assert anonymous.get("/metrics").status_code == 401
    finally:
        instance.close()
        instance.process.stop()


def test_gateway_scrape_shows_postgres_and_redis_connections(cluster: Cluster):
    port = free_port()
    cluster.extra_config = {"metrics": {"port": port}}
    cluster.start(gateways=1, workers=())
    (gateway,) = cluster.gateways
    assert gateway.http.get("/v1/admin/workers").status_code == 200      # a statement on the pool
    scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert scrape.status_code == 200, scrape.text
    values = series(scrape.text)
    assert values['chorus_db_connections_max{pool="postgres"}'] >= 1
    assert 'chorus_db_connections_in_use{pool="postgres"}' in values
    # The shared Redis connections are open (multiplexed, so in use) once the gateway serves.
    assert values['chorus_redis_connections_in_use{kind="shared"}'] >= 1
    assert values['chorus_redis_connections_max{kind="shared"}'] >= values['chorus_redis_connections_in_use{kind="shared"}']
    assert 'chorus_redis_connections_in_use{kind="dedicated"}' in values
