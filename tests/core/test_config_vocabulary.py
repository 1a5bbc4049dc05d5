"""Config files speak the flags' vocabulary (`data:` for `--data`, `synthetic_partners:` for
`--synthetic-partners`, `model:` for quantize's `--model`), keep the old keys, and a run's own config.yaml is a
config file; path fields come out absolute; save_config writes `command:` and `resolved:` and, on resume, keeps
what the run resolved."""
import argparse

import pytest
import yaml

from sqtool.core import SqtoolError, resolve_config
from sqtool.core.config import load_config_file, resume_config, same_path
from sqtool.core.runs import make_run_dir, release_run_dirs, save_config, save_resolved


def _yaml(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("module, cls, text, field, value", [
    ("sqtool.train.finetune", "FinetuneConfig", "data: synthetic\n", "data_root", "synthetic"),
    ("sqtool.train.finetune", "FinetuneConfig", "data_root: synthetic\n", "data_root", "synthetic"),
    ("sqtool.compress.cli", "QuantizeConfig", "data: synthetic\n", "data_root", "synthetic"),
    ("sqtool.compress.cli", "QuantizeConfig", "model: runs/t\n", "teacher", "runs/t"),
    ("sqtool.compress.cli", "QuantizeConfig", "teacher: runs/t\n", "teacher", "runs/t"),
    ("sqtool.data.pairs", "PairsConfig", "synthetic_partners: true\n", "synthetic_fallback", True),
    ("sqtool.data.pairs", "PairsConfig", "synthetic_fallback: true\n", "synthetic_fallback", True),
])
def test_config_keys_are_the_flags_names_and_the_old_ones(tmp_path, module, cls, text, field, value):
    import importlib
    C = getattr(importlib.import_module(module), cls)
    assert getattr(resolve_config(C, config_file=_yaml(tmp_path, text)), field) == value


def test_two_keys_for_one_field_are_refused(tmp_path):
    from sqtool.train.finetune import FinetuneConfig
    with pytest.raises(SqtoolError, match="'data_root' and 'data' both set data_root"):
        resolve_config(FinetuneConfig, config_file=_yaml(tmp_path, "data_root: a\ndata: b\n"))


def test_a_flag_overrides_the_files_key_under_either_name(tmp_path):
    from sqtool.train.finetune import FinetuneConfig
    args = argparse.Namespace(data_root="synthetic", config_file=_yaml(tmp_path, "data: elsewhere\nepochs: 3\n"))
    cfg = resolve_config(FinetuneConfig, args)
    assert cfg.data_root == "synthetic" and cfg.epochs == 3


def test_a_runs_config_yaml_is_read_as_its_config_section(tmp_path):
    from sqtool.train.pretrain import PretrainConfig
    p = _yaml(tmp_path, yaml.safe_dump({"sqtool_version": "0.1.0", "git_sha": "x", "created": "now",
                                        "world_size": 1, "config": {"epochs": 7, "pairs": "synthetic",
                                                                    "out": str(tmp_path / "run"), "force": True},
                                        "resolved": {"device": "cpu"}}), "config.yaml")
    assert load_config_file(p) == {"epochs": 7, "pairs": "synthetic"}     # never where that run went: no overwrite
    assert resolve_config(PretrainConfig, config_file=p).epochs == 7
    plain = _yaml(tmp_path, "config: 3\n")                    # a key named config in a plain file stays a key
    with pytest.raises(SqtoolError, match="unknown key 'config'"):
        resolve_config(PretrainConfig, config_file=plain)


def test_path_fields_come_out_absolute_and_compare_resolved(tmp_path, monkeypatch):
    from sqtool.train.finetune import FinetuneConfig
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pt").mkdir()
    (tmp_path / "synthetic").mkdir()                         # a folder named like a reserved name changes nothing
    (tmp_path / "none").mkdir()
    assert resolve_config(FinetuneConfig, init="none", data_root="synthetic").init == "none"
    cfg = resolve_config(FinetuneConfig, init="pt", data_root="synthetic", model="resnet1d_siamq_tiny")
    assert cfg.init == str(tmp_path / "pt")                  # an existing path: absolute
    assert cfg.data_root == "synthetic" and cfg.model == "resnet1d_siamq_tiny"     # names stay names
    assert resolve_config(FinetuneConfig, init="missing/model.pt").init == "missing/model.pt"   # error names it
    assert same_path("pt", str(tmp_path / "pt")) and same_path("./pt/", "pt") and not same_path("pt", "other")
    args = argparse.Namespace(init="./pt/", epochs=4, config_file=None)
    new, changed = resume_config(FinetuneConfig, cfg, args)
    assert new.init == cfg.init and changed == {"epochs": (10, 4)}      # the same path spelled otherwise: no change



def test_resume_config_refuses_what_may_not_change_naming_each_key():
    from sqtool.compress.cli import QuantizeConfig
    saved = QuantizeConfig(teacher="t", epochs=5, lr=1e-3)
    args = argparse.Namespace(epochs=6, lr=2e-3, qat_epochs=3, out="o", config_file=None)
    with pytest.raises(SqtoolError, match=r"--resume runs/q continues that run in its own folder: drop --out o"):
        resume_config(QuantizeConfig, saved, args, run_dir="runs/q")             # another folder: ignored before
    args.out = "runs/q"                                                         # its own: no change
    with pytest.raises(SqtoolError) as e:
        resume_config(QuantizeConfig, saved, args, run_dir="runs/q", may_change=("qat_epochs", "out", "force"),
                      why="its float student was trained with the saved one")
    assert str(e.value) == ("cannot resume runs/q with a changed config (epochs: 5 -> 6, lr: 0.001 -> 0.002): its "
                            "float student was trained with the saved one; on resume only --qat-epochs may change "
                            "(start a new run for any other)")                # --out, --force: where, not what
    cfg, changed = resume_config(QuantizeConfig, saved, argparse.Namespace(qat_epochs=3, config_file=None),
                                 may_change={"qat_epochs": "a note"})
    assert cfg.qat_epochs == 3 and changed == {"qat_epochs": (8, 3)}


def test_pretrain_resume_refuses_a_library_config_and_fewer_epochs_than_done():
    from sqtool.core.config import to_dict
    from sqtool.train.pretrain import PretrainConfig, resumed_config
    saved = to_dict(PretrainConfig(epochs=4))
    assert resumed_config(saved, PretrainConfig(epochs=6, max_steps=3), "run", epochs_done=2).epochs == 6
    with pytest.raises(SqtoolError, match=r"changed config \(lr: 0.0001 -> 0.1\): on resume only --max-steps, "
                                          r"--progress, --device, --layout, --ddp-timeout, --log-every, --tensorboard "
                                          r"and --epochs "
                                          r"\(not below the 2 done\) may change"):
        resumed_config(saved, PretrainConfig(epochs=4, lr=0.1), "run", epochs_done=2)       # a whole config: a library resume
    with pytest.raises(SqtoolError, match=r"changed config \(epochs: 4 -> 1\)"):
        resumed_config(saved, PretrainConfig(epochs=1), "run", epochs_done=2)

def test_save_config_names_the_command_and_keeps_what_was_resolved_on_resume(tmp_path):
    from sqtool.train.pretrain import PretrainConfig
    d = make_run_dir("train/pretrain", "m", tmp_path / "run")
    try:
        save_config(d, PretrainConfig(epochs=3), world_size=1)
        save_resolved(d, device="cpu")
        first = yaml.safe_load((d / "config.yaml").read_text())
        assert first["command"] == "train/pretrain" and first["resolved"]["run_dir"] == str(d.resolve())
        assert first["resolved"]["device"] == "cpu" and first["resolved"]["pairs"] == "synthetic"
        save_config(d, PretrainConfig(epochs=3, max_steps=0), resumed=True, world_size=1)
        again = yaml.safe_load((d / "config.yaml").read_text())
        assert again["created"] == first["created"] and len(again["resumed"]) == 1
        assert again["resolved"]["device"] == "cpu" and again["config"]["max_steps"] == 0
    finally:
        release_run_dirs()


def test_a_folder_of_another_command_gets_the_final_answer_without_force(tmp_path):
    """Without --force a folder of another command's run is refused as --force would refuse it (one line), not
    with 'use --force', which would only lead to that refusal."""
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump({"sqtool_version": "0", "command": "export", "config": {}}))
    for force in (False, True):
        with pytest.raises(SqtoolError) as e:
            make_run_dir("train/finetune", "x", d, force=force)
        assert str(e.value) == (f"output directory {d} holds an export run: --force writes over an earlier train "
                                "finetune run only, never another command's files; choose another --out")


def test_pretrain_resume_names_fewer_epochs_and_other_changes_in_one_refusal():
    from sqtool.core.config import to_dict
    from sqtool.train.pretrain import PretrainConfig, resumed_config
    saved = to_dict(PretrainConfig(epochs=4))
    with pytest.raises(SqtoolError, match=r"changed config \(lr: 0.0001 -> 0.1, epochs: 4 -> 1\): on resume only "
                                          r"--max-steps, --progress, --device, --layout, --ddp-timeout, --log-every, "
                                          r"--tensorboard and --epochs "
                                          r"\(not below the 2 done\) may change") as e:
        resumed_config(saved, PretrainConfig(epochs=1, lr=0.1), "run", epochs_done=2)
    assert len(str(e.value).splitlines()) == 1


def test_a_config_path_that_exists_is_never_called_not_found(tmp_path):
    """`--config /dev/null` (a file that is not a regular one) said 'not found'; it is read (empty: no value). A
    folder is one line pointing at the run's config.yaml inside it; a missing path is 'not found'."""
    from sqtool.core import SqtoolError
    from sqtool.core.config import load_config_file
    assert load_config_file("/dev/null") == {}
    with pytest.raises(SqtoolError, match=r"is a folder; give a YAML file \(a run's config.yaml: "):
        load_config_file(tmp_path)
    with pytest.raises(SqtoolError, match="not found"):
        load_config_file(tmp_path / "nope.yaml")
