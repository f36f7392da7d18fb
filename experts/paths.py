"""Where coe keeps things it builds (model cache) and where it reads datasets (COE_DATA_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def repo_path(path: str | Path, *, cwd_first: bool = False) -> Path:
    """The one place a relative path becomes absolute: against the checkout, so paths in configs and artifacts
    mean the same from any cwd (a Ray worker's cwd is its session folder). `cwd_first`: a path that exists
    relative to the cwd wins (what a user typed on the command line)."""
    p = Path(path)
    if p.is_absolute() or (cwd_first and p.exists()):
        return p
    return REPO_ROOT / p


def cache_dir() -> Path:
    """Converted model weights and indexes; outside git. COE_CACHE_DIR overrides."""
    env = os.environ.get("COE_CACHE_DIR")
    path = Path(env) if env else Path.home() / ".cache" / "coe"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Datasets in the layout of shared/data; COE_DATA_DIR overrides the sibling ../shared/data default."""
    env = os.environ.get("COE_DATA_DIR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


def require_data(*parts: str) -> Path:
    """A dataset path, or a clear error saying how to get it."""
    path = data_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"dataset not found: {path}. Set COE_DATA_DIR to a folder in the layout of shared/data "
            f"(or run `coe data fetch` where a network is available)."
        )
    return path
