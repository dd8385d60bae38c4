#!/usr/bin/env bash
# Make (or update) the project's virtual environment .venv with everything the plugin, scripts and tests need.
# Skips all work when .venv already matches setup.py and this script.
#   VANILLA_PYTHON    interpreter for the venv (default: python3)
#   VANILLA_TORCH     torch requirement installed first (default: torch==2.13.0, the CPU wheel here);
#                     set VANILLA_TORCH=keep to keep a torch you installed into .venv yourself (e.g. a CUDA build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${VANILLA_PYTHON:-python3}"
TORCH_SPEC="${VANILLA_TORCH:-torch==2.13.0}"
FAIRSEQ_SPEC="fairseq-fixed==0.12.3.1"
STAMP="$VENV/.fairseq-vanilla-setup"

want="$(cat "$ROOT/setup.py" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16) $TORCH_SPEC"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && "$VENV/bin/python" -c "import fairseq, fairseq_vanilla" 2>/dev/null; then
  echo "[setup] .venv is up to date"
  exit 0
fi

echo "[setup] virtual environment: $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

if [[ "$TORCH_SPEC" == "keep" ]]; then
  echo "[setup] keeping the torch already in .venv: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
else
  echo "[setup] torch: $TORCH_SPEC"
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi

echo "[setup] build tools for fairseq's Cython extensions"
"${PIP[@]}" install -q numpy cython setuptools wheel

if ! "$VENV/bin/python" -c "import fairseq" 2>/dev/null; then
  echo "[setup] $FAIRSEQ_SPEC (builds from source, about 5 minutes)"
  "${PIP[@]}" install -q --no-build-isolation "$FAIRSEQ_SPEC"
fi

echo "[setup] fairseq-vanilla and the pipeline tools (sacremoses, subword-nmt, sentencepiece, sacrebleu, eflomal, pytest, ruff, ctranslate2, optuna + Hydra sweeper/launchers, captum)"
# editable_mode=compat: the checkout itself on sys.path, so that Hydra's plugin scan (pkgutil) finds
# hydra_plugins/fairseq_vanilla_sweeper; setuptools' default editable finder hides it from pkgutil.
"${PIP[@]}" install -q --no-build-isolation -e "$ROOT[test,lint,align,fast,sweep,explain]" --config-settings editable_mode=compat

"$VENV/bin/python" -c "import torch, fairseq, fairseq_vanilla; print('[setup] torch', torch.__version__, '| fairseq', fairseq.__version__)"
echo "$want" > "$STAMP"
