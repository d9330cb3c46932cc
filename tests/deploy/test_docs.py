"""docs/operations.md keeps up with the deployment: every process kind and job is described, and
the procedures the operators rely on are there."""
from __future__ import annotations

import pytest

from .support import ROOT, jobfile, procfile

DOC = (ROOT / "docs" / "operations.md").read_text()


@pytest.mark.parametrize("name", [*procfile(), *jobfile().values()])
def test_every_process_kind_and_job_is_documented(name):
    assert name in DOC


@pytest.mark.parametrize("needle", ["## Scaling", "## Rebuilding the reporting views", "## Dead letters",
                                    "## Token keys", "## Backup and restore", "TOKEN_SECRET_PREVIOUS",
                                    "original_topic", "original_partition", "original_offset", ".dlq",
                                    "mongodump", "mongorestore", "retention.ms=-1", "make up",
                                    "deploy/local/infra.sh status", "paused-replicas"])
def test_procedures_are_documented(needle):
    assert needle in DOC


def test_the_permission_table_in_docs_is_the_one_enforced():
    """docs/security.md shows platformkit.permissions.CAPABILITIES row by row."""
    from platformkit import permissions
    doc = (ROOT / "docs" / "security.md").read_text()
    header = "| capability | what it covers | " + " | ".join(permissions.ROLES) + " |"
    assert header in doc
    for cap, text, *marks in permissions.table_rows():
        assert f"| `{cap}` | {text} | " + " | ".join(marks) + " |" in doc, cap
