"""``dsmf-client`` as installed: the console script, and the sample spreadsheet in the repo."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.client.messages import text

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "employees.csv"


def client(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("dsmf-client", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("dsmf-client is not installed next to this interpreter")
    return subprocess.run([script, *argv], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)


def test_the_sample_spreadsheet_passes_the_check(tmp_path: Path) -> None:
    done = client("check", str(SAMPLE), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert text("report.all_valid") in done.stderr


def test_a_bad_file_is_reported_with_exit_3_and_an_unreadable_one_with_exit_2(
    tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("document_type,fin\nID_CARD,5GH3J7\n", encoding="utf-8")
    done = client("check", str(bad), cwd=tmp_path)
    assert done.returncode == 3
    assert text("report.row", row=2, fin="5GH3J7",
                message=text("row.fin.length_id_card", value="5GH3J7")) in done.stderr
    missing = client("check", str(tmp_path / "nowhere.xlsx"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_help_names_every_command(tmp_path: Path) -> None:
    done = client("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("check", "register", "wait", "find", "registry", "notice"):
        assert command in done.stdout
