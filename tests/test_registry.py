"""The one Registry class: collision policy, lazy "module:object" entries, entry points, helpful errors."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest

from lewis_env.registry import Registry, RegistryError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A module ``regplug_mod`` on sys.path (not imported yet) with two callables."""
    (tmp_path / "regplug_mod.py").write_text("def alpha():\n    return 'a'\n\ndef beta():\n    return 'b'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("regplug_mod", None)
    yield "regplug_mod"
    sys.modules.pop("regplug_mod", None)


def test_same_object_twice_is_a_no_op_and_a_different_one_raises():
    reg: Registry = Registry("widget")

    def f():
        return 1

    def g():
        return 2

    reg.register("w")(f)
    reg.register("w")(f)  # a module imported twice re-registers the same function: fine
    assert reg.get("w") is f
    with pytest.raises(RegistryError, match=r"widget name 'w' is already registered to .*test_registry:.*f"):
        reg.register("w", g)
    assert reg.get("w") is f  # nothing was overwritten


def test_lazy_string_is_not_imported_until_get(plugin_module):
    reg: Registry = Registry("widget")
    reg.register("a", f"{plugin_module}:alpha")
    assert plugin_module not in sys.modules and not reg.is_loaded("a")
    assert reg.names() == ["a"] and "a" in reg
    assert reg.get("a")() == "a"
    assert plugin_module in sys.modules and reg.is_loaded("a")


def test_lazy_string_then_its_object_is_the_same_registration(plugin_module):
    reg: Registry = Registry("widget")
    reg.register("a", f"{plugin_module}:alpha")
    import regplug_mod

    reg.register("a")(regplug_mod.alpha)  # the module's own decorator naming the same object
    assert reg.get("a") is regplug_mod.alpha
    with pytest.raises(RegistryError, match="regplug_mod:alpha"):
        reg.register("a", f"{plugin_module}:beta")


def test_unknown_name_lists_known_names_and_close_matches():
    reg: Registry = Registry("agent")
    for n in ("random", "rule", "clip"):
        reg.register(n, f"nowhere:{n}")
    with pytest.raises(UnknownNameError) as exc:
        reg.get("rul")
    msg = str(exc.value)
    assert "unknown agent 'rul'" in msg and "Did you mean 'rule'" in msg and "clip, random, rule" in msg
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, ValueError)
    with pytest.raises(UnknownNameError, match="Known: clip") as exc:
        reg.get("zzzzzz")
    assert "Did you mean" not in str(exc.value)


def test_broken_lazy_entry_names_the_entry():
    reg: Registry = Registry("listener")
    reg.register("ghost", "no_such_module_xyz:Thing")
    with pytest.raises(ImportError, match="listener 'ghost' is registered as 'no_such_module_xyz:Thing'"):
        reg.get("ghost")
    reg.register("ghost2", "lewis_env.registry:NoSuchThing")
    with pytest.raises(ImportError, match="does not exist"):
        reg.get("ghost2")


def test_bad_names_and_targets_are_refused():
    reg: Registry = Registry("widget")
    with pytest.raises(RegistryError, match="non-empty"):
        reg.register("", "a:b")
    with pytest.raises(RegistryError, match="module:object"):
        reg.register("x", "not_a_path")


def test_import_paths_only_where_enabled(plugin_module):
    open_reg: Registry = Registry("reward term", import_paths=True)
    assert open_reg.get(f"{plugin_module}:beta")() == "b"
    closed: Registry = Registry("agent")
    with pytest.raises(UnknownNameError):
        closed.get(f"{plugin_module}:beta")


def _install_dist(site: Path, group: str, lines: str) -> None:
    info = site / "regplug_dist-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: regplug-dist\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")


def test_entry_points_are_listed_loaded_lazily_and_collide_by_the_same_rule(plugin_module, tmp_path, monkeypatch):
    site = tmp_path / "site"
    _install_dist(site, "lewis_bench.test_widgets", "ep-alpha = regplug_mod:alpha\ntaken = regplug_mod:beta")
    monkeypatch.syspath_prepend(str(site))
    reg: Registry = Registry("widget", "lewis_bench.test_widgets")
    reg.register("taken", "regplug_mod:alpha")
    assert reg.names() == ["ep-alpha", "taken"]
    assert plugin_module not in sys.modules  # listing does not import
    assert reg.get("ep-alpha")() == "a"
    with pytest.raises(RegistryError, match="also claimed by the installed entry point 'regplug_mod:beta'"):
        reg.get("taken")
    reg.unregister("taken")
    assert reg.get("taken")() == "b"  # with the conflicting registration gone, the entry point serves it


def test_the_four_kinds_share_the_class_and_its_policy():
    from agents.registry import AGENTS
    from lewis_env.data.registry import DATASETS
    from lewis_env.listeners.base import LISTENERS, register_listener
    from lewis_env.rewards import REWARDS, register_reward

    assert all(isinstance(r, Registry) for r in (AGENTS, LISTENERS, REWARDS, DATASETS))
    with pytest.raises(RegistryError, match="listener name 'rule'"):  # listeners used to overwrite silently
        register_listener("rule")(lambda **kw: None)
    with pytest.raises(RegistryError, match="reward term name 'accuracy'"):  # rewards too
        register_reward("accuracy")(lambda c, i: 0.0)
    from lewis_env.listeners.rule import RuleListener

    assert LISTENERS.get("rule") is RuleListener


def test_builtins_register_lazily_without_heavy_imports():
    code = ("import sys, lewis_env, baselines, agents, lewis_env.listeners.base as lb; "
            "from lewis_env.data.registry import list_datasets; "
            "names = agents.list_agents(); ls = lb.list_listeners(); ds = list_datasets(); "
            "loaded = [m for m in ('baselines.rule', 'baselines.clip_agent', 'baselines.random_agent', "
            "'agents.qwen.agent', 'lewis_env.listeners.http', 'lewis_env.data.hf', 'torch') if m in sys.modules]; "
            "print(sorted(names), sorted(ls), loaded)")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("[]"), out.stdout
    assert "'qwen-vl'" in out.stdout and "'rule'" in out.stdout and "'http'" in out.stdout


def test_qwen_vl_is_registered_once_and_agents_never_import_baselines():
    offenders = []
    for path in (ROOT / "agents").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in mods if m.split(".")[0] == "baselines"]
    assert offenders == []
    sources = [p.read_text() for d in ("agents", "baselines", "leaderboard", "lewis_env") for p in (ROOT / d).rglob("*.py")]
    assert sum(s.count('"qwen-vl", "agents.qwen:make_qwen_vl"') for s in sources) == 1
    assert not any('register("qwen-vl")' in s for s in sources)


def test_baselines_table_matches_the_pyproject_entry_points():
    import tomllib

    import baselines

    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["lewis_bench.agents"]
    assert eps == baselines.BASELINES


def test_base_agent_flags_are_per_instance():
    from agents.registry import BaseAgent

    class Oracle(BaseAgent):
        name = "oracle-test"
        flags: ClassVar[dict] = {"oracle": True}

    a, b = Oracle(), BaseAgent()
    a.flags["display_name"] = "mine"
    assert Oracle.flags == {"oracle": True} and a.flags == {"oracle": True, "display_name": "mine"}
    assert b.flags == {} and BaseAgent.flags == {}


def test_plugin_author_story(tmp_path, monkeypatch):
    """A third-party module registers an agent with the decorator and is built by name."""
    (tmp_path / "regplug_agent.py").write_text(textwrap.dedent('''
        from agents.registry import BaseAgent, register

        @register("regplug-first")
        class First(BaseAgent):
            name = "regplug-first"
            def act(self, observation, info=None):
                return "A"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    from agents.registry import AGENTS, make

    try:
        import regplug_agent  # noqa: F401

        assert make("regplug-first").act({}) == "A"
    finally:
        AGENTS.unregister("regplug-first")
        sys.modules.pop("regplug_agent", None)
