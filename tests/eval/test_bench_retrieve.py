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
