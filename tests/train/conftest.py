"""Shared fixtures for the train tests: a tiny pretrained checkpoint made once per session."""
import pytest
import torch

from sqtool.train.pretrain import PretrainConfig, run_pretrain

torch.set_num_threads(1)

TINY = dict(model="resnet1d_siamq_tiny", synthetic_pairs=128, epochs=1, batch_size=32, lr=0.05,
            progress=False, val_fraction=0.0)


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrained")
    run_pretrain(PretrainConfig(**TINY), d)
    return d
