"""A third-party adapter package built in a temp dir: a module plus a dist-info with a ``refbench.adapters``
entry point, importable by this process (sys.path) and by subprocesses (PYTHONPATH)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN_CODE = '''
import numpy as np

from refbench.adapters.base import Adapter, AdapterError, VideoPrediction


class HalfAdapter(Adapter):
    """Test plugin: the top half of every frame; reads the first frame's pixels; fails on ``fail_video``."""

    name = "halfplug"
    tasks = frozenset({"refvos"})
    needs_pixels = True
    CARD = {"title": "test plugin: top half", "tasks": ["refvos"],
            "options": {"fail_video": None, "sleep": 0.0, "rows": 0.5}}

    def predict_video(self, requests):
        import time
        out = []
        for r in requests:
            if self.options.get("fail_video") == r.video:
                raise AdapterError(f"boom on {r.video}")
            time.sleep(float(self.options.get("sleep") or 0))
            first = r.frames[0]
            m = np.zeros((len(r.frames), *r.size), bool)
            m[:, : int(r.size[0] * float(self.options["rows"]))] = True
            out.append(VideoPrediction(m, {"first_frame_mean": float(first.mean()), "n": len(r.frames)}))
        return out
'''


def make_plugin(base: Path) -> Path:
    """Write the plugin under ``base`` and return the folder to put on sys.path / PYTHONPATH."""
    pkg = base / "refbench_testplugin"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN_CODE))
    dist = base / "refbench_testplugin-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: refbench-testplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[refbench.adapters]\nhalfplug = refbench_testplugin:HalfAdapter\n")
    return base
