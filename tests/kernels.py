"""A Jupyter kernel running this project's Python, for the tests that need a real one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager


def kernel_manager(root: Path, name: str, python: Path | str = sys.executable, **kwargs) -> KernelManager:
    """A kernel manager (not started) for ipykernel from ``python``; its spec lives under ``root``."""
    spec_dir = root / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{name} (protonb tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(root / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=name, kernel_spec_manager=specs, **kwargs)
