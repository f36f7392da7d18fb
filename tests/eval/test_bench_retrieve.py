"""The retrieval serving benchmark's summary of one run."""

from eval.bench_retrieve import Samples, _row


def test_row_summarises_latency_throughput_and_routing():
    samples = Samples(latency_s=[0.010, 0.020, 0.030, 0.040], route_ms=[1.0, 2.0, 3.0, 9.0],
                      service_ms=[5.0, 6.0, 8.0, 20.0], errors=1, wall_s=0.5)
    row = _row(samples)
    assert row["p50_ms"] == 25.0
    assert 39.0 < row["p99_ms"] <= 40.0
    assert row["qps"] == 8.0  # 4 answered in 0.5 s
    assert row["route_ms_p50"] == 2.5
    assert row["service_ms_p50"] == 7.0  # the retriever's own share of the 25 ms
    assert row["errors"] == 1


def test_split_latency_from_server_timing():
    from eval.bench_retrieve import split_latency

    parts = split_latency("parse;dur=1.00, retriever;dur=30.00, build;dur=0.50, app;dur=32.00", 0.040)
    assert parts == {"proxy": 8.0, "retriever_call": 30.0, "gateway_rest": 2.0}
    assert split_latency("", 0.040) == {}  # a gateway without the header: no split


def test_row_adds_the_split_when_there_is_one():
    samples = Samples(latency_s=[0.01], route_ms=[1.0], service_ms=[5.0], wall_s=1.0,
                      phases_ms={"proxy": [3.0], "retriever_call": [6.0], "gateway_rest": [1.0]})
    assert {k: _row(samples)[k] for k in ("proxy_ms_p50", "retriever_call_ms_p50")} == {
        "proxy_ms_p50": 3.0, "retriever_call_ms_p50": 6.0}
