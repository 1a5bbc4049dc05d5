"""The messages that name runtimes and sources name ones that exist for the command that prints them."""
import pytest

from sqtool.core import SqtoolError


def test_an_unknown_runtime_lists_every_accepted_name():
    from sqtool.firmware_bench.predict import spectral_runtime
    with pytest.raises(SqtoolError) as e:
        spectral_runtime("bogus")
    listed = str(e.value).split("(choose ")[1].split(";")[0].replace(" or ", ", ").split(", ")
    assert "onnx_float" in listed
    for name in listed:
        spectral_runtime(name.split(" ")[0])                     # each listed name is accepted


def test_a_mixed_folder_names_kind_only_for_the_commands_that_have_it(tmp_path):
    import numpy as np
    from sqtool.data.readers import read_dataset
    (tmp_path / "a.csv").write_text("time,ppg\n0,1\n0.01,2\n")
    np.savez(tmp_path / "b.npz", ppg=np.zeros(10), fs=np.array(100.0))
    with pytest.raises(SqtoolError, match=r"\(data inspect / data quality: or --kind csv / npz\)"):
        read_dataset(tmp_path)
