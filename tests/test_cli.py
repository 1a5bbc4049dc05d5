"""The CLI promise: every command has real help; errors are one line on stderr, never a traceback."""
import subprocess
import sys

import pytest

from sqtool.cli import COMMANDS, main


def run(*args):
    return subprocess.run([sys.executable, "-m", "sqtool.cli", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for name, _, _ in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_each_command_has_help(name):
    r = run(name, "--help")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) >= 2


def test_unknown_config_key_is_one_line(tmp_path):
    from sqtool.core import SqtoolError, resolve_config
    from dataclasses import dataclass

    @dataclass
    class C:
        a: int = 1

    f = tmp_path / "c.yaml"
    f.write_text("a: 2\nbogus: 3\n")
    with pytest.raises(SqtoolError, match="bogus"):
        resolve_config(C, config_file=str(f))
    assert resolve_config(C, config_file=None, a=5).a == 5


def test_error_is_one_line_no_traceback(capsys):
    rc = main(["export", "--model", "/nonexistent/run", "--target", "onnx"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _leaf_commands(parser, prefix=()):
    import argparse
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
        return
    for name, p in subs[0].choices.items():
        yield from _leaf_commands(p, prefix + (name,))


def test_every_nested_command_has_help(capsys):
    from sqtool.cli import build_parser
    leaves = list(_leaf_commands(build_parser()))
    assert len(leaves) >= 6
    for cmd in leaves:
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0, cmd
        assert "usage:" in out, cmd


# ----------------------------------------------------------------------------- help that teaches, one vocabulary

def _all_parsers(parser, prefix=()):
    """(command words, parser) for the top level and every command and sub-command."""
    import argparse
    yield prefix, parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, p in a.choices.items():
                yield from _all_parsers(p, prefix + (name,))


def _options(parser):
    import argparse
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def test_every_help_describes_each_option_once_without_source_paths(capsys):
    import re
    from sqtool.cli import build_parser
    seen = 0
    for cmd, p in _all_parsers(build_parser()):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        text = capsys.readouterr().out
        assert e.value.code == 0, cmd
        flat = " ".join(text.split())
        assert not re.search(r"\w\.py\b", flat), (cmd, re.findall(r"\S+\.py\b", flat))
        assert not re.search(r"\(default[^()]*\)\s*\(default", flat), cmd
        assert "(default: None)" not in flat and "(default: )" not in flat and "(default: [])" not in flat, cmd
        for a in _options(p):
            seen += 1
            h = (a.help or "").strip()
            assert len(h) > 3, (cmd, a.option_strings)                      # every option is described
            assert len(re.findall(r"\bdefault\b", h, re.I)) <= 1, (cmd, a.option_strings, h)
            assert "\n" not in h, (cmd, a.option_strings)
            if "(required)" in h:
                assert "(default" not in h, (cmd, a.option_strings)
    assert seen > 150


def test_required_options_say_so(capsys):
    from sqtool.cli import build_parser
    req = {("export",): "--model", ("bench",): "--model", ("predict",): "--data", ("quantize",): "--model",
           ("data", "inspect"): "--data", ("data", "download"): "--out"}
    parsers = dict(_all_parsers(build_parser()))
    for cmd, flag in req.items():
        a = next(a for a in _options(parsers[cmd]) if flag in a.option_strings)
        assert "(required)" in a.help, (cmd, flag)


def test_flags_are_one_vocabulary_across_commands():
    from sqtool.cli import build_parser
    from sqtool.core import BoolFlag
    parsers = dict(_all_parsers(build_parser()))
    consumes_model = [("train", "pretrain"), ("train", "finetune"), ("quantize",), ("export",), ("bench",),
                      ("predict",)]
    takes_data = [("data", "inspect"), ("data", "quality"), ("data", "pairs"), ("train", "finetune"), ("quantize",),
                  ("bench",), ("predict",), ("demo",)]
    writes = [("data", "download"), ("data", "pairs"), ("train", "pretrain"), ("train", "finetune"), ("quantize",),
              ("export",), ("bench",), ("predict",), ("demo",)]
    for cmd in consumes_model:
        assert any("--model" in a.option_strings for a in _options(parsers[cmd])), cmd
    for cmd in takes_data:
        assert any("--data" in a.option_strings for a in _options(parsers[cmd])), cmd
    for cmd in writes:
        assert any("--out" in a.option_strings for a in _options(parsers[cmd])), cmd
    n_force = n_progress = 0
    for cmd, p in parsers.items():
        for a in p._actions:
            if "--force" in a.option_strings:                      # a plain switch (also `--force true`)
                assert isinstance(a, BoolFlag) and a.option_strings == ["--force"], cmd
                n_force += 1
            if "--progress" in a.option_strings:                   # --progress / --no-progress, the same kind
                assert isinstance(a, BoolFlag) and a.option_strings == ["--progress", "--no-progress"], cmd
                n_progress += 1
            assert "--to" not in a.option_strings or a.help == "==SUPPRESS==", cmd
        assert p.allow_abbrev is False, cmd
    assert n_force >= 7 and n_progress >= 5


# Commands that do not take the progress flags yet, each with its reason (to go when it does; empty = every command).
PROGRESS_PENDING = {
    ("demo",): "its steps run with --no-progress by design: the demo prints a transcript of its commands",
}


def test_every_command_takes_the_progress_flags():
    """README: '--progress / --no-progress' (and the old --quiet) are the same in every command; `predict ...
    --no-progress` was 'unrecognized arguments' (exit 2), as was `data inspect`'s. Every command that runs
    (no sub-commands of its own) takes them, but those listed in PROGRESS_PENDING."""
    import argparse

    from sqtool.cli import build_parser
    lacking = {cmd for cmd, p in _all_parsers(build_parser()) if cmd
               and not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
               and not {"--progress", "--no-progress", "--quiet"} <= {o for a in p._actions for o in a.option_strings}}
    assert lacking == set(PROGRESS_PENDING)


def _parse(argv):
    from sqtool.cli import build_parser
    return build_parser().parse_args(argv)


def test_abbreviations_are_refused(capsys):
    assert main(["export", "--mod", "x"]) == 2
    err = capsys.readouterr().err
    assert "--mod" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--debug", "export", "--model", "/nonexistent/run"],
                                  ["export", "--model", "/nonexistent/run", "--debug"],
                                  ["export", "--debug", "--model", "/nonexistent/run"]])
def test_debug_anywhere_on_the_line(argv):
    from sqtool.core import SqtoolError
    with pytest.raises(SqtoolError):                               # --debug re-raises instead of one line
        main(argv)


@pytest.mark.parametrize("argv, dest, value", [
    (["export", "--force"], "force", True),
    (["export", "--force", "true"], "force", True),
    (["export", "--force", "false"], "force", False),
    (["train", "pretrain", "--force"], "force", True),
    (["train", "pretrain", "--force", "true"], "force", True),
    (["train", "pretrain", "--no-progress"], "progress", False),
    (["train", "pretrain", "--progress", "false"], "progress", False),
    (["train", "finetune", "--progress"], "progress", True),
    (["data", "pairs", "--no-progress"], "progress", False),
    (["quantize", "--no-progress"], "progress", False),
    (["quantize", "--no-distill"], "distill", False),
    (["quantize", "--distill", "false"], "distill", False),
    (["data", "download", "x", "--no-progress"], "progress", False),
    (["predict", "--no-progress"], "progress", False),
    (["data", "inspect", "--no-progress"], "progress", False),
])
def test_bool_flags_parse_the_same_everywhere(argv, dest, value):
    assert getattr(_parse(argv), dest) is value


def test_bool_flag_refuses_a_non_bool(capsys):
    assert main(["export", "--force", "maybe"]) == 2
    assert "expected true or false" in capsys.readouterr().err


@pytest.mark.parametrize("argv, dest, value, new", [
    (["train", "finetune", "--data-root", "synthetic"], "data_root", "synthetic", "--data"),
    (["quantize", "--data-root", "synthetic"], "data_root", "synthetic", "--data"),
    (["quantize", "--teacher", "runs/t"], "teacher", "runs/t", "--model"),
    (["quantize", "--quiet"], "progress", False, "--no-progress"),
    (["train", "pretrain", "--quiet"], "progress", False, "--no-progress"),
    (["train", "finetune", "--quiet"], "progress", False, "--no-progress"),
    (["data", "pairs", "--quiet"], "progress", False, "--no-progress"),
    (["data", "download", "x", "--quiet"], "progress", False, "--no-progress"),
    (["export", "--quiet"], "progress", False, "--no-progress"),
    (["bench", "--quiet"], "progress", False, "--no-progress"),
    (["predict", "--quiet"], "progress", False, "--no-progress"),
    (["data", "inspect", "--quiet"], "progress", False, "--no-progress"),
    (["data", "pairs", "--synthetic-fallback"], "synthetic_fallback", True, "--synthetic-partners"),
    (["data", "pairs", "--synthetic-fallback", "false"], "synthetic_fallback", False, "--synthetic-partners"),
    (["data", "pairs", "--data-root", "synthetic"], "data_root", "synthetic", "--data"),
    (["data", "pairs", "--input", "a", "b"], "input", ["a", "b"], "--data"),
    (["data", "download", "x", "--to", "d"], "out", "d", "--out"),
    (["demo", "--data-root", "synthetic"], "data_root", "synthetic", "--data"),
])
def test_old_spellings_work_with_one_deprecation_line(argv, dest, value, new, capsys):
    assert getattr(_parse(argv), dest) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"deprecated: use {new}" in err[0]


def test_new_spellings_land_where_the_old_ones_did():
    assert _parse(["train", "finetune", "--data", "synthetic"]).data_root == "synthetic"
    assert _parse(["quantize", "--model", "runs/t"]).teacher == "runs/t"
    assert _parse(["data", "download", "x", "--out", "d"]).out == "d"
    from sqtool.data.pairs import _data_overrides
    assert _data_overrides(["synthetic"], None) == {"data_root": "synthetic"}
    assert _data_overrides(["a.csv", "b"], None) == {"input": ["a.csv", "b"]}


def test_data_pairs_takes_a_data_root(tmp_path):
    from sqtool.data.pairs import _data_overrides
    (tmp_path / "troika").mkdir()
    assert _data_overrides([str(tmp_path)], None) == {"data_root": str(tmp_path)}
    assert _data_overrides([str(tmp_path / "troika")], None) == {"input": [str(tmp_path / "troika")]}


def test_positional_path_is_a_deprecated_alias_of_data(capsys):
    import argparse
    from sqtool.core import SqtoolError
    from sqtool.data.cli import _data_arg
    assert _data_arg(argparse.Namespace(path="troika", data=None)) == "troika"
    assert "deprecated: use --data" in capsys.readouterr().err
    assert _data_arg(argparse.Namespace(path=None, data="troika")) == "troika"
    assert capsys.readouterr().err == ""
    with pytest.raises(SqtoolError, match="--data PATH is required"):
        _data_arg(argparse.Namespace(path=None, data=None))


def test_model_is_what_the_stage_consumes(tmp_path, capsys):
    # pretrain builds a registry architecture: a path is refused with the way to continue a run
    assert main(["train", "pretrain", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o")]) != 0
    assert "--resume" in capsys.readouterr().err
    # finetune: a run folder / checkpoint given as --model is the pretrained init
    assert main(["train", "finetune", "--model", str(tmp_path / "missing.pt"), "--data", "synthetic",
                 "--out", str(tmp_path / "f")]) != 0
    err = capsys.readouterr().err
    assert "missing.pt" in err and "unknown model" not in err
    assert main(["train", "finetune", "--model", str(tmp_path / "a.pt"), "--init", str(tmp_path / "b.pt"),
                 "--out", str(tmp_path / "g")]) != 0
    assert "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "f").exists() and not (tmp_path / "g").exists()


def test_pretrain_defaults_are_laptop_sized(capsys):
    from sqtool.models import create_model
    from sqtool.train.pretrain import PretrainConfig
    m = create_model(PretrainConfig().model)
    assert sum(p.numel() for p in m.parameters()) < 1_000_000
    with pytest.raises(SystemExit):
        main(["train", "pretrain", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "resnet1d_siamq_152" in out and "torchrun" in out            # the paper-scale command


def test_export_and_bench_end_with_the_next_command(tmp_path):
    from sqtool.export.cli import next_step as export_next
    from sqtool.firmware_bench.cli import next_step as bench_next
    e = export_next({"out": str(tmp_path), "failed": [], "metadata": {"task": "hr"}}).splitlines()
    assert e[0] == f"report: {tmp_path / 'export_report.md'}"
    assert e[1].startswith(f"next: sqtool bench --model {tmp_path} --data synthetic ")   # a synthetic-only model
    own = {"task": "hr", "training_data": {"datasets": ["my_watch"], "heldout_subjects": ["my_watch:s04"]}}
    e = export_next({"out": str(tmp_path), "failed": [], "metadata": own}).splitlines()
    assert e[1].startswith(f"next: sqtool bench --model {tmp_path} --data RECORDINGS ")  # not synthetic: its own kind
    assert e[1].endswith("held out from its training: my_watch:s04)")
    # pseudonyms in the export's files: the terminal of the in-house user who ran it names the id too (it named
    # my_watch:subject-05 only, and a team could not tell which of its subjects that was)
    own["training_data"]["heldout_subjects"] = ["my_watch:subject-05"]
    names = {"my_watch:s2": "my_watch:subject-01", "s6": "my_watch:subject-05", "my_watch:s6": "my_watch:subject-05"}
    e = export_next({"out": str(tmp_path), "failed": [], "metadata": own, "names": names}).splitlines()
    assert e[1].endswith("held out from its training: my_watch:s6 (my_watch:subject-05 in the export))")
    assert "--explain" in export_next({"out": str(tmp_path), "failed": ["x"], "metadata": {}})
    b = bench_next({"run_dir": str(tmp_path / "b"), "kind": "spectral", "provenance": {"model_dir": "exp"}})
    assert b.splitlines() == [f"report: {tmp_path / 'b' / 'bench.md'}",
                              "next: sqtool predict --model exp --data RECORDING   (heart rate of your own "
                              "recordings; firmware kit: exp/c)"]
    (tmp_path / "exp" / "c").mkdir(parents=True)                 # a time-domain export with its C: build it
    assert "sq_model.c" in bench_next({"run_dir": "b", "provenance": {"model_dir": str(tmp_path / "exp")}})
    assert "next: sqtool predict" in bench_next({"run_dir": "b", "provenance": {"model_dir": "exp"}})   # no C there


@pytest.mark.parametrize("argv, line", [
    (["export", "--bogus"], "sqtool: error: export: unrecognized arguments: --bogus (see sqtool export --help)"),
    (["--bogus"], "sqtool: error: unrecognized arguments: --bogus (see sqtool --help)"),
    (["train", "pretrain", "--epochs"], "sqtool: error: train pretrain: argument --epochs: expected one argument "
                                        "(see sqtool train pretrain --help)"),
])
def test_usage_errors_name_the_command_once(argv, line, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == line


def test_data_inspect_ends_with_the_next_command():
    from sqtool.data.cli import inspect_next
    assert inspect_next("w/dataset.yaml", ["hr"], acc=True) == \
        "next: sqtool train finetune --task hr --model spec_teacher_m --data w/dataset.yaml --folds 0"
    assert inspect_next("bidmc", ["hr", "rr"]) == "next: sqtool train finetune --task hr --data bidmc"   # no acc
    assert inspect_next("arr", ["rhythm"]) == "next: sqtool train finetune --task af --model af_beats --data arr"
    assert inspect_next("ward", ["rr"]) == "next: sqtool train finetune --task rr --model rr_spec --data ward"
    assert inspect_next("cuff", ["bp"]) == "next: sqtool train finetune --task bp --data cuff"   # no front model
    from sqtool.data.cli import FRONT_MODELS
    from sqtool.data.dataset_file import TASK_LABELS
    from sqtool.models import front_model
    assert FRONT_MODELS == {t: front_model(t) for t in TASK_LABELS if front_model(t)}   # the registry's, by name
    assert inspect_next("raw", []).startswith("next: sqtool data pairs --data raw ")


def test_data_inspect_offers_no_task_a_one_class_label_cannot_train():
    from sqtool.data.cli import trainable_labels
    one = {"labels": {"rhythm": {"binary": {"AF": 30, "other": 0}}}}
    both = {"labels": {"rhythm": {"binary": {"AF": 30, "other": 12}}, "rr": {"values": 9}}}
    assert trainable_labels(one) == [] and trainable_labels(both) == ["rhythm", "rr"]


def test_every_force_flag_says_what_force_does():
    """--force writes over an earlier run of the same command (or into a folder that is no sqtool run), never into
    another command's run and never deleting (core.runs.check_out_dir, behind every command's run folder): each
    command's --force help is the one core.runs.FORCE_HELP, none says 'overwrite' or 'allow writing'."""
    from cli_options import option_helps
    from sqtool.core.runs import FORCE_HELP
    helps = option_helps("--force")
    assert {"data pairs", "quantize", "demo", "export", "train pretrain"} <= set(helps), sorted(helps)
    assert {n: h for n, h in helps.items() if h != FORCE_HELP} == {}
