"""Title decoder: teacher forcing, causality, greedy / beam (against one-at-a-time and brute force), training,
run folder, image and product captioning, the CLI; one real-data check (skipped when absent)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samestyle.cli import main
from samestyle.models.fake import FakeImageEncoder
from samestyle.pretrain.caption import (
    CaptionConfig,
    CaptionDecodeConfig,
    CaptionRun,
    CaptionTrainConfig,
    caption_run,
    data_file,
)
from samestyle.pretrain.caption_model import (
    CaptionDecoder,
    DecoderConfig,
    beam_search,
    greedy,
    pieces_to_text,
)
from samestyle.pretrain.patches import kaleido_patches
from samestyle.pretrain.train import PretrainDataConfig

C_MAP, D = 6, 8  # map channels of the fake backbone, PCA width
TITLES = [[1, 2, 3], [4, 5], [1, 6, 7, 8], [9, 3]]  # one title (local piece ids) per class
PIECES = ["[PAD]", "puma", "men", "shoes", "nike", "bra", "black", "t", "##shirt", "bag"]


def class_data(n: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` products in 4 classes; a class fixes the title and (plus noise) the patches."""
    rng = np.random.default_rng(seed)
    cls = np.arange(n) % 4
    centres = rng.normal(size=(4, 55, D))
    tokens = np.zeros((n, 5), dtype=np.int64)
    for i, c in enumerate(cls):
        tokens[i, : len(TITLES[c])] = TITLES[c]
    return {
        "ids": np.array([f"p{i}" for i in range(n)]),
        "is_train": np.arange(n) < n * 3 // 4,
        "patches": (centres[cls] + 0.05 * rng.normal(size=(n, 55, D))).astype(np.float16),
        "tokens": tokens,
        "token_table": np.vstack([np.zeros((1, 384)), rng.normal(size=(len(PIECES) - 1, 384))]).astype(
            np.float32
        ),
        "vocab": np.arange(len(PIECES)) * 7,
        "pca_mean": rng.normal(size=C_MAP).astype(np.float32),
        "pca_components": rng.normal(size=(C_MAP, D)).astype(np.float32),
        "patch_scale": np.float32(2.5),
    }


def tiny_cfg(work: Path, data: dict[str, np.ndarray], **train: object) -> CaptionConfig:
    n_train, n_test = int(data["is_train"].sum()), int((~data["is_train"]).sum())
    dc = PretrainDataConfig(work=str(work), catalog=str(work / "no-catalog"), n_train=n_train, n_test=n_test,
                            pca_dim=D, max_tokens=5)  # fmt: skip
    model = DecoderConfig(width=32, layers=1, heads=2, ff=64, dropout=0.0)
    tc = replace(
        CaptionTrainConfig(epochs=40, batch_size=8, warmup_steps=5, lr=3e-3, label_smoothing=0.0), **train
    )
    return CaptionConfig(data=dc, model=model, train=tc, decode=CaptionDecodeConfig(beam=3))


def tiny_decoder(vocab: int = 10, max_tokens: int = 5, seed: int = 0) -> CaptionDecoder:
    torch.manual_seed(seed)
    cfg = DecoderConfig(
        width=16, layers=2, heads=2, ff=32, dropout=0.0, patch_dim=D, vocab=vocab, max_tokens=max_tokens
    )
    m = CaptionDecoder(cfg, torch.randn(vocab, 384))
    with torch.no_grad():
        m.out_bias.normal_(0, 2.0)  # a peaky random model: decoding choices differ by position
    return m.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray], dict]:
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("caption")
    data = class_data()
    cfg = tiny_cfg(work, data)
    with open(data_file(cfg), "wb") as fh:
        np.savez(fh, **data)
    metrics = caption_run(cfg, work / "run", data=data, pieces=PIECES)
    return work / "run", data, metrics


def test_teacher_forcing_layout() -> None:
    m = tiny_decoder()
    inputs, targets = m.teacher_forcing(torch.tensor([[3, 4, 0, 0], [5, 6, 7, 8]]))
    assert inputs.tolist() == [[m.bos, 3, 4, 0, 0], [m.bos, 5, 6, 7, 8]]
    assert targets.tolist() == [[3, 4, m.eos, 0, 0], [5, 6, 7, 8, m.eos]]


def test_decoder_is_causal() -> None:
    m = tiny_decoder()
    mem = m.memory(torch.randn(1, 55, D))
    a = m.logits(torch.tensor([[m.bos, 3, 4, 5]]), mem)
    b = m.logits(torch.tensor([[m.bos, 3, 9, 2]]), mem)
    torch.testing.assert_close(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2:], b[:, 2:])


def test_batched_greedy_matches_one_at_a_time_and_beam_one() -> None:
    m = tiny_decoder()
    p = torch.randn(6, 55, D)
    batched = greedy(m, p)
    assert batched == [greedy(m, p[i : i + 1])[0] for i in range(6)]
    assert beam_search(m, p, beam=1)[0] == batched
    assert all(len(s) <= 5 and 0 not in s and m.bos not in s and m.eos not in s for s in batched)


@torch.no_grad()
def _brute_force(
    m: CaptionDecoder, patches: torch.Tensor, max_len: int, alpha: float
) -> tuple[list[int], float]:
    mem = m.memory(patches[None])
    best: tuple[float, list[int]] = (float("-inf"), [])
    words = range(1, m.cfg.vocab)
    for n in range(max_len + 1):
        for seq in itertools.product(words, repeat=n):
            full, total = [m.bos], 0.0
            for step, tok in enumerate([*seq, m.eos]):
                total += float(m.next_logp(torch.tensor([full]), mem, step, max_len)[0, tok])
                full.append(tok)
            best = max(best, (total / (n + 1) ** alpha, list(seq)))
    return best[1], best[0]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_exhaustive_beam_finds_the_brute_force_best(alpha: float) -> None:
    m = tiny_decoder(vocab=4, max_tokens=3, seed=1)
    for i in range(3):
        p = torch.randn(1, 55, D)
        seqs, scores = beam_search(m, p, beam=64, length_penalty=alpha)  # wider than all 3^3 prefixes
        want, score = _brute_force(m, p[0], 3, alpha)
        assert seqs[0] == want, i
        assert scores[0] == pytest.approx(score, abs=1e-4)


def test_pieces_to_text() -> None:
    assert (
        pieces_to_text(["puma", "men", "'", "s", "t", "-", "shirt", "##s", "."]) == "puma men's t - shirts."
    )
    assert pieces_to_text([]) == ""


def test_training_learns_the_titles_and_the_run_reloads(trained: tuple[Path, dict, dict]) -> None:
    run_dir, data, metrics = trained
    hist = metrics["history"]
    assert hist[-1]["train_loss"] < 0.2 * hist[0]["train_loss"]
    assert "test_loss" in hist[0] and not metrics["stopped_at_time_limit"]
    run = CaptionRun(run_dir)
    assert run.cfg.model.vocab == len(PIECES) and run.cfg.model.patch_dim == D
    want = [pieces_to_text([PIECES[t] for t in row if t]) for row in data["tokens"]]
    assert want[2] == "puma black tshirt"
    for beam in (1, 3):
        got = run.titles(data["patches"], beam=beam)
        assert got == want  # train and held-out rows of the four classes
    assert run.titles(data["patches"][:4]) == CaptionRun(run_dir).titles(data["patches"][:4])


def test_time_budget_stops_training(tmp_path: Path) -> None:
    data = class_data(16)
    metrics = caption_run(
        tiny_cfg(tmp_path, data, max_minutes=1e-6), tmp_path / "r", data=data, pieces=PIECES
    )
    assert metrics["stopped_at_time_limit"] and metrics["steps"] == 1


def test_image_patches_follow_the_prepare_pipeline(trained: tuple[Path, dict, dict], tmp_path: Path) -> None:
    run = CaptionRun(trained[0])
    enc = FakeImageEncoder(dim=C_MAP * 49)
    good = tmp_path / "red.png"
    Image.new("RGB", (40, 60), "red").save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    patches, errors = run.image_patches([good, bad, good], enc)
    assert errors[0] is None and errors[2] is None and "bad.jpg" in str(errors[1])
    maps = enc.encode_images([good]).reshape(1, C_MAP, 7, 7)
    want = (kaleido_patches(maps) - run.pca_mean) @ run.pca_components / run.patch_scale
    np.testing.assert_allclose(patches[0], want[0], rtol=1e-5, atol=1e-5)
    assert (patches[1] == 0).all()
    caps = run.caption_images([good, bad], beam=1, extractor=enc)
    assert caps[0].title is not None and caps[0].error is None
    assert caps[1].title is None and "bad.jpg" in str(caps[1].error)


def test_products_outside_the_subset_are_captioned_from_their_catalogue_image(
    trained: tuple[Path, dict, dict], tmp_path: Path
) -> None:
    from samestyle.catalog.store import write_catalog
    from samestyle.types import Product

    Image.new("RGB", (40, 60), "green").save(tmp_path / "g.png")
    products = [Product("new1", "x", image="g.png"), Product("noimg", "y")]
    write_catalog(tmp_path / "cat", products, image_root=tmp_path)
    run = CaptionRun(trained[0])
    run.cfg = replace(run.cfg, data=replace(run.cfg.data, catalog=str(tmp_path / "cat")))
    enc = FakeImageEncoder(dim=C_MAP * 49)
    caps = run.caption_products(["p1", "new1", "noimg", "p1"], beam=1, extractor=enc)
    assert [c.source for c in caps] == ["p1", "new1", "noimg", "p1"]
    assert caps[0].title == caps[3].title == "nike bra"  # from the prepared subset
    assert caps[1].title == run.caption_images([tmp_path / "g.png"], beam=1, extractor=enc)[0].title
    assert caps[2].title is None and "'noimg'" in str(caps[2].error) and "cat" in str(caps[2].error)


def test_cli_captions_products_and_images(
    trained: tuple[Path, dict, dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import samestyle.pretrain.caption as cap

    run_dir = trained[0]
    rc = main(["caption", "--run", str(run_dir), "--product", "p2", "--product", "nope", "--beam", "2"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out.splitlines() == ["p2\tpuma black tshirt"]
    assert "product 'nope'" in err and "no-catalog" in err
    monkeypatch.setattr(cap, "map_extractor", lambda: FakeImageEncoder(dim=C_MAP * 49))
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 60), "blue").save(img)
    rc = main(
        ["caption", "--run", str(run_dir), "--image", str(img), "--image", str(tmp_path / "missing.png")]
    )
    out, err = capsys.readouterr()
    assert rc == 2 and out.startswith(f"{img}\t") and "missing.png" in err
    assert main(["caption", "--product", "p1"]) == 2
    assert "--run" in capsys.readouterr().err
    assert main(["caption", "--run", str(tmp_path), "--product", "p1"]) == 2
    assert "caption' run" in capsys.readouterr().err


@pytest.mark.real
def test_real_pieces_decode_like_the_tokenizer() -> None:
    from samestyle.pretrain.caption import minilm_pieces

    path = data_file(CaptionConfig())
    if not path.exists():
        pytest.skip(f"{path} not prepared (run 'samestyle pretrain --config configs/pretrain.toml')")
    from transformers import AutoTokenizer

    from samestyle.models.text import minilm_path
    from samestyle.pretrain.prepare import load_data

    data = load_data(path)
    pieces = minilm_pieces(data["vocab"])
    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    for row in data["tokens"][::50]:
        ids = [int(t) for t in row if t]
        assert pieces_to_text([pieces[t] for t in ids]) == tok.decode(
            data["vocab"][ids].tolist(), clean_up_tokenization_spaces=True
        )


@pytest.mark.real
def test_real_image_file_patches_match_the_prepared_ones() -> None:
    from samestyle.pretrain.caption import image_patches, map_extractor

    cfg = CaptionConfig()
    path, catalog_dir = data_file(cfg), Path(cfg.data.catalog)
    if not path.exists() or not catalog_dir.exists():
        pytest.skip("prepared subset or Myntra catalogue absent")
    from samestyle.catalog.store import read_catalog
    from samestyle.pretrain.prepare import load_data

    data, catalog = load_data(path), read_catalog(catalog_dir)
    rows = [0, len(data["ids"]) - 1]  # one train, one held-out product
    files = [catalog.image_path(catalog.get(str(data["ids"][r]))) for r in rows]
    if not all(f is not None and f.exists() for f in files):
        pytest.skip("product images absent")
    got, errors = image_patches(
        [f for f in files if f is not None], map_extractor(), data["pca_mean"], data["pca_components"],
        float(data["patch_scale"]),
    )  # fmt: skip
    assert errors == [None, None]
    np.testing.assert_allclose(got, data["patches"][rows].astype(np.float32), atol=0.03, rtol=0.03)


def test_fresh_decoder_memory_depends_on_the_image_not_only_on_the_cell() -> None:
    # real-data scale: unit-norm 256-d patches are ~0.06 per dimension
    torch.manual_seed(0)
    cfg = DecoderConfig(width=64, layers=1, heads=4, ff=128, dropout=0.0, vocab=20)
    model = CaptionDecoder(cfg, torch.randn(20, 384) * 0.05)
    with torch.no_grad():
        mem = model.memory(torch.randn(16, 55, 256) / 16)
    assert float(mem.std(0).mean()) > 0.3  # N(0, 1) cell embeddings gave ~0.04: the image barely showed
