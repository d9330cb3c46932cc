"""docs/api-guide.md runs as written: its Python blocks, in order, as one script against every
process kind of the platform (real gunicorn APIs, relays, consumers, projector, Kafka, database)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.infra import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
GUIDE = ROOT / "docs" / "api-guide.md"


def guide_script() -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 10, "the guide lost its examples"
    return "\n\n".join(blocks)


def test_the_api_guide_runs_against_the_platform(platform, isolated):
    script = isolated["tmp"] / "api_guide.py"
    script.write_text(guide_script())
    env = {**platform.env, **{f"{s.upper()}_URL": platform.url(s)
                              for s in ("membership", "training", "welfare", "reporting")}}
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}\n{platform.tail(15)}"
    assert not platform.dead(), platform.tail()
