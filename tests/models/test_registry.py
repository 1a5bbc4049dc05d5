"""Registry-parametrised tests: every registered model builds, runs forward/backward, keeps its cfg."""
import pytest
import torch

from sqtool.models import create_model, get_model_cfg, list_models, spectral, student
from sqtool.models.student import STUDENT_BUDGETS, student_budget

SMALL = [n for n in list_models() if n not in ("resnet1d_siamq_101", "resnet1d_siamq_152")]
# Every family is one of two kinds: with a Brevitas int8 twin (cfg.quant = a preset; its BN-folding map), or float
# only (cfg.quant not read). A new family fails test_every_family_is_twinned_or_float_only until it is listed.
TWIN_FOLD = {"cnn1d_student": student.fold_bn_state, spectral.SPECTRAL_FAMILY: spectral.fold_bn_state}
FLOAT_ONLY = {"resnet1d": "the time-domain teachers: quantized through a student, never themselves",
              "resp_spec": "rr_spec: a 4 x 73 spectral network shipped float, as it is",
              "beat_trees": "af_beats: a tree ensemble (boosted trees or a forest) over beat features (no gradient, no int8)"}
TWINNED = [n for n in list_models() if get_model_cfg(n).family in TWIN_FOLD]


@pytest.mark.parametrize("name", SMALL)
def test_forward_backward(name):
    m = create_model(name)
    x = torch.rand(2, *m.cfg.input_shape)                  # (B, C, T)
    y = m(x)
    assert y.ndim == 2 and y.shape[0] == 2
    if any(p.requires_grad for p in m.parameters()):       # af_beats' trees: buffers only, fitted by scikit-learn
        y.sum().backward()
    assert m.cfg.name == name


def test_resnet152_parameter_count():
    m = create_model("resnet1d_siamq_152")
    n = sum(p.numel() for p in m.encoder.parameters())
    assert abs(n - 21.6e6) / 21.6e6 < 0.01


def test_every_family_is_twinned_or_float_only():
    assert not set(TWIN_FOLD) & set(FLOAT_ONLY)
    assert {get_model_cfg(n).family for n in list_models()} == set(TWIN_FOLD) | set(FLOAT_ONLY)
    assert {get_model_cfg(n).family for n in TWINNED} == set(TWIN_FOLD)


@pytest.mark.parametrize("name", TWINNED)
def test_student_float_and_int8_twin_agree(name):
    """Every model of a family with an int8 twin (time-domain and spectral students; the spectral family's teacher
    is the same network): the folded float weights fit the twin's tensors, and the two agree."""
    torch.manual_seed(0)
    f = create_model(name).eval()
    q = create_model(name, quant="int8_w_per_channel_a_per_tensor")
    missing, unexpected = q.load_state_dict(TWIN_FOLD[f.cfg.family](f), strict=False)
    assert not unexpected and all(k.endswith("scaling_impl.value") for k in missing), (unexpected, missing)
    q.eval()
    x = torch.rand(4, *f.cfg.input_shape)
    with torch.no_grad():
        q(x)  # first pass initialises the activation scales from statistics
        yf, yq = f(x), q(x)
    assert torch.allclose(yf, yq, atol=0.05 * (yf.abs().max().item() + 1e-3) + 0.02)


@pytest.mark.parametrize("name,budget", STUDENT_BUDGETS.items())
def test_student_budget(name, budget):
    b = student_budget(get_model_cfg(name))
    assert b["int8_weights"] <= budget["int8_weights"]
    assert b["macs"] <= budget["macs"]


def test_a_family_in_a_new_module_is_found_and_a_new_student_fits(tmp_path, monkeypatch):
    """The registry imports every module of sqtool.models: a module it was never told about registers its models,
    and a time-domain student registered there is offered by students_fitting (built from the registry)."""
    import sys

    import sqtool.models as pkg
    import sqtool.models.registry as R
    from sqtool.models.student import students_fitting
    name = "_registry_probe_family"
    (tmp_path / f"{name}.py").write_text(
        "from sqtool.models.registry import ModelCfg, register_model\n"
        "from sqtool.models.student import HR_DEFAULTS, Student\n"
        "register_model(ModelCfg(name='cnn1d_student_probe', arch={'convs': [[4, 3, 1]]}, **HR_DEFAULTS), role='student')(Student)\n")
    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(tmp_path)])
    monkeypatch.setattr(R, "_CFGS", dict(R._CFGS))            # the probe's model is forgotten after the test
    monkeypatch.setattr(R, "_BUILDERS", dict(R._BUILDERS))
    monkeypatch.setattr(R, "_ROLES", dict(R._ROLES))
    monkeypatch.setattr(R, "_LOADED", False)
    try:
        assert "cnn1d_student_probe" in list_models("cnn1d_student")
        assert create_model("cnn1d_student_probe").cfg.arch == {"convs": [[4, 3, 1]]}
        assert students_fitting(401) == ["cnn1d_student_probe"]              # stride 1: fits any window
        assert students_fitting(320)[:4] == ["cnn1d_student_xs", "cnn1d_student_s16", "cnn1d_student_s",
                                             "cnn1d_student_m"]
    finally:
        sys.modules.pop(f"sqtool.models.{name}", None)


def test_every_model_states_its_role():
    """register_model requires a role: a student registered without one dropped out of quantize's fitting students
    and its default (both list role student), silently."""
    import sqtool.models.registry as R
    from sqtool.models import ModelCfg
    from sqtool.models.student import HR_DEFAULTS, Student
    assert all(R._ROLES[n] in R.ROLES for n in list_models())
    cfg = ModelCfg(name="cnn1d_student_no_role", arch={"convs": [[4, 3, 1]]}, **HR_DEFAULTS)
    with pytest.raises(TypeError):
        R.register_model(cfg)(Student)                                 # no role: not registered
    with pytest.raises(ValueError, match="role must be one of teacher, student, got ''"):
        R.register_model(cfg, role="")(Student)
    assert "cnn1d_student_no_role" not in list_models()


def test_model_cfg_comments_name_every_family_and_norm():
    """core.model_cfg documents `family` and `norm` in comments (core imports no stage, so it cannot read the
    registry or data.preprocess): they list exactly the registry's families and every norm a model can carry."""
    import inspect
    import re

    from sqtool.core.model_cfg import ModelCfg
    from sqtool.data.preprocess import NORMS
    src = inspect.getsource(ModelCfg)
    family = src[src.index("    family: str"):src.index("    fs: float")]
    norm = src[src.index("    norm: str"):src.index("    band:")]
    assert set(re.findall(r'"(\w+)"', family)) == {get_model_cfg(n).family for n in list_models()}
    comment = norm.split("#", 1)[1]
    assert set(re.findall(r'"(\w+)"', comment)) == set(NORMS) | {get_model_cfg(n).norm for n in list_models()}
