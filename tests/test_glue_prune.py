"""The GLUE pruning pipeline on a tiny random BERT: exactly the six encoder matrices per layer at the
requested ratio, masks held through training, nested levels on one shared weight tensor, and the
train/eval loop (and the CLI) on small real GLUE slices, offline."""
import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sparsenest.experiments import glue  # noqa: E402
from sparsenest.train import prune  # noqa: E402
from sparsenest.data import DatasetNotFoundError  # noqa: E402
from sparsenest.data.glue import load_glue  # noqa: E402

SIX = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
       "intermediate.dense", "output.dense")
KEYS = [f"bert.encoder.layer.{i}.{m}.weight" for i in range(2) for m in SIX]


def tiny_bert(num_labels=2, vocab_size=100, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=vocab_size, num_labels=num_labels,
                                  max_position_embeddings=160,
                                  problem_type="regression" if num_labels == 1 else None)
    return transformers.BertForSequenceClassification(cfg)


def unit_size(method, shape):
    return {"irregular": 1, "row": shape[1], "column": shape[0], "block": 16}[method]


def check_pruned(model, masks, before, sparsity, method):
    assert sorted(masks) == sorted(KEYS)
    sd = model.state_dict()
    for k, v in before.items():
        if k in masks:
            m = masks[k]
            w = sd[k]
            assert torch.all(w[~m] == 0) and torch.equal(w[m], v[m]), k
            zeros = int((~m).sum())
            if method == "irregular":
                assert zeros == round(sparsity * w.numel()), k
            else:  # structured: to within one unit (row, column or 4x4 block)
                assert abs(zeros - sparsity * w.numel()) <= unit_size(method, tuple(w.shape)), (k, zeros)
            if method != "irregular":
                assert prune.check_structure(m, method, block_shape=(4, 4)), k
        else:
            assert torch.equal(sd[k], v), f"{k} changed but is not one of the six matrices"


@pytest.mark.parametrize("method", glue.PRUNE_METHODS)
@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_each_method_prunes_exactly_the_six_matrices(method, sparsity):
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = glue.prune_masks(model, method, sparsity)
    h = prune.hard_prune(model, masks)
    h.remove()
    check_pruned(model, masks, before, sparsity, method)
    ms = glue.measured_sparsity(model)
    assert abs(ms["overall"] - sparsity) < (1e-3 if method == "irregular" else 0.05)


def _synthetic(n=48, vocab=100, regression=False, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(5, 30, n)
    ids = [np.concatenate([[2], rng.integers(4, vocab, L - 2), [3]]) for L in lens]
    labels = rng.random(n).astype(np.float32) * 5 if regression else rng.integers(0, 2, n)
    return glue.Encoded(ids, [np.zeros_like(x) for x in ids], labels, regression)


@pytest.mark.parametrize("method", ["irregular", "column", "block"])
def test_masks_survive_optimizer_steps(method):
    model = tiny_bert()
    masks = glue.prune_masks(model, method, 0.3)
    params = dict(model.named_parameters())
    seen = []

    def check():  # after every optimizer step: pruned weights and their grads are exactly 0
        for k, m in masks.items():
            assert torch.all(params[k][~m] == 0), k
            assert params[k].grad is None or torch.all(params[k].grad[~m] == 0), k
        seen.append(1)

    kept_before = {k: params[k].detach()[m].clone() for k, m in masks.items()}
    hist = glue.train(model, _synthetic(), epochs=3, lr=5e-3, batch_size=8, weight_decay=0.1, masks=masks,
                      every=(1, check))
    assert hist["steps"] == len(seen) == 18
    for k, m in masks.items():
        assert torch.all(params[k][~m] == 0)
        assert not torch.equal(params[k].detach()[m], kept_before[k])  # the kept weights did train
    # hooks are gone after training: a fresh backward gives dense gradients again
    model.zero_grad()
    out = model(input_ids=torch.randint(4, 100, (2, 9)), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert any(params[k].grad[~m].abs().sum() > 0 for k, m in masks.items())


def test_admm_prunes_the_six_matrices():
    from sparsenest.train.admm import ADMMPruner
    model = tiny_bert()
    admm = ADMMPruner(model, "irregular", 0.3, weights=glue.encoder_keys(model), rho=1e-2)
    hist = glue.train(model, _synthetic(), epochs=1, lr=1e-3, batch_size=8, extra_loss=admm.penalty,
                      every=(2, admm.update))
    assert hist["steps"] == 6 and admm.rho > 1e-2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = admm.final_masks()
    prune.hard_prune(model, masks).remove()
    check_pruned(model, masks, before, 0.3, "irregular")


def test_nested_levels_nest_and_share_weights():
    model = tiny_bert()
    levels = [0.5, 0.3, 0.1]
    intro = glue.nested_intro(model, "irregular", levels)
    assert sorted(intro) == sorted(KEYS)
    lm = [glue.level_masks(intro, lv) for lv in (1, 2, 3)]
    for k in KEYS:
        n = lm[0][k].numel()
        for i, s in enumerate(levels):
            assert int((~lm[i][k]).sum()) == round(s * n)
        assert torch.all(lm[0][k] <= lm[1][k]) and torch.all(lm[1][k] <= lm[2][k])  # M1 ⊂ M2 ⊂ M3

    def joint_loss(m, batch):
        return sum(glue.task_loss(glue._forward(m, batch, glue.masked_params(m, mk)), batch["labels"])
                   for mk in lm)

    params = dict(model.named_parameters())
    start = {k: params[k].detach().clone() for k in KEYS}
    glue.train(model, _synthetic(), epochs=2, lr=5e-3, batch_size=8, masks=lm[-1], loss_fn=joint_loss)
    eff = [glue.masked_params(model, mk) for mk in lm]
    for k in KEYS:
        assert torch.all(params[k][~lm[-1][k]] == 0)  # no level keeps these: exactly zero
        for a in range(3):
            for b in range(a + 1, 3):
                shared = lm[a][k]
                assert torch.equal(eff[a][k][shared], eff[b][k][shared])  # bit-identical shared weights
                assert torch.equal(eff[a][k][shared], params[k][shared])  # ... and they are the one tensor
        # each level's weights trained (gradients of the sparsest level reach its weights too)
        assert not torch.equal(params[k][lm[0][k]], start[k][lm[0][k]])
    # levels really differ: the sparsest level computes a different function from the densest
    batch = glue.collate(_synthetic(), np.arange(8))
    with torch.no_grad():
        model.eval()
        y1, y3 = (glue._forward(model, batch, e) for e in (eff[0], eff[2]))
    assert not torch.allclose(y1, y3)


def test_metrics_match_definitions():
    from scipy import stats
    p = np.array([1, 1, 0, 1, 0, 0, 1])
    y = np.array([1, 0, 0, 1, 1, 0, 1])
    m = glue.compute_metrics("mrpc", p, y)
    assert m["accuracy"] == pytest.approx(5 / 7) and m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert glue.compute_metrics("rte", p, y) == {"accuracy": pytest.approx(5 / 7)}
    a, b = np.random.default_rng(0).random((2, 50))
    s = glue.compute_metrics("stsb", a, b)
    assert s["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert s["pearson"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert glue.compute_metrics("stsb", np.ones(5), np.arange(5.0)) == {"spearman": 0.0, "pearson": 0.0}


def test_length_batching_and_dynamic_padding():
    enc = _synthetic(n=100)
    L = enc.lengths
    ev = glue.batch_order(L, 16, shuffle=False)
    assert sorted(np.concatenate(ev).tolist()) == list(range(100))
    assert all(L[b].max() == L[b][0] for b in ev) and L[ev[0][0]] == L.max()
    tr = glue.batch_order(L, 16, shuffle=True, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(tr).tolist()) == list(range(100))
    b = glue.collate(enc, ev[-1])
    assert b["input_ids"].shape[1] == L[ev[-1]].max()  # padded to its own longest row only
    assert b["attention_mask"].sum() == L[ev[-1]].sum()
    # a pool sorted by length wastes less padding than random batches
    pad = lambda bs: sum(len(x) * L[x].max() - L[x].sum() for x in bs)  # noqa: E731
    rand = [np.arange(100)[i:i + 16] for i in range(0, 100, 16)]
    assert pad(tr) < pad(rand)


# ------------------------------------------------------------------------------------------------
# The pipeline on real GLUE slices


@pytest.fixture(scope="module")
def rte_slice():
    try:
        tr, dev = load_glue("rte", "train"), load_glue("rte", "dev")
    except DatasetNotFoundError as e:
        pytest.skip(f"GLUE files not on the data search path: {e}")
    return tr.subset(48, seed=0), dev.subset(24, seed=0)


def minilm_tokenizer():
    try:
        path = glue.find_model_path()
    except FileNotFoundError as e:
        pytest.skip(f"all-MiniLM-L6-v2 package not installed ({e}); the word-level tokenizer case covers the loop")
    return glue.load_tokenizer(path)


@pytest.mark.parametrize("tok_kind", ["word", "minilm"])
def test_pipeline_runs_on_a_real_glue_slice(rte_slice, tok_kind, tmp_path):
    tr, dev = rte_slice
    if tok_kind == "word":
        tok = glue.SimpleTokenizer.build(tr.text_a + tr.text_b, vocab_size=100)
        vocab = 100
    else:
        tok = minilm_tokenizer()
        vocab = tok.vocab_size
    cfg = glue.GlueConfig(task="rte", max_len=64, batch_size=8, epochs=1, retrain_epochs=2, admm_epochs=0.5,
                          admm_updates=2, lr=1e-3, retrain_lr=1e-3, analyze=(tok_kind == "word"))
    pipe = glue.Pipeline(cfg, model_factory=lambda: tiny_bert(vocab_size=vocab), tokenizer=tok,
                         train_data=tr, eval_data=dev, out_dir=tmp_path, log=lambda s: None)
    assert max(pipe.train_enc.lengths) <= 64 and all(x[0] == (tok.cls if tok_kind == "word" else tok.cls_token_id)
                                                     for x in pipe.train_enc.input_ids)
    info = pipe.finetune()
    assert info["train"]["steps"] == 6 and 0 <= info["metrics"]["accuracy"] <= 1
    for method in ("dense", "column", "admm", "nested"):
        res = pipe.run_method(method)
        assert set(res["metrics"]) == {"accuracy"}
        if method == "column":
            assert res["measured_sparsity"]["overall"] == pytest.approx(0.3, abs=0.03)
            assert 1 <= res["retrain"]["epochs_run"] <= 2
            assert glue.measured_sparsity(pipe.model)["overall"] >= 0.29  # zeros are in the weights
        if method == "nested":
            assert [lv["sparsity"] for lv in res["levels"]] == [0.5, 0.3, 0.1]
            assert len(res["no_retrain"]) == 3
    if tok_kind == "word":
        st = pipe.results["column"]["storage"]
        assert st["totals"]["dense_bytes"] == 2 * sum(p.numel() for p in
                                                      prune.bert_encoder_weights(pipe.model).values())
        assert st["bytes_per_format"]["cols"] is not None and st["bytes_per_format"]["dense"] > 0
        assert pipe.results["nested"]["storage"]["n_levels"] == 3
    rep = pipe.report()
    json.dumps(rep, default=glue._json_default)
    assert rep["train_data"]["num_samples"] == 48 and rep["eval_data"]["num_samples"] == 24
    if tok_kind == "word":  # the Table 1 rendering: seed numbers beside ours
        from sparsenest.experiments.bench import table1
        text = table1.render({"rte": rep}, "test")
        line = lambda label: next(ln for ln in text.splitlines() if ln.startswith(label))  # noqa: E731
        ours = 100 * pipe.results["dense"]["metrics"]["accuracy"]
        assert "66.4 |" in line("Baseline") and f"| {ours:5.1f}" in line("Baseline")
        assert "1.429x" in line("Irregular 30%") and "66.1 |" in line("Irregular 30%")
        assert f"{100 * pipe.results['column']['metrics']['accuracy']:5.1f}" in line("Column 30%")
        assert "n/a" in line("Column 30%") and line("Nested L3 10%").count("|") == 7
        assert "cols" in text and "KiB per format" in text


def test_regression_task_slice(tmp_path):
    try:
        tr, dev = load_glue("stsb", "train").subset(32), load_glue("stsb", "dev").subset(20)
    except DatasetNotFoundError as e:
        pytest.skip(f"GLUE files not on the data search path: {e}")
    tok = glue.SimpleTokenizer.build(tr.text_a + tr.text_b)
    cfg = glue.GlueConfig(task="stsb", max_len=48, batch_size=8, epochs=1, retrain_epochs=1, analyze=False,
                          eval_before_retrain=False)
    pipe = glue.Pipeline(cfg, model_factory=lambda: tiny_bert(num_labels=1), tokenizer=tok, train_data=tr,
                         eval_data=dev, out_dir=tmp_path, log=lambda s: None)
    pipe.finetune()
    res = pipe.run_method("irregular")
    assert set(res["metrics"]) == {"spearman", "pearson"} and res["no_retrain"] is None
    assert all(-1 <= v <= 1 for v in res["metrics"].values())


def _save_tiny_checkpoint(path, texts):
    """A tiny BERT + WordPiece vocabulary on disk, loadable offline like a real checkpoint."""
    words = glue.SimpleTokenizer.build(texts, vocab_size=120).vocab[4:]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(path)
    tiny_bert(vocab_size=len(vocab)).save_pretrained(path)


def test_cli_end_to_end_with_a_local_checkpoint(rte_slice, tmp_path, capsys):
    tr, _ = rte_slice
    ckpt = tmp_path / "ckpt"
    _save_tiny_checkpoint(ckpt, tr.text_a + tr.text_b)
    out = tmp_path / "out"
    argv = ["--task", "RTE", "--method", "column", "--sparsity", "0.3", "--model-path", str(ckpt),
            "--train-limit", "32", "--epochs", "1", "--retrain-epochs", "1", "--batch-size", "16",
            "--no-analyze", "-o", str(out)]
    assert glue.main(argv) == 0
    text = capsys.readouterr().out
    assert "rte dev (all 277 rows); trained on 32 of 2490" in text and "column" in text
    rep = json.loads((out / "rte" / "column_s0.3.json").read_text())
    assert rep["results"]["column"]["measured_sparsity"]["overall"] == pytest.approx(0.3, abs=0.02)
    assert rep["eval_data"]["num_samples"] == 277  # the complete dev set
    assert list((out / "cache").glob("rte-finetuned-*.pt"))
    assert glue.main(argv) == 0  # second run reuses the fine-tuned model
    assert "from cache" in capsys.readouterr().out
    assert glue.main(["--task", "mnli", "--model-path", str(ckpt), "-o", str(out)]) == 2
    assert "not available offline" in capsys.readouterr().err
    assert glue.main(["--task", "rte", "--method", "magic", "--model-path", str(ckpt)]) == 2


def test_table1_budgets_give_a_config_for_every_task():
    """Per-task budget entries override the common ones (SST-2's epochs once crashed the hour run)."""
    from sparsenest.experiments.bench import table1
    for budget in table1.BUDGETS:
        for task in table1.TASK_ORDER:
            cfg = table1.task_config(task, budget)
            assert cfg.task == task and cfg.epochs > 0 and cfg.retrain_epochs > 0
    assert table1.task_config("sst2", "hour").epochs == 2.0 and table1.task_config("rte", "hour").epochs == 3.0
