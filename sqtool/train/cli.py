"""`sqtool train pretrain` and `sqtool train finetune`.

    sqtool train pretrain --pairs runs/data/pairs/<run>                # resnet1d_siamq_tiny, 30 epochs
    sqtool train pretrain --resume runs/train/pretrain/<run>          # continue bit-for-bit after a kill
    torchrun --nproc_per_node 4 -m sqtool.cli train pretrain --out runs/ddp --pairs ...   # DDP
    sqtool train finetune --task hr --model runs/train/pretrain/<run> --mode full   # = --init <run>
    sqtool train finetune --task af --init none --folds 5

`--model` is what the stage consumes: a registry name (an architecture to train from scratch), or, for
finetune, a pretrained run folder or checkpoint file (the same as `--init`). Each command ends with its
run folder and the next command (`next: ...`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from pathlib import Path

from sqtool.core import (SqtoolError, absolute_path, add_bool_flag, add_config_args, check_band_phase, lock_run_dir,
                         make_run_dir, resolve_config, resume_config, save_config)
from sqtool.core.progress import item, metric_text
from sqtool.core.optim import check_training_numbers
from sqtool.core.runs import (FORCE_HELP, as_launched, check_out_dir, data_root_error, note_run, saved_yaml,
                              shell_command)


def register(sub, name: str, helptext: str) -> None:
    from sqtool.train.finetune import FinetuneConfig
    from sqtool.train.pretrain import PretrainConfig

    p = sub.add_parser(name, help=helptext, description=helptext + ". Run 'sqtool train SUBCOMMAND --help'.")
    tsub = p.add_subparsers(dest="train_command", metavar="SUBCOMMAND")

    pp = tsub.add_parser("pretrain", help="SimSiam pretraining on (good, poor) pair shards",
                         description=textwrap.fill(
                             "SimSiam pretraining of the SiamQuality ResNet on (good, poor) PPG pairs. Under "
                             "torchrun it runs data-parallel (DDP, synced BN). With no arguments it trains "
                             "resnet1d_siamq_tiny on 1024 synthetic pairs (a smoke run: about 10 min on 2 CPU cores).", 78),
                         epilog=PAPER_SCALE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(pp, PretrainConfig)
    pp.add_argument("--out", default=None, metavar="DIR",
                    help="run directory (default: runs/train/pretrain/<time>-<model>)")
    add_bool_flag(pp, "--force", "force", FORCE_HELP)
    pp.add_argument("--resume", default=None, metavar="RUN",
                    help="continue the run in RUN from its last.pt, bit for bit, with its saved config; only "
                         "--max-steps, --progress, --device, --layout, --ddp-timeout, --log-every, --tensorboard and "
                         "--epochs (to train longer: the lr steps every --lr-step-epochs whatever the total) may be "
                         "given; any other change is refused. A run its --max-steps stopped goes on to the end of its "
                         "epochs unless --max-steps is given again")
    pp.set_defaults(func=run_pretrain_cmd)

    fp = tsub.add_parser("finetune", help="fine-tune on a task with subject folds (hr, rr, af, bp, quality)",
                         description="Fine-tune a pretrained (or scratch) SiamQuality encoder on a task; "
                                     "teacher_task model.pt. " + FINETUNE_CI_TEXT)
    add_config_args(fp, FinetuneConfig)
    fp.add_argument("--out", default=None, metavar="DIR",
                    help="run directory (default: runs/train/finetune/<time>-<task>)")
    add_bool_flag(fp, "--force", "force", FORCE_HELP)
    fp.add_argument("--resume", default=None, metavar="RUN",
                    help="continue the run in RUN with its saved config, reusing its completed folds; only "
                         "--progress, --bootstrap, --final-fit, --calibrate-on, --layout, --tensorboard may be given "
                         "(the folds were trained with the rest); any other change is refused")
    fp.set_defaults(func=run_finetune_cmd)

    def no_sub(args):
        p.print_help()
        return 2
    p.set_defaults(func=no_sub)


PAPER_SCALE = """paper scale (SiamQuality: 21.6 M encoder parameters, 27 M with the SimSiam heads; days on GPUs):
  sqtool data pairs --data ../shared/data --out runs/pairs
  torchrun --standalone --nproc_per_node 4 -m sqtool.cli train pretrain --model resnet1d_siamq_152 \\
      --pairs runs/pairs --batch-size 256 --epochs 30 --out runs/pretrain-152"""


def _precheck_pretrain(cfg) -> None:
    """Cheap checks before a run directory is made (so a bad input leaves nothing behind)."""
    from sqtool.train.finetune import is_checkpoint_path
    from sqtool.train.pretrain import pretrain_model_cfg
    if is_checkpoint_path(cfg.model):
        raise SqtoolError(f"train pretrain --model {cfg.model}: pretraining starts from a registry name (e.g. "
                          f"resnet1d_siamq_tiny); to continue a run use --resume RUN")
    check_training_numbers(cfg, "train pretrain")
    model_cfg = pretrain_model_cfg(cfg)                      # a model that pretrains; before the pairs are opened
    from sqtool.train.pretrain import PAIR_MODES
    if cfg.pair_mode not in PAIR_MODES:
        raise SqtoolError(f"train pretrain --pair-mode must be one of {', '.join(PAIR_MODES)}, got '{cfg.pair_mode}'")
    if cfg.pairs != "synthetic":
        from sqtool.train.pretrain import ShardPairs
        if not Path(cfg.pairs).exists():
            raise SqtoolError(f"pair shards {cfg.pairs} not found (make them with 'sqtool data pairs')")
        # made at the model's rate, window, norm, band; the sha256 is checked in run_pretrain, once per machine
        ShardPairs(cfg.pairs, verify=False).check_contract(model_cfg)


def _refuse_synthetic_pairs_flag(args, cfg) -> None:
    """--synthetic-pairs typed beside a --pairs folder: the folder's pairs are trained on and the number said
    nothing (it sizes the generated corpus of --pairs synthetic only); one line instead of a run that ignores it.
    A --config file's key is left alone: a run's own config.yaml, fed back, holds every field."""
    if getattr(args, "synthetic_pairs", None) is not None and cfg.pairs != "synthetic":
        raise SqtoolError(f"train pretrain --synthetic-pairs {args.synthetic_pairs}: it sizes the generated pairs of "
                          f"--pairs synthetic only; --pairs {cfg.pairs} trains on every pair the folder holds "
                          "(drop --synthetic-pairs, or mine fewer pairs)")


def _precheck_finetune(cfg):
    """Cheap checks before a run directory is made; returns (cfg, the --init checkpoint): cfg prepared as the
    library entries prepare it (`prepare_finetune`: model=RUN -> init=RUN, validated), the checkpoint read once
    (by that, else here for a time-domain model), for the fine-tune to use as is."""
    from sqtool.train.finetune import check_mode, load_init, prepare_finetune, refuse_spectral_only
    cfg, init_ck = prepare_finetune(cfg)            # task, training numbers, rates and windows
    name = cfg.model
    front = _front_module(cfg.model)
    if front:                                       # rr_spec, af_beats: their own refusals (no --init, ...), one line
        front.check_config(cfg)
        refuse_spectral_only(cfg, f"train finetune --model {cfg.model}")
        _check_layout(cfg, name, None)
        return _data_checked(cfg), None
    check_band_phase(cfg.band_phase, "train finetune", cfg.model, _is_spectral(cfg.model))
    if _is_spectral(cfg.model):                     # its front end reads its own channels, rate, window and hop
        from sqtool.train.finetune_hr import check_spectral_options
        check_spectral_options(cfg)
    else:                                           # a spectral model's --init is checked by finetune_hr
        if cfg.datasets:
            raise SqtoolError(f"--datasets is for the spectral heart-rate models (spec_*); {cfg.model or 'this model'} "
                              "reads every dataset of --data")
        refuse_spectral_only(cfg, f"train finetune --model {cfg.model or 'resnet1d_siamq_18'}")
        init_ck, name = load_init(cfg.init, cfg.model, cfg.fs or None, ck=init_ck)
    check_mode(cfg.mode, name)
    _check_layout(cfg, name, init_ck)
    return _data_checked(cfg), init_ck


def _check_layout(cfg, name: str, init_ck: dict | None) -> None:
    """--layout nhwc for a model without a channels-last encoder (spectral, front-end): one line, before a run
    folder is made (auto and ncl fit every model)."""
    if cfg.layout == "nhwc":
        from sqtool.core.optim import encoder_layout
        from sqtool.models import get_model_cfg
        family = (init_ck or {}).get("model_cfg", {}).get("family") or get_model_cfg(name).family
        encoder_layout(cfg.layout, family, None, name)


def _data_checked(cfg):
    """cfg, once its --data is a dataset file / built-in name (parsed and checked here) or a folder."""
    from sqtool.data.dataset_tasks import dataset_of
    if dataset_of(cfg.data_root) is not None:
        return cfg
    if cfg.data_root and cfg.data_root != "synthetic" and not Path(cfg.data_root).is_dir():
        raise data_root_error(cfg.data_root)
    return cfg


# ----------------------------------------------------------------------------- train pretrain

def run_pretrain_cmd(args) -> int:
    """`train pretrain`. Under torchrun the process group is set up first, so the ranks agree on every refusal of
    their input (`loop.refusals_agreed`): one rank may refuse alone (its node lacks the pairs folder or holds
    another copy of it, its view of the run folder), and then every rank stops at once with that rank's one line,
    printed by rank 0, and no folder is left behind. A rank refusing alone before the group existed exited while the
    others waited for it in its set-up until the launcher killed them (SIGKILL: rank 0's half-made folder stayed);
    one refusing after it left the others to die at their next collective ('Connection closed by peer', a line
    each)."""
    from sqtool.core.runs import discard_empty_runs, run_dirs_made
    from sqtool.train import loop
    from sqtool.train.pretrain import PretrainConfig, launch_facts, run_pretrain

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    d = loop.Dist()
    if world > 1:
        try:                                          # the device the run will ask for, when the line names one
            hint = loop.pick_device(args.device or "auto", int(os.environ.get("LOCAL_RANK", "0"))).type
        except SqtoolError:                           # refused below, agreed
            hint = "cpu"
        d = loop.setup_distributed(hint, _typed_timeout(args))
    made = run_dirs_made()

    def discard() -> None:                            # rank 0's folder, made and left holding only config.yaml
        discard_empty_runs(since=made)
    try:
        with loop.refusals_agreed(d, cleanup=discard):
            if args.resume:
                run_dir, cfg, ck = _resume_pretrain(args, rank, world)
            else:
                cfg = resolve_config(PretrainConfig, args, run_keys=("out", "force"))
                _refuse_synthetic_pairs_flag(args, cfg)
                if args.out and rank == 0:                # rank 0 makes it (the others write into it)
                    check_out_dir("train/pretrain", args.out, args.force)   # before the pairs are opened
                _precheck_pretrain(cfg)
                if world > 1 and not args.out:
                    raise SqtoolError("under torchrun give --out DIR: every rank must use the same run directory")
                loop.pick_device(cfg.device, d.local_rank)   # a node without the device asked for: agreed
                run_dir = Path(args.out) if args.out else None
            facts = launch_facts(cfg, ck if args.resume else None) if d.enabled else {}
        if line := loop.disagreement(d, facts):           # one rank (one node) started with another command
            loop.stop_together(d, line, cleanup=discard)
        if args.resume:
            if ck is None:                                    # finished already: nothing rewritten
                return 0
            if rank == 0:
                save_config(run_dir, cfg, resumed=True, world_size=world)  # config.yaml says what this part runs with
            m = run_pretrain(cfg, run_dir, resume=True, resume_ck=ck, refusal_cleanup=discard)   # last.pt read once
        else:
            if cfg.pairs == "synthetic" and rank == 0:
                print(f"sqtool: note: pretraining {cfg.model} on {cfg.synthetic_pairs} synthetic pairs (a smoke run); "
                      f"give --pairs DIR from `sqtool data pairs` for real data (paper scale: see --help)",
                      file=sys.stderr)
            with loop.refusals_agreed(d, cleanup=discard):    # (a disk full on rank 0 alone: agreed too)
                if rank == 0:
                    run_dir = make_run_dir("train/pretrain", cfg.model, args.out, args.force)
                    (run_dir / "last.pt").unlink(missing_ok=True)    # a --force'd folder's: stopped before its first
                    save_config(run_dir, cfg, world_size=world)      # checkpoint, this run's --resume continued that
            m = run_pretrain(cfg, run_dir, refusal_cleanup=discard)
    finally:
        import torch.distributed as dist
        if d.enabled and dist.is_initialized():       # run_pretrain's own end destroys it; a refusal above: here
            loop.cleanup_distributed(d)
    if rank == 0:
        _print_pretrain(cfg, run_dir, m)
    return 0


def _typed_timeout(args) -> float:
    """--ddp-timeout as typed, for the process group set up before the run's config is read (`run_pretrain` gives
    the group the config's); a value it refuses (0, negative, text), until then the default: refused agreed."""
    import math

    from sqtool.train.launch import DDP_TIMEOUT_S
    try:
        t = float(args.ddp_timeout if args.ddp_timeout is not None else DDP_TIMEOUT_S)
    except ValueError:
        return DDP_TIMEOUT_S
    return t if math.isfinite(t) and t > 0 else DDP_TIMEOUT_S


def _resume_pretrain(args, rank: int, world: int):
    """(run_dir, cfg, last.pt) of `train pretrain --resume RUN`: the config saved in its last.pt with the options
    given now over it, refused (before anything is written) when one that may not change does; last.pt None when
    the run has trained all its epochs, or is at the step a --max-steps given now stops it (said in one note,
    nothing written). A run stopped by its own --max-steps resumes to the end of its epochs unless --max-steps is
    given again (a run stopped before reaching it, by a kill or a SIGTERM, still stops there). config.yaml is
    written by the caller, once every rank has agreed."""
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.core.config import check_resume_out
    from sqtool.train.pretrain import resumed_config
    run_dir = Path(args.resume)
    check_resume_out(run_dir, args.out)
    if not (run_dir / "last.pt").is_file():
        raise SqtoolError(f"cannot resume: {run_dir / 'last.pt'} not found (not a train pretrain run folder, or "
                          f"killed before its first checkpoint: start it again)")
    if rank == 0:
        lock_run_dir(run_dir)               # a second resume of the same run is refused
        note_run(run_dir, "train/pretrain")
    ck = load_checkpoint(run_dir / "last.pt", expect_kind="teacher_pretrain")
    st = ck.get("train_state") or {}
    done, step = int(st.get("epoch", 0)), int(st.get("global_step", 0))     # epochs and steps it has trained
    cfg = resumed_config(ck.get("train_cfg", {}), args, run_dir, epochs_done=done)
    check_training_numbers(cfg, "train pretrain")
    saved_stop = int((ck.get("train_cfg") or {}).get("max_steps") or 0)
    if getattr(args, "max_steps", None) is None and cfg.max_steps == saved_stop and 0 < saved_stop <= step:
        cfg = dataclasses.replace(cfg, max_steps=0)     # its --max-steps stop reached: the rest of its epochs
    if done >= cfg.epochs and (run_dir / "model.pt").is_file():      # a finished run: model.pt stays as it is
        if rank == 0:
            print(f"sqtool: note: {run_dir} has trained all its {done} epochs; nothing to resume (give --epochs "
                  f"N above {done} to train further)", file=sys.stderr)
            print(pretrain_next(cfg, run_dir, _finished_metrics(run_dir)))
        return run_dir, cfg, None
    if 0 < cfg.max_steps <= step and _finished_metrics(run_dir).get("global_step") == step \
            and (run_dir / "model.pt").is_file():                     # stopped there already: model.pt is that step's
        if rank == 0:
            rest = as_launched(saved_yaml(run_dir), shell_command("train", "pretrain", "--resume", run_dir))
            print(f"sqtool: note: {run_dir} is at global step {step}, --max-steps {cfg.max_steps} reached; nothing to "
                  f"resume (continue with: {rest}; or give --max-steps N above {step})", file=sys.stderr)
        return run_dir, cfg, None
    return run_dir, cfg, ck


def _finished_metrics(run_dir: Path) -> dict:
    """A finished run's metrics.json (what its next: line reads), {} when unreadable: the note stays a note."""
    from sqtool.core.io import read_json
    try:
        return read_json(run_dir / "metrics.json")
    except (OSError, ValueError):
        return {}


def _print_pretrain(cfg, run_dir: Path, m: dict) -> None:
    """The result summary (stdout) of a pretraining run, fresh or resumed, and the next command."""
    syn = m.get("synthetic_pairs")
    print(f"pairs: {cfg.pair_mode} ({'two augmented views of each good window' if cfg.pair_mode == 'augment' else 'as mined'}); "
          f"corpus: {m.get('real_pairs')} real pairs, {syn} with a synthetic partner")
    loss = "n/a (no step trained)" if m.get("first_loss") is None else \
        f"{m['first_loss']:.4f} -> {m['final_loss']:.4f} (first and last epoch's mean)"
    pace = f"; {m['steady_pairs_per_s']:,.0f} pairs/s ({m.get('device')}, {m.get('layout')})" \
        if m.get("steady_pairs_per_s") else ""           # after the warm-up steps: what a longer run will keep
    print(f"pretrained {cfg.model} ({m.get('status')}, {m.get('epochs_done')} of {cfg.epochs} epochs): loss {loss}, "
          f"{_val_text(cfg, m)}{pace} -> {run_dir}/model.pt")
    if m.get("status") != "done":                     # one next: line, the resume; model.pt is usable already
        resume = as_launched(saved_yaml(run_dir), shell_command("train", "pretrain", "--resume", run_dir))
        print(f"next: {resume}   (train the remaining steps; "
              "its model.pt can already be fine-tuned)")
    else:
        print(pretrain_next(cfg, run_dir, m))


def _val_text(cfg, m: dict) -> str:
    """'val loss L, val z std S (healthy ~H)', or why there is none: no validation pairs, or a run stopped
    (--max-steps) before its first validation, which runs at epoch ends unless --val-every N."""
    n_val = m.get("val_pairs") or 0
    if n_val == 0:
        return "val n/a (no validation pairs: --val-fraction 0)"
    if m.get("val_loss") is None:
        when = f"its first validation (every {cfg.val_every} steps)" if cfg.val_every else \
            "the first epoch's end, where validation runs (--val-every N: every N steps)"
        return f"val not measured: the run stopped before {when}; {n_val} validation pairs"
    z = "n/a (validation set < 2 pairs)" if m.get("val_z_std") is None else round(m["val_z_std"], 4)
    return f"val loss {round(m['val_loss'], 4)}, val z std {z} (healthy ~{m['z_std_healthy']:.3f})"


def pretrain_next(cfg, run_dir, m: dict | None = None) -> str:
    """`next: sqtool train finetune ...` for a pretraining run: its folder as --model (a spectral encoder is
    fine-tuned on heart rate as its own architecture), and --data = what its pairs were mined from, when
    the pairs' run folder says so. A run whose metrics `m` say SimSiam collapsed is offered more steps first
    (its resume to 4x the epochs: too few steps is the first cause, `collapse.collapse_warning`), not a
    fine-tune that would start from no useful features."""
    if m and m.get("collapsed"):
        more = as_launched(saved_yaml(run_dir), shell_command("train", "pretrain", "--resume", run_dir,
                                                              "--epochs", 4 * max(int(cfg.epochs), 1)))
        return f"next: {more}   (SimSiam collapsed: train further first; the WARNING above names the other fixes)"
    data = _labelled_file(_pairs_data(cfg.pairs), cfg.model)
    return "next: " + shell_command("train", "finetune", "--task", _task_of(data, cfg.model), "--model", run_dir,
                                    *(["--data", data] if data else []))


def _labelled_file(data: str | None, model: str) -> str | None:
    """`data` as a fine-tune reads it: a data root of your own dataset folders (pairs mined from all of them) is
    no fine-tune's --data (the time-domain tasks look for their built-in dataset there: 'task hr needs the troika
    dataset'), so its first dataset.yaml that declares a task's label, in the folders' order; `data` itself
    otherwise (a spectral encoder's heart-rate fine-tune reads a root's built-in folders)."""
    from sqtool.data.dataset_file import TASK_LABELS, dataset_folders, is_data_root, load_dataset_file
    if not data or _is_spectral(model) or not is_data_root(Path(data)):
        return data
    for d in dataset_folders(Path(data)):
        try:
            ds = load_dataset_file(d / "dataset.yaml")
        except SqtoolError:
            continue
        if any(lab in ds.labels for lab in TASK_LABELS.values()) or ds.custom_labels:
            return str(d / "dataset.yaml")
    return data


def _task_of(data: str | None, model: str) -> str:
    """The task to fine-tune a pretrained encoder on: heart rate for a spectral encoder or data of unknown labels,
    else the first task whose label the dataset file declares, else its first custom label (an rr-only corpus is
    not offered --task hr, nor a file of spo2 and hr_monitor labels)."""
    from sqtool.data.dataset_file import TASK_LABELS
    from sqtool.data.dataset_tasks import dataset_of
    if not data or _is_spectral(model):
        return "hr"
    try:
        ds = dataset_of(data)
    except SqtoolError:
        return "hr"
    if ds is None:
        return "hr"
    return next((t for t, lab in TASK_LABELS.items() if lab in ds.labels), next(iter(ds.custom_labels), "hr"))


def _pairs_data(pairs: str) -> str | None:
    """The --data a pair folder was mined from (its config.yaml: resolved, else as typed), None if unknown."""
    if not pairs or pairs == "synthetic":
        return None
    saved = saved_yaml(pairs)
    for section in (saved.get("resolved") or {}, saved.get("config") or {}):
        if not isinstance(section, dict):
            continue
        inputs = section.get("input") or []
        value = inputs[0] if isinstance(inputs, list) and len(inputs) == 1 else section.get("data_root")
        if isinstance(value, str) and value:
            return absolute_path(value)
    return None


# ----------------------------------------------------------------------------- train finetune

# what each fine-tune's printed 95 % CIs are (finetune.py / finetune_front.py: core.metrics.bootstrap_ci for the
# pooled metric, t_interval for the mean of subjects; finetune_hr.py: mae_ci over the subjects' MAEs, no bootstrap)
FINETUNE_CI_TEXT = ("95 % CIs: time-domain and front-end models (rr_spec, af_beats): the pooled metric's from a "
                    "bootstrap of subjects (--bootstrap), the mean of subjects' a t-interval over them; spectral hr "
                    "(spec_* models): the mean of subjects' decoded MAE, a t-interval over the subjects clipped at 0 "
                    "(no bootstrap).")


def run_finetune_cmd(args) -> int:
    from sqtool.train.finetune import FinetuneConfig, run_finetune

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:      # each rank would start the same run: "in use" on all but one
        raise SqtoolError("train finetune runs in one process (its folds are small; torchrun is for train pretrain): "
                          "run it without torchrun")
    if getattr(args, "resume", None):
        return _resume_finetune(args)
    cfg = resolve_config(FinetuneConfig, args, run_keys=("out", "force"))
    if args.out:
        check_out_dir("train/finetune", args.out, args.force)   # before the --init checkpoint and the data are read
    cfg, init_ck = _precheck_finetune(cfg)          # the --init checkpoint, read once
    if _is_spectral(cfg.model):
        run_dir = make_run_dir("train/finetune", f"hr-{cfg.model}", args.out, args.force)
        save_config(run_dir, cfg)
        return _finetune_hr(cfg, run_dir, init_ck=init_ck)
    if _front_module(cfg.model):
        run_dir = make_run_dir("train/finetune", f"{cfg.task}-{cfg.model}", args.out, args.force)
        save_config(run_dir, cfg)
        return _finetune_front(cfg, run_dir)
    run_dir = make_run_dir("train/finetune", f"{cfg.task}-{'pretrained' if cfg.init != 'none' else 'scratch'}",
                           args.out, args.force)
    save_config(run_dir, cfg)
    m = run_finetune(cfg, run_dir, init_ck=init_ck, prepared=True)
    _print_finetune(cfg, run_dir, m)
    return 0


def _print_finetune(cfg, run_dir: Path, m: dict) -> None:
    """The result summary (stdout) of a time-domain fine-tune, fresh or resumed, and the next command."""
    pm = m["primary_metric"]
    lo, hi = m["ci95"].get(pm, [float("nan")] * 2)
    outs = _outputs(m)                                      # bp: the headline MAE is the mean of SBP and DBP
    unit = (m.get("units") or [None])[0]                    # a custom label's unit (built-in tasks': metric_text's)
    each = "".join(f"; {o.upper()} {metric_text(cfg.task, pm, m['metrics'][pm + '_' + o])} [95 % CI "
                   + ", ".join(f"{v:.3g}" for v in m["ci95"].get(f"{pm}_{o}", [float("nan")] * 2)) + "]"
                   for o in outs)
    print(f"{cfg.task} ({m['folds']}, {m['subjects']} subjects, {m['windows']} windows): {_mean_of(outs)}"
          f"{metric_text(cfg.task, pm, m[pm], unit)} [95 % CI {lo:.3g}, {hi:.3g}]{each}{_resumed_text(m)} -> {run_dir}")
    if m.get("per_subject_mean"):
        print(_per_subject_line(cfg.task, m["per_subject_mean"], outs, run_dir, unit))
    print(heldout_line(m["heldout_subjects"], m["heldout_rule"], seen=_pretrained_on(run_dir, m)))
    print(quantize_next(cfg, run_dir))
    from sqtool.models import front_model
    better = front_model(cfg.task)                  # the task's model over a fixed front end, which has skill
    if better and (m.get("flag") or m.get("classic_flag")):
        print(f"hint: --model {better} is sqtool's {cfg.task} model over a fixed front end (README, 'Skill, or say "
              f"so'): sqtool train finetune --task {cfg.task} --model {better}")
    _print_skill(cfg.task, m)


def _per_subject_line(task: str, ps: dict, outs: list[str], run_dir: Path, unit: str | None = None) -> str:
    """'per subject: mean of 5 subjects' MAE 2.80 breaths/min [95 % CI 2.1, 3.5] (rows: RUN/per_subject.csv)';
    classification adds the subjects left out for holding one class only (their AUROC is undefined)."""
    metric, ci = ps["metric"], ps.get("ci95")
    vals = [f"{o.upper()} {ps[f'{metric}_{o}']:.3g}" for o in outs if ps.get(f"{metric}_{o}") is not None]
    each = f" (mean of {' and '.join(vals)})" if vals else ""
    one = ps.get("one_class") or []
    left = (f"; {len(one)} subject{'s' if len(one) > 1 else ''} with one class only, no {metric.upper()} "
            f"({', '.join(one[:5])}{', ...' if len(one) > 5 else ''})") if one else ""
    rows = f" (rows: {Path(run_dir) / 'per_subject.csv'})"
    if ps[metric] is None:
        return f"per subject: no {metric.upper()}, every subject's windows hold one class only{rows}"
    n = ps["subjects"]
    interval = f"[95 % CI {ci[0]:.3g}, {ci[1]:.3g}]" if ci else "(no CI: one subject)"
    whose = f"mean of {n} subjects'" if n > 1 else "one subject's"
    return f"per subject: {whose} {metric_text(task, metric, ps[metric], unit)} {interval}{each}{left}{rows}"


def _outputs(m: dict) -> list[str]:
    """The outputs of a regression fine-tune with more than one (bp: sbp, dbp), whose pooled 'mae' is the mean
    of the per-output MAEs (metrics.json's mae_<output>); [] for one output or a classification."""
    outs = [k[len("mae_"):] for k in (m.get("metrics") or {}) if k.startswith("mae_")]
    return outs if len(outs) > 1 else []


def _mean_of(outs: list[str]) -> str:
    return f"mean of {' and '.join(o.upper() for o in outs)} " if outs else ""


def _finetune_next(cfg, run_dir: Path) -> str:
    """A fine-tune's next line: export a front-end model (rr_spec, af_beats: shipped as trained), quantize any
    other (`quantize_next`)."""
    if not _front_module(cfg.model) or not (Path(run_dir) / "model.pt").is_file():
        return quantize_next(cfg, run_dir)
    from sqtool.models import shipped_as
    return "next: " + shell_command("export", "--model", run_dir, "--target", shipped_as(cfg.model).targets)


def quantize_next(cfg, run_dir: Path) -> str:
    """Fine-tune's next line (time-domain and spectral alike): quantize this run. It names no --student:
    quantize's default is the registry student that fits the teacher (compress.distill.default_student, e.g.
    cnn1d_student_s16 for a 10 s window at 40 Hz, which cnn1d_student_s's stride 32 does not divide), and its
    config.yaml's resolved: says which; quantize reads the teacher's own data by default)."""
    if not (Path(run_dir) / "model.pt").is_file():                 # --final-fit false: no model to quantize
        return "next: sqtool train finetune ... --final-fit true   (this run kept the folds' predictions only)"
    return "next: " + shell_command("quantize", "--model", run_dir, *(["--task", cfg.task] if cfg.task != "hr" else []))


def _pretrained_on(run_dir: Path, m: dict) -> list[str] | None:
    """The held-out subjects (m["heldout_subjects"]) whose unlabelled PPG was in the --init encoder's pretraining
    pairs (`core.runs.pretraining_of`; a bare id of a time-domain run matched within its m["dataset"]); None when
    that chain cannot be read (nothing is claimed either way)."""
    from sqtool.core.runs import pretraining_of
    pre = pretraining_of(run_dir)
    if pre is None:
        return None
    subs, ds = set(pre["subjects"]), m.get("dataset")
    return [str(h) for h in m.get("heldout_subjects") or [] if str(h) in subs or ":" not in str(h) and any(
        k.partition(":")[2] == str(h) and (not ds or k.partition(":")[0] == ds) for k in subs)]


def heldout_line(held: list[str], how: str, spectral: bool = False, seen: list[str] | None = []) -> str:
    """The fine-tune's line naming the subjects it held out (`data.heldout`) and what that means (for a `spectral`
    heart-rate teacher that held none out, also the final fit quantize can make from it). `seen`: those of them
    whose unlabelled PPG the --init encoder's self-supervised pretraining had (`_pretrained_on`; None: not known):
    held out of supervised training only, never 'never trained on'."""
    if not held and spectral:
        return (f"held out: none ({how}): every subject is in the teacher; a final fit for shipping: `quantize "
                "--heldout-fraction 0 --estimate-from RUN` trains the student on every subject too (RUN: the quantize "
                "run of this recipe that held subjects out); quantize without it evaluates on subjects this teacher "
                "trained on")
    if not held:
        return (f"held out: none ({how}): every subject is in the teacher, so quantize's held-out figures are on "
                "subjects the teacher trained on")
    if seen:
        return (f"held out of every fold and of model.pt ({how}): {', '.join(held)}; quantize evaluates on them, "
                f"held out of supervised training only: the --init encoder's self-supervised pretraining had the "
                f"unlabelled PPG of {', '.join(seen)} (mine pairs without them: `data pairs` leaves out a dataset "
                "file's split.test; --exclude-subjects names others)")
    return (f"held out of every fold and of model.pt ({how}): {', '.join(held)}; quantize evaluates on them, "
            + ("never trained on" if seen is not None else "never fine-tuned on (whether the --init encoder's "
               "pretraining pairs held them is not recorded)"))


def _resumed_text(m: dict) -> str:
    n = len(m.get("resumed_folds") or [])
    return f" ({n} of {m['n_folds']} folds reused from the interrupted run)" if n else ""


def _print_skill(task: str, m: dict, pooled: bool = False) -> None:
    """The trivial / classic rows and, last, the skill verdict (flagged NO SKILL when it has none, and WORSE THAN THE
    CLASSIC METHOD when the model loses to it: `core.metrics.classic_flag`, in both lines). The skill
    test scores pooled windows: `pooled` says so when the headline above reports another average (the spectral
    fine-tune's mean of subjects); the time-domain headline is the same pooled metric."""
    from sqtool.core.metrics import classic_text, skill_line, skill_unit
    sk = m["skill"]
    pm = sk["skill"]["metric"]
    unit = skill_unit(pm, m.get("units"))              # MAE's unit (the outputs'), "" for AUROC / F1
    u = f" {unit}" if unit else ""
    outs = [o for o in _outputs(m) if f"{pm}_{o}" in sk["trivial"]]      # bp: SBP and DBP beside their mean
    label = _mean_of(outs) + (f"pooled {pm}" if pooled else pm)
    c = sk["classic"]
    worse = f", the model is {sk['classic_flag']}" if sk.get("classic_flag") else ""
    triv = {o.upper(): sk["trivial"][f"{pm}_{o}"] for o in outs}
    model = {o.upper(): m["metrics"][f"{pm}_{o}"] for o in outs}
    triv_each = " (" + ", ".join(f"{o} {v:.3f}{u}" for o, v in triv.items()) + ")" if outs else ""
    print(f"{task}: trivial {label} {sk['trivial'][pm]:.3f}{u}{triv_each}; classic "
          + (f"{label} {c['metrics'][pm]:.3f}{u} ({c['name']}{worse})" if c.get("name") else f"n/a ({c['why']})")
          + f"; prediction std {', '.join(f'{v:.3g}' for v in sk['spread']['pred_std'])}")
    each = ("; per output, model vs trivial: " + ", ".join(f"{o} {pm} {model[o]:.3f}{u} vs {triv[o]:.3f}{u}"
                                                          for o in triv) if outs else "")
    print(skill_line(task, sk["skill"], label, unit) + each + classic_text(sk.get("vs_classic"), label,
                                                                      sk.get("classic_flag"), unit))


def _resume_finetune(args) -> int:
    """`train finetune --resume RUN`: the run's saved config (the options that do not change a fold's
    predictions may be given now; any other change is refused naming it), completed folds reused."""
    from sqtool.core.runs import saved_config
    from sqtool.train.finetune import _NOT_IN_KEY, FinetuneConfig, run_finetune
    run_dir = Path(args.resume)
    base = saved_config(FinetuneConfig, run_dir, "finetune")
    cfg, changed = resume_config(FinetuneConfig, base, args, run_dir=run_dir, may_change=_NOT_IN_KEY,
                                 why="its finished folds were trained with the saved one")
    if not changed and (run_dir / "metrics.json").is_file():      # finished (written last): nothing to redo
        print(f"sqtool: note: {run_dir} has finished all its folds; nothing to resume (its results: "
              f"{run_dir / 'metrics.json'}; --bootstrap, --final-fit or --calibrate-on given now re-report it)",
              file=sys.stderr)
        print(_finetune_next(cfg, run_dir))
        return 0
    cfg, init_ck = _precheck_finetune(cfg)
    lock_run_dir(run_dir)                       # a second resume of the same run is refused
    note_run(run_dir, "train/finetune")
    save_config(run_dir, cfg, resumed=True)
    if _is_spectral(cfg.model):
        return _finetune_hr(cfg, run_dir, resume=True)
    if _front_module(cfg.model):
        return _finetune_front(cfg, run_dir, resume=True)
    m = run_finetune(cfg, run_dir, resume=True, init_ck=init_ck, prepared=True)
    _print_finetune(cfg, run_dir, m)
    return 0


def _is_spectral(model: str) -> bool:
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import SPECTRAL_FAMILY
    return bool(model) and get_model_cfg(model).family == SPECTRAL_FAMILY


def _front_module(model: str):
    """The fine-tune module of a model whose input a fixed front end computes (registered `shipped`: rr_spec,
    af_beats; `train.finetune_<its task>` over `train.finetune_front`), None for any other model."""
    import importlib

    from sqtool.models import get_model_cfg, shipped_as
    if not model or _is_path(model) or not shipped_as(model):
        return None
    return importlib.import_module(f"sqtool.train.finetune_{get_model_cfg(model).task}")


def _finite(v) -> bool:
    import math
    return isinstance(v, (int, float)) and math.isfinite(v)


def _is_path(model: str) -> bool:
    from sqtool.train.finetune import is_checkpoint_path
    return is_checkpoint_path(model)


def _finetune_front(cfg, run_dir: Path, resume: bool = False) -> int:
    """A front-end model's fine-tune (rr_spec, af_beats; fresh or resumed) into `run_dir`: the summary lines of a
    time-domain fine-tune (pooled metric, per subject, skill), the held-out subjects scored by the final model, and
    the next command: export (the model ships as it is, float; no student to distil into)."""
    task = cfg.task
    m = _front_module(cfg.model).run(cfg, run_dir, log=item, resume=resume, prepared=True)
    pm = m["primary_metric"]
    lo, hi = m["ci95"].get(pm, [float("nan")] * 2)
    print(f"{task} ({m['folds']}, {m['subjects']} subjects, {m['windows']} windows): "
          f"{metric_text(task, pm, m[pm])} [95 % CI {lo:.3g}, {hi:.3g}]{_resumed_text(m)} -> {run_dir}")
    if m.get("per_subject_mean"):
        print(_per_subject_line(task, m["per_subject_mean"], [], run_dir))
    h = m.get("heldout")
    if h:
        ci = h.get("ci95") or [float("nan")] * 2
        interval = (f"[95 % CI {ci[0]:.3g}, {ci[1]:.3g}]" if len(h["subjects"]) > 1 and _finite(ci[0])
                    and _finite(ci[1]) else f"({h['ci_note']})" if h.get("ci_note")
                    else "(no CI: one subject)" if len(h["subjects"]) == 1 else "(no CI)")
        print(f"held out of every fold and of model.pt ({m['heldout_rule']}): {', '.join(h['subjects'])}; the final "
              f"model on them: {metric_text(task, h['metric'], h[h['metric']])} {interval} "
              f"over {h['windows']} windows"
              + (f", AUROC {h['metrics']['auroc']:.3f}" if _finite((h.get("metrics") or {}).get("auroc")) else ""))
        if h.get("one_class"):                       # F1 / accuracy of one class: no figure of skill, said so
            print(f"WARNING: {h['one_class']}")
    else:
        print(f"held out: none ({m['heldout_rule']}): model.pt trained on every subject; the subject folds above "
              "are its estimate")
    print(_finetune_next(cfg, run_dir))
    _print_skill(task, m)
    return 0


def _finetune_hr(cfg, run_dir: Path, resume: bool = False, init_ck: dict | None = None) -> int:
    """A spectral heart-rate fine-tune (fresh or resumed) into `run_dir`, its summary and next command; cfg and
    init_ck from _precheck_finetune (prepared there)."""
    from sqtool.train.finetune_hr import run_finetune_hr
    m = run_finetune_hr(cfg, run_dir, log=item, resume=resume, init_ck=init_ck, prepared=True)
    lo, hi = m["ci95"]["mae_bpm"]
    print(f"hr ({m['folds']}, {m['subjects']} subjects, {m['windows']} windows): decoded MAE {m['mae_bpm']:.2f} BPM "
          f"(mean of subjects, 95 % CI {lo:.2f}-{hi:.2f}; per-window argmax {m['mae_raw_bpm']:.2f}){_resumed_text(m)} "
          f"-> {run_dir}")
    per = m.get("per_dataset") or {}
    for d, v in per.items() if len(per) > 1 else ():       # the headline over several datasets: each one's own
        ci = f", 95 % CI {v['ci95'][0]:.2f}-{v['ci95'][1]:.2f}" if v.get("ci95") else ""
        print(f"  {d} ({v['subjects']} subject{'s' if v['subjects'] > 1 else ''}): decoded MAE {v['mae_bpm']:.2f} BPM "
              f"(mean of subjects{ci}; per-window argmax {v['mae_raw_bpm']:.2f})")
    print(heldout_line(m["heldout_subjects"], m["heldout_rule"], spectral=True, seen=_pretrained_on(run_dir, m)))
    print(quantize_next(cfg, run_dir))       # its student: the one that reads the teacher's channels
    _print_skill("hr", m, pooled=True)                # its skill test pools windows; the line above averages subjects
    return 0
