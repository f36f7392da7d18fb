"""Static checks of the rules on untrusted input: nothing is unpickled and no request field becomes a path."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("coe", "routers", "experts", "eval") for p in (ROOT / d).rglob("*.py")]
UNPICKLING = re.compile(r"\bpickle\.loads?\(|\bjoblib\.load\(|\bdill\.|allow_pickle\s*=\s*True|"
                        r"torch\.load\((?![^)]*weights_only\s*=\s*True)")


def test_nothing_is_unpickled():
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
            for n, line in enumerate(p.read_text().splitlines(), 1) if UNPICKLING.search(line)]
    assert hits == []


def test_request_fields_are_never_joined_into_paths():
    api = [p for p in SOURCES if p.parts[-2] in ("api", "serve")]
    pattern = re.compile(r"(Path\(|open\(|os\.path\.join\().*\b(body|req|request|name|model)\b")
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in api
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
