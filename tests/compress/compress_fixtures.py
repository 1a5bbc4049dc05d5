"""Helpers of the compress tests: a tiny synthetic HR task and tiny teacher checkpoints (seconds, 1 thread).

The task is built from `sqtool.data.synthetic` recordings windowed by `sqtool.data.preprocess`, i.e.
the same path `load_task` takes, but small (6 subjects x 120 s, 342 windows) so a whole quantize run
takes seconds.
"""
from __future__ import annotations

import numpy as np
import torch

from sqtool.data.preprocess import make_windows
from sqtool.data.synthetic import synth_corpus
from sqtool.data.tasks import TaskData
from sqtool.models import create_model
from sqtool.core.checkpoint import save_checkpoint

torch.set_num_threads(1)

HR_TEACHER = dict(task="hr", window_s=8.0, hop_s=2.0, outputs=("hr_bpm",), units=("bpm",),
                  target_mean=(90.0,), target_std=(30.0,))
RR_TEACHER = dict(task="rr", window_s=30.0, hop_s=10.0, outputs=("rr_bpm",), units=("breaths/min",),
                  target_mean=(15.0,), target_std=(4.0,), band=(0.05, 8.0), channels=("ppg",))
TINY_STUDENT = [[8, 8, 2], [8, 6, 2], [12, 4, 2], [12, 4, 2]]


def synthetic_hr_task(n_subjects: int = 6, duration_s: float = 120.0, seed: int = 0,
                      channels=("ppg", "acc_x", "acc_y", "acc_z"), fs: float = 40.0) -> TaskData:
    xs, ys, gs, t0s, rids = [], [], [], [], []
    for rec in synth_corpus(n_subjects=n_subjects, duration_s=duration_s, seed=seed, af_fraction=0.0,
                            artifacts=(0.05, 0.2)):
        w = make_windows(rec, channels=channels, fs=fs, window_s=8.0, hop_s=2.0, norm="minmax")
        lab = rec.labels["hr"]
        n = min(len(w), len(lab.values))
        xs.append(w.x[:n])
        ys.append(np.asarray(lab.values[:n], np.float32)[:, None])
        gs += [rec.subject] * n
        t0s.append(w.t0[:n])
        rids += [rec.record_id] * n
    return TaskData(np.concatenate(xs), np.concatenate(ys), np.array(gs), np.concatenate(t0s), np.array(rids),
                    "hr", {"data_root": "synthetic", "channels": list(channels)})


def synthetic_rr_task(n_subjects: int = 6, duration_s: float = 150.0, seed: int = 0) -> TaskData:
    """The rr task's 30 s PPG windows (10 s hop, 0.05-8 Hz) of synthetic subjects (13 windows each), labelled with
    the recording's breathing rate at the window's centre (breaths/min)."""
    xs, ys, gs, t0s, rids = [], [], [], [], []
    for rec in synth_corpus(n_subjects=n_subjects, duration_s=duration_s, seed=seed, af_fraction=0.0):
        w = make_windows(rec, channels=("ppg",), fs=40.0, window_s=30.0, hop_s=10.0, norm="minmax",
                         band=RR_TEACHER["band"])
        lab = rec.labels["rr"]
        centre = np.asarray(lab.times) + lab.window_s / 2
        xs.append(w.x)
        ys.append(np.interp(w.t0 + 15.0, centre, lab.values).astype(np.float32)[:, None])
        gs += [rec.subject] * len(w.x)
        t0s.append(w.t0)
        rids += [rec.record_id] * len(w.x)
    return TaskData(np.concatenate(xs), np.concatenate(ys), np.array(gs), np.concatenate(t0s), np.array(rids),
                    "rr", {"data_root": "synthetic", "channels": ["ppg"], "fs": 40.0, "band": list(RR_TEACHER["band"])})


def make_teacher(path, task_data: TaskData | None = None, steps: int = 60, seed: int = 0,
                 kind: str = "teacher_task", **overrides):
    """A resnet1d_siamq_tiny fine-tuned for `steps` Adam steps on PPG only (or random if no data)."""
    torch.manual_seed(seed)
    kw = {**HR_TEACHER, **overrides}
    t = create_model("resnet1d_siamq_tiny", **kw)
    if task_data is not None and steps:
        x = torch.as_tensor(task_data.x[:, :1])                            # (N, 1, T) PPG
        y = (torch.as_tensor(task_data.y[:, :1]) - kw["target_mean"][0]) / kw["target_std"][0]
        opt = torch.optim.Adam(t.parameters(), 3e-3)
        g = torch.Generator().manual_seed(seed)
        t.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = torch.nn.functional.smooth_l1_loss(t(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    t.eval()
    save_checkpoint(path, kind=kind, model_cfg=t.cfg.to_dict(), state_dict=t.state_dict(),
                    train_cfg={"test": True})
    return path
