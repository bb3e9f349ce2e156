"""Pruning a Hugging Face BERT: exactly the six encoder matrices per layer, the same ratio in each."""
import re

import pytest
import torch

transformers = pytest.importorskip("transformers")

from sparsenest.train import prune  # noqa: E402

SIX = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
       "intermediate.dense", "output.dense")


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=100)
    return transformers.BertModel(cfg).eval()


def test_encoder_weights_are_the_six_matrices_per_layer(bert):
    ws = prune.bert_encoder_weights(bert)
    expected = [f"encoder.layer.{i}.{m}.weight" for i in range(2) for m in SIX]
    assert sorted(ws) == sorted(expected)
    sd = bert.state_dict()
    for k, p in ws.items():
        assert p is dict(bert.named_parameters())[k] and sd[k].shape == p.shape
    assert not any(re.search(r"pooler|embeddings", k) for k in ws)
    # the pooler is an nn.Linear too: prunable in general, left out here
    assert "pooler.dense.weight" in prune.prunable_weights(bert)


def test_bert_inside_a_task_model():
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=100, num_labels=3)
    clf = transformers.BertForSequenceClassification(cfg)
    assert sorted(prune.bert_encoder_weights(clf)) == sorted(f"bert.encoder.layer.0.{m}.weight" for m in SIX)
    with pytest.raises(ValueError, match="no BERT encoder"):
        prune.bert_encoder_weights(torch.nn.Linear(3, 3))


@pytest.mark.parametrize("method,opts", [("irregular", {}), ("row", {}), ("column", {}),
                                         ("block", {"block_shape": (4, 4)})])
def test_compute_masks_prunes_only_encoder_matrices_at_one_ratio(bert, method, opts):
    sparsity = 0.75
    ws = prune.bert_encoder_weights(bert)
    masks = prune.compute_masks(bert, method, sparsity, weights=ws, **opts)
    assert set(masks) == set(ws)
    for k, m in masks.items():
        assert m.shape == ws[k].shape and prune.check_structure(m, method, **opts)
        zeros = int((~m).sum())
        if method == "irregular":
            assert zeros == round(sparsity * m.numel()), k
        else:
            unit = {"row": m.shape[1], "column": m.shape[0], "block": 16}[method]
            assert abs(zeros - sparsity * m.numel()) <= unit, k
    # Same matrix role in both layers gets the same ratio (the shapes match, so the counts do).
    for role in SIX:
        a, b = (masks[f"encoder.layer.{i}.{role}.weight"] for i in range(2))
        assert int(a.sum()) == int(b.sum()), role

    before = {k: v.clone() for k, v in bert.state_dict().items()}
    handle = prune.hard_prune(bert, masks)
    after = bert.state_dict()
    for k in before:  # nothing but the six matrices changes
        if k in masks:
            assert torch.equal(after[k], before[k] * masks[k]), k
        else:
            assert torch.equal(after[k], before[k]), k
    out = bert(input_ids=torch.randint(0, 100, (2, 7))).last_hidden_state
    assert out.shape == (2, 7, 32) and torch.isfinite(out).all()
    handle.remove()
    with torch.no_grad():  # restore for the next parametrisation
        for k, p in bert.named_parameters():
            p.copy_(before[k])
