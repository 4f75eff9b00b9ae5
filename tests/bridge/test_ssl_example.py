"""Smoke test of examples/ssl_digits.py (DINO head vs decoupled GMM prototypes) in --fast mode."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")
pytest.importorskip("matplotlib", reason="matplotlib is the optional 'examples' extra")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ssl_digits.py"


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


def test_presets_and_flags_reach_the_config():
    example = load_example()
    cfg, _ = example.parse_args(["--config", "stressed"])
    assert (cfg.config, cfg.dim, cfg.steps, cfg.head_lr_mult, cfg.head_weight_decay) == (
        "stressed", 16, 3000, 300.0, 0.4)
    assert cfg.gmm_options == {} and cfg.gmm_balance is None  # the bridge's defaults
    cfg, _ = example.parse_args(["--config", "stressed", "--dim", "8", "--head-lr-mult", "2",
                                 "--gmm-balance", "sinkhorn", "--gmm-covariance-type", "tied",
                                 "--gmm-option", "dead_threshold=0.01", "--heads", "gmm"])
    assert (cfg.dim, cfg.steps, cfg.head_lr_mult) == (8, 3000, 2.0)
    assert cfg.gmm_balance == "sinkhorn" and cfg.heads == ("gmm",)
    assert cfg.gmm_options == {"covariance_type": "tied", "dead_threshold": 0.01}
    recipe, _ = example.parse_args([])
    assert (recipe.dim, recipe.steps, recipe.head_lr_mult, recipe.head_weight_decay) == (
        64, None, 1.0, None)


def test_stressed_fast_run_and_the_aggregate_of_two_runs(tmp_path):
    example = load_example()
    threads = torch.get_num_threads()
    try:
        a = example.main(["--fast", "--threads", "1", "--config", "stressed", "--steps", "8",
                          "--out-dir", str(tmp_path / "a")])
        b = example.main(["--fast", "--threads", "1", "--heads", "gmm", "--seed", "1",
                          "--gmm-balance", "sinkhorn", "--out-dir", str(tmp_path / "b")])
    finally:
        torch.set_num_threads(threads)
    assert a["config"]["dim"] == 16 and a["runs"]["joint"]["steps"] == 8  # --steps counts
    assert set(b["runs"]) == {"gmm"}
    gmm = b["runs"]["gmm"]["final"]
    K = b["config"]["n_prototypes"]
    assert 1 <= gmm["effective_usage"] <= gmm["target_usage"] <= K + 1e-6  # balanced
    assert -1 <= gmm["mean_cos_to_init"] <= 1 and gmm["nn_cos_distance"]["min"] >= 0
    agg = example.main(["--aggregate", str(tmp_path / "a"), str(tmp_path / "b"),
                        "--out-dir", str(tmp_path), "--name", "agg"])
    saved = json.loads((tmp_path / "agg.json").read_text())
    assert (tmp_path / "agg.png").stat().st_size > 0
    assert [r["variant"] for r in saved["runs"]] == ["joint", "gmm (posterior)",
                                                     "gmm (sinkhorn)"]
    assert saved["summary"]["gmm (sinkhorn)"]["seeds"] == [1]
    assert agg["summary"]["joint"]["unique_0.025"]["mean"] == a["runs"]["joint"]["final"][
        "unique_fraction"]["0.025"]


def test_the_head_gets_its_own_learning_rate_and_weight_decay():
    example = load_example()
    cfg, _ = example.parse_args(["--fast", "--head-lr-mult", "3", "--head-weight-decay", "0.5"])
    run = example.JointRun(cfg)
    head = run.parameters()
    assert len(head) == 1 and head[0].shape == (cfg.n_prototypes, cfg.dim)  # direction v
    encoder = list(example.Encoder(cfg.width, cfg.dim).parameters())
    opt = example.make_optimizer(cfg, encoder, head)
    example.set_learning_rate(opt, 1e-3)
    enc_decay, enc_rest, head_group = opt.param_groups
    assert head_group["params"] == head and head_group["weight_decay"] == 0.5
    assert head_group["lr"] == pytest.approx(3e-3) and enc_decay["lr"] == pytest.approx(1e-3)
    assert enc_decay["weight_decay"] == cfg.weight_decay and enc_rest["weight_decay"] == 0
    recipe, _ = example.parse_args(["--fast"])
    opt = example.make_optimizer(recipe, encoder, head)  # the recipe: the encoder's decay
    assert opt.param_groups[2]["weight_decay"] == recipe.weight_decay
    assert opt.param_groups[2].get("lr_mult") == 1.0
