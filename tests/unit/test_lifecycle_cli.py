"""Lifecycle at the edges: the sweep command refuses a real sweep in the future; settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entsync.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("restore_logging")


def test_a_real_sweep_in_the_future_is_refused(tmp_path: Path) -> None:
    later = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    result = runner.invoke(
        app, ["lifecycle", "sweep", "--now", later, "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "is in the future" in result.output and "--dry-run" in result.output
    # Refused before it looks for the services: nothing was set up or published.
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_now_or_a_dry_run_goes_on_to_the_services(tmp_path: Path) -> None:
    """Without services it stops at the configuration (exit 2), not at the date check."""
    later = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    for args in (["--dry-run", "--now", later], ["--future", "--now", later], []):
        result = runner.invoke(app, ["lifecycle", "sweep", *args, "--state-dir", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)
        assert "is in the future" not in result.output


def test_the_policy_and_guard_follow_the_settings() -> None:
    from entsync.settings import Settings
    from entsync.stream_config import guard_from, policy_from

    settings = Settings(
        lifecycle_predelete_days=30,
        lifecycle_delete_days=60,
        lifecycle_predelete_days_pupil=120,
        lifecycle_delete_days_staff=10,
        lifecycle_guard_share=0.25,
        lifecycle_guard_min_count=3,
        lifecycle_grace_days=15,
    )
    policy = policy_from(settings)
    assert policy.predelay("pupil") == timedelta(days=120)
    assert policy.predelay("guardian") == timedelta(days=30)
    assert policy.delay("staff") == timedelta(days=10)
    assert policy.delay("pupil") == timedelta(days=60)
    # Kinds without a setting of their own (manual accounts) take the configured defaults.
    assert policy.predelay("manual") == timedelta(days=30)
    assert policy.delay("manual") == timedelta(days=60)
    guard = guard_from(settings)
    assert (guard.max_share, guard.min_count, guard.grace) == (0.25, 3, timedelta(days=15))
