"""apify-magic: Apify Actors as a first-class citizen of Jupyter.

    %load_ext apify_magic

    %%apify_run apify~website-content-crawler items --memory 256
    {"startUrls": [{"url": "https://example.com"}], "maxPages": 10}
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "last_run", "load_ipython_extension", "unload_ipython_extension"]

_magics: Any = None


def last_run() -> Any:
    """The run that ended last in this kernel, successful or not (a `RunRecord`: run_id,
    status, actor_id, options, timings, cost_usd, storages, log()), or None."""
    from apify_magic.run_record import last_run as _last

    return _last()


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext apify_magic`: register `%%apify_run`, `%apify_run` and `%apify_login`."""
    global _magics
    from apify_magic.magic import ApifyMagic

    _magics = ApifyMagic(shell=ipython)
    ipython.register_magics(_magics)
    # `%config ApifyMagic.x = y` looks in configurables.
    if _magics not in ipython.configurables:
        ipython.configurables.append(_magics)


def unload_ipython_extension(ipython: Any) -> None:
    global _magics
    if _magics is not None:
        _magics.close()
        if _magics in ipython.configurables:
            ipython.configurables.remove(_magics)
        _magics = None
