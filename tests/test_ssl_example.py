"""Smoke test of examples/ssl_digits.py (DINO head vs decoupled GMM prototypes) in --fast mode."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")
pytest.importorskip("matplotlib", reason="matplotlib is the optional 'examples' extra")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ssl_digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("ssl_digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_fast_run_writes_results_and_plot(tmp_path):
    threads = torch.get_num_threads()
    try:
        results = load_example().main(["--fast", "--threads", "1", "--out-dir", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)

    saved = json.loads((tmp_path / "ssl_results.json").read_text())
    assert (tmp_path / "ssl_diversity.png").stat().st_size > 0
    assert saved["config"]["fast"] is True
    K = saved["config"]["n_prototypes"]
    eps = saved["config"]["eps"]
    assert eps == [0.025, 0.1, 0.25, 0.5]
    assert set(saved["runs"]) == {"joint", "gmm"}
    for run in saved["runs"].values():
        assert run["history"], "collapse diagnostics were recorded during training"
        assert run["history"][-1]["step"] == run["steps"]
        for h in run["history"]:
            assert all(0 < h["unique_fraction"][str(e)] <= 1 for e in eps)
            assert 1 <= h["unique"]["0.025"] <= K
            # a larger eps merges more: the unique count never grows with eps
            counts = [h["unique"][str(e)] for e in eps]
            assert counts == sorted(counts, reverse=True)
            assert 1 <= h["effective_usage"] <= K + 1e-6
            assert h["loss"] == h["loss"]  # finite, not NaN
        for acc in run["knn_accuracy"].values():
            assert 0 <= acc <= 100
    for acc in saved["baselines"].values():
        assert 50 < acc <= 100  # digits are easy: raw pixels and a random CNN both do well
    assert results["runs"]["gmm"]["knn_accuracy"] == saved["runs"]["gmm"]["knn_accuracy"]


def test_same_seed_same_initial_encoder():
    example = load_example()
    torch.manual_seed(0)
    a = example.Encoder(8, 16).state_dict()
    torch.manual_seed(0)
    b = example.Encoder(8, 16).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_augment_shapes_and_range():
    example = load_example()
    data = example.load_data(0)
    x = data["x_train"][:16]
    gen = torch.Generator().manual_seed(0)
    globals_, locals_ = example.make_views(x, gen, n_local=3)
    assert len(globals_) == 2 and all(v.shape == (16, 1, 8, 8) for v in globals_)
    assert locals_.shape == (48, 1, 6, 6)
    assert not torch.equal(globals_[0], globals_[1])
    for v in [*globals_, locals_]:
        assert torch.isfinite(v).all() and v.min() >= 0


def test_knn_accuracy_is_perfect_on_separated_clusters():
    example = load_example()
    centres = torch.eye(3) * 10
    bank = centres.repeat_interleave(25, 0) + torch.randn(75, 3, generator=torch.Generator()
                                                         .manual_seed(0))
    labels = torch.arange(3).repeat_interleave(25)
    assert example.knn_accuracy(bank, labels, centres, torch.arange(3), k=20, temp=0.07) == 100
