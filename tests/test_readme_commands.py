"""The README's commands and the figures they print, held to the code and to the benchmark files they come from:
the pipeline's pretraining on the real pairs of ../shared/data fits its batch, and the Data section's records and
pairs are those of benchmarks/results/data_quality_pairs.json."""
import json
import re
import shlex
from pathlib import Path

from cli_options import command_parsers

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PAIRS = json.loads((ROOT / "benchmarks/results/data_quality_pairs.json").read_text())["pairs"]


def _block_commands() -> list[list[str]]:
    """Every `sqtool ...` line of the README's code blocks, comments left out, as argv (without `sqtool`)."""
    lines = [ln.split("#")[0].strip() for block in re.findall(r"```\n(.*?)```", README, re.S)
             for ln in block.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("sqtool ")]


def _parse(argv: list[str]):
    from sqtool.cli import build_parser
    return build_parser().parse_args(argv)


def test_pretraining_on_the_real_pairs_fits_its_batch():
    from sqtool.core import resolve_config
    from sqtool.train.pretrain import PretrainConfig
    cmds = _block_commands()
    i = cmds.index(["data", "pairs", "--data", "../shared/data", "--out", "runs/pairs"])
    pretrain = next(c for c in cmds[i:] if c[:2] == ["train", "pretrain"])
    cfg = resolve_config(PretrainConfig, _parse(pretrain))
    assert cfg.pairs == "runs/pairs"
    real = PAIRS["real"]
    n = real["pairs"]                                            # what `data pairs` mines there
    # train.pretrain.split_pairs holds out whole subjects ("dataset/subject") whose pairs come close to val_fraction
    # x N (`_held_subjects`): at most twice that, or (none fitting under it) the one subject nearest it, which is no
    # larger than a dataset's smallest subject (at most its pairs / its subjects with pairs).
    target = cfg.val_fraction * n
    smallest = min(d["pairs"] // d["subjects_with_pairs"] for d in real["datasets"].values() if d["subjects_with_pairs"])
    worst = n - max(2 * target, smallest)
    assert cfg.batch_size <= worst, (cfg.batch_size, n, target, smallest)
    assert f"shards: {n} real" in README
    assert "validation subjects' (about --val-fraction 0.05 of the pairs) fill no batch of the default 256" in README
    assert worst < 256 and cfg.val_fraction == 0.05


def test_the_data_figures_are_the_benchmarks():
    """The Data section's records and pairs are benchmarks/results/data_quality_pairs.json's (re-run it after a
    dataset is added: wrist_exercise's were missing)."""
    section = " ".join(README[README.index("### Data (`benchmarks/data_quality_pairs.py`)"):
                              README.index("### Train (")].split())
    real = PAIRS["real"]
    assert f"reads {real['records']:,} records" in section
    names = {"bidmc": "BIDMC", "troika": "TROIKA", "unlabeled": "unlabeled", "wrist_exercise": "wrist_exercise"}
    paired = {k: d["pairs"] for k, d in real["datasets"].items() if d["pairs"]}
    assert set(paired) <= set(names), paired
    assert (f"{real['pairs']} real pairs from `../shared/data` ("
            + ", ".join(f"{names[k]} {n}" for k, n in paired.items())) in section
    b = real["datasets"]["bidmc"]
    assert (f"BIDMC's {b['pairs']} come from {b['subjects_with_pairs']} of its {b['subjects']} patients (ICU PPG is "
            f"almost all good: {b['poor']} poor windows of {b['windows']})") in section
    fallback = sum(d["pairs"] for d in PAIRS["real_synthetic_fallback"].values())
    assert f"with `--synthetic-partners` {fallback:,}" in section
    bench_md = (ROOT / "benchmarks/results/data_quality_pairs.md").read_text()
    assert "wrist_exercise" in bench_md and "--data-root" not in bench_md and "--synthetic-fallback" not in bench_md


def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def test_the_commands_said_to_take_no_config_are_those_without_it():
    text = " ".join(README.split())
    said = re.search(r"Every command but (.*?) takes `--config file\.yaml`", text)
    assert said, "the README says which commands take --config"
    without = set(re.findall(r"`([a-z ]+)`", said.group(1)))
    parsers = command_parsers(leaves_only=True)
    assert without == {n for n, p in parsers.items() if "--config" not in _options(p)}
    for name in without - {"data download"}:                    # they print and write nothing: no run folder
        assert not {"--out", "--force"} & _options(parsers[name]), name
        assert f"`{name}`" in text[text.index("write nothing") - 80:text.index("write nothing")]


def test_the_truth_column_of_predict_is_named_as_predict_writes_it():
    """(tests/firmware_bench/test_predict.py::test_predict_with_truth reads that column from a real run.)"""
    line = next(ln for ln in README.splitlines() if "--data my_watch/dataset.yaml adds" in ln)
    col = re.search(r"adds (?:an?|the) (\w+) column", line).group(1)
    src = (ROOT / "sqtool/firmware_bench/predict.py").read_text()
    assert f'cols["{col}"] = truth' in src, col
    assert f"the truth (`{col}`" in README


def test_the_old_spellings_are_those_each_command_keeps():
    """The README's list of old spellings (`OLD` for `NEW` (`command`, ...)) is each parser's deprecated aliases
    (and the hidden positional PATH), and the commands it says keep `--data-root` as an option of their own are
    those where it is one."""
    from sqtool.core.config import DeprecatedAlias
    text = " ".join(README.split())
    said = {}
    for old, new, where in re.findall(r"`(--[a-z-]+|PATH)` for `(--[a-z-]+)` \(([^)]*)\)", text):
        said[(old, new)] = set(re.findall(r"`([a-z ]+)`", where)) or where
    parsers = command_parsers(leaves_only=True)
    has = {}
    for name, p in parsers.items():
        for a in p._actions:
            if isinstance(a, DeprecatedAlias):
                for s in a.option_strings:
                    has.setdefault((s, a.new), set()).add(name)
            elif not a.option_strings and a.dest == "path":            # hidden: the old positional PATH
                has.setdefault(("PATH", "--data"), set()).add(name)
    with_progress = {n for n, p in parsers.items() if "--progress" in _options(p)}
    assert has.pop(("--quiet", "--no-progress")) == with_progress
    assert said.pop(("--quiet", "--no-progress"), None) == "every command that has it"
    assert said == has
    live = re.search(r"In (.*?), `--data-root DIR` beside `--data NAME` is an option of its own", text)
    assert live and set(re.findall(r"`([a-z ]+)`", live.group(1))) == {
        n for n, p in parsers.items() if any(a.option_strings[:1] == ["--data-root"] and
                                             not isinstance(a, DeprecatedAlias) for a in p._actions)}
