"""Fixtures of the engine tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cuda_simulator() -> Callable[[str], Any]:
    """Run a Python script in a fresh interpreter with numba's CUDA simulator on, and return the JSON its last
    line prints. The simulator must be switched on before `numba.cuda` is first imported, hence the
    subprocess; a script that prints {"skip": why} skips the calling test."""

    def run(script: str) -> Any:
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        if isinstance(answer, dict) and "skip" in answer:
            pytest.skip(answer["skip"])
        return answer

    return run
