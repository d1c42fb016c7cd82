import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.pretrain.model import CrossEncoder
from samestyle.pretrain.patches import scale_slices
from samestyle.pretrain.tasks import (
    Batch,
    BlankToColor,
    Camouflage,
    ImageTextMatching,
    Jigsaw,
    MaskedLanguageModel,
    MaskedPatchModel,
    build_tasks,
    gumbel_topk_mask,
)


def _batch(data: dict[str, np.ndarray], n: int = 8) -> Batch:
    return Batch(
        tokens=torch.from_numpy(data["tokens"][:n].copy()),
        patches=torch.from_numpy(data["patches"][:n].astype(np.float32)),
        align=torch.from_numpy(data["align"][:n].copy()),
        match=torch.tensor([1.0, 0.0] * (n // 2)),
    )


@pytest.fixture()
def setup() -> tuple[dict[str, np.ndarray], CrossEncoder]:
    torch.manual_seed(0)
    data = tiny_data()
    return data, CrossEncoder(tiny_model_config(data), torch.from_numpy(data["token_table"]))


def test_encoder_shapes_and_padding_invariance(setup) -> None:
    data, enc = setup
    enc.eval()
    b = _batch(data)
    out = enc(b.tokens, b.patches)
    assert out.cls.shape == (8, 16) and out.text.shape == (8, 6, 16) and out.patch.shape == (8, 55, 16)
    # padded positions are masked out: dropping trailing padding columns leaves [CLS] unchanged
    rows = (b.tokens == 0).any(1).nonzero().flatten()[:2]
    short = int((b.tokens[rows] > 0).sum(1).max())
    assert len(rows) == 2 and short < b.tokens.shape[1]
    got = enc(b.tokens[rows, :short], b.patches[rows]).cls
    torch.testing.assert_close(got, out.cls[rows], atol=1e-5, rtol=1e-5)
    # and a different title changes it (the text is attended to)
    other = enc(b.tokens.roll(1, 0), b.patches).cls
    assert not torch.allclose(other, out.cls, atol=1e-4)


def test_gumbel_topk_counts_and_never_padding() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.tensor([[0.0, 0.0, float("-inf")], [5.0, -5.0, 0.0]])
    m = gumbel_topk_mask(scores, torch.tensor([5, 1]), gen)
    assert m[0].tolist() == [True, True, False] and m[1].sum() == 1
    hits = sum(int(gumbel_topk_mask(scores, torch.tensor([1, 1]), gen)[1, 0]) for _ in range(200))
    assert hits > 190  # the 5.0 position dominates


def test_guided_masking_prefers_aligned_tokens(setup) -> None:
    data, _ = setup
    gen = torch.Generator().manual_seed(0)
    guided, rand = MaskedLanguageModel(16, 12, guided=True), MaskedLanguageModel(16, 12, guided=False)
    top_g = top_r = 0
    for _ in range(30):
        for task, acc in ((guided, "g"), (rand, "r")):
            b = _batch(data)
            task.corrupt(b, gen)
            best = b.align.argmax(1)
            hit = int(b.text_masked[torch.arange(8), best].sum())
            top_g, top_r = (top_g + hit, top_r) if acc == "g" else (top_g, top_r + hit)
        assert not (b.text_masked & (b.tokens == 0)).any()
    assert top_g > 0.9 * 30 * 8 and top_r < top_g


def test_jigsaw_permutes_only_the_2x2_grid(setup) -> None:
    data, enc = setup
    b = _batch(data)
    before = b.patches.clone()
    task = Jigsaw(16, p_identity=0.0)
    task.corrupt(b, torch.Generator().manual_seed(1))
    sl = scale_slices()[1]
    outside = torch.ones(55, dtype=torch.bool)
    outside[sl] = False
    torch.testing.assert_close(b.patches[:, outside], before[:, outside])
    for i, cls in enumerate(b.targets["jigsaw"].tolist()):
        order = task.perms[cls]
        torch.testing.assert_close(b.patches[i, sl], before[i, sl][order])
    assert task.loss(enc(b.tokens, b.patches), b).ndim == 0


def test_camouflage_replaces_one_3x3_patch_from_another_row(setup) -> None:
    data, enc = setup
    b = _batch(data)
    before = b.patches.clone()
    task = Camouflage(16, p=1.0)
    task.corrupt(b, torch.Generator().manual_seed(2))
    sl = scale_slices()[2]
    changed = (b.patches != before).any(-1)  # [N, 55]
    for i, target in enumerate(b.targets["camouflage"].tolist()):
        assert target >= 1 and changed[i].nonzero().flatten().tolist() == [sl.start + target - 1]
        assert not torch.equal(b.patches[i, sl.start + target - 1], before[i, sl.start + target - 1])
    assert task.loss(enc(b.tokens, b.patches), b).ndim == 0


def test_patch_masking_tasks_mask_their_scales_and_regress_inputs(setup) -> None:
    data, enc = setup
    b = _batch(data)
    blank, mpm = BlankToColor(16, 8), MaskedPatchModel(16, 8, ratio=0.2)
    gen = torch.Generator().manual_seed(3)
    blank.corrupt(b, gen)
    sl = scale_slices()[4]
    assert b.targets["blank"][:, : sl.start].sum() == 0 and (b.targets["blank"][:, sl].sum(1) == 2).all()
    mpm.corrupt(b, gen)
    assert not (b.targets["mpm"] & b.targets["blank"]).any()  # no patch masked twice
    out = enc(b.tokens, b.patches, b.text_masked, b.patch_masked)
    assert blank.loss(out, b) > 0 and mpm.loss(out, b) > 0


def test_itm_and_mlm_losses_train_down(setup) -> None:
    data, enc = setup
    tasks = build_tasks(("itm", "mlm"), 16, 12, 8, guided=False)
    assert isinstance(tasks["itm"], ImageTextMatching)
    opt = torch.optim.Adam(list(enc.parameters()) + list(tasks.parameters()), lr=3e-3)
    first = last = 0.0
    for step in range(60):
        b = _batch(data)
        tasks["mlm"].corrupt(b, torch.Generator().manual_seed(0))  # same masks each step: memorisable
        out = enc(b.tokens, b.patches, b.text_masked, b.patch_masked)
        loss = tasks["itm"].loss(out, b) + tasks["mlm"].loss(out, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    assert last < 0.5 * first


def test_unknown_task_is_a_config_error() -> None:
    from samestyle.errors import ConfigError

    with pytest.raises(ConfigError, match="rotaton"):
        build_tasks(("itm", "rotaton"), 16, 12, 8, guided=False)


def test_fresh_encoder_outputs_depend_on_the_content_not_only_on_positions() -> None:
    # real-data scales: MiniLM word embeddings ~0.05 per dim, unit-norm 256-d patches ~0.06 per dim
    from samestyle.pretrain.model import CrossConfig, CrossEncoder

    torch.manual_seed(0)
    cfg = CrossConfig(width=64, layers=2, heads=4, ff=128, dropout=0.0, patch_dim=256, vocab=50, max_tokens=8)
    enc = CrossEncoder(cfg, torch.randn(50, 384) * 0.05).eval()
    tokens = torch.randint(1, 50, (16, 8))
    patches = torch.randn(16, 55, 256) / 16
    with torch.no_grad():
        out = enc(tokens, patches)
    for part in (out.cls, out.patch[:, 0], out.text[:, 0]):  # spread across the 16 products
        assert float(part.std(0).mean()) > 0.05  # N(0, 1) position embeddings gave ~0.005 (collapse)
