"""`import sqtool.core` (every CLI start, `sqtool --version` too) needs only the stdlib: numpy and torch load where
a command uses them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_import_sqtool_core_loads_no_numpy_or_torch():
    code = ("import sys, sqtool.core, sqtool.core.model_cfg; "
            "print([m for m in ('numpy', 'torch') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)
