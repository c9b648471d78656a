"""Discovery, fault isolation, duplicates, env variables and look-ups of the plugin registry."""

from __future__ import annotations

import sys

import pluggy
import pytest

import zoo
from tests.conftest import make_dist
from zoo.errors import AmbiguousNameError, PluginError, UnknownNameError
from zoo.plugins import make_plugin_manager
from zoo.registry import build_registry
from zoo.specs import EncoderSpec, FeatureInfo, LossSpec, Option

BUILTIN_PLUGINS = {"architectures", "encoders", "timm", "losses", "datasets", "optimizers", "schedulers",
                   "callbacks", "recipes"}
BUILTIN_ARCHITECTURES = ["deeplabv3", "deeplabv3plus", "dpt", "fpn", "linknet", "manet", "pan", "pspnet", "resnet34_unet", "segformer",
                         "unet", "unetplusplus", "upernet"]


def test_builtins_are_registered(registry):
    assert registry.names("architecture") == BUILTIN_ARCHITECTURES
    assert registry.names("loss") == ["bce", "ce", "dice", "focal", "jaccard", "lovasz", "mse", "tversky"]
    assert registry.names("dataset") == ["folder", "oxford-pet", "synthetic"]
    assert registry.names("encoder") == ["resnet34", "unet"]
    assert {p.name for p in registry.plugins} == BUILTIN_PLUGINS
    assert all(p.status == "ok" and p.builtin for p in registry.plugins)


def test_pattern_filters(registry):
    assert registry.names("loss", "*ce") == ["bce", "ce", "dice"]
    assert registry.names("loss", "b*") == ["bce"]
    assert registry.names("architecture", "resnet*") == ["resnet34_unet"]
    assert registry.names("loss", "losses:d*") == ["dice"]
    assert zoo.list_losses("[jt]*", registry=registry) == ["jaccard", "tversky"]


def test_unknown_name_suggests_close_names(registry):
    with pytest.raises(UnknownNameError) as err:
        registry.get("architecture", "unte")
    assert str(err.value) == "unknown architecture 'unte'; did you mean unet?"
    with pytest.raises(UnknownNameError, match="choose one of: bce, ce, cross-entropy, dice"):
        registry.get("loss", "zzz")


def test_hints_name_real_commands():
    many = [f"name{i}" for i in range(20)]
    assert str(UnknownNameError("architecture", "zz", many)) == "unknown architecture 'zz'; see `zoo list-models`"
    assert str(UnknownNameError("loss", "zz", many)) == "unknown loss 'zz'; see `zoo list-losses`"
    assert str(UnknownNameError("split", "zz", many)) == "unknown split 'zz'; 20 to choose from"


def test_aliases_and_qualified_names(registry):
    assert registry.get("architecture", "resnet34-unet").name == "resnet34_unet"
    assert registry.get("loss", "iou").name == "jaccard"
    assert registry.get("loss", "losses:dice").plugin == "losses"
    with pytest.raises(UnknownNameError):
        registry.get("loss", "datasets:dice")


def test_family_members_resolve_lazily(registry):
    entry = registry.get("encoder", "timm:resnet18")
    assert (entry.name, entry.plugin, entry.member) == ("resnet18", "timm", "resnet18")
    # the built-in resnet34 wins over timm's of the same name unless qualified
    assert registry.get("encoder", "resnet34").plugin == "encoders"
    assert registry.get("encoder", "timm:resnet34").plugin == "timm"
    with pytest.raises(UnknownNameError, match="nor a member of timm"):
        registry.get("encoder", "no_such_backbone")


class _DuplicateDice:
    @zoo.hookimpl
    def zoo_register_losses(self):
        return [LossSpec("dice", "another dice", "zoo_plugins.losses.overlap:DiceLoss")]


def _pm_with(*plugins):
    pm, infos = make_plugin_manager(entry_points=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm, infos


def test_duplicate_name_is_an_error_naming_both_plugins():
    registry = build_registry(*_pm_with(("other", _DuplicateDice())))
    with pytest.raises(AmbiguousNameError) as err:
        registry.get("loss", "dice")
    message = str(err.value)
    assert "'losses' and 'other'" in message and "'losses:dice' or 'other:dice'" in message
    assert registry.get("loss", "other:dice").spec.summary == "another dice"
    assert [e.plugin for e in registry.entries("loss", "dice")] == ["losses", "other"]


class _RaisingHook:
    @zoo.hookimpl
    def zoo_register_encoders(self):
        raise RuntimeError("boom")

    @zoo.hookimpl
    def zoo_register_losses(self):
        return [LossSpec("fine", "would be fine", "x:y")]


class _WrongReturn:
    @zoo.hookimpl
    def zoo_register_losses(self):
        return "not a list"


def test_plugin_raising_in_a_hook_is_dropped_and_reported():
    registry = build_registry(*_pm_with(("bad", _RaisingHook()), ("wrong", _WrongReturn())))
    bad = registry.plugin_info("bad")
    assert bad.status == "error"
    assert bad.error == "zoo_register_encoders: RuntimeError: boom"
    assert "fine" not in registry.names("loss")  # the whole plugin is skipped
    assert "returned str, expected a list" in registry.plugin_info("wrong").error
    assert registry.names("architecture") == BUILTIN_ARCHITECTURES  # the rest works


def test_broken_entry_point_is_isolated(tmp_path, monkeypatch):
    make_dist(tmp_path, "zoo-broken", {"broken": "zoo_broken_mod"},
              {"zoo_broken_mod": "raise ImportError('missing dependency xyz')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "broken")
    registry = build_registry()
    info = registry.plugin_info("broken")
    assert info.status == "error" and info.error == "ImportError: missing dependency xyz"
    assert info.distribution == "zoo-broken"
    assert registry.names("architecture") == BUILTIN_ARCHITECTURES


def test_entry_point_env_variables(tmp_path, monkeypatch):
    plugin = ("import zoo\nfrom zoo.specs import LossSpec\n"
              "@zoo.hookimpl\ndef zoo_register_losses():\n"
              "    return [LossSpec('{name}', 's', 'zoo_plugins.losses.pixelwise:MSELoss')]\n")
    make_dist(tmp_path, "zoo-a", {"a": "zoo_a_mod"}, {"zoo_a_mod": plugin.format(name="loss_a")})
    make_dist(tmp_path, "zoo-b", {"b": "zoo_b_mod"}, {"zoo_b_mod": plugin.format(name="loss_b")})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ZOO_DISABLE_PLUGIN_AUTOLOAD")  # the suite turns autoload off; this test is about it
    assert {"loss_a", "loss_b"} <= set(build_registry().names("loss"))
    monkeypatch.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert not {"loss_a", "loss_b"} & set(build_registry().names("loss"))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "b,nope")  # explicit names load even with autoload off
    registry = build_registry()
    assert "loss_b" in registry.names("loss") and "loss_a" not in registry.names("loss")
    assert registry.plugin_info("nope").error == "named in ZOO_LOAD_PLUGINS but not installed"
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    assert {p.name for p in build_registry().plugins} == BUILTIN_PLUGINS
    for mod in ("zoo_a_mod", "zoo_b_mod"):
        sys.modules.pop(mod, None)


def test_specs_validate_themselves():
    with pytest.raises(PluginError, match="must be non-empty"):
        LossSpec("bad name", "s", "x:y")
    with pytest.raises(PluginError, match="never decrease"):
        FeatureInfo((8, 16), (4, 2))
    with pytest.raises(PluginError, match="twice"):
        EncoderSpec("e", "s", "x:y", options=(Option("a", 1), Option("a", 2)))


def test_hookspecs_use_the_zoo_marker():
    pm = pluggy.PluginManager("zoo")
    from zoo import hookspecs

    pm.add_hookspecs(hookspecs)
    assert sorted(h for h in dir(pm.hook) if h.startswith("zoo_")) == [
        "zoo_register_architectures", "zoo_register_callbacks", "zoo_register_datasets", "zoo_register_encoders",
        "zoo_register_losses", "zoo_register_optimizers", "zoo_register_pretrained", "zoo_register_recipes",
        "zoo_register_schedulers"]


class _Misspelled:
    @zoo.hookimpl
    def zoo_register_loss(self):  # one letter short
        return []

    def zoo_register_datasets(self):  # forgot the marker
        return []


class _WrongKind:
    @zoo.hookimpl
    def zoo_register_losses(self):
        return [EncoderSpec("enc", "an encoder in the loss hook", "x:y", feature_info=lambda: None)]


def test_misspelled_and_unmarked_hooks_are_reported():
    registry = build_registry(*_pm_with(("typo", _Misspelled()), ("kinds", _WrongKind())))
    typo = registry.plugin_info("typo")
    assert typo.status == "warning"
    assert typo.warning == ("unknown hook zoo_register_loss (did you mean zoo_register_losses?); "
                            "zoo_register_datasets is not marked @zoo.hookimpl")
    assert registry.plugin_info("kinds").error == ("zoo_register_losses: PluginError: zoo_register_losses returned "
                                                   "EncoderSpec 'enc', expected LossSpec")


def test_a_builtin_plugin_that_raises_is_a_bug_not_a_status(monkeypatch):
    from zoo_plugins import losses

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(losses, "zoo_register_losses", zoo.hookimpl(broken))
    pm, infos = make_plugin_manager(entry_points=False)
    with pytest.raises(PluginError, match="built-in plugin 'losses' failed in zoo_register_losses: boom"):
        build_registry(pm, infos)


def test_plugins_command_prints_each_problem_on_one_line(tmp_path, monkeypatch):
    make_dist(tmp_path, "zoo-broken", {"broken": "zoo_broken_mod"},
              {"zoo_broken_mod": "raise ImportError('a very long message ' * 12)\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "broken")
    monkeypatch.setenv("COLUMNS", "80")
    from tests.conftest import cli

    out = cli("plugins").stdout.splitlines()
    assert out[-1].startswith("broken: error: ImportError: a very long message a very long message")
    assert sum("a very long message" in line for line in out) == 1


def test_missing_plugin_is_named_with_its_distribution(with_example, tmp_path, monkeypatch):
    registry = build_registry()
    model = zoo.create_model("unet", encoder="tiny", registry=registry, width=4)
    zoo.save_model(model, tmp_path / "m.safetensors")
    monkeypatch.delenv("ZOO_LOAD_PLUGINS")  # the plugin is gone
    from zoo.errors import MissingPluginError

    with pytest.raises(MissingPluginError, match=r"encoder 'example:tiny' comes from plugin 'example' "
                       r"\(zoo-plugin-example 0\.4\.0 when it was saved\), which is not installed here; install it: "
                       r"pip install 'zoo-plugin-example==0\.4\.0'"):
        zoo.load_model(tmp_path / "m.safetensors", registry=build_registry())


def test_resume_uses_the_recorded_plugin_of_a_name_that_became_ambiguous(tmp_path):
    from zoo.engine.train import train

    run = tmp_path / "run"
    train(out=run, epochs=1, image_size=32, loss="dice", options={"base_channels": "4", "count": "8"})
    registry = build_registry(*_pm_with(("other", _DuplicateDice())))
    with pytest.raises(AmbiguousNameError):
        registry.get("loss", "dice")
    result = train(resume=run, epochs=2, registry=registry)
    assert [r["epoch"] for r in result.history] == [1, 2]
