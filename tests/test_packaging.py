"""A regular (non-editable) install ships conf/: build the wheel, install it into a fresh folder and run the
console entries from another directory without LEWIS_BENCH_CONF."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(".git", "tests", "lewis_samples", "build", "dist", "*.egg-info", "__pycache__",
                               "outputs", ".devwork", ".whl", "*.sqlite*", "board")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(install target, env that imports lewis-bench from it) after building a wheel from a copy of the tree."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_SKIP)  # build out of tree: no build/ in the checkout
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LEWIS_BENCH_CONF")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)], cwd=tmp, env=env)
    wheel = next((tmp / "dist").glob("lewis_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "lewis_env/conf/lewis_train.yaml" in names and "lewis_env/conf/suite/synthetic-v0.yaml" in names
    assert "lewis_env/conf/train/speaker_tiny_cpu.yaml" in names and "lewis_env/conf/deepspeed/zero2.json" in names
    target = tmp / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
          str(wheel)], cwd=tmp, env=env)
    env["PYTHONPATH"] = str(target)  # ahead of the shared editable install
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return target, env


@pytest.mark.slow
def test_the_wheel_carries_conf_and_lewis_eval_runs_from_elsewhere(installed, tmp_path):
    target, env = installed
    code = "import leaderboard, lewis_env.paths as p; print(leaderboard.__file__); print(p.conf_dir())"
    where = _run([sys.executable, "-c", code], cwd=tmp_path, env=env).stdout.split()
    assert where[0].startswith(str(target)) and where[1] == str(target / "lewis_env" / "conf")
    assert not (target / "lewis_env" / "conf").is_symlink()  # a real copy, not a link back into the checkout
    out = _run(["lewis-eval", "agent=random", "tasks=[listener]", "seeds=[0]", "max_episodes=4", "board=false",
                "n_resamples=20", "progress=false", "verify=false", f"store={tmp_path / 'r.sqlite'}"], cwd=tmp_path, env=env)
    assert "listener" in out.stdout and (tmp_path / "r.sqlite").exists()
    train = _run(["lewis-train", "--help"], cwd=tmp_path, env=env, timeout=120)
    assert "speaker_tiny_cpu" in train.stdout  # the train configs were found in the installed conf/
