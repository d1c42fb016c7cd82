"""Write the cross-fitting split: the issue-B split without the pre-training subset's train products.

The cross-encoder learns a *correction* to the bi-encoder's cosine (residual matching). On products the
bi-encoder was trained on, that cosine is much better than on new products, so a correction learned there
does not transfer. The cross-fitted bi-encoder is trained on this split (the issue-B train part minus the
6,000 pre-training products; val and test unchanged), so on the pre-training products its cosines and
top-K lists look like the deployed bi-encoder's on held-out products.

    W=.cache/samestyle/work/myntra
    .venv/bin/python benchmarks/crossfit_split.py --data $W/pretrain/data-n6000-1500-s0-d256-t24.npz \\
        --split runs/bench/default/split.json --out runs/pretrain/crossfit-split.json
    .venv/bin/samestyle train --config runs/bench/default/config.toml \\
        --set data.split=runs/pretrain/crossfit-split.json --out runs/bench/crossfit
    .venv/bin/samestyle embed --catalog $W/catalog --out $W/emb-joint-crossfit --model runs/bench/crossfit \\
        --image-encoder efficientnet-lite0 --text-encoder minilm --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from samestyle.fsio import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the prepared pre-training arrays (.npz)")
    ap.add_argument("--split", required=True, help="the issue-B split JSON (train / val / test ids)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with np.load(args.data, allow_pickle=False) as z:
        subset_train = {str(i) for i in z["ids"][z["is_train"]]}
    split = json.loads(Path(args.split).read_text(encoding="utf-8"))
    out = dict(split) | {"train": [i for i in split["train"] if str(i) not in subset_train]}
    write_json(Path(args.out), out)
    print({k: len(v) for k, v in out.items()}, f"({len(subset_train)} pre-training products left out)")


if __name__ == "__main__":
    main()
