"""Progress bars: shown on a terminal, silent when stderr is piped."""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def progress_bar(total: int | None, desc: str, enabled: bool = True):
    """A tqdm bar on stderr if ``enabled`` and stderr is a terminal, else a no-op with the same API."""
    if not enabled or not sys.stderr.isatty():
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
