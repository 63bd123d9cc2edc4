"""Everything under tests/integration/ needs the real servers: mark it `integration`.

The servers themselves come from the `servers` and `database_url` fixtures in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
