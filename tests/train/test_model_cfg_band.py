"""The band-pass is part of the model contract: saved in every checkpoint, old checkpoints without it
load with the default 0.5-8 Hz, and a task that needs another band (rr) gets it when fine-tuning."""
import torch

from sqtool.models import create_model, get_model_cfg
from sqtool.models.registry import ModelCfg
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
from sqtool.train.finetune import FinetuneConfig, run_finetune


def test_cfg_dict_without_band_loads_with_the_default():
    d = get_model_cfg("resnet1d_siamq_tiny").to_dict()
    assert d["band"] == [0.5, 8.0]                                    # lists in the dict, like channels
    d.pop("band")                                                     # a checkpoint written before the field
    assert ModelCfg.from_dict(d).band == (0.5, 8.0)
    for band in ([0.05, 8.0], [None, 4.0], None):
        c = ModelCfg.from_dict({**d, "band": band})
        assert c.band == (None if band is None else tuple(band))
        assert ModelCfg.from_dict(c.to_dict()) == c                   # round trip
    assert get_model_cfg("resnet1d_siamq_tiny").replace(band=[0.1, 8]).band == (0.1, 8)


def test_old_checkpoint_without_band_finetunes_rr_with_the_rr_band(tmp_path):
    torch.manual_seed(0)
    cfg = get_model_cfg("resnet1d_siamq_tiny")
    d = cfg.to_dict()
    d.pop("band")
    save_checkpoint(tmp_path / "old.pt", kind="teacher_pretrain", model_cfg=d,
                    state_dict=create_model(cfg).state_dict())
    ck = load_checkpoint(tmp_path / "old.pt", expect_kind="teacher_pretrain")
    assert ModelCfg.from_dict(ck["model_cfg"]).band == (0.5, 8.0)
    run = tmp_path / "rr"
    run.mkdir()
    m = run_finetune(FinetuneConfig(task="rr", init=str(tmp_path / "old.pt"), data_root="synthetic", epochs=1,
                                    batch_size=32, max_records=3, folds=0, bootstrap=20, progress=False), run)
    assert m["input"]["band"] == [0.05, 8.0]
    out = load_checkpoint(run / "model.pt", expect_kind="teacher_task")
    assert out["model_cfg"]["band"] == [0.05, 8.0] and ModelCfg.from_dict(out["model_cfg"]).band == (0.05, 8.0)
