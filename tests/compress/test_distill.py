"""Distillation: the student learns the teacher's function; the teacher cache is keyed correctly."""
import numpy as np
import pytest
import torch

from sqtool.compress import distill as D
from sqtool.core import SqtoolError
from sqtool.models import create_model, get_model_cfg

from compress_fixtures import HR_TEACHER, TINY_STUDENT


def _student_cfg(quality_head=False):
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER)
    scfg = D.student_cfg_from_teacher(tcfg, "cnn1d_student_xs", quality_head=quality_head)
    return tcfg, scfg.replace(arch={"convs": TINY_STUDENT})


def test_student_inherits_the_teacher_contract():
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER, fs=40.0)
    s = D.student_cfg_from_teacher(tcfg, "cnn1d_student_s")
    assert (s.fs, s.window_s, s.hop_s, s.norm, s.task) == (40.0, 8.0, 2.0, tcfg.norm, "hr")
    assert s.outputs == ("hr_bpm", "quality_logit") and s.units == ("bpm", "logit")
    assert s.target_mean[0] == HR_TEACHER["target_mean"][0] and s.target_std[0] == HR_TEACHER["target_std"][0]
    assert s.channels[0] == "ppg" and "acc_x" in s.channels            # may add channels
    assert D.channel_index(s, tcfg) == [0]
    spec = D.output_spec(s)
    assert spec.regression == [0] and spec.binary == [] and spec.quality == 1


def test_student_must_see_the_teachers_channels():
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER, channels=("ppg2",))
    with pytest.raises(SqtoolError, match="ppg2"):
        D.student_cfg_from_teacher(tcfg, "cnn1d_student_s")
    with pytest.raises(SqtoolError, match="not a student"):
        D.student_cfg_from_teacher(tcfg, "resnet1d_siamq_18")


def test_distillation_reduces_the_student_teacher_gap(hr_task):
    """A teacher that disagrees with the labels window by window (180 - HR): the distilled student
    follows the teacher on held-out subjects, the label-only student does not."""
    _, scfg = _student_cfg()
    spec = D.output_spec(scfg)
    y = D.normalise_targets(hr_task.y, spec)
    teacher = D.normalise_targets(180.0 - hr_task.y, spec)
    tr = hr_task.groups != "syn005"
    te = ~tr
    gap = {}
    for alpha in (0.0, 1.0):
        torch.manual_seed(0)
        s = create_model(scfg)
        D.fit(s, hr_task.x[tr], y[tr], spec, D.FitCfg(epochs=20, alpha=alpha, quality_weight=0, batch_size=32),
              teacher_out=teacher[tr])
        out = D.predict(s, hr_task.x[te])
        gap[alpha] = float(np.abs(out[:, 0] - teacher[te, 0]).mean() * spec.std[0])   # BPM
    assert gap[1.0] < 0.5 * gap[0.0], gap
    assert gap[1.0] < 8.0, gap


def test_feature_distillation_aligns_the_projection(hr_task):
    _, scfg = _student_cfg(quality_head=True)
    spec = D.output_spec(scfg)
    y = D.normalise_targets(hr_task.y, spec)
    rng = np.random.default_rng(0)
    feat = np.tanh(hr_task.x[:, 0, ::10] @ rng.normal(size=(32, 16))).astype(np.float32)   # (N, 16)
    torch.manual_seed(0)
    s = create_model(scfg)
    proj = D.make_projector(s.out_features, feat.shape[1])
    q = np.where(np.arange(len(y)) % 3 == 0, 0.1, 0.9).astype(np.float32)
    h = D.fit(s, hr_task.x, y, spec, D.FitCfg(epochs=6, feature_weight=1.0, batch_size=32),
              teacher_out=y, teacher_feat=feat, quality_target=q, projector=proj)["history"]
    assert h[-1]["feature"] < h[0]["feature"]
    assert h[-1]["quality"] > 0 and h[-1]["distill"] > 0


def test_a_student_fine_tuned_directly_can_teach(hr_task):
    """`train finetune --model cnn1d_student_xs` is a run quantize takes as its teacher: it stopped with
    "AttributeError: 'Student' object has no attribute 'head'". A student's fc is its head: outputs and features."""
    t = create_model("cnn1d_student_xs", **HR_TEACHER, channels=("ppg",)).eval()
    out = D.teacher_outputs(t, "sha-s", hr_task.x[:16], [0])
    assert out["out"].shape == (16, 1) and out["feat"].shape[0] == 16
    assert np.allclose(out["out"], D.predict(t, hr_task.x[:16, :1]), atol=1e-6)


def test_teacher_cache_is_keyed_by_checkpoint_and_data(tmp_path, hr_task):
    t = create_model("resnet1d_siamq_tiny", **HR_TEACHER).eval()
    x = hr_task.x[:40]
    cache = tmp_path / "teacher_cache.npz"
    a = D.teacher_outputs(t, "sha-a", x, [0], cache)
    assert not a["reused"] and cache.is_file()
    assert a["out"].shape == (40, 1) and a["feat"].shape[0] == 40
    b = D.teacher_outputs(t, "sha-a", x, [0], cache)
    assert b["reused"] and np.array_equal(a["out"], b["out"])
    assert not D.teacher_outputs(t, "sha-b", x, [0], cache)["reused"]           # another checkpoint
    assert not D.teacher_outputs(t, "sha-b", x[:39], [0], cache)["reused"]      # other windows
    direct = D.predict(t, x[:39, :1])
    assert np.allclose(D.teacher_outputs(t, "sha-b", x[:39], [0], cache)["out"], direct, atol=1e-6)
    cache.write_bytes(cache.read_bytes()[:cache.stat().st_size // 2])           # torn (a killed copy): recomputed
    assert not D.teacher_outputs(t, "sha-b", x[:39], [0], cache)["reused"]


@pytest.mark.parametrize("foreign", ["npz", "text", "folder"])
def test_a_file_at_the_cache_path_that_is_no_teacher_cache_is_never_overwritten(tmp_path, hr_task, foreign):
    t = create_model("resnet1d_siamq_tiny", **HR_TEACHER).eval()
    path = tmp_path / "mine.npz"
    if foreign == "npz":
        np.savez(path, x=np.arange(3))                                            # someone's data
    elif foreign == "text":
        path.write_text("subject,hr\n1,60\n")
    else:
        path.mkdir()
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(SqtoolError, match="is not a teacher cache"):
        D.teacher_outputs(t, "sha-a", hr_task.x[:8], [0], path)
    assert (path.read_bytes() if path.is_file() else None) == before


def test_normalise_roundtrip():
    _, scfg = _student_cfg(quality_head=True)
    spec = D.output_spec(scfg)
    y = np.array([[60.0], [150.0]], np.float32)
    n = D.normalise_targets(y, spec)
    out = np.concatenate([n, np.zeros((2, 1), np.float32)], axis=1)          # + quality logit
    assert np.allclose(D.denormalise(out, spec), y)
    with pytest.raises(SqtoolError, match="shape"):
        D.normalise_targets(np.zeros(3, np.float32), spec)


def test_time_stretch_slows_the_rhythm_and_the_rate_label():
    """A 1.5 Hz (90 BPM) sine slowed by r has its spectral peak and its label at 90 r BPM."""
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER)
    spec = D.output_spec(D.student_cfg_from_teacher(tcfg, "cnn1d_student_s"))
    fs, t = 40.0, np.arange(320) / 40.0
    x = torch.as_tensor(np.tile(0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t), (64, 4, 1)).astype(np.float32))
    y = torch.as_tensor(D.normalise_targets(np.full((64, 1), 90.0, np.float32), spec))
    g = torch.Generator().manual_seed(0)
    xs, ys, ts = D.time_stretch(x, y, y.clone(), spec, 0.3, "minmax", g)
    bpm = ys[:, 0].numpy() * spec.std[0] + spec.mean[0]
    assert np.allclose(ts.numpy(), ys.numpy())
    assert bpm.min() >= 90 * 0.7 - 1e-3 and bpm.max() <= 90 + 1e-3 and (bpm < 89).any() and (bpm > 89.99).any()
    for i in range(64):
        spec_i = np.abs(np.fft.rfft(xs[i, 0].numpy() - xs[i, 0].numpy().mean(), n=4096))
        f_peak = np.fft.rfftfreq(4096, 1 / fs)[spec_i.argmax()] * 60
        assert abs(f_peak - bpm[i]) < 2.0, (f_peak, bpm[i])
    assert float(xs.min()) >= 0 and float(xs.max()) <= 1 + 1e-6
