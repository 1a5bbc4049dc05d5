"""oof_predictions.npz is written atomically (temp file + rename), like every other run output."""
import numpy as np

import sqtool.core.io as cio
from sqtool.train.finetune import FinetuneConfig, run_finetune


def test_oof_predictions_written_atomically(tmp_path, monkeypatch):
    written = []
    real = cio.atomic_write_bytes

    def spy(path, data, **kw):
        written.append(str(path))
        real(path, data, **kw)
    monkeypatch.setattr(cio, "atomic_write_bytes", spy)
    run_finetune(FinetuneConfig(task="af", model="resnet1d_siamq_tiny", data_root="synthetic", epochs=1,
                                batch_size=16, max_records=4, folds=2, bootstrap=10, final_fit=False,
                                progress=False), tmp_path)
    assert str(tmp_path / "oof_predictions.npz") in written
    with np.load(tmp_path / "oof_predictions.npz", allow_pickle=False) as z:
        assert {"groups", "t0", "y", "pred", "record_ids", "fold"} <= set(z.files)
    assert not list(tmp_path.glob(".*.tmp"))
