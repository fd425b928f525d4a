"""The README's Python example runs as written (paths moved into a temporary folder)."""

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path, media_dir, monkeypatch, capsys):
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "mnt").mkdir()
    for fixed, mine in (("/tmp/demo-archive", tmp_path / "archive"), ("/tmp/demo-mnt", tmp_path / "mnt"), ("/tmp/pull.mov", tmp_path / "pull.mov")):
        assert fixed in code
        code = code.replace(fixed, str(mine))
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "01:00:00;02 107894" in out and "b'\\x00\\x00\\x00\\x14ftyp'" in out
    assert (tmp_path / "pull.mov").stat().st_size > 0
    assert os.listdir(tmp_path / "mnt") == []
