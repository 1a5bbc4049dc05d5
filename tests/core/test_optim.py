"""The one-cycle schedule runs for every step count (torch's OneCycleLR divided by zero at a one-step warm-up)."""
import pytest
import torch

from sqtool.core.optim import one_cycle


@pytest.mark.parametrize("pct", [0.1, 0.15, 0.5, 1.0])
def test_one_cycle_runs_for_every_step_count(pct):
    for steps in range(1, 41):
        opt = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)
        sched = one_cycle(opt, 1e-3, steps, pct)
        lrs = []
        for _ in range(steps - 1):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        assert all(0 <= lr <= 1e-3 * (1 + 1e-9) for lr in lrs), (steps, lrs)


def test_one_cycle_is_torchs_schedule_where_torch_runs():
    a = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)
    b = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)
    sa, sb = one_cycle(a, 1e-3, 37, 0.1), torch.optim.lr_scheduler.OneCycleLR(b, max_lr=1e-3, total_steps=37, pct_start=0.1)
    for _ in range(36):
        a.step(); b.step(); sa.step(); sb.step()                               # noqa: E702
        assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]
