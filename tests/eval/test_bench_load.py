"""The load benchmark's summary: statuses, lost answers and memory growth."""

from eval.bench_load import Outcome, retrieval_body, summarise


def test_summary_counts_statuses_lost_answers_and_rss_growth():
    outcomes = [Outcome("chat", 200, 1.0, True), Outcome("stream", 200, 3.0, False), Outcome("bad", 400, 0.1, False),
                Outcome("chat", 429, 0.1, False), Outcome("retrieve", 0, 60.0, False, timeout=True)]
    s = summarise(outcomes, rss_start=100 * 2**20, rss_end=105 * 2**20, duration_s=10.0)
    assert (s["sent"], s["status_2xx"], s["status_4xx"], s["status_5xx"], s["timeouts"]) == (5, 2, 2, 0, 1)
    assert s["lost"] == 1  # the stream that was accepted but never reached [DONE]
    assert s["by_status"] == {"0": 1, "200": 2, "400": 1, "429": 1}
    assert s["bad_requests_answered_4xx"] == 1
    assert s["p50_ms"] == 2000.0 and s["throughput_rps"] == 0.2
    assert s["rss_growth_ratio"] == 1.05


def test_retrieval_requests_use_an_available_corpus():
    corpora = [{"name": "gone", "available": False}, {"name": "scifact", "available": True}]
    assert retrieval_body(corpora, "q") == {"corpus": "scifact", "query": "q", "top_k": 5}
    assert retrieval_body([{"name": "gone", "available": False}], "q") is None
