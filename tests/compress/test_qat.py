"""QAT: BN folding + calibration keep the int8 twin next to the float student; the calibration set
is checked; the quantized student exports to QCDQ ONNX and runs there with real integer kernels."""
import numpy as np
import pytest
import torch

from sqtool.compress import distill as D
from sqtool.compress import qat as Q
from sqtool.core import SqtoolError
from sqtool.models import create_model, get_model_cfg
from sqtool.models.quant import PRESET_NAMES

from compress_fixtures import HR_TEACHER, TINY_STUDENT

# int8 vs float agreement, in BPM, on a tiny trained student (HR std 30 BPM; output step ~0.2 BPM).
# Percentile calibration clips the rare activation outlier (by design: it buys resolution for the
# rest), so the bound is on the mean and the 99th percentile of windows, not the single worst one.
CALIBRATED_MEAN_BPM, CALIBRATED_P99_BPM = 0.5, 2.0
QAT_MEAN_BPM = 1.0


@pytest.fixture(scope="module")
def trained(hr_task):
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER)
    scfg = D.student_cfg_from_teacher(tcfg, "cnn1d_student_xs").replace(arch={"convs": TINY_STUDENT})
    spec = D.output_spec(scfg)
    y = D.normalise_targets(hr_task.y, spec)
    torch.manual_seed(0)
    s = create_model(scfg)
    q_t = np.where(np.arange(len(y)) % 4 == 0, 0.1, 0.9).astype(np.float32)
    D.fit(s, hr_task.x, y, spec, D.FitCfg(epochs=8, batch_size=32), quality_target=q_t)
    return s, spec, y, q_t


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_int8_twin_agrees_with_float_student(trained, hr_task, preset):
    s, spec, y, q_t = trained
    q = Q.quant_twin(s, preset)
    assert q.cfg.quant == preset and q.cfg.arch == s.cfg.arch
    Q.calibrate(q, hr_task.x, 32)
    f_out, q_out = D.predict(s, hr_task.x), D.predict(q, hr_task.x)
    diff = np.abs(D.denormalise(q_out, spec) - D.denormalise(f_out, spec))[:, 0]     # BPM
    p99 = np.percentile(diff, 99)
    assert diff.mean() < CALIBRATED_MEAN_BPM and p99 < CALIBRATED_P99_BPM, (diff.mean(), p99)
    # QAT at a low lr keeps it there and learns the scales (they stay positive and finite)
    D.fit(q, hr_task.x, y, spec, D.FitCfg(epochs=2, lr=3e-4, batch_size=32), quality_target=q_t)
    q_out2 = D.predict(q, hr_task.x)
    diff2 = np.abs(D.denormalise(q_out2, spec) - D.denormalise(f_out, spec))[:, 0]
    assert diff2.mean() < QAT_MEAN_BPM, diff2.mean()
    scales = Q.activation_scales(q)
    assert len(scales) == len(s.blocks) + 3 and all(np.isfinite(v) and v > 0 for v in scales.values())


def test_the_int8_output_reaches_the_labels_and_a_confident_logit_and_qat_keeps_it(trained, hr_task):
    """Calibration on a float student's outputs (which regress toward the mean) leaves the one shared
    output scale too narrow to say the extreme labels or a confident quality logit; widened, the int8
    twin says them, and QAT does not learn the range back down."""
    s, spec, y, q_t = trained
    q = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q, hr_task.x, 32)
    calibrated = Q.activation_scales(q)["fc"]
    want = Q.LABEL_HEADROOM * float(np.quantile(np.abs(y[:, 0]), Q.LABEL_QUANTILE, method="lower"))
    assert calibrated < max(want, Q.LOGIT_REACH)          # what this test is about: calibration alone falls short
    r = Q.widen_output_range(q, spec, y)
    assert r["calibrated_threshold"] == pytest.approx(calibrated)
    assert 127 * r["scale"] >= max(want, Q.LOGIT_REACH) - 1e-6
    assert r["step"] == {spec.names[0]: pytest.approx(r["scale"] * float(spec.std[0]))}      # in BPM
    # a window whose quality logit should be +3.9 (p 0.98) and whose HR should be the top label: said, not clipped
    top = float(y[np.argmax(np.abs(y[:, 0])), 0])
    with torch.no_grad():                                 # features 0: the output is the bias (int32, fine scale)
        q.fc.weight.fill_(0.01)
        q.fc.bias.copy_(torch.tensor([top, 3.9]))
        out = q.fc(q.pool_q(torch.zeros(1, s.out_features))).value[0].numpy()
    assert out[0] == pytest.approx(top, abs=r["scale"]) and out[1] == pytest.approx(3.9, abs=r["scale"])
    # never narrowed: a calibrated range wider than needed is kept
    q2 = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q2, hr_task.x * 50, 32)
    wide = Q.activation_scales(q2)["fc"]
    assert Q.widen_output_range(q2, spec, y * 0.01)["threshold"] == pytest.approx(max(wide, 4.0 * 128 / 127))
    # one absurd label (40 standard deviations out) does not set the range: every window's step would be 0.3 std
    odd = y.copy()
    odd[0, 0] = 40.0
    q4 = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q4, hr_task.x, 32)
    assert Q.widen_output_range(q4, spec, odd)["threshold"] == pytest.approx(r["threshold"], rel=0.05)
    # QAT leaves it where it was put
    q3 = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q3, hr_task.x, 32)
    r3 = Q.widen_output_range(q3, spec, y)
    D.fit(q3, hr_task.x, y, spec, D.FitCfg(epochs=1, lr=3e-3, batch_size=32), quality_target=q_t)
    assert Q.activation_scales(q3)["fc"] == pytest.approx(r3["threshold"], rel=1e-6)


def test_int8_state_dict_reloads_strictly_and_reproduces(trained, hr_task):
    s, *_ = trained
    q = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q, hr_task.x, 32)
    q2 = create_model(q.cfg)
    q2.load_state_dict(q.state_dict(), strict=True)
    assert np.array_equal(D.predict(q, hr_task.x[:16]), D.predict(q2, hr_task.x[:16]))


def test_quantized_student_exports_to_qcdq_onnx(trained, hr_task, tmp_path):
    """The export stage's route must work on what this stage produces: QCDQ ONNX with real int8
    convolutions (QLinearConv after onnxruntime's graph fusion) that reproduces Brevitas's output."""
    import onnx
    import onnxruntime as ort
    from brevitas.export import export_onnx_qcdq

    s, spec, *_ = trained
    q = Q.quant_twin(s, "int8_w_per_channel_a_per_tensor")
    Q.calibrate(q, hr_task.x, 32)
    q.eval()
    x = torch.as_tensor(hr_task.x[:1])
    p = tmp_path / "q.onnx"
    export_onnx_qcdq(q, args=x, export_path=str(p), dynamo=False, opset_version=17)
    ops = {n.op_type for n in onnx.load(str(p)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
    assert "QLinearConv" in {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    name = sess.get_inputs()[0].name
    out_scale = Q.activation_scales(q)["fc"]
    for i in range(8):
        xi = hr_task.x[i:i + 1]
        o_ort = sess.run(None, {name: xi})[0]
        o_bre = D.predict(q, xi)
        assert np.abs(o_ort - o_bre).max() <= out_scale * 1.01 + 1e-6        # within one output LSB


def _cfg():
    tcfg = get_model_cfg("resnet1d_siamq_tiny", **HR_TEACHER)
    return D.student_cfg_from_teacher(tcfg, "cnn1d_student_s")


def test_calibration_set_from_another_rate_is_refused():
    cfg = _cfg()
    x = np.zeros((400, 4, 320), np.float32)
    with pytest.raises(SqtoolError, match="125 Hz; the student runs at 40 Hz"):
        Q.check_calibration_set(x, cfg, 64, fs=125.0)
    with pytest.raises(SqtoolError, match="125 Hz"):                      # 8 s at 125 Hz, rate unknown
        Q.check_calibration_set(np.zeros((400, 4, 1000), np.float32), cfg, 64)
    with pytest.raises(SqtoolError, match="10 s long"):
        Q.check_calibration_set(x, cfg, 64, window_s=10.0)
    with pytest.raises(SqtoolError, match="channels"):
        Q.check_calibration_set(np.zeros((400, 1, 320), np.float32), cfg, 64)
    with pytest.raises(SqtoolError, match="NaN"):
        Q.check_calibration_set(np.full((400, 4, 320), np.nan, np.float32), cfg, 64)


def test_calibration_set_size_checks():
    cfg = _cfg()
    with pytest.raises(SqtoolError, match="fewer than one batch"):
        Q.check_calibration_set(np.zeros((63, 4, 320), np.float32), cfg, 64)
    w = Q.check_calibration_set(np.zeros((64, 4, 320), np.float32), cfg, 64)
    assert len(w) == 1 and "small" in w[0] and "300" in w[0]
    assert Q.check_calibration_set(np.zeros((300, 4, 320), np.float32), cfg, 64, fs=40.0, window_s=8.0) == []
