"""Children that get SIGTERM the moment the process that started them dies, however it dies (Linux).

The stack starts Azurite, the sandbox and the dev host, and the dev host starts its worker instances; a parent
killed outright must not leave them running on their ports or taking messages. Linux says so per child with
`prctl(PR_SET_PDEATHSIG)`, run between fork and exec. Elsewhere there is no such call (the worker instances
also watch their parent's pid).
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# Looked up once, here: what runs between fork and exec must not import anything (another thread of the
# parent may have held the import lock at the fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    assert _prctl is not None
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """The `preexec_fn` that makes a child die with this process, or None where the system has none."""
    return _die_with_parent if _prctl is not None else None
