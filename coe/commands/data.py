"""`coe data fetch NAME`: where datasets come from, and what to do without a network."""

from __future__ import annotations

import argparse

import httpx

from experts.paths import data_dir

SOURCES = {
    "scifact": "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip",
    "mmlu": "https://people.eecs.berkeley.edu/~hendrycks/data.tar",
    "mt_bench": "https://raw.githubusercontent.com/lm-sys/FastChat/main/fastchat/llm_judge/data/mt_bench/question.jsonl",
}


def register(sub, groups) -> None:  # noqa: ANN001
    p = sub.add_parser("data", help="datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a public dataset into COE_DATA_DIR")
    f.add_argument("name", choices=sorted(SOURCES))
    f.set_defaults(func=fetch)


def fetch(args: argparse.Namespace) -> int:
    url = SOURCES[args.name]
    target = data_dir() / "downloads"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", url, timeout=30, follow_redirects=True) as r:
            r.raise_for_status()
            out = target / url.rsplit("/", 1)[-1]
            with out.open("wb") as fh:
                for block in r.iter_bytes():
                    fh.write(block)
    except (httpx.HTTPError, OSError) as err:
        print(f"could not download {args.name} from {url}: {err}\n"
              f"Without a network: copy the dataset in the layout of shared/data (BEIR folders, MMLU CSVs, "
              f"MT-Bench JSONL) to a folder and set COE_DATA_DIR to it (now: {data_dir()}).")
        return 1
    print(f"downloaded {out}; unpack it into {data_dir()} in the shared/data layout")
    return 0
