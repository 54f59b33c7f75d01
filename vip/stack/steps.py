"""Running one setup command (mvn, javac, a storage format, uv) with a readable failure."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from vip.stack.errors import SetupFailed


def output_tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_step(
    command: list[str],
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``command`` to completion; raise :class:`SetupFailed` naming ``what`` with the tail
    of its output when it cannot start, overruns ``timeout_s`` or exits non-zero."""
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SetupFailed(f"{what} took over {timeout_s:.0f}s") from error
    except OSError as error:
        raise SetupFailed(f"{what} could not run `{command[0]}`: {error}") from error
    if result.returncode != 0:
        raise SetupFailed(
            f"{what} failed (exit {result.returncode}):\n"
            + output_tail(result.stdout + result.stderr)
        )
