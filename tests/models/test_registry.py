"""Registry-parametrised tests: every registered model builds, runs forward/backward, keeps its cfg."""
import pytest
import torch

from sqtool.models import create_model, get_model_cfg, list_models
from sqtool.models.student import STUDENT_BUDGETS, fold_bn_state, student_budget

SMALL = [n for n in list_models() if n not in ("resnet1d_siamq_101", "resnet1d_siamq_152")]


@pytest.mark.parametrize("name", SMALL)
def test_forward_backward(name):
    m = create_model(name)
    x = torch.rand(2, *m.cfg.input_shape)                  # (B, C, T)
    y = m(x)
    assert y.ndim == 2 and y.shape[0] == 2
    y.sum().backward()
    assert m.cfg.name == name


def test_resnet152_parameter_count():
    m = create_model("resnet1d_siamq_152")
    n = sum(p.numel() for p in m.encoder.parameters())
    assert abs(n - 21.6e6) / 21.6e6 < 0.01


@pytest.mark.parametrize("name", list_models("cnn1d_student"))
def test_student_float_and_int8_twin_agree(name):
    torch.manual_seed(0)
    f = create_model(name).eval()
    q = create_model(name, quant="int8_w_per_channel_a_per_tensor")
    q.load_state_dict(fold_bn_state(f), strict=False)
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
