#!/usr/bin/env bash
# Issue C: the cross-encoder's main run and its ablations, then their evaluation.
#
#   bash benchmarks/pretrain_ablations.sh            # all runs (2 at a time), then bench_pretrain.py
#   EPOCHS=2 PARALLEL=2 bash benchmarks/pretrain_ablations.sh
#
# Every run is configs/pretrain.toml (8 tasks, guided masking, FashionBERT weights, residual matching over
# the bi-encoder, hard negatives) for the same number of epochs, with exactly one change; a run folder that
# already holds a model is kept (re-running the script resumes the set). JOINT is the bi-encoder whose
# vectors the training reads (residual cosines, hard negatives): by default the cross-fitted one, trained
# without the 6,000 pre-training products (see docs/pretrain.md); evaluation always uses the deployed one
# (emb-joint), on held-out products neither bi-encoder saw.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-2}
PARALLEL=${PARALLEL:-2}
JOINT=${JOINT:-.cache/samestyle/work/myntra/emb-joint-crossfit}
ALL='["itm","mlm","mpm","jigsaw","camouflage","blank","rotation","grey"]'
without() { .venv/bin/python -c "import json,sys; print(json.dumps([t for t in json.loads(sys.argv[1]) if t != sys.argv[2]], separators=(',', ':')))" "$ALL" "$1"; }

declare -a NAMES=() ARGS=()
add() { NAMES+=("$1"); shift; ARGS+=("$*"); }
add main
for task in rotation jigsaw camouflage grey blank; do add "no-$task" "tasks=$(without "$task")"; done
add random-masking masking=random
add fixed-weights weighting=fixed
add no-residual residual=false

one() {
    local name=$1; shift
    local out=runs/pretrain/ablation-$name
    [ -f "$out/model.safetensors" ] && { echo "keep $out"; return; }
    local sets=(--set "name=ablation-$name" --set "tasks=$ALL" --set "train.epochs=$EPOCHS"
                --set train.max_minutes=90 --set "data.joint_embeddings=$JOINT")
    for kv in "$@"; do sets+=(--set "$kv"); done
    echo "start $out: $*"
    .venv/bin/python -m samestyle -v pretrain --config configs/pretrain.toml "${sets[@]}" --out "$out" \
        > "runs/pretrain/ablation-$name.log" 2>&1
    echo "done $out"
}

mkdir -p runs/pretrain
running=0
for i in "${!NAMES[@]}"; do
    # shellcheck disable=SC2086
    one "${NAMES[$i]}" ${ARGS[$i]} &
    running=$((running + 1))
    if [ "$running" -ge "$PARALLEL" ]; then wait -n; running=$((running - 1)); fi
done
wait

runs=()
for name in "${NAMES[@]}"; do runs+=("runs/pretrain/ablation-$name"); done
.venv/bin/python benchmarks/bench_pretrain.py --runs "${runs[@]}" \
    --embeddings .cache/samestyle/work/myntra/emb-joint --queries 300 --cross-queries 100 \
    --rerank-k 10 20 50 --out benchmarks/results/pretrain.json
