"""The wheel ships what a site needs: templates, themes (with their parents) and the demo data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from attnreport.site.templating import theme_chain, theme_css

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_themes_and_examples(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("attnreport-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "themes", "examples"):
        shipped = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file())
        assert shipped, folder
        for name in shipped:
            assert f"attnreport/_bundled/{name}" in names, name
    assert "attnreport/cli.py" in names
    # the notebook's glue script, read beside its module
    assert "attnreport/notebook/notebook.js" in names
    assert "attnreport/notebook/sitepack.js" in names  # explain()'s inline site
    # a child theme resolves through its parent inside the installed layout too
    assert "attnreport/_bundled/themes/high-contrast/theme.toml" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "unpacked", [n for n in names if "/_bundled/themes/" in n])
    themes = tmp_path / "unpacked" / "attnreport" / "_bundled" / "themes"
    assert theme_chain("high-contrast", themes=themes) == ["high-contrast", "light"]
    assert "---- light ----" in theme_css("high-contrast", themes=themes)
