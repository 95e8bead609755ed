"""Root pytest configuration: notebook kernels (nbmake) import this checkout's ``workbench``.

nbmake runs each notebook in a separate Jupyter kernel whose working directory is the
notebook's folder; putting the repository root on that kernel's ``PYTHONPATH`` lets
notebooks import ``workbench`` and ``apps`` even when the package is not installed.
"""

import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent)
_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
if _ROOT not in _paths:
    os.environ["PYTHONPATH"] = os.pathsep.join([_ROOT, *_paths])

# Tests always run notebooks at their smoke size (a user's JupyterLab session is unaffected).
os.environ.setdefault("WORKBENCH_SMOKE", "1")
